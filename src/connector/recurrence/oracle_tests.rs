//! The expansion against a naive oracle, on random series.

use jiff::ToSpan;
use jiff::civil::{Date, date};
use proptest::prelude::*;

use super::*;

fn rec(pattern: Pattern, start: Date, end: RangeEnd) -> Recurrence {
    Recurrence {
        pattern,
        range: Range { start, end },
        time_zone: "UTC".into(),
    }
}

// A naive oracle: walk every day from the range's start and ask whether the pattern holds
// on it, stated directly from the pattern's definition rather than by periods.

fn weeks_apart(a: Date, b: Date, fdow: DayOfWeek) -> i64 {
    let week_start = |d: Date| {
        d.checked_sub(i64::from(d.weekday().since(fdow.weekday())).days())
            .unwrap()
    };
    i64::from(week_start(a).until(week_start(b)).unwrap().get_days()) / 7
}

fn months_apart(a: Date, b: Date) -> i64 {
    (i64::from(b.year()) * 12 + i64::from(b.month()))
        - (i64::from(a.year()) * 12 + i64::from(a.month()))
}

fn is_nth_match(d: Date, days: &[DayOfWeek], index: WeekIndex) -> bool {
    let hit = |x: Date| days.iter().any(|w| w.weekday() == x.weekday());
    if !hit(d) {
        return false;
    }
    let in_month: Vec<Date> = (1..=d.days_in_month())
        .map(|n| Date::new(d.year(), d.month(), n).unwrap())
        .filter(|x| hit(*x))
        .collect();
    let position = in_month.iter().position(|x| *x == d).unwrap();
    match index {
        WeekIndex::First => position == 0,
        WeekIndex::Second => position == 1,
        WeekIndex::Third => position == 2,
        WeekIndex::Fourth => position == 3,
        WeekIndex::Last => position == in_month.len() - 1,
    }
}

fn matches_pattern(r: &Recurrence, d: Date) -> bool {
    let s = r.range.start;
    let every = |n: i64, interval: u32| n % i64::from(interval) == 0;
    match &r.pattern {
        Pattern::Daily { interval } => every(i64::from(s.until(d).unwrap().get_days()), *interval),
        Pattern::Weekly {
            interval,
            days,
            first_day_of_week,
        } => {
            days.iter().any(|w| w.weekday() == d.weekday())
                && every(weeks_apart(s, d, *first_day_of_week), *interval)
        }
        Pattern::AbsoluteMonthly {
            interval,
            day_of_month,
        } => {
            d.day() == (*day_of_month as i8).min(d.days_in_month())
                && every(months_apart(s, d), *interval)
        }
        Pattern::AbsoluteYearly {
            interval,
            month,
            day_of_month,
        } => {
            d.month() == *month as i8
                && d.day() == (*day_of_month as i8).min(d.days_in_month())
                && every(i64::from(d.year() - s.year()), *interval)
        }
        Pattern::RelativeMonthly {
            interval,
            days,
            index,
        } => is_nth_match(d, days, *index) && every(months_apart(s, d), *interval),
        Pattern::RelativeYearly {
            interval,
            month,
            days,
            index,
        } => {
            d.month() == *month as i8
                && is_nth_match(d, days, *index)
                && every(i64::from(d.year() - s.year()), *interval)
        }
    }
}

fn naive(r: &Recurrence, from: Date, to: Date) -> Vec<Date> {
    let mut out = Vec::new();
    let mut count = 0u32;
    let mut d = r.range.start;
    while d <= to {
        match r.range.end {
            RangeEnd::Date(end) if d > end => break,
            RangeEnd::Count(n) if count >= n => break,
            _ => {}
        }
        if matches_pattern(r, d) {
            count += 1;
            if d >= from {
                out.push(d);
            }
        }
        d = d.tomorrow().unwrap();
    }
    out
}

fn day_of_week() -> impl Strategy<Value = DayOfWeek> + Clone {
    (0usize..7).prop_map(|i| DayOfWeek::ALL[i])
}

fn week_index() -> impl Strategy<Value = WeekIndex> {
    prop_oneof![
        Just(WeekIndex::First),
        Just(WeekIndex::Second),
        Just(WeekIndex::Third),
        Just(WeekIndex::Fourth),
        Just(WeekIndex::Last)
    ]
}

fn pattern() -> impl Strategy<Value = Pattern> {
    let days = prop::collection::vec(day_of_week(), 1..4);
    prop_oneof![
        (1u32..10).prop_map(|interval| Pattern::Daily { interval }),
        (1u32..4, days.clone(), day_of_week()).prop_map(|(interval, days, first_day_of_week)| {
            Pattern::Weekly {
                interval,
                days,
                first_day_of_week,
            }
        }),
        (1u32..5, 1u8..=31).prop_map(|(interval, day_of_month)| Pattern::AbsoluteMonthly {
            interval,
            day_of_month
        }),
        (1u32..5, days.clone(), week_index()).prop_map(|(interval, days, index)| {
            Pattern::RelativeMonthly {
                interval,
                days,
                index,
            }
        }),
        (1u32..3, 1u8..=12, 1u8..=28).prop_map(|(interval, month, day_of_month)| {
            Pattern::AbsoluteYearly {
                interval,
                month,
                day_of_month,
            }
        }),
        (1u32..3, 1u8..=12, days, week_index()).prop_map(|(interval, month, days, index)| {
            Pattern::RelativeYearly {
                interval,
                month,
                days,
                index,
            }
        }),
    ]
}

fn range_end() -> impl Strategy<Value = RangeEnd> {
    prop_oneof![
        Just(RangeEnd::Never),
        (1u32..60).prop_map(RangeEnd::Count),
        (0i64..1500)
            .prop_map(|days| RangeEnd::Date(date(2020, 1, 1).checked_add(days.days()).unwrap())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn expansion_agrees_with_walking_every_day(
        pattern in pattern(),
        end in range_end(),
        start_offset in 0i64..400,
        from_offset in 0i64..1200,
        length in 0i64..400,
    ) {
        let start = date(2019, 6, 1).checked_add(start_offset.days()).unwrap();
        let mut r = rec(pattern, start, end);
        if let RangeEnd::Date(e) = end && e < start {
            r.range.end = RangeEnd::Date(start);
        }
        let from = date(2019, 1, 1).checked_add(from_offset.days()).unwrap();
        let to = from.checked_add(length.days()).unwrap();
        prop_assert_eq!(occurrence_dates(&r, from, to).unwrap(), naive(&r, from, to));
    }
}
