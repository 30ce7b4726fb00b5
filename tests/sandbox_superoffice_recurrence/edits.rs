//! Exceptions, cancellations, a changed end, and a user acting on a series.

use reqwest::Method;
use serde_json::json;

use crate::{MONDAY, create, days, meeting, rows, rule_of, so_at, weekly};

#[tokio::test(flavor = "multi_thread")]
async fn an_occurrence_edited_alone_is_an_exception_and_a_deleted_one_is_cancelled() {
    let so = so_at(MONDAY).await;
    let recurrence = weekly(
        "Monday",
        1,
        json!({"RecurrenceEndType": "Counter", "RecurrenceCounter": 6}),
    );
    let first = create(
        &so,
        &meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            recurrence,
        ),
    )
    .await;
    let rule = rule_of(&first);
    let before = rows(&so, rule, "NO").await;
    let (second, third) = (before[1].0, before[2].0);
    let log_before = so.sandbox.state().superoffice.travel_log().len();

    // Moving one row (a PATCH that does not touch `Recurrence`) touches only that row.
    let moved = so
        .send_json(
            Method::PATCH,
            &format!("Appointment/{second}"),
            &json!([{"op": "replace", "path": "Title", "value": "Moved"},
                    {"op": "replace", "path": "StartDate", "value": "2026-01-13T14:00:00+01:00"},
                    {"op": "replace", "path": "EndDate", "value": "2026-01-13T15:00:00+01:00"}]),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        rule_of(&moved.body),
        rule,
        "an exception stays in its series"
    );
    let log = so.sandbox.state().superoffice.travel_log();
    assert_eq!(
        log.len(),
        log_before + 1,
        "one update row: {:?}",
        &log[log_before..]
    );
    assert_eq!(
        (log[log_before].record_id, log[log_before].kind),
        (second, 4608)
    );

    // Deleting one row cancels that occurrence only.
    let deleted = so
        .send_json(Method::DELETE, &format!("Appointment/{third}"), &json!({}))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let after = rows(&so, rule, "NO").await;
    assert_eq!(
        days(&after),
        [
            "2026-01-05",
            "2026-01-13",
            "2026-01-26",
            "2026-02-02",
            "2026-02-09"
        ]
    );

    // A new end through another row (PUT with a changed rule) keeps the exception and the
    // cancellation, and the other rows keep their ids.
    let mut entity = so.get(&format!("Appointment/{}", before[0].0)).await.body;
    entity["Recurrence"]["RecurrenceEndType"] = json!("Counter");
    entity["Recurrence"]["RecurrenceCounter"] = json!(8);
    let put = so
        .send_json(
            Method::PUT,
            &format!("Appointment/{}", before[0].0),
            &entity,
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let extended = rows(&so, rule, "NO").await;
    assert_eq!(
        days(&extended),
        [
            "2026-01-05",
            "2026-01-13",
            "2026-01-26",
            "2026-02-02",
            "2026-02-09",
            "2026-02-16",
            "2026-02-23"
        ]
    );
    assert_eq!(extended[1], (second, "2026-01-13T14:00:00".to_string()));
    assert_eq!(
        so.get(&format!("Appointment/{second}")).await.body["Title"],
        "Moved"
    );
    assert_eq!(
        &extended[..5].iter().map(|r| r.0).collect::<Vec<_>>()[..],
        &after.iter().map(|r| r.0).collect::<Vec<_>>()[..]
    );
    let gone = so.get(&format!("Appointment/{third}")).await;
    assert_eq!(gone.status, 404, "a cancelled date is not given again");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_earlier_end_deletes_the_rows_past_it_and_logs_each() {
    let so = so_at(MONDAY).await;
    let recurrence = weekly(
        "Monday",
        1,
        json!({"RecurrenceEndType": "EndDate", "EndDate": "2026-03-02"}),
    );
    let first = create(
        &so,
        &meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            recurrence,
        ),
    )
    .await;
    let rule = rule_of(&first);
    let before = rows(&so, rule, "NO").await;
    assert_eq!(before.len(), 9);
    let log_before = so.sandbox.state().superoffice.travel_log().len();
    let mut entity = first.clone();
    // A date of the rule is a date: no zone shifts it.
    entity["Recurrence"]["EndDate"] = json!("2026-01-26");
    let put = so
        .send_json(
            Method::PUT,
            &format!("Appointment/{}", before[0].0),
            &entity,
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(
        put.body["Recurrence"]["EndDate"],
        "2026-01-26T00:00:00+00:00"
    );
    let after = rows(&so, rule, "NO").await;
    assert_eq!(
        days(&after),
        ["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26"]
    );
    let deletes: Vec<u32> = so.sandbox.state().superoffice.travel_log()[log_before..]
        .iter()
        .filter(|r| r.kind == 4864)
        .map(|r| r.record_id)
        .collect();
    assert_eq!(deletes, before[4..].iter().map(|r| r.0).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_creates_a_series_edits_and_deletes_occurrences_and_changes_its_end() {
    let so = so_at(MONDAY).await;
    let created = so
        .control(
            Method::POST,
            "/series",
            Some(json!({
                "appointment": {
                    "associate_id": 102,
                    "title": "Stand-up",
                    "when": {"kind": "timed", "start": "2026-01-06T08:00:00Z",
                             "end": "2026-01-06T08:15:00Z", "time_zone": "Europe/Oslo"},
                },
                "recurrence": {"IsRecurrence": true, "Pattern": "Weekly",
                               "WeekPattern": {"Weekdays": "Tuesday", "Cycle": 1},
                               "RecurrenceEndType": "Counter", "RecurrenceCounter": 4},
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let ids: Vec<u64> = created.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["AppointmentId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let rule = rule_of(&created.body["rows"][0]);
    let edited = so
        .control(
            Method::PATCH,
            &format!("/appointments/{}", ids[1]),
            Some(json!({"title": "Moved stand-up"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let deleted = so
        .control(Method::DELETE, &format!("/appointments/{}", ids[2]), None)
        .await;
    assert_eq!(deleted.status, 204);
    let ended = so
        .control(
            Method::PUT,
            &format!("/series/{}/end", ids[0]),
            Some(json!({"date": "2026-02-10"})),
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    let titles: Vec<(String, String)> = ended.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["StartDate"].as_str().unwrap()[..10].to_string(),
                r["Title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("2026-01-06", "Stand-up"),
        ("2026-01-13", "Moved stand-up"),
        ("2026-01-27", "Stand-up"),
        ("2026-02-03", "Stand-up"),
        ("2026-02-10", "Stand-up"),
    ];
    assert_eq!(
        titles,
        expected.map(|(d, t)| (d.to_string(), t.to_string()))
    );
    // The API sees the same rows.
    assert_eq!(rows(&so, rule, "UTC").await.len(), 5);
    let never = so
        .control(
            Method::PUT,
            &format!("/series/{}/end", ids[0]),
            Some(json!("never")),
        )
        .await;
    assert_eq!(never.status, 200, "{}", never.body);
    assert_eq!(never.body["rows"].as_array().unwrap().len(), 52);
    let not_series = so
        .control(Method::PUT, "/series/2000001/end", Some(json!("never")))
        .await;
    assert_eq!(not_series.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_on_a_plain_appointment_makes_a_series_and_is_recurrence_false_takes_a_row_out() {
    let so = so_at(MONDAY).await;
    let plain = create(
        &so,
        &meeting(
            "2026-01-06T09:00:00+01:00",
            "2026-01-06T10:00:00+01:00",
            serde_json::Value::Null,
        ),
    )
    .await;
    let id = plain["AppointmentId"].as_u64().unwrap();
    let mut entity = plain.clone();
    entity["Recurrence"] = weekly(
        "Tuesday",
        1,
        json!({"RecurrenceEndType": "Counter", "RecurrenceCounter": 3}),
    );
    let put = so
        .send_json(Method::PUT, &format!("Appointment/{id}"), &entity)
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let rule = rule_of(&put.body);
    let series = rows(&so, rule, "NO").await;
    assert_eq!(days(&series), ["2026-01-06", "2026-01-13", "2026-01-20"]);
    assert_eq!(
        u64::from(series[0].0),
        id,
        "the appointment is the first row"
    );

    // IsRecurrence false on the middle row: it stays, outside the series.
    let middle = series[1].0;
    let mut row = so.get(&format!("Appointment/{middle}")).await.body;
    row["Recurrence"]["IsRecurrence"] = json!(false);
    let out = so
        .send_json(Method::PUT, &format!("Appointment/{middle}"), &row)
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.body["Recurrence"], serde_json::Value::Null);
    assert_eq!(&out.body["StartDate"].as_str().unwrap()[..10], "2026-01-13");
    assert_eq!(
        days(&rows(&so, rule, "NO").await),
        ["2026-01-06", "2026-01-20"]
    );
    // A longer series does not give the taken-out date again.
    let ended = so
        .control(
            Method::PUT,
            &format!("/series/{id}/end"),
            Some(json!({"count": 4})),
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(
        days(&rows(&so, rule, "NO").await),
        ["2026-01-06", "2026-01-20", "2026-01-27"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_every_row_ends_a_never_ending_series() {
    let mut so = so_at(MONDAY).await;
    let yearly = json!({"IsRecurrence": true, "Pattern": "Yearly",
                        "YearPattern": {"Pattern": "DayOfMonth", "Day": 15, "Cycle": 3}});
    let first = create(
        &so,
        &meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            yearly,
        ),
    )
    .await;
    let rule = rule_of(&first);
    let only = rows(&so, rule, "NO").await;
    assert_eq!(days(&only), ["2026-03-15"]);
    let deleted = so
        .send_json(
            Method::DELETE,
            &format!("Appointment/{}", only[0].0),
            &json!({}),
        )
        .await;
    assert_eq!(deleted.status, 204);
    // A year later housekeeping has run, and the deleted series did not come back.
    so.sandbox
        .state()
        .clock
        .advance(std::time::Duration::from_secs(400 * 86_400));
    so.ticket = so.authenticate().await;
    assert!(rows(&so, rule, "NO").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_with_the_rule_saves_the_whole_series_and_one_without_it_that_row_alone() {
    let so = so_at(MONDAY).await;
    let recurrence = weekly(
        "Monday",
        1,
        json!({"RecurrenceEndType": "Counter", "RecurrenceCounter": 4}),
    );
    let first = create(
        &so,
        &meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            recurrence,
        ),
    )
    .await;
    let rule = rule_of(&first);
    let before = rows(&so, rule, "NO").await;
    let title = |id: u32| {
        let so = &so;
        async move {
            so.get(&format!("Appointment/{id}")).await.body["Title"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };

    // PUT without `Recurrence` (null): that row alone, an exception.
    let mut alone = so.get(&format!("Appointment/{}", before[1].0)).await.body;
    alone["Title"] = json!("Only this one");
    alone["Recurrence"] = serde_json::Value::Null;
    let put = so
        .send_json(Method::PUT, &format!("Appointment/{}", before[1].0), &alone)
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(rule_of(&put.body), rule, "it stays in its series");

    // PUT with the rule as it is (IsRecurrence true): the whole series takes the content;
    // the exception keeps its own.
    let mut whole = so.get(&format!("Appointment/{}", before[2].0)).await.body;
    whole["Title"] = json!("Renamed series");
    let put = so
        .send_json(Method::PUT, &format!("Appointment/{}", before[2].0), &whole)
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(title(before[0].0).await, "Renamed series");
    assert_eq!(title(before[1].0).await, "Only this one");
    assert_eq!(title(before[2].0).await, "Renamed series");
    assert_eq!(title(before[3].0).await, "Renamed series");

    // PATCH touching `Recurrence`: the whole series too.
    let patch = so
        .send_json(
            Method::PATCH,
            &format!("Appointment/{}", before[3].0),
            &json!([{"op": "replace", "path": "Title", "value": "Patched series"},
                    {"op": "replace", "path": "Recurrence/IsRecurrence", "value": true}]),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.body);
    assert_eq!(title(before[0].0).await, "Patched series");
    assert_eq!(title(before[1].0).await, "Only this one");
    assert_eq!(rows(&so, rule, "NO").await.len(), 4);
}
