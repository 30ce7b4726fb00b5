//! Each sync user's state in its rank daemon: ok, backing off after transient errors (the
//! wait doubles from one interval up to `[sync] retry_max`, or longer when a service asked
//! for it), failed on a permanent error until the registry entry changes or the user is
//! resumed, paused by the mass-delete guard. A user that is not ok is simply not scheduled,
//! so it never slows the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::pass::PassReport;
use super::status::{KindStatus, PassOutcome, UserState};
use crate::engine::GuardTripped;
use crate::registry::{Kind, SyncUserId};

/// Why a user is not scheduled.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// Transient errors: tried again at `until`.
    BackingOff {
        until: Instant,
        until_wall: jiff::Timestamp,
        reason: String,
    },
    /// A permanent error: until the registry entry changes or `crmsync users resume`.
    Failed { reason: String },
    /// The mass-delete guard stopped a pass of `kind`.
    Paused { kind: Kind, guard: GuardTripped },
}

#[derive(Debug, Clone, Default)]
pub struct UserHealth {
    pub hold: Option<Hold>,
    /// Transient failures in a row.
    pub failures: u32,
    pub kinds: BTreeMap<Kind, KindStatus>,
    /// The state last shown, and since when.
    pub shown: Option<(UserState, jiff::Timestamp)>,
}

/// The health of every user of the rank.
#[derive(Debug, Default)]
pub struct Health {
    users: BTreeMap<SyncUserId, UserHealth>,
}

/// The wait before retry number `failures` (1 for the first): one `base`, doubling, at most
/// `max`, and never shorter than what the service asked for.
pub fn retry_delay(
    base: Duration,
    max: Duration,
    failures: u32,
    asked: Option<Duration>,
) -> Duration {
    let doubled = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(max).max(asked.unwrap_or(Duration::ZERO))
}

impl Health {
    pub fn get(&self, user: &SyncUserId) -> Option<&UserHealth> {
        self.users.get(user)
    }

    pub fn hold(&self, user: &SyncUserId) -> Option<&Hold> {
        self.users.get(user).and_then(|h| h.hold.as_ref())
    }

    /// Whether `user` may have a pass now.
    pub fn schedulable(&self, user: &SyncUserId, now: Instant) -> bool {
        match self.hold(user) {
            None => true,
            Some(Hold::BackingOff { until, .. }) => *until <= now,
            Some(Hold::Failed { .. } | Hold::Paused { .. }) => false,
        }
    }

    fn entry(&mut self, user: &SyncUserId) -> &mut UserHealth {
        self.users.entry(user.clone()).or_default()
    }

    fn kind(&mut self, user: &SyncUserId, kind: Kind) -> &mut KindStatus {
        self.entry(user).kinds.entry(kind).or_default()
    }

    fn finished(
        &mut self,
        user: &SyncUserId,
        kind: Kind,
        outcome: PassOutcome,
        elapsed: Duration,
        at: jiff::Timestamp,
    ) {
        let k = self.kind(user, kind);
        k.passes += 1;
        k.last_pass_at = Some(at);
        k.last_result = Some(outcome);
        k.last_duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    }

    /// A pass ended well: counts, and the user is ok again.
    pub fn synced(
        &mut self,
        user: &SyncUserId,
        kind: Kind,
        report: &PassReport,
        pairs: Option<u64>,
        elapsed: Duration,
        at: jiff::Timestamp,
    ) {
        self.finished(user, kind, PassOutcome::Ok, elapsed, at);
        let k = self.kind(user, kind);
        k.created += report.created_in_crm + report.created_in_mailbox;
        k.updated += report.updated_in_crm + report.updated_in_mailbox + report.restored;
        k.deleted += report.deleted_in_crm + report.deleted_in_mailbox;
        k.conflicts += report.conflicts.len() as u64;
        k.quarantined += report.quarantined.len() as u64;
        k.last_error = None;
        if pairs.is_some() {
            k.pairs = pairs;
        }
        let health = self.entry(user);
        health.failures = 0;
        if matches!(health.hold, Some(Hold::BackingOff { .. })) {
            health.hold = None;
        }
    }

    /// A pass failed with a transient error: the user backs off for the returned delay.
    #[allow(clippy::too_many_arguments)]
    pub fn retry(
        &mut self,
        user: &SyncUserId,
        kind: Kind,
        reason: &str,
        asked: Option<Duration>,
        base: Duration,
        max: Duration,
        elapsed: Duration,
        at: jiff::Timestamp,
    ) -> Duration {
        self.finished(user, kind, PassOutcome::Error, elapsed, at);
        self.kind(user, kind).last_error = Some(reason.to_string());
        let health = self.entry(user);
        health.failures = health.failures.saturating_add(1);
        let delay = retry_delay(base, max, health.failures, asked);
        // A failed or paused user stays so; backing off never shortens a longer wait.
        let until = Instant::now() + delay;
        match &health.hold {
            Some(Hold::Failed { .. } | Hold::Paused { .. }) => {}
            Some(Hold::BackingOff { until: old, .. }) if *old > until => {}
            _ => {
                let until_wall = at
                    .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
                    .unwrap_or(at);
                health.hold = Some(Hold::BackingOff {
                    until,
                    until_wall,
                    reason: reason.to_string(),
                });
            }
        }
        delay
    }

    /// A permanent error: the user is skipped until its registry entry changes. Returns
    /// whether it was not failed before.
    pub fn failed(
        &mut self,
        user: &SyncUserId,
        kind: Kind,
        reason: &str,
        elapsed: Duration,
        at: jiff::Timestamp,
    ) -> bool {
        self.finished(user, kind, PassOutcome::Failed, elapsed, at);
        self.kind(user, kind).last_error = Some(reason.to_string());
        let health = self.entry(user);
        let new = !matches!(health.hold, Some(Hold::Failed { .. }));
        health.hold = Some(Hold::Failed {
            reason: reason.to_string(),
        });
        new
    }

    /// The delete guard stopped a pass: nothing was written.
    pub fn paused(
        &mut self,
        user: &SyncUserId,
        kind: Kind,
        guard: GuardTripped,
        elapsed: Duration,
        at: jiff::Timestamp,
    ) {
        self.finished(user, kind, PassOutcome::Paused, elapsed, at);
        self.kind(user, kind).last_error = Some(format!(
            "the pass would delete {} of {} pairs",
            guard.deletes, guard.pairs
        ));
        self.entry(user).hold = Some(Hold::Paused { kind, guard });
    }

    /// The user is tried again at once (its registry entry changed, or it was resumed).
    pub fn release(&mut self, user: &SyncUserId) -> bool {
        match self.users.get_mut(user) {
            Some(health) if health.hold.is_some() => {
                health.hold = None;
                health.failures = 0;
                true
            }
            _ => false,
        }
    }

    /// Releases every failed user (after a settings reload, which may mend them).
    pub fn release_failed(&mut self) {
        for health in self.users.values_mut() {
            if matches!(health.hold, Some(Hold::Failed { .. })) {
                health.hold = None;
            }
        }
    }

    /// Forgets the users that left the rank.
    pub fn retain(&mut self, users: &BTreeSet<&SyncUserId>) {
        self.users.retain(|id, _| users.contains(id));
    }

    /// Remembers the state shown for `user`; returns since when it holds.
    pub fn shown(
        &mut self,
        user: &SyncUserId,
        state: UserState,
        now: jiff::Timestamp,
    ) -> jiff::Timestamp {
        let health = self.entry(user);
        match health.shown {
            Some((old, since)) if old == state => since,
            _ => {
                health.shown = Some((state, now));
                now
            }
        }
    }

    pub fn count(&self, pred: impl Fn(&Hold) -> bool) -> usize {
        self.users
            .values()
            .filter(|h| h.hold.as_ref().is_some_and(&pred))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_from_the_interval_up_to_the_cap() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(900);
        let delays: Vec<u64> = (1..=7)
            .map(|n| retry_delay(base, max, n, None).as_secs())
            .collect();
        assert_eq!(delays, [60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(retry_delay(base, max, 1000, None).as_secs(), 900);
    }

    #[test]
    fn a_service_asking_for_a_longer_wait_is_obeyed() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(900);
        let asked = Some(Duration::from_secs(1800));
        assert_eq!(retry_delay(base, max, 1, asked).as_secs(), 1800);
        assert_eq!(
            retry_delay(base, max, 1, Some(Duration::from_secs(5))).as_secs(),
            60
        );
    }

    fn user(id: &str) -> SyncUserId {
        SyncUserId::parse(id).expect("a valid id")
    }

    #[tokio::test(start_paused = true)]
    async fn a_backing_off_user_is_skipped_until_its_time_and_a_success_clears_it() {
        let mut health = Health::default();
        let u = user("u1");
        let at = jiff::Timestamp::UNIX_EPOCH;
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(900);
        let d = health.retry(
            &u,
            Kind::Diary,
            "throttled",
            None,
            base,
            max,
            Duration::ZERO,
            at,
        );
        assert_eq!(d, base);
        assert!(!health.schedulable(&u, Instant::now()));
        let d2 = health.retry(
            &u,
            Kind::Diary,
            "throttled",
            None,
            base,
            max,
            Duration::ZERO,
            at,
        );
        assert_eq!(d2, base * 2);
        tokio::time::advance(base * 2).await;
        assert!(health.schedulable(&u, Instant::now()));
        health.synced(
            &u,
            Kind::Diary,
            &PassReport::default(),
            Some(3),
            Duration::ZERO,
            at,
        );
        assert!(health.hold(&u).is_none());
        assert_eq!(health.get(&u).map(|h| h.failures), Some(0));
        assert_eq!(
            health.get(&u).and_then(|h| h.kinds[&Kind::Diary].pairs),
            Some(3)
        );
    }

    #[test]
    fn a_failed_user_stays_failed_through_transient_errors_until_released() {
        let mut health = Health::default();
        let u = user("u1");
        let at = jiff::Timestamp::UNIX_EPOCH;
        assert!(health.failed(&u, Kind::Task, "mailbox gone", Duration::ZERO, at));
        assert!(!health.failed(&u, Kind::Diary, "mailbox gone", Duration::ZERO, at));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let base = Duration::from_secs(1);
            health.retry(
                &u,
                Kind::Diary,
                "timeout",
                None,
                base,
                base,
                Duration::ZERO,
                at,
            );
            assert!(matches!(health.hold(&u), Some(Hold::Failed { .. })));
            assert!(!health.schedulable(&u, Instant::now()));
        });
        assert!(health.release(&u));
        assert!(health.schedulable(&u, Instant::now()));
        assert!(!health.release(&u));
    }
}
