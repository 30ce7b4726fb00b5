//! The rank-wide reads of a tick. Instead of every (user, kind) asking both services "what
//! changed?", a round asks the CRM once per kind for all the rank's users (from the earliest
//! of their cursors; users without a cursor share one full listing) and polls the mailboxes'
//! delta links in Graph `$batch` requests, 20 per round trip. It splits the answers per user;
//! each user's pass then only writes, and reads what the round could not read for it.
//!
//! Architecture invariant: a round only reads. What it read reaches the history only through
//! the pass that applies it, so a cursor never moves past changes that were not applied.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;

use super::pass::{CrmNews, Prefetched};
use super::work::Context;
use crate::connector::graph::PollPair;
use crate::connector::model::{CrmId, Cursor, Kind, Window};
use crate::connector::{ConnectorError, CrmConnector, RankChanges};
use crate::history::{Cursors, UserHistory};
use crate::registry::SyncUser;

/// A (user, kind) the round reads for.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: SyncUser,
    /// Also list the CRM's ids for the user now (the safety net for missed deletions).
    pub check_crm_ids: bool,
}

/// What the round read for one kind.
#[derive(Debug, Default)]
pub struct KindRound {
    /// Users with everything read: their passes start with it.
    pub ready: Vec<(Member, Prefetched)>,
    /// Users the round could not read for (a cursor it cannot merge, a history it cannot
    /// open): their passes read for themselves.
    pub solo: Vec<Member>,
    /// The CRM's change feed could not be read: these users wait for the next tick.
    pub blocked: Vec<Member>,
    pub crm_error: Option<ConnectorError>,
}

struct Loaded {
    member: Member,
    history: UserHistory,
    cursors: Cursors,
}

/// Reads the changes of `kind` for `members` (all of one rank) and splits them per user.
pub async fn read(
    context: &Context,
    kind: Kind,
    members: Vec<Member>,
    window: &Window,
) -> KindRound {
    let mut round = KindRound::default();
    let Some(crm) = context.connectors.crm.as_ref() else {
        round.solo = members;
        return round;
    };
    let mut loaded = Vec::new();
    for member in members {
        let opened = context
            .history
            .user(&member.user.id)
            .and_then(|history| Ok((history.cursors(kind)?, history)));
        match opened {
            Ok((cursors, history)) => loaded.push(Loaded {
                member,
                history,
                cursors,
            }),
            Err(_) => round.solo.push(member),
        }
    }

    // Users without a CRM cursor share one full listing; the others one read from the earliest
    // of their cursors. A cursor that cannot be merged reads on its own.
    let (fresh, continuing): (Vec<Loaded>, Vec<Loaded>) =
        loaded.into_iter().partition(|l| l.cursors.crm.is_none());
    let (mergeable, unmergeable): (Vec<Loaded>, Vec<Loaded>) =
        continuing.into_iter().partition(|l| {
            l.cursors
                .crm
                .as_ref()
                .is_some_and(|c| crm.earliest_cursor(kind, &[c]).is_some())
        });
    round.solo.extend(unmergeable.into_iter().map(|l| l.member));
    let earliest = {
        let cursors: Vec<&Cursor> = mergeable
            .iter()
            .filter_map(|l| l.cursors.crm.as_ref())
            .collect();
        crm.earliest_cursor(kind, &cursors)
    };
    let mut groups: Vec<(Vec<Loaded>, Option<Cursor>)> = Vec::new();
    if !fresh.is_empty() {
        groups.push((fresh, None));
    }
    if !mergeable.is_empty() {
        match earliest {
            Some(cursor) => groups.push((mergeable, Some(cursor))),
            // Each merges alone but not together: read them one by one.
            None => round.solo.extend(mergeable.into_iter().map(|l| l.member)),
        }
    }

    let checked: Vec<u32> = groups
        .iter()
        .flat_map(|(g, _)| g.iter())
        .filter(|l| l.member.check_crm_ids)
        .map(|l| l.member.user.associate_id)
        .collect();
    let reads = join_all(groups.iter().map(|(group, cursor)| {
        let associates: Vec<u32> = group.iter().map(|l| l.member.user.associate_id).collect();
        async move {
            crm.changes(&associates, kind, cursor.as_ref(), window)
                .await
        }
    }));
    let ids = async {
        if checked.is_empty() {
            Ok(BTreeMap::new())
        } else {
            crm.ids_in_window(&checked, kind, window).await
        }
    };
    let (reads, ids) = tokio::join!(reads, ids);
    let mut ids = match ids {
        Ok(ids) => ids,
        Err(e) => {
            round.blocked = groups
                .into_iter()
                .flat_map(|(g, _)| g.into_iter().map(|l| l.member))
                .collect();
            round.crm_error = Some(e);
            return round;
        }
    };

    let mut split = Vec::new();
    for ((group, _), read) in groups.into_iter().zip(reads) {
        match read {
            Ok(changes) => {
                for loaded in group {
                    let news = news_for(&loaded, kind, &changes, &mut ids);
                    split.push((loaded, news));
                }
            }
            Err(e) => {
                round.blocked.extend(group.into_iter().map(|l| l.member));
                round.crm_error = Some(e);
            }
        }
    }

    let polled = poll_mailboxes(context, kind, &split).await;
    for ((loaded, news), mailbox) in split.into_iter().zip(polled) {
        round.ready.push((
            loaded.member,
            Prefetched {
                crm: Some(news),
                mailbox,
            },
        ));
    }
    round
}

/// One user's part of a rank-wide read.
fn news_for(
    loaded: &Loaded,
    kind: Kind,
    changes: &RankChanges,
    ids: &mut BTreeMap<u32, Vec<CrmId>>,
) -> CrmNews {
    let associate = loaded.member.user.associate_id;
    let upserts = changes
        .by_associate
        .get(&associate)
        .cloned()
        .unwrap_or_default();
    let own: BTreeSet<CrmId> = upserts.iter().map(|o| o.id).collect();
    let paired = |id: CrmId| {
        // A history that cannot be read here is read again by the pass, which reports it.
        matches!(loaded.history.pair_by_crm(kind, id), Ok(Some(_)))
    };
    let deleted = changes
        .deleted
        .iter()
        .copied()
        .filter(|id| paired(*id))
        .collect();
    // Someone else's item that this user has a pair of: it changed hands (or left the
    // user's scope) and is checked by the pass, not deleted on sight.
    let out_of_scope = changes
        .by_associate
        .iter()
        .filter(|(other, _)| **other != associate)
        .flat_map(|(_, items)| items.iter().map(|o| o.id))
        .filter(|id| !own.contains(id))
        .collect::<BTreeSet<CrmId>>()
        .into_iter()
        .filter(|id| paired(*id))
        .collect();
    CrmNews {
        upserts,
        deleted,
        out_of_scope,
        cursor: Some(changes.cursor.clone()),
        full: changes.full,
        ids_now: loaded
            .member
            .check_crm_ids
            .then(|| ids.remove(&associate).unwrap_or_default()),
    }
}

/// Polls the delta links of the users that have one, per mail system in `$batch` requests;
/// `None` for the users whose pass reads its mailbox itself (no cursor yet, or a mail system
/// that is not configured).
async fn poll_mailboxes(
    context: &Context,
    kind: Kind,
    split: &[(Loaded, CrmNews)],
) -> Vec<
    Option<
        Result<
            crate::connector::model::Changes<crate::connector::model::MailboxItemId>,
            ConnectorError,
        >,
    >,
> {
    let mut answers: Vec<Option<_>> = (0..split.len()).map(|_| None).collect();
    let mut by_system: BTreeMap<&str, Vec<(usize, PollPair)>> = BTreeMap::new();
    for (i, (loaded, _)) in split.iter().enumerate() {
        let user = &loaded.member.user;
        if let Some(cursor) = &loaded.cursors.mailbox
            && context.connectors.mailboxes.contains_key(&user.mail_system)
        {
            let mailbox = super::pass::mailbox_of(user);
            by_system
                .entry(user.mail_system.as_str())
                .or_default()
                .push((i, (mailbox, kind, cursor.clone())));
        }
    }
    let polls = by_system.into_iter().filter_map(|(system, entries)| {
        let client = context.connectors.mailboxes.get(system)?;
        Some(async move {
            let (slots, pairs): (Vec<usize>, Vec<PollPair>) = entries.into_iter().unzip();
            let results = client.poll(&pairs).await;
            slots.into_iter().zip(results).collect::<Vec<_>>()
        })
    });
    for (slot, result) in join_all(polls).await.into_iter().flatten() {
        answers[slot] = Some(result);
    }
    answers
}
