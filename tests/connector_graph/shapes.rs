//! The client's requests against the documented samples in ../shared/reference/graph: exact
//! URLs and query strings, `Prefer` headers, and bodies of the documented shapes (wiremock
//! plays Graph and the identity platform).

use crmsync::connector::MailboxConnector;
use crmsync::connector::MailboxRef;
use crmsync::connector::graph::GraphClient;
use crmsync::connector::model::{Change, Kind, MailboxItemId};
use crmsync::settings::{MailSystemKind, MailSystemSettings, Secret};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::common::shape::{assert_same_shape, reference};
use super::{diary_at, task};
use super::{options, stamp};

const USER: &str = "48d31887-5fad-4d73-a9f5-3c356e68a038";

async fn server() -> (MockServer, GraphClient) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(reference("graph/token-response.json")),
        )
        .mount(&server)
        .await;
    let settings = MailSystemSettings {
        name: "m".into(),
        kind: MailSystemKind::Graph,
        tenant_id: "contoso.onmicrosoft.com".into(),
        client_id: "535fb089-9ff3-47b6-9bfb-4f1264799865".into(),
        client_secret: Secret::new("sampleCredentials"),
        base_url: format!("{}/v1.0", server.uri()).parse().unwrap(),
        authority_url: format!("{}/login", server.uri()).parse().unwrap(),
    };
    let client = GraphClient::new(&settings, options()).unwrap();
    (server, client)
}

fn mailbox() -> MailboxRef {
    MailboxRef {
        address: "anna@contoso.example".into(),
        id: Some(USER.into()),
    }
}

async fn requests(server: &MockServer, m: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == m && !r.url.path().contains("/oauth2/"))
        .collect()
}

fn header(r: &Request, name: &str) -> String {
    r.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

/// A documented sample without what crmsync never sends (attendees: they would be invited).
fn without_attendees(mut sample: Value) -> Value {
    sample.as_object_mut().unwrap().remove("attendees");
    sample
}

const PREFER_EVENTS: &str =
    "IdType=\"ImmutableId\", outlook.timezone=\"UTC\", outlook.body-content-type=\"text\"";

#[tokio::test]
async fn an_event_create_is_the_documented_post_with_transaction_id_and_stamp() {
    let (server, client) = server().await;
    let mut answer = reference("graph/event.json");
    answer["isOrganizer"] = json!(true);
    Mock::given(method("POST"))
        .and(path(format!("/v1.0/users/{USER}/events")))
        .respond_with(ResponseTemplate::new(201).set_body_json(answer))
        .mount(&server)
        .await;
    let s = stamp(Kind::Diary, 4711);
    let item = diary_at(
        "2026-04-15T12:00:00Z".parse().unwrap(),
        "Let's go for lunch",
    );
    let written = client.create(&mailbox(), &item, &s).await.unwrap();
    assert_eq!(written.id, MailboxItemId("AAMkAGI1AAAt9AHjAAA=".into()));
    assert_eq!(written.version.0, "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==");

    let posts = requests(&server, "POST").await;
    assert_eq!(posts.len(), 1);
    let r = &posts[0];
    assert_eq!(r.url.path(), format!("/v1.0/users/{USER}/events"));
    assert_eq!(r.url.query(), None);
    assert_eq!(header(r, "prefer"), PREFER_EVENTS);
    assert_eq!(header(r, "content-type"), "application/json");
    assert_eq!(
        header(r, "authorization"),
        format!(
            "Bearer {}",
            reference("graph/token-response.json")["access_token"]
                .as_str()
                .unwrap()
        )
    );
    let b = body(r);
    assert_same_shape(
        "event-create-request.json",
        &without_attendees(reference("graph/event-create-request.json")),
        &b,
    );
    assert_same_shape(
        "event-with-extended-property.json",
        &without_attendees(reference("graph/event-with-extended-property.json")),
        &b,
    );
    assert!(b.get("attendees").is_none());
    assert_eq!(
        b["start"],
        json!({"dateTime": "2026-04-15T12:00:00.0000000", "timeZone": "UTC"})
    );
    assert_eq!(b["body"]["contentType"], "text");
    assert_eq!(
        b["singleValueExtendedProperties"][0],
        json!({"id": "String {5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17} Name crmsyncStamp", "value": "crmsync:1:Cust21122:diary:4711"})
    );
    assert_eq!(
        b["transactionId"],
        crmsync::connector::graph::transaction_id(&mailbox(), &s).as_str()
    );
    assert!(b["transactionId"].as_str().unwrap().starts_with("crmsync-"));
}

#[tokio::test]
async fn a_stamp_is_written_with_the_documented_patch() {
    let (server, client) = server().await;
    Mock::given(method("PATCH"))
        .and(path_regex(format!("^/v1.0/users/{USER}/events/.+$")))
        .respond_with(ResponseTemplate::new(200).set_body_json(reference("graph/event.json")))
        .mount(&server)
        .await;
    let id = MailboxItemId("AAMkAGI1AAAt9AHjAAA=".into());
    client
        .set_stamp(&mailbox(), Kind::Diary, &id, &stamp(Kind::Diary, 9))
        .await
        .unwrap();
    let r = &requests(&server, "PATCH").await[0];
    assert_eq!(
        r.url.path(),
        format!("/v1.0/users/{USER}/events/AAMkAGI1AAAt9AHjAAA=")
    );
    assert_eq!(header(r, "prefer"), PREFER_EVENTS);
    let b = body(r);
    assert_same_shape(
        "extended-property-patch-request.json",
        &reference("graph/extended-property-patch-request.json"),
        &b,
    );
    assert_eq!(b.as_object().unwrap().len(), 1, "only the property: {b}");
}

#[tokio::test]
async fn a_task_create_is_the_documented_post_with_a_linked_resource() {
    let (server, client) = server().await;
    let list = reference("graph/todotasklist.json");
    let mut ours = list.clone();
    ours["displayName"] = json!("SuperOffice");
    ours["wellknownListName"] = json!("none");
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/users/{USER}/todo/lists")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [list, ours]})))
        .mount(&server)
        .await;
    let list_id = ours["id"].as_str().unwrap().to_string();
    Mock::given(method("GET"))
        .and(path(format!(
            "/v1.0/users/{USER}/todo/lists/{list_id}/tasks"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [reference("graph/todotask.json")]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1.0/users/{USER}/todo/lists/{list_id}/tasks"
        )))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(reference("graph/todotask-linkedresource.json")),
        )
        .mount(&server)
        .await;
    let s = stamp(Kind::Task, 17);
    let written = client
        .create(&mailbox(), &task("A new task"), &s)
        .await
        .unwrap();
    assert_eq!(written.id.0, "AlMKXwbQAAAJws6wcAAAA=");
    assert_eq!(
        written.version.0, "W/\"xzyPKP0BiUGgld+lMKXwbQAAnBoTIw==\"",
        "To Do's etag"
    );

    let gets = requests(&server, "GET").await;
    assert_eq!(gets[0].url.query(), Some("$top=100"));
    assert_eq!(
        gets[1].url.query(),
        Some("$expand=linkedResources&$top=100")
    );
    let r = &requests(&server, "POST").await[0];
    assert_eq!(
        header(r, "prefer"),
        "IdType=\"ImmutableId\", outlook.timezone=\"UTC\""
    );
    let b = body(r);
    assert_same_shape(
        "todotask-linkedresource-request.json",
        &reference("graph/todotask-linkedresource-request.json"),
        &b,
    );
    assert_eq!(
        b["linkedResources"][0],
        json!({"applicationName": "SuperOffice", "displayName": "SuperOffice task 17",
               "externalId": "crmsync:1:Cust21122:task:17",
               "webUrl": "https://online.superoffice.com/Cust21122/default.aspx?appointment_id=17"})
    );
    assert_eq!(
        b["dueDateTime"],
        json!({"dateTime": "2026-12-01T00:00:00.0000000", "timeZone": "UTC"})
    );
}

#[tokio::test]
async fn a_diary_round_asks_for_the_window_then_follows_links_and_reads_stamps() {
    let (server, client) = server().await;
    let base = format!("{}/v1.0", server.uri());
    let rewrite = |mut page: Value| {
        for key in ["@odata.nextLink", "@odata.deltaLink"] {
            if let Some(link) = page[key].as_str() {
                let link = link.replace(
                    "https://graph.microsoft.com/v1.0/me",
                    &format!("{base}/users/{USER}"),
                );
                page[key] = json!(link);
            }
        }
        page
    };
    let first = rewrite(reference("graph/calendarview-delta-page.json"));
    let last = rewrite(reference("graph/calendarview-delta-final.json"));
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/users/{USER}/calendarView/delta")))
        .and(wiremock::matchers::query_param(
            "startDateTime",
            "2016-12-01T00:00:00Z",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(first.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/users/{USER}/calendarView/delta")))
        .and(wiremock::matchers::query_param(
            "$skiptoken",
            "R0usmcCM996atia_s",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(last.clone()))
        .mount(&server)
        .await;
    let mut ids: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .chain(last["value"].as_array().unwrap())
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let listing: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "singleValueExtendedProperties": [{"id": "String {5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17} Name crmsyncStamp", "value": format!("crmsync:1:Cust21122:diary:{}", id.len())}]}))
        .collect();
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/users/{USER}/calendarView")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": listing})))
        .mount(&server)
        .await;
    let window = crmsync::connector::model::Window {
        start: "2016-12-01T00:00:00Z".parse().unwrap(),
        end: "2016-12-30T00:00:00Z".parse().unwrap(),
    };
    let round = client
        .changes(&mailbox(), Kind::Diary, None, &window)
        .await
        .unwrap();
    assert!(round.full);
    // The link, under the days of the window it was made for.
    assert_eq!(
        round.cursor.0,
        format!(
            "window:2016-12-01/2016-12-30 {}",
            last["@odata.deltaLink"].as_str().unwrap()
        )
    );
    assert_eq!(round.changes.len(), 3);
    for c in &round.changes {
        match c {
            Change::Upsert(o) => assert!(o.stamp.is_some(), "{o:?}"),
            Change::Removed(id) => panic!("{id}"),
        }
    }
    let gets = requests(&server, "GET").await;
    assert_eq!(
        gets[0].url.query(),
        Some("startDateTime=2016-12-01T00%3A00%3A00Z&endDateTime=2016-12-30T00%3A00%3A00Z")
    );
    assert_eq!(
        header(&gets[0], "prefer"),
        format!("{PREFER_EVENTS}, odata.maxpagesize=7")
    );
    assert_eq!(gets[1].url.query(), Some("$skiptoken=R0usmcCM996atia_s"));
    assert_eq!(
        header(&gets[1], "prefer"),
        format!("{PREFER_EVENTS}, odata.maxpagesize=7")
    );
    assert_eq!(
        gets[2].url.query(),
        Some(
            "startDateTime=2016-12-01T00%3A00%3A00Z&endDateTime=2016-12-30T00%3A00%3A00Z&$select=id&$expand=singleValueExtendedProperties($filter%3Did%20eq%20%27String%20%7B5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17%7D%20Name%20crmsyncStamp%27%20or%20id%20eq%20%27String%20%7B5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17%7D%20Name%20crmsyncTaskType%27)&$top=500"
        )
    );
}

#[tokio::test]
async fn the_idle_poll_is_one_documented_batch_of_relative_urls() {
    let (server, client) = server().await;
    let link = |kind: &str, token: &str| {
        format!(
            "{}/v1.0/users/{USER}/{kind}/delta?$deltatoken={token}",
            server.uri()
        )
    };
    let pairs = vec![
        (
            mailbox(),
            Kind::Diary,
            crmsync::connector::model::Cursor(link("calendarView", "a1")),
        ),
        (
            mailbox(),
            Kind::Contact,
            crmsync::connector::model::Cursor(link("contactFolders/F1/contacts", "b2")),
        ),
    ];
    let answer = json!({"responses": [
        {"id": "1", "status": 200, "headers": {"Content-Type": "application/json"}, "body": {"value": [], "@odata.deltaLink": link("contactFolders/F1/contacts", "b3")}},
        {"id": "0", "status": 410, "headers": {"Content-Type": "application/json"}, "body": {"error": {"code": "SyncStateNotFound", "message": "The sync state generation is not found."}}},
    ]});
    Mock::given(method("POST"))
        .and(path("/v1.0/$batch"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let out = client.poll(&pairs).await;
    assert!(matches!(
        out[0],
        Err(crmsync::connector::ConnectorError::ResyncNeeded { .. })
    ));
    assert_eq!(
        out[1].as_ref().unwrap().cursor.0,
        link("contactFolders/F1/contacts", "b3")
    );
    let r = &requests(&server, "POST").await[0];
    assert_eq!(header(r, "content-type"), "application/json");
    let b = body(r);
    assert_same_shape(
        "batch-request.json",
        &reference("graph/batch-request.json"),
        &b,
    );
    assert_eq!(
        b["requests"][0],
        json!({"id": "0", "method": "GET", "url": format!("/users/{USER}/calendarView/delta?$deltatoken=a1"),
               "headers": {"Prefer": format!("{PREFER_EVENTS}, odata.maxpagesize=7")}})
    );
    assert_eq!(
        b["requests"][1]["headers"]["Prefer"],
        "IdType=\"ImmutableId\", outlook.timezone=\"UTC\", odata.maxpagesize=7"
    );
}
