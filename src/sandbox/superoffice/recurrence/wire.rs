//! `RecurrenceInfo` as the API reads and shows it (Swagger-v1-Appointment.json:
//! RecurrenceInfo, RecurrenceDayPattern, RecurrenceWeekPattern, RecurrenceMonthPattern,
//! RecurrenceYearPattern, RecurrenceDate).

use jiff::civil::{Date, Weekday};
use serde_json::{Map, Value, json};

use super::super::entities::{EMPTY_DATE, get, id_value};
use super::super::time::{Literal, TzMode, parse_literal};
use super::{Daily, End, MonthDay, Pattern, Rule, Wanted, weekday_bit};

/// What a written entity asks of its recurrence.
#[derive(Debug, Clone, PartialEq)]
pub enum Requested {
    /// No `Recurrence` (or null): nothing about the series changes.
    Absent,
    /// `IsRecurrence` false.
    Off,
    On(Wanted),
}

const PATTERNS: &[&str] = &["Unknown", "Daily", "Weekly", "Monthly", "Yearly", "Custom"];
const END_TYPES: &[&str] = &["Unknown", "EndDate", "Counter"];
const DAY_PATTERNS: &[&str] = &["Unknown", "EveryWorkday", "EveryWeekday", "EveryCyclicDay"];
const MONTH_PATTERNS: &[&str] = &["Unknown", "DayOfMonth", "WeekdayOfMonth"];
const WEEKDAYS: &[&str] = &[
    "Unknown",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const WEEKS: &[&str] = &["Unknown", "First", "Second", "Third", "Fourth", "Last"];
const WEEKDAY_VALUES: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// An enum as Json.NET reads it: its name (any case) or its number.
fn enum_of(o: &Map<String, Value>, name: &str, names: &[&str]) -> Result<usize, String> {
    let bad = |v: &Value| format!("{name}: {v} is not one of {}", names.join(", "));
    match get(o, name) {
        None => Ok(0),
        Some(Value::String(s)) => names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| bad(&Value::String(s.clone()))),
        Some(v @ Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n < names.len())
            .ok_or_else(|| bad(v)),
        Some(v) => Err(bad(v)),
    }
}

fn int(o: &Map<String, Value>, name: &str) -> Result<u32, String> {
    get(o, name).map_or(Ok(0), |v| id_value(v, name))
}

fn object<'v>(o: &'v Map<String, Value>, name: &str) -> Result<&'v Map<String, Value>, String> {
    match get(o, name) {
        Some(Value::Object(p)) => Ok(p),
        _ => Err(format!("Recurrence.{name} is required for this Pattern")),
    }
}

/// A date of the rule: `None` for absent or SuperOffice's empty date.
fn date(o: &Map<String, Value>, name: &str, tz: &TzMode) -> Result<Option<Date>, String> {
    let text = match get(o, name) {
        None => return Ok(None),
        Some(Value::String(s)) => s,
        Some(v) => return Err(format!("Recurrence.{name} must be a date, not {v}")),
    };
    let day = match parse_literal(text).map_err(|e| format!("Recurrence.{name}: {e}"))? {
        Literal::Date(d) => d,
        Literal::Local(dt) => dt.date(),
        Literal::Exact(at) => at.to_zoned(tz.zone.clone()).date(),
    };
    Ok((day.year() > 1).then_some(day))
}

/// `Weekdays`, a flags enum: `"Monday, Wednesday"` or its number (Monday 1 ... Sunday 64).
fn weekdays(o: &Map<String, Value>) -> Result<u8, String> {
    match get(o, "Weekdays") {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .filter(|n| *n < 128)
            .ok_or_else(|| format!("WeekPattern.Weekdays: {n} is not a set of weekdays")),
        Some(Value::String(s)) => s.split(',').try_fold(0u8, |bits, part| {
            let i = WEEKDAYS
                .iter()
                .position(|n| n.eq_ignore_ascii_case(part.trim()))
                .ok_or_else(|| format!("WeekPattern.Weekdays: {part:?} is not a weekday"))?;
            Ok(if i == 0 { bits } else { bits | (1 << (i - 1)) })
        }),
        Some(v) => Err(format!(
            "WeekPattern.Weekdays: {v} is not a set of weekdays"
        )),
    }
}

fn cycle(o: &Map<String, Value>, pattern: &str) -> Result<u32, String> {
    let c = int(o, "Cycle")?;
    if c == 0 {
        return Err(format!("{pattern}.Cycle must be at least 1"));
    }
    Ok(c)
}

fn month_day(o: &Map<String, Value>, pattern: &str) -> Result<MonthDay, String> {
    match enum_of(o, "Pattern", MONTH_PATTERNS)? {
        1 => {
            let day = int(o, "Day")?;
            match i8::try_from(day) {
                Ok(d) if (1..=31).contains(&d) => Ok(MonthDay::DayOfMonth(d)),
                _ => Err(format!("{pattern}.Day must be 1 to 31, not {day}")),
            }
        }
        2 => {
            let weekday = enum_of(o, "Weekday", WEEKDAYS)?;
            let week = enum_of(o, "WeekOfMonth", WEEKS)?;
            if weekday == 0 || week == 0 {
                return Err(format!(
                    "{pattern}: WeekdayOfMonth needs a Weekday and a WeekOfMonth"
                ));
            }
            Ok(MonthDay::WeekdayOfMonth {
                week: week as i8,
                weekday: WEEKDAY_VALUES[weekday - 1],
            })
        }
        _ => Err(format!(
            "{pattern}.Pattern must be DayOfMonth or WeekdayOfMonth"
        )),
    }
}

/// Reads an entity's `Recurrence` (and `PreferredTZLocation`, the series' zone).
pub fn read(entity: &Value, tz: &TzMode) -> Result<Requested, String> {
    let Value::Object(e) = entity else {
        return Ok(Requested::Absent);
    };
    let r = match get(e, "Recurrence") {
        None => return Ok(Requested::Absent),
        Some(Value::Object(r)) => r,
        Some(v) => {
            return Err(format!(
                "Recurrence must be a RecurrenceInfo object, not {v}"
            ));
        }
    };
    match get(r, "IsRecurrence") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) | None => return Ok(Requested::Off),
        Some(v) => {
            return Err(format!(
                "Recurrence.IsRecurrence must be true or false, not {v}"
            ));
        }
    }
    let pattern = match enum_of(r, "Pattern", PATTERNS)? {
        1 => {
            let p = object(r, "DayPattern")?;
            Pattern::Daily(match enum_of(p, "Pattern", DAY_PATTERNS)? {
                1 => Daily::Workdays,
                2 => Daily::Weekdays,
                3 => Daily::Cyclic(cycle(p, "DayPattern")?),
                _ => {
                    return Err("DayPattern.Pattern must be EveryWorkday, EveryWeekday or \
                                EveryCyclicDay"
                        .into());
                }
            })
        }
        2 => {
            let p = object(r, "WeekPattern")?;
            let days = weekdays(p)?;
            if days == 0 {
                return Err("WeekPattern.Weekdays must name at least one weekday".into());
            }
            Pattern::Weekly {
                cycle: cycle(p, "WeekPattern")?,
                days,
            }
        }
        3 => {
            let p = object(r, "MonthPattern")?;
            Pattern::Monthly {
                cycle: cycle(p, "MonthPattern")?,
                on: month_day(p, "MonthPattern")?,
            }
        }
        4 => {
            let p = object(r, "YearPattern")?;
            let month = int(p, "Cycle")?;
            let month = match i8::try_from(month) {
                Ok(m) if (1..=12).contains(&m) => m,
                _ => {
                    return Err(format!(
                        "YearPattern.Cycle is the month, 1 to 12, not {month}"
                    ));
                }
            };
            Pattern::Yearly {
                month,
                on: month_day(p, "YearPattern")?,
            }
        }
        5 => return Err("Custom recurrence patterns are not supported (sandbox)".into()),
        _ => return Err("Recurrence.Pattern must be Daily, Weekly, Monthly or Yearly".into()),
    };
    let end_date = date(r, "EndDate", tz)?;
    let counter = int(r, "RecurrenceCounter")?;
    let end = match enum_of(r, "RecurrenceEndType", END_TYPES)? {
        1 => End::Date(end_date.ok_or("RecurrenceEndType EndDate needs an EndDate")?),
        2 if counter == 0 => return Err("RecurrenceCounter must be at least 1".into()),
        2 => End::Count(counter),
        // No end type: whichever end is given, else none.
        _ => match (end_date, counter) {
            (Some(d), _) => End::Date(d),
            (None, n) if n > 0 => End::Count(n),
            _ => End::Never,
        },
    };
    let zone_id =
        get(e, "PreferredTZLocation").map_or(Ok(0), |v| id_value(v, "PreferredTZLocation"))?;
    Ok(Requested::On(Wanted {
        start: date(r, "StartDate", tz)?,
        end,
        pattern,
        zone_id,
    }))
}

fn weekday_name(w: Weekday) -> &'static str {
    WEEKDAYS[usize::from(w.to_monday_one_offset().unsigned_abs())]
}

fn month_pattern(cycle: i64, on: MonthDay) -> Value {
    match on {
        MonthDay::DayOfMonth(d) => json!({
            "Pattern": "DayOfMonth", "Cycle": cycle, "Day": d,
            "Weekday": "Unknown", "WeekOfMonth": "Unknown",
        }),
        MonthDay::WeekdayOfMonth { week, weekday } => json!({
            "Pattern": "WeekdayOfMonth", "Cycle": cycle, "Day": 0,
            "Weekday": weekday_name(weekday),
            "WeekOfMonth": WEEKS[usize::from(week.unsigned_abs()).min(5)],
        }),
    }
}

/// `RecurrenceInfo` of a series; `Dates` are the dates that have rows now. The sub-pattern
/// of the rule's kind is set, the others are null.
pub fn render(rule: &Rule, tz: &TzMode) -> Value {
    let spec = &rule.spec;
    let (pattern, day, week, month, year) = match spec.pattern {
        Pattern::Daily(d) => {
            let (name, cycle) = match d {
                Daily::Workdays => ("EveryWorkday", 0),
                Daily::Weekdays => ("EveryWeekday", 0),
                Daily::Cyclic(n) => ("EveryCyclicDay", n),
            };
            let p = json!({ "Pattern": name, "Cycle": cycle });
            ("Daily", p, Value::Null, Value::Null, Value::Null)
        }
        Pattern::Weekly { cycle, days } => {
            let names: Vec<&str> = WEEKDAY_VALUES
                .iter()
                .filter(|w| days & weekday_bit(**w) != 0)
                .map(|w| weekday_name(*w))
                .collect();
            let p = json!({ "Weekdays": names.join(", "), "Cycle": cycle });
            ("Weekly", Value::Null, p, Value::Null, Value::Null)
        }
        Pattern::Monthly { cycle, on } => {
            let p = month_pattern(i64::from(cycle), on);
            ("Monthly", Value::Null, Value::Null, p, Value::Null)
        }
        Pattern::Yearly { month, on } => {
            let p = month_pattern(i64::from(month), on);
            ("Yearly", Value::Null, Value::Null, Value::Null, p)
        }
    };
    // Each of EndDate and RecurrenceCounter is "only used" with its end type: the other is empty.
    let (end_type, end_date, counter) = match spec.end {
        End::Date(d) => ("EndDate", tz.floating(d), 0),
        End::Count(n) => ("Counter", EMPTY_DATE.to_string(), n),
        End::Never => ("Unknown", EMPTY_DATE.to_string(), 0),
    };
    let dates: Vec<Value> = rule
        .rows
        .keys()
        .map(|d| {
            json!({
                "Date": tz.floating(*d), "IsConflict": false, "Description": "",
                "DescriptionStyleHint": "", "Tooltip": "",
            })
        })
        .collect();
    json!({
        "RecurrenceId": rule.id,
        "StartDate": tz.floating(spec.start),
        "EndDate": end_date,
        "RecurrenceCounter": counter,
        "RecurrenceEndType": end_type,
        "Pattern": pattern,
        "DayPattern": day,
        "WeekPattern": week,
        "MonthPattern": month,
        "YearPattern": year,
        "Dates": dates,
        "IsRecurrence": true,
    })
}
