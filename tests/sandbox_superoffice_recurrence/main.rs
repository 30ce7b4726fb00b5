//! The SuperOffice emulator's recurring appointments: a rule plus one row per occurrence,
//! each pattern kind, exceptions, cancellations, a changed end, a never-ending series as the
//! clock moves, DST in Oslo and New York, refused recurrences and the OpenAPI shape.

#[path = "../common/mod.rs"]
mod common;

mod edits;
mod patterns;
mod shape;

use common::superoffice::{So, keys, send};
use reqwest::Method;
use serde_json::{Value, json};

/// A Monday, 08:00 in Oslo.
pub const MONDAY: &str = "2026-01-05T07:00:00Z";

pub async fn so_at(at: &str) -> So {
    let mut so = So::start().await;
    so.sandbox.state().clock.set(at.parse().unwrap());
    so.ticket = so.authenticate().await;
    so
}

pub fn meeting(start: &str, end: &str, recurrence: Value) -> Value {
    json!({
        "Associate": {"AssociateId": 102},
        "Task": {"TaskListItemId": 1},
        "Title": "Team meeting",
        "StartDate": start,
        "EndDate": end,
        "Recurrence": recurrence,
    })
}

pub fn weekly(days: &str, cycle: u32, end: Value) -> Value {
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

pub async fn create(so: &So, body: &Value) -> Value {
    let answer = so.send_json(Method::POST, "Appointment", body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

pub fn rule_of(entity: &Value) -> u64 {
    entity["Recurrence"]["RecurrenceId"]
        .as_u64()
        .expect("a recurrence id")
}

/// A GET with `SO-TimeZone` set to `zone` (no offsets: local wall-clock times).
pub async fn get_in(so: &So, path: &str, zone: &str) -> Value {
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
pub async fn rows(so: &So, rule: u64, zone: &str) -> Vec<(u32, String)> {
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

pub fn days(rows: &[(u32, String)]) -> Vec<&str> {
    rows.iter().map(|(_, d)| &d[..10]).collect()
}
