//! A crash inside a pass, at a chosen point between two side effects: both clients wrapped,
//! sharing a budget of writes. When the budget is spent the write that spent it has happened
//! at the service, but the pass never sees its answer: the wrapper signals the crash and waits
//! forever, and the caller drops the pass's future. Deterministic: the k-th write is the k-th
//! write of the plan, whatever the timing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use crmsync::connector::model::{
    Changes, CrmId, Cursor, Item, Kind, MailboxItemId, Observed, Stamp, Version, Window,
};
use crmsync::connector::{
    ConnectorError, CreatedSince, CrmAssociate, CrmConnector, Deleted, ExternalMailbox,
    MailboxConnector, MailboxRef, RankChanges, Written,
};
use tokio::sync::Notify;

/// The writes a pass may still make before it crashes.
pub struct Budget {
    left: AtomicU32,
    crash: Notify,
}

impl Budget {
    pub fn new(writes: u32) -> Budget {
        Budget {
            left: AtomicU32::new(writes),
            crash: Notify::new(),
        }
    }

    /// Resolves when the pass has crashed.
    pub async fn crashed(&self) {
        self.crash.notified().await
    }

    async fn die(&self) -> ! {
        // `notify_one` keeps a permit when nobody waits yet, so the crash is never missed.
        self.crash.notify_one();
        std::future::pending().await
    }

    /// Before a write: a budget of zero crashes before anything (an intent may already be
    /// recorded for it, the item is not made).
    async fn before(&self) {
        if self.left.load(Ordering::SeqCst) == 0 {
            self.die().await
        }
    }

    /// After a write reached the service: the last one allowed crashes before its answer.
    async fn after(&self) {
        if self.left.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.die().await
        }
    }
}

pub struct Crashing<'a, T> {
    inner: &'a T,
    budget: &'a Budget,
}

impl<'a, T> Crashing<'a, T> {
    pub fn new(inner: &'a T, budget: &'a Budget) -> Self {
        Crashing { inner, budget }
    }
}

impl<M: MailboxConnector> MailboxConnector for Crashing<'_, M> {
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
        self.budget.before().await;
        let written = self.inner.create(mailbox, item, stamp).await;
        self.budget.after().await;
        written
    }

    async fn update(
        &self,
        mailbox: &MailboxRef,
        id: &MailboxItemId,
        item: &Item,
        expected: Option<&Version>,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        self.budget.before().await;
        let written = self.inner.update(mailbox, id, item, expected).await;
        self.budget.after().await;
        written
    }

    async fn delete(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> Result<Deleted, ConnectorError> {
        self.budget.before().await;
        let deleted = self.inner.delete(mailbox, kind, id).await;
        self.budget.after().await;
        deleted
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
        self.budget.before().await;
        let written = self.inner.set_stamp(mailbox, kind, id, stamp).await;
        self.budget.after().await;
        written
    }
}

impl<C: CrmConnector> CrmConnector for Crashing<'_, C> {
    async fn associates(&self) -> Result<Vec<CrmAssociate>, ConnectorError> {
        self.inner.associates().await
    }

    async fn changes(
        &self,
        associates: &[u32],
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> Result<RankChanges, ConnectorError> {
        self.inner.changes(associates, kind, cursor, window).await
    }

    fn earliest_cursor(&self, kind: Kind, cursors: &[&Cursor]) -> Option<Cursor> {
        self.inner.earliest_cursor(kind, cursors)
    }

    async fn ids_in_window(
        &self,
        associates: &[u32],
        kind: Kind,
        window: &Window,
    ) -> Result<BTreeMap<u32, Vec<CrmId>>, ConnectorError> {
        self.inner.ids_in_window(associates, kind, window).await
    }

    async fn persons(&self, ids: &[CrmId]) -> Result<Vec<Observed<CrmId>>, ConnectorError> {
        self.inner.persons(ids).await
    }

    async fn get(&self, kind: Kind, id: CrmId) -> Result<Option<Observed<CrmId>>, ConnectorError> {
        self.inner.get(kind, id).await
    }

    async fn create(&self, associate: u32, item: &Item) -> Result<Written<CrmId>, ConnectorError> {
        self.budget.before().await;
        let written = self.inner.create(associate, item).await;
        self.budget.after().await;
        written
    }

    async fn created_since(
        &self,
        associate: u32,
        item: &Item,
        since: jiff::Timestamp,
    ) -> Result<CreatedSince, ConnectorError> {
        self.inner.created_since(associate, item, since).await
    }

    async fn update(
        &self,
        id: CrmId,
        item: &Item,
        expected: &Version,
    ) -> Result<Written<CrmId>, ConnectorError> {
        self.budget.before().await;
        let written = self.inner.update(id, item, expected).await;
        self.budget.after().await;
        written
    }

    async fn delete(
        &self,
        kind: Kind,
        id: CrmId,
        expected: Option<&Version>,
    ) -> Result<Deleted, ConnectorError> {
        self.budget.before().await;
        let deleted = self.inner.delete(kind, id, expected).await;
        self.budget.after().await;
        deleted
    }
}
