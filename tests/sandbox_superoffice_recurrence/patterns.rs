//! Each pattern kind, a never-ending series as the clock moves, DST.

use std::time::Duration;

use serde_json::json;

use crate::{MONDAY, create, days, meeting, rows, rule_of, so_at, weekly};

#[tokio::test(flavor = "multi_thread")]
async fn each_pattern_kind_gives_its_rows() {
    let so = so_at(MONDAY).await;
    let cases = [
        (
            json!({"IsRecurrence": true, "Pattern": "Daily", "RecurrenceEndType": "Counter",
                   "RecurrenceCounter": 4, "DayPattern": {"Pattern": "EveryCyclicDay", "Cycle": 2}}),
            vec!["2026-01-05", "2026-01-07", "2026-01-09", "2026-01-11"],
        ),
        (
            json!({"IsRecurrence": true, "Pattern": "Daily", "RecurrenceEndType": "EndDate",
                   "EndDate": "2026-01-13T00:00:00", "DayPattern": {"Pattern": "EveryWeekday"}}),
            vec![
                "2026-01-05",
                "2026-01-06",
                "2026-01-07",
                "2026-01-08",
                "2026-01-09",
                "2026-01-12",
                "2026-01-13",
            ],
        ),
        (
            weekly(
                "Monday, Thursday",
                2,
                json!({"RecurrenceEndType": "Counter", "RecurrenceCounter": 5}),
            ),
            vec![
                "2026-01-05",
                "2026-01-08",
                "2026-01-19",
                "2026-01-22",
                "2026-02-02",
            ],
        ),
        (
            json!({"IsRecurrence": true, "Pattern": "Monthly", "RecurrenceEndType": "Counter",
                   "RecurrenceCounter": 4, "MonthPattern": {"Pattern": "DayOfMonth", "Day": 31, "Cycle": 1}}),
            vec!["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"],
        ),
        (
            json!({"IsRecurrence": true, "Pattern": "Monthly", "RecurrenceEndType": "Counter",
                   "RecurrenceCounter": 3, "MonthPattern": {"Pattern": "WeekdayOfMonth",
                   "Weekday": "Tuesday", "WeekOfMonth": "Second", "Cycle": 2}}),
            vec!["2026-01-13", "2026-03-10", "2026-05-12"],
        ),
        (
            json!({"IsRecurrence": true, "Pattern": "Monthly", "RecurrenceEndType": "Counter",
                   "RecurrenceCounter": 2, "MonthPattern": {"Pattern": "WeekdayOfMonth",
                   "Weekday": "Friday", "WeekOfMonth": "Last", "Cycle": 1}}),
            vec!["2026-01-30", "2026-02-27"],
        ),
        (
            json!({"IsRecurrence": true, "Pattern": "Yearly", "RecurrenceEndType": "Counter",
                   "RecurrenceCounter": 3, "YearPattern": {"Pattern": "DayOfMonth", "Day": 15, "Cycle": 3}}),
            // Rows exist up to a year ahead of the clock (the expansion's unit tests go further).
            vec!["2026-03-15"],
        ),
        (
            json!({"IsRecurrence": true, "Pattern": "Yearly", "RecurrenceEndType": "Counter",
                   "RecurrenceCounter": 2, "YearPattern": {"Pattern": "WeekdayOfMonth",
                   "Weekday": "Thursday", "WeekOfMonth": "Fourth", "Cycle": 11}}),
            vec!["2026-11-26"],
        ),
    ];
    for (recurrence, expected) in cases {
        let body = meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            recurrence.clone(),
        );
        let first = create(&so, &body).await;
        let rule = rule_of(&first);
        let got = rows(&so, rule, "NO").await;
        assert_eq!(days(&got), expected, "{recurrence}");
        assert_eq!(
            first["AppointmentId"], got[0].0,
            "the answer is the first row"
        );
        for (id, start) in &got {
            assert_eq!(&start[11..16], "09:00", "{recurrence}: {start}");
            let one = so.get(&format!("Appointment/{id}")).await;
            assert_eq!(one.status, 200);
            assert_eq!(rule_of(&one.body), rule);
            assert_eq!(one.body["Title"], "Team meeting");
        }
        let dates: Vec<&str> = first["Recurrence"]["Dates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["Date"].as_str().unwrap()[..10])
            .collect();
        assert_eq!(dates, expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_never_ending_weekly_series_grows_as_the_clock_moves() {
    let so = so_at(MONDAY).await;
    let recurrence = weekly("Monday", 1, json!({}));
    let first = create(
        &so,
        &meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            recurrence,
        ),
    )
    .await;
    assert_eq!(first["Recurrence"]["RecurrenceEndType"], "Unknown");
    let rule = rule_of(&first);
    let initial = rows(&so, rule, "NO").await;
    // Up to a year ahead of the clock, never further.
    assert_eq!(initial.len(), 53);
    assert_eq!(days(&initial).last(), Some(&"2027-01-04"));
    let log_before = so.sandbox.state().superoffice.travel_log().len();

    so.sandbox
        .state()
        .clock
        .advance(Duration::from_secs(28 * 86_400));
    let mut so = so;
    so.ticket = so.authenticate().await;
    let later = rows(&so, rule, "NO").await;
    assert_eq!(later.len(), 57);
    assert_eq!(days(&later).last(), Some(&"2027-02-01"));
    assert_eq!(later[..53], initial[..]);
    let inserts: Vec<u32> = so.sandbox.state().superoffice.travel_log()[log_before..]
        .iter()
        .filter(|r| r.kind == 4352 && r.table == 9)
        .map(|r| r.record_id)
        .collect();
    assert_eq!(inserts, later[53..].iter().map(|r| r.0).collect::<Vec<_>>());
    // Registered by the series' creator, as if by the housekeeping on its behalf.
    let created = so.get(&format!("Appointment/{}", later[56].0)).await.body;
    assert_eq!(
        created["CreatedBy"]["AssociateId"],
        first["CreatedBy"]["AssociateId"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn occurrences_keep_their_local_time_across_dst_in_oslo_and_new_york() {
    let so = so_at(MONDAY).await;
    let recurrence = weekly(
        "Wednesday",
        1,
        json!({"RecurrenceEndType": "EndDate", "EndDate": "2026-11-11"}),
    );
    // Oslo (the tenant's base zone): summer time from 29 March to 25 October.
    let oslo = create(
        &so,
        &meeting(
            "2026-01-07T09:00:00+01:00",
            "2026-01-07T10:00:00+01:00",
            recurrence.clone(),
        ),
    )
    .await;
    // New York through PreferredTZLocation: summer time from 8 March to 1 November.
    let mut ny_body = meeting(
        "2026-01-07T09:00:00-05:00",
        "2026-01-07T10:00:00-05:00",
        recurrence,
    );
    ny_body["PreferredTZLocation"] = json!(460);
    let ny = create(&so, &ny_body).await;
    assert_eq!(ny["PreferredTZLocation"], 460);
    for (entity, zone, winter, summer) in [
        (&oslo, "NO", "08:00", "07:00"),
        (&ny, "US-NY", "14:00", "13:00"),
    ] {
        let local = rows(&so, rule_of(entity), zone).await;
        assert_eq!(local.len(), 45);
        assert!(
            local.iter().all(|(_, s)| &s[11..16] == "09:00"),
            "{zone}: {local:?}"
        );
        let utc = rows(&so, rule_of(entity), "UTC").await;
        let hours: Vec<&str> = utc.iter().map(|(_, s)| &s[11..16]).collect();
        assert!(
            hours.contains(&winter) && hours.contains(&summer),
            "{zone}: {hours:?}"
        );
        assert_eq!(hours[0], winter);
        assert_eq!(*hours.last().unwrap(), winter);
    }
}
