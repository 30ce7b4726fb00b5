//! Tokens, limits, back-off, expired delta tokens, creates that are never made twice, the
//! dedicated list and folder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crmsync::connector::model::Kind;
use crmsync::connector::{ConnectorError, MailboxConnector};
use crmsync::sandbox::{FaultKind, LimitSpec, Scenario};

use super::{T, contact, diary, stamp, task};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_renewed_before_it_expires_and_after_a_401() {
    let mut scenario = Scenario::small(jiff::Timestamp::now());
    scenario.graph.token_lifetime_secs = 4;
    let t = T::with(scenario, LimitSpec::real()).await;
    let m = t.mailbox(0);
    t.client
        .find_by_stamp(&m, &stamp(Kind::Diary, 1))
        .await
        .unwrap();
    assert_eq!(t.client.tokens_fetched(), 1);
    // 80 % of the four-second life: renewed before the sandbox would refuse it.
    tokio::time::sleep(Duration::from_millis(3400)).await;
    t.client
        .find_by_stamp(&m, &stamp(Kind::Diary, 1))
        .await
        .unwrap();
    assert_eq!(t.client.tokens_fetched(), 2);
    assert!(
        t.state().log.all().iter().all(|r| r.status != 401),
        "no request was refused"
    );

    // The sandbox's clock moves on: the token expires there, the client learns it from a 401.
    t.state().clock.advance(Duration::from_secs(3600));
    t.client
        .find_by_stamp(&m, &stamp(Kind::Diary, 1))
        .await
        .unwrap();
    assert_eq!(t.client.tokens_fetched(), 3);
    assert_eq!(
        t.state()
            .log
            .all()
            .iter()
            .filter(|r| r.status == 401)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_callers_of_one_mailbox_never_have_more_than_four_requests_in_flight() {
    let t = Arc::new(T::start().await);
    let m = t.mailbox(0);
    let id = m.id.clone().unwrap();
    // Every request of the mailbox is held 300 ms: five at once would be refused with 429.
    t.fault(
        FaultKind::Slow {
            delay: Duration::from_millis(300),
        },
        Some(&id),
        None,
        None,
        None,
    );
    let mut callers = Vec::new();
    for i in 0..5 {
        let (t, m) = (t.clone(), m.clone());
        callers.push(tokio::spawn(async move {
            for j in 0..2 {
                t.client
                    .find_by_stamp(&m, &stamp(Kind::Diary, i * 10 + j))
                    .await
                    .unwrap();
            }
        }));
    }
    for c in callers {
        c.await.unwrap();
    }
    let log = t.state().log.all();
    let mine: Vec<_> = log
        .iter()
        .filter(|r| r.mailbox.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(mine.len(), 10);
    assert!(mine.iter().all(|r| r.status == 200), "no 429: {mine:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pauses_every_caller_of_the_mailbox_without_a_violation() {
    let t = Arc::new(T::start().await);
    let m = t.mailbox(0);
    let id = m.id.clone().unwrap();
    t.fault(
        FaultKind::TooManyRequests {
            retry_after_secs: 2.5,
            as_http_date: false,
        },
        Some(&id),
        None,
        None,
        Some(1),
    );
    let started = Instant::now();
    let first = {
        let (t, m) = (t.clone(), m.clone());
        tokio::spawn(async move {
            t.client
                .changes(&m, Kind::Diary, None, &t.window())
                .await
                .map(|c| c.changes.len())
        })
    };
    // A second caller for the same mailbox, after the first was told to wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = t.client.find_by_stamp(&m, &stamp(Kind::Diary, 1)).await;
    assert!(second.is_ok(), "{second:?}");
    assert!(first.await.unwrap().unwrap() > 0);
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert!(
        t.state().limits.violations().is_empty(),
        "{:?}",
        t.state().limits.violations()
    );
    assert!(t.client.limiter_stats().pauses >= 1);
    assert!(t.client.limiter_stats().paused_seconds >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_is_a_resync_signal() {
    let t = T::start().await;
    let m = t.mailbox(0);
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        let round = t.client.changes(&m, kind, None, &t.window()).await.unwrap();
        assert!(round.full);
        t.state()
            .graph
            .expire_delta_tokens(m.id.as_deref().unwrap());
        let again = t
            .client
            .changes(&m, kind, Some(&round.cursor), &t.window())
            .await;
        assert!(
            matches!(again, Err(ConnectorError::ResyncNeeded { .. })),
            "{kind}: {again:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_event_post_after_a_dropped_answer_makes_one_event() {
    let t = T::start().await;
    let m = t.mailbox(1);
    let before = t.mailbox_state(1)["calendar"]["events"]
        .as_array()
        .unwrap()
        .len();
    t.fault(
        FaultKind::Reset,
        m.id.as_deref(),
        Some("/events"),
        Some("POST"),
        Some(1),
    );
    let s = stamp(Kind::Diary, 501);
    let written = t
        .client
        .create(&m, &diary("Offer review", &t), &s)
        .await
        .unwrap();
    let events = t.mailbox_state(1)["calendar"]["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(events.len(), before + 1, "one event");
    let posts: Vec<_> = t
        .state()
        .log
        .all()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/events"))
        .collect();
    assert_eq!(posts.len(), 2, "the POST was sent again: {posts:?}");
    assert_eq!(posts[0].fault.as_deref(), Some("reset"));
    // Created again (a lost history): Graph answers with the same event.
    let again = t
        .client
        .create(&m, &diary("Offer review", &t), &s)
        .await
        .unwrap();
    assert_eq!(again.id, written.id);
    assert_eq!(
        t.mailbox_state(1)["calendar"]["events"]
            .as_array()
            .unwrap()
            .len(),
        before + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_contacts_created_after_a_failure_exist_once() {
    let t = T::start().await;
    let m = t.mailbox(2);
    let id = m.id.clone().unwrap();
    // The POST is carried out, its answer lost.
    t.fault(
        FaultKind::Reset,
        Some(&id),
        Some("/tasks"),
        Some("POST"),
        Some(1),
    );
    let s = stamp(Kind::Task, 601);
    let made = t.client.create(&m, &task("Send offer"), &s).await.unwrap();
    t.fault(
        FaultKind::Reset,
        Some(&id),
        Some("/contacts"),
        Some("POST"),
        Some(1),
    );
    let c = stamp(Kind::Contact, 701);
    let contact_made = t.client.create(&m, &contact("Kari"), &c).await.unwrap();

    let state = t.mailbox_state(2);
    let list = state["todoLists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["displayName"] == "SuperOffice")
        .unwrap();
    let tasks: Vec<_> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["title"] == "Send offer")
        .collect();
    assert_eq!(tasks.len(), 1, "one task");
    assert_eq!(tasks[0]["id"], made.id.0.as_str());
    let folder = state["contactFolders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["displayName"] == "SuperOffice")
        .unwrap();
    let contacts = folder["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1, "one contact");
    assert_eq!(contacts[0]["id"], contact_made.id.0.as_str());

    // Created again: found, not made again.
    assert_eq!(
        t.client
            .create(&m, &task("Send offer"), &s)
            .await
            .unwrap()
            .id,
        made.id
    );
    assert_eq!(
        t.client.create(&m, &contact("Kari"), &c).await.unwrap().id,
        contact_made.id
    );
    let state = t.mailbox_state(2);
    let list = state["todoLists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["displayName"] == "SuperOffice")
        .unwrap();
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dedicated_list_and_folder_are_made_once_and_found_again() {
    let t = Arc::new(T::start().await);
    let m = t.mailbox(0);
    // Concurrent first uses.
    let mut callers = Vec::new();
    for i in 0..4 {
        let (t, m) = (t.clone(), m.clone());
        callers.push(tokio::spawn(async move {
            t.client
                .create(&m, &task(&format!("T{i}")), &stamp(Kind::Task, 800 + i))
                .await
                .unwrap();
            t.client
                .create(
                    &m,
                    &contact(&format!("C{i}")),
                    &stamp(Kind::Contact, 900 + i),
                )
                .await
                .unwrap();
        }));
    }
    for c in callers {
        c.await.unwrap();
    }
    // A restarted process finds them by name.
    let fresh = t.fresh_client();
    fresh
        .create(&m, &task("Later"), &stamp(Kind::Task, 850))
        .await
        .unwrap();
    fresh
        .create(&m, &contact("Later"), &stamp(Kind::Contact, 950))
        .await
        .unwrap();
    let state = t.mailbox_state(0);
    let lists: Vec<_> = state["todoLists"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["displayName"] == "SuperOffice")
        .collect();
    assert_eq!(lists.len(), 1, "one list");
    assert_eq!(lists[0]["tasks"].as_array().unwrap().len(), 5);
    let folders: Vec<_> = state["contactFolders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["displayName"] == "SuperOffice")
        .collect();
    assert_eq!(folders.len(), 1, "one folder");
    assert_eq!(folders[0]["contacts"].as_array().unwrap().len(), 5);
    let list_posts = t
        .state()
        .log
        .all()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/todo/lists"))
        .count();
    assert_eq!(list_posts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_found_by_their_stamps_and_stamps_written_back() {
    let t = T::start().await;
    let m = t.mailbox(0);
    for (item, s) in [
        (diary("Found", &t), stamp(Kind::Diary, 41)),
        (task("Found"), stamp(Kind::Task, 42)),
        (contact("Found"), stamp(Kind::Contact, 43)),
    ] {
        let made = t.client.create(&m, &item, &s).await.unwrap();
        let found = t
            .client
            .find_by_stamp(&m, &s)
            .await
            .unwrap()
            .expect("found");
        assert_eq!(found.id, made.id);
        assert_eq!(found.stamp.as_ref(), Some(&s));
        assert_eq!(
            found.item, item,
            "every mapped field survives the round trip"
        );
        assert_eq!(found.version, made.version);
        let mut other = s.clone();
        other.crm_id.0 += 1000;
        assert!(t.client.find_by_stamp(&m, &other).await.unwrap().is_none());
    }

    // An event and a task that started in the mailbox get their stamps.
    let (round, _) = (
        t.client
            .changes(&m, Kind::Diary, None, &t.window())
            .await
            .unwrap(),
        (),
    );
    let unstamped = round
        .changes
        .iter()
        .find_map(|c| match c {
            crmsync::connector::model::Change::Upsert(o) if o.stamp.is_none() => Some(o.id.clone()),
            _ => None,
        })
        .expect("a seeded event");
    let s = stamp(Kind::Diary, 77);
    t.client
        .set_stamp(&m, Kind::Diary, &unstamped, &s)
        .await
        .unwrap();
    assert_eq!(
        t.client.find_by_stamp(&m, &s).await.unwrap().unwrap().id,
        unstamped
    );

    let mailbox_id = m.id.clone().unwrap();
    let state = t.mailbox_state(0);
    let list = state["todoLists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["displayName"] == "SuperOffice")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.state()
        .graph
        .user_create_task(
            t.now(),
            &mailbox_id,
            &list,
            &serde_json::json!({"title": "Mine"}),
        )
        .unwrap();
    let rounds = t
        .client
        .changes(&m, Kind::Task, None, &t.window())
        .await
        .unwrap();
    let mine = rounds
        .changes
        .iter()
        .find_map(|c| match c {
            crmsync::connector::model::Change::Upsert(o) if o.stamp.is_none() => Some(o.id.clone()),
            _ => None,
        })
        .expect("the user's task");
    let s = stamp(Kind::Task, 78);
    let w = t.client.set_stamp(&m, Kind::Task, &mine, &s).await.unwrap();
    let w2 = t.client.set_stamp(&m, Kind::Task, &mine, &s).await.unwrap();
    assert_eq!(
        t.client.find_by_stamp(&m, &s).await.unwrap().unwrap().id,
        mine
    );
    assert_eq!(w.version, w2.version, "written once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_are_listed_with_lower_case_smtp_addresses() {
    let t = T::start().await;
    let boxes = crmsync::connector::MailboxConnector::mailboxes(&t.client)
        .await
        .unwrap();
    assert_eq!(boxes.len(), t.state().scenario().graph.mailboxes.len());
    for b in &boxes {
        assert!(b.smtp_addresses.iter().all(|a| a == &a.to_lowercase()));
    }
    let dina = boxes
        .iter()
        .find(|b| b.smtp_addresses.len() > 1)
        .expect("a mailbox with a proxy address");
    assert!(!dina.smtp_addresses.is_empty());
    let users = t
        .state()
        .log
        .all()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1.0/users?"))
        .collect::<Vec<_>>();
    assert_eq!(users.len(), 1);
    assert!(
        users[0]
            .path
            .contains("$select=id,displayName,userPrincipalName,mail,proxyAddresses")
    );
    assert!(users[0].path.contains("$top=999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_that_does_not_exist_stops_its_user_only() {
    let t = T::start().await;
    let gone = crmsync::connector::MailboxRef {
        address: "nobody@contoso.example".into(),
        id: None,
    };
    let e = t
        .client
        .changes(&gone, Kind::Diary, None, &t.window())
        .await;
    assert!(matches!(e, Err(ConnectorError::User { .. })), "{e:?}");
    let ok = t
        .client
        .changes(&t.mailbox(0), Kind::Diary, None, &t.window())
        .await;
    assert!(ok.is_ok());
}
