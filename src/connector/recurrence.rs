//! A recurring series in neutral terms: how often it repeats (the pattern), over how long (the
//! range) and in which time zone its occurrences are computed. The shape follows Graph's
//! `patternedRecurrence`, which is also what SuperOffice's recurrence can say; the engine and
//! the history see only this. [`occurrences`] expands a series inside a window.
//!
//! Rules where a pattern names a day some month lacks, after Outlook (CDO's `DayOfMonth`:
//! "the last day of every month can be represented by the value 31 in monthly recurrences";
//! Outlook puts a February 29 yearly date on February 28 in other years): the day is clamped
//! to the month's last day, never skipped and never moved into the next month.

mod expand;
#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod tests;
pub mod windows_zones;
mod zones;

pub use expand::{Occurrence, occurrence_dates, occurrences};
pub use zones::zone_class;

use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};

/// Why a recurrence cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("the recurrence interval must be at least 1 (got {0})")]
    Interval(u32),
    #[error("a {0} recurrence needs at least one day of the week")]
    NoDays(&'static str),
    #[error("the day of the month must be 1 to 31 (got {0})")]
    DayOfMonth(u8),
    #[error("the month must be 1 to 12 (got {0})")]
    Month(u8),
    #[error("month {month} never has a day {day}")]
    NoSuchDay { month: u8, day: u8 },
    #[error("a numbered recurrence needs at least one occurrence")]
    NoOccurrences,
    #[error("the recurrence ends ({end}) before it starts ({start})")]
    EndsBeforeStart { start: Date, end: Date },
    #[error("unknown time zone '{0}' (an IANA name is expected, e.g. Europe/Oslo)")]
    TimeZone(String),
    #[error("date arithmetic left the supported range: {0}")]
    Range(String),
}

/// A day of the week (jiff's `Weekday`, which has no serde form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl DayOfWeek {
    pub const ALL: [DayOfWeek; 7] = [
        DayOfWeek::Monday,
        DayOfWeek::Tuesday,
        DayOfWeek::Wednesday,
        DayOfWeek::Thursday,
        DayOfWeek::Friday,
        DayOfWeek::Saturday,
        DayOfWeek::Sunday,
    ];

    pub fn weekday(self) -> Weekday {
        match self {
            DayOfWeek::Monday => Weekday::Monday,
            DayOfWeek::Tuesday => Weekday::Tuesday,
            DayOfWeek::Wednesday => Weekday::Wednesday,
            DayOfWeek::Thursday => Weekday::Thursday,
            DayOfWeek::Friday => Weekday::Friday,
            DayOfWeek::Saturday => Weekday::Saturday,
            DayOfWeek::Sunday => Weekday::Sunday,
        }
    }

    pub fn of(weekday: Weekday) -> DayOfWeek {
        match weekday {
            Weekday::Monday => DayOfWeek::Monday,
            Weekday::Tuesday => DayOfWeek::Tuesday,
            Weekday::Wednesday => DayOfWeek::Wednesday,
            Weekday::Thursday => DayOfWeek::Thursday,
            Weekday::Friday => DayOfWeek::Friday,
            Weekday::Saturday => DayOfWeek::Saturday,
            Weekday::Sunday => DayOfWeek::Sunday,
        }
    }
}

/// Which of the matching days of a month a relative pattern means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WeekIndex {
    First,
    Second,
    Third,
    Fourth,
    Last,
}

/// How often a series repeats. `interval` counts days, weeks, months or years.
///
/// Relative patterns with several days mean the n-th day of the month that is one of them
/// ("the last weekday": Monday to Friday, `Last`), as Graph documents and Exchange stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pattern {
    Daily {
        interval: u32,
    },
    Weekly {
        interval: u32,
        days: Vec<DayOfWeek>,
        /// Where a week starts, which decides the weeks an interval above 1 skips.
        first_day_of_week: DayOfWeek,
    },
    AbsoluteMonthly {
        interval: u32,
        day_of_month: u8,
    },
    RelativeMonthly {
        interval: u32,
        days: Vec<DayOfWeek>,
        index: WeekIndex,
    },
    AbsoluteYearly {
        interval: u32,
        month: u8,
        day_of_month: u8,
    },
    RelativeYearly {
        interval: u32,
        month: u8,
        days: Vec<DayOfWeek>,
        index: WeekIndex,
    },
}

impl Pattern {
    pub fn interval(&self) -> u32 {
        match self {
            Pattern::Daily { interval }
            | Pattern::Weekly { interval, .. }
            | Pattern::AbsoluteMonthly { interval, .. }
            | Pattern::RelativeMonthly { interval, .. }
            | Pattern::AbsoluteYearly { interval, .. }
            | Pattern::RelativeYearly { interval, .. } => *interval,
        }
    }

    fn validate(&self) -> Result<(), RecurrenceError> {
        let interval = self.interval();
        if interval == 0 {
            return Err(RecurrenceError::Interval(interval));
        }
        let days_needed = |days: &[DayOfWeek], kind| {
            if days.is_empty() {
                Err(RecurrenceError::NoDays(kind))
            } else {
                Ok(())
            }
        };
        match self {
            Pattern::Daily { .. } => Ok(()),
            Pattern::Weekly { days, .. } => days_needed(days, "weekly"),
            Pattern::RelativeMonthly { days, .. } => days_needed(days, "relative monthly"),
            Pattern::RelativeYearly { days, month, .. } => {
                check_month(*month)?;
                days_needed(days, "relative yearly")
            }
            Pattern::AbsoluteMonthly { day_of_month, .. } => check_day(*day_of_month),
            Pattern::AbsoluteYearly {
                month,
                day_of_month,
                ..
            } => {
                check_month(*month)?;
                check_day(*day_of_month)?;
                // February 29 exists in leap years (and is clamped in others); February 30 never.
                let longest = Date::new(2000, *month as i8, 1)
                    .map(|d| d.days_in_month())
                    .unwrap_or(31);
                if *day_of_month as i8 > longest {
                    return Err(RecurrenceError::NoSuchDay {
                        month: *month,
                        day: *day_of_month,
                    });
                }
                Ok(())
            }
        }
    }
}

fn check_month(month: u8) -> Result<(), RecurrenceError> {
    if (1..=12).contains(&month) {
        Ok(())
    } else {
        Err(RecurrenceError::Month(month))
    }
}

fn check_day(day: u8) -> Result<(), RecurrenceError> {
    if (1..=31).contains(&day) {
        Ok(())
    } else {
        Err(RecurrenceError::DayOfMonth(day))
    }
}

/// When a series stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RangeEnd {
    /// The last day an occurrence may fall on (inclusive, in the series' time zone).
    Date(Date),
    /// This many occurrences in all, counted from the range's start.
    Count(u32),
    /// Never: only a window of it is ever expanded.
    Never,
}

/// Over how long a series repeats: from `start` (the first day the pattern is applied; the
/// first occurrence is on it or later) to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Range {
    pub start: Date,
    pub end: RangeEnd,
}

/// A recurring series: pattern, range and the IANA time zone its dates and times are in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Recurrence {
    pub pattern: Pattern,
    pub range: Range,
    pub time_zone: String,
}

impl Recurrence {
    /// Checks what a service may send but cannot be expanded (zero interval, no days,
    /// impossible days, an end before the start, an unknown zone).
    pub fn validate(&self) -> Result<(), RecurrenceError> {
        self.pattern.validate()?;
        match self.range.end {
            RangeEnd::Count(0) => return Err(RecurrenceError::NoOccurrences),
            RangeEnd::Date(end) if end < self.range.start => {
                return Err(RecurrenceError::EndsBeforeStart {
                    start: self.range.start,
                    end,
                });
            }
            _ => {}
        }
        self.zone().map(|_| ())
    }

    /// The series' time zone.
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, RecurrenceError> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|_| RecurrenceError::TimeZone(self.time_zone.clone()))
    }
}
