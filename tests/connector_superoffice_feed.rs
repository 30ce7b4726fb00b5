//! The rank-wide CRM change feed against the sandbox: full listings, each change once per
//! round across pages while items change under it, deletions from the travel log, contacts,
//! the id-set safety net, and what an idle tick costs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crmsync::connector::model::{CrmId, Cursor, Item, Kind, Window};
use crmsync::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions, mapping};
use crmsync::connector::{CrmConnector, RankChanges};
use crmsync::limits::LimiterSettings;
use crmsync::sandbox::superoffice::{AppointmentChange, PersonChange, UserPerson};
use crmsync::sandbox::{Emulator, FaultRule, Sandbox, SandboxOptions, Scenario};

const SMALL: [u32; 5] = [101, 102, 103, 104, 105];

async fn start(scenario: Scenario) -> Sandbox {
    Sandbox::start(SandboxOptions::local(scenario))
        .await
        .expect("sandbox starts")
}

/// A client with a small page (`$top`) and no client quota (the sandbox's limits are off).
fn client(sandbox: &Sandbox, page_size: usize) -> SuperOfficeClient {
    let options = SuperOfficeOptions {
        page_size,
        limits: Some(LimiterSettings {
            per_key: None,
            concurrency_per_key: Some(16),
            global: None,
        }),
        ..common::superoffice::client_options(sandbox.state())
    };
    SuperOfficeClient::new(
        &common::superoffice::system_user_settings(sandbox.state()),
        options,
    )
    .expect("client")
}

fn window(sandbox: &Sandbox) -> Window {
    let now = sandbox.state().clock.now();
    Window {
        start: now - jiff::SignedDuration::from_hours(24 * 30),
        end: now + jiff::SignedDuration::from_hours(24 * 120),
    }
}

fn api(sandbox: &Sandbox) -> String {
    format!(
        "{}/api/v1",
        sandbox
            .urls()
            .superoffice_tenant
            .as_str()
            .trim_end_matches('/')
    )
}

/// What the tenant holds for `associate`, by kind, in the window (for diary items).
fn expected(sandbox: &Sandbox, associate: u32, kind: Kind, window: &Window) -> BTreeSet<u32> {
    let dump = sandbox
        .state()
        .superoffice
        .dump_associate(associate, &api(sandbox))
        .expect("associate");
    let key = match kind {
        Kind::Diary => "appointments",
        Kind::Task => "todos",
        Kind::Contact => "persons",
    };
    dump[key]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| match kind {
            Kind::Diary => match mapping::read_appointment(e).unwrap() {
                Some(a) => match a.item {
                    Item::Diary(d) => d.when.overlaps(window),
                    _ => false,
                },
                None => false,
            },
            _ => true,
        })
        .map(|e| {
            let id = if kind == Kind::Contact {
                &e["PersonId"]
            } else {
                &e["AppointmentId"]
            };
            id.as_u64().unwrap() as u32
        })
        .collect()
}

/// The ids a round reported, per associate; no id twice.
fn reported(changes: &RankChanges) -> BTreeMap<u32, BTreeSet<u32>> {
    let mut all = BTreeSet::new();
    changes
        .by_associate
        .iter()
        .map(|(a, items)| {
            let ids: BTreeSet<u32> = items.iter().map(|o| o.id.0).collect();
            assert_eq!(ids.len(), items.len(), "an item twice in one round");
            for id in &ids {
                assert!(all.insert(*id), "item {id} under two associates");
            }
            (*a, ids)
        })
        .collect()
}

fn so_requests(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .state()
        .log
        .all()
        .into_iter()
        .filter(|r| r.emulator == Emulator::SuperOffice)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_listing_then_each_change_once_and_deletions_from_the_travel_log() {
    let sandbox = start(Scenario::small(jiff::Timestamp::now())).await;
    let client = client(&sandbox, 3);
    let window = window(&sandbox);
    for kind in [Kind::Diary, Kind::Task] {
        let first = client.changes(&SMALL, kind, None, &window).await.unwrap();
        assert!(first.full);
        let got = reported(&first);
        let ids = client.ids_in_window(&SMALL, kind, &window).await.unwrap();
        for a in SMALL {
            let want = expected(&sandbox, a, kind, &window);
            assert!(!want.is_empty() || a == 105 || kind == Kind::Task);
            assert_eq!(
                got.get(&a).cloned().unwrap_or_default(),
                want,
                "{kind:?} of {a}"
            );
            let safety: BTreeSet<u32> = ids[&a].iter().map(|i| i.0).collect();
            assert!(safety.is_superset(&want), "the id set covers the window");
        }
        for items in first.by_associate.values() {
            for o in items {
                assert_eq!(o.item.kind(), kind);
            }
        }
    }

    let diary = client
        .changes(&SMALL, Kind::Diary, None, &window)
        .await
        .unwrap();
    let store = &sandbox.state().superoffice;
    let now = || sandbox.state().clock.now();
    let mine: Vec<u32> = diary.by_associate[&101].iter().map(|o| o.id.0).collect();
    let theirs: Vec<u32> = diary.by_associate[&102].iter().map(|o| o.id.0).collect();
    store
        .user_update_appointment(
            mine[0],
            AppointmentChange {
                location: Some("Moved".into()),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
    store
        .user_update_appointment(
            theirs[0],
            AppointmentChange {
                title: Some("Renamed".into()),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
    let created = store
        .user_create_appointment(
            serde_json::from_value(serde_json::json!({"associate_id": 103, "title": "New", "when": {"kind": "timed", "start": "2026-12-10T09:00:00Z", "end": "2026-12-10T10:00:00Z", "time_zone": "Europe/Oslo"}})).unwrap(),
            now(),
        )
        .unwrap();
    let todo = store
        .user_create_appointment(
            serde_json::from_value(serde_json::json!({"associate_id": 103, "todo": true, "title": "Call", "when": {"kind": "all_day", "start": "2026-12-05", "end": "2026-12-06"}})).unwrap(),
            now(),
        )
        .unwrap();
    store.user_delete_appointment(mine[1], now()).unwrap();
    // Outside the rank: not reported.
    let other = store
        .user_create_appointment(
            serde_json::from_value(serde_json::json!({"associate_id": 105, "title": "Not ours", "when": {"kind": "timed", "start": "2026-12-10T09:00:00Z", "end": "2026-12-10T10:00:00Z", "time_zone": "Europe/Oslo"}})).unwrap(),
            now(),
        )
        .unwrap();

    let rank = [101, 102, 103, 104];
    let next = client
        .changes(&rank, Kind::Diary, Some(&diary.cursor), &window)
        .await
        .unwrap();
    assert!(!next.full);
    let got = reported(&next);
    let want: BTreeMap<u32, BTreeSet<u32>> = [
        (101, BTreeSet::from([mine[0]])),
        (102, BTreeSet::from([theirs[0]])),
        (103, BTreeSet::from([created.id])),
    ]
    .into();
    assert_eq!(got, want);
    assert!(next.deleted.contains(&CrmId(mine[1])), "{:?}", next.deleted);
    assert!(
        !got.values()
            .any(|ids| ids.contains(&other.id) || ids.contains(&todo.id))
    );
    let renamed = &next.by_associate[&102][0];
    match &renamed.item {
        Item::Diary(d) => assert_eq!(d.subject, "Renamed"),
        other => panic!("{other:?}"),
    }

    // Nothing changed since: nothing reported, and nothing fetched.
    sandbox.state().log.clear();
    let idle = client
        .changes(&rank, Kind::Diary, Some(&next.cursor), &window)
        .await
        .unwrap();
    assert!(idle.by_associate.is_empty(), "{:?}", reported(&idle));
    assert!(
        so_requests(&sandbox)
            .iter()
            .all(|r| !r.contains("/Appointment/")),
        "{:?}",
        so_requests(&sandbox)
    );
    // A later round with the old cursor may repeat, never lose.
    let again = client
        .changes(&rank, Kind::Diary, Some(&diary.cursor), &window)
        .await
        .unwrap();
    assert!(reported(&again)[&101].contains(&mine[0]));
    // A cursor from elsewhere is a full listing.
    let strange = client
        .changes(&rank, Kind::Diary, Some(&Cursor("{}".into())), &window)
        .await
        .unwrap();
    assert!(strange.full);
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_made_while_pages_are_read_are_all_found_each_once_per_round() {
    let sandbox = start(Scenario::small(jiff::Timestamp::now())).await;
    let client = client(&sandbox, 2);
    let window = window(&sandbox);
    let rank = SMALL;
    let first = client
        .changes(&rank, Kind::Diary, None, &window)
        .await
        .unwrap();
    let ids: Vec<u32> = first
        .by_associate
        .values()
        .flatten()
        .map(|o| o.id.0)
        .collect();
    assert!(ids.len() > 10);
    // Pages answer slowly, so that the editor's writes land between them.
    sandbox
        .state()
        .faults
        .add(serde_json::from_value::<FaultRule>(serde_json::json!({"kind": "slow", "delay": 15, "emulator": "superoffice", "path_contains": "&$skip=", "probability": 1.0})).unwrap())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let editor = {
        let state = sandbox.state().clone();
        let ids = ids.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut edits = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) && n < 120 {
                let id = ids[(n * 7) % ids.len()];
                let change = AppointmentChange {
                    location: Some(format!("Room {n}")),
                    ..Default::default()
                };
                let a = state
                    .superoffice
                    .user_update_appointment(id, change, state.clock.now())
                    .unwrap();
                let _ = a;
                edits.push((id, state.superoffice.appointment(id).unwrap().updated));
                n += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            edits
        })
    };
    let mut cursor = first.cursor;
    let mut seen: Vec<(u32, jiff::Timestamp)> = Vec::new();
    let mut record = |changes: &RankChanges| {
        reported(changes);
        for o in changes.by_associate.values().flatten() {
            seen.push((o.id.0, o.modified));
        }
    };
    for _ in 0..6 {
        let round = client
            .changes(&rank, Kind::Diary, Some(&cursor), &window)
            .await
            .unwrap();
        record(&round);
        cursor = round.cursor;
    }
    stop.store(true, Ordering::SeqCst);
    let edits = editor.await.unwrap();
    // An edit right after a round, very likely in the same second as what it saw.
    let last = ids[1];
    sandbox
        .state()
        .superoffice
        .user_update_appointment(
            last,
            AppointmentChange {
                location: Some("Same second".into()),
                ..Default::default()
            },
            sandbox.state().clock.now(),
        )
        .unwrap();
    let last_at = sandbox
        .state()
        .superoffice
        .appointment(last)
        .unwrap()
        .updated;
    for _ in 0..3 {
        let round = client
            .changes(&rank, Kind::Diary, Some(&cursor), &window)
            .await
            .unwrap();
        record(&round);
        cursor = round.cursor;
    }
    for (id, at) in edits.iter().chain([(last, last_at)].iter()) {
        assert!(
            seen.iter().any(|(i, m)| i == id && m >= at),
            "the edit of {id} at {at} was never reported"
        );
    }
    // Quiet now: a round reports nothing.
    let quiet = client
        .changes(&rank, Kind::Diary, Some(&cursor), &window)
        .await
        .unwrap();
    assert!(quiet.by_associate.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_follow_person_cards_and_our_contact() {
    let sandbox = start(Scenario::small(jiff::Timestamp::now())).await;
    let client = client(&sandbox, 4);
    let window = window(&sandbox);
    let first = client
        .changes(&SMALL, Kind::Contact, None, &window)
        .await
        .unwrap();
    assert!(first.full);
    let got = reported(&first);
    for a in SMALL {
        assert_eq!(
            got.get(&a).cloned().unwrap_or_default(),
            expected(&sandbox, a, Kind::Contact, &window),
            "persons of {a}"
        );
    }
    let anna_person = &first.by_associate[&101][0];
    let Item::Contact(contact) = &anna_person.item else {
        panic!()
    };
    assert!(!contact.emails.is_empty());
    assert!(contact.company.is_some());
    let company = anna_person.links.company.expect("a company");

    let store = &sandbox.state().superoffice;
    let now = || sandbox.state().clock.now();
    let person = anna_person.id.0;
    store
        .user_update_person(
            person,
            PersonChange {
                emails: Some(vec!["first@x.example".into(), "second@x.example".into()]),
                title: Some("CEO".into()),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
    let next = client
        .changes(&SMALL, Kind::Contact, Some(&first.cursor), &window)
        .await
        .unwrap();
    assert_eq!(
        reported(&next),
        BTreeMap::from([(101, BTreeSet::from([person]))])
    );
    let Item::Contact(changed) = &next.by_associate[&101][0].item else {
        panic!()
    };
    assert_eq!(changed.emails, vec!["first@x.example", "second@x.example"]);
    assert_eq!(changed.job_title.as_deref(), Some("CEO"));

    // The company goes to BO: all its persons are now BO's.
    store
        .user_set_our_contact(company, Some(102), now())
        .unwrap();
    let moved = client
        .changes(&SMALL, Kind::Contact, Some(&next.cursor), &window)
        .await
        .unwrap();
    let persons_of_company: BTreeSet<u32> = first.by_associate[&101]
        .iter()
        .filter(|o| o.links.company == Some(company))
        .map(|o| o.id.0)
        .collect();
    assert_eq!(reported(&moved).get(&102), Some(&persons_of_company));
    let scope = client
        .ids_in_window(&SMALL, Kind::Contact, &window)
        .await
        .unwrap();
    assert!(
        persons_of_company
            .iter()
            .all(|p| scope[&102].contains(&CrmId(*p)))
    );
    assert!(
        persons_of_company
            .iter()
            .all(|p| !scope[&101].contains(&CrmId(*p)))
    );

    // A new person; a person deleted in the user interface leaves the id set.
    let new = store
        .user_create_person(
            UserPerson {
                company_id: company,
                first_name: "Nina".into(),
                last_name: "Ny".into(),
                emails: vec![],
                phones: vec!["+47 1".into()],
                mobiles: vec!["+47 2".into()],
                title: String::new(),
            },
            now(),
        )
        .unwrap();
    store.user_delete_person(person).unwrap();
    let later = client
        .changes(&SMALL, Kind::Contact, Some(&moved.cursor), &window)
        .await
        .unwrap();
    assert_eq!(
        reported(&later),
        BTreeMap::from([(102, BTreeSet::from([new.id]))])
    );
    let Item::Contact(nina) = &later.by_associate[&102][0].item else {
        panic!()
    };
    assert_eq!(nina.business_phones, vec!["+47 1"]);
    assert_eq!(nina.mobile_phone.as_deref(), Some("+47 2"));
    let scope = client
        .ids_in_window(&SMALL, Kind::Contact, &window)
        .await
        .unwrap();
    assert!(!scope[&102].contains(&CrmId(person)));

    // Persons by id, as diary items link them.
    let found = client
        .persons(&[CrmId(new.id), CrmId(person), CrmId(new.id)])
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the deleted one is gone, the other once");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_tick_for_a_rank_of_1000_costs_six_requests() {
    let scenario = Scenario::load(
        "generated:users=1000,events=2,tasks=2,contacts=1,seed=3",
        jiff::Timestamp::now(),
    )
    .unwrap();
    let sandbox = start(scenario).await;
    let client = client(&sandbox, 500);
    let window = window(&sandbox);
    let rank: Vec<u32> = sandbox
        .state()
        .scenario()
        .superoffice
        .associates
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(rank.len(), 1000);
    let mut cursors = Vec::new();
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        let full = client.changes(&rank, kind, None, &window).await.unwrap();
        assert!(
            full.by_associate.len() > 900,
            "{kind:?}: {}",
            full.by_associate.len()
        );
        cursors.push((kind, full.cursor));
    }
    // Some minutes pass: the margin the feed re-reads below its watermark moves past the
    // seeded items.
    sandbox.state().clock.advance(Duration::from_secs(600));
    for tick in 0..3 {
        sandbox.state().log.clear();
        for (kind, cursor) in cursors.iter_mut() {
            let round = client
                .changes(&rank, *kind, Some(cursor), &window)
                .await
                .unwrap();
            // The first round after a listing may repeat what changed just before it (items
            // outside the window, say); later ones have nothing to say.
            if tick > 0 {
                assert!(
                    round.by_associate.is_empty() && round.deleted.is_empty(),
                    "{kind:?}: {:?}",
                    reported(&round).len()
                );
            }
            *cursor = round.cursor;
        }
        if tick == 0 {
            continue;
        }
        let requests: Vec<String> = so_requests(&sandbox)
            .iter()
            .map(|r| r.chars().take(120).collect())
            .collect();
        // Diary: the list and the travel log; to-dos: the list (the log answer is shared);
        // contacts: persons, companies, the log.
        assert_eq!(requests.len(), 6, "{requests:#?}");
    }
}

/// The feed reads back a create whose pair is not committed (a pass cut off after it must
/// settle it), and not one whose pair is (one GET per item after an initial sync); an edit
/// of that item afterwards is read as usual.
#[tokio::test(flavor = "multi_thread")]
async fn the_feed_skips_the_clients_committed_creates_but_not_later_edits() {
    let sandbox = start(Scenario::small(jiff::Timestamp::now())).await;
    let client = client(&sandbox, 50);
    let window = window(&sandbox);
    let first = client
        .changes(&SMALL, Kind::Diary, None, &window)
        .await
        .unwrap();
    let template = first.by_associate[&101][0].item.clone();
    let Item::Diary(mut d) = template else {
        panic!("a diary item")
    };
    let reported_ids = |changes: &RankChanges| -> BTreeSet<u32> {
        changes
            .by_associate
            .values()
            .flatten()
            .map(|o| o.id.0)
            .collect()
    };

    // Not committed: read back.
    d.subject = "Cut off".into();
    let cut_off = client.create(101, &Item::Diary(d.clone())).await.unwrap();
    let next = client
        .changes(&SMALL, Kind::Diary, Some(&first.cursor), &window)
        .await
        .unwrap();
    assert!(reported_ids(&next).contains(&cut_off.id.0));

    // Committed: not read back.
    d.subject = "Made by crmsync".into();
    let created = client.create(101, &Item::Diary(d)).await.unwrap();
    client.create_committed(created.id, created.modified);
    sandbox.state().log.clear();
    let next = client
        .changes(&SMALL, Kind::Diary, Some(&next.cursor), &window)
        .await
        .unwrap();
    assert!(
        !reported_ids(&next).contains(&created.id.0),
        "its own committed create"
    );
    let read_back = format!("/Appointment/{}", created.id.0);
    let requests = so_requests(&sandbox);
    assert!(
        !requests.iter().any(|r| r.ends_with(&read_back)),
        "no read of its own create: {requests:?}"
    );

    sandbox.state().clock.advance(Duration::from_secs(5));
    sandbox
        .state()
        .superoffice
        .user_update_appointment(
            created.id.0,
            AppointmentChange {
                title: Some("Renamed by the user".into()),
                ..Default::default()
            },
            sandbox.state().clock.now(),
        )
        .unwrap();
    let after = client
        .changes(&SMALL, Kind::Diary, Some(&next.cursor), &window)
        .await
        .unwrap();
    let edited: Vec<_> = after
        .by_associate
        .values()
        .flatten()
        .filter(|o| o.id == created.id)
        .collect();
    assert_eq!(edited.len(), 1, "the user's edit is read");
    let Item::Diary(d) = &edited[0].item else {
        panic!("a diary item")
    };
    assert_eq!(d.subject, "Renamed by the user");
}
