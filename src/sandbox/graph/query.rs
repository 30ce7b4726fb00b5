//! OData query options (`$top`, `$skip`, `$select`, `$expand`, `$filter`) and the `Prefer`
//! header, as the Outlook and directory services read them.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::error::GraphError;
use super::filter::{self, Expr};
use super::wire::{self, Zone};

/// The decoded query string of a request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// A parameter by name, case-insensitively (`startdatetime` and `startDateTime` alike).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Refuses system query options (`$...`) this request does not take.
    pub fn allow(&self, options: &[&str]) -> Result<(), GraphError> {
        for (key, _) in &self.pairs {
            if key.starts_with('$') && !options.iter().any(|o| o.eq_ignore_ascii_case(key)) {
                return Err(GraphError::invalid_query(format!(
                    "The query parameter '{key}' is not supported on this request."
                )));
            }
        }
        Ok(())
    }

    /// `$top`: `default` when absent; above `max` either refused (the directory) or capped
    /// (Outlook).
    pub fn top(&self, default: usize, max: usize, refuse_above: bool) -> Result<usize, GraphError> {
        let Some(text) = self.get("$top") else {
            return Ok(default);
        };
        let n: i64 = text.trim().parse().map_err(|_| {
            GraphError::invalid_query(format!(
                "Invalid value '{text}' for $top query option found. The $top query option requires a non-negative integer value."
            ))
        })?;
        if refuse_above && (n < 1 || n > max as i64) {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                format!(
                    "Invalid page size specified: '{n}'. Must be between 1 and {max} inclusive."
                ),
            ));
        }
        if n < 0 {
            return Err(GraphError::invalid_query(format!(
                "Invalid value '{text}' for $top query option found. The $top query option requires a non-negative integer value."
            )));
        }
        Ok((n as usize).min(max))
    }

    pub fn skip(&self) -> Result<usize, GraphError> {
        match self.get("$skip") {
            None => Ok(0),
            Some(text) => text.trim().parse::<usize>().map_err(|_| {
                GraphError::invalid_query(format!(
                    "Invalid value '{text}' for $skip query option found. The $skip query option requires a non-negative integer value."
                ))
            }),
        }
    }

    /// `$select`, checked against the entity's properties (case-insensitively); canonical
    /// names out.
    pub fn select(
        &self,
        known: &[&'static str],
        entity: &str,
    ) -> Result<Option<Vec<&'static str>>, GraphError> {
        let Some(text) = self.get("$select") else {
            return Ok(None);
        };
        parse_select(text, known, entity).map(Some)
    }

    pub fn filter(&self) -> Result<Option<Expr>, GraphError> {
        match self.get("$filter") {
            None => Ok(None),
            Some(text) => filter::parse(text).map(Some),
        }
    }

    pub fn expand(&self) -> Result<Vec<Expand>, GraphError> {
        match self.get("$expand") {
            None => Ok(Vec::new()),
            Some(text) => parse_expand(text),
        }
    }

    /// The query string again, without the named parameters, with `extra` added.
    pub fn rewrite(&self, without: &[&str], extra: &[(&str, String)]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if !without.iter().any(|w| w.eq_ignore_ascii_case(k)) {
                out.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            out.append_pair(k, v);
        }
        // OData clients expect `$` unescaped in links, as Graph writes them.
        out.finish().replace("%24", "$")
    }
}

pub fn parse_select(
    text: &str,
    known: &[&'static str],
    entity: &str,
) -> Result<Vec<&'static str>, GraphError> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let found = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name))
            .ok_or_else(|| GraphError::unknown_property(name, entity))?;
        if !out.contains(found) {
            out.push(*found);
        }
    }
    Ok(out)
}

/// Keeps the selected properties (and those always returned) of a rendered entity.
pub fn apply_select(
    map: &mut Map<String, Value>,
    select: Option<&[&'static str]>,
    always: &[&str],
) {
    if let Some(select) = select {
        map.retain(|k, _| {
            k.starts_with('@') || always.contains(&k.as_str()) || select.contains(&k.as_str())
        });
    }
}

/// One `$expand` item: a navigation property and its `$filter`.
#[derive(Debug, Clone)]
pub struct Expand {
    pub name: String,
    pub filter: Option<Expr>,
}

/// Splits at `sep` outside quotes and parentheses.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

pub fn parse_expand(text: &str) -> Result<Vec<Expand>, GraphError> {
    let mut out = Vec::new();
    for item in split_top(text, ',')
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, options) = match item.find('(') {
            Some(open) if item.ends_with(')') => {
                (&item[..open], Some(&item[open + 1..item.len() - 1]))
            }
            Some(_) => {
                return Err(GraphError::invalid_query(format!(
                    "Invalid $expand item '{item}'."
                )));
            }
            None => (item, None),
        };
        let mut filter = None;
        for option in options.map(|o| split_top(o, ';')).unwrap_or_default() {
            let option = option.trim();
            if option.is_empty() {
                continue;
            }
            match option.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("$filter") => {
                    filter = Some(filter::parse(v)?);
                }
                _ => {
                    return Err(GraphError::invalid_query(format!(
                        "The query option '{option}' is not supported inside $expand."
                    )));
                }
            }
        }
        out.push(Expand {
            name: name.trim().to_string(),
            filter,
        });
    }
    Ok(out)
}

/// What a request's `Prefer` headers ask for.
#[derive(Debug, Clone, Default)]
pub struct Prefer {
    /// `outlook.timezone`, when it names a zone Exchange knows.
    pub time_zone: Option<Zone>,
    pub max_page_size: Option<usize>,
    /// `outlook.body-content-type="text"`.
    pub text_body: bool,
    pub immutable_id: bool,
}

fn unquote(value: &str) -> &str {
    value.trim().trim_matches('"')
}

impl Prefer {
    pub fn of(headers: &HeaderMap) -> Prefer {
        let mut prefer = Prefer::default();
        for value in headers.get_all("Prefer") {
            let Ok(text) = value.to_str() else { continue };
            for part in split_top(text, ',') {
                let Some((name, value)) = part.split_once('=') else {
                    continue;
                };
                let name = name.trim();
                if name.eq_ignore_ascii_case("outlook.timezone") {
                    prefer.time_zone = wire::zone(unquote(value));
                } else if name.eq_ignore_ascii_case("odata.maxpagesize") {
                    prefer.max_page_size = unquote(value).parse::<usize>().ok().filter(|n| *n > 0);
                } else if name.eq_ignore_ascii_case("outlook.body-content-type") {
                    prefer.text_body = unquote(value).eq_ignore_ascii_case("text");
                } else if name.eq_ignore_ascii_case("IdType") {
                    prefer.immutable_id = unquote(value).eq_ignore_ascii_case("ImmutableId");
                }
            }
        }
        prefer
    }

    /// The zone times are shown in (UTC unless asked otherwise).
    pub fn zone(&self) -> Zone {
        self.time_zone.clone().unwrap_or_else(Zone::utc)
    }

    /// `Preference-Applied`, for the preferences this answer honoured.
    pub fn applied(&self, time_zone: bool, page_size: Option<usize>) -> Option<String> {
        let mut parts = Vec::new();
        if let (true, Some(zone)) = (time_zone, &self.time_zone) {
            parts.push(format!("outlook.timezone=\"{}\"", zone.name));
        }
        if let Some(n) = page_size {
            parts.push(format!("odata.maxpagesize={n}"));
        }
        if self.immutable_id {
            parts.push("IdType=\"ImmutableId\"".to_string());
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_case_insensitive_and_unknown_options_refused() {
        let q = Query::parse(Some("startdatetime=2026-01-01&$TOP=5&other=1"));
        assert_eq!(q.get("startDateTime"), Some("2026-01-01"));
        assert_eq!(q.top(10, 1000, false).unwrap(), 5);
        assert!(q.allow(&["$top"]).is_ok());
        assert!(Query::parse(Some("$foo=1")).allow(&["$top"]).is_err());
        assert!(Query::parse(Some("$top=1000")).top(100, 999, true).is_err());
        assert!(Query::parse(Some("$top=x")).top(100, 999, true).is_err());
        assert_eq!(
            Query::parse(Some("$top=5000"))
                .top(10, 1000, false)
                .unwrap(),
            1000
        );
    }

    #[test]
    fn expand_items_carry_their_filter() {
        let e = parse_expand(
            "singleValueExtendedProperties($filter=id eq 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color'),x",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name, "singleValueExtendedProperties");
        assert!(e[0].filter.is_some());
        assert!(parse_expand("a($top=1)").is_err());
    }

    #[test]
    fn prefer_headers_are_read_whether_combined_or_not() {
        let mut h = HeaderMap::new();
        h.append(
            "Prefer",
            "outlook.timezone=\"Pacific Standard Time\", odata.maxpagesize=2"
                .parse()
                .unwrap(),
        );
        h.append("Prefer", "IdType=\"ImmutableId\"".parse().unwrap());
        let p = Prefer::of(&h);
        assert_eq!(p.zone().name, "Pacific Standard Time");
        assert_eq!(p.max_page_size, Some(2));
        assert!(p.immutable_id);
        assert!(
            p.applied(true, Some(2))
                .unwrap()
                .contains("odata.maxpagesize=2")
        );
    }
}
