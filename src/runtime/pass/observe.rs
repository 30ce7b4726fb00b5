//! What each side reports for a pass, made certain enough for the engine: an item that only
//! looks deleted (Graph reports an event that left the window the same way as a deleted one; a
//! full listing simply lacks it) is read by id before it counts as deleted, and a stamped
//! mailbox item whose CRM item was not reported gets that item read, so that lost history is
//! rebuilt instead of items being created twice.

use std::collections::{BTreeMap, BTreeSet};

use super::{CrmNews, PassError, PassReport, PassSpec, Prefetched};
use crate::connector::model::{Change, CrmId, Cursor, Kind, MailboxItemId};
use crate::connector::{ConnectorError, CrmConnector, MailboxConnector};
use crate::engine::{CrmSeen, MailboxSeen};
use crate::history::{Pair, UserHistory};

pub(super) struct Observations {
    pub crm: Vec<CrmSeen>,
    pub mailbox: Vec<MailboxSeen>,
    pub pairs: Vec<Pair>,
    pub crm_cursor: Option<Cursor>,
    pub mailbox_cursor: Option<Cursor>,
}

fn span_in_window(pair: &Pair, spec: &PassSpec<'_>) -> bool {
    match (spec.kind, pair.span) {
        (Kind::Diary, Some((start, end))) => {
            start < spec.window.end.as_second() && end > spec.window.start.as_second()
        }
        _ => true,
    }
}

pub(super) async fn observe<M: MailboxConnector, C: CrmConnector>(
    mailbox: &M,
    crm: &C,
    history: &UserHistory,
    spec: &PassSpec<'_>,
    prefetched: Prefetched,
    report: &mut PassReport,
) -> Result<Observations, PassError> {
    let kind = spec.kind;
    let mref = spec.mailbox();
    let cursors = history.cursors(kind)?;

    let read = match prefetched.mailbox {
        Some(answer) => answer,
        None => {
            mailbox
                .changes(&mref, kind, cursors.mailbox.as_ref(), &spec.window)
                .await
        }
    };
    let mailbox_changes = match read {
        Ok(changes) => changes,
        Err(ConnectorError::ResyncNeeded { .. }) => {
            report.resynced = true;
            mailbox.changes(&mref, kind, None, &spec.window).await?
        }
        Err(e) => return Err(e.into()),
    };
    let news = match prefetched.crm {
        Some(news) => news,
        None => {
            let associate = spec.user.associate_id;
            let mut rank = crm
                .changes(&[associate], kind, cursors.crm.as_ref(), &spec.window)
                .await?;
            let ids_now = if spec.check_crm_ids {
                let mut ids = crm.ids_in_window(&[associate], kind, &spec.window).await?;
                Some(ids.remove(&associate).unwrap_or_default())
            } else {
                None
            };
            CrmNews {
                upserts: rank.by_associate.remove(&associate).unwrap_or_default(),
                deleted: rank.deleted,
                out_of_scope: Vec::new(),
                cursor: Some(rank.cursor),
                full: rank.full,
                ids_now,
            }
        }
    };

    let mut crm_seen: BTreeMap<CrmId, CrmSeen> = BTreeMap::new();
    for id in &news.deleted {
        crm_seen.insert(*id, CrmSeen::Deleted(*id));
    }
    for id in &news.out_of_scope {
        crm_seen.insert(*id, CrmSeen::OutOfScope(*id));
    }
    for o in news.upserts {
        crm_seen.insert(o.id, CrmSeen::Present(Box::new(o)));
    }
    let mut mailbox_seen: BTreeMap<MailboxItemId, MailboxSeen> = BTreeMap::new();
    let mut removed = Vec::new();
    for change in mailbox_changes.changes {
        match change {
            Change::Upsert(o) => {
                mailbox_seen.insert(o.id.clone(), MailboxSeen::Present(o));
            }
            Change::Removed(id) => removed.push(id),
        }
    }

    // The pairs every report refers to.
    let mut pairs: BTreeMap<CrmId, Pair> = BTreeMap::new();
    for id in crm_seen.keys() {
        if let Some(pair) = history.pair_by_crm(kind, *id)? {
            pairs.insert(pair.crm_id, pair);
        }
    }
    let mut stamped_crm_ids = BTreeSet::new();
    for (id, seen) in &mailbox_seen {
        if let Some(pair) = history.pair_by_mailbox(kind, id)? {
            pairs.insert(pair.crm_id, pair);
        }
        if let MailboxSeen::Present(o) = seen
            && let Some(stamp) = &o.stamp
            && stamp.tenant == spec.tenant
            && stamp.kind == kind
        {
            stamped_crm_ids.insert(stamp.crm_id);
            if let Some(pair) = history.pair_by_crm(kind, stamp.crm_id)? {
                pairs.insert(pair.crm_id, pair);
            }
        }
    }

    // Removed from the delta's view: deleted, or moved out of the window? Read it.
    for id in removed {
        if mailbox_seen.contains_key(&id) {
            continue;
        }
        let Some(pair) = history.pair_by_mailbox(kind, &id)? else {
            continue;
        };
        let seen = match mailbox.get(&mref, kind, &id).await? {
            Some(o) => MailboxSeen::Present(Box::new(o)),
            None => MailboxSeen::Deleted(id.clone()),
        };
        pairs.insert(pair.crm_id, pair);
        mailbox_seen.insert(id, seen);
    }

    // A full listing lacks an item: read it before believing it gone. Paired items outside the
    // window are expected to be missing and are left alone.
    if mailbox_changes.full || news.full {
        for pair in history.pairs(kind)? {
            if !span_in_window(&pair, spec) {
                continue;
            }
            if mailbox_changes.full && !mailbox_seen.contains_key(&pair.mailbox_id) {
                let seen = match mailbox.get(&mref, kind, &pair.mailbox_id).await? {
                    Some(o) => MailboxSeen::Present(Box::new(o)),
                    None => MailboxSeen::Deleted(pair.mailbox_id.clone()),
                };
                mailbox_seen.insert(pair.mailbox_id.clone(), seen);
                pairs.insert(pair.crm_id, pair.clone());
            }
            if news.full && !crm_seen.contains_key(&pair.crm_id) {
                let seen = match crm.get(kind, pair.crm_id).await? {
                    Some(o) => CrmSeen::Present(Box::new(o)),
                    None => CrmSeen::Deleted(pair.crm_id),
                };
                crm_seen.insert(pair.crm_id, seen);
                pairs.insert(pair.crm_id, pair);
            }
        }
    }

    // The safety net: a paired CRM item the CRM no longer lists for this user is read. Gone:
    // deleted. Still there: it belongs to someone else now, or left the contact scope.
    if let Some(ids_now) = &news.ids_now {
        let listed: BTreeSet<CrmId> = ids_now.iter().copied().collect();
        for pair in history.pairs(kind)? {
            if listed.contains(&pair.crm_id)
                || crm_seen.contains_key(&pair.crm_id)
                || !span_in_window(&pair, spec)
            {
                continue;
            }
            let still = if kind == Kind::Contact {
                crm.persons(&[pair.crm_id]).await?.pop()
            } else {
                crm.get(kind, pair.crm_id).await?
            };
            let seen = match still {
                Some(_) => CrmSeen::OutOfScope(pair.crm_id),
                None => CrmSeen::Deleted(pair.crm_id),
            };
            crm_seen.insert(pair.crm_id, seen);
            pairs.insert(pair.crm_id, pair);
        }
    }

    // Stamped mailbox items whose CRM item the feed did not report: read it, so the two are
    // paired again (lost history) rather than the item being made twice.
    for id in stamped_crm_ids {
        if crm_seen.contains_key(&id) || pairs.contains_key(&id) {
            continue;
        }
        let seen = match crm.get(kind, id).await? {
            Some(o) => CrmSeen::Present(Box::new(o)),
            None => CrmSeen::Deleted(id),
        };
        crm_seen.insert(id, seen);
    }

    Ok(Observations {
        crm: crm_seen.into_values().collect(),
        mailbox: mailbox_seen.into_values().collect(),
        pairs: pairs.into_values().collect(),
        crm_cursor: news.cursor,
        mailbox_cursor: Some(mailbox_changes.cursor),
    })
}
