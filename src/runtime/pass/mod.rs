//! One sync pass for one (user, kind): settle creates left in flight by a crash, read what
//! changed on each side, check what only looks deleted, let the engine plan, carry the plan
//! out through the connectors, and commit the pairs and the cursors that cover them.
//!
//! Architecture invariant: nothing is deleted because it is missing from a listing; an
//! absence is checked with a read of that item first. A cursor is committed only after the
//! pair changes it covers, so a pass cut short by a crash or an error is read again.

mod apply;
mod observe;
mod settle;

use jiff::Timestamp;

use crate::connector::model::{Changes, CrmId, Cursor, Kind, MailboxItemId, Observed, Window};
use crate::connector::{ConnectorError, CrmConnector, MailboxConnector, MailboxRef};
use crate::engine::{self, GuardTripped, Policy};
use crate::history::{Commit, HistoryError, UserHistory};
use crate::registry::SyncUser;

pub use apply::Quarantined;

/// What a pass is about.
#[derive(Debug, Clone)]
pub struct PassSpec<'a> {
    pub user: &'a SyncUser,
    pub kind: Kind,
    pub window: Window,
    /// The CRM tenant as stamps name it.
    pub tenant: &'a str,
    pub policy: Policy,
    /// The time the pass started (for intents): passed in, the engine reads no clock.
    pub now: Timestamp,
    /// Compare the pairs with the ids the CRM lists for the user now (the safety net for
    /// deletions and scope changes the change feed does not report). Costs a listing; the
    /// runtime asks for it now and then, not every pass.
    pub check_crm_ids: bool,
}

impl PassSpec<'_> {
    pub fn mailbox(&self) -> MailboxRef {
        mailbox_of(self.user)
    }
}

/// The user's mailbox as the mail system's client names it.
pub fn mailbox_of(user: &SyncUser) -> MailboxRef {
    MailboxRef {
        address: user.mailbox.clone(),
        id: user.mailbox_id.clone(),
    }
}

/// The CRM's news for one user, when the runtime read the rank's change feed for everyone.
#[derive(Debug, Clone, Default)]
pub struct CrmNews {
    pub upserts: Vec<Observed<CrmId>>,
    /// Deleted ids among this user's pairs.
    pub deleted: Vec<CrmId>,
    /// Paired ids that now belong to another user.
    pub out_of_scope: Vec<CrmId>,
    pub cursor: Option<Cursor>,
    pub full: bool,
    /// The ids the CRM lists for the user now (in the window, in the scope), when the runtime
    /// read them for the safety net.
    pub ids_now: Option<Vec<CrmId>>,
}

/// What the runtime already read for a pass in its rank-wide round; what is missing the pass
/// reads itself.
#[derive(Debug, Default)]
pub struct Prefetched {
    pub crm: Option<CrmNews>,
    /// The mailbox's answer since the stored cursor (from the batched idle poll): its changes,
    /// or the error the pass would have met reading them (an expired cursor is read again in
    /// full by the pass).
    pub mailbox: Option<Result<Changes<MailboxItemId>, ConnectorError>>,
}

/// What a pass did, for status and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    pub created_in_mailbox: u64,
    pub created_in_crm: u64,
    pub updated_in_mailbox: u64,
    pub updated_in_crm: u64,
    pub deleted_in_mailbox: u64,
    pub deleted_in_crm: u64,
    pub linked: u64,
    pub restored: u64,
    pub intents_resolved: u64,
    pub conflicts: Vec<String>,
    pub notes: Vec<String>,
    pub quarantined: Vec<Quarantined>,
    /// The delete guard stopped the pass: nothing was written.
    pub guard: Option<GuardTripped>,
    /// The mailbox's delta token had expired: this pass read everything.
    pub resynced: bool,
}

impl PassReport {
    pub fn writes(&self) -> u64 {
        self.created_in_mailbox
            + self.created_in_crm
            + self.updated_in_mailbox
            + self.updated_in_crm
            + self.deleted_in_mailbox
            + self.deleted_in_crm
            + self.restored
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Runs one pass. `prefetched`: what the runtime's rank-wide round already read (the CRM's
/// changes for this user, the mailbox's); the pass reads what is missing for this user alone.
pub async fn run<M: MailboxConnector, C: CrmConnector>(
    mailbox: &M,
    crm: &C,
    history: &UserHistory,
    spec: &PassSpec<'_>,
    prefetched: Prefetched,
) -> Result<PassReport, PassError> {
    let mut report = PassReport::default();
    settle::settle_intents(mailbox, crm, history, spec, &mut report).await?;

    let observed = observe::observe(mailbox, crm, history, spec, prefetched, &mut report).await?;
    let pair_count = history.pair_count(spec.kind)?;
    let plan = engine::plan(&engine::Input {
        kind: spec.kind,
        window: &spec.window,
        tenant: spec.tenant,
        policy: &spec.policy,
        crm: &observed.crm,
        mailbox: &observed.mailbox,
        pairs: &observed.pairs,
        pair_count,
    });
    // Added to those found while settling intents, which are reported too.
    report.conflicts.extend(plan.conflicts.iter().map(|c| {
        format!(
            "{} item {} / {}: both sides changed ({}); {:?} side kept",
            spec.kind, c.crm.id, c.mailbox.id, c.reason, c.winner
        )
    }));
    report
        .notes
        .extend(plan.notes.iter().map(|n| format!("{}: {}", n.what, n.why)));
    if let Some(guard) = plan.guard {
        // Nothing written, nothing committed: the same changes come again, and
        // `crmsync users resume USER --allow-deletes` lets them through.
        report.guard = Some(guard);
        return Ok(report);
    }

    let mut applier = apply::Applier::new(mailbox, crm, history, spec);
    for action in plan.actions {
        applier.apply(action, &mut report).await?;
    }
    applier
        .finish(
            Commit {
                crm_cursor: observed.crm_cursor,
                mailbox_cursor: observed.mailbox_cursor,
                at: Some(spec.now.as_second()),
                ..Commit::default()
            },
            &mut report,
        )
        .await?;
    Ok(report)
}
