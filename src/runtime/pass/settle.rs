//! Creates a crash left in doubt, settled before a pass reads anything: each intent is
//! looked up on the side it was for (the stamp in the mailbox; in the CRM, which holds no
//! stamp, the unpaired item crmsync's own API user registered since) and paired if the create
//! happened, dropped if it did not.

use super::apply::{new_pair, settle_copies};
use super::{PassError, PassReport, PassSpec};
use crate::connector::model::{CrmId, Item, Kind, Observed, Version};
use crate::connector::{CreatedSince, CrmConnector, MailboxConnector};
use crate::engine::stamp_for;
use crate::history::{Commit, Intent, Side, UserHistory};

/// Settles every intent of the pass's kind: paired if its create happened, dropped if it did
/// not (the item is still unpaired, and the uncommitted cursor brings it back to be created).
pub(super) async fn settle_intents<M: MailboxConnector, C: CrmConnector>(
    mailbox: &M,
    crm: &C,
    history: &UserHistory,
    spec: &PassSpec<'_>,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let kind = spec.kind;
    let mref = spec.mailbox();
    for intent in history.intents(kind)? {
        let mut commit = Commit {
            resolved_intents: vec![intent.id],
            ..Commit::default()
        };
        match intent.target {
            Side::Mailbox => {
                let (Some(stamp), Some(crm_id)) = (&intent.stamp, intent.from_crm) else {
                    history.commit(kind, &commit)?;
                    continue;
                };
                if let Some(found) = mailbox.find_by_stamp(&mref, stamp).await? {
                    // Each side's version is recorded only if the side still holds what was
                    // sent: a version taken after a user's edit since the crash would make
                    // that edit look synced, and it would be lost. Left unknown, this pass's
                    // read compares the content instead.
                    let sent = intent.item.content_hash();
                    let current = crm.get(kind, crm_id).await?;
                    let crm_version = match &current {
                        Some(current) if current.item.content_hash() == sent => {
                            current.version.clone()
                        }
                        _ => Version(String::new()),
                    };
                    let mailbox_version = if found.item.content_hash() == sent {
                        found.version.clone()
                    } else {
                        Version(String::new())
                    };
                    let mut pair = new_pair(
                        crm_id,
                        crm_version,
                        found.id.clone(),
                        mailbox_version,
                        &intent.item,
                        Side::Crm,
                        true,
                    );
                    // A series is written in steps (the master, then each occurrence): a copy
                    // that differs from what was sent may be a create cut off half-way, not a
                    // user's edit. The two are merged, occurrence by occurrence, so that
                    // neither the CRM's exceptions nor an edit made since is lost.
                    if let Some(current) = &current
                        && is_series(&intent.item)
                        && found.item.content_hash() != sent
                    {
                        settle_copies(mailbox, crm, spec, current, &found, &mut pair, report)
                            .await?;
                    }
                    commit.put.push(pair);
                    report.intents_resolved += 1;
                }
            }
            Side::Crm => {
                let since = jiff::Timestamp::from_second(intent.started - 60)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                let Some(mailbox_id) = intent.from_mailbox.clone() else {
                    history.commit(kind, &commit)?;
                    continue;
                };
                let candidates = crm
                    .created_since(spec.user.associate_id, &intent.item, since)
                    .await?;
                if let Some(found) = made_by_intent(history, kind, &intent, candidates)? {
                    let sent = intent.item.content_hash();
                    // A version is recorded only for a side that still holds what was sent
                    // (as for the mailbox above): the CRM item may have been edited since the
                    // crash, or filled in (a task type); left unknown, this pass's read
                    // compares the content and carries the difference over.
                    let crm_version = if found.item.content_hash() == sent {
                        found.version.clone()
                    } else {
                        Version(String::new())
                    };
                    let mut pair = new_pair(
                        found.id,
                        crm_version,
                        mailbox_id.clone(),
                        Version(String::new()),
                        &intent.item,
                        Side::Mailbox,
                        false,
                    );
                    if let Some(current) = mailbox.get(&mref, kind, &mailbox_id).await? {
                        let mailbox_changed = current.item.content_hash() != sent;
                        let crm_differs = found.item.content_hash() != sent;
                        let both_changed = mailbox_changed
                            && crm_differs
                            && found.item.shared_form() != current.item.shared_form();
                        // Both copies edited since the crash: decided now, for the stamp write
                        // below would make the mailbox's change look like the newest one to
                        // this pass's conflict policy. A series the CRM holds otherwise than
                        // sent may be a create cut off half-way (rule written, occurrences
                        // not): merged too, or the half-made copy would overwrite the whole.
                        let settle = both_changed || (is_series(&intent.item) && crm_differs);
                        if settle {
                            settle_copies(mailbox, crm, spec, &found, &current, &mut pair, report)
                                .await?;
                        }
                        let stamp = stamp_for(spec.tenant, kind, found.id);
                        let stamped = mailbox.set_stamp(&mref, kind, &mailbox_id, &stamp).await?;
                        pair.stamped = true;
                        if settle || !mailbox_changed {
                            pair.mailbox_version = stamped.version;
                        }
                    }
                    commit.put.push(pair);
                    report.intents_resolved += 1;
                }
            }
        }
        history.commit(kind, &commit)?;
    }
    Ok(())
}

fn is_series(item: &Item) -> bool {
    matches!(item, Item::Diary(d) if d.series.is_some())
}

/// The CRM item a create announced by `intent` made, among the `candidates` registered since
/// it started: not already paired, holding what was sent (title and start, or title and due
/// date); else, when the candidates are crmsync's own creates, the newest of them: creates in
/// the CRM run one at a time and every earlier one is committed before the next intent is
/// recorded (`Applier::intent`), so an unpaired create of crmsync's is this intent's, edited
/// by the user since.
fn made_by_intent(
    history: &UserHistory,
    kind: Kind,
    intent: &Intent,
    candidates: CreatedSince,
) -> Result<Option<Observed<CrmId>>, PassError> {
    let mut unpaired = Vec::new();
    for found in candidates.items {
        if history.pair_by_crm(kind, found.id)?.is_none() {
            unpaired.push(found);
        }
    }
    let holds_sent = |found: &Observed<CrmId>| match (&found.item, &intent.item) {
        (Item::Diary(a), Item::Diary(b)) => a.subject == b.subject && a.when == b.when,
        (Item::Task(a), Item::Task(b)) => a.title == b.title && (b.due.is_none() || a.due == b.due),
        _ => false,
    };
    if let Some(i) = unpaired.iter().position(holds_sent) {
        return Ok(Some(unpaired.swap_remove(i)));
    }
    Ok(if candidates.by_crmsync {
        unpaired.pop()
    } else {
        None
    })
}
