//! History lost, moved or cut short by a crash: never a duplicate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crmsync::connector::model::{Changes, Cursor, Stamp, Version};
use crmsync::connector::{ConnectorError, Deleted, ExternalMailbox, Written};
use crmsync::history::Handoff;

use super::*;

async fn settle_all(world: &World) {
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        world.settle(kind).await;
        world.assert_converged(kind).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_comes_back_under_a_new_id_gets_no_duplicates() {
    let mut world = World::new().await;
    settle_all(&world).await;
    let counts: Vec<usize> = futures_counts(&world).await;

    // Removed (its history dropped) and linked again: a new id, an empty history.
    assert!(world.history.drop_user(&world.user.id).unwrap());
    world.user.id = SyncUserId::generate();
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        let reports = world.settle(kind).await;
        let first = &reports[0];
        assert_eq!(first.created_in_mailbox, 0, "{kind}: {first:#?}");
        assert_eq!(first.created_in_crm, 0, "{kind}: {first:#?}");
        assert!(
            first.linked > 0,
            "{kind}: rebuilt from the stamps: {first:#?}"
        );
        world.assert_converged(kind).await;
    }
    assert_eq!(
        futures_counts(&world).await,
        counts,
        "no item more on either side"
    );
}

async fn futures_counts(world: &World) -> Vec<usize> {
    let mut counts = Vec::new();
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        counts.push(world.crm_items(kind).await.len());
        counts.push(world.mailbox_items(kind).await.len());
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_handed_over_to_another_rank_changes_nothing_there() {
    let mut world = World::new().await;
    settle_all(&world).await;
    let handoff = world.history.export_user(&world.user.id).unwrap();
    let file = world.dir.path().join("handoff.bin");
    handoff.write(&file).unwrap();

    let other = tempfile::tempdir().unwrap();
    let other_history = History::open(other.path(), &history_options())
        .unwrap()
        .history;
    other_history
        .import_user(&Handoff::read(&file).unwrap())
        .await
        .unwrap();
    world.history = other_history;
    world.dir = other;
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        let report = world.pass(kind).await;
        assert_eq!(report.writes(), 0, "{kind}: {report:#?}");
        assert_eq!(report.linked, 0, "{kind}: {report:#?}");
        world.assert_converged(kind).await;
    }
}

/// The Graph client, cut off after a number of creates as a crash would cut it: the create has
/// happened in the mailbox, and the pass never learns its answer.
struct CrashingMailbox<'a> {
    inner: &'a GraphClient,
    creates_left: AtomicU32,
}

impl MailboxConnector for CrashingMailbox<'_> {
    async fn mailboxes(&self) -> Result<Vec<ExternalMailbox>, ConnectorError> {
        self.inner.mailboxes().await
    }

    async fn changes(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> Result<Changes<MailboxItemId>, ConnectorError> {
        self.inner.changes(mailbox, kind, cursor, window).await
    }

    async fn create(
        &self,
        mailbox: &MailboxRef,
        item: &Item,
        stamp: &Stamp,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        let written = self.inner.create(mailbox, item, stamp).await?;
        if self.creates_left.fetch_sub(1, Ordering::SeqCst) == 1 {
            panic!("simulated crash after a create reached the mailbox");
        }
        Ok(written)
    }

    async fn update(
        &self,
        mailbox: &MailboxRef,
        id: &MailboxItemId,
        item: &Item,
        expected: Option<&Version>,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        self.inner.update(mailbox, id, item, expected).await
    }

    async fn delete(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> Result<Deleted, ConnectorError> {
        self.inner.delete(mailbox, kind, id).await
    }

    async fn get(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
        self.inner.get(mailbox, kind, id).await
    }

    async fn find_by_stamp(
        &self,
        mailbox: &MailboxRef,
        stamp: &Stamp,
    ) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
        self.inner.find_by_stamp(mailbox, stamp).await
    }

    async fn set_stamp(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
        stamp: &Stamp,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        self.inner.set_stamp(mailbox, kind, id, stamp).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_create_and_bookkeeping_makes_no_duplicate() {
    let world = Arc::new(World::new().await);
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        let crashing = {
            let world = world.clone();
            tokio::spawn(async move {
                let mailbox = CrashingMailbox {
                    inner: &world.graph,
                    creates_left: AtomicU32::new(2),
                };
                let spec = PassSpec {
                    user: &world.user,
                    kind,
                    window: world.window(),
                    tenant: &world.tenant,
                    policy: world.policy,
                    now: world.now(),
                    check_crm_ids: false,
                };
                let history = world.history.user(&world.user.id).unwrap();
                pass::run(
                    &mailbox,
                    &world.crm,
                    &history,
                    &spec,
                    pass::Prefetched::default(),
                )
                .await
            })
        };
        let outcome = crashing.await;
        assert!(
            outcome.is_err_and(|e| e.is_panic()),
            "{kind}: the pass crashed"
        );
        let history = world.history.user(&world.user.id).unwrap();
        // The first create's pair was not committed yet either (pairs go to disk every few
        // actions): both creates are in flight.
        assert_eq!(
            history.intents(kind).unwrap().len(),
            2,
            "{kind}: creates in flight"
        );

        let reports = world.settle(kind).await;
        assert_eq!(reports[0].intents_resolved, 2, "{kind}: {:#?}", reports[0]);
        assert!(history.intents(kind).unwrap().is_empty());
        world.assert_converged(kind).await;
    }
}
