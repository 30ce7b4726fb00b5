//! The decision table: paired items first (what changed on each side since the pair was
//! recorded), then items never paired (matched by stamp, then by fingerprint, before anything
//! is created).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    Action, AfterLink, Conflict, ConflictPolicy, CrmSeen, Fingerprint, Input, MailboxSeen, Plan,
    in_window, newer_side, span_of, stamp_for,
};
use crate::connector::model::{CrmId, Item, Kind, MailboxItemId, Observed, Version};
use crate::history::{Pair, Side};

/// The state of one side of a pair.
enum State<'a, Id> {
    /// Not reported, or reported at the version the pair has.
    Unchanged,
    /// A new version with the content the pair has (a re-read, or a lossy echo): only the
    /// version is new.
    Same(&'a Observed<Id>),
    Changed(&'a Observed<Id>),
    Deleted,
}

/// The CRM side may also say an item is no longer this user's.
enum CrmState<'a> {
    Known(State<'a, CrmId>),
    OutOfScope,
}

fn crm_state<'a>(pair: &Pair, seen: Option<&'a CrmSeen>) -> CrmState<'a> {
    CrmState::Known(match seen {
        None => State::Unchanged,
        Some(CrmSeen::Deleted(_)) => State::Deleted,
        Some(CrmSeen::OutOfScope(_)) => return CrmState::OutOfScope,
        Some(CrmSeen::Present(o)) if o.version == pair.crm_version => State::Unchanged,
        Some(CrmSeen::Present(o)) if o.item.content_hash() == pair.crm_hash => State::Same(o),
        Some(CrmSeen::Present(o)) => State::Changed(o),
    })
}

fn mailbox_state<'a>(pair: &Pair, seen: Option<&'a MailboxSeen>) -> State<'a, MailboxItemId> {
    match seen {
        None => State::Unchanged,
        Some(MailboxSeen::Deleted(_)) => State::Deleted,
        Some(MailboxSeen::Present(o)) if o.version == pair.mailbox_version => State::Unchanged,
        Some(MailboxSeen::Present(o)) if o.item.content_hash() == pair.mailbox_hash => {
            State::Same(o)
        }
        Some(MailboxSeen::Present(o)) => State::Changed(o),
    }
}

/// The pair with the versions and hashes of what was just seen.
fn refreshed(
    pair: &Pair,
    crm: Option<&Observed<CrmId>>,
    mailbox: Option<&Observed<MailboxItemId>>,
) -> Pair {
    let mut next = pair.clone();
    if let Some(c) = crm {
        next.crm_version = c.version.clone();
        next.crm_hash = c.item.content_hash();
        next.span = span_of(&c.item).or(next.span);
    }
    if let Some(m) = mailbox {
        next.mailbox_version = m.version.clone();
        next.mailbox_hash = m.item.content_hash();
        next.mailbox_read_only = m.item_read_only();
        if crm.is_none() {
            next.span = span_of(&m.item).or(next.span);
        }
    }
    next
}

trait ReadOnly {
    fn item_read_only(&self) -> bool;
}

impl ReadOnly for Observed<MailboxItemId> {
    fn item_read_only(&self) -> bool {
        matches!(&self.item, crate::connector::model::Item::Diary(d) if d.organized_by_other)
    }
}

/// Who wins between two versions of one item that both changed.
fn winner(
    input: &Input<'_>,
    crm: &Observed<CrmId>,
    mailbox: &Observed<MailboxItemId>,
    mailbox_read_only: bool,
) -> (Side, &'static str) {
    if input.kind == Kind::Contact {
        return (Side::Crm, "contacts follow the CRM");
    }
    if mailbox_read_only {
        return (
            Side::Mailbox,
            "a meeting organised by someone else is not rewritten",
        );
    }
    match input.policy.conflict {
        ConflictPolicy::Crm => (Side::Crm, "policy: the CRM wins"),
        ConflictPolicy::Exchange => (Side::Mailbox, "policy: the mailbox wins"),
        ConflictPolicy::Newest => match newer_side(crm.modified, mailbox.modified) {
            Side::Crm if crm.modified == mailbox.modified => {
                (Side::Crm, "policy newest: same time, the CRM wins")
            }
            Side::Crm => (Side::Crm, "policy newest: the CRM's change is later"),
            Side::Mailbox => (
                Side::Mailbox,
                "policy newest: the mailbox's change is later",
            ),
        },
    }
}

fn note(plan: &mut Plan, what: String, why: &'static str) {
    plan.notes.push(super::Note { what, why });
}

/// Decides for one pair from what each side reported.
fn decide_pair(
    input: &Input<'_>,
    pair: &Pair,
    c: CrmState<'_>,
    m: State<'_, MailboxItemId>,
    plan: &mut Plan,
) {
    use State::*;
    let contact = input.kind == Kind::Contact;
    let ours = pair.origin == Side::Crm;
    let c = match c {
        CrmState::Known(state) => state,
        CrmState::OutOfScope => {
            if matches!(m, Deleted) {
                plan.actions.push(Action::Forget {
                    pair: pair.clone(),
                    why: "out of scope in the CRM and deleted in the mailbox",
                });
            } else if contact && ours {
                // A person that left the contact scope leaves the folder, if crmsync put it there.
                plan.actions
                    .push(Action::DeleteInMailbox { pair: pair.clone() });
            } else {
                plan.actions.push(Action::Forget {
                    pair: pair.clone(),
                    why: "no longer this user's in the CRM; the mailbox item stays",
                });
            }
            return;
        }
    };
    let read_only = pair.mailbox_read_only;
    let fresh_c = match &c {
        Same(o) | Changed(o) => Some(*o),
        _ => None,
    };
    let fresh_m = match &m {
        Same(o) | Changed(o) => Some(*o),
        _ => None,
    };
    let what = || format!("{} item {} / {}", input.kind, pair.crm_id, pair.mailbox_id);
    match (c, m) {
        (Unchanged | Same(_), Unchanged | Same(_)) => {
            if fresh_c.is_some() || fresh_m.is_some() {
                plan.actions.push(Action::Record {
                    pair: refreshed(pair, fresh_c, fresh_m),
                });
            }
        }
        (Changed(crm), Unchanged | Same(_)) => {
            let pair = refreshed(pair, None, fresh_m);
            if read_only {
                note(
                    plan,
                    what(),
                    "changed in the CRM, but the meeting is someone else's: not rewritten",
                );
                plan.actions.push(Action::Record {
                    pair: refreshed(&pair, Some(crm), None),
                });
            } else {
                plan.actions.push(Action::UpdateMailbox {
                    pair,
                    from: Box::new(crm.clone()),
                });
            }
        }
        (Unchanged | Same(_), Changed(mailbox)) => {
            let pair = refreshed(pair, fresh_c, None);
            if contact {
                note(
                    plan,
                    what(),
                    "a contact edited in the mailbox: contacts follow the CRM, the edit stays until the CRM changes",
                );
                plan.actions.push(Action::Record {
                    pair: refreshed(&pair, None, Some(mailbox)),
                });
            } else {
                plan.actions.push(Action::UpdateCrm {
                    pair,
                    from: Box::new(mailbox.clone()),
                });
            }
        }
        (Changed(crm), Changed(mailbox)) => {
            if crm.item.content_hash() == mailbox.item.content_hash() {
                plan.actions.push(Action::Record {
                    pair: refreshed(pair, Some(crm), Some(mailbox)),
                });
                return;
            }
            let (side, reason) = winner(input, crm, mailbox, read_only);
            plan.conflicts.push(Conflict {
                crm: Box::new(crm.clone()),
                mailbox: Box::new(mailbox.clone()),
                winner: side,
                reason,
            });
            let merged = if read_only {
                None
            } else {
                merged_series(input, crm, mailbox, side, plan)
            };
            if let Some(item) = merged {
                plan.actions.push(Action::UpdateBoth {
                    pair: pair.clone(),
                    crm: Box::new(crm.clone()),
                    mailbox: Box::new(mailbox.clone()),
                    item: Box::new(item),
                });
                return;
            }
            match side {
                Side::Crm => plan.actions.push(Action::UpdateMailbox {
                    pair: refreshed(pair, None, Some(mailbox)),
                    from: Box::new(crm.clone()),
                }),
                Side::Mailbox => plan.actions.push(Action::UpdateCrm {
                    pair: refreshed(pair, Some(crm), None),
                    from: Box::new(mailbox.clone()),
                }),
            }
        }
        (Deleted, Unchanged | Same(_)) => {
            if (contact && !ours) || read_only {
                plan.actions.push(Action::Forget {
                    pair: pair.clone(),
                    why: if read_only {
                        "deleted in the CRM; the meeting is someone else's and stays in the mailbox"
                    } else {
                        "the person was deleted in the CRM; the mailbox contact was the user's own"
                    },
                });
            } else {
                plan.actions
                    .push(Action::DeleteInMailbox { pair: pair.clone() });
            }
        }
        (Unchanged | Same(_), Deleted) => {
            if contact {
                plan.actions.push(Action::RestoreInMailbox {
                    pair: refreshed(pair, fresh_c, None),
                });
            } else {
                plan.actions.push(Action::DeleteInCrm {
                    pair: refreshed(pair, fresh_c, None),
                });
            }
        }
        (Deleted, Changed(mailbox)) => {
            if contact {
                if ours {
                    plan.actions
                        .push(Action::DeleteInMailbox { pair: pair.clone() });
                } else {
                    plan.actions.push(Action::Forget {
                        pair: pair.clone(),
                        why: "the person was deleted in the CRM; the mailbox contact was the user's own",
                    });
                }
            } else if input.policy.delete_wins {
                plan.actions
                    .push(Action::DeleteInMailbox { pair: pair.clone() });
            } else {
                note(
                    plan,
                    what(),
                    "deleted in the CRM but changed in the mailbox: the change wins, the item is created in the CRM again",
                );
                plan.actions.push(Action::CreateInCrm {
                    mailbox: Box::new(mailbox.clone()),
                });
            }
        }
        (Changed(crm), Deleted) => {
            if contact || !input.policy.delete_wins {
                if !contact {
                    note(
                        plan,
                        what(),
                        "deleted in the mailbox but changed in the CRM: the change wins, the item is created in the mailbox again",
                    );
                }
                plan.actions.push(Action::CreateInMailbox {
                    crm: Box::new(crm.clone()),
                    stamp: stamp_for(input.tenant, input.kind, pair.crm_id),
                });
            } else {
                plan.actions.push(Action::DeleteInCrm {
                    pair: refreshed(pair, Some(crm), None),
                });
            }
        }
        (Deleted, Deleted) => plan.actions.push(Action::Forget {
            pair: pair.clone(),
            why: "deleted on both sides",
        }),
    }
}

/// Both sides hold one recurring series in different versions: the merge of the two (the
/// winner's rule and content, both sides' occurrence edits), when it is not simply the
/// winner's series. Occurrence edits the merge cannot keep are noted.
fn merged_series(
    input: &Input<'_>,
    crm: &Observed<CrmId>,
    mailbox: &Observed<MailboxItemId>,
    side: Side,
    plan: &mut Plan,
) -> Option<Item> {
    let (Item::Diary(c), Item::Diary(m)) = (&crm.item, &mailbox.item) else {
        return None;
    };
    let (winner, loser) = match side {
        Side::Crm => (c, m),
        Side::Mailbox => (m, c),
    };
    let merged = super::merge_series(winner, loser, input.window, input.policy.delete_wins)?;
    for at in &merged.dropped {
        note(
            plan,
            format!(
                "{} series {} / {}, occurrence of {at}",
                input.kind, crm.id, mailbox.id
            ),
            "edited on the side that lost the conflict, but the winner's pattern no longer has it: not kept",
        );
    }
    (merged.item != *winner).then_some(Item::Diary(merged.item))
}

/// How two never-paired items that belong together are brought to one content.
pub(super) fn after_link(
    input: &Input<'_>,
    crm: &Observed<CrmId>,
    mailbox: &Observed<MailboxItemId>,
    plan: &mut Plan,
) -> AfterLink {
    if crm.item.content_hash() == mailbox.item.content_hash() {
        return AfterLink::Nothing;
    }
    let (side, reason) = winner(input, crm, mailbox, mailbox.item_read_only());
    plan.conflicts.push(Conflict {
        crm: Box::new(crm.clone()),
        mailbox: Box::new(mailbox.clone()),
        winner: side,
        reason,
    });
    if !mailbox.item_read_only()
        && let Some(item) = merged_series(input, crm, mailbox, side, plan)
    {
        return AfterLink::UpdateBoth(Box::new(item));
    }
    match side {
        Side::Crm => AfterLink::UpdateMailbox,
        Side::Mailbox => AfterLink::UpdateCrm,
    }
}

/// A mailbox item that carries the stamp of a CRM item the CRM says is deleted, with no pair
/// to tell whether the mailbox copy changed since the last sync (history lost, or a crash
/// between the create and its bookkeeping). A change beats a delete, and this one may hold a
/// change: the item is created in the CRM again, unless `delete-wins`. Contacts (a person's
/// stamp may sit on the user's own contact, linked by fingerprint) and meetings organised by
/// someone else are left alone.
fn stamped_but_deleted(
    input: &Input<'_>,
    mailbox: &Observed<MailboxItemId>,
    crm_id: CrmId,
    plan: &mut Plan,
) {
    let what = format!("{} item {} (CRM {crm_id})", input.kind, mailbox.id);
    if input.kind == Kind::Contact || mailbox.item_read_only() {
        note(
            plan,
            what,
            "stamped, but its CRM item no longer exists: left alone",
        );
    } else if input.policy.delete_wins {
        // A pair only in name: nothing in history refers to it.
        let pair = Pair {
            crm_id,
            mailbox_id: mailbox.id.clone(),
            crm_version: Version(String::new()),
            mailbox_version: mailbox.version.clone(),
            crm_hash: mailbox.item.content_hash(),
            mailbox_hash: mailbox.item.content_hash(),
            origin: Side::Crm,
            span: super::span_of(&mailbox.item),
            stamped: true,
            mailbox_read_only: false,
        };
        plan.actions.push(Action::DeleteInMailbox { pair });
    } else {
        note(
            plan,
            what,
            "stamped, but its CRM item was deleted and no history tells whether the mailbox copy changed since: it is created in the CRM again",
        );
        plan.actions.push(Action::CreateInCrm {
            mailbox: Box::new(mailbox.clone()),
        });
    }
}

pub(super) fn decide(input: &Input<'_>) -> Plan {
    let mut plan = Plan::default();
    let kind = input.kind;

    // The last report of an item counts (a feed may repeat one).
    let mut crm_seen: BTreeMap<CrmId, &CrmSeen> = BTreeMap::new();
    for seen in input.crm {
        let id = match seen {
            CrmSeen::Present(o) => o.id,
            CrmSeen::Deleted(id) | CrmSeen::OutOfScope(id) => *id,
        };
        crm_seen.insert(id, seen);
    }
    let mut mailbox_seen: BTreeMap<&MailboxItemId, &MailboxSeen> = BTreeMap::new();
    for seen in input.mailbox {
        let id = match seen {
            MailboxSeen::Present(o) => &o.id,
            MailboxSeen::Deleted(id) => id,
        };
        mailbox_seen.insert(id, seen);
    }
    let mut pairs: BTreeMap<CrmId, &Pair> = BTreeMap::new();
    for pair in input.pairs {
        pairs.insert(pair.crm_id, pair);
    }
    let by_mailbox: HashMap<&MailboxItemId, &Pair> =
        pairs.values().map(|p| (&p.mailbox_id, *p)).collect();

    // 1. Pairs with news from either side.
    let mut handled_crm: HashSet<CrmId> = HashSet::new();
    let mut handled_mailbox: HashSet<&MailboxItemId> = HashSet::new();
    for pair in pairs.values() {
        let c = crm_seen.get(&pair.crm_id).copied();
        let m = mailbox_seen.get(&pair.mailbox_id).copied();
        if c.is_none() && m.is_none() {
            continue;
        }
        handled_crm.insert(pair.crm_id);
        handled_mailbox.insert(&pair.mailbox_id);
        decide_pair(
            input,
            pair,
            crm_state(pair, c),
            mailbox_state(pair, m),
            &mut plan,
        );
    }

    // Items never paired.
    let mut crm_free: BTreeMap<CrmId, &Observed<CrmId>> = crm_seen
        .iter()
        .filter(|(id, _)| !handled_crm.contains(id) && !pairs.contains_key(id))
        .filter_map(|(id, seen)| match seen {
            CrmSeen::Present(o) => Some((*id, o.as_ref())),
            _ => None,
        })
        .collect();
    let mailbox_free: Vec<&Observed<MailboxItemId>> = mailbox_seen
        .iter()
        .filter(|(id, _)| !handled_mailbox.contains(*id) && !by_mailbox.contains_key(*id))
        .filter_map(|(_, seen)| match seen {
            MailboxSeen::Present(o) => Some(o.as_ref()),
            MailboxSeen::Deleted(_) => None,
        })
        .collect();

    // 2. Mailbox items that carry our stamp belong to the CRM item it names.
    let mut unstamped = Vec::new();
    for mailbox in mailbox_free {
        let ours = mailbox
            .stamp
            .as_ref()
            .filter(|s| s.tenant == input.tenant && s.kind == kind);
        let Some(stamp) = ours else {
            if mailbox.stamp.is_some() {
                note(
                    &mut plan,
                    format!("{kind} item {}", mailbox.id),
                    "stamped by another CRM tenant: left alone",
                );
            } else {
                unstamped.push(mailbox);
            }
            continue;
        };
        if let Some(crm) = crm_free.remove(&stamp.crm_id) {
            let then = after_link(input, crm, mailbox, &mut plan);
            plan.actions.push(Action::Link {
                crm: Box::new(crm.clone()),
                mailbox: Box::new(mailbox.clone()),
                then,
                stamp: false,
                origin: Side::Crm,
            });
        } else if pairs.contains_key(&stamp.crm_id) {
            note(
                &mut plan,
                format!("{kind} item {}", mailbox.id),
                "a second mailbox item carries the stamp of a paired CRM item: left alone for a person to look at",
            );
        } else if matches!(crm_seen.get(&stamp.crm_id), Some(CrmSeen::Deleted(_))) {
            stamped_but_deleted(input, mailbox, stamp.crm_id, &mut plan);
        } else {
            note(
                &mut plan,
                format!("{kind} item {} (CRM {})", mailbox.id, stamp.crm_id),
                "stamped, but its CRM item was not read: left alone",
            );
        }
    }

    // 3. Then by fingerprint, one to one, in id order.
    let mut by_fingerprint: BTreeMap<Fingerprint, Vec<CrmId>> = BTreeMap::new();
    for (id, crm) in &crm_free {
        if in_window(&crm.item, input.window) {
            by_fingerprint
                .entry(Fingerprint::of(&crm.item))
                .or_default()
                .push(*id);
        }
    }
    let mut still_unstamped = Vec::new();
    for mailbox in unstamped {
        let matched = by_fingerprint
            .get_mut(&Fingerprint::of(&mailbox.item))
            .and_then(|ids| (!ids.is_empty()).then(|| ids.remove(0)))
            .and_then(|id| crm_free.remove(&id));
        match matched {
            Some(crm) => {
                let then = after_link(input, crm, mailbox, &mut plan);
                plan.actions.push(Action::Link {
                    crm: Box::new(crm.clone()),
                    mailbox: Box::new(mailbox.clone()),
                    then,
                    stamp: true,
                    origin: Side::Mailbox,
                });
            }
            None => still_unstamped.push(mailbox),
        }
    }

    // 4. What is left is new on one side.
    for (id, crm) in crm_free {
        if !in_window(&crm.item, input.window) {
            note(
                &mut plan,
                format!("{kind} item {id}"),
                "outside the sync window: not created",
            );
            continue;
        }
        plan.actions.push(Action::CreateInMailbox {
            crm: Box::new(crm.clone()),
            stamp: stamp_for(input.tenant, kind, id),
        });
    }
    for mailbox in still_unstamped {
        if kind == Kind::Contact {
            // The user's own contacts never flow to the CRM.
            continue;
        }
        if !in_window(&mailbox.item, input.window) {
            note(
                &mut plan,
                format!("{kind} item {}", mailbox.id),
                "outside the sync window: not created",
            );
            continue;
        }
        plan.actions.push(Action::CreateInCrm {
            mailbox: Box::new(mailbox.clone()),
        });
    }
    plan
}
