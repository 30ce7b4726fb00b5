//! Refused recurrences and the OpenAPI shape of `RecurrenceInfo`.

use crate::common::shape::{assert_same_shape, reference};
use crate::common::superoffice::assert_error;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{MONDAY, create, meeting, rows, rule_of, so_at, weekly};

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
