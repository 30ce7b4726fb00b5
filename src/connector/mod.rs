//! Connectors: the only code that does HTTP. Each service (Microsoft Graph, SuperOffice) is
//! reached through a client that authenticates, respects the `limits`, retries what is safe
//! to retry and answers in the neutral [`model`]: the engine never sees HTTP or JSON.

pub mod graph;
pub mod http;
pub mod model;
pub mod recurrence;
pub mod superoffice;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use model::{Changes, CrmId, Cursor, Item, Kind, MailboxItemId, Observed, Stamp, Version, Window};

/// The services crmsync talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Graph,
    SuperOffice,
}

impl Service {
    /// A short, stable name, for metric labels: `graph`, `superoffice`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Graph => "graph",
            Service::SuperOffice => "superoffice",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Graph => "Microsoft Graph",
            Service::SuperOffice => "SuperOffice",
        })
    }
}

/// What went wrong, classed by what the caller should do about it (DESIGN section 8).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Worth trying again later: a 5xx, a timeout, a broken connection, throttling that
    /// outlasted the retries.
    #[error("{service}: temporary failure ({what}); will retry")]
    Transient {
        service: Service,
        what: String,
        retry_after: Option<Duration>,
    },
    /// One item cannot be read or written; it is quarantined, the others go on.
    #[error("{service}: item {item}: {what}")]
    Item {
        service: Service,
        item: String,
        what: String,
    },
    /// This user cannot be synced until something changes (mailbox gone, consent withdrawn,
    /// associate retired); the other users go on.
    #[error("{service}: {what}")]
    User { service: Service, what: String },
    /// Nothing can be done with this service (credentials refused, tenant not running).
    #[error("{service}: {what}")]
    Service { service: Service, what: String },
    /// The item changed on the service after it was read (HTTP 412): a conflict for the engine.
    #[error("{service}: item {item} was changed by someone else meanwhile")]
    Conflict { service: Service, item: String },
    /// The change cursor is no longer valid; a full round is needed (Graph 410 /
    /// `syncStateNotFound` / `resyncRequired`).
    #[error("{service}: the change cursor expired; a full resynchronisation is needed")]
    ResyncNeeded { service: Service },
}

/// A mailbox as the registry names it: its address, and its id in the mail system when known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailboxRef {
    pub address: String,
    pub id: Option<String>,
}

impl MailboxRef {
    /// What the mail system's URLs take: the id if known, else the address.
    pub fn key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.address)
    }
}

/// A mailbox of a mail system, as Load External Users lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExternalMailbox {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    /// Every SMTP address (primary and proxy), lower case.
    pub smtp_addresses: Vec<String>,
}

/// An associate of the CRM with the primary e-mail of its own person card (for Auto Link).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrmAssociate {
    pub id: u32,
    pub login: String,
    pub full_name: String,
    pub person_id: Option<u32>,
    pub email: Option<String>,
    pub active: bool,
}

/// What a side said after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<Id> {
    pub id: Id,
    pub version: Version,
    pub modified: jiff::Timestamp,
    /// The item as the side now holds it, when its answer shows it: it may differ from what
    /// was written where the side cannot hold everything, or fills in defaults.
    pub item: Option<Item>,
}

/// What a CRM create whose answer was lost may have made: [`CrmConnector::created_since`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedSince {
    /// The candidates, oldest first.
    pub items: Vec<Observed<CrmId>>,
    /// Every candidate was registered by crmsync itself (the CRM names its API user as the
    /// creator), so one that no longer holds what was sent is crmsync's create, edited since.
    /// Otherwise they are anyone's items with the same title, and only one that still holds
    /// what was sent can be taken for crmsync's.
    pub by_crmsync: bool,
}

/// After a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// It was gone already: the same end state.
    AlreadyGone,
}

/// The CRM's changes for a whole rank, with the cursor that covers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankChanges {
    /// Created or changed items, per owning associate (for contacts: per associate whose
    /// scope they are in).
    pub by_associate: BTreeMap<u32, Vec<Observed<CrmId>>>,
    /// Deleted items. The CRM does not say whose they were; the history does.
    pub deleted: Vec<CrmId>,
    pub cursor: Cursor,
    /// A full listing (no cursor was given): what is not in it does not exist (in the window).
    pub full: bool,
}

/// The mailbox side (Microsoft Graph now; on-premises Exchange later, behind the same calls).
pub trait MailboxConnector: Send + Sync {
    /// Every mailbox of the mail system (Load External Users).
    fn mailboxes(
        &self,
    ) -> impl Future<Output = Result<Vec<ExternalMailbox>, ConnectorError>> + Send;

    /// What changed in the mailbox for `kind` since `cursor` (everything, without one), inside
    /// `window` for diary items. Items come with their stamps.
    fn changes(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> impl Future<Output = Result<Changes<MailboxItemId>, ConnectorError>> + Send;

    /// Creates `item` with `stamp` on it. Safe to call again after a failure: a repeated
    /// call finds the item made by the first instead of making a second.
    fn create(
        &self,
        mailbox: &MailboxRef,
        item: &Item,
        stamp: &Stamp,
    ) -> impl Future<Output = Result<Written<MailboxItemId>, ConnectorError>> + Send;

    /// Writes `item` over the mailbox item. With `expected` (the version the decision was
    /// based on), only if the item is still at it: [`ConnectorError::Conflict`] if someone
    /// changed it since, and the item is left as it is.
    fn update(
        &self,
        mailbox: &MailboxRef,
        id: &MailboxItemId,
        item: &Item,
        expected: Option<&Version>,
    ) -> impl Future<Output = Result<Written<MailboxItemId>, ConnectorError>> + Send;

    fn delete(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> impl Future<Output = Result<Deleted, ConnectorError>> + Send;

    /// The item as it is now, or `None` if it no longer exists (to tell a deletion from an
    /// item that left the delta's view).
    fn get(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> impl Future<Output = Result<Option<Observed<MailboxItemId>>, ConnectorError>> + Send;

    /// The item carrying `stamp`, if there is one (to resolve an intent after a crash, and
    /// to rebuild history).
    fn find_by_stamp(
        &self,
        mailbox: &MailboxRef,
        stamp: &Stamp,
    ) -> impl Future<Output = Result<Option<Observed<MailboxItemId>>, ConnectorError>> + Send;

    /// Writes `stamp` onto an item that started in the mailbox, once its CRM counterpart exists.
    fn set_stamp(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
        stamp: &Stamp,
    ) -> impl Future<Output = Result<Written<MailboxItemId>, ConnectorError>> + Send;
}

/// The CRM side (SuperOffice).
pub trait CrmConnector: Send + Sync {
    /// Every associate with its person card's primary e-mail (for Auto Link).
    fn associates(&self) -> impl Future<Output = Result<Vec<CrmAssociate>, ConnectorError>> + Send;

    /// What changed for `kind` since `cursor` for all of `associates` at once (one query per
    /// kind for the rank, paged), split per associate.
    fn changes(
        &self,
        associates: &[u32],
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> impl Future<Output = Result<RankChanges, ConnectorError>> + Send;

    /// One cursor from which a single rank-wide [`CrmConnector::changes`] covers what each of
    /// `cursors` still has to read; `None` if one of them cannot be merged (its user reads on
    /// its own).
    fn earliest_cursor(&self, kind: Kind, cursors: &[&Cursor]) -> Option<Cursor>;

    /// The ids of every item of `kind` of each associate inside `window` now: the safety net
    /// that finds deletions the change feed missed.
    fn ids_in_window(
        &self,
        associates: &[u32],
        kind: Kind,
        window: &Window,
    ) -> impl Future<Output = Result<BTreeMap<u32, Vec<CrmId>>, ConnectorError>> + Send;

    /// Persons by id (contacts linked from diary items and to-dos).
    fn persons(
        &self,
        ids: &[CrmId],
    ) -> impl Future<Output = Result<Vec<Observed<CrmId>>, ConnectorError>> + Send;

    /// The item as it is now, if it exists.
    fn get(
        &self,
        kind: Kind,
        id: CrmId,
    ) -> impl Future<Output = Result<Option<Observed<CrmId>>, ConnectorError>> + Send;

    fn create(
        &self,
        associate: u32,
        item: &Item,
    ) -> impl Future<Output = Result<Written<CrmId>, ConnectorError>> + Send;

    /// The pair of an item this client created (`modified` as the create answered) is now in
    /// history: its change feed need not read that item back as a change. Called only after
    /// the commit, so that a pass cut off between the create and the commit still sees it.
    fn create_committed(&self, _id: CrmId, _modified: jiff::Timestamp) {}

    /// The items of `item`'s kind registered for `associate` at or after `since` that a
    /// create whose answer was lost may have made (the CRM has no stamp to look for).
    fn created_since(
        &self,
        associate: u32,
        item: &Item,
        since: jiff::Timestamp,
    ) -> impl Future<Output = Result<CreatedSince, ConnectorError>> + Send;

    /// Updates the item if it is still at `expected`; [`ConnectorError::Conflict`] if someone
    /// changed it since.
    fn update(
        &self,
        id: CrmId,
        item: &Item,
        expected: &Version,
    ) -> impl Future<Output = Result<Written<CrmId>, ConnectorError>> + Send;

    fn delete(
        &self,
        kind: Kind,
        id: CrmId,
        expected: Option<&Version>,
    ) -> impl Future<Output = Result<Deleted, ConnectorError>> + Send;
}
