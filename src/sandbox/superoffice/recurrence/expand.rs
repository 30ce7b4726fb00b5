//! The emulator's own expansion of a recurrence rule into dates. It is independent of
//! `connector::recurrence` on purpose: the emulator is the oracle the connector is tested against.

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};

/// How the daily pattern repeats (`RecurrenceDailyPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daily {
    /// `EveryCyclicDay`: every `n` days.
    Cyclic(u32),
    /// Monday to Friday.
    Weekdays,
    /// Monday to Friday too: the sandbox has no holiday calendar.
    Workdays,
}

/// Which day of a month (`RecurrenceMonthlyPattern` / `RecurrenceYearlyPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthDay {
    /// 1 to 31; past the month's end it is the month's last day.
    DayOfMonth(i8),
    /// `week` 1 to 4, or 5 for `Last`.
    WeekdayOfMonth { week: i8, weekday: Weekday },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Daily(Daily),
    /// `days` is SuperOffice's weekday bit set: Monday 1, Tuesday 2, ... Sunday 64.
    Weekly {
        cycle: u32,
        days: u8,
    },
    Monthly {
        cycle: u32,
        on: MonthDay,
    },
    /// Every year, in `month` (1 to 12; the API calls it the year pattern's `Cycle`).
    Yearly {
        month: i8,
        on: MonthDay,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The last date an occurrence may fall on.
    Date(Date),
    Count(u32),
    Never,
}

/// A rule's dates: where it starts, what repeats, where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub start: Date,
    pub end: End,
    pub pattern: Pattern,
}

pub fn weekday_bit(w: Weekday) -> u8 {
    1 << w.to_monday_zero_offset()
}

impl Spec {
    /// Every date of the rule from its start up to `until` (inclusive), in order. `until`
    /// bounds a never-ending rule; a count is counted from the rule's first date.
    pub fn dates(&self, until: Date) -> Vec<Date> {
        let limit = match self.end {
            End::Date(d) => d.min(until),
            _ => until,
        };
        let max = match self.end {
            End::Count(n) => n as usize,
            _ => usize::MAX,
        };
        let mut out = Vec::new();
        let mut push = |d: Date| -> bool {
            if d < self.start {
                return true;
            }
            if d > limit || out.len() >= max {
                return false;
            }
            out.push(d);
            true
        };
        match self.pattern {
            Pattern::Daily(daily) => {
                let step = match daily {
                    Daily::Cyclic(n) => i64::from(n.max(1)),
                    _ => 1,
                };
                let mut d = self.start;
                loop {
                    let weekday_only = !matches!(daily, Daily::Cyclic(_));
                    let skip = weekday_only && d.weekday().to_monday_zero_offset() >= 5;
                    if !skip && !push(d) {
                        break;
                    }
                    if d > limit {
                        break;
                    }
                    match d.checked_add(step.days()) {
                        Ok(next) => d = next,
                        Err(_) => break,
                    }
                }
            }
            Pattern::Weekly { cycle, days } => {
                let offset = i64::from(self.start.weekday().to_monday_zero_offset());
                let Ok(mut monday) = self.start.checked_sub(offset.days()) else {
                    return out;
                };
                'weeks: while monday <= limit {
                    for i in 0..7i64 {
                        if days & (1 << i) == 0 {
                            continue;
                        }
                        let Ok(d) = monday.checked_add(i.days()) else {
                            break 'weeks;
                        };
                        if !push(d) {
                            break 'weeks;
                        }
                    }
                    match monday.checked_add((7 * i64::from(cycle.max(1))).days()) {
                        Ok(next) => monday = next,
                        Err(_) => break,
                    }
                }
            }
            Pattern::Monthly { cycle, on } => {
                let Ok(mut first) = Date::new(self.start.year(), self.start.month(), 1) else {
                    return out;
                };
                while first <= limit {
                    if let Some(d) = day_in_month(first, on)
                        && !push(d)
                    {
                        break;
                    }
                    match first.checked_add(i64::from(cycle.max(1)).months()) {
                        Ok(next) => first = next,
                        Err(_) => break,
                    }
                }
            }
            Pattern::Yearly { month, on } => {
                let mut year = self.start.year();
                while let Ok(first) = Date::new(year, month, 1) {
                    if Date::new(year, 1, 1).is_ok_and(|jan| jan > limit) {
                        break;
                    }
                    if let Some(d) = day_in_month(first, on)
                        && !push(d)
                    {
                        break;
                    }
                    year += 1;
                }
            }
        }
        out
    }
}

/// The date `on` gives in the month of `first` (its first day).
fn day_in_month(first: Date, on: MonthDay) -> Option<Date> {
    match on {
        MonthDay::DayOfMonth(day) => {
            let day = day.clamp(1, first.days_in_month());
            Date::new(first.year(), first.month(), day).ok()
        }
        MonthDay::WeekdayOfMonth { week, weekday } => {
            let nth = if week >= 5 { -1 } else { week };
            first.nth_weekday_of_month(nth, weekday).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn spec(start: Date, end: End, pattern: Pattern) -> Spec {
        Spec {
            start,
            end,
            pattern,
        }
    }

    #[test]
    fn weekly_on_two_days_every_second_week() {
        // Wednesday 2026-01-07; Mondays and Wednesdays every other week.
        let s = spec(
            date(2026, 1, 7),
            End::Count(4),
            Pattern::Weekly {
                cycle: 2,
                days: weekday_bit(Weekday::Monday) | weekday_bit(Weekday::Wednesday),
            },
        );
        assert_eq!(
            s.dates(date(2027, 1, 1)),
            vec![
                date(2026, 1, 7),
                date(2026, 1, 19),
                date(2026, 1, 21),
                date(2026, 2, 2)
            ]
        );
    }

    #[test]
    fn day_31_falls_on_the_last_day_of_short_months() {
        let s = spec(
            date(2026, 1, 31),
            End::Date(date(2026, 4, 30)),
            Pattern::Monthly {
                cycle: 1,
                on: MonthDay::DayOfMonth(31),
            },
        );
        assert_eq!(
            s.dates(date(2030, 1, 1)),
            vec![
                date(2026, 1, 31),
                date(2026, 2, 28),
                date(2026, 3, 31),
                date(2026, 4, 30)
            ]
        );
    }

    #[test]
    fn yearly_rules_give_one_date_a_year_in_their_month() {
        let fourth_thursday = spec(
            date(2026, 1, 5),
            End::Count(3),
            Pattern::Yearly {
                month: 11,
                on: MonthDay::WeekdayOfMonth {
                    week: 4,
                    weekday: Weekday::Thursday,
                },
            },
        );
        assert_eq!(
            fourth_thursday.dates(date(2100, 1, 1)),
            vec![date(2026, 11, 26), date(2027, 11, 25), date(2028, 11, 23)]
        );
        // 29 February: the last day of February in other years; the start date counts.
        let leap = spec(
            date(2028, 3, 1),
            End::Date(date(2030, 12, 31)),
            Pattern::Yearly {
                month: 2,
                on: MonthDay::DayOfMonth(29),
            },
        );
        assert_eq!(
            leap.dates(date(2100, 1, 1)),
            vec![date(2029, 2, 28), date(2030, 2, 28)]
        );
    }

    #[test]
    fn last_friday_and_never_ending_rules_stop_at_until() {
        let s = spec(
            date(2026, 1, 1),
            End::Never,
            Pattern::Monthly {
                cycle: 1,
                on: MonthDay::WeekdayOfMonth {
                    week: 5,
                    weekday: Weekday::Friday,
                },
            },
        );
        assert_eq!(
            s.dates(date(2026, 3, 31)),
            vec![date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]
        );
        let weekdays = spec(
            date(2026, 1, 2),
            End::Never,
            Pattern::Daily(Daily::Weekdays),
        );
        assert_eq!(
            weekdays.dates(date(2026, 1, 6)),
            vec![date(2026, 1, 2), date(2026, 1, 5), date(2026, 1, 6)]
        );
    }
}
