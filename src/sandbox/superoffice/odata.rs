//! The OData options of list and archive endpoints: `$select`, `$filter` (SuperOffice's own
//! operators, combined with `and`), `$orderby`, `$top`, `$skip`. A query is checked against
//! the provider's columns before anything runs: an unknown column or operator, or a literal
//! of the wrong type, is a 400, never a silent empty result.

use std::cmp::Ordering;

use jiff::Timestamp;

use super::filter::{Term, parse_filter};
use super::time::TzMode;

/// Restriction types of archive columns (docs: int, listAny, string, bool, date, associate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    ListAny,
    Str,
    Bool,
    /// A planned date-time, shown in the request's zone.
    LocalDate,
    /// A UTC date-time (registered, updated).
    UtcDate,
    Associate,
    /// Shown, not restrictable.
    Display,
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub orderable: bool,
}

pub const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        orderable: !matches!(kind, Kind::Display),
    }
}

/// A cell's value for filtering and sorting.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Str(String),
    Bool(bool),
    Time(Timestamp),
    Null,
}

impl Val {
    fn rank(&self) -> u8 {
        match self {
            Val::Null => 0,
            Val::Bool(_) => 1,
            Val::Int(_) => 2,
            Val::Time(_) => 3,
            Val::Str(_) => 4,
        }
    }

    pub fn cmp(&self, other: &Val) -> Ordering {
        match (self, other) {
            (Val::Int(a), Val::Int(b)) => a.cmp(b),
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (Val::Time(a), Val::Time(b)) => a.cmp(b),
            (Val::Str(a), Val::Str(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A checked query.
#[derive(Debug, Clone)]
pub struct Query {
    pub select: Vec<&'static str>,
    pub filter: Vec<Term>,
    pub order: Vec<(&'static str, bool)>,
    pub top: Option<usize>,
    pub skip: usize,
    pub entities: Vec<String>,
    /// Identifies the query without its page, for the primary-key cache.
    pub key: String,
}

impl Query {
    pub fn term(&self, column: &str) -> impl Iterator<Item = &Term> {
        self.filter.iter().filter(move |t| t.column == column)
    }

    pub fn matches(&self, value: impl Fn(&str) -> Val) -> bool {
        self.filter.iter().all(|t| t.matches(&value(t.column)))
    }

    /// Sorts primary keys by the `$orderby` columns, then by primary key.
    pub fn sort<R>(&self, rows: &mut [(u64, R)], value: impl Fn(&R, &str) -> Val) {
        rows.sort_by(|(ka, a), (kb, b)| {
            for (column, desc) in &self.order {
                let ord = value(a, column).cmp(&value(b, column));
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            ka.cmp(kb)
        });
    }

    /// The page of `keys` this query asks for.
    pub fn page<'a>(&self, keys: &'a [u64]) -> &'a [u64] {
        let start = self.skip.min(keys.len());
        let end = match self.top {
            Some(top) => start.saturating_add(top).min(keys.len()),
            None => keys.len(),
        };
        &keys[start..end]
    }
}

/// What the caller's query string holds, already decoded.
pub struct Params<'a> {
    pub select: Option<&'a str>,
    pub filter: Option<&'a str>,
    pub orderby: Option<&'a str>,
    pub top: Option<&'a str>,
    pub skip: Option<&'a str>,
    pub entities: Option<&'a str>,
}

impl<'a> Params<'a> {
    pub fn from_pairs(pairs: &'a [(String, String)]) -> Params<'a> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        Params {
            select: get("$select"),
            filter: get("$filter"),
            orderby: get("$orderby"),
            top: get("$top"),
            skip: get("$skip"),
            entities: get("$entities"),
        }
    }
}

/// Resolves a column name (case-insensitively) to the provider's spelling.
pub fn find<'c>(columns: &'c [Column], name: &str) -> Option<&'c Column> {
    columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// Checks and parses a query against `columns`; `caller` is the `currentAssociate`.
pub fn parse(
    params: &Params<'_>,
    columns: &'static [Column],
    default_select: &[&'static str],
    tz: &TzMode,
    caller: u32,
    now: Timestamp,
) -> Result<Query, String> {
    let mut select = Vec::new();
    match params.select.map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => {
            for name in text.split(',').map(str::trim) {
                let column = find(columns, name)
                    .ok_or_else(|| format!("Unknown column {name:?} in $select"))?;
                if !select.contains(&column.name) {
                    select.push(column.name);
                }
            }
        }
        None => select.extend_from_slice(default_select),
    }
    let filter = match params.filter.map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => parse_filter(text, columns, tz, caller, now)?,
        None => Vec::new(),
    };
    let mut order = Vec::new();
    if let Some(text) = params.orderby.map(str::trim).filter(|s| !s.is_empty()) {
        for part in text.split(',').map(str::trim) {
            let mut words = part.split_whitespace();
            let name = words.next().unwrap_or_default();
            let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => return Err(format!("Unknown sort direction {other:?} in $orderby")),
            };
            if words.next().is_some() {
                return Err(format!("Cannot read {part:?} in $orderby"));
            }
            let column = find(columns, name)
                .ok_or_else(|| format!("Unknown column {name:?} in $orderby"))?;
            if !column.orderable {
                return Err(format!("Column {name:?} cannot be ordered by"));
            }
            order.push((column.name, desc));
        }
    }
    let number = |name: &str, value: Option<&str>| -> Result<Option<usize>, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| Some(n as usize))
                .ok_or_else(|| format!("{name} must be a non-negative whole number, not {v:?}")),
        }
    };
    let top = number("$top", params.top)?;
    let skip = number("$skip", params.skip)?.unwrap_or(0);
    let entities = params
        .entities
        .map(|e| {
            e.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let key = format!(
        "{:?}|{:?}|{:?}|{:?}|{}|{}",
        params.select,
        params.filter,
        params.orderby,
        params.entities,
        tz.include_offset,
        tz.zone.iana_name().unwrap_or("")
    );
    Ok(Query {
        select,
        filter,
        order,
        top,
        skip,
        entities,
        key,
    })
}
