//! `$batch`: batches of 20, a 429 inside a batch (only that item again, after its own
//! `Retry-After`), the idle poll of many (mailbox, kind) pairs, runs of writes.

use std::time::{Duration, Instant};

use crmsync::connector::graph::{BatchItem, PollPair, Write, WriteOutcome};
use crmsync::connector::http::Retry;
use crmsync::connector::model::{Change, Item, Kind};
use crmsync::connector::{ConnectorError, Deleted, MailboxConnector};
use crmsync::sandbox::FaultKind;
use reqwest::Method;

use super::{T, stamp};
use super::{diary, task};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_idle_pairs_cost_two_round_trips() {
    let t = T::generated(20).await;
    let mut pairs: Vec<PollPair> = Vec::new();
    for i in 0..20 {
        let m = t.mailbox(i);
        for kind in [Kind::Diary, Kind::Task] {
            let round = t.client.changes(&m, kind, None, &t.window()).await.unwrap();
            pairs.push((m.clone(), kind, round.cursor));
        }
    }
    let since = t.last_seq();
    let answers = t.client.poll(&pairs).await;
    assert_eq!(answers.len(), 40);
    for (a, (_, _, cursor)) in answers.iter().zip(&pairs) {
        let a = a.as_ref().unwrap();
        assert!(a.changes.is_empty() && !a.full);
        assert!(!a.cursor.0.is_empty());
        let _ = cursor;
    }
    let trips = t.round_trips(since);
    assert_eq!(trips.len(), 2, "{trips:?}");
    assert!(
        trips
            .iter()
            .all(|r| r.path.ends_with("/$batch") && r.status == 200)
    );
    let items = t
        .state()
        .log
        .all()
        .into_iter()
        .filter(|r| r.seq > since && r.batch.is_some())
        .count();
    assert_eq!(items, 40, "each pair once");

    // One pair changes and one mailbox's tokens expire: only they differ.
    let user = t.mailbox(3).id.unwrap();
    let start = t.now() + jiff::SignedDuration::from_hours(5);
    t.state()
        .graph
        .user_create_event(
            t.now(),
            &user,
            &serde_json::json!({"subject": "New", "start": {"dateTime": start.to_string(), "timeZone": "UTC"},
                "end": {"dateTime": (start + jiff::SignedDuration::from_hours(1)).to_string(), "timeZone": "UTC"}}),
        )
        .unwrap();
    t.state()
        .graph
        .expire_delta_tokens(&t.mailbox(7).id.unwrap());
    let pairs: Vec<PollPair> = answers
        .into_iter()
        .zip(pairs)
        .map(|(a, (m, k, _))| (m, k, a.unwrap().cursor))
        .collect();
    let since = t.last_seq();
    let answers = t.client.poll(&pairs).await;
    for (i, a) in answers.iter().enumerate() {
        let (m, kind, _) = &pairs[i];
        if m.id.as_deref() == Some(user.as_str()) && *kind == Kind::Diary {
            let a = a.as_ref().unwrap();
            assert_eq!(a.changes.len(), 1);
            assert!(matches!(&a.changes[0], Change::Upsert(o) if o.stamp.is_none()));
        } else if m.id == t.mailbox(7).id {
            assert!(
                matches!(a, Err(ConnectorError::ResyncNeeded { .. })),
                "{a:?}"
            );
        } else {
            assert!(a.as_ref().unwrap().changes.is_empty());
        }
    }
    // Two batches, and the changed pair's stamps: one more batch.
    let trips = t.round_trips(since);
    assert_eq!(trips.len(), 3, "{trips:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_hold_twenty_and_a_throttled_item_alone_goes_again_after_its_wait() {
    let t = T::generated(4).await;
    let mut items = Vec::new();
    // The throttled mailbox has one item in the batch: items of one mailbox in one batch go
    // out together, so a 429 to one cannot hold back the others of the same batch.
    for i in 0..30 {
        let m = t.mailbox(if i == 5 { 3 } else { i % 3 });
        items.push(BatchItem {
            url: format!("/users/{}/events?$top=1&$select=id", m.id.clone().unwrap()),
            mailbox: m,
            method: Method::GET,
            prefer: None,
            body: None,
            retry: Retry::Safe,
            if_match: None,
        });
    }
    let throttled = t.mailbox(3).id.unwrap();
    t.fault(
        FaultKind::TooManyRequests {
            retry_after_secs: 1.5,
            as_http_date: false,
        },
        Some(&throttled),
        None,
        None,
        Some(1),
    );
    let since = t.last_seq();
    let started = Instant::now();
    let replies = t.client.batch(items).await;
    assert!(
        replies
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status == 200))
    );
    let trips = t.round_trips(since);
    assert_eq!(
        trips.len(),
        3,
        "20 + 10, then the throttled item alone: {trips:?}"
    );
    let log = t.state().log.all();
    let size = |seq: u64| log.iter().filter(|r| r.batch == Some(seq)).count();
    let mut sizes: Vec<usize> = trips.iter().map(|r| size(r.seq)).collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 10, 20]);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        t.state().limits.violations().is_empty(),
        "{:?}",
        t.state().limits.violations()
    );
    let retried: Vec<_> = log
        .iter()
        .filter(|r| r.seq > since && r.mailbox.as_deref() == Some(throttled.as_str()))
        .collect();
    assert_eq!(retried.iter().filter(|r| r.status == 429).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_writes_goes_in_batches_and_answers_each_write() {
    let t = T::start().await;
    let m = t.mailbox(4);
    let events: Vec<_> = (0..3)
        .map(|i| (diary(&format!("Run {i}"), &t), stamp(Kind::Diary, 4000 + i)))
        .collect();
    let made = t
        .client
        .create(&m, &events[0].0, &events[0].1)
        .await
        .unwrap();
    let gone = t
        .client
        .create(&m, &events[1].0, &events[1].1)
        .await
        .unwrap();
    let mut changed = match events[0].0.clone() {
        Item::Diary(d) => d,
        _ => unreachable!(),
    };
    changed.subject = "Run 0, changed".into();
    let writes = vec![
        Write::Create {
            item: events[2].0.clone(),
            stamp: events[2].1.clone(),
        },
        Write::Create {
            item: task("Run task"),
            stamp: stamp(Kind::Task, 4100),
        },
        Write::Update {
            id: made.id.clone(),
            item: Item::Diary(changed.clone()),
            expected: Some(made.version.clone()),
        },
        Write::Delete {
            kind: Kind::Diary,
            id: gone.id.clone(),
        },
        Write::Delete {
            kind: Kind::Diary,
            id: gone.id.clone(),
        },
    ];
    let out = t.client.write_batch(&m, &writes).await;
    assert_eq!(out.len(), 5);
    assert!(
        matches!(&out[0], Ok(WriteOutcome::Written(_))),
        "{:?}",
        out[0]
    );
    assert!(
        matches!(&out[1], Ok(WriteOutcome::Written(_))),
        "{:?}",
        out[1]
    );
    assert!(
        matches!(&out[2], Ok(WriteOutcome::Written(_))),
        "{:?}",
        out[2]
    );
    let deletes: Vec<_> = out[3..]
        .iter()
        .map(|r| match r {
            Ok(WriteOutcome::Deleted(d)) => *d,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(deletes.contains(&Deleted::Deleted));
    let found = t
        .client
        .find_by_stamp(&m, &events[0].1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.item, Item::Diary(changed));
    assert!(
        t.client
            .find_by_stamp(&m, &events[2].1)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        t.client
            .find_by_stamp(&m, &stamp(Kind::Task, 4100))
            .await
            .unwrap()
            .is_some()
    );
    // Sent again (a crash before the answers were recorded): nothing is made twice.
    let again = t.client.write_batch(&m, &writes[..2]).await;
    match (&out[1], &again[1]) {
        (Ok(WriteOutcome::Written(a)), Ok(WriteOutcome::Written(b))) => assert_eq!(a.id, b.id),
        other => panic!("{other:?}"),
    }
    let state = t.mailbox_state(4);
    let list = state["todoLists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["displayName"] == "SuperOffice")
        .unwrap();
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1);
}
