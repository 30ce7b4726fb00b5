//! The SuperOffice client against the sandbox: authentication (system user and Basic), ticket
//! renewal, tenant status, error classes, retries, limits, and secrets kept out of logs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use crmsync::connector::model::{
    CrmId, DiaryItem, Importance, Item, Kind, ShowAs, TaskItem, Version, When,
};
use crmsync::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crmsync::connector::{ConnectorError, CrmConnector, Deleted};
use crmsync::limits::Backoff;
use crmsync::sandbox::scenario::When as SeedWhen;
use crmsync::sandbox::superoffice::{AppointmentChange, UserAppointment};
use crmsync::sandbox::{FaultRule, LimitSpec, Rate, Sandbox, SandboxOptions, Scenario};

async fn start() -> Sandbox {
    Sandbox::start(SandboxOptions::local(Scenario::small(
        jiff::Timestamp::now(),
    )))
    .await
    .expect("sandbox starts")
}

fn fast(sandbox: &Sandbox) -> SuperOfficeOptions {
    let mut options = common::superoffice::client_options(sandbox.state());
    options.backoff = Backoff {
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
        retries: 3,
    };
    options
}

fn online(sandbox: &Sandbox) -> SuperOfficeClient {
    SuperOfficeClient::new(
        &common::superoffice::system_user_settings(sandbox.state()),
        fast(sandbox),
    )
    .expect("client")
}

fn fault(json: serde_json::Value) -> FaultRule {
    serde_json::from_value(json).expect("a fault rule")
}

fn meeting(start: &str, end: &str) -> Item {
    Item::Diary(DiaryItem {
        subject: "Quarterly review".into(),
        body: "Agenda:\n1. numbers".into(),
        when: When::Timed {
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        },
        location: "Oslo".into(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: Some(15),
        task_type: Some("Meeting".into()),
        organized_by_other: false,
        series: None,
    })
}

/// Requests to the SuperOffice hosts since the log was last cleared: (method, path, status).
fn so_requests(sandbox: &Sandbox) -> Vec<(String, String, u16)> {
    sandbox
        .state()
        .log
        .all()
        .into_iter()
        .filter(|r| r.emulator == crmsync::sandbox::Emulator::SuperOffice)
        .map(|r| (r.method, r.path, r.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_user_flow_reads_associates_with_their_person_card_email() {
    let sandbox = start().await;
    let client = online(&sandbox);
    let associates = client.associates().await.expect("associates");
    let by_login = |login: &str| {
        associates
            .iter()
            .find(|a| a.login == login)
            .expect(login)
            .clone()
    };
    assert_eq!(associates.len(), 5);
    let anna = by_login("ANNA");
    assert_eq!(anna.id, 101);
    assert_eq!(anna.email.as_deref(), Some("anna.berg@contoso.example"));
    assert_eq!(anna.full_name, "Anna Berg");
    assert_eq!(anna.person_id, Some(1001));
    assert!(anna.active);
    assert_eq!(by_login("EVA").email, None, "EVA's card has no e-mail");
    assert_eq!(client.tickets_issued(), 1);
    assert_eq!(client.tenant_resolutions(), 1);
    // The exchange at the environment host, the status document, then the tenant's API.
    let log = so_requests(&sandbox);
    let at =
        |f: &dyn Fn(&(String, String, u16)) -> bool| log.iter().position(f).expect("request made");
    let state = at(&|(m, p, s)| m == "GET" && p.starts_with("/api/state/") && *s == 200);
    let exchange = at(&|(m, p, s)| {
        m == "POST" && p == "/Login/api/PartnerSystemUser/Authenticate" && *s == 200
    });
    let api = at(&|(_, p, s)| p.contains("/api/v1/Archive/InternalUsers?") && *s == 200);
    assert!(state < api && exchange < api, "{log:?}");
    let ticket_requests = log
        .iter()
        .filter(|(_, p, _)| p.contains("Authenticate"))
        .count();
    assert_eq!(ticket_requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_ticket_is_renewed_after_the_401_and_callers_share_the_renewal() {
    let sandbox = start().await;
    let client = Arc::new(online(&sandbox));
    client
        .get(Kind::Contact, CrmId(1001))
        .await
        .expect("first call");
    assert_eq!(client.tickets_issued(), 1);
    assert_eq!(sandbox.state().superoffice.expire_tickets(), 1);
    let mut calls = Vec::new();
    for _ in 0..10 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            client.get(Kind::Contact, CrmId(1001)).await
        }));
    }
    for call in calls {
        assert!(call.await.unwrap().expect("renewed").is_some());
    }
    assert_eq!(client.tickets_issued(), 2, "one renewal for all callers");
    assert_eq!(sandbox.state().superoffice.tickets_issued(), 2);
    assert!(so_requests(&sandbox).iter().any(|(_, _, s)| *s == 401));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ticket_unused_for_nearly_six_hours_is_renewed_before_it_lapses() {
    let sandbox = start().await;
    let client = online(&sandbox);
    client.get(Kind::Contact, CrmId(1001)).await.unwrap();
    // Used again within hours: the sliding window keeps it.
    sandbox.state().clock.advance(Duration::from_secs(3 * 3600));
    client.get(Kind::Contact, CrmId(1001)).await.unwrap();
    assert_eq!(client.tickets_issued(), 1);
    // Unused for 5 h 55 min: renewed before the call, so no request meets a 401.
    sandbox
        .state()
        .clock
        .advance(Duration::from_secs(5 * 3600 + 55 * 60));
    sandbox.state().log.clear();
    client.get(Kind::Contact, CrmId(1001)).await.unwrap();
    assert_eq!(client.tickets_issued(), 2);
    assert!(
        so_requests(&sandbox).iter().all(|(_, _, s)| *s != 401),
        "{:?}",
        so_requests(&sandbox)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_that_is_not_running_is_a_service_error_naming_its_state() {
    let sandbox = start().await;
    sandbox
        .state()
        .superoffice
        .set_tenant_state("OfflineMaintenance")
        .unwrap();
    let client = online(&sandbox);
    match client.associates().await {
        Err(ConnectorError::Service { what, .. }) => {
            assert!(what.contains("OfflineMaintenance"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    // Going down while in use: the 503s lead to the status, and the status to the error.
    sandbox
        .state()
        .superoffice
        .set_tenant_state("Running")
        .unwrap();
    let client = online(&sandbox);
    client.associates().await.expect("running");
    sandbox
        .state()
        .superoffice
        .set_tenant_state("Suspended")
        .unwrap();
    match client.get(Kind::Diary, CrmId(1)).await {
        Err(ConnectorError::Service { what, .. }) => assert!(what.contains("Suspended"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_authentication_reaches_the_api_below_the_web_root() {
    let sandbox = start().await;
    let client = SuperOfficeClient::new(
        &common::superoffice::basic_settings(sandbox.state()),
        fast(&sandbox),
    )
    .unwrap();
    assert_eq!(client.associates().await.unwrap().len(), 5);
    assert_eq!(client.tickets_issued(), 0);
    assert!(
        so_requests(&sandbox)
            .iter()
            .all(|(_, p, _)| !p.contains("Authenticate") && !p.starts_with("/api/state"))
    );

    let mut wrong = common::superoffice::basic_settings(sandbox.state());
    if let crmsync::settings::SuperOfficeAuth::Basic { password, .. } = &mut wrong.auth {
        *password = crmsync::settings::Secret::new("not-the-password");
    }
    let refused = SuperOfficeClient::new(&wrong, fast(&sandbox)).unwrap();
    assert!(matches!(
        refused.associates().await,
        Err(ConnectorError::Service { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_read_back_and_a_stale_update_is_a_conflict() {
    let sandbox = start().await;
    let client = online(&sandbox);
    let now = sandbox.state().clock.now();
    let start = (now + jiff::SignedDuration::from_hours(48))
        .round(jiff::Unit::Second)
        .unwrap();
    let end = start + jiff::SignedDuration::from_hours(1);
    let item = meeting(&start.to_string(), &end.to_string());
    let created = client.create(102, &item).await.expect("created");
    let read = client
        .get(Kind::Diary, created.id)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(read.item, item, "what was written reads back the same");
    assert_eq!(read.version, created.version);
    assert!(
        client.get(Kind::Task, created.id).await.unwrap().is_none(),
        "not a to-do"
    );

    // Someone else edits it: the update with the old version is refused.
    let mut changed = item.clone();
    if let Item::Diary(d) = &mut changed {
        d.location = "Bergen".into();
    }
    sandbox.state().clock.advance(Duration::from_secs(5));
    sandbox
        .state()
        .superoffice
        .user_update_appointment(
            created.id.0,
            crmsync::sandbox::superoffice::AppointmentChange {
                title: Some("Edited in SuperOffice".into()),
                ..Default::default()
            },
            sandbox.state().clock.now(),
        )
        .unwrap();
    assert!(matches!(
        client.update(created.id, &changed, &created.version).await,
        Err(ConnectorError::Conflict { .. })
    ));
    // With the current version it goes through.
    let current = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    let updated = client
        .update(created.id, &changed, &current.version)
        .await
        .expect("updated");
    assert_ne!(updated.version, current.version);
    assert_eq!(
        client
            .get(Kind::Diary, created.id)
            .await
            .unwrap()
            .unwrap()
            .item,
        changed
    );
    // An unchanged item is not written again.
    let same = client
        .update(created.id, &changed, &updated.version)
        .await
        .unwrap();
    assert_eq!(same.version, updated.version);

    assert!(matches!(
        client
            .delete(Kind::Diary, created.id, Some(&current.version))
            .await,
        Err(ConnectorError::Conflict { .. })
    ));
    assert_eq!(
        client
            .delete(Kind::Diary, created.id, Some(&updated.version))
            .await
            .unwrap(),
        Deleted::Deleted
    );
    assert_eq!(
        client.delete(Kind::Diary, created.id, None).await.unwrap(),
        Deleted::AlreadyGone
    );
    assert!(matches!(
        client.update(created.id, &changed, &updated.version).await,
        Err(ConnectorError::Conflict { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn to_dos_all_day_items_and_refusals() {
    let sandbox = start().await;
    let client = online(&sandbox);
    let todo = Item::Task(TaskItem {
        title: "Send the offer".into(),
        body: "with prices".into(),
        due: Some("2026-12-24".parse().unwrap()),
        completed: None,
        importance: Importance::Normal,
    });
    let created = client.create(103, &todo).await.unwrap();
    assert_eq!(
        client
            .get(Kind::Task, created.id)
            .await
            .unwrap()
            .unwrap()
            .item,
        todo
    );
    assert_eq!(
        sandbox.state().superoffice.is_todo(created.id.0),
        Some(true)
    );
    let mut done = todo.clone();
    if let Item::Task(t) = &mut done {
        t.completed = Some(sandbox.state().clock.now());
    }
    let written = client
        .update(created.id, &done, &created.version)
        .await
        .unwrap();
    let read = client.get(Kind::Task, created.id).await.unwrap().unwrap();
    match &read.item {
        Item::Task(t) => {
            assert_eq!(
                t.completed,
                Some(written.modified),
                "the completion reads as the last change"
            );
            assert_eq!(t.due, Some("2026-12-24".parse().unwrap()));
        }
        other => panic!("{other:?}"),
    }

    let all_day = Item::Diary(DiaryItem {
        subject: "Conference".into(),
        body: String::new(),
        when: When::AllDay {
            start: "2026-12-07".parse().unwrap(),
            end: "2026-12-09".parse().unwrap(),
        },
        location: String::new(),
        private: true,
        show_as: ShowAs::Free,
        reminder_minutes: None,
        task_type: Some("Lunch".into()),
        organized_by_other: false,
        series: None,
    });
    let created = client.create(101, &all_day).await.unwrap();
    assert_eq!(
        client
            .get(Kind::Diary, created.id)
            .await
            .unwrap()
            .unwrap()
            .item,
        all_day
    );

    // An item SuperOffice refuses is that item's problem; an unknown owner is the user's.
    let backwards = meeting("2026-12-10T10:00:00Z", "2026-12-10T09:00:00Z");
    assert!(matches!(
        client.create(101, &backwards).await,
        Err(ConnectorError::Item { .. })
    ));
    assert!(matches!(
        client.create(999, &all_day).await,
        Err(ConnectorError::User { .. })
    ));
    assert!(matches!(
        client
            .create(
                101,
                &Item::Contact(crmsync::connector::model::ContactItem {
                    given_name: "A".into(),
                    surname: "B".into(),
                    emails: vec![],
                    business_phones: vec![],
                    mobile_phone: None,
                    company: None,
                    job_title: None
                })
            )
            .await,
        Err(ConnectorError::Item { .. })
    ));
    assert!(matches!(
        client
            .update(CrmId(1), &all_day, &Version("yesterday".into()))
            .await,
        Err(ConnectorError::Item { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_get_is_retried_and_a_failed_post_is_not() {
    let sandbox = start().await;
    let client = online(&sandbox);
    client.associates().await.unwrap();
    let faults = &sandbox.state().faults;
    faults
        .add(fault(serde_json::json!({"kind": "server_error", "status": 503, "emulator": "superoffice", "method": "GET", "path_contains": "/Person/", "next": 1})))
        .unwrap();
    faults
        .add(fault(serde_json::json!({"kind": "reset", "emulator": "superoffice", "method": "GET", "path_contains": "/Person/", "next": 1})))
        .unwrap();
    sandbox.state().log.clear();
    assert!(
        client
            .get(Kind::Contact, CrmId(1001))
            .await
            .unwrap()
            .is_some()
    );
    let gets: Vec<_> = so_requests(&sandbox)
        .into_iter()
        .filter(|(_, p, _)| p.contains("/Person/1001"))
        .collect();
    assert_eq!(gets.len(), 3, "503, reset, then the answer: {gets:?}");

    let before = sandbox.state().superoffice.travel_log().len();
    faults
        .add(fault(serde_json::json!({"kind": "reset", "emulator": "superoffice", "method": "POST", "path_contains": "/api/v1/Appointment", "next": 1})))
        .unwrap();
    sandbox.state().log.clear();
    let since = sandbox.state().clock.now();
    let item = meeting("2026-12-11T09:00:00Z", "2026-12-11T10:00:00Z");
    assert!(matches!(
        client.create(101, &item).await,
        Err(ConnectorError::Transient { .. })
    ));
    let posts = so_requests(&sandbox)
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/Appointment"))
        .count();
    assert_eq!(posts, 1, "a create is never sent twice");
    assert_eq!(
        sandbox.state().superoffice.travel_log().len(),
        before,
        "nothing was created"
    );
    // The caller resolves its intent by lookup: nothing there, so it creates again.
    let nothing = client.created_since(101, &item, since).await.unwrap();
    assert!(nothing.items.is_empty(), "{nothing:?}");
    let created = client.create(101, &item).await.unwrap();
    // The user renames crmsync's create and makes one of their own with the old title: the
    // lookup still finds crmsync's (the CRM names the system user as its creator), and only it.
    let store = &sandbox.state().superoffice;
    let now = sandbox.state().clock.now();
    store
        .user_update_appointment(
            created.id.0,
            AppointmentChange {
                title: Some("Quarterly review (moved)".into()),
                ..AppointmentChange::default()
            },
            now,
        )
        .unwrap();
    store
        .user_create_appointment(
            UserAppointment {
                associate_id: 101,
                todo: false,
                task: None,
                title: "Quarterly review".into(),
                description: String::new(),
                location: String::new(),
                when: SeedWhen::Timed {
                    start: "2026-12-11T09:00:00Z".parse().unwrap(),
                    end: "2026-12-11T10:00:00Z".parse().unwrap(),
                    time_zone: "UTC".into(),
                },
                private: false,
                free: None,
                alarm_minutes: None,
                completed: false,
                person_id: None,
                company_id: None,
            },
            now,
        )
        .unwrap();
    let found = client.created_since(101, &item, since).await.unwrap();
    assert!(found.by_crmsync, "the system user's associate is known");
    let ids: Vec<_> = found.items.iter().map(|o| o.id).collect();
    assert_eq!(ids, vec![created.id], "crmsync's create only");
    let task = Item::Task(TaskItem {
        title: "Quarterly review".into(),
        body: String::new(),
        due: None,
        completed: None,
        importance: Importance::Normal,
    });
    assert!(
        client
            .created_since(101, &task, since)
            .await
            .unwrap()
            .items
            .is_empty(),
        "a diary item is not a to-do's create"
    );
    assert!(
        client
            .created_since(102, &item, since)
            .await
            .unwrap()
            .items
            .is_empty(),
        "another diary"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_pauses_every_caller_and_the_rate_stays_within_the_quota() {
    let sandbox = start().await;
    // The tenant takes four times the client's quota (room for requests that arrive bunched on
    // a loaded machine): a client within its 10 per second never meets it.
    sandbox.state().limits.set_spec(LimitSpec {
        superoffice: Some(Rate {
            requests: 40,
            per: Duration::from_secs(1),
        }),
        ..LimitSpec::off()
    });
    let client = Arc::new(online(&sandbox));
    client.associates().await.unwrap();
    sandbox
        .state()
        .faults
        .add(fault(serde_json::json!({"kind": "too_many_requests", "retry_after_secs": 1.5, "emulator": "superoffice", "path_contains": "/Person/", "next": 1})))
        .unwrap();
    sandbox.state().log.clear();
    // The first caller is told to wait; once the client knows, nine more start: none of them
    // may reach the tenant before the pause is over.
    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.get(Kind::Contact, CrmId(1001)).await })
    };
    while client.limiter().stats().pauses == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut calls = Vec::new();
    for i in 0..9u32 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            for _ in 0..3 {
                client.get(Kind::Contact, CrmId(1001 + i % 5)).await?;
            }
            Ok::<_, ConnectorError>(())
        }));
    }
    assert!(
        first
            .await
            .unwrap()
            .expect("the first call succeeds after its pause")
            .is_some()
    );
    for call in calls {
        call.await.unwrap().expect("every call succeeds");
    }
    assert!(
        sandbox.state().limits.violations().is_empty(),
        "{:?}",
        sandbox.state().limits.violations()
    );
    let statuses: Vec<u16> = so_requests(&sandbox).iter().map(|r| r.2).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "only the injected 429: {statuses:?}"
    );
    assert_eq!(statuses.len(), 29);
    assert!(client.limiter().stats().pauses >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_parallel_callers_share_the_quota_of_ten_per_second() {
    let sandbox = start().await;
    let client = Arc::new(online(&sandbox));
    client.associates().await.unwrap();
    // Let the burst refill, then forty requests from ten callers.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sandbox.state().log.clear();
    let mut calls = Vec::new();
    for i in 0..10u32 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            for _ in 0..4 {
                client.get(Kind::Contact, CrmId(1001 + i % 5)).await?;
            }
            Ok::<_, ConnectorError>(())
        }));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let arrivals: Vec<jiff::Timestamp> = sandbox
        .state()
        .log
        .all()
        .into_iter()
        .filter(|r| r.emulator == crmsync::sandbox::Emulator::SuperOffice)
        .map(|r| r.at)
        .collect();
    assert_eq!(arrivals.len(), 40);
    // A burst of 10, then one every 100 ms: the last is sent 3 s after the first. Without the
    // quota all forty would arrive within milliseconds; the bound leaves a second for a slow
    // first request on a loaded machine, which otherwise only stretches the span.
    let span = arrivals
        .iter()
        .max()
        .unwrap()
        .duration_since(*arrivals.iter().min().unwrap());
    assert!(span >= jiff::SignedDuration::from_millis(2000), "{span:?}");
}
