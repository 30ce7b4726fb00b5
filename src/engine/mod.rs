//! The sync engine: given what each side reports for one (user, kind) and the pairs in
//! history, decide what to do. A plan of creates, updates, deletes and bookkeeping, with every
//! conflict reported.
//!
//! Architecture invariant: the engine is pure. No IO, no clock, no runtime: the same input
//! always gives the same plan, and it is tested without a runtime. The executor
//! (`runtime::pass`) carries the plan out through the connectors and history.
//!
//! The rules (DESIGN sections 4 and 7):
//! - a side changed an item when its version differs from the pair's and its content hash
//!   differs too (our own writes come back with the version we stored: echoes are silent);
//! - both sides changed: a conflict, resolved by the policy (`newest`, ties to the CRM;
//!   `crm`; `exchange`), unless both changed to the same content; a recurring series is
//!   merged, the winner giving the rule and content, both sides their occurrence edits;
//! - a change beats a delete (the deleted side gets the item again) unless `delete-wins`;
//! - leaving the window, the scope or a kind is never a deletion on the other side; an item
//!   the engine is not told was deleted is not deleted;
//! - contacts flow from the CRM to the mailbox only, and only contacts crmsync created leave
//!   the mailbox;
//! - items never paired are matched before anything is created: by the stamp on a mailbox
//!   item, then by fingerprint, so that lost history creates no duplicates;
//! - a plan that would delete more than the guard allows deletes nothing and says so.

mod decide;
mod fingerprint;
mod series;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::connector::model::{CrmId, Item, Kind, MailboxItemId, Observed, Stamp, Window};
use crate::history::{Pair, Side};

pub use fingerprint::Fingerprint;
pub use series::{Merged, merge as merge_series};

/// Who wins when both sides changed one item since the last pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// The later modification wins; a tie goes to the CRM.
    Newest,
    Crm,
    Exchange,
}

/// The mass-delete guard (DESIGN invariant 6): a pass may not delete more than `max_share` of
/// a user's pairs of one kind when that is also more than `min_deletes` items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeleteGuard {
    pub max_share: f64,
    pub min_deletes: u64,
}

impl Default for DeleteGuard {
    fn default() -> Self {
        DeleteGuard {
            max_share: 0.5,
            min_deletes: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub conflict: ConflictPolicy,
    /// A delete beats a change on the other side (default: the change wins, nothing is lost).
    pub delete_wins: bool,
    pub guard: DeleteGuard,
    /// The user was resumed with `--allow-deletes`: the guard lets this pass through.
    pub allow_mass_delete: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            conflict: ConflictPolicy::Newest,
            delete_wins: false,
            guard: DeleteGuard::default(),
            allow_mass_delete: false,
        }
    }
}

/// What the CRM side says about an item this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrmSeen {
    /// The item as it is now (changed since the cursor, or read to rebuild history).
    Present(Box<Observed<CrmId>>),
    /// Deleted: the CRM said so (travel log, or 404 for that id).
    Deleted(CrmId),
    /// No longer this user's (another owner; a person that left the contact scope).
    OutOfScope(CrmId),
}

/// What the mailbox side says about an item this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxSeen {
    Present(Box<Observed<MailboxItemId>>),
    /// Deleted: checked (an `@removed` of a paired item is confirmed with a read).
    Deleted(MailboxItemId),
}

/// The input of one planning step.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub kind: Kind,
    pub window: &'a Window,
    /// The CRM tenant, as stamps name it.
    pub tenant: &'a str,
    pub policy: &'a Policy,
    pub crm: &'a [CrmSeen],
    pub mailbox: &'a [MailboxSeen],
    /// Every pair an observation refers to (by CRM id, mailbox id or stamp).
    pub pairs: &'a [Pair],
    /// All pairs of this kind the user has (for the delete guard).
    pub pair_count: u64,
}

/// Something the plan left alone or resolved in a way worth telling: shown in status and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub what: String,
    pub why: &'static str,
}

/// A conflict and how it was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub crm: Box<Observed<CrmId>>,
    pub mailbox: Box<Observed<MailboxItemId>>,
    pub winner: Side,
    pub reason: &'static str,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the CRM item in the mailbox, stamped.
    CreateInMailbox {
        crm: Box<Observed<CrmId>>,
        stamp: Stamp,
    },
    /// Create the mailbox item in the CRM for `associate`'s diary; then stamp it.
    CreateInCrm {
        mailbox: Box<Observed<MailboxItemId>>,
    },
    /// Write the CRM item's content over the mailbox item.
    UpdateMailbox {
        pair: Pair,
        from: Box<Observed<CrmId>>,
    },
    /// Write the mailbox item's content over the CRM item.
    UpdateCrm {
        pair: Pair,
        from: Box<Observed<MailboxItemId>>,
    },
    /// Write `item` over both sides: a recurring series both sides changed, merged (the
    /// winner's rule and content, both sides' occurrence edits). `crm` and `mailbox` are what
    /// was read, for the writes' concurrency checks.
    UpdateBoth {
        pair: Pair,
        crm: Box<Observed<CrmId>>,
        mailbox: Box<Observed<MailboxItemId>>,
        item: Box<Item>,
    },
    DeleteInMailbox {
        pair: Pair,
    },
    DeleteInCrm {
        pair: Pair,
    },
    /// A contact deleted in the mailbox comes back from the CRM (contacts are one-way).
    RestoreInMailbox {
        pair: Pair,
    },
    /// Two existing items belong together (by stamp or fingerprint): pair them, then bring
    /// the loser's content up to the winner's if they differ, and stamp the mailbox item.
    Link {
        crm: Box<Observed<CrmId>>,
        mailbox: Box<Observed<MailboxItemId>>,
        then: AfterLink,
        /// The mailbox item lacks the stamp: write it.
        stamp: bool,
        origin: Side,
    },
    /// Write the stamp onto a paired mailbox item that lacks it.
    SetStamp {
        pair: Pair,
        stamp: Stamp,
    },
    /// Bookkeeping only: store new versions and hashes.
    Record {
        pair: Pair,
    },
    /// Drop a pair without touching either side.
    Forget {
        pair: Pair,
        why: &'static str,
    },
}

/// What follows a [`Action::Link`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLink {
    Nothing,
    UpdateMailbox,
    UpdateCrm,
    /// Two versions of one recurring series, merged: write this to both sides.
    UpdateBoth(Box<Item>),
}

/// The guard stopped the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardTripped {
    pub deletes: u64,
    pub pairs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub conflicts: Vec<Conflict>,
    pub notes: Vec<Note>,
    /// Set when the delete guard stopped the pass: then `actions` is empty and nothing may be
    /// committed for this kind (the same changes are read again on the next pass).
    pub guard: Option<GuardTripped>,
}

impl Plan {
    pub fn deletes(&self) -> u64 {
        self.actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::DeleteInMailbox { .. } | Action::DeleteInCrm { .. }
                )
            })
            .count() as u64
    }
}

/// The stamp a mailbox item of `kind` carries for CRM item `crm`.
pub fn stamp_for(tenant: &str, kind: Kind, crm: CrmId) -> Stamp {
    Stamp {
        tenant: tenant.to_string(),
        kind,
        crm_id: crm,
    }
}

/// The Unix seconds an item spans, as stored in a pair for the window rule.
pub fn span_of(item: &Item) -> Option<(i64, i64)> {
    let Item::Diary(d) = item else {
        return None;
    };
    Some(d.span_seconds())
}

/// Whether an item is inside the window (items without a time always are).
pub fn in_window(item: &Item, window: &Window) -> bool {
    match item {
        Item::Diary(d) => d.overlaps(window),
        _ => true,
    }
}

/// Which of two modification times is later; a tie goes to the CRM.
fn newer_side(crm: Timestamp, mailbox: Timestamp) -> Side {
    if mailbox > crm {
        Side::Mailbox
    } else {
        Side::Crm
    }
}

/// Plans one step of a pass.
pub fn plan(input: &Input<'_>) -> Plan {
    let mut plan = decide::decide(input);
    let deletes = plan.deletes();
    let guard = input.policy.guard;
    let too_many = deletes > guard.min_deletes
        && (deletes as f64) > guard.max_share * (input.pair_count.max(1) as f64);
    if too_many && !input.policy.allow_mass_delete {
        plan.actions.clear();
        plan.guard = Some(GuardTripped {
            deletes,
            pairs: input.pair_count,
        });
    }
    plan
}

/// How a CRM item and the mailbox copy a create met instead of making one are brought to one
/// content. The copy was made by an earlier pass whose pair was lost (history lost or cut off
/// by a crash) and changed since (moved out of the window, say, where no listing showed it):
/// the two are settled as a [`Action::Link`] is, by the policy, and the conflict reported.
pub fn settle_found_copy(
    input: &Input<'_>,
    crm: &Observed<CrmId>,
    mailbox: &Observed<MailboxItemId>,
) -> (AfterLink, Vec<Conflict>) {
    let mut plan = Plan::default();
    let then = decide::after_link(input, crm, mailbox, &mut plan);
    (then, plan.conflicts)
}

#[cfg(test)]
mod tests;
