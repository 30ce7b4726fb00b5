//! Updates guarded by the version the engine decided on: an Outlook edit made after that
//! version was read is not overwritten but answered with `ConnectorError::Conflict`, whether
//! the client sees it when it reads the item or Graph refuses the PATCH's `If-Match` (412
//! `ErrorIrresolvableConflict`); an update whose own earlier attempt arrived is no conflict.

use crmsync::connector::graph::GraphClient;
use crmsync::connector::model::{Item, Kind, MailboxItemId, Version};
use crmsync::connector::{ConnectorError, MailboxConnector, MailboxRef};
use crmsync::settings::{MailSystemKind, MailSystemSettings, Secret};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::shape::reference;
use super::{T, contact, diary, diary_at, options, stamp, task};

/// The mailbox the stale-version test writes to.
const MAILBOX: usize = 2;

/// The user's edit of the item `id` of `kind` in Outlook or To Do.
fn user_edit(t: &T, m: &MailboxRef, kind: Kind, id: &MailboxItemId) {
    let graph = &t.state().graph;
    let user = m.id.clone().unwrap_or_default();
    let now = t.now();
    match kind {
        Kind::Diary => graph
            .user_update_event(now, &user, &id.0, &json!({"subject": "Edited in Outlook"}))
            .map(|_| ()),
        Kind::Task => {
            let state = t.mailbox_state(MAILBOX);
            let list = state["todoLists"]
                .as_array()
                .and_then(|lists| {
                    lists
                        .iter()
                        .find(|l| {
                            l["tasks"]
                                .as_array()
                                .is_some_and(|ts| ts.iter().any(|x| x["id"] == id.0.as_str()))
                        })
                        .and_then(|l| l["id"].as_str())
                })
                .expect("the task's list")
                .to_string();
            graph
                .user_update_task(
                    now,
                    &user,
                    &list,
                    &id.0,
                    &json!({"title": "Edited in To Do"}),
                )
                .map(|_| ())
        }
        Kind::Contact => graph
            .user_update_contact(now, &user, &id.0, &json!({"givenName": "Edited"}))
            .map(|_| ()),
    }
    .expect("the user's edit");
}

fn what_the_user_wrote(item: &Item) -> &str {
    match item {
        Item::Diary(d) => &d.subject,
        Item::Task(t) => &t.title,
        Item::Contact(c) => &c.given_name,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_over_a_stale_version_is_a_conflict_and_the_users_edit_stays() {
    let t = T::start().await;
    let m = t.mailbox(MAILBOX);
    let items = [
        (Kind::Diary, diary("CRM subject", &t), "Edited in Outlook"),
        (Kind::Task, task("CRM title"), "Edited in To Do"),
        (Kind::Contact, contact("Crmname"), "Edited"),
    ];
    for (i, (kind, item, edited)) in items.into_iter().enumerate() {
        let made = t
            .client
            .create(&m, &item, &stamp(kind, 7000 + i as u32))
            .await
            .unwrap();
        // The engine read `made.version`; then the user edits.
        user_edit(&t, &m, kind, &made.id);
        let mut ours = item.clone();
        match &mut ours {
            Item::Diary(d) => d.location = "Bergen".into(),
            Item::Task(t) => t.body = "Changed in the CRM".into(),
            Item::Contact(c) => c.job_title = Some("Chair".into()),
        }
        let refused = t
            .client
            .update(&m, &made.id, &ours, Some(&made.version))
            .await;
        assert!(
            matches!(refused, Err(ConnectorError::Conflict { .. })),
            "{kind}: {refused:?}"
        );
        let now = t.client.get(&m, kind, &made.id).await.unwrap().unwrap();
        assert_eq!(
            what_the_user_wrote(&now.item),
            edited,
            "{kind}: the user's edit stays"
        );
        assert_ne!(now.item, ours, "{kind}: crmsync's change was not written");

        // Over the version it now has, the same update goes through.
        let w = t
            .client
            .update(&m, &made.id, &ours, Some(&now.version))
            .await
            .unwrap();
        assert_ne!(w.version, now.version, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_sent_again_after_its_answer_was_lost_is_no_conflict() {
    let t = T::start().await;
    let m = t.mailbox(3);
    for (i, item) in [diary("Again", &t), task("Again"), contact("Again")]
        .into_iter()
        .enumerate()
    {
        let kind = item.kind();
        let made = t
            .client
            .create(&m, &item, &stamp(kind, 7100 + i as u32))
            .await
            .unwrap();
        let mut ours = item.clone();
        match &mut ours {
            Item::Diary(d) => d.subject = "Again, renamed".into(),
            Item::Task(t) => t.title = "Again, renamed".into(),
            Item::Contact(c) => c.surname = "Renamed".into(),
        }
        let first = t
            .client
            .update(&m, &made.id, &ours, Some(&made.version))
            .await
            .unwrap();
        // The pass never learnt the answer: it sends the same update again, still based on
        // the version it read. The item holds it already; nothing is overwritten.
        let again = t
            .client
            .update(&m, &made.id, &ours, Some(&made.version))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(again.version, first.version, "{kind}: no second write");
    }
}

const USER: &str = "48d31887-5fad-4d73-a9f5-3c356e68a038";

/// Graph's answer to a PATCH whose `If-Match` names an older change key.
fn precondition_failed() -> ResponseTemplate {
    ResponseTemplate::new(412).set_body_json(json!({"error": {
        "code": "ErrorIrresolvableConflict",
        "message": "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item."
    }}))
}

#[tokio::test]
async fn an_edit_between_the_read_and_the_patch_meets_if_match() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(reference("graph/token-response.json")),
        )
        .mount(&server)
        .await;
    let event = reference("graph/event.json");
    let read_by_crmsync = event["changeKey"].as_str().unwrap().to_string();
    let mut edited = event.clone();
    edited["changeKey"] = json!("ZlnW4RIAV06KYYwlrfNZvQAALfZeRg==");
    edited["@odata.etag"] = json!("W/\"ZlnW4RIAV06KYYwlrfNZvQAALfZeRg==\"");
    edited["subject"] = json!("Edited in Outlook");
    let item_path = format!("^/v1.0/users/{USER}/events/.+$");
    // The read before the PATCH still sees the version the engine decided on...
    Mock::given(method("GET"))
        .and(path_regex(item_path.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(event.clone()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // ...then the user saves in Outlook, and Graph refuses the PATCH.
    Mock::given(method("GET"))
        .and(path_regex(item_path.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(edited))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(item_path))
        .respond_with(precondition_failed())
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
    let m = MailboxRef {
        address: "anna@contoso.example".into(),
        id: Some(USER.into()),
    };
    let id = MailboxItemId(event["id"].as_str().unwrap().into());
    let start = "2026-05-01T10:00:00Z".parse().unwrap();
    let refused = client
        .update(
            &m,
            &id,
            &diary_at(start, "From the CRM"),
            Some(&Version(read_by_crmsync.clone())),
        )
        .await;
    assert!(
        matches!(refused, Err(ConnectorError::Conflict { .. })),
        "{refused:?}"
    );
    let patches: Vec<_> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "a 412 is not sent again");
    assert_eq!(
        patches[0]
            .headers
            .get("if-match")
            .and_then(|v| v.to_str().ok()),
        Some(format!("W/\"{read_by_crmsync}\"").as_str()),
        "the etag of the version the engine read"
    );
}
