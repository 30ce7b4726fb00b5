//! Reading a recurring series from what a `calendarView/delta` round (or a master's
//! `instances`) hands out, in neutral terms; `series_io` builds the series item from it. A
//! changed series comes as one group (the emulator's and the observed service's behaviour,
//! docs/sandbox/graph.md): its master with
//! `recurrence` when the master's own time is in the window, its exceptions in full, its
//! occurrences bare (`id`, `type`, `seriesMasterId`, `start`, `end`), and `@removed` for
//! instances taken away. [`group`] sorts a round's items by `seriesMasterId`;
//! [`SeriesGroup::read`] turns a group and its master (from the page, or fetched with
//! [`master_path`] when the page had only instances) into a [`SeriesRead`].

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::Value;

use super::patterned::{self, GraphRecurrenceError};
use super::{delta, map, wire};
use crate::connector::MailboxRef;
use crate::connector::model::{DiaryItem, Kind, Version, When, Window};
use crate::connector::recurrence::windows_zones;
use crate::connector::recurrence::{self, Recurrence, RecurrenceError};

/// Why a series cannot be read. `field` names the property at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("{field} of {item}: {what}")]
    Field {
        item: String,
        field: &'static str,
        what: String,
    },
    #[error("the recurrence of {item}: {source}")]
    Recurrence {
        item: String,
        #[source]
        source: GraphRecurrenceError,
    },
    #[error("expanding series {item}: {source}")]
    Expand {
        item: String,
        #[source]
        source: RecurrenceError,
    },
}

fn field_error(item: &str, field: &'static str, what: impl Into<String>) -> SeriesError {
    SeriesError::Field {
        item: item.to_string(),
        field,
        what: what.into(),
    }
}

/// An occurrence as delta shows it bare: where the pattern put it, unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A round's items, sorted: events that are no series, series by master, removals.
#[derive(Debug, Clone, Default)]
pub struct DeltaGroups {
    /// Single instances (and anything else that names no series), as received.
    pub singles: Vec<Value>,
    /// By master id, in the order first seen.
    pub series: Vec<SeriesGroup>,
    /// Ids of `@removed` entries: an instance, a master or a single event; delta does not say.
    pub removed: Vec<String>,
}

/// One series' items of a round.
#[derive(Debug, Clone, Default)]
pub struct SeriesGroup {
    pub master_id: String,
    /// The master with its `recurrence`, when the round listed it.
    pub master: Option<Value>,
    pub occurrences: Vec<Instance>,
    /// Exceptions in full, as received.
    pub exceptions: Vec<Value>,
}

fn kind_of(item: &Value) -> String {
    item.get("type")
        .and_then(Value::as_str)
        .unwrap_or("singleInstance")
        .to_ascii_lowercase()
}

fn id_of(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

fn time(item: &Value, id: &str, key: &'static str) -> Result<Timestamp, SeriesError> {
    wire::instant(&item[key]).ok_or_else(|| field_error(id, key, "not a time Graph writes"))
}

/// Sorts a round's items (the last entry of an id wins, as in a delta round) by series.
/// An instance without `seriesMasterId`, or an item without an id, cannot be placed: an error.
pub fn group(items: Vec<Value>) -> Result<DeltaGroups, SeriesError> {
    let mut out = DeltaGroups::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut slot = |out: &mut DeltaGroups, master: &str| -> usize {
        *index.entry(master.to_string()).or_insert_with(|| {
            out.series.push(SeriesGroup {
                master_id: master.to_string(),
                ..SeriesGroup::default()
            });
            out.series.len() - 1
        })
    };
    for item in items {
        let Some(id) = id_of(&item).map(str::to_string) else {
            return Err(field_error("an item", "id", "missing"));
        };
        if item.get("@removed").is_some() {
            out.removed.push(id);
            continue;
        }
        let kind = kind_of(&item);
        if kind == "seriesmaster" {
            let at = slot(&mut out, &id);
            out.series[at].master = Some(item);
            continue;
        }
        if kind != "occurrence" && kind != "exception" {
            out.singles.push(item);
            continue;
        }
        let master = item
            .get("seriesMasterId")
            .and_then(Value::as_str)
            .ok_or_else(|| field_error(&id, "seriesMasterId", "missing on an instance"))?
            .to_string();
        let at = slot(&mut out, &master);
        let series = &mut out.series[at];
        if kind == "occurrence" {
            let instance = Instance {
                start: time(&item, &id, "start")?,
                end: time(&item, &id, "end")?,
                id,
            };
            series.occurrences.retain(|o| o.id != instance.id);
            series.occurrences.push(instance);
        } else {
            series.exceptions.retain(|e| id_of(e) != Some(&id));
            series.exceptions.push(item);
        }
    }
    Ok(out)
}

/// The path of a master with what the client reads of every event (`GET`, with
/// `Prefer` [`wire::prefer`] for events): the page gave only its instances.
pub fn master_path(mailbox: &MailboxRef, master_id: &str) -> String {
    format!(
        "{}?{}",
        delta::item_path(mailbox, Kind::Diary, master_id, false),
        wire::query(&[("$expand", &map::expand_properties())])
    )
}

/// What an exception changed against the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Changed {
    /// Moved or made longer or shorter.
    Time,
    Subject,
    Body,
    Location,
    Private,
    ShowAs,
    Reminder,
}

/// An exception: the occurrence at `original_start`, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesException {
    pub id: String,
    pub original_start: Timestamp,
    pub item: DiaryItem,
    pub changed: BTreeSet<Changed>,
}

/// A series in neutral terms, inside a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRead {
    pub master_id: String,
    pub version: Version,
    pub recurrence: Recurrence,
    /// The master's fields (its `when` is the first occurrence's).
    pub item: DiaryItem,
    /// The first occurrence's start and end, and the zone (IANA) it was written in.
    pub first_start: Timestamp,
    pub first_end: Timestamp,
    pub time_zone: String,
    /// The unchanged occurrences the round listed.
    pub occurrences: Vec<Instance>,
    /// By original start (the key of an occurrence for good; for all-day series midnight
    /// UTC of its date).
    pub exceptions: BTreeMap<Timestamp, SeriesException>,
    /// Original starts the pattern has in the window that are neither an occurrence nor an
    /// exception in the round: cancelled, as far as the window shows (an exception moved
    /// out of the window looks the same; `GET .../instances` over its original day tells).
    pub cancelled: Vec<Timestamp>,
}

impl SeriesGroup {
    /// Whether the master must be fetched ([`master_path`]) before [`Self::read`].
    pub fn needs_master(&self) -> bool {
        self.master.is_none()
    }

    /// The series, from the group and `fetched` (the master read by [`master_path`], used
    /// when the group has none). `window` is the round's window.
    pub fn read(
        &self,
        fetched: Option<&Value>,
        window: &Window,
    ) -> Result<SeriesRead, SeriesError> {
        let id = self.master_id.as_str();
        let master = self
            .master
            .as_ref()
            .or(fetched)
            .ok_or_else(|| field_error(id, "seriesMaster", "neither listed nor fetched"))?;
        if id_of(master) != Some(id) {
            return Err(field_error(id, "id", "the master read is another event"));
        }
        let recurrence = patterned::of_event(master)
            .map_err(|source| SeriesError::Recurrence {
                item: id.to_string(),
                source,
            })?
            .ok_or_else(|| field_error(id, "recurrence", "missing on the series master"))?;
        let meta = map::meta(master, false)
            .ok_or_else(|| field_error(id, "changeKey", "missing on the series master"))?;
        let item = map::diary(master)
            .ok_or_else(|| field_error(id, "start", "the master's times cannot be read"))?;
        let first_start = time(master, id, "start")?;
        let first_end = time(master, id, "end")?;
        let time_zone = master
            .get("originalStartTimeZone")
            .and_then(Value::as_str)
            .and_then(windows_zones::to_iana)
            .unwrap_or_else(|| recurrence.time_zone.clone());
        let all_day = matches!(item.when, When::AllDay { .. });
        let key = |ts: Timestamp| occurrence_key(ts, all_day);

        let expand = |source| SeriesError::Expand {
            item: id.to_string(),
            source,
        };
        let tz = recurrence.zone().map_err(expand)?;
        let first_local = first_start.to_zoned(tz).datetime();
        let duration = first_end.duration_since(first_start);
        let expected =
            recurrence::occurrences(first_local, duration, &recurrence, window.start, window.end)
                .map_err(expand)?;

        let mut exceptions = BTreeMap::new();
        for value in &self.exceptions {
            let exception = exception_of(value, &item, duration, all_day)?;
            exceptions.insert(key(exception.original_start), exception);
        }
        let present: BTreeSet<Timestamp> = self
            .occurrences
            .iter()
            .map(|o| key(o.start))
            .chain(exceptions.keys().copied())
            .collect();
        let cancelled = expected
            .iter()
            .map(|o| key(o.original_start))
            .filter(|k| !present.contains(k))
            .collect();
        Ok(SeriesRead {
            master_id: id.to_string(),
            version: meta.version,
            recurrence,
            item,
            first_start,
            first_end,
            time_zone,
            occurrences: self.occurrences.clone(),
            exceptions,
            cancelled,
        })
    }
}

/// The key of an occurrence: its start; for an all-day series midnight UTC of its date
/// (read as `wire::whole_date` reads dates, so a local midnight anywhere gives its date).
pub(super) fn occurrence_key(ts: Timestamp, all_day: bool) -> Timestamp {
    if !all_day {
        return ts;
    }
    wire::whole_date(&wire::utc(ts))
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map_or(ts, |z| z.timestamp())
}

fn exception_of(
    value: &Value,
    master: &DiaryItem,
    duration: jiff::SignedDuration,
    all_day: bool,
) -> Result<SeriesException, SeriesError> {
    let id = id_of(value).unwrap_or_default();
    let original_start = value
        .get("originalStart")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .ok_or_else(|| field_error(id, "originalStart", "missing or not a time"))?;
    let item = map::diary(value)
        .ok_or_else(|| field_error(id, "start", "the exception's times cannot be read"))?;
    let mut changed = BTreeSet::new();
    let moved = match item.when {
        When::Timed { start, end } => {
            all_day || start != original_start || end.duration_since(start) != duration
        }
        When::AllDay { start, end } => {
            let original = wire::whole_date(&wire::utc(original_start));
            let length = match master.when {
                When::AllDay { start, end } => Some((end - start).get_days()),
                When::Timed { .. } => None,
            };
            !all_day || Some(start) != original || Some((end - start).get_days()) != length
        }
    };
    if moved {
        changed.insert(Changed::Time);
    }
    for (differs, what) in [
        (item.subject != master.subject, Changed::Subject),
        (item.body != master.body, Changed::Body),
        (item.location != master.location, Changed::Location),
        (item.private != master.private, Changed::Private),
        (item.show_as != master.show_as, Changed::ShowAs),
        (
            item.reminder_minutes != master.reminder_minutes,
            Changed::Reminder,
        ),
    ] {
        if differs {
            changed.insert(what);
        }
    }
    Ok(SeriesException {
        id: id.to_string(),
        original_start,
        item,
        changed,
    })
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
