//! Graph's `patternedRecurrence` (an event's `recurrence`) <-> the neutral
//! [`Recurrence`], both ways, for every pattern and range type. Reading accepts what Graph
//! hands out (every property present, unused ones 0, `first`, `sunday` or `0001-01-01`, as
//! `event-recurring.json`) and what its docs send (only the used ones, day names in any
//! case); zone names may be Windows or IANA and become IANA. Writing sends only the
//! properties the pattern uses, as the documented request does, and an IANA
//! `recurrenceTimeZone`, which Graph accepts where it takes a zone name.
//!
//! Days of the week are kept sorted Monday first and without repeats, so that one pattern has
//! one neutral form whatever order Outlook listed them in.

use jiff::civil::Date;
use serde_json::{Map, Value, json};

use crate::connector::recurrence::windows_zones;
use crate::connector::recurrence::{
    DayOfWeek, Pattern, Range, RangeEnd, Recurrence, RecurrenceError, WeekIndex,
};

/// The largest interval Exchange keeps (and the emulator accepts), after Outlook's limit.
pub const MAX_INTERVAL: u32 = 99;

/// Why a `recurrence` cannot be read, or a series cannot be written to Graph. `field` is
/// the path of the property at fault, e.g. `recurrence.pattern.daysOfWeek`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphRecurrenceError {
    #[error("{field}: {what}")]
    Field { field: &'static str, what: String },
    #[error("{field}: {source}")]
    Invalid {
        field: &'static str,
        #[source]
        source: RecurrenceError,
    },
}

fn field(field: &'static str, what: impl Into<String>) -> GraphRecurrenceError {
    GraphRecurrenceError::Field {
        field,
        what: what.into(),
    }
}

/// The property a neutral validation failure is about.
fn invalid(source: RecurrenceError) -> GraphRecurrenceError {
    let field = match &source {
        RecurrenceError::Interval(_) => "recurrence.pattern.interval",
        RecurrenceError::NoDays(_) => "recurrence.pattern.daysOfWeek",
        RecurrenceError::DayOfMonth(_) | RecurrenceError::NoSuchDay { .. } => {
            "recurrence.pattern.dayOfMonth"
        }
        RecurrenceError::Month(_) => "recurrence.pattern.month",
        RecurrenceError::NoOccurrences => "recurrence.range.numberOfOccurrences",
        RecurrenceError::EndsBeforeStart { .. } => "recurrence.range.endDate",
        RecurrenceError::TimeZone(_) => "recurrence.range.recurrenceTimeZone",
        RecurrenceError::Range(_) => "recurrence",
    };
    GraphRecurrenceError::Invalid { field, source }
}

const DAY_NAMES: [(DayOfWeek, &str); 7] = [
    (DayOfWeek::Monday, "monday"),
    (DayOfWeek::Tuesday, "tuesday"),
    (DayOfWeek::Wednesday, "wednesday"),
    (DayOfWeek::Thursday, "thursday"),
    (DayOfWeek::Friday, "friday"),
    (DayOfWeek::Saturday, "saturday"),
    (DayOfWeek::Sunday, "sunday"),
];

const INDEX_NAMES: [(WeekIndex, &str); 5] = [
    (WeekIndex::First, "first"),
    (WeekIndex::Second, "second"),
    (WeekIndex::Third, "third"),
    (WeekIndex::Fourth, "fourth"),
    (WeekIndex::Last, "last"),
];

fn day_name(day: DayOfWeek) -> &'static str {
    DAY_NAMES
        .iter()
        .find(|(d, _)| *d == day)
        .map_or("monday", |(_, n)| n)
}

fn index_name(index: WeekIndex) -> &'static str {
    INDEX_NAMES
        .iter()
        .find(|(i, _)| *i == index)
        .map_or("first", |(_, n)| n)
}

fn day_of(name: &str, at: &'static str) -> Result<DayOfWeek, GraphRecurrenceError> {
    DAY_NAMES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(d, _)| *d)
        .ok_or_else(|| field(at, format!("'{name}' is not a day of the week")))
}

/// An optional string property (absent and `null` alike).
fn opt_str<'a>(
    obj: &'a Value,
    key: &str,
    at: &'static str,
) -> Result<Option<&'a str>, GraphRecurrenceError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(field(at, format!("a string was expected, not {other}"))),
    }
}

/// An optional whole number property in `0..=max`.
fn opt_int(
    obj: &Value,
    key: &str,
    max: u32,
    at: &'static str,
) -> Result<Option<u32>, GraphRecurrenceError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= max)
            .map(Some)
            .ok_or_else(|| {
                field(
                    at,
                    format!("a whole number 0 to {max} was expected, not {v}"),
                )
            }),
    }
}

fn required_int(
    obj: &Value,
    key: &str,
    max: u32,
    at: &'static str,
) -> Result<u32, GraphRecurrenceError> {
    opt_int(obj, key, max, at)?.ok_or_else(|| field(at, "missing"))
}

fn days(pattern: &Value) -> Result<Vec<DayOfWeek>, GraphRecurrenceError> {
    const AT: &str = "recurrence.pattern.daysOfWeek";
    let list = match pattern.get("daysOfWeek") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(field(AT, format!("a list was expected, not {other}"))),
    };
    let mut out = list
        .iter()
        .map(|d| {
            d.as_str()
                .ok_or_else(|| field(AT, format!("a day name was expected, not {d}")))
                .and_then(|name| day_of(name, AT))
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn index(pattern: &Value) -> Result<WeekIndex, GraphRecurrenceError> {
    const AT: &str = "recurrence.pattern.index";
    // Graph's default, and what it echoes for patterns that do not use it.
    let Some(name) = opt_str(pattern, "index", AT)? else {
        return Ok(WeekIndex::First);
    };
    INDEX_NAMES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(i, _)| *i)
        .ok_or_else(|| field(AT, format!("'{name}' is not a week index")))
}

fn small(n: u32, at: &'static str) -> Result<u8, GraphRecurrenceError> {
    u8::try_from(n).map_err(|_| field(at, format!("{n} is out of range")))
}

fn pattern_of(pattern: &Value) -> Result<Pattern, GraphRecurrenceError> {
    const TYPE: &str = "recurrence.pattern.type";
    const DAY: &str = "recurrence.pattern.dayOfMonth";
    const MONTH: &str = "recurrence.pattern.month";
    if !pattern.is_object() {
        return Err(field("recurrence.pattern", "an object was expected"));
    }
    let kind = opt_str(pattern, "type", TYPE)?.ok_or_else(|| field(TYPE, "missing"))?;
    let interval = required_int(pattern, "interval", u32::MAX, "recurrence.pattern.interval")?;
    let day_of_month = || required_int(pattern, "dayOfMonth", 31, DAY).and_then(|d| small(d, DAY));
    let month = || required_int(pattern, "month", 12, MONTH).and_then(|m| small(m, MONTH));
    Ok(match kind.to_ascii_lowercase().as_str() {
        "daily" => Pattern::Daily { interval },
        "weekly" => {
            const FIRST: &str = "recurrence.pattern.firstDayOfWeek";
            // Graph's documented default: the request sample leaves it out.
            let first_day_of_week = match opt_str(pattern, "firstDayOfWeek", FIRST)? {
                Some(name) => day_of(name, FIRST)?,
                None => DayOfWeek::Sunday,
            };
            Pattern::Weekly {
                interval,
                days: days(pattern)?,
                first_day_of_week,
            }
        }
        "absolutemonthly" => Pattern::AbsoluteMonthly {
            interval,
            day_of_month: day_of_month()?,
        },
        "relativemonthly" => Pattern::RelativeMonthly {
            interval,
            days: days(pattern)?,
            index: index(pattern)?,
        },
        "absoluteyearly" => Pattern::AbsoluteYearly {
            interval,
            month: month()?,
            day_of_month: day_of_month()?,
        },
        "relativeyearly" => Pattern::RelativeYearly {
            interval,
            month: month()?,
            days: days(pattern)?,
            index: index(pattern)?,
        },
        other => return Err(field(TYPE, format!("unknown pattern type '{other}'"))),
    })
}

fn date(range: &Value, key: &str, at: &'static str) -> Result<Option<Date>, GraphRecurrenceError> {
    opt_str(range, key, at)?
        .map(|text| {
            text.parse::<Date>()
                .map_err(|e| field(at, format!("'{text}' is not a date: {e}")))
        })
        .transpose()
}

fn range_of(range: &Value) -> Result<(Range, Option<&str>), GraphRecurrenceError> {
    const TYPE: &str = "recurrence.range.type";
    const END: &str = "recurrence.range.endDate";
    const START: &str = "recurrence.range.startDate";
    if !range.is_object() {
        return Err(field("recurrence.range", "an object was expected"));
    }
    let kind = opt_str(range, "type", TYPE)?.ok_or_else(|| field(TYPE, "missing"))?;
    let start = date(range, "startDate", START)?.ok_or_else(|| field(START, "missing"))?;
    let end = match kind.to_ascii_lowercase().as_str() {
        "enddate" => {
            RangeEnd::Date(date(range, "endDate", END)?.ok_or_else(|| field(END, "missing"))?)
        }
        "numbered" => RangeEnd::Count(required_int(
            range,
            "numberOfOccurrences",
            i32::MAX as u32,
            "recurrence.range.numberOfOccurrences",
        )?),
        "noend" => RangeEnd::Never,
        other => return Err(field(TYPE, format!("unknown range type '{other}'"))),
    };
    let zone = opt_str(
        range,
        "recurrenceTimeZone",
        "recurrence.range.recurrenceTimeZone",
    )?
    .filter(|z| !z.trim().is_empty());
    Ok((Range { start, end }, zone))
}

/// A `patternedRecurrence` as a neutral recurrence. `event_zone` is the zone the series is
/// in when the range names none: the event's `originalStartTimeZone` (never its `start`'s
/// zone, which is the one crmsync asked for, UTC).
pub fn from_graph(
    recurrence: &Value,
    event_zone: Option<&str>,
) -> Result<Recurrence, GraphRecurrenceError> {
    const ZONE: &str = "recurrence.range.recurrenceTimeZone";
    if !recurrence.is_object() {
        return Err(field("recurrence", "an object was expected"));
    }
    let pattern = pattern_of(recurrence.get("pattern").unwrap_or(&Value::Null))?;
    let (range, zone) = range_of(recurrence.get("range").unwrap_or(&Value::Null))?;
    let name = zone
        .or(event_zone)
        .ok_or_else(|| field(ZONE, "missing, and the event names no zone"))?;
    let time_zone = windows_zones::to_iana(name)
        .ok_or_else(|| field(ZONE, format!("unknown zone '{name}'")))?;
    let out = Recurrence {
        pattern,
        range,
        time_zone,
    };
    out.validate().map_err(invalid)?;
    Ok(out)
}

/// An event's series, if it is a master: `Ok(None)` when `recurrence` is absent or null.
pub fn of_event(event: &Value) -> Result<Option<Recurrence>, GraphRecurrenceError> {
    match event.get("recurrence") {
        None | Some(Value::Null) => Ok(None),
        Some(r) => {
            let zone = event.get("originalStartTimeZone").and_then(Value::as_str);
            from_graph(r, zone).map(Some)
        }
    }
}

fn days_json(days: &[DayOfWeek]) -> Value {
    Value::Array(days.iter().map(|d| json!(day_name(*d))).collect())
}

/// The `recurrence` of a create or PATCH: only the properties the pattern and range use. An
/// invalid recurrence, or one Graph cannot hold (an interval above [`MAX_INTERVAL`], a zone
/// the database does not know), is an error.
pub fn to_graph(recurrence: &Recurrence) -> Result<Value, GraphRecurrenceError> {
    recurrence.validate().map_err(invalid)?;
    let interval = recurrence.pattern.interval();
    if interval > MAX_INTERVAL {
        return Err(field(
            "recurrence.pattern.interval",
            format!("Graph keeps intervals of 1 to {MAX_INTERVAL}, not {interval}"),
        ));
    }
    let mut pattern = Map::new();
    let mut put = |k: &str, v: Value| {
        pattern.insert(k.to_string(), v);
    };
    let kind = match &recurrence.pattern {
        Pattern::Daily { .. } => "daily",
        Pattern::Weekly {
            days,
            first_day_of_week,
            ..
        } => {
            put("daysOfWeek", days_json(days));
            put("firstDayOfWeek", json!(day_name(*first_day_of_week)));
            "weekly"
        }
        Pattern::AbsoluteMonthly { day_of_month, .. } => {
            put("dayOfMonth", json!(day_of_month));
            "absoluteMonthly"
        }
        Pattern::RelativeMonthly { days, index, .. } => {
            put("daysOfWeek", days_json(days));
            put("index", json!(index_name(*index)));
            "relativeMonthly"
        }
        Pattern::AbsoluteYearly {
            month,
            day_of_month,
            ..
        } => {
            put("month", json!(month));
            put("dayOfMonth", json!(day_of_month));
            "absoluteYearly"
        }
        Pattern::RelativeYearly {
            month, days, index, ..
        } => {
            put("month", json!(month));
            put("daysOfWeek", days_json(days));
            put("index", json!(index_name(*index)));
            "relativeYearly"
        }
    };
    pattern.insert("type".into(), json!(kind));
    pattern.insert("interval".into(), json!(interval));
    let mut range = Map::new();
    range.insert(
        "startDate".into(),
        json!(recurrence.range.start.to_string()),
    );
    let kind = match recurrence.range.end {
        RangeEnd::Date(end) => {
            range.insert("endDate".into(), json!(end.to_string()));
            "endDate"
        }
        RangeEnd::Count(n) => {
            if i32::try_from(n).is_err() {
                return Err(field(
                    "recurrence.range.numberOfOccurrences",
                    format!("{n} is more than Graph holds"),
                ));
            }
            range.insert("numberOfOccurrences".into(), json!(n));
            "numbered"
        }
        RangeEnd::Never => "noEnd",
    };
    range.insert("type".into(), json!(kind));
    range.insert("recurrenceTimeZone".into(), json!(recurrence.time_zone));
    Ok(json!({"pattern": pattern, "range": range}))
}

#[cfg(test)]
#[path = "patterned_tests.rs"]
mod tests;
