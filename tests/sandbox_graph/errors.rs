//! Bad input gets Graph's error shape with the documented codes: never a panic, a hang or
//! a 500.

use reqwest::Method;
use serde_json::{Value, json};

use super::G;
use super::common::PATIENCE;
use super::common::shape::{assert_same_shape, reference};

/// The documented error body (an item of the batch sample).
fn error_sample() -> Value {
    reference("graph/batch-response.json")["responses"][2]["body"].clone()
}

const BODIES: &[&str] = &[
    "",
    "not json",
    "[1,2,3]",
    "\"a string\"",
    "{\"subject\": 5}",
    "{\"nope\": 1}",
    "{\"start\": \"tomorrow\", \"end\": 7}",
    "{\"start\": {\"dateTime\": \"garbage\", \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\": \"2026-01-01T00:00:00\", \"timeZone\": \"UTC\"}}",
    "{\"start\": {\"dateTime\": \"2026-01-01T00:00:00\"}, \"end\": {\"dateTime\": \"2026-01-01T01:00:00\"}}",
    "{\"isAllDay\": null}",
    "{\"isAllDay\": \"yes\"}",
    "{\"importance\": \"urgent\"}",
    "{\"reminderMinutesBeforeStart\": 1e300}",
    "{\"title\": {\"x\": 1}}",
    "{\"displayName\": []}",
    "{\"status\": \"done\"}",
    "{\"dueDateTime\": {\"dateTime\": \"garbage\", \"timeZone\": \"UTC\"}}",
    "{\"singleValueExtendedProperties\": [{\"id\": \"junk\", \"value\": \"x\"}]}",
    "{\"singleValueExtendedProperties\": \"x\"}",
    "{\"linkedResources\": 5}",
    "{\"emailAddresses\": [5]}",
    "{\"attendees\": [{\"type\": \"required\"}]}",
    "{\"recurrence\": {\"pattern\": {}}}",
    "{\"requests\": \"x\"}",
    "{\"body\": {\"contentType\": \"pdf\"}}",
    "{\"birthday\": \"someday\"}",
    "{\"homeAddress\": {\"planet\": \"Mars\"}}",
];

const QUERIES: &[&str] = &[
    "?$top=-1",
    "?$top=abc",
    "?$top=99999999999999999999",
    "?$skip=-5",
    "?$filter=((",
    "?$filter=subject eq",
    "?$filter=nosuch eq 1",
    "?$select=nosuch",
    "?$expand=nosuch",
    "?$expand=singleValueExtendedProperties",
    "?$skiptoken=%25%25%25",
    "?$deltatoken=garbage",
    "?startDateTime=yesterday&endDateTime=x",
    "?startDateTime=2026-02-01T00:00:00Z&endDateTime=2026-01-01T00:00:00Z",
    "?$orderby=subject",
    "?$search=x",
];

// Not "..": URL-encoded or not, the client's URL parser resolves it away.
const IDS: &[&str] = &[
    "garbage!",
    "AAMk",
    "%00",
    "a..b",
    "\u{1F600}",
    "AAMkAGI1AAAt9AHjAAA=",
];

fn check(answer_status: u16, body: &Value, what: &str) {
    assert!(
        answer_status < 500 || answer_status == 501,
        "{what}: {answer_status} {body}"
    );
    if answer_status >= 400 {
        assert_same_shape(what, &error_sample(), body);
        assert!(
            !body["error"]["code"].as_str().unwrap_or("").is_empty(),
            "{what}: {body}"
        );
    }
}

async fn send(g: &G, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut request = g
        .http
        .request(method, format!("{}{path}", g.base))
        .bearer_auth(&g.token)
        .timeout(PATIENCE);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_at_every_endpoint_gets_a_documented_error_never_a_500() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let now = g.now();
    let graph = &g.state().graph;
    let list = graph.default_task_list(&user).unwrap();
    let folder = graph.default_contact_folder(&user).unwrap();
    let task = graph
        .user_create_task(
            now,
            &user,
            &list,
            &json!({"title": "t", "linkedResources": [{"externalId": "x"}]}),
        )
        .unwrap();
    let task_id = task["id"].as_str().unwrap().to_string();
    let linked = task["linkedResources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let contact = graph
        .user_create_contact(now, &user, None, &json!({"givenName": "c"}))
        .unwrap();
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let event = g
        .create_event(
            &user,
            "e",
            "2026-01-01T09:00:00",
            "2026-01-01T10:00:00",
            json!({}),
        )
        .await;
    let event_id = event["id"].as_str().unwrap().to_string();
    let u = format!("/users/{user}");
    let endpoints: Vec<(Vec<Method>, String)> = {
        use Method as M;
        let all = || vec![M::GET, M::POST, M::PATCH, M::PUT, M::DELETE];
        vec![
            (vec![M::GET, M::POST, M::PATCH], "/users".into()),
            (all(), u.clone()),
            (all(), format!("{u}/events")),
            (all(), format!("{u}/calendar/events")),
            (all(), format!("{u}/events/{event_id}")),
            (all(), format!("{u}/calendarView")),
            (all(), format!("{u}/calendarView/delta")),
            (all(), format!("{u}/todo/lists")),
            (all(), format!("{u}/todo/lists/{list}")),
            (all(), format!("{u}/todo/lists/{list}/tasks")),
            (all(), format!("{u}/todo/lists/{list}/tasks/delta")),
            (all(), format!("{u}/todo/lists/{list}/tasks/{task_id}")),
            (
                all(),
                format!("{u}/todo/lists/{list}/tasks/{task_id}/linkedResources"),
            ),
            (
                all(),
                format!("{u}/todo/lists/{list}/tasks/{task_id}/linkedResources/{linked}"),
            ),
            (all(), format!("{u}/contactFolders")),
            (all(), format!("{u}/contactFolders/{folder}")),
            (all(), format!("{u}/contactFolders/{folder}/contacts")),
            (all(), format!("{u}/contactFolders/{folder}/contacts/delta")),
            (
                all(),
                format!("{u}/contactFolders/{folder}/contacts/{contact_id}"),
            ),
            (all(), format!("{u}/contacts")),
            (all(), format!("{u}/contacts/{contact_id}")),
            (vec![M::POST, M::GET], "/$batch".into()),
            (vec![M::GET], "/nosuch".into()),
            (vec![M::GET], format!("{u}/nosuch")),
            (vec![M::GET], "/me/events".into()),
        ]
    };
    let mut requests = 0;
    // Deletions last, so that the other requests meet the items.
    for deleting in [false, true] {
        for (methods, path) in &endpoints {
            for method in methods
                .iter()
                .filter(|m| (**m == Method::DELETE) == deleting)
            {
                for body in BODIES {
                    let what = format!("{method} {path} with {body:?}");
                    let (status, answer) = send(&g, method.clone(), path, Some(body)).await;
                    check(status, &answer, &what);
                    requests += 1;
                }
                for query in QUERIES {
                    let what = format!("{method} {path}{query}");
                    let (status, answer) =
                        send(&g, method.clone(), &format!("{path}{query}"), None).await;
                    check(status, &answer, &what);
                    requests += 1;
                }
            }
        }
    }
    for id in IDS {
        let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
        for path in [
            format!("{u}/events/{encoded}"),
            format!("{u}/todo/lists/{encoded}/tasks"),
            format!("{u}/todo/lists/{list}/tasks/{encoded}"),
            format!("{u}/contactFolders/{encoded}/contacts"),
            format!("{u}/contacts/{encoded}"),
            format!("/users/{encoded}/events"),
        ] {
            let (status, answer) = send(&g, Method::GET, &path, None).await;
            assert!((400..500).contains(&status), "{path}: {status}");
            check(status, &answer, &path);
            requests += 1;
        }
    }
    let long = "A".repeat(5000);
    let (status, answer) = send(&g, Method::GET, &format!("{u}/events/{long}"), None).await;
    check(status, &answer, "a long id");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (status, answer) = send(&g, Method::POST, &format!("{u}/events"), Some(&deep)).await;
    assert_eq!(status, 400);
    check(status, &answer, "deep nesting");
    assert!(requests > 1000, "{requests}");
    // Still serving.
    assert_eq!(g.get("/users").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_carry_the_documented_codes() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (
            Method::GET,
            format!("/users/{user}/events/not-an-id!"),
            None,
            400,
            "ErrorInvalidIdMalformed",
        ),
        (
            Method::GET,
            format!("/users/{user}/events/AAMkAGI1AAAt9AHjAAA="),
            None,
            404,
            "ErrorItemNotFound",
        ),
        (
            Method::GET,
            format!("/users/{user}/contacts/AAMkAGI1AAAt9AHjAAA="),
            None,
            404,
            "ErrorItemNotFound",
        ),
        (
            Method::PUT,
            format!("/users/{user}/events"),
            Some(json!({})),
            405,
            "MethodNotAllowed",
        ),
        (
            Method::DELETE,
            "/users".into(),
            None,
            405,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            format!("/users/{user}/mailFolders"),
            None,
            400,
            "BadRequest",
        ),
        (Method::GET, "/groups".into(), None, 400, "BadRequest"),
        (
            Method::GET,
            "/users/00000000-0000-0000-0000-000000000000".into(),
            None,
            404,
            "Request_ResourceNotFound",
        ),
        (
            Method::GET,
            "/users/00000000-0000-0000-0000-000000000000/events".into(),
            None,
            404,
            "ErrorInvalidUser",
        ),
        (
            Method::POST,
            format!("/users/{user}/events"),
            Some(json!({"subject": "no times"})),
            400,
            "ErrorPropertyValidationFailure",
        ),
        (
            Method::POST,
            format!("/users/{user}/events"),
            Some(json!({"colour": "red"})),
            400,
            "RequestBodyRead",
        ),
        (
            Method::GET,
            format!("/users/{user}/events?$select=colour"),
            None,
            400,
            "RequestBroker--ParseUri",
        ),
        (Method::GET, "/me".into(), None, 400, "BadRequest"),
    ];
    for (method, path, body, status, code) in cases {
        let answer = g.call(method.clone(), &path, body.as_ref(), &[]).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert_eq!(answer.code(), code, "{method} {path}");
        assert_same_shape(&format!("{method} {path}"), &error_sample(), &answer.body);
        assert!(answer.header("request-id").is_some());
    }
    let raw = g
        .http
        .post(format!("{}/users/{user}/events", g.base))
        .bearer_auth(&g.token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UnableToDeserializePostBody");
    let no_type = g
        .http
        .post(format!("{}/users/{user}/events", g.base))
        .bearer_auth(&g.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_type.status().as_u16(), 415);
    // The client's request id is echoed.
    let echoed = g
        .call(
            Method::GET,
            "/users",
            None,
            &[("client-request-id", "my-id-1")],
        )
        .await;
    assert_eq!(echoed.header("client-request-id"), Some("my-id-1"));
}
