use super::*;

fn d(y: i16, m: i8, day: i8) -> Date {
    Date::new(y, m, day).unwrap()
}

fn rec(pattern: Pattern, start: Date, end: RangeEnd, zone: &str) -> Recurrence {
    Recurrence {
        pattern,
        range: Range { start, end },
        time_zone: zone.into(),
    }
}

/// What a row shows for `recurrence`: the rendered info and zone, as the entity carries them.
fn entity_of(recurrence: &Recurrence) -> Value {
    let (info, zone) = render(recurrence).unwrap();
    json!({ "Recurrence": info, "PreferredTZLocation": zone })
}

#[test]
fn every_expressible_kind_round_trips() {
    use DayOfWeek::*;
    let cases = [
        rec(
            Pattern::Daily { interval: 3 },
            d(2026, 12, 7),
            RangeEnd::Count(10),
            "Europe/Oslo",
        ),
        rec(
            Pattern::Weekly {
                interval: 1,
                days: vec![Monday, Thursday],
                first_day_of_week: Sunday,
            },
            d(2026, 12, 7),
            RangeEnd::Never,
            "America/New_York",
        ),
        rec(
            Pattern::Weekly {
                interval: 2,
                days: vec![Tuesday, Friday],
                first_day_of_week: Monday,
            },
            d(2026, 12, 8),
            RangeEnd::Date(d(2027, 6, 30)),
            "Europe/Oslo",
        ),
        rec(
            Pattern::AbsoluteMonthly {
                interval: 2,
                day_of_month: 31,
            },
            d(2026, 12, 31),
            RangeEnd::Count(6),
            "Europe/London",
        ),
        rec(
            Pattern::RelativeMonthly {
                interval: 1,
                days: vec![Wednesday],
                index: WeekIndex::Last,
            },
            d(2026, 12, 30),
            RangeEnd::Never,
            "UTC",
        ),
        rec(
            Pattern::AbsoluteYearly {
                interval: 1,
                month: 2,
                day_of_month: 29,
            },
            d(2028, 2, 29),
            RangeEnd::Never,
            "Europe/Oslo",
        ),
        rec(
            Pattern::RelativeYearly {
                interval: 1,
                month: 11,
                days: vec![Thursday],
                index: WeekIndex::Fourth,
            },
            d(2026, 11, 26),
            RangeEnd::Count(3),
            "America/New_York",
        ),
    ];
    for case in cases {
        assert_eq!(read(&entity_of(&case)), Ok(case.clone()), "{case:?}");
    }
}

#[test]
fn weekdays_read_as_weekly_and_are_written_as_weekly() {
    for name in ["EveryWeekday", "EveryWorkday", "2", "1"] {
        let pattern: Value = match name.parse::<u32>() {
            Ok(n) => json!(n),
            Err(_) => json!(name),
        };
        let entity = json!({
            "PreferredTZLocation": 261,
            "Recurrence": {
                "IsRecurrence": true, "Pattern": "Daily",
                "DayPattern": { "Pattern": pattern, "Cycle": 0 },
                "StartDate": "2026-12-05T00:00:00Z", "RecurrenceEndType": "Unknown",
                "EndDate": "0001-01-01T00:00:00", "RecurrenceCounter": 0,
            }
        });
        let r = read(&entity).unwrap();
        assert_eq!(
            r.pattern,
            Pattern::Weekly {
                interval: 1,
                days: MON_FRI.to_vec(),
                first_day_of_week: DayOfWeek::Sunday
            },
            "{name}"
        );
        // Canonical: the range starts on the first occurrence (Saturday 5th -> Monday 7th).
        assert_eq!(r.range.start, d(2026, 12, 7));
        let (info, zone) = render(&r).unwrap();
        assert_eq!(zone, 261);
        assert_eq!(info["Pattern"], "Weekly");
        assert_eq!(
            info["WeekPattern"]["Weekdays"],
            "Monday, Tuesday, Wednesday, Thursday, Friday"
        );
    }
}

#[test]
fn the_range_starts_on_the_first_occurrence_and_ends_are_read() {
    let entity = json!({
        "PreferredTZLocation": 0,
        "Recurrence": {
            "IsRecurrence": true, "Pattern": "Monthly", "RecurrenceId": 7,
            "MonthPattern": { "Pattern": "DayOfMonth", "Cycle": 1, "Day": 15 },
            "StartDate": "2026-12-20T00:00:00+01:00", "RecurrenceEndType": "EndDate",
            "EndDate": "2027-03-31T00:00:00Z", "RecurrenceCounter": 0,
            "Dates": [{ "Date": "2027-01-15T00:00:00Z" }, { "Date": "2027-02-15T00:00:00Z" }],
        }
    });
    let r = read(&entity).unwrap();
    assert_eq!(r.range.start, d(2027, 1, 15));
    assert_eq!(r.range.end, RangeEnd::Date(d(2027, 3, 31)));
    assert_eq!(r.time_zone, BASE_ZONE);
    assert_eq!(rule_of(&entity), Some(7));
    assert_eq!(row_dates(&entity), vec![d(2027, 1, 15), d(2027, 2, 15)]);
}

#[test]
fn what_superoffice_cannot_say_is_refused_with_the_reason() {
    use DayOfWeek::*;
    let start = d(2026, 12, 7);
    let refused = [
        rec(
            Pattern::AbsoluteYearly {
                interval: 2,
                month: 12,
                day_of_month: 7,
            },
            start,
            RangeEnd::Never,
            "Europe/Oslo",
        ),
        rec(
            Pattern::RelativeYearly {
                interval: 3,
                month: 12,
                days: vec![Monday],
                index: WeekIndex::First,
            },
            start,
            RangeEnd::Never,
            "Europe/Oslo",
        ),
        rec(
            Pattern::RelativeMonthly {
                interval: 1,
                days: MON_FRI.to_vec(),
                index: WeekIndex::Last,
            },
            start,
            RangeEnd::Never,
            "Europe/Oslo",
        ),
        rec(
            Pattern::Weekly {
                interval: 2,
                days: vec![Monday, Wednesday],
                first_day_of_week: Sunday,
            },
            start,
            RangeEnd::Never,
            "Europe/Oslo",
        ),
        rec(
            Pattern::Daily { interval: 1 },
            start,
            RangeEnd::Never,
            "Asia/Tokyo",
        ),
    ];
    for case in refused {
        let err = render(&case).unwrap_err();
        assert!(err.contains("SuperOffice cannot express"), "{err}");
    }
    // One day every other week: where the week starts does not matter.
    let one_day = rec(
        Pattern::Weekly {
            interval: 2,
            days: vec![Monday],
            first_day_of_week: Sunday,
        },
        start,
        RangeEnd::Never,
        "Europe/Oslo",
    );
    assert!(render(&one_day).is_ok());
}

#[test]
fn unreadable_rules_say_why() {
    let custom = json!({ "Recurrence": { "IsRecurrence": true, "Pattern": "Custom",
        "StartDate": "2026-12-07T00:00:00" } });
    assert!(read(&custom).unwrap_err().contains("Custom"));
    let zone = json!({ "PreferredTZLocation": 999, "Recurrence": { "IsRecurrence": true,
        "Pattern": "Daily", "DayPattern": { "Pattern": "EveryCyclicDay", "Cycle": 1 },
        "StartDate": "2026-12-07T00:00:00" } });
    assert!(read(&zone).unwrap_err().contains("999"));
    assert_eq!(rule_of(&json!({ "Recurrence": null })), None);
    assert_eq!(
        rule_of(&json!({ "Recurrence": { "IsRecurrence": false, "RecurrenceId": 3 } })),
        None
    );
}

#[test]
fn zones_map_both_ways() {
    assert_eq!(zone_id("Europe/Oslo"), Some(261));
    assert_eq!(zone_id("America/New_York"), Some(460));
    assert_eq!(zone_name(460), Some("America/New_York"));
    assert_eq!(zone_name(0), Some(BASE_ZONE));
    assert_eq!(zone_id("Mars/Olympus"), None);
}
