//! Edits by users on either side after the initial sync: updates, deletes and conflicts.

use crmsync::connector::model::{ContactItem, DiaryItem, TaskItem};
use crmsync::engine::ConflictPolicy;
use crmsync::sandbox::superoffice::{AppointmentChange, PersonChange};
use reqwest::Method;
use serde_json::{Value, json};

use super::*;

impl World {
    /// The CRM item and mailbox item of one synced pair of `kind` (the first by CRM id).
    pub async fn a_pair(&self, kind: Kind) -> (Observed<CrmId>, Observed<MailboxItemId>) {
        let crm = self.crm_items(kind).await;
        let mailbox = self.mailbox_items(kind).await;
        for (id, item) in crm {
            if let Some(copy) = mailbox
                .iter()
                .find(|m| m.stamp.as_ref().is_some_and(|s| s.crm_id == id))
            {
                return (item, copy.clone());
            }
        }
        panic!("{kind}: no synced pair");
    }

    pub fn graph_act(&self, method: Method, rest: &str, body: Option<Value>) -> Option<Value> {
        let path = format!(
            "/users/{}/{rest}",
            self.user.mailbox_id.clone().unwrap_or_default()
        );
        self.sandbox
            .state()
            .graph
            .act(self.now(), method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("the user's edit {rest} failed: {e:?}"))
    }

    /// The id of the dedicated To Do list crmsync made.
    pub fn task_list(&self) -> String {
        let lists = self
            .graph_act(Method::GET, "todo/lists", None)
            .unwrap_or_default();
        lists["value"]
            .as_array()
            .and_then(|v| v.iter().find(|l| l["displayName"] == "SuperOffice"))
            .and_then(|l| l["id"].as_str())
            .expect("the SuperOffice list")
            .to_string()
    }

    pub fn crm_edit(&self, id: CrmId, change: AppointmentChange) {
        self.sandbox
            .state()
            .superoffice
            .user_update_appointment(id.0, change, self.now())
            .expect("the CRM edit");
    }

    /// The user moves one SuperOffice row (an occurrence) to an hour from `start` (Oslo),
    /// renaming it if `title` is given.
    pub fn crm_move_row(&self, row: u32, start: jiff::Timestamp, title: Option<&str>) {
        self.crm_edit(
            CrmId(row),
            AppointmentChange {
                title: title.map(str::to_string),
                when: Some(crmsync::sandbox::scenario::When::Timed {
                    start,
                    end: start + jiff::SignedDuration::from_hours(1),
                    time_zone: "Europe/Oslo".into(),
                }),
                ..AppointmentChange::default()
            },
        );
    }

    /// The user deletes one SuperOffice row (cancels an occurrence).
    pub fn crm_cancel_row(&self, row: u32) {
        self.sandbox
            .state()
            .superoffice
            .user_delete_appointment(row, self.now())
            .expect("the user deletes one occurrence");
    }
}

fn diary_of(item: &Item) -> &DiaryItem {
    match item {
        Item::Diary(d) => d,
        other => panic!("not a diary item: {other:?}"),
    }
}

fn task_of(item: &Item) -> &TaskItem {
    match item {
        Item::Task(t) => t,
        other => panic!("not a task: {other:?}"),
    }
}

fn contact_of(item: &Item) -> &ContactItem {
    match item {
        Item::Contact(c) => c,
        other => panic!("not a contact: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_travel_both_ways() {
    let world = World::new().await;
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        world.settle(kind).await;
    }

    // Diary: a new title in the CRM, a new location in Outlook.
    let (crm, mailbox) = world.a_pair(Kind::Diary).await;
    world.crm_edit(
        crm.id,
        AppointmentChange {
            title: Some("Renamed in SuperOffice".into()),
            ..AppointmentChange::default()
        },
    );
    world.graph_act(
        Method::PATCH,
        &format!("events/{}", mailbox.id),
        Some(json!({"location": {"displayName": "Moved in Outlook"}})),
    );
    let report = world.pass(Kind::Diary).await;
    assert_eq!(
        report.conflicts.len(),
        1,
        "both sides changed one item: {report:#?}"
    );
    // Both changed the same item: newest wins (the Outlook edit came last), the CRM's title is
    // then lost only on this item; the next test covers separate items.
    world.assert_converged(Kind::Diary).await;

    let (crm, _) = world.a_pair(Kind::Diary).await;
    world.crm_edit(
        crm.id,
        AppointmentChange {
            title: Some("Only the CRM changed this".into()),
            ..AppointmentChange::default()
        },
    );
    let report = world.pass(Kind::Diary).await;
    assert_eq!(report.updated_in_mailbox, 1, "{report:#?}");
    let (_, mailbox) = world.a_pair(Kind::Diary).await;
    let renamed = world.mailbox_items(Kind::Diary).await;
    assert!(
        renamed
            .iter()
            .any(|m| diary_of(&m.item).subject == "Only the CRM changed this")
    );
    world.graph_act(
        Method::PATCH,
        &format!("events/{}", mailbox.id),
        Some(json!({"subject": "Only Outlook changed this"})),
    );
    let report = world.pass(Kind::Diary).await;
    assert_eq!(report.updated_in_crm, 1, "{report:#?}");
    world.assert_converged(Kind::Diary).await;
    assert_eq!(world.pass(Kind::Diary).await.writes(), 0, "no echo");

    // A to-do completed in To Do, then reopened in SuperOffice.
    let (crm, task) = world.a_pair(Kind::Task).await;
    let list = world.task_list();
    world.graph_act(
        Method::PATCH,
        &format!("todo/lists/{list}/tasks/{}", task.id),
        Some(json!({"status": "completed"})),
    );
    let report = world.pass(Kind::Task).await;
    assert_eq!(report.updated_in_crm, 1, "{report:#?}");
    let now_crm = world.crm.get(Kind::Task, crm.id).await.unwrap().unwrap();
    assert!(
        task_of(&now_crm.item).completed.is_some(),
        "completed in SuperOffice"
    );
    world.crm_edit(
        crm.id,
        AppointmentChange {
            completed: Some(false),
            ..AppointmentChange::default()
        },
    );
    let report = world.pass(Kind::Task).await;
    assert_eq!(report.updated_in_mailbox, 1, "{report:#?}");
    let reopened = world.mailbox_items(Kind::Task).await;
    let copy = reopened.iter().find(|m| m.id == task.id).unwrap();
    assert!(
        task_of(&copy.item).completed.is_none(),
        "open again in To Do"
    );
    world.assert_converged(Kind::Task).await;

    // A person's new job title reaches the mailbox contact.
    let (crm, _) = world.a_pair(Kind::Contact).await;
    world
        .sandbox
        .state()
        .superoffice
        .user_update_person(
            crm.id.0,
            PersonChange {
                title: Some("Chief Buyer".into()),
                ..PersonChange::default()
            },
            world.now(),
        )
        .unwrap();
    let report = world.pass(Kind::Contact).await;
    assert_eq!(report.updated_in_mailbox, 1, "{report:#?}");
    let contacts = world.mailbox_items(Kind::Contact).await;
    assert!(
        contacts
            .iter()
            .any(|c| contact_of(&c.item).job_title.as_deref() == Some("Chief Buyer"))
    );
    world.assert_converged(Kind::Contact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_travel_both_ways_and_contacts_come_back() {
    let world = World::new().await;
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        world.settle(kind).await;
    }
    let state = world.sandbox.state();

    // Deleted in SuperOffice: gone from the mailbox.
    let (crm, mailbox) = world.a_pair(Kind::Diary).await;
    state
        .superoffice
        .user_delete_appointment(crm.id.0, world.now())
        .unwrap();
    let report = world.pass(Kind::Diary).await;
    assert_eq!(report.deleted_in_mailbox, 1, "{report:#?}");
    assert!(
        world
            .graph
            .get(&world.mailbox(), Kind::Diary, &mailbox.id)
            .await
            .unwrap()
            .is_none()
    );

    // Deleted in Outlook: gone from SuperOffice.
    let (crm, mailbox) = world.a_pair(Kind::Diary).await;
    world.graph_act(Method::DELETE, &format!("events/{}", mailbox.id), None);
    let report = world.pass(Kind::Diary).await;
    assert_eq!(report.deleted_in_crm, 1, "{report:#?}");
    assert!(world.crm.get(Kind::Diary, crm.id).await.unwrap().is_none());
    world.assert_converged(Kind::Diary).await;

    // A to-do deleted in To Do.
    let (crm, task) = world.a_pair(Kind::Task).await;
    let list = world.task_list();
    world.graph_act(
        Method::DELETE,
        &format!("todo/lists/{list}/tasks/{}", task.id),
        None,
    );
    let report = world.pass(Kind::Task).await;
    assert_eq!(report.deleted_in_crm, 1, "{report:#?}");
    assert!(world.crm.get(Kind::Task, crm.id).await.unwrap().is_none());
    world.assert_converged(Kind::Task).await;

    // A contact deleted in Outlook comes back (contacts follow the CRM; the CRM keeps it).
    let (crm, contact) = world.a_pair(Kind::Contact).await;
    world.graph_act(Method::DELETE, &format!("contacts/{}", contact.id), None);
    let report = world.pass(Kind::Contact).await;
    assert_eq!(report.restored, 1, "{report:#?}");
    assert!(
        !world.crm.persons(&[crm.id]).await.unwrap().is_empty(),
        "the person is still in the CRM"
    );
    world.assert_converged(Kind::Contact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_follows_each_policy() {
    for policy in [
        ConflictPolicy::Newest,
        ConflictPolicy::Crm,
        ConflictPolicy::Exchange,
    ] {
        let mut world = World::new().await;
        world.policy.conflict = policy;
        world.settle(Kind::Diary).await;
        let (crm, mailbox) = world.a_pair(Kind::Diary).await;
        // The CRM edit first, the Outlook edit a minute later.
        world.crm_edit(
            crm.id,
            AppointmentChange {
                title: Some("CRM edit".into()),
                ..AppointmentChange::default()
            },
        );
        world.sandbox.state().clock.advance(Duration::from_secs(60));
        world.graph_act(
            Method::PATCH,
            &format!("events/{}", mailbox.id),
            Some(json!({"subject": "Outlook edit"})),
        );
        let report = world.pass(Kind::Diary).await;
        assert_eq!(report.conflicts.len(), 1, "{policy:?}: {report:#?}");
        let expected = match policy {
            ConflictPolicy::Crm => "CRM edit",
            ConflictPolicy::Newest | ConflictPolicy::Exchange => "Outlook edit",
        };
        let now = world.crm.get(Kind::Diary, crm.id).await.unwrap().unwrap();
        assert_eq!(diary_of(&now.item).subject, expected, "{policy:?}");
        world.assert_converged(Kind::Diary).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_that_leaves_the_scope_leaves_the_mailbox_folder() {
    let world = World::new().await;
    world.settle(Kind::Contact).await;
    let before = world.mailbox_items(Kind::Contact).await.len();
    assert!(before > 0);
    // ANNA is no longer our contact of her customer: its persons leave her scope.
    let state = world.sandbox.state();
    let scenario = state.scenario();
    let company = scenario
        .superoffice
        .companies
        .iter()
        .find(|c| c.our_contact == Some(world.user.associate_id))
        .expect("ANNA's customer")
        .id;
    state
        .superoffice
        .user_set_our_contact(company, Some(102), world.now())
        .unwrap();
    let report = world.pass(Kind::Contact).await;
    assert_eq!(report.deleted_in_mailbox as usize, before, "{report:#?}");
    assert!(
        world
            .mailbox_items(Kind::Contact)
            .await
            .iter()
            .all(|c| c.stamp.is_none())
    );
    // Nothing was deleted in the CRM: the persons are now in BO's scope.
    let bo = world
        .crm
        .ids_in_window(&[102], Kind::Contact, &world.window())
        .await
        .unwrap();
    for person in scenario
        .superoffice
        .persons
        .iter()
        .filter(|p| p.company_id == company)
    {
        assert!(
            bo[&102].contains(&CrmId(person.id)),
            "person {} is kept",
            person.id
        );
    }
}
