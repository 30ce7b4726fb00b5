//! Delta rounds through the client: a full round, then incremental ones where a create, an
//! update and a delete are each seen once, with stamps on what carries one.

use crmsync::connector::MailboxConnector;
use crmsync::connector::model::{Change, Changes, Item, Kind, MailboxItemId, Observed};
use serde_json::json;

use super::{T, stamp};
use super::{contact, diary, task};

fn upserts(c: &Changes<MailboxItemId>) -> Vec<&Observed<MailboxItemId>> {
    c.changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(o) => Some(o.as_ref()),
            Change::Removed(_) => None,
        })
        .collect()
}

fn removed(c: &Changes<MailboxItemId>) -> Vec<&MailboxItemId> {
    c.changes
        .iter()
        .filter_map(|c| match c {
            Change::Removed(id) => Some(id),
            Change::Upsert(_) => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_diary_round_then_incremental_ones_see_each_change_once() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let user = m.id.clone().unwrap();
    // Enough items for several delta pages (the page size is made small below) and for the
    // stamps to be read by a listing.
    let mut made = Vec::new();
    for i in 0..25 {
        let s = stamp(Kind::Diary, 1000 + i);
        made.push((
            t.client
                .create(&m, &diary(&format!("CRM {i}"), &t), &s)
                .await
                .unwrap(),
            s,
        ));
    }
    let full = t
        .client
        .changes(&m, Kind::Diary, None, &t.window())
        .await
        .unwrap();
    assert!(full.full);
    let seen = upserts(&full);
    for (w, s) in &made {
        let o = seen
            .iter()
            .find(|o| o.id == w.id)
            .expect("every created event");
        assert_eq!(o.stamp.as_ref(), Some(s), "its stamp");
        assert_eq!(o.version, w.version);
    }
    let seeded = seen.iter().filter(|o| o.stamp.is_none()).count();
    assert!(seeded > 0, "the user's own events, without stamps");

    // Nothing changed: an empty round.
    let idle = t
        .client
        .changes(&m, Kind::Diary, Some(&full.cursor), &t.window())
        .await
        .unwrap();
    assert!(idle.changes.is_empty() && !idle.full);

    // A user creates, changes and deletes in Outlook; crmsync changes one of its own.
    let start = t.now() + jiff::SignedDuration::from_hours(30);
    let body = json!({"subject": "Dentist",
        "start": {"dateTime": start.to_string(), "timeZone": "UTC"},
        "end": {"dateTime": (start + jiff::SignedDuration::from_hours(1)).to_string(), "timeZone": "UTC"}});
    let created = t
        .state()
        .graph
        .user_create_event(t.now(), &user, &body)
        .unwrap();
    let changed = &made[0].0.id;
    t.state()
        .graph
        .user_update_event(
            t.now(),
            &user,
            &changed.0,
            &json!({"subject": "Moved by the user"}),
        )
        .unwrap();
    let deleted = &made[1].0.id;
    t.state()
        .graph
        .user_delete_event(t.now(), &user, &deleted.0)
        .unwrap();
    let mut item = match diary("CRM 2", &t) {
        Item::Diary(d) => d,
        _ => unreachable!(),
    };
    item.location = "Bergen".into();
    let ours = t
        .client
        .update(
            &m,
            &made[2].0.id,
            &Item::Diary(item.clone()),
            Some(&made[2].0.version),
        )
        .await
        .unwrap();
    assert_ne!(ours.version, made[2].0.version);

    let next = t
        .client
        .changes(&m, Kind::Diary, Some(&idle.cursor), &t.window())
        .await
        .unwrap();
    let up = upserts(&next);
    assert_eq!(up.len(), 3, "{up:?}");
    let new = up
        .iter()
        .find(|o| o.id.0 == created["id"].as_str().unwrap())
        .unwrap();
    assert!(new.stamp.is_none());
    let moved = up.iter().find(|o| &o.id == changed).unwrap();
    assert_eq!(
        moved.stamp.as_ref(),
        Some(&made[0].1),
        "stamp read on an incremental round"
    );
    match &moved.item {
        Item::Diary(d) => assert_eq!(d.subject, "Moved by the user"),
        other => panic!("{other:?}"),
    }
    let echo = up.iter().find(|o| o.id == made[2].0.id).unwrap();
    assert_eq!(
        echo.version, ours.version,
        "our own write comes back with the version we got"
    );
    assert_eq!(echo.item, Item::Diary(item));
    assert_eq!(removed(&next), vec![deleted]);

    let after = t
        .client
        .changes(&m, Kind::Diary, Some(&next.cursor), &t.window())
        .await
        .unwrap();
    assert!(after.changes.is_empty(), "each change once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_and_contact_rounds_carry_stamps_and_round_trip_every_field() {
    let t = T::start().await;
    let m = t.mailbox(1);
    for kind in [Kind::Task, Kind::Contact] {
        let make = |i: u32| match kind {
            Kind::Task => task(&format!("Task {i}")),
            _ => contact(&format!("Person{i}")),
        };
        let full = t.client.changes(&m, kind, None, &t.window()).await.unwrap();
        assert!(full.changes.is_empty(), "a new list or folder is empty");
        let mut made = Vec::new();
        for i in 0..3 {
            let s = stamp(kind, 2000 + i);
            made.push((t.client.create(&m, &make(i), &s).await.unwrap(), s, make(i)));
        }
        let next = t
            .client
            .changes(&m, kind, Some(&full.cursor), &t.window())
            .await
            .unwrap();
        let up = upserts(&next);
        assert_eq!(up.len(), 3);
        for (w, s, item) in &made {
            let o = up.iter().find(|o| o.id == w.id).unwrap();
            assert_eq!(o.stamp.as_ref(), Some(s));
            assert_eq!(&o.item, item, "{kind}: every mapped field");
            assert_eq!(o.version, w.version);
        }
        // Completed in To Do / changed by crmsync; deleted.
        let changed = match kind {
            Kind::Task => {
                let mut i = match make(0) {
                    Item::Task(t) => t,
                    _ => unreachable!(),
                };
                i.completed = Some("2026-11-20T08:00:00Z".parse().unwrap());
                Item::Task(i)
            }
            _ => {
                let mut i = match make(0) {
                    Item::Contact(c) => c,
                    _ => unreachable!(),
                };
                i.emails.push("second@example.no".into());
                Item::Contact(i)
            }
        };
        // Guarded by the version made: nobody changed the item since.
        let w = t
            .client
            .update(&m, &made[0].0.id, &changed, Some(&made[0].0.version))
            .await
            .unwrap();
        assert_eq!(
            t.client.delete(&m, kind, &made[1].0.id).await.unwrap(),
            crmsync::connector::Deleted::Deleted
        );
        assert_eq!(
            t.client.delete(&m, kind, &made[1].0.id).await.unwrap(),
            crmsync::connector::Deleted::AlreadyGone
        );
        let last = t
            .client
            .changes(&m, kind, Some(&next.cursor), &t.window())
            .await
            .unwrap();
        let up = upserts(&last);
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].item, changed);
        assert_eq!(up[0].version, w.version);
        assert_eq!(removed(&last), vec![&made[1].0.id]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_keeps_the_users_categories_and_all_day_dates() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let user = m.id.clone().unwrap();
    let s = stamp(Kind::Diary, 3000);
    let mut item = match diary("All day", &t) {
        Item::Diary(d) => d,
        _ => unreachable!(),
    };
    item.when = crmsync::connector::model::When::AllDay {
        start: "2026-03-29".parse().unwrap(),
        end: "2026-03-30".parse().unwrap(),
    };
    let w = t
        .client
        .create(&m, &Item::Diary(item.clone()), &s)
        .await
        .unwrap();
    t.state()
        .graph
        .user_update_event(
            t.now(),
            &user,
            &w.id.0,
            &json!({"categories": ["Meeting", "SuperOffice", "Golf"]}),
        )
        .unwrap();
    item.task_type = Some("Phone".into());
    item.subject = "All day, renamed".into();
    t.client
        .update(&m, &w.id, &Item::Diary(item.clone()), None)
        .await
        .unwrap();
    let found = t.client.find_by_stamp(&m, &s).await.unwrap().unwrap();
    assert_eq!(found.item, Item::Diary(item));
    let state = t.mailbox_state(0);
    let event = state["calendar"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == w.id.0.as_str())
        .unwrap()
        .clone();
    let mut categories: Vec<String> = serde_json::from_value(event["categories"].clone()).unwrap();
    categories.sort();
    assert_eq!(categories, vec!["Golf", "Phone", "SuperOffice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_item_is_read_with_its_stamp_and_a_deleted_one_is_none() {
    let t = T::start().await;
    let m = t.mailbox(0);
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        let item = match kind {
            Kind::Diary => diary("Read back", &t),
            Kind::Task => task("Read back"),
            Kind::Contact => contact("Readback"),
        };
        let s = stamp(kind, 4242);
        let w = t.client.create(&m, &item, &s).await.unwrap();
        let got = t
            .client
            .get(&m, kind, &w.id)
            .await
            .unwrap()
            .expect("the item");
        assert_eq!(got.item, item, "{kind}");
        assert_eq!(got.stamp.as_ref(), Some(&s), "{kind}");
        assert_eq!(got.version, w.version, "{kind}");
        t.client.delete(&m, kind, &w.id).await.unwrap();
        assert_eq!(t.client.get(&m, kind, &w.id).await.unwrap(), None, "{kind}");
    }
}
