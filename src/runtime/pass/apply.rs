//! Carrying out a plan: each action through the connectors, each create announced by a durable
//! intent first, each result recorded as a pair change; pair changes committed every few
//! actions and at the end together with the cursors.
//!
//! Errors: an item the service refuses (`ConnectorError::Item`) or one that changed meanwhile
//! (`Conflict`) is set aside for this pass and the others go on; anything else ends the pass
//! (what is done so far is committed; the cursors are not, so the rest is read again). After a
//! `Conflict` the cursors are not committed either: the next pass reads both changes again
//! (the one this pass wrote from and the one that refused it) and the conflict policy decides.

use super::{PassError, PassReport, PassSpec};
use crate::connector::model::{CrmId, Item, Kind, MailboxItemId, Observed, Stamp, Version};
use crate::connector::{ConnectorError, CrmConnector, Deleted, MailboxConnector, Written};
use crate::engine::{Action, AfterLink, span_of, stamp_for};
use crate::history::{Commit, Intent, Pair, Side, UserHistory};

/// Pair changes committed after this many actions (and at the end).
const COMMIT_EVERY: usize = 50;

/// An item set aside in this pass, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub item: String,
    pub error: String,
}

pub(super) struct Applier<'a, M, C> {
    mailbox: &'a M,
    crm: &'a C,
    history: &'a UserHistory,
    spec: &'a PassSpec<'a>,
    pending: Commit,
    /// CRM creates whose pairs are in `pending`: told to the CRM connector once committed.
    created_in_crm: Vec<(CrmId, jiff::Timestamp)>,
    since_commit: usize,
    /// An update met a change made after this pass read its side.
    conflicted: bool,
}

pub(super) fn new_pair(
    crm: CrmId,
    crm_version: Version,
    mailbox: MailboxItemId,
    mailbox_version: Version,
    item: &Item,
    origin: Side,
    stamped: bool,
) -> Pair {
    Pair {
        crm_id: crm,
        mailbox_id: mailbox,
        crm_version,
        mailbox_version,
        crm_hash: item.content_hash(),
        mailbox_hash: item.content_hash(),
        origin,
        span: span_of(item),
        stamped,
        mailbox_read_only: matches!(item, Item::Diary(d) if d.organized_by_other),
    }
}

/// The content hash of what a side holds after a write: its own answer when it showed the
/// item, else what was written.
fn held_hash<Id>(written: &Written<Id>, sent: &Item) -> crate::connector::model::ContentHash {
    written.item.as_ref().unwrap_or(sent).content_hash()
}

/// Whether an error concerns only the item at hand.
fn item_error(e: &ConnectorError) -> bool {
    matches!(
        e,
        ConnectorError::Item { .. } | ConnectorError::Conflict { .. }
    )
}

impl<'a, M: MailboxConnector, C: CrmConnector> Applier<'a, M, C> {
    pub(super) fn new(
        mailbox: &'a M,
        crm: &'a C,
        history: &'a UserHistory,
        spec: &'a PassSpec<'a>,
    ) -> Self {
        Applier {
            mailbox,
            crm,
            history,
            spec,
            pending: Commit::default(),
            created_in_crm: Vec::new(),
            since_commit: 0,
            conflicted: false,
        }
    }

    fn kind(&self) -> Kind {
        self.spec.kind
    }

    fn put(&mut self, pair: Pair) {
        self.pending.remove.retain(|id| *id != pair.crm_id);
        self.pending.put.retain(|p| p.crm_id != pair.crm_id);
        self.pending.put.push(pair);
    }

    fn forget(&mut self, crm: CrmId) {
        self.pending.put.retain(|p| p.crm_id != crm);
        self.pending.remove.push(crm);
    }

    fn flush(&mut self) -> Result<(), PassError> {
        let commit = std::mem::take(&mut self.pending);
        if commit != Commit::default() {
            self.history.commit(self.kind(), &commit)?;
        }
        for (id, modified) in self.created_in_crm.drain(..) {
            self.crm.create_committed(id, modified);
        }
        self.since_commit = 0;
        Ok(())
    }

    /// Commits what is left with the cursors that cover the whole pass.
    pub(super) async fn finish(
        mut self,
        cursors: Commit,
        _report: &mut PassReport,
    ) -> Result<(), PassError> {
        // Committed cursors would hide the change that lost the race from the next pass: the
        // conflict would stay unseen, each side keeping its own version.
        if !self.conflicted {
            self.pending.crm_cursor = cursors.crm_cursor;
            self.pending.mailbox_cursor = cursors.mailbox_cursor;
            self.pending.at = cursors.at;
        }
        self.flush()
    }

    async fn intent(
        &mut self,
        target: Side,
        item: &Item,
        from_crm: Option<CrmId>,
        from_mailbox: Option<MailboxItemId>,
        stamp: Option<Stamp>,
    ) -> Result<Intent, PassError> {
        if target == Side::Crm {
            // The pairs of earlier creates go to disk with this intent: then at most one CRM
            // create is ever in doubt, and after a crash it is told from the others even if
            // the user has edited it since (the CRM holds no stamp: `made_by_intent`).
            self.flush()?;
        }
        Ok(self
            .history
            .record_intent(Intent {
                id: 0,
                kind: self.kind(),
                target,
                from_crm,
                from_mailbox,
                stamp,
                item: item.clone(),
                started: self.spec.now.as_second(),
            })
            .await?)
    }

    /// Carries out one action; an item-level failure is reported and set aside.
    pub(super) async fn apply(
        &mut self,
        action: Action,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let label = describe(&action, self.kind());
        match self.apply_one(action, report).await {
            Ok(()) => {}
            Err(PassError::Connector(e)) if item_error(&e) => {
                self.conflicted |= matches!(e, ConnectorError::Conflict { .. });
                tracing::warn!(user = %self.spec.user.id, kind = %self.kind(), item = %label, error = %e, "item set aside");
                report.quarantined.push(Quarantined {
                    item: label,
                    error: e.to_string(),
                });
            }
            Err(e) => {
                // Keep what is done; the rest comes again with the uncommitted cursors.
                self.flush()?;
                return Err(e);
            }
        }
        self.since_commit += 1;
        if self.since_commit >= COMMIT_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Creates the CRM item in the mailbox and records the pair; returns what the mailbox
    /// answered and the pair as recorded.
    async fn create_in_mailbox(
        &mut self,
        crm: &Observed<CrmId>,
        stamp: &Stamp,
    ) -> Result<(Written<MailboxItemId>, Pair), PassError> {
        let intent = self
            .intent(
                Side::Mailbox,
                &crm.item,
                Some(crm.id),
                None,
                Some(stamp.clone()),
            )
            .await?;
        let mref = self.spec.mailbox();
        let written = self.mailbox.create(&mref, &crm.item, stamp).await?;
        let mut pair = new_pair(
            crm.id,
            crm.version.clone(),
            written.id.clone(),
            written.version.clone(),
            &crm.item,
            Side::Crm,
            true,
        );
        pair.mailbox_hash = held_hash(&written, &crm.item);
        self.put(pair.clone());
        self.pending.resolved_intents.push(intent.id);
        Ok((written, pair))
    }

    /// The create met the copy an earlier pass made (Graph answers a repeated
    /// `transactionId`, and other creates look the stamp up first), and it no longer holds
    /// what the CRM item does: changed while its pair was lost. The two are settled as a link.
    async fn settle_found_copy(
        &mut self,
        crm: &Observed<CrmId>,
        found: Observed<MailboxItemId>,
        mut pair: Pair,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        report.linked += 1;
        settle_copies(
            self.mailbox,
            self.crm,
            self.spec,
            crm,
            &found,
            &mut pair,
            report,
        )
        .await?;
        self.put(pair);
        Ok(())
    }

    async fn apply_one(
        &mut self,
        action: Action,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let mref = self.spec.mailbox();
        let kind = self.kind();
        match action {
            Action::CreateInMailbox { crm, stamp } => {
                // crmsync made this CRM item from a mailbox item, which carries the stamp; no
                // pair names it, so that item is out of this pass's sight (moved out of the
                // window while history was lost). Graph's `transactionId` would not find it:
                // crmsync did not create it there. Looked up, it is paired, not made twice.
                if crm.links.made_by_crmsync
                    && kind == Kind::Diary
                    && let Some(found) = self.mailbox.find_by_stamp(&mref, &stamp).await?
                {
                    let mut pair = new_pair(
                        crm.id,
                        crm.version.clone(),
                        found.id.clone(),
                        found.version.clone(),
                        &crm.item,
                        Side::Mailbox,
                        true,
                    );
                    pair.mailbox_hash = found.item.content_hash();
                    if found.item.shared_form() == crm.item.shared_form() {
                        self.put(pair);
                        report.linked += 1;
                    } else {
                        self.settle_found_copy(&crm, found, pair, report).await?;
                    }
                    return Ok(());
                }
                let (written, pair) = self.create_in_mailbox(&crm, &stamp).await?;
                match written
                    .item
                    .filter(|held| held.shared_form() != crm.item.shared_form())
                {
                    None => report.created_in_mailbox += 1,
                    Some(held) => {
                        let found = Observed {
                            id: written.id,
                            version: written.version,
                            modified: written.modified,
                            item: held,
                            stamp: Some(stamp),
                            links: Default::default(),
                        };
                        self.settle_found_copy(&crm, found, pair, report).await?;
                    }
                }
            }
            Action::CreateInCrm { mailbox } => {
                let intent = self
                    .intent(
                        Side::Crm,
                        &mailbox.item,
                        None,
                        Some(mailbox.id.clone()),
                        None,
                    )
                    .await?;
                let written = self
                    .crm
                    .create(self.spec.user.associate_id, &mailbox.item)
                    .await?;
                let held = written.item.clone().unwrap_or_else(|| mailbox.item.clone());
                let mut pair = new_pair(
                    written.id,
                    written.version.clone(),
                    mailbox.id.clone(),
                    mailbox.version.clone(),
                    &mailbox.item,
                    Side::Mailbox,
                    false,
                );
                pair.crm_hash = held.content_hash();
                self.put(pair.clone());
                self.pending.resolved_intents.push(intent.id);
                self.created_in_crm.push((written.id, written.modified));
                report.created_in_crm += 1;
                // The stamp names the new CRM item; its own write bumps the mailbox version.
                let stamp = stamp_for(self.spec.tenant, kind, written.id);
                let stamped = self
                    .mailbox
                    .set_stamp(&mref, kind, &mailbox.id, &stamp)
                    .await?;
                pair.mailbox_version = stamped.version;
                pair.stamped = true;
                self.put(pair.clone());
                // The CRM filled in what the mailbox item lacked (a task type, say): show it
                // in the mailbox too, so that both sides hold the same.
                if held.shared_form() != mailbox.item.shared_form() {
                    let updated = self
                        .mailbox
                        .update(&mref, &mailbox.id, &held, Some(&pair.mailbox_version))
                        .await?;
                    pair.mailbox_version = updated.version.clone();
                    pair.mailbox_hash = held_hash(&updated, &held);
                    self.put(pair);
                    report.updated_in_mailbox += 1;
                }
            }
            Action::UpdateMailbox { mut pair, from } => {
                let written = self
                    .mailbox
                    .update(
                        &mref,
                        &pair.mailbox_id,
                        &from.item,
                        Some(&pair.mailbox_version),
                    )
                    .await?;
                pair.crm_version = from.version.clone();
                pair.crm_hash = from.item.content_hash();
                pair.mailbox_version = written.version;
                pair.mailbox_hash = from.item.content_hash();
                pair.span = span_of(&from.item);
                self.put(pair);
                report.updated_in_mailbox += 1;
            }
            Action::UpdateCrm { mut pair, from } => {
                let written = self
                    .crm
                    .update(pair.crm_id, &from.item, &pair.crm_version)
                    .await?;
                pair.mailbox_version = from.version.clone();
                pair.mailbox_hash = from.item.content_hash();
                pair.crm_hash = held_hash(&written, &from.item);
                pair.crm_version = written.version.clone();
                pair.span = span_of(&from.item);
                self.put(pair.clone());
                report.updated_in_crm += 1;
                let mailbox_id = pair.mailbox_id.clone();
                show_filled_in(
                    self.mailbox,
                    self.spec,
                    &mailbox_id,
                    &written,
                    &from.item,
                    &mut pair,
                    report,
                )
                .await?;
                self.put(pair);
            }
            Action::UpdateBoth {
                mut pair,
                crm,
                mailbox,
                item,
            } => {
                // The pair is stored only once both are written: if the second write fails,
                // the next pass sees both changed again and merges again.
                write_both(
                    self.mailbox,
                    self.crm,
                    self.spec,
                    (&crm, &mailbox),
                    &item,
                    &mut pair,
                    report,
                )
                .await?;
                self.put(pair);
            }
            Action::DeleteInMailbox { pair } => {
                if self.mailbox.delete(&mref, kind, &pair.mailbox_id).await? == Deleted::Deleted {
                    report.deleted_in_mailbox += 1;
                }
                self.forget(pair.crm_id);
            }
            Action::DeleteInCrm { pair } => {
                if self
                    .crm
                    .delete(kind, pair.crm_id, Some(&pair.crm_version))
                    .await?
                    == Deleted::Deleted
                {
                    report.deleted_in_crm += 1;
                }
                self.forget(pair.crm_id);
            }
            Action::RestoreInMailbox { pair } => match self.crm.get(kind, pair.crm_id).await? {
                Some(crm) => {
                    let stamp = stamp_for(self.spec.tenant, kind, crm.id);
                    self.create_in_mailbox(&crm, &stamp).await?;
                    report.restored += 1;
                }
                None => self.forget(pair.crm_id),
            },
            Action::Link {
                crm,
                mailbox,
                then,
                stamp,
                origin,
            } => {
                let mut pair = new_pair(
                    crm.id,
                    crm.version.clone(),
                    mailbox.id.clone(),
                    mailbox.version.clone(),
                    &crm.item,
                    origin,
                    !stamp,
                );
                pair.mailbox_hash = mailbox.item.content_hash();
                pair.mailbox_read_only =
                    matches!(&mailbox.item, Item::Diary(d) if d.organized_by_other);
                write_after_link(
                    self.mailbox,
                    self.crm,
                    self.spec,
                    then,
                    (&crm, &mailbox),
                    &mut pair,
                    report,
                )
                .await?;
                if stamp {
                    let s = stamp_for(self.spec.tenant, kind, crm.id);
                    let written = self.mailbox.set_stamp(&mref, kind, &mailbox.id, &s).await?;
                    pair.mailbox_version = written.version;
                    pair.stamped = true;
                }
                self.put(pair);
                report.linked += 1;
            }
            Action::SetStamp { mut pair, stamp } => {
                let written = self
                    .mailbox
                    .set_stamp(&mref, kind, &pair.mailbox_id, &stamp)
                    .await?;
                pair.mailbox_version = written.version;
                pair.stamped = true;
                self.put(pair);
            }
            Action::Record { pair } => self.put(pair),
            Action::Forget { pair, why } => {
                tracing::debug!(user = %self.spec.user.id, %kind, crm = %pair.crm_id, why, "pair forgotten");
                self.forget(pair.crm_id);
            }
        }
        Ok(())
    }
}

fn describe(action: &Action, kind: Kind) -> String {
    match action {
        Action::CreateInMailbox { crm, .. } => {
            format!("{kind} CRM {} (create in the mailbox)", crm.id)
        }
        Action::CreateInCrm { mailbox } => {
            format!("{kind} mailbox {} (create in the CRM)", mailbox.id)
        }
        Action::UpdateMailbox { pair, .. }
        | Action::UpdateCrm { pair, .. }
        | Action::UpdateBoth { pair, .. }
        | Action::DeleteInMailbox { pair }
        | Action::DeleteInCrm { pair }
        | Action::RestoreInMailbox { pair }
        | Action::SetStamp { pair, .. }
        | Action::Record { pair }
        | Action::Forget { pair, .. } => {
            format!("{kind} CRM {} / mailbox {}", pair.crm_id, pair.mailbox_id)
        }
        Action::Link { crm, mailbox, .. } => {
            format!("{kind} CRM {} / mailbox {}", crm.id, mailbox.id)
        }
    }
}

/// Brings a CRM item and a mailbox copy that were never paired in this history (one a create
/// met instead of making, or the two copies of a create a crash cut off) to one content, by
/// the policy as a link is, the conflict reported; `pair` records what each side then holds.
pub(super) async fn settle_copies<M: MailboxConnector, C: CrmConnector>(
    mailbox: &M,
    crm: &C,
    spec: &PassSpec<'_>,
    crm_item: &Observed<CrmId>,
    copy: &Observed<MailboxItemId>,
    pair: &mut Pair,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let (then, conflicts) = crate::engine::settle_found_copy(&link_input(spec), crm_item, copy);
    report
        .conflicts
        .extend(conflicts.iter().map(|c| describe_conflict(spec, c)));
    write_after_link(mailbox, crm, spec, then, (crm_item, copy), pair, report).await
}

/// Brings a CRM item and a mailbox item just paired to one content as the engine decided
/// (`then`); `pair` records what each side then holds.
async fn write_after_link<M: MailboxConnector, C: CrmConnector>(
    mailbox: &M,
    crm: &C,
    spec: &PassSpec<'_>,
    then: AfterLink,
    (crm_item, copy): (&Observed<CrmId>, &Observed<MailboxItemId>),
    pair: &mut Pair,
    report: &mut PassReport,
) -> Result<(), PassError> {
    match then {
        AfterLink::Nothing => {}
        AfterLink::UpdateMailbox => {
            let written = mailbox
                .update(
                    &spec.mailbox(),
                    &copy.id,
                    &crm_item.item,
                    Some(&copy.version),
                )
                .await?;
            pair.crm_version = crm_item.version.clone();
            pair.crm_hash = crm_item.item.content_hash();
            pair.mailbox_hash = held_hash(&written, &crm_item.item);
            pair.mailbox_version = written.version;
            pair.span = span_of(&crm_item.item);
            report.updated_in_mailbox += 1;
        }
        AfterLink::UpdateCrm => {
            let written = crm
                .update(crm_item.id, &copy.item, &crm_item.version)
                .await?;
            pair.crm_version = written.version.clone();
            pair.crm_hash = held_hash(&written, &copy.item);
            pair.mailbox_version = copy.version.clone();
            pair.mailbox_hash = copy.item.content_hash();
            pair.span = span_of(&copy.item);
            report.updated_in_crm += 1;
            show_filled_in(mailbox, spec, &copy.id, &written, &copy.item, pair, report).await?;
        }
        AfterLink::UpdateBoth(item) => {
            write_both(mailbox, crm, spec, (crm_item, copy), &item, pair, report).await?;
        }
    }
    Ok(())
}

/// Writes one item (a merged recurring series) over both sides, each guarded by the version
/// read, and records both in `pair` (which the caller stores).
async fn write_both<M: MailboxConnector, C: CrmConnector>(
    mailbox: &M,
    crm: &C,
    spec: &PassSpec<'_>,
    (crm_item, mailbox_item): (&Observed<CrmId>, &Observed<MailboxItemId>),
    item: &Item,
    pair: &mut Pair,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let in_crm = crm.update(crm_item.id, item, &crm_item.version).await?;
    let in_mailbox = mailbox
        .update(
            &spec.mailbox(),
            &mailbox_item.id,
            item,
            Some(&mailbox_item.version),
        )
        .await?;
    pair.crm_version = in_crm.version.clone();
    pair.crm_hash = held_hash(&in_crm, item);
    pair.mailbox_version = in_mailbox.version.clone();
    pair.mailbox_hash = held_hash(&in_mailbox, item);
    pair.span = span_of(item);
    report.updated_in_crm += 1;
    report.updated_in_mailbox += 1;
    Ok(())
}

/// After a write to the CRM from a mailbox item: what the CRM filled in (a task type the
/// mailbox item never had, say) is shown in the mailbox too, or the pair would call two
/// different items equal and they would stay different.
async fn show_filled_in<M: MailboxConnector>(
    mailbox: &M,
    spec: &PassSpec<'_>,
    mailbox_id: &MailboxItemId,
    written: &Written<CrmId>,
    sent: &Item,
    pair: &mut Pair,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let Some(held) = written
        .item
        .as_ref()
        .filter(|h| h.shared_form() != sent.shared_form())
    else {
        return Ok(());
    };
    let expected = (!pair.mailbox_version.0.is_empty()).then_some(&pair.mailbox_version);
    let updated = mailbox
        .update(&spec.mailbox(), mailbox_id, held, expected)
        .await?;
    pair.mailbox_version = updated.version.clone();
    pair.mailbox_hash = held_hash(&updated, held);
    report.updated_in_mailbox += 1;
    Ok(())
}

/// The engine's input for settling one link outside a plan.
fn link_input<'a>(spec: &'a PassSpec<'a>) -> crate::engine::Input<'a> {
    crate::engine::Input {
        kind: spec.kind,
        window: &spec.window,
        tenant: spec.tenant,
        policy: &spec.policy,
        crm: &[],
        mailbox: &[],
        pairs: &[],
        pair_count: 0,
    }
}

fn describe_conflict(spec: &PassSpec<'_>, c: &crate::engine::Conflict) -> String {
    format!(
        "{} item {} / {}: a create cut off earlier met a copy changed since ({}); {:?} side kept",
        spec.kind, c.crm.id, c.mailbox.id, c.reason, c.winner
    )
}
