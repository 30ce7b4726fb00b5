//! The SuperOffice emulator's recurring appointments: a rule plus one row per occurrence,
//! each pattern kind, exceptions, cancellations, a changed end, a never-ending series as the
//! clock moves, DST in Oslo and New York, refused recurrences and the OpenAPI shape.

mod common;

use std::time::Duration;

use common::shape::{assert_same_shape, reference};
use common::superoffice::{So, assert_error, keys, send};
use reqwest::Method;
use serde_json::{Value, json};

/// A Monday, 08:00 in Oslo.
const MONDAY: &str = "2026-01-05T07:00:00Z";

async fn so_at(at: &str) -> So {
    let mut so = So::start().await;
    so.sandbox.state().clock.set(at.parse().unwrap());
    so.ticket = so.authenticate().await;
    so
}

fn meeting(start: &str, end: &str, recurrence: Value) -> Value {
    json!({
        "Associate": {"AssociateId": 102},
        "Task": {"TaskListItemId": 1},
        "Title": "Team meeting",
        "StartDate": start,
        "EndDate": end,
        "Recurrence": recurrence,
    })
}

fn weekly(days: &str, cycle: u32, end: Value) -> Value {
    let mut r = json!({
        "IsRecurrence": true,
        "Pattern": "Weekly",
        "WeekPattern": {"Weekdays": days, "Cycle": cycle},
    });
    if let (Value::Object(r), Value::Object(end)) = (&mut r, end) {
        r.extend(end);
    }
    r
}

async fn create(so: &So, body: &Value) -> Value {
    let answer = so.send_json(Method::POST, "Appointment", body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

fn rule_of(entity: &Value) -> u64 {
    entity["Recurrence"]["RecurrenceId"]
        .as_u64()
        .expect("a recurrence id")
}

/// A GET with `SO-TimeZone` set to `zone` (no offsets: local wall-clock times).
async fn get_in(so: &So, path: &str, zone: &str) -> Value {
    let request = so
        .client
        .get(so.url(path))
        .header("Authorization", format!("SOTicket {}", so.ticket))
        .header("SO-AppToken", &so.app_token)
        .header("SO-TimeZone", zone)
        .header("Accept", "application/json");
    let answer = send(request).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer.body
}

/// The series' rows from the OData list, by date: (id, local start) in `zone`.
async fn rows(so: &So, rule: u64, zone: &str) -> Vec<(u32, String)> {
    let path = format!(
        "Appointment?$select=appointmentId,date,recurring,recurrenceRuleId&$filter=recurrenceRuleId%20eq%20{rule}&$orderby=date&$top=500"
    );
    let body = get_in(so, &path, zone).await;
    let list = body["value"].as_array().cloned().unwrap_or_default();
    for row in &list {
        assert_eq!(row["recurring"], true, "{row}");
        assert_eq!(row["recurrenceRuleId"], rule, "{row}");
    }
    let ids = keys(&list);
    ids.into_iter()
        .zip(
            list.iter()
                .map(|r| r["date"].as_str().unwrap_or_default().to_string()),
        )
        .collect()
}

fn days(rows: &[(u32, String)]) -> Vec<&str> {
    rows.iter().map(|(_, d)| &d[..10]).collect()
}

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

    // Moving one row (PATCH, which carries the rule as it is) touches only that row.
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

#[tokio::test(flavor = "multi_thread")]
async fn invalid_recurrences_are_refused_with_the_error_shape() {
    let so = so_at(MONDAY).await;
    let error_sample = reference("superoffice/error-response.json");
    let bad = [
        json!({"IsRecurrence": true, "Pattern": "Unknown"}),
        json!({"IsRecurrence": true, "Pattern": "Custom"}),
        json!({"IsRecurrence": true, "Pattern": "Sometimes"}),
        json!({"IsRecurrence": true, "Pattern": "Daily"}),
        json!({"IsRecurrence": true, "Pattern": "Daily", "DayPattern": {"Pattern": "EveryCyclicDay", "Cycle": 0}}),
        json!({"IsRecurrence": true, "Pattern": "Weekly", "WeekPattern": {"Weekdays": "", "Cycle": 1}}),
        json!({"IsRecurrence": true, "Pattern": "Weekly", "WeekPattern": {"Weekdays": "Funday", "Cycle": 1}}),
        json!({"IsRecurrence": true, "Pattern": "Monthly", "MonthPattern": {"Pattern": "DayOfMonth", "Day": 32, "Cycle": 1}}),
        json!({"IsRecurrence": true, "Pattern": "Monthly", "MonthPattern": {"Pattern": "WeekdayOfMonth", "Weekday": "Monday", "Cycle": 1}}),
        json!({"IsRecurrence": true, "Pattern": "Yearly", "YearPattern": {"Pattern": "DayOfMonth", "Day": 1, "Cycle": 13}}),
        weekly(
            "Monday",
            1,
            json!({"RecurrenceEndType": "Counter", "RecurrenceCounter": 0}),
        ),
        weekly("Monday", 1, json!({"RecurrenceEndType": "EndDate"})),
        weekly(
            "Monday",
            1,
            json!({"RecurrenceEndType": "EndDate", "EndDate": "2025-12-01"}),
        ),
        json!({"IsRecurrence": true, "Pattern": "Daily", "DayPattern": {"Pattern": "EveryWorkday"}, "StartDate": "1990-01-01"}),
        json!("weekly"),
    ];
    let count_before = so.sandbox.state().superoffice.travel_log().len();
    for recurrence in bad {
        let body = meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            recurrence.clone(),
        );
        let answer = so.send_json(Method::POST, "Appointment", &body).await;
        assert_error(&answer, 400);
        assert_same_shape("error-response.json", &error_sample, &answer.body);
        assert_eq!(
            answer.body["ErrorType"], "SoArgumentException",
            "{recurrence}"
        );
    }
    assert_eq!(
        so.sandbox.state().superoffice.travel_log().len(),
        count_before,
        "nothing written"
    );
    // A PreferredTZLocation the tenant does not know is refused too.
    let mut body = meeting(
        "2026-01-05T09:00:00+01:00",
        "2026-01-05T10:00:00+01:00",
        weekly("Monday", 1, json!({})),
    );
    body["PreferredTZLocation"] = json!(99_999);
    assert_error(&so.send_json(Method::POST, "Appointment", &body).await, 400);
}

/// Checks `value` against an OpenAPI definition: every property present (no others), of the
/// declared type, enum values among the declared ones (a flags enum as "A, B").
fn conforms(defs: &Value, name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let def = &defs[name];
    let (Some(props), Some(object)) = (def["properties"].as_object(), value.as_object()) else {
        out.push(format!("{path}: {value} is not a {name} object"));
        return;
    };
    for key in object.keys() {
        if !props.contains_key(key) {
            out.push(format!("{path}.{key}: not in {name}"));
        }
    }
    for (key, prop) in props {
        let at = format!("{path}.{key}");
        let Some(v) = object.get(key) else {
            out.push(format!("{at}: missing"));
            continue;
        };
        if let Some(reference) = prop["$ref"].as_str() {
            let target = reference.trim_start_matches("#/definitions/");
            if !v.is_null() {
                conforms(defs, target, v, &at, out);
            }
            continue;
        }
        let ok = match prop["type"].as_str() {
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("boolean") => v.is_boolean(),
            Some("string") => match (prop["enum"].as_array(), v.as_str()) {
                (Some(names), Some(s)) => s.split(", ").all(|p| names.contains(&json!(p))),
                (None, Some(s)) => prop["format"] != "date-time" || s.len() >= 19,
                _ => false,
            },
            Some("array") => v.as_array().is_some_and(|items| {
                let item = prop["items"]["$ref"].as_str().unwrap_or_default();
                let target = item.trim_start_matches("#/definitions/");
                items
                    .iter()
                    .enumerate()
                    .for_each(|(i, x)| conforms(defs, target, x, &format!("{at}[{i}]"), out));
                true
            }),
            _ => true,
        };
        if !ok {
            out.push(format!("{at}: {v} does not fit {prop}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_recurrence_json_conforms_to_the_openapi_definitions() {
    let so = so_at(MONDAY).await;
    let swagger = reference("superoffice/Swagger-v1-Appointment.json");
    let defs = &swagger["definitions"];
    let info = "SuperOffice.CRM.Services.RecurrenceInfo";
    assert!(defs[info].is_object(), "the definition exists");
    let bodies = [
        weekly(
            "Monday, Wednesday, Friday",
            1,
            json!({"RecurrenceEndType": "Counter", "RecurrenceCounter": 3}),
        ),
        json!({"IsRecurrence": true, "Pattern": "Daily", "DayPattern": {"Pattern": "EveryCyclicDay", "Cycle": 3},
               "RecurrenceEndType": "EndDate", "EndDate": "2026-02-01"}),
        json!({"IsRecurrence": true, "Pattern": "Monthly", "RecurrenceCounter": 2,
               "MonthPattern": {"Pattern": 2, "Weekday": 1, "WeekOfMonth": 5, "Cycle": 1}}),
        json!({"IsRecurrence": true, "Pattern": "Yearly",
               "YearPattern": {"Pattern": "DayOfMonth", "Day": 5, "Cycle": 1}}),
    ];
    for body in bodies {
        let first = create(
            &so,
            &meeting(
                "2026-01-05T09:00:00+01:00",
                "2026-01-05T10:00:00+01:00",
                body.clone(),
            ),
        )
        .await;
        let mut problems = Vec::new();
        conforms(
            defs,
            info,
            &first["Recurrence"],
            "$.Recurrence",
            &mut problems,
        );
        assert!(problems.is_empty(), "{body}:\n{}", problems.join("\n"));
        assert_eq!(first["Recurrence"]["IsRecurrence"], true);
        // What the API shows reads back as the same rule: a PUT of it changes one row only.
        let id = first["AppointmentId"].as_u64().unwrap();
        let rows_before = rows(&so, rule_of(&first), "NO").await;
        let put = so
            .send_json(Method::PUT, &format!("Appointment/{id}"), &first)
            .await;
        assert_eq!(put.status, 200, "{}", put.body);
        assert_eq!(put.body["Recurrence"], first["Recurrence"]);
        assert_eq!(rows(&so, rule_of(&first), "NO").await, rows_before);
    }
    // The numbers of the enums read as their names (Monthly, WeekdayOfMonth, Monday, Last).
    let numeric = json!({"IsRecurrence": true, "Pattern": 3, "RecurrenceEndType": 2, "RecurrenceCounter": 1,
                         "MonthPattern": {"Pattern": 2, "Weekday": 1, "WeekOfMonth": 5, "Cycle": 1}});
    let first = create(
        &so,
        &meeting(
            "2026-01-05T09:00:00+01:00",
            "2026-01-05T10:00:00+01:00",
            numeric,
        ),
    )
    .await;
    let r = &first["Recurrence"];
    assert_eq!(
        (
            r["Pattern"].as_str(),
            r["MonthPattern"]["WeekOfMonth"].as_str()
        ),
        (Some("Monthly"), Some("Last"))
    );
    assert_eq!(&first["StartDate"].as_str().unwrap()[..10], "2026-01-26");
    // An appointment without a series has no recurrence.
    let plain = meeting(
        "2026-01-05T09:00:00+01:00",
        "2026-01-05T10:00:00+01:00",
        Value::Null,
    );
    let plain = create(&so, &plain).await;
    assert_eq!(plain["Recurrence"], Value::Null);
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
