//! An Outlook edit that lands between the pass's read of the mailbox and its write: the write
//! is refused (the update carries the version the engine decided on), neither edit is lost,
//! and the next pass sees both and lets the conflict policy decide.

use std::sync::atomic::{AtomicBool, Ordering};

use crmsync::connector::model::{Changes, Cursor, DiaryItem, Stamp, Version};
use crmsync::connector::{ConnectorError, Deleted, ExternalMailbox, Written};
use crmsync::engine::ConflictPolicy;
use crmsync::sandbox::superoffice::AppointmentChange;
use reqwest::Method;
use serde_json::json;

use super::*;

/// The Graph client, with the user saving an edit of `target` in Outlook just before
/// crmsync's first update of it reaches Graph.
struct RacingMailbox<'a> {
    world: &'a World,
    target: MailboxItemId,
    raced: AtomicBool,
}

impl MailboxConnector for RacingMailbox<'_> {
    async fn mailboxes(&self) -> Result<Vec<ExternalMailbox>, ConnectorError> {
        self.world.graph.mailboxes().await
    }

    async fn changes(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> Result<Changes<MailboxItemId>, ConnectorError> {
        self.world
            .graph
            .changes(mailbox, kind, cursor, window)
            .await
    }

    async fn create(
        &self,
        mailbox: &MailboxRef,
        item: &Item,
        stamp: &Stamp,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        self.world.graph.create(mailbox, item, stamp).await
    }

    async fn update(
        &self,
        mailbox: &MailboxRef,
        id: &MailboxItemId,
        item: &Item,
        expected: Option<&Version>,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        if *id == self.target && !self.raced.swap(true, Ordering::SeqCst) {
            // A minute after the CRM edit: the later change of the two.
            self.world
                .sandbox
                .state()
                .clock
                .advance(Duration::from_secs(60));
            self.world.graph_act(
                Method::PATCH,
                &format!("events/{}", id.0),
                Some(json!({"subject": "Outlook edit"})),
            );
        }
        self.world.graph.update(mailbox, id, item, expected).await
    }

    async fn delete(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> Result<Deleted, ConnectorError> {
        self.world.graph.delete(mailbox, kind, id).await
    }

    async fn get(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
        self.world.graph.get(mailbox, kind, id).await
    }

    async fn find_by_stamp(
        &self,
        mailbox: &MailboxRef,
        stamp: &Stamp,
    ) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
        self.world.graph.find_by_stamp(mailbox, stamp).await
    }

    async fn set_stamp(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
        stamp: &Stamp,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        self.world.graph.set_stamp(mailbox, kind, id, stamp).await
    }
}

fn subject(item: &Item) -> &str {
    match item {
        Item::Diary(DiaryItem { subject, .. }) => subject,
        other => panic!("not a diary item: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outlook_edit_during_the_write_is_a_conflict_for_the_next_pass_not_lost() {
    for (policy, winner) in [
        (ConflictPolicy::Newest, "Outlook edit"),
        (ConflictPolicy::Crm, "CRM edit"),
    ] {
        let mut world = World::new().await;
        world.policy.conflict = policy;
        world.settle(Kind::Diary).await;
        let (crm, mailbox) = world.a_pair(Kind::Diary).await;
        world.crm_edit(
            crm.id,
            AppointmentChange {
                title: Some("CRM edit".into()),
                ..AppointmentChange::default()
            },
        );

        // The pass reads the CRM edit and an unchanged mailbox item, and would write the CRM
        // edit over it; the user saves in Outlook first.
        let racing = RacingMailbox {
            world: &world,
            target: mailbox.id.clone(),
            raced: AtomicBool::new(false),
        };
        let spec = PassSpec {
            user: &world.user,
            kind: Kind::Diary,
            window: world.window(),
            tenant: &world.tenant,
            policy: world.policy,
            now: world.now(),
            check_crm_ids: false,
        };
        let history = world.history.user(&world.user.id).unwrap();
        let first = pass::run(
            &racing,
            &world.crm,
            &history,
            &spec,
            pass::Prefetched::default(),
        )
        .await
        .unwrap();
        assert!(
            racing.raced.load(Ordering::SeqCst),
            "{policy:?}: {first:#?}"
        );
        assert_eq!(first.updated_in_mailbox, 0, "{policy:?}: {first:#?}");
        assert_eq!(first.quarantined.len(), 1, "{policy:?}: {first:#?}");
        assert!(
            first.quarantined[0]
                .error
                .contains("changed by someone else"),
            "{policy:?}: {first:#?}"
        );
        // Both edits are still there, each on its side.
        let in_mailbox = world
            .graph
            .get(&world.mailbox(), Kind::Diary, &mailbox.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(subject(&in_mailbox.item), "Outlook edit", "{policy:?}");
        let in_crm = world.crm.get(Kind::Diary, crm.id).await.unwrap().unwrap();
        assert_eq!(subject(&in_crm.item), "CRM edit", "{policy:?}");

        // The next pass sees both changes: a conflict, decided by the policy.
        let second = world.pass(Kind::Diary).await;
        assert_eq!(second.conflicts.len(), 1, "{policy:?}: {second:#?}");
        assert!(second.quarantined.is_empty(), "{policy:?}: {second:#?}");
        let in_crm = world.crm.get(Kind::Diary, crm.id).await.unwrap().unwrap();
        assert_eq!(subject(&in_crm.item), winner, "{policy:?}");
        let in_mailbox = world
            .graph
            .get(&world.mailbox(), Kind::Diary, &mailbox.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(subject(&in_mailbox.item), winner, "{policy:?}");
        world.settle(Kind::Diary).await;
        world.assert_converged(Kind::Diary).await;
    }
}
