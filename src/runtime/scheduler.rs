//! The scheduler loop of a rank daemon: one closed set of events (signals, registry
//! changes, ticks, finished work) handled in one place. Each tick every enabled
//! (user, kind) of the rank gets a pass; passes run as tasks, at most
//! `[sync] max_parallel_users` at once, never two for the same (user, kind), and stop only
//! between units of work when the daemon stops.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::notify::{Notifier, Progress};
use super::registry_watch::{Change, RegistryWatch};
use super::signals::{Request, SignalRequests};
use crate::history::History;
use crate::logging::LogHandle;
use crate::registry::{Kind, Rank, RankView, Registry, SyncUser, SyncUserId};
use crate::settings::{LoadOptions, Settings};

/// A unit of work; at most one of each is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Work {
    Pass(SyncUserId, Kind),
    /// Drop the history of a removed user (its tombstone is in the registry).
    Purge(SyncUserId),
}

#[derive(Debug)]
enum Outcome {
    Done,
    Failed(String),
    Purged { existed: bool },
    Cancelled,
}

/// What a pass needs besides the user: read-only, cheap to clone.
#[derive(Clone)]
struct PassContext {
    settings: Arc<Settings>,
}

impl PassContext {
    /// Why this user cannot be synced with the current settings, if it cannot.
    fn configuration_problem(&self, user: &SyncUser) -> Option<String> {
        if !self.settings.mail_systems.contains_key(&user.mail_system) {
            return Some(format!(
                "mail system {:?} is not configured: add [mail_systems.{}] to the configuration",
                user.mail_system, user.mail_system
            ));
        }
        if self.settings.superoffice.is_none() {
            return Some("SuperOffice is not configured: add a [superoffice] section".to_string());
        }
        None
    }
}

/// One pass for (user, kind). It waits for a parallelism permit, gives up if the daemon is
/// stopping before it starts, and otherwise runs to its next safe point.
async fn pass(
    context: PassContext,
    user: SyncUser,
    kind: Kind,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
) -> Outcome {
    let _permit = tokio::select! {
        biased;
        _ = stop.cancelled() => return Outcome::Cancelled,
        permit = permits.acquire_owned() => match permit {
            Ok(permit) => permit,
            Err(_) => return Outcome::Cancelled,
        },
    };
    if let Some(problem) = context.configuration_problem(&user) {
        return Outcome::Failed(problem);
    }
    // The connectors and the engine do the work of a pass; until a kind has them there is
    // nothing to exchange, and the pass ends at once.
    tracing::debug!(user = %user.id, %kind, "pass: nothing to exchange");
    Outcome::Done
}

/// Re-reads settings on SIGHUP and applies what can change while running.
pub struct Reloader {
    pub load: LoadOptions,
    pub logging: Option<LogHandle>,
}

pub struct Scheduler {
    rank: Rank,
    settings: Arc<Settings>,
    view: RankView,
    history: History,
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
    pub fn new(
        rank: Rank,
        settings: Arc<Settings>,
        registry: &Registry,
        history: History,
        notifier: Notifier,
        progress: Progress,
        beat: Duration,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(
            settings.sync.max_parallel_users.get() as usize
        ));
        Scheduler {
            rank,
            view: registry.rank_view(rank),
            settings,
            history,
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
        }
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
        if new == self.view {
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
        // A registry change is a reason to try failed users again.
        self.failed
            .retain(|id, _| after.contains_key(id) && !added.contains(id));
        self.view = new;
        self.notifier.status(&self.status_line());
        // New users and removals take effect now, not at the next tick.
        self.schedule(Some(&added));
    }

    fn tick(&mut self) {
        self.ticks += 1;
        self.last_tick = Some(jiff::Timestamp::now());
        let due = self.schedule(None);
        tracing::debug!(tick = self.ticks, due, "tick");
        self.notifier.status(&self.status_line());
    }

    /// Starts purges for tombstoned users whose history is still here, then a pass for every
    /// enabled (user, kind) not already in flight (only `only`'s users, when given).
    /// Returns how many units were started.
    fn schedule(&mut self, only: Option<&BTreeSet<SyncUserId>>) -> usize {
        let mut started = 0;
        let tombstoned: Vec<SyncUserId> = self
            .view
            .tombstones
            .iter()
            .filter(|t| self.history.has_user(&t.id))
            .map(|t| t.id.clone())
            .collect();
        for id in tombstoned {
            let work = Work::Purge(id.clone());
            if self.in_flight.insert(work.clone()) {
                let history = self.history.clone();
                let task = self.work.spawn(async move {
                    match tokio::task::spawn_blocking(move || history.drop_user(&id)).await {
                        Ok(Ok(existed)) => Outcome::Purged { existed },
                        Ok(Err(e)) => Outcome::Failed(e.to_string()),
                        Err(e) => Outcome::Failed(format!("history purge task failed: {e}")),
                    }
                });
                self.tasks.insert(task.id(), work);
                started += 1;
            }
        }
        let context = PassContext {
            settings: self.settings.clone(),
        };
        let due: Vec<(SyncUser, Kind)> = self
            .view
            .active_users()
            .filter(|u| only.is_none_or(|set| set.contains(&u.id)))
            .filter(|u| !self.failed.contains_key(&u.id))
            .flat_map(|u| u.enabled_kinds().map(move |k| (u.clone(), k)))
            .collect();
        for (user, kind) in due {
            let work = Work::Pass(user.id.clone(), kind);
            if !self.in_flight.insert(work.clone()) {
                continue;
            }
            let (context, permits, stop) = (
                context.clone(),
                self.permits.clone(),
                self.stop.child_token(),
            );
            let task = self
                .work
                .spawn(async move { pass(context, user, kind, permits, stop).await });
            self.tasks.insert(task.id(), work);
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
            (Work::Pass(..), Outcome::Done | Outcome::Cancelled) => {}
            (Work::Pass(user, kind), Outcome::Failed(reason)) => {
                if self.failed.insert(user.clone(), reason.clone()).is_none() {
                    tracing::error!(user = %user, %kind, "user failed and is skipped until the configuration or registry changes: {reason}");
                    self.notifier.status(&self.status_line());
                }
            }
            (Work::Purge(user), Outcome::Purged { existed }) => {
                tracing::info!(user = %user, existed, "removed user's history deleted");
            }
            (Work::Purge(user), Outcome::Failed(reason)) => {
                tracing::error!(user = %user, "cannot delete the removed user's history; retrying at the next tick: {reason}");
            }
            (work, outcome) => {
                tracing::warn!(?work, ?outcome, "unexpected outcome");
            }
        }
    }
}
