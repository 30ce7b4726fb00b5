use jiff::civil::{Date, DateTime, date};
use jiff::{SignedDuration, Timestamp};

use super::*;
use DayOfWeek::*;

fn rec(pattern: Pattern, start: Date, end: RangeEnd, zone: &str) -> Recurrence {
    Recurrence {
        pattern,
        range: Range { start, end },
        time_zone: zone.into(),
    }
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn dates(r: &Recurrence, from: Date, to: Date) -> Vec<Date> {
    occurrence_dates(r, from, to).unwrap()
}

fn weekly(days: &[DayOfWeek], interval: u32, first_day_of_week: DayOfWeek) -> Pattern {
    Pattern::Weekly {
        interval,
        days: days.to_vec(),
        first_day_of_week,
    }
}

/// Each occurrence's start as local wall time and as UTC.
fn local_and_utc(r: &Recurrence, occurrences: &[Occurrence]) -> Vec<(String, String)> {
    let tz = r.zone().unwrap();
    occurrences
        .iter()
        .map(|o| {
            (
                o.start.to_zoned(tz.clone()).datetime().to_string(),
                o.start.to_string(),
            )
        })
        .collect()
}

#[test]
fn the_documented_weekly_lunch_falls_on_every_monday_until_its_end_date() {
    // event-recurring-request.json: weekly on Monday, 2017-09-04 to 2017-12-31, 12:00-14:00.
    let r = rec(
        weekly(&[Monday], 1, Sunday),
        date(2017, 9, 4),
        RangeEnd::Date(date(2017, 12, 31)),
        "America/Los_Angeles",
    );
    let all = occurrences(
        date(2017, 9, 4).at(12, 0, 0, 0),
        SignedDuration::from_hours(2),
        &r,
        ts("2017-01-01T00:00:00Z"),
        ts("2018-06-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(all.len(), 17);
    assert_eq!(all[0].start, ts("2017-09-04T19:00:00Z"));
    assert_eq!(all[0].end, ts("2017-09-04T21:00:00Z"));
    // After the change to PST on 2017-11-05 the same 12:00 is an hour later in UTC.
    assert_eq!(all[16].start, ts("2017-12-25T20:00:00Z"));
    assert!(all.iter().all(|o| o.original_start == o.start));
}

#[test]
fn a_weekly_meeting_in_oslo_stays_at_nine_across_both_changes() {
    let r = rec(
        weekly(&[Thursday], 1, Monday),
        date(2024, 3, 21),
        RangeEnd::Never,
        "Europe/Oslo",
    );
    let got = occurrences(
        date(2024, 3, 21).at(9, 0, 0, 0),
        SignedDuration::from_mins(30),
        &r,
        ts("2024-03-20T00:00:00Z"),
        ts("2024-11-08T00:00:00Z"),
    )
    .unwrap();
    let shown = local_and_utc(&r, &got);
    assert!(shown.iter().all(|(local, _)| local.ends_with("T09:00:00")));
    // CET before 2024-03-31, CEST until 2024-10-27, CET after.
    assert_eq!(shown[0].1, "2024-03-21T08:00:00Z");
    assert_eq!(shown[1].1, "2024-03-28T08:00:00Z");
    assert_eq!(shown[2].1, "2024-04-04T07:00:00Z");
    let oct24 = shown
        .iter()
        .find(|(l, _)| l.starts_with("2024-10-24"))
        .unwrap();
    let oct31 = shown
        .iter()
        .find(|(l, _)| l.starts_with("2024-10-31"))
        .unwrap();
    assert_eq!(oct24.1, "2024-10-24T07:00:00Z");
    assert_eq!(oct31.1, "2024-10-31T08:00:00Z");
    assert_eq!(got.len(), 34);
}

#[test]
fn a_weekly_meeting_in_new_york_stays_at_nine_across_both_changes() {
    let r = rec(
        weekly(&[Monday, Friday], 1, Sunday),
        date(2024, 3, 1),
        RangeEnd::Date(date(2024, 11, 30)),
        "America/New_York",
    );
    let got = occurrences(
        date(2024, 3, 1).at(9, 0, 0, 0),
        SignedDuration::from_hours(1),
        &r,
        ts("2024-01-01T00:00:00Z"),
        ts("2025-01-01T00:00:00Z"),
    )
    .unwrap();
    let shown = local_and_utc(&r, &got);
    assert!(shown.iter().all(|(local, _)| local.ends_with("T09:00:00")));
    let utc_of = |day: &str| {
        shown
            .iter()
            .find(|(l, _)| l.starts_with(day))
            .map(|(_, u)| u.clone())
            .unwrap()
    };
    // EST until 2024-03-10, EDT until 2024-11-03, EST after.
    assert_eq!(utc_of("2024-03-08"), "2024-03-08T14:00:00Z");
    assert_eq!(utc_of("2024-03-11"), "2024-03-11T13:00:00Z");
    assert_eq!(utc_of("2024-11-01"), "2024-11-01T13:00:00Z");
    assert_eq!(utc_of("2024-11-04"), "2024-11-04T14:00:00Z");
    assert_eq!(shown.last().unwrap().0, "2024-11-29T09:00:00");
}

#[test]
fn a_time_the_spring_change_skips_moves_forward_and_a_repeated_one_is_the_first() {
    let r = rec(
        Pattern::Daily { interval: 1 },
        date(2024, 3, 9),
        RangeEnd::Count(3),
        "America/New_York",
    );
    let got = occurrences(
        date(2024, 3, 9).at(2, 30, 0, 0),
        SignedDuration::from_mins(15),
        &r,
        ts("2024-03-01T00:00:00Z"),
        ts("2024-04-01T00:00:00Z"),
    )
    .unwrap();
    let shown: Vec<_> = local_and_utc(&r, &got)
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        shown,
        [
            "2024-03-09T02:30:00",
            "2024-03-10T03:30:00",
            "2024-03-11T02:30:00"
        ]
    );
    let r = rec(
        Pattern::Daily { interval: 1 },
        date(2024, 11, 3),
        RangeEnd::Count(1),
        "America/New_York",
    );
    let got = occurrences(
        date(2024, 11, 3).at(1, 30, 0, 0),
        SignedDuration::from_mins(15),
        &r,
        ts("2024-11-01T00:00:00Z"),
        ts("2024-11-05T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(got[0].start, ts("2024-11-03T05:30:00Z"));
}

#[test]
fn day_31_falls_on_the_last_day_of_shorter_months() {
    let r = rec(
        Pattern::AbsoluteMonthly {
            interval: 1,
            day_of_month: 31,
        },
        date(2024, 1, 31),
        RangeEnd::Never,
        "UTC",
    );
    assert_eq!(
        dates(&r, date(2024, 1, 1), date(2024, 6, 30)),
        [
            date(2024, 1, 31),
            date(2024, 2, 29),
            date(2024, 3, 31),
            date(2024, 4, 30),
            date(2024, 5, 31),
            date(2024, 6, 30)
        ]
    );
}

#[test]
fn february_29_yearly_falls_on_the_28th_in_common_years() {
    let r = rec(
        Pattern::AbsoluteYearly {
            interval: 1,
            month: 2,
            day_of_month: 29,
        },
        date(2024, 2, 29),
        RangeEnd::Count(5),
        "Europe/Oslo",
    );
    assert_eq!(
        dates(&r, date(2020, 1, 1), date(2040, 1, 1)),
        [
            date(2024, 2, 29),
            date(2025, 2, 28),
            date(2026, 2, 28),
            date(2027, 2, 28),
            date(2028, 2, 29)
        ]
    );
}

#[test]
fn relative_patterns_pick_the_nth_matching_day() {
    let last_weekday = rec(
        Pattern::RelativeMonthly {
            interval: 1,
            days: vec![Monday, Tuesday, Wednesday, Thursday, Friday],
            index: WeekIndex::Last,
        },
        date(2024, 3, 1),
        RangeEnd::Count(4),
        "UTC",
    );
    assert_eq!(
        dates(&last_weekday, date(2024, 1, 1), date(2025, 1, 1)),
        [
            date(2024, 3, 29),
            date(2024, 4, 30),
            date(2024, 5, 31),
            date(2024, 6, 28)
        ]
    );
    let second_thursday_quarterly = rec(
        Pattern::RelativeMonthly {
            interval: 3,
            days: vec![Thursday],
            index: WeekIndex::Second,
        },
        date(2024, 1, 20),
        RangeEnd::Date(date(2024, 12, 31)),
        "UTC",
    );
    // January's second Thursday (the 11th) is before the start.
    assert_eq!(
        dates(
            &second_thursday_quarterly,
            date(2024, 1, 1),
            date(2025, 6, 1)
        ),
        [date(2024, 4, 11), date(2024, 7, 11), date(2024, 10, 10)]
    );
    let thanksgiving = rec(
        Pattern::RelativeYearly {
            interval: 1,
            month: 11,
            days: vec![Thursday],
            index: WeekIndex::Fourth,
        },
        date(2024, 1, 1),
        RangeEnd::Never,
        "America/New_York",
    );
    assert_eq!(
        dates(&thanksgiving, date(2024, 1, 1), date(2026, 12, 31)),
        [date(2024, 11, 28), date(2025, 11, 27), date(2026, 11, 26)]
    );
}

#[test]
fn the_first_day_of_the_week_decides_which_weeks_an_interval_skips() {
    let every_other = |fdow| {
        rec(
            weekly(&[Wednesday, Monday], 2, fdow),
            date(2024, 1, 3),
            RangeEnd::Never,
            "UTC",
        )
    };
    assert_eq!(
        dates(&every_other(Sunday), date(2024, 1, 1), date(2024, 1, 24)),
        [date(2024, 1, 3), date(2024, 1, 15), date(2024, 1, 17)]
    );
    assert_eq!(
        dates(&every_other(Wednesday), date(2024, 1, 1), date(2024, 1, 24)),
        [
            date(2024, 1, 3),
            date(2024, 1, 8),
            date(2024, 1, 17),
            date(2024, 1, 22)
        ]
    );
}

#[test]
fn a_numbered_series_started_twenty_years_ago_ends_where_its_count_says() {
    // 7305 days from 2005-01-01 end on 2024-12-31; the periods before the window are counted,
    // not walked.
    let r = rec(
        Pattern::Daily { interval: 1 },
        date(2005, 1, 1),
        RangeEnd::Count(7305),
        "Europe/Oslo",
    );
    assert_eq!(
        dates(&r, date(2024, 12, 30), date(2025, 1, 3)),
        [date(2024, 12, 30), date(2024, 12, 31)]
    );
    let weekly_count = rec(
        weekly(&[Tuesday, Thursday], 1, Sunday),
        date(2005, 1, 6),
        RangeEnd::Count(3),
        "UTC",
    );
    // Thursday 6th, Tuesday 11th, Thursday 13th: the first week holds only the Thursday.
    assert_eq!(
        dates(&weekly_count, date(2005, 1, 12), date(2005, 2, 1)),
        [date(2005, 1, 13)]
    );
}

#[test]
fn a_never_ending_series_is_expanded_only_inside_the_window() {
    let r = rec(
        Pattern::Daily { interval: 1 },
        date(2000, 1, 1),
        RangeEnd::Never,
        "Europe/Oslo",
    );
    let got = occurrences(
        date(2000, 1, 1).at(9, 0, 0, 0),
        SignedDuration::from_hours(1),
        &r,
        ts("2030-06-01T00:00:00Z"),
        ts("2030-06-08T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(got.len(), 7);
    assert_eq!(got[0].start, ts("2030-06-01T07:00:00Z"));
}

#[test]
fn an_occurrence_reaching_into_the_window_counts_and_one_ending_at_its_start_does_not() {
    let r = rec(
        Pattern::Daily { interval: 1 },
        date(2024, 5, 1),
        RangeEnd::Never,
        "UTC",
    );
    let count = |start: &str, end: &str| {
        occurrences(
            date(2024, 5, 1).at(22, 0, 0, 0),
            SignedDuration::from_hours(4),
            &r,
            ts(start),
            ts(end),
        )
        .unwrap()
        .len()
    };
    // May 1st's occurrence runs 22:00 to 02:00.
    assert_eq!(count("2024-05-02T01:00:00Z", "2024-05-02T12:00:00Z"), 1);
    assert_eq!(count("2024-05-02T02:00:00Z", "2024-05-02T12:00:00Z"), 0);
    assert_eq!(count("2024-05-02T02:00:00Z", "2024-05-02T22:00:01Z"), 1);
    assert_eq!(count("2024-05-03T00:00:00Z", "2024-05-03T00:00:00Z"), 0);
}

#[test]
fn what_cannot_be_expanded_is_refused_with_its_reason() {
    let base = |pattern| rec(pattern, date(2024, 1, 1), RangeEnd::Never, "Europe/Oslo");
    let err = |r: Recurrence| r.validate().unwrap_err();
    assert_eq!(
        err(base(Pattern::Daily { interval: 0 })),
        RecurrenceError::Interval(0)
    );
    assert!(matches!(
        err(base(weekly(&[], 1, Sunday))),
        RecurrenceError::NoDays(_)
    ));
    assert_eq!(
        err(base(Pattern::AbsoluteYearly {
            interval: 1,
            month: 2,
            day_of_month: 30
        })),
        RecurrenceError::NoSuchDay { month: 2, day: 30 }
    );
    assert_eq!(
        err(base(Pattern::AbsoluteMonthly {
            interval: 1,
            day_of_month: 32
        })),
        RecurrenceError::DayOfMonth(32)
    );
    let mut r = base(Pattern::Daily { interval: 1 });
    r.range.end = RangeEnd::Count(0);
    assert_eq!(err(r.clone()), RecurrenceError::NoOccurrences);
    r.range.end = RangeEnd::Date(date(2023, 12, 31));
    assert!(matches!(
        err(r.clone()),
        RecurrenceError::EndsBeforeStart { .. }
    ));
    r.range.end = RangeEnd::Never;
    r.time_zone = "Pacific Standard Time".into();
    assert!(matches!(err(r), RecurrenceError::TimeZone(_)));
}

#[test]
fn a_recurrence_survives_postcard_and_json() {
    let r = rec(
        Pattern::RelativeYearly {
            interval: 2,
            month: 11,
            days: vec![Thursday, Friday],
            index: WeekIndex::Last,
        },
        date(2024, 1, 1),
        RangeEnd::Date(date(2030, 1, 1)),
        "America/New_York",
    );
    let bytes = postcard::to_stdvec(&r).unwrap();
    assert_eq!(postcard::from_bytes::<Recurrence>(&bytes).unwrap(), r);
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<Recurrence>(&json).unwrap(), r);
}

#[test]
fn the_first_start_gives_the_time_and_the_range_the_dates() {
    let r = rec(
        Pattern::Daily { interval: 2 },
        date(2024, 6, 1),
        RangeEnd::Count(2),
        "Europe/Oslo",
    );
    let first: DateTime = date(2024, 6, 1).at(7, 15, 0, 0);
    let got = occurrences(
        first,
        SignedDuration::ZERO,
        &r,
        ts("2024-01-01T00:00:00Z"),
        ts("2025-01-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(
        got.iter().map(|o| o.start).collect::<Vec<_>>(),
        [ts("2024-06-01T05:15:00Z"), ts("2024-06-03T05:15:00Z")]
    );
}
