//! The SuperOffice emulator's writes: create, update (PUT and PATCH), delete with
//! If-Unmodified-Since, the travel transaction log, validation, acting as a user, and garbage.

mod common;

use common::superoffice::{So, assert_error, send};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn writes_bump_updated_date_log_the_travel_log_and_honour_if_unmodified_since() {
    let so = So::start().await;
    let tasks = so.get("List/Task/Items").await.body;
    let todo_task = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Type"] == "ToDo")
        .unwrap()["TaskListItemId"]
        .clone();
    let meeting = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Value"] == "Meeting")
        .unwrap()["TaskListItemId"]
        .clone();
    let body = json!({
        "Associate": {"AssociateId": 102},
        "Task": {"TaskListItemId": meeting},
        "Title": "Sync test",
        "Description": "From the API",
        "Location": "Oslo",
        "StartDate": "2026-12-10T09:00:00Z",
        "EndDate": "2026-12-10T10:30:00+00:00",
        "HasAlarm": true,
        "AlarmLeadTime": "00:10:00",
        "Person": {"PersonId": "2000002"}
    });
    let created = so.send_json(Method::POST, "Appointment", &body).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["AppointmentId"].as_u64().unwrap();
    assert_eq!(created.body["StartDate"], "2026-12-10T09:00:00+00:00");
    assert_eq!(created.body["Type"], "inDiary");
    assert_eq!(created.body["Task"]["Type"], "Appointment");
    assert_eq!(
        created.body["Contact"]["ContactId"], 10001,
        "the person's company"
    );
    let last_modified = created.headers["Last-Modified"]
        .to_str()
        .unwrap()
        .to_string();

    // A fresh precondition passes; UpdatedDate moves on even though the clock did not.
    let u1 = created.body["UpdatedDate"].as_str().unwrap().to_string();
    let mut put_body = created.body.clone();
    put_body["Title"] = json!("Renamed");
    let put = send(
        so.request(Method::PUT, &format!("Appointment/{id}"))
            .header("If-Unmodified-Since", &last_modified)
            .json(&put_body),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let u2 = put.body["UpdatedDate"].as_str().unwrap().to_string();
    assert!(u2 > u1, "{u1} then {u2}");
    // The old date is stale now.
    let stale = send(
        so.request(Method::PATCH, &format!("Appointment/{id}"))
            .header("If-Unmodified-Since", &last_modified)
            .json(&json!([{"op": "replace", "path": "Title", "value": "x"}])),
    )
    .await;
    assert_error(&stale, 412);
    let stale_delete = send(
        so.request(Method::DELETE, &format!("Appointment/{id}"))
            .header("If-Unmodified-Since", &last_modified),
    )
    .await;
    assert_error(&stale_delete, 412);

    // PATCH: JSON Patch (case-insensitive paths, string ids) and merge patch.
    let fresh = put.headers["Last-Modified"].to_str().unwrap().to_string();
    let patched = send(
        so.request(Method::PATCH, &format!("Appointment/{id}"))
            .header("If-Unmodified-Since", &fresh)
            .json(&json!([
                {"op": "replace", "path": "/title", "value": "Patched"},
                {"op": "replace", "path": "Associate", "value": {"AssociateId": "103"}},
                {"op": "test", "path": "location", "value": "Oslo"}
            ])),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["Title"], "Patched");
    assert_eq!(patched.body["Associate"]["AssociateId"], 103);
    let merged = so.send_json(Method::PATCH, &format!("Appointment/{id}"), &json!({"Task": {"TaskListItemId": todo_task}, "Type": "inChecklist", "Completed": "Completed"})).await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body["Task"]["Type"], "ToDo");
    assert_eq!(merged.body["Completed"], "Completed");
    let conflict = so
        .send_json(
            Method::PATCH,
            &format!("Appointment/{id}"),
            &json!([{"op": "test", "path": "Title", "value": "Other"}]),
        )
        .await;
    assert_error(&conflict, 409);
    assert_error(
        &so.send_json(
            Method::PATCH,
            &format!("Appointment/{id}"),
            &json!([{"op": "move", "from": "Title", "path": "Agenda"}]),
        )
        .await,
        400,
    );

    let gone = send(so.request(Method::DELETE, &format!("Appointment/{id}"))).await;
    assert_eq!(gone.status, 204);
    assert_error(&so.get(&format!("Appointment/{id}")).await, 404);
    assert_error(
        &send(so.request(Method::DELETE, &format!("Appointment/{id}"))).await,
        404,
    );

    let log: Vec<(u32, u32)> = so
        .sandbox
        .state()
        .superoffice
        .travel_log()
        .iter()
        .filter(|r| u64::from(r.record_id) == id && r.table == 9)
        .map(|r| (r.kind, r.prev_record_id))
        .collect();
    assert_eq!(
        log,
        vec![
            (4352, 0),
            (4608, 0),
            (4608, 0),
            (5120, 102),
            (4608, 0),
            (4864, 0)
        ]
    );

    // Ids are never reused.
    let again = so.send_json(Method::POST, "Appointment", &body).await;
    assert!(again.body["AppointmentId"].as_u64().unwrap() > id);
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors_have_the_error_shape() {
    let so = So::start().await;
    let base = json!({
        "Associate": {"AssociateId": 101}, "Task": {"TaskListItemId": 1},
        "StartDate": "2026-12-10T10:00:00Z", "EndDate": "2026-12-10T11:00:00Z"
    });
    let with = |patch: Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for body in [
        with(json!({"EndDate": "2026-12-10T09:00:00Z"})),
        with(json!({"Associate": {"AssociateId": 999}})),
        with(json!({"Associate": null})),
        with(json!({"Task": {"TaskListItemId": 77}})),
        with(json!({"Task": "Meeting"})),
        with(json!({"StartDate": "tomorrow"})),
        with(json!({"StartDate": 5})),
        with(json!({"Title": ["x"]})),
        with(json!({"IsFree": "maybe"})),
        with(json!({"Type": "Document"})),
        with(json!({"Private": "Secret"})),
        with(json!({"Person": {"PersonId": 123456789}})),
        with(json!({"Person": {"PersonId": 2000002}, "Contact": {"ContactId": 10002}})),
        with(json!({"HasAlarm": true, "AlarmLeadTime": "soon"})),
        with(json!({"Recurrence": {"IsRecurrence": true, "Pattern": "Weekly"}})),
        with(json!({"Location": "x".repeat(300)})),
        json!([1, 2]),
    ] {
        let answer = so.send_json(Method::POST, "Appointment", &body).await;
        assert_error(&answer, 400);
    }
    let raw = send(
        so.request(Method::POST, "Appointment")
            .header("Content-Type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_error(&raw, 400);
    let empty = send(so.request(Method::PUT, "Appointment/1")).await;
    assert_error(&empty, 400);
    assert_error(&so.get("Appointment/abc").await, 404);
    assert_error(&so.get("Appointment/4000000000").await, 404);
    assert_error(&so.get("Person/0").await, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn acting_as_a_user_changes_what_the_api_shows() {
    let so = So::start().await;
    let created = so
        .control(Method::POST, "/appointments", Some(json!({"associate_id": 104, "todo": true, "title": "Call back", "when": {"kind": "all_day", "start": "2026-12-05", "end": "2026-12-06"}})))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["AppointmentId"].as_u64().unwrap();
    let api = so.get(&format!("Appointment/{id}")).await.body;
    assert_eq!(api["Task"]["Type"], "ToDo");
    assert_eq!(api["Type"], "inChecklist");
    assert_eq!(api["UpdatedBy"]["AssociateId"], 104);
    let changed = so
        .control(
            Method::PATCH,
            &format!("/appointments/{id}"),
            Some(json!({"completed": true, "title": "Called"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        so.get(&format!("Appointment/{id}")).await.body["Completed"],
        "Completed"
    );
    let dump = so.control(Method::GET, "/associates/104", None).await.body;
    assert!(
        dump["todos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["AppointmentId"] == id)
    );
    assert_eq!(dump["email"], "dina@contoso.example");
    assert!(!dump["persons"].as_array().unwrap().is_empty());
    assert_eq!(
        so.control(Method::DELETE, &format!("/appointments/{id}"), None)
            .await
            .status,
        204
    );
    assert_error(&so.get(&format!("Appointment/{id}")).await, 404);
    // Our contact moves; a deleted person is gone (soft delete: not in the travel log).
    assert_eq!(
        so.control(
            Method::PUT,
            "/companies/10001/our-contact",
            Some(json!({"associate_id": 105}))
        )
        .await
        .status,
        204
    );
    assert_eq!(
        so.get("Contact/10001").await.body["Associate"]["AssociateId"],
        105
    );
    assert_eq!(
        so.control(Method::DELETE, "/persons/2000001", None)
            .await
            .status,
        204
    );
    assert_error(&so.get("Person/2000001").await, 404);
    assert!(
        !so.sandbox
            .state()
            .superoffice
            .travel_log()
            .iter()
            .any(|r| r.table == 6 && r.record_id == 2000001)
    );
    assert_eq!(
        so.control(
            Method::PATCH,
            "/appointments/999999",
            Some(json!({"title": "x"}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        so.control(
            Method::POST,
            "/appointments",
            Some(json!({"associate_id": 1}))
        )
        .await
        .status
            / 100,
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_at_every_endpoint_gets_an_error_shape_never_a_5xx() {
    let so = So::start().await;
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"{".to_vec(),
        b"[{\"op\":1}]".to_vec(),
        b"{\"Associate\":{\"AssociateId\":-1}}".to_vec(),
        b"{\"StartDate\":{\"x\":[[[[]]]]}}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x41],
        "\u{1F600}".repeat(1000).into_bytes(),
    ];
    let paths = [
        "Appointment",
        "Appointment/1",
        "Appointment/default",
        "Appointment/x",
        "Person",
        "Person/1001",
        "Contact",
        "Contact/1",
        "Archive/InternalUsers",
        "Archive/dynamic",
        "Archive/nope",
        "List/Task/Items",
        "List/Task/Items/1",
        "Agents/Appointment/CreateDefaultAppointmentEntityByTypeAndAssociate",
        "Nope",
        "Appointment?$filter=%27&$top=%00",
        "Appointment?$filter=((((",
        "Archive/dynamic?$select=contact.name",
        "Person?$filter=contactId%20eq%20%27a%27",
    ];
    for path in paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            for body in &garbage {
                let answer = send(
                    so.request(method.clone(), path)
                        .header("Content-Type", "application/json")
                        .body(body.clone()),
                )
                .await;
                assert!(
                    answer.status < 500,
                    "{method} {path}: {} {}",
                    answer.status,
                    answer.body
                );
                if answer.status >= 400 {
                    assert_error(&answer, answer.status);
                }
            }
        }
    }
    let env = so.sandbox.urls().superoffice.clone();
    for path in [
        "",
        "Login/api/PartnerSystemUser/Authenticate",
        "api/state/",
        "api/state/%00",
        "x/api",
        "login/.well-known/jwks",
    ] {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let answer = send(
                so.client
                    .request(method.clone(), format!("{env}{path}"))
                    .body("{"),
            )
            .await;
            assert!(answer.status < 500, "{method} {path}: {}", answer.status);
            assert!(!answer.body.is_null(), "{method} {path}: a JSON body");
        }
    }
}
