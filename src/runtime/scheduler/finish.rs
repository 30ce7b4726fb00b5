//! What the scheduler does with finished work: a round's reads become passes, a pass's end
//! moves its user's state, and both feed the status file and the metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Scheduler, Work};
use crate::metrics::{Operation, PassResult, Side};
use crate::registry::{Kind, SyncUser, SyncUserId};
use crate::runtime::health::Hold;
use crate::runtime::pass::PassReport;
use crate::runtime::round::KindRound;
use crate::runtime::status::{ErrorEntry, KindStatus, RankStatus, UserState, UserStatus};
use crate::runtime::work::{Outcome, PassEnd};

impl Scheduler {
    pub(super) fn finish(
        &mut self,
        joined: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
    ) {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let Some(work) = self.tasks.remove(&id) else {
            return;
        };
        self.in_flight.remove(&work);
        self.dirty = true;
        let outcome = match joined {
            Ok((_, outcome)) => outcome,
            Err(e) => {
                if matches!(work, Work::Round) {
                    self.in_round.clear();
                }
                if !e.is_cancelled() {
                    // A panicking unit is a bug; it is tried again at the next tick.
                    tracing::error!(?work, error = %e, "a unit of work ended abnormally");
                    self.record_error(None, None, "internal", format!("{work:?}: {e}"));
                }
                return;
            }
        };
        match (work, outcome) {
            (Work::Round, Outcome::Round(rounds)) => self.finished_round(rounds),
            (Work::Round, _) => self.in_round.clear(),
            (_, Outcome::Cancelled) => {}
            (Work::Pass(user, kind), Outcome::Pass { elapsed, end }) => {
                self.finished_pass(&user, kind, elapsed, end)
            }
            (Work::Purge(user), Outcome::Purged { existed }) => {
                tracing::info!(user = %user, existed, "removed user's history deleted");
            }
            (Work::HandOver(user), Outcome::HandedOver(handed)) => {
                self.leaving.remove(&user);
                if handed {
                    tracing::info!(user = %user, "history handed over to the user's new rank");
                } else {
                    tracing::info!(user = %user, "the user starts afresh on its new rank: its history here was deleted");
                }
            }
            (Work::TakeOver(user), Outcome::TakenOver) => {
                self.arriving.remove(&user);
                tracing::info!(user = %user, "history taken over from the user's old rank");
                self.notifier.status(&self.status_line());
                let only = BTreeSet::from([user]);
                self.schedule(Some(&only));
            }
            (work, Outcome::Again(reason)) => {
                tracing::error!(?work, "retried at the next tick: {reason}");
                self.record_error(None, None, "history", format!("{work:?}: {reason}"));
            }
            (work, outcome) => {
                tracing::warn!(?work, ?outcome, "unexpected outcome");
            }
        }
    }

    /// Starts the passes of what a round read.
    fn finished_round(&mut self, rounds: Vec<(Kind, KindRound)>) {
        let users: BTreeMap<SyncUserId, SyncUser> = self
            .view
            .users
            .iter()
            .map(|u| (u.id.clone(), u.clone()))
            .collect();
        self.in_round.clear();
        let now = tokio::time::Instant::now();
        for (kind, round) in rounds {
            if let Some(e) = round.crm_error {
                let waiting = round.blocked.len();
                tracing::warn!(%kind, users = waiting, "the CRM's changes could not be read; these users wait for the next tick: {e}");
                self.metrics.error("transient");
                self.record_error(None, Some(kind), "transient", e.to_string());
            }
            let ready = round.ready.into_iter().map(|(m, p)| (m, Some(p)));
            let solo = round.solo.into_iter().map(|m| (m, None));
            for (member, prefetched) in ready.chain(solo) {
                // The registry may have changed while the round read: take the user as it is
                // now, and only if it is still to be synced.
                let Some(user) = users.get(&member.user.id) else {
                    continue;
                };
                let schedulable = user.kind_enabled(kind)
                    && self.health.schedulable(&user.id, now)
                    && !self.arriving.contains_key(&user.id)
                    && !self.leaving.contains_key(&user.id)
                    && !self.in_flight.contains(&Work::Pass(user.id.clone(), kind));
                if !schedulable {
                    continue;
                }
                // A changed mailbox makes what was read for the old one worthless.
                let prefetched = prefetched.filter(|_| {
                    user.mailbox == member.user.mailbox
                        && user.associate_id == member.user.associate_id
                });
                self.spawn_pass(user.clone(), kind, member.check_crm_ids, prefetched);
            }
        }
    }

    fn finished_pass(&mut self, user: &SyncUserId, kind: Kind, elapsed: Duration, end: PassEnd) {
        let at = jiff::Timestamp::now();
        match end {
            PassEnd::Synced { report, pairs } => {
                self.metrics.pass_finished(kind, PassResult::Ok, elapsed);
                self.count(kind, &report);
                self.health.synced(user, kind, &report, pairs, elapsed, at);
                self.allow_deletes.remove(&(user.clone(), kind));
                log_report(user, kind, &report);
                for q in &report.quarantined {
                    self.record_error(
                        Some(user),
                        Some(kind),
                        "item",
                        format!("item {} set aside: {}", q.item, q.error),
                    );
                }
            }
            PassEnd::Paused(guard) => {
                self.metrics
                    .pass_finished(kind, PassResult::Paused, elapsed);
                tracing::warn!(
                    user = %user, %kind,
                    deletes = guard.deletes, pairs = guard.pairs,
                    "the pass would delete too much and was stopped; nothing was written (resume with `crmsync users resume USER --allow-deletes`)"
                );
                self.health.paused(user, kind, guard, elapsed, at);
                self.notifier.status(&self.status_line());
            }
            PassEnd::Retry {
                reason,
                class,
                after,
            } => {
                self.metrics.pass_finished(kind, PassResult::Error, elapsed);
                self.metrics.error(class);
                let sync = &self.settings.sync;
                let delay = self.health.retry(
                    user,
                    kind,
                    &reason,
                    after,
                    sync.interval,
                    sync.retry_max,
                    elapsed,
                    at,
                );
                tracing::warn!(
                    user = %user, %kind,
                    retry_in = %humantime::format_duration(delay),
                    "pass failed; the user backs off: {reason}"
                );
                self.record_error(Some(user), Some(kind), class, reason);
            }
            PassEnd::Failed(reason) => {
                self.metrics
                    .pass_finished(kind, PassResult::Failed, elapsed);
                self.metrics.error("user");
                if self.health.failed(user, kind, &reason, elapsed, at) {
                    tracing::error!(user = %user, %kind, "user failed and is skipped until its registry entry changes or `crmsync users resume`: {reason}");
                    self.notifier.status(&self.status_line());
                }
                self.record_error(Some(user), Some(kind), "user", reason);
            }
        }
    }

    fn count(&mut self, kind: Kind, report: &PassReport) {
        let m = &self.metrics;
        for (op, side, n) in [
            (Operation::Created, Side::Crm, report.created_in_crm),
            (Operation::Created, Side::Mailbox, report.created_in_mailbox),
            (Operation::Updated, Side::Crm, report.updated_in_crm),
            (Operation::Updated, Side::Mailbox, report.updated_in_mailbox),
            (Operation::Deleted, Side::Crm, report.deleted_in_crm),
            (Operation::Deleted, Side::Mailbox, report.deleted_in_mailbox),
        ] {
            if n > 0 {
                m.items(kind, op, side, n);
            }
        }
        m.conflicts(kind, report.conflicts.len() as u64);
        m.quarantined(kind, report.quarantined.len() as u64);
        let t = &mut self.status.totals;
        t.passes += 1;
        t.created += report.created_in_crm + report.created_in_mailbox;
        t.updated += report.updated_in_crm + report.updated_in_mailbox + report.restored;
        t.deleted += report.deleted_in_crm + report.deleted_in_mailbox;
        t.conflicts += report.conflicts.len() as u64;
        t.quarantined += report.quarantined.len() as u64;
    }

    fn record_error(
        &mut self,
        user: Option<&SyncUserId>,
        kind: Option<Kind>,
        class: &str,
        message: String,
    ) {
        self.status.push_error(ErrorEntry {
            at: jiff::Timestamp::now(),
            user: user.cloned(),
            kind,
            class: class.to_string(),
            message,
        });
    }

    /// The state of `user` as operators see it.
    fn user_state(&self, user: &SyncUser) -> (UserState, Option<String>, Option<jiff::Timestamp>) {
        if self.leaving.contains_key(&user.id) {
            return (UserState::Leaving, None, None);
        }
        if let Some(from) = self.arriving.get(&user.id) {
            return (
                UserState::Arriving,
                Some(format!("waits for its history from rank {from}")),
                None,
            );
        }
        if user.is_disabled() {
            return (UserState::Disabled, None, None);
        }
        match self.health.hold(&user.id) {
            Some(Hold::Failed { reason }) => {
                return (UserState::Failed, Some(reason.clone()), None);
            }
            Some(Hold::Paused { kind, guard }) => {
                return (
                    UserState::Paused,
                    Some(format!(
                        "{kind}: the pass would delete {} of {} pairs; `crmsync users resume {} --allow-deletes` lets it through",
                        guard.deletes, guard.pairs, user.id
                    )),
                    None,
                );
            }
            Some(Hold::BackingOff {
                until_wall, reason, ..
            }) => {
                return (
                    UserState::BackingOff,
                    Some(reason.clone()),
                    Some(*until_wall),
                );
            }
            None => {}
        }
        let running = user
            .enabled_kinds()
            .any(|k| self.in_flight.contains(&Work::Pass(user.id.clone(), k)));
        if running {
            return (UserState::Syncing, None, None);
        }
        let passed = self
            .health
            .get(&user.id)
            .is_some_and(|h| h.kinds.values().any(|k| k.passes > 0));
        if passed {
            (UserState::Ok, None, None)
        } else {
            (UserState::Waiting, None, None)
        }
    }

    /// The status file as of now.
    pub(super) fn snapshot(&mut self) -> RankStatus {
        let now = jiff::Timestamp::now();
        let mut users = Vec::with_capacity(self.view.users.len());
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for user in &self.view.users {
            let (state, detail, retry_at) = self.user_state(user);
            *counts.entry(state.as_str()).or_default() += 1;
            let since = self.health.shown(&user.id, state, now);
            let kinds: BTreeMap<Kind, KindStatus> = user
                .enabled_kinds()
                .map(|k| {
                    let status = self
                        .health
                        .get(&user.id)
                        .and_then(|h| h.kinds.get(&k))
                        .cloned()
                        .unwrap_or_default();
                    (k, status)
                })
                .collect();
            users.push(UserStatus {
                id: user.id.clone(),
                associate_id: user.associate_id,
                login: user.login.clone(),
                mailbox: user.mailbox.clone(),
                state,
                since: Some(since),
                detail,
                retry_at,
                kinds,
            });
        }
        let counts: Vec<(&str, u64)> = counts.into_iter().collect();
        self.metrics.set_users(&counts);
        let mut status = self.status.clone();
        status.updated_at = now;
        status.interval_secs = self.settings.sync.interval.as_secs();
        status.tick = self.ticks;
        status.last_tick_at = self.last_tick;
        status.users = users;
        status.throttle = self.traffic.throttle();
        status
    }
}

fn log_report(user: &SyncUserId, kind: Kind, report: &PassReport) {
    let writes = report.writes();
    if writes > 0 || !report.conflicts.is_empty() || report.linked > 0 {
        tracing::info!(
            user = %user, %kind,
            created_in_mailbox = report.created_in_mailbox,
            created_in_crm = report.created_in_crm,
            updated_in_mailbox = report.updated_in_mailbox,
            updated_in_crm = report.updated_in_crm,
            deleted_in_mailbox = report.deleted_in_mailbox,
            deleted_in_crm = report.deleted_in_crm,
            linked = report.linked,
            conflicts = report.conflicts.len(),
            "pass"
        );
    }
    for conflict in &report.conflicts {
        tracing::info!(user = %user, %kind, "conflict: {conflict}");
    }
    for q in &report.quarantined {
        tracing::warn!(user = %user, %kind, item = %q.item, "item set aside: {}", q.error);
    }
}
