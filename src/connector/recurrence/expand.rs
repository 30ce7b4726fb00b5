//! Expanding a series into the occurrences of a window.
//!
//! A pattern is a sequence of periods (days, weeks, months or years, `interval` apart, the
//! first being the one that holds the range's start) with a fixed number of dates in each,
//! except the first period, which loses the dates before the range's start. So the periods
//! before a window, and the occurrences they hold (for a numbered range), are counted with
//! arithmetic: a daily series that started 20 years ago costs the same as one that starts
//! today. Only the periods that can touch the window are walked, and a series without an end
//! is never walked past it.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::{DayOfWeek, Pattern, RangeEnd, Recurrence, RecurrenceError, WeekIndex};

/// One occurrence of a series. `original_start` is where the pattern puts it, which names it
/// for good; `start` and `end` are where it is (the same until an exception moves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Occurrence {
    pub original_start: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
}

fn range_error(e: jiff::Error) -> RecurrenceError {
    RecurrenceError::Range(e.to_string())
}

/// The occurrences of a series that overlap `[window_start, window_end)` (one of no
/// duration counts when it starts inside), by start. Each starts at the wall-clock time of
/// `first_start_local` on its date in the series' time zone, so a 09:00 meeting stays at
/// 09:00 across daylight-saving changes; dates come from the pattern and the range (the
/// first start's date is normally the range's start). A time that a spring change skips is
/// moved forward by the gap (02:30 becomes 03:30), and a time that an autumn change repeats
/// is the first of the two, as Outlook and jiff's `compatible` rule do. `duration` is
/// elapsed time, kept across changes.
pub fn occurrences(
    first_start_local: DateTime,
    duration: SignedDuration,
    recurrence: &Recurrence,
    window_start: Timestamp,
    window_end: Timestamp,
) -> Result<Vec<Occurrence>, RecurrenceError> {
    recurrence.validate()?;
    if duration.is_negative() {
        return Err(RecurrenceError::Range(format!(
            "an occurrence cannot last a negative time ({duration})"
        )));
    }
    if window_end <= window_start {
        return Ok(Vec::new());
    }
    let tz = recurrence.zone()?;
    // An occurrence that starts before the window may still reach into it; a day either side
    // covers any zone's offset from UTC.
    let earliest = window_start
        .checked_sub(duration)
        .unwrap_or(window_start)
        .to_zoned(tz.clone())
        .date()
        .checked_sub(1.day())
        .unwrap_or(Date::MIN);
    let latest = window_end
        .to_zoned(tz.clone())
        .date()
        .checked_add(1.day())
        .unwrap_or(Date::MAX);
    let time = first_start_local.time();
    let mut out = Vec::new();
    for date in occurrence_dates(recurrence, earliest, latest)? {
        let start = date
            .to_datetime(time)
            .to_zoned(tz.clone())
            .map_err(range_error)?
            .timestamp();
        let end = start.checked_add(duration).map_err(range_error)?;
        let overlaps =
            start < window_end && (end > window_start || (start == end && start >= window_start));
        if overlaps {
            out.push(Occurrence {
                original_start: start,
                start,
                end,
            });
        }
    }
    Ok(out)
}

/// The dates of a series' occurrences from `from` to `to` (both inclusive, in the series'
/// time zone), in order.
pub fn occurrence_dates(
    recurrence: &Recurrence,
    from: Date,
    to: Date,
) -> Result<Vec<Date>, RecurrenceError> {
    recurrence.validate()?;
    let periods = Periods::of(recurrence)?;
    let mut out = Vec::new();
    let first = periods.containing(from.max(recurrence.range.start))?;
    let mut index = periods.count_before(first)?;
    let mut p = first;
    // Past the last representable date there is nothing more to find.
    while let Ok(start) = periods.start_of(p) {
        if start > to {
            break;
        }
        for date in periods.dates(p)? {
            match recurrence.range.end {
                RangeEnd::Count(n) if index >= u64::from(n) => return Ok(out),
                RangeEnd::Date(end) if date > end => return Ok(out),
                _ => {}
            }
            index += 1;
            if date >= from && date <= to {
                out.push(date);
            }
        }
        p += 1;
    }
    Ok(out)
}

/// The periods of a pattern: period `p` starts `p * interval` units after the first.
struct Periods<'a> {
    pattern: &'a Pattern,
    range_start: Date,
    /// The first day of period 0.
    anchor: Date,
    interval: i64,
    /// The pattern's days, each once, in the order they fall within a week from its start.
    days: Vec<DayOfWeek>,
}

impl<'a> Periods<'a> {
    fn of(recurrence: &'a Recurrence) -> Result<Periods<'a>, RecurrenceError> {
        let start = recurrence.range.start;
        let pattern = &recurrence.pattern;
        let mut days = match pattern {
            Pattern::Weekly { days, .. }
            | Pattern::RelativeMonthly { days, .. }
            | Pattern::RelativeYearly { days, .. } => days.clone(),
            _ => Vec::new(),
        };
        days.sort();
        let anchor = match pattern {
            Pattern::Daily { .. } => start,
            Pattern::Weekly {
                first_day_of_week, ..
            } => {
                let fdow = first_day_of_week.weekday();
                days.sort_by_key(|d| d.weekday().since(fdow));
                let back = i64::from(start.weekday().since(fdow));
                start.checked_sub(back.days()).map_err(range_error)?
            }
            Pattern::AbsoluteMonthly { .. } | Pattern::RelativeMonthly { .. } => {
                start.first_of_month()
            }
            Pattern::AbsoluteYearly { .. } | Pattern::RelativeYearly { .. } => {
                Date::new(start.year(), 1, 1).map_err(range_error)?
            }
        };
        days.dedup();
        Ok(Periods {
            pattern,
            range_start: start,
            anchor,
            interval: i64::from(pattern.interval()),
            days,
        })
    }

    /// The last period that starts on or before `date` (0 for dates before the first).
    fn containing(&self, date: Date) -> Result<i64, RecurrenceError> {
        let units = match self.pattern {
            Pattern::Daily { .. } => days_between(self.anchor, date)?,
            Pattern::Weekly { .. } => days_between(self.anchor, date)?.div_euclid(7),
            Pattern::AbsoluteMonthly { .. } | Pattern::RelativeMonthly { .. } => {
                month_number(date) - month_number(self.anchor)
            }
            Pattern::AbsoluteYearly { .. } | Pattern::RelativeYearly { .. } => {
                i64::from(date.year()) - i64::from(self.anchor.year())
            }
        };
        Ok(units.div_euclid(self.interval).max(0))
    }

    /// How many occurrences the periods before `p` hold (for numbered ranges).
    fn count_before(&self, p: i64) -> Result<u64, RecurrenceError> {
        if p <= 0 {
            return Ok(0);
        }
        let per_period = match self.pattern {
            Pattern::Weekly { .. } => self.days.len() as u64,
            _ => 1,
        };
        let first = self.dates(0)?.len() as u64;
        Ok(first + (p as u64 - 1) * per_period)
    }

    fn start_of(&self, p: i64) -> Result<Date, RecurrenceError> {
        let units = p
            .checked_mul(self.interval)
            .ok_or_else(|| RecurrenceError::Range("too many periods".into()))?;
        let span = match self.pattern {
            Pattern::Daily { .. } => units.days(),
            Pattern::Weekly { .. } => units.weeks(),
            Pattern::AbsoluteMonthly { .. } | Pattern::RelativeMonthly { .. } => units.months(),
            Pattern::AbsoluteYearly { .. } | Pattern::RelativeYearly { .. } => units.years(),
        };
        self.anchor.checked_add(span).map_err(range_error)
    }

    /// The dates of period `p`, in order, none before the range's start.
    fn dates(&self, p: i64) -> Result<Vec<Date>, RecurrenceError> {
        let start = self.start_of(p)?;
        let dates = match self.pattern {
            Pattern::Daily { .. } => vec![start],
            Pattern::Weekly {
                first_day_of_week, ..
            } => {
                let fdow = first_day_of_week.weekday();
                self.days
                    .iter()
                    .map(|d| start.checked_add(i64::from(d.weekday().since(fdow)).days()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(range_error)?
            }
            Pattern::AbsoluteMonthly { day_of_month, .. } => vec![clamped(start, *day_of_month)?],
            Pattern::AbsoluteYearly {
                month,
                day_of_month,
                ..
            } => vec![clamped(in_month(start, *month)?, *day_of_month)?],
            Pattern::RelativeMonthly { index, .. } => vec![nth(start, &self.days, *index)?],
            Pattern::RelativeYearly { month, index, .. } => {
                vec![nth(in_month(start, *month)?, &self.days, *index)?]
            }
        };
        Ok(dates
            .into_iter()
            .filter(|d| *d >= self.range_start)
            .collect())
    }
}

fn days_between(from: Date, to: Date) -> Result<i64, RecurrenceError> {
    Ok(i64::from(from.until(to).map_err(range_error)?.get_days()))
}

fn month_number(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month()) - 1
}

/// The first day of `month` in the year of `date`.
fn in_month(date: Date, month: u8) -> Result<Date, RecurrenceError> {
    Date::new(date.year(), month as i8, 1).map_err(range_error)
}

/// Day `day` of the month of `first` (its first day), or the month's last day if it is
/// shorter.
fn clamped(first: Date, day: u8) -> Result<Date, RecurrenceError> {
    let day = (day as i8).min(first.days_in_month());
    Date::new(first.year(), first.month(), day).map_err(range_error)
}

/// The `index`-th day of the month of `first` that falls on one of `days`.
fn nth(first: Date, days: &[DayOfWeek], index: WeekIndex) -> Result<Date, RecurrenceError> {
    let wanted: Vec<Weekday> = days.iter().map(|d| d.weekday()).collect();
    let mut matching = Vec::with_capacity(31);
    let mut day = first;
    while day.month() == first.month() {
        if wanted.contains(&day.weekday()) {
            matching.push(day);
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    let pick = match index {
        WeekIndex::First => matching.first(),
        WeekIndex::Second => matching.get(1),
        WeekIndex::Third => matching.get(2),
        WeekIndex::Fourth => matching.get(3),
        WeekIndex::Last => matching.last(),
    };
    // Every month holds at least four of each weekday, so a pick always exists.
    pick.copied()
        .ok_or_else(|| RecurrenceError::Range(format!("no such day in {first}")))
}
