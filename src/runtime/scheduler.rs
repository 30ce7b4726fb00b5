//! The scheduler loop of a rank daemon: one closed set of events (signals, registry
//! changes, ticks, finished work) handled in one place. Each tick every enabled
//! (user, kind) of the rank gets a pass; passes run as tasks, at most
//! `[sync] max_parallel_users` at once, never two for the same (user, kind), and stop only
//! between units of work when the daemon stops. Removed users' histories are purged; a user
//! moved to another rank is handed over once its passes have ended, and a user moved here
//! waits for its history before its first pass, so two daemons never sync one user.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::notify::{Notifier, Progress};
use super::registry_watch::{Change, RegistryWatch};
use super::signals::{Request, SignalRequests};
use super::work::{self, Connectors, Context, Outcome};
use crate::engine::GuardTripped;
use crate::history::History;
use crate::logging::LogHandle;
use crate::registry::{self, Kind, Rank, RankView, Registry, SyncUser, SyncUserId};
use crate::settings::{LoadOptions, Settings};

/// A unit of work; at most one of each is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Work {
    Pass(SyncUserId, Kind),
    /// Drop the history of a removed user (its tombstone is in the registry).
    Purge(SyncUserId),
    /// Hand a user's history to the rank it moved to.
    HandOver(SyncUserId),
    /// Take in the history of a user that moved here.
    TakeOver(SyncUserId),
}

/// Re-reads settings on SIGHUP and applies what can change while running.
pub struct Reloader {
    pub load: LoadOptions,
    pub logging: Option<LogHandle>,
}

pub struct Scheduler {
    rank: Rank,
    settings: Arc<Settings>,
    connectors: Arc<Connectors>,
    view: RankView,
    history: History,
    /// Users that moved away: their history is handed over once their passes have ended.
    leaving: BTreeSet<SyncUserId>,
    /// Users that moved here and wait for their history (from the rank named).
    arriving: BTreeMap<SyncUserId, Rank>,
    /// Users the delete guard stopped, until the registry changes.
    paused: BTreeMap<SyncUserId, GuardTripped>,
    /// When each (user, kind) last compared its pairs with the CRM's ids.
    checked: HashMap<(SyncUserId, Kind), tokio::time::Instant>,
    notifier: Notifier,
    progress: Progress,
    beat: Duration,
    work: JoinSet<Outcome>,
    in_flight: HashSet<Work>,
    tasks: HashMap<tokio::task::Id, Work>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    failed: BTreeMap<SyncUserId, String>,
    ticks: u64,
    last_tick: Option<jiff::Timestamp>,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Signal(&'static str),
    SignalsClosed,
}

fn interval(period: Duration, first_now: bool) -> Interval {
    let start = if first_now {
        tokio::time::Instant::now()
    } else {
        tokio::time::Instant::now() + period
    };
    let mut i = tokio::time::interval_at(start, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

impl Scheduler {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rank: Rank,
        settings: Arc<Settings>,
        connectors: Arc<Connectors>,
        registry: &Registry,
        history: History,
        notifier: Notifier,
        progress: Progress,
        beat: Duration,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(
            settings.sync.max_parallel_users.get() as usize
        ));
        let mut scheduler = Scheduler {
            rank,
            view: RankView::default(),
            settings,
            connectors,
            history,
            leaving: BTreeSet::new(),
            arriving: BTreeMap::new(),
            paused: BTreeMap::new(),
            checked: HashMap::new(),
            notifier,
            progress,
            beat,
            work: JoinSet::new(),
            in_flight: HashSet::new(),
            tasks: HashMap::new(),
            permits,
            stop: CancellationToken::new(),
            failed: BTreeMap::new(),
            ticks: 0,
            last_tick: None,
        };
        scheduler.take_view(registry);
        scheduler
    }

    fn context(&self) -> Context {
        Context {
            settings: self.settings.clone(),
            connectors: self.connectors.clone(),
            history: self.history.clone(),
            state_dir: self.settings.daemon.state_dir.clone(),
            rank: self.rank,
        }
    }

    /// Takes the rank's part of `registry`: who arrived by a move (and waits for its history),
    /// who left by one (and will be handed over).
    fn take_view(&mut self, registry: &Registry) {
        let new = registry.rank_view(self.rank);
        for user in &self.view.users {
            let moved = registry
                .users
                .iter()
                .any(|u| u.id == user.id && u.rank != self.rank);
            if moved {
                self.leaving.insert(user.id.clone());
            }
        }
        // A user that was handed over before this daemon started has its tree here still.
        for user in &registry.users {
            if user.rank != self.rank && self.history.has_user(&user.id) {
                self.leaving.insert(user.id.clone());
            }
        }
        for user in &new.users {
            if let Some(from) = user.moved_from
                && from != self.rank
                && !self.history.has_user(&user.id)
            {
                self.arriving.entry(user.id.clone()).or_insert(from);
            }
        }
        self.arriving
            .retain(|id, _| new.users.iter().any(|u| &u.id == id));
        self.view = new;
    }

    /// How long running work may take to reach a safe point once a stop is requested.
    pub fn shutdown_deadline(&self) -> Duration {
        self.settings.daemon.shutdown_deadline
    }

    /// A short line for systemd's STATUS= and the log.
    pub fn status_line(&self) -> String {
        let users = self.view.users.len();
        let active = self.view.active_users().count();
        let mut line = format!(
            "rank {}: {users} user{} ({active} active",
            self.rank,
            if users == 1 { "" } else { "s" }
        );
        if !self.failed.is_empty() {
            line.push_str(&format!(", {} failed", self.failed.len()));
        }
        if !self.paused.is_empty() {
            line.push_str(&format!(", {} paused", self.paused.len()));
        }
        if !self.arriving.is_empty() {
            line.push_str(&format!(", {} arriving", self.arriving.len()));
        }
        line.push(')');
        match self.last_tick {
            Some(t) => line.push_str(&format!(
                ", tick {} at {}",
                self.ticks,
                t.strftime("%H:%M:%SZ")
            )),
            None => line.push_str(", starting"),
        }
        if !self.in_flight.is_empty() {
            line.push_str(&format!(", {} passes running", self.in_flight.len()));
        }
        line
    }

    /// Runs until a stop is requested. Work still in flight is left to [`Scheduler::drain`].
    pub async fn run(
        &mut self,
        signals: &mut SignalRequests,
        watch: &mut RegistryWatch,
        reloader: &Reloader,
    ) -> Stopped {
        let mut tick = interval(self.settings.sync.interval, true);
        let mut poll = interval(self.settings.daemon.registry_poll_interval, false);
        let mut beat = interval(self.beat, false);
        loop {
            self.progress.beat();
            tokio::select! {
                request = signals.next() => match request {
                    Some(Request::Stop { signal }) => return Stopped::Signal(signal),
                    Some(Request::Reload) => {
                        if self.reload(watch, reloader) {
                            tick = interval(self.settings.sync.interval, false);
                            poll = interval(self.settings.daemon.registry_poll_interval, false);
                        }
                    }
                    None => return Stopped::SignalsClosed,
                },
                _ = poll.tick() => {
                    if let Some(change) = watch.check(false) {
                        self.apply(change, watch);
                    }
                }
                _ = tick.tick() => self.tick(),
                Some(joined) = self.work.join_next_with_id(), if !self.work.is_empty() => self.finish(joined),
                _ = beat.tick() => {}
            }
        }
    }

    /// Lets running work reach its safe point within `deadline`; a second stop request
    /// ends the process at once. Returns true if all work finished in time.
    pub async fn drain(&mut self, signals: &mut SignalRequests) -> bool {
        self.stop.cancel();
        self.permits.close();
        let deadline = tokio::time::sleep(self.shutdown_deadline());
        tokio::pin!(deadline);
        let mut beat = interval(self.beat, false);
        loop {
            self.progress.beat();
            if self.work.is_empty() {
                return true;
            }
            tokio::select! {
                _ = &mut deadline => {
                    tracing::warn!(
                        running = self.in_flight.len(),
                        "shutdown deadline reached with work still running; abandoning it (history stays consistent: cursors are committed with the changes they cover)"
                    );
                    self.work.abort_all();
                    while let Some(joined) = self.work.join_next_with_id().await {
                        self.finish(joined);
                    }
                    return false;
                }
                request = signals.next() => {
                    if let Some(Request::Stop { signal }) = request {
                        tracing::warn!(signal, "second stop request: exiting at once");
                        std::process::exit(1);
                    }
                }
                Some(joined) = self.work.join_next_with_id() => self.finish(joined),
                _ = beat.tick() => {}
            }
        }
    }

    fn reload(&mut self, watch: &mut RegistryWatch, reloader: &Reloader) -> bool {
        self.notifier.reloading();
        tracing::info!("SIGHUP: reloading settings and registry");
        let mut timers_changed = false;
        match crate::settings::load(&reloader.load) {
            Ok(loaded) => {
                let new = loaded.settings;
                if new.daemon.state_dir != self.settings.daemon.state_dir
                    || new.history != self.settings.history
                    || new.log.format != self.settings.log.format
                {
                    tracing::warn!(
                        "daemon.state_dir, [history] and log.format changed on disk but apply only after a restart"
                    );
                }
                if let Some(logging) = &reloader.logging
                    && let Err(e) = logging.set_level(&new.log.level)
                {
                    tracing::error!(error = %e, "log level not changed");
                }
                timers_changed = new.sync.interval != self.settings.sync.interval
                    || new.daemon.registry_poll_interval
                        != self.settings.daemon.registry_poll_interval;
                if new.sync.max_parallel_users != self.settings.sync.max_parallel_users {
                    // Work already waiting keeps the old semaphore; new work uses the new one.
                    self.permits =
                        Arc::new(Semaphore::new(new.sync.max_parallel_users.get() as usize));
                }
                if new.superoffice.is_some() != self.settings.superoffice.is_some()
                    || format!("{:?}", new.superoffice)
                        != format!("{:?}", self.settings.superoffice)
                    || format!("{:?}", new.mail_systems)
                        != format!("{:?}", self.settings.mail_systems)
                    || new.sync != self.settings.sync
                {
                    match Connectors::build(&new) {
                        Ok(c) => self.connectors = Arc::new(c),
                        Err(e) => {
                            tracing::error!(error = %e, "the new connector settings cannot be used; the running connectors stay")
                        }
                    }
                }
                self.settings = Arc::new(new);
                // A configuration change may mend users that failed on it.
                self.failed.clear();
                tracing::info!("settings reloaded");
            }
            Err(e) => tracing::error!("settings not reloaded; the running ones stay in force: {e}"),
        }
        if let Some(change) = watch.check(true) {
            self.apply(change, watch);
        }
        self.notifier.ready(&self.status_line());
        timers_changed
    }

    fn apply(&mut self, change: Change, watch: &RegistryWatch) {
        let registry = match change {
            Change::Valid(registry) => registry,
            Change::Invalid(e) => {
                tracing::error!(
                    "registry refused, the last good one ({} users on this rank) stays in force: {e}",
                    self.view.users.len()
                );
                return;
            }
            Change::Vanished => {
                tracing::error!(
                    path = %watch.path().display(),
                    "the registry file is gone; the last good one ({} users on this rank) stays in force",
                    self.view.users.len()
                );
                return;
            }
        };
        let new = registry.rank_view(self.rank);
        let moves_away = self.view.users.iter().any(|u| {
            registry
                .users
                .iter()
                .any(|r| r.id == u.id && r.rank != self.rank)
        });
        if new == self.view && !moves_away {
            tracing::debug!("registry changed, this rank's users did not");
            return;
        }
        let before: BTreeMap<_, _> = self.view.users.iter().map(|u| (&u.id, u)).collect();
        let after: BTreeMap<_, _> = new.users.iter().map(|u| (&u.id, u)).collect();
        let added: BTreeSet<SyncUserId> = after
            .keys()
            .filter(|id| !before.contains_key(*id))
            .map(|id| (*id).clone())
            .collect();
        let removed = before.keys().filter(|id| !after.contains_key(*id)).count();
        let changed = after
            .iter()
            .filter(|(id, u)| before.get(*id).is_some_and(|b| b != *u))
            .count();
        tracing::info!(
            users = new.users.len(),
            added = added.len(),
            removed,
            changed,
            tombstones = new.tombstones.len(),
            "registry reloaded"
        );
        // A registry change is a reason to try failed and paused users again.
        self.failed
            .retain(|id, _| after.contains_key(id) && !added.contains(id));
        self.paused.clear();
        self.take_view(&registry);
        self.notifier.status(&self.status_line());
        // New users and removals take effect now, not at the next tick.
        self.schedule(Some(&added));
    }

    fn tick(&mut self) {
        self.ticks += 1;
        self.last_tick = Some(jiff::Timestamp::now());
        self.connectors.prune();
        let due = self.schedule(None);
        tracing::debug!(tick = self.ticks, due, "tick");
        self.notifier.status(&self.status_line());
    }

    fn spawn(&mut self, work: Work, unit: impl Future<Output = Outcome> + Send + 'static) {
        let task = self.work.spawn(unit);
        self.tasks.insert(task.id(), work.clone());
        self.in_flight.insert(work);
    }

    fn passes_running(&self, user: &SyncUserId) -> bool {
        self.in_flight
            .iter()
            .any(|w| matches!(w, Work::Pass(id, _) if id == user))
    }

    /// Starts what is due: purges for tombstoned users whose history is still here,
    /// hand-overs of users that left (once their passes have ended), take-overs of users whose
    /// history has arrived, then a pass for every enabled (user, kind) not already in flight
    /// (only `only`'s users, when given). Returns how many units were started.
    fn schedule(&mut self, only: Option<&BTreeSet<SyncUserId>>) -> usize {
        let mut started = 0;
        let context = self.context();
        let tombstoned: Vec<SyncUserId> = self
            .view
            .tombstones
            .iter()
            .filter(|t| {
                self.history.has_user(&t.id)
                    || !registry::dropped_path(&context.state_dir, self.rank, &t.id).exists()
            })
            .map(|t| t.id.clone())
            .collect();
        for id in tombstoned {
            let work = Work::Purge(id.clone());
            if !self.in_flight.contains(&work) && !self.passes_running(&id) {
                self.spawn(work, work::purge(context.clone(), id));
                started += 1;
            }
        }
        let leaving: Vec<SyncUserId> = self.leaving.iter().cloned().collect();
        for id in leaving {
            let work = Work::HandOver(id.clone());
            if !self.in_flight.contains(&work) && !self.passes_running(&id) {
                self.spawn(work, work::hand_over(context.clone(), id));
                started += 1;
            }
        }
        let arrived: Vec<SyncUserId> = self
            .arriving
            .keys()
            .filter(|id| registry::handoff_path(&context.state_dir, id).exists())
            .cloned()
            .collect();
        for id in arrived {
            let work = Work::TakeOver(id.clone());
            if !self.in_flight.contains(&work) {
                self.spawn(work, work::take_over(context.clone(), id));
                started += 1;
            }
        }
        let now = tokio::time::Instant::now();
        let check_every = self.settings.sync.crm_check_interval;
        let due: Vec<(SyncUser, Kind)> = self
            .view
            .active_users()
            .filter(|u| only.is_none_or(|set| set.contains(&u.id)))
            .filter(|u| {
                !self.failed.contains_key(&u.id)
                    && !self.paused.contains_key(&u.id)
                    && !self.arriving.contains_key(&u.id)
                    && !self.leaving.contains(&u.id)
            })
            .flat_map(|u| u.enabled_kinds().map(move |k| (u.clone(), k)))
            .collect();
        for (user, kind) in due {
            let work = Work::Pass(user.id.clone(), kind);
            if self.in_flight.contains(&work) {
                continue;
            }
            let key = (user.id.clone(), kind);
            let check = self
                .checked
                .get(&key)
                .is_none_or(|at| now.duration_since(*at) >= check_every);
            if check {
                self.checked.insert(key, now);
            }
            let (permits, stop) = (self.permits.clone(), self.stop.child_token());
            self.spawn(
                work,
                work::pass(context.clone(), user, kind, check, permits, stop),
            );
            started += 1;
        }
        started
    }

    fn finish(&mut self, joined: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let Some(work) = self.tasks.remove(&id) else {
            return;
        };
        self.in_flight.remove(&work);
        let outcome = match joined {
            Ok((_, outcome)) => outcome,
            Err(e) if e.is_cancelled() => Outcome::Cancelled,
            Err(e) => {
                // A panicking unit is a bug; it is tried again at the next tick.
                tracing::error!(?work, error = %e, "a unit of work ended abnormally");
                return;
            }
        };
        match (&work, outcome) {
            (_, Outcome::Cancelled) => {}
            (Work::Pass(user, kind), Outcome::Synced(report)) => {
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
            (Work::Pass(user, kind), Outcome::Paused(guard)) => {
                tracing::warn!(
                    user = %user, %kind,
                    deletes = guard.deletes, pairs = guard.pairs,
                    "the pass would delete too much and was stopped; nothing was written (resume with `crmsync users resume USER --allow-deletes`)"
                );
                self.paused.insert(user.clone(), guard);
                self.notifier.status(&self.status_line());
            }
            (Work::Pass(user, kind), Outcome::Retry(reason)) => {
                tracing::warn!(user = %user, %kind, "pass failed, retried at the next tick: {reason}");
            }
            (Work::Pass(user, kind), Outcome::Failed(reason)) => {
                if self.failed.insert(user.clone(), reason.clone()).is_none() {
                    tracing::error!(user = %user, %kind, "user failed and is skipped until the configuration or registry changes: {reason}");
                    self.notifier.status(&self.status_line());
                }
            }
            (Work::Purge(user), Outcome::Purged { existed }) => {
                tracing::info!(user = %user, existed, "removed user's history deleted");
            }
            (Work::HandOver(user), Outcome::HandedOver) => {
                self.leaving.remove(user);
                tracing::info!(user = %user, "history handed over to the user's new rank");
            }
            (Work::TakeOver(user), Outcome::TakenOver) => {
                self.arriving.remove(user);
                tracing::info!(user = %user, "history taken over from the user's old rank");
                self.notifier.status(&self.status_line());
                let only = BTreeSet::from([user.clone()]);
                self.schedule(Some(&only));
            }
            (work, Outcome::Retry(reason) | Outcome::Failed(reason)) => {
                tracing::error!(?work, "retried at the next tick: {reason}");
            }
            (work, outcome) => {
                tracing::warn!(?work, ?outcome, "unexpected outcome");
            }
        }
    }
}
