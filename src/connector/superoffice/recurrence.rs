//! SuperOffice's `RecurrenceInfo` (and the series' `PreferredTZLocation`) <-> the neutral
//! [`Recurrence`]. Pure functions; `docs/connectors/superoffice.md` has the table.
//!
//! Read: Daily EveryCyclicDay -> Daily; EveryWeekday and EveryWorkday -> Weekly Monday to
//! Friday, interval 1 (EveryWorkday may also skip a tenant's holidays, which the API does not
//! list: the nearest equivalent); Weekly -> Weekly (SuperOffice's weeks start on Monday, which
//! only matters for an interval above 1); Monthly DayOfMonth / WeekdayOfMonth ->
//! AbsoluteMonthly / RelativeMonthly with one weekday; Yearly (`Cycle` is the month, every
//! year) -> AbsoluteYearly / RelativeYearly with interval 1; end EndDate / Counter / none.
//!
//! Written: the same shapes back. Weekly Monday to Friday is written as Weekly (exact), never
//! as EveryWorkday. What SuperOffice cannot say is refused with the reason
//! ([`render`]): yearly intervals above 1, relative patterns with several days, weekly
//! intervals above 1 with several days whose week does not start on Monday, a zone with no
//! `PreferredTZLocation`.

use jiff::civil::Date;
use serde_json::{Value, json};

use super::time;
use crate::connector::recurrence::{
    DayOfWeek, Pattern, Range, RangeEnd, Recurrence, WeekIndex, occurrence_dates,
};

/// The zone of `PreferredTZLocation` 0: the tenant's base zone. The REST API does not show it;
/// SuperOffice Online tenants in the sandbox (and most Nordic tenants) use Europe/Oslo.
pub const BASE_ZONE: &str = "Europe/Oslo";

/// `PreferredTZLocation` ids (`GET /api/v1/timezone`: `TZLocationId`, country code) and
/// their IANA zones. The ids are the sandbox tenant's list; a real tenant's list should be
/// read from `GET /api/v1/timezone` (not done yet).
pub const ZONES: &[(u32, &str, &str)] = &[
    (1, "UTC", "UTC"),
    (36, "AU-ACT", "Australia/Canberra"),
    (50, "BD", "Asia/Dhaka"),
    (114, "CA-QC", "America/Toronto"),
    (140, "DK", "Europe/Copenhagen"),
    (156, "FR", "Europe/Paris"),
    (160, "DE", "Europe/Berlin"),
    (186, "GB", "Europe/London"),
    (330, "NL", "Europe/Amsterdam"),
    (261, "NO", "Europe/Oslo"),
    (384, "SE", "Europe/Stockholm"),
    (425, "US-CA", "America/Los_Angeles"),
    (433, "US-HI", "Pacific/Honolulu"),
    (460, "US-NY", "America/New_York"),
];

/// The IANA zone of a `PreferredTZLocation` id.
pub fn zone_name(id: u32) -> Option<&'static str> {
    if id == 0 {
        return Some(BASE_ZONE);
    }
    ZONES
        .iter()
        .find(|(z, ..)| *z == id)
        .map(|(_, _, iana)| *iana)
}

/// The `PreferredTZLocation` id of an IANA zone (never 0: the id is always written).
pub fn zone_id(iana: &str) -> Option<u32> {
    ZONES
        .iter()
        .find(|(_, _, name)| name.eq_ignore_ascii_case(iana))
        .map(|(id, ..)| *id)
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const WEEKS: [&str; 5] = ["First", "Second", "Third", "Fourth", "Last"];
const MON_FRI: [DayOfWeek; 5] = [
    DayOfWeek::Monday,
    DayOfWeek::Tuesday,
    DayOfWeek::Wednesday,
    DayOfWeek::Thursday,
    DayOfWeek::Friday,
];

/// An enum as Json.NET writes it (name, any case) or its number, as the index into `names`
/// (whose index 0 is `Unknown`).
fn enum_index(v: Option<&Value>, names: &[&str]) -> Option<usize> {
    match v? {
        Value::String(s) => names.iter().position(|n| n.eq_ignore_ascii_case(s.trim())),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

fn int(o: &Value, name: &str) -> u32 {
    match o.get(name) {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn date(o: &Value, name: &str) -> Option<Date> {
    let parsed = time::parse(o.get(name)?.as_str()?)?;
    (!parsed.is_empty_date()).then(|| parsed.civil.date())
}

fn day_of_week(i: usize) -> Option<DayOfWeek> {
    DayOfWeek::ALL.get(i.checked_sub(1)?).copied()
}

/// `Weekdays`: a flags enum, `"Monday, Thursday"` or a number (Monday 1 ... Sunday 64).
fn weekdays(v: Option<&Value>) -> Result<Vec<DayOfWeek>, String> {
    let bits: u32 = match v {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        Some(Value::String(s)) => {
            let mut bits = 0;
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match WEEKDAYS.iter().position(|n| n.eq_ignore_ascii_case(part)) {
                    Some(i) => bits |= 1 << i,
                    None if part.eq_ignore_ascii_case("Unknown") => {}
                    None => return Err(format!("WeekPattern.Weekdays {part:?} is not a weekday")),
                }
            }
            bits
        }
        _ => 0,
    };
    Ok(DayOfWeek::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, d)| *d)
        .collect())
}

fn week_index(i: usize) -> Option<WeekIndex> {
    Some(match i {
        1 => WeekIndex::First,
        2 => WeekIndex::Second,
        3 => WeekIndex::Third,
        4 => WeekIndex::Fourth,
        5 => WeekIndex::Last,
        _ => return None,
    })
}

/// A month or year sub-pattern's day: `Ok(Err(day))` absolute, `Ok(Ok((weekday, index)))`
/// relative.
#[allow(clippy::type_complexity)]
fn month_day(p: &Value, what: &str) -> Result<Result<(DayOfWeek, WeekIndex), u8>, String> {
    const KINDS: [&str; 3] = ["Unknown", "DayOfMonth", "WeekdayOfMonth"];
    let mut names = vec!["Unknown"];
    names.extend(WEEKDAYS);
    let mut weeks = vec!["Unknown"];
    weeks.extend(WEEKS);
    match enum_index(p.get("Pattern"), &KINDS) {
        Some(1) => {
            let day = int(p, "Day");
            u8::try_from(day)
                .ok()
                .filter(|d| (1..=31).contains(d))
                .map(Err)
                .ok_or_else(|| format!("{what}.Day {day} is not a day of a month"))
        }
        Some(2) => {
            let weekday = enum_index(p.get("Weekday"), &names).and_then(day_of_week);
            let week = enum_index(p.get("WeekOfMonth"), &weeks).and_then(week_index);
            match (weekday, week) {
                (Some(d), Some(w)) => Ok(Ok((d, w))),
                _ => Err(format!(
                    "{what}: WeekdayOfMonth without a Weekday or WeekOfMonth"
                )),
            }
        }
        _ => Err(format!(
            "{what}.Pattern is neither DayOfMonth nor WeekdayOfMonth"
        )),
    }
}

/// Reads a row's `Recurrence` and `PreferredTZLocation` into the canonical neutral form
/// (contract 4): the range starts on the first occurrence's date. `Err`: a pattern crmsync
/// cannot read (Custom, or a broken one), with the reason.
pub fn read(entity: &Value) -> Result<Recurrence, String> {
    let r = entity
        .get("Recurrence")
        .filter(|r| r.is_object())
        .ok_or("Recurrence is missing")?;
    const PATTERNS: [&str; 6] = ["Unknown", "Daily", "Weekly", "Monthly", "Yearly", "Custom"];
    const DAILY: [&str; 4] = ["Unknown", "EveryWorkday", "EveryWeekday", "EveryCyclicDay"];
    const ENDS: [&str; 3] = ["Unknown", "EndDate", "Counter"];
    let sub = |name: &str| {
        r.get(name)
            .filter(|p| p.is_object())
            .ok_or_else(|| format!("Recurrence.{name} is missing"))
    };
    let pattern = match enum_index(r.get("Pattern"), &PATTERNS) {
        Some(1) => {
            let p = sub("DayPattern")?;
            match enum_index(p.get("Pattern"), &DAILY) {
                Some(1 | 2) => Pattern::Weekly {
                    interval: 1,
                    days: MON_FRI.to_vec(),
                    first_day_of_week: DayOfWeek::Sunday,
                },
                Some(3) => Pattern::Daily {
                    interval: int(p, "Cycle").max(1),
                },
                _ => return Err("DayPattern.Pattern is not one crmsync knows".into()),
            }
        }
        Some(2) => {
            let p = sub("WeekPattern")?;
            let interval = int(p, "Cycle").max(1);
            Pattern::Weekly {
                interval,
                days: weekdays(p.get("Weekdays"))?,
                first_day_of_week: if interval == 1 {
                    DayOfWeek::Sunday
                } else {
                    DayOfWeek::Monday
                },
            }
        }
        Some(3) => {
            let p = sub("MonthPattern")?;
            let interval = int(p, "Cycle").max(1);
            match month_day(p, "MonthPattern")? {
                Err(day_of_month) => Pattern::AbsoluteMonthly {
                    interval,
                    day_of_month,
                },
                Ok((day, index)) => Pattern::RelativeMonthly {
                    interval,
                    days: vec![day],
                    index,
                },
            }
        }
        Some(4) => {
            let p = sub("YearPattern")?;
            let month = u8::try_from(int(p, "Cycle"))
                .ok()
                .filter(|m| (1..=12).contains(m))
                .ok_or("YearPattern.Cycle (the month) is not 1 to 12")?;
            match month_day(p, "YearPattern")? {
                Err(day_of_month) => Pattern::AbsoluteYearly {
                    interval: 1,
                    month,
                    day_of_month,
                },
                Ok((day, index)) => Pattern::RelativeYearly {
                    interval: 1,
                    month,
                    days: vec![day],
                    index,
                },
            }
        }
        Some(5) => return Err("a Custom recurrence pattern cannot be synced".into()),
        _ => return Err("Recurrence.Pattern is not one crmsync knows".into()),
    };
    let counter = int(r, "RecurrenceCounter");
    let end_date = date(r, "EndDate");
    let end = match enum_index(r.get("RecurrenceEndType"), &ENDS) {
        Some(1) => RangeEnd::Date(end_date.ok_or("RecurrenceEndType EndDate without EndDate")?),
        Some(2) if counter > 0 => RangeEnd::Count(counter),
        _ => RangeEnd::Never,
    };
    let zone_id = int(entity, "PreferredTZLocation");
    let time_zone = zone_name(zone_id)
        .ok_or_else(|| format!("PreferredTZLocation {zone_id} is not a zone crmsync knows"))?;
    let start = date(r, "StartDate").ok_or("Recurrence.StartDate is missing")?;
    let mut recurrence = Recurrence {
        pattern,
        range: Range { start, end },
        time_zone: time_zone.to_string(),
    };
    recurrence.validate().map_err(|e| e.to_string())?;
    recurrence.range.start = first_date(&recurrence)?;
    Ok(recurrence)
}

/// The date of the first occurrence (the pattern's first date on or after the range's start).
pub fn first_date(recurrence: &Recurrence) -> Result<Date, String> {
    let start = recurrence.range.start;
    // Every pattern has a date within its interval of years (yearly: one year).
    let years = i16::try_from(recurrence.pattern.interval().clamp(1, 100)).unwrap_or(1);
    let to = start
        .checked_add(jiff::Span::new().years(years).days(1))
        .unwrap_or(start);
    occurrence_dates(recurrence, start, to)
        .map_err(|e| e.to_string())?
        .first()
        .copied()
        .ok_or_else(|| "the recurrence gives no occurrence".to_string())
}

fn why(what: impl std::fmt::Display) -> String {
    format!(
        "SuperOffice cannot express {what}; change the series in Outlook to a pattern \
         SuperOffice has, or leave it out of the sync"
    )
}

fn weekday_name(d: DayOfWeek) -> &'static str {
    WEEKDAYS[DayOfWeek::ALL.iter().position(|x| *x == d).unwrap_or(0)]
}

fn index_name(i: WeekIndex) -> &'static str {
    match i {
        WeekIndex::First => "First",
        WeekIndex::Second => "Second",
        WeekIndex::Third => "Third",
        WeekIndex::Fourth => "Fourth",
        WeekIndex::Last => "Last",
    }
}

fn one_day(days: &[DayOfWeek], what: &str) -> Result<DayOfWeek, String> {
    let mut days = days.to_vec();
    days.sort();
    days.dedup();
    match days.as_slice() {
        [d] => Ok(*d),
        _ => Err(why(format_args!(
            "a {what} pattern on more than one day of the week ({days:?}): its month pattern has one weekday"
        ))),
    }
}

/// `RecurrenceInfo` and `PreferredTZLocation` for `recurrence`; `Err` says what SuperOffice
/// cannot express (contract 7).
pub fn render(recurrence: &Recurrence) -> Result<(Value, u32), String> {
    recurrence.validate().map_err(|e| e.to_string())?;
    let zone = zone_id(&recurrence.time_zone).ok_or_else(|| {
        why(format_args!(
            "the time zone {} (no PreferredTZLocation for it)",
            recurrence.time_zone
        ))
    })?;
    let relative = |day: DayOfWeek, index: WeekIndex, cycle: u32| {
        json!({
            "Pattern": "WeekdayOfMonth", "Cycle": cycle, "Day": 0,
            "Weekday": weekday_name(day), "WeekOfMonth": index_name(index),
        })
    };
    let absolute = |day: u8, cycle: u32| {
        json!({
            "Pattern": "DayOfMonth", "Cycle": cycle, "Day": day,
            "Weekday": "Unknown", "WeekOfMonth": "Unknown",
        })
    };
    let (kind, sub, body) = match &recurrence.pattern {
        Pattern::Daily { interval } => (
            "Daily",
            "DayPattern",
            json!({ "Pattern": "EveryCyclicDay", "Cycle": interval }),
        ),
        Pattern::Weekly {
            interval,
            days,
            first_day_of_week,
        } => {
            let mut days = days.clone();
            days.sort();
            days.dedup();
            if *interval > 1 && days.len() > 1 && *first_day_of_week != DayOfWeek::Monday {
                return Err(why(format_args!(
                    "a pattern every {interval} weeks on several days with weeks starting on \
                     {first_day_of_week:?} (SuperOffice's weeks start on Monday)"
                )));
            }
            let names: Vec<&str> = days.iter().map(|d| weekday_name(*d)).collect();
            (
                "Weekly",
                "WeekPattern",
                json!({ "Weekdays": names.join(", "), "Cycle": interval }),
            )
        }
        Pattern::AbsoluteMonthly {
            interval,
            day_of_month,
        } => (
            "Monthly",
            "MonthPattern",
            absolute(*day_of_month, *interval),
        ),
        Pattern::RelativeMonthly {
            interval,
            days,
            index,
        } => (
            "Monthly",
            "MonthPattern",
            relative(one_day(days, "monthly")?, *index, *interval),
        ),
        Pattern::AbsoluteYearly {
            interval,
            month,
            day_of_month,
        } => {
            if *interval != 1 {
                return Err(why(format_args!(
                    "a yearly pattern every {interval} years (it repeats every year)"
                )));
            }
            (
                "Yearly",
                "YearPattern",
                absolute(*day_of_month, u32::from(*month)),
            )
        }
        Pattern::RelativeYearly {
            interval,
            month,
            days,
            index,
        } => {
            if *interval != 1 {
                return Err(why(format_args!(
                    "a yearly pattern every {interval} years (it repeats every year)"
                )));
            }
            (
                "Yearly",
                "YearPattern",
                relative(one_day(days, "yearly")?, *index, u32::from(*month)),
            )
        }
    };
    let empty = "0001-01-01T00:00:00";
    let (end_type, end_date, counter) = match recurrence.range.end {
        RangeEnd::Date(d) => ("EndDate", time::format_midnight(d), 0),
        RangeEnd::Count(n) => ("Counter", empty.to_string(), n),
        RangeEnd::Never => ("Unknown", empty.to_string(), 0),
    };
    let mut info = json!({
        "StartDate": time::format_midnight(recurrence.range.start),
        "EndDate": end_date,
        "RecurrenceCounter": counter,
        "RecurrenceEndType": end_type,
        "Pattern": kind,
        "DayPattern": null,
        "WeekPattern": null,
        "MonthPattern": null,
        "YearPattern": null,
        "IsRecurrence": true,
    });
    info[sub] = body;
    Ok((info, zone))
}

/// The original dates of the rows that exist (`Recurrence.Dates`).
pub fn row_dates(entity: &Value) -> Vec<Date> {
    let mut dates: Vec<Date> = entity
        .get("Recurrence")
        .and_then(|r| r.get("Dates"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|d| date(d, "Date")).collect())
        .unwrap_or_default();
    dates.sort();
    dates.dedup();
    dates
}

/// The rule id of a row of a series (`Recurrence.RecurrenceId` with `IsRecurrence` true).
pub fn rule_of(entity: &Value) -> Option<u32> {
    let r = entity.get("Recurrence")?;
    if r.get("IsRecurrence").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some(int(r, "RecurrenceId")).filter(|id| *id != 0)
}

#[cfg(test)]
#[path = "recurrence_tests.rs"]
mod tests;
