//! The scheduler loop of a rank daemon: one closed set of events (signals, registry
//! changes, ticks, finished work) handled in one place. Each tick one round reads what
//! changed for every schedulable (user, kind) of the rank at once (the CRM's feed once per
//! kind, the mailboxes' delta links in `$batch` requests), then every one of them gets a pass
//! with its share. Passes run as tasks, at most `[sync] max_parallel_users` at once (a fair
//! queue), never two for the same (user, kind), and stop only between units of work when the
//! daemon stops. A new user gets its first pass at once, without waiting for the tick.
//! Removed users' histories are purged; a user moved to another rank is handed over once its
//! passes have ended, and a user moved here waits for its history before its first pass, so
//! two daemons never sync one user.

mod finish;
mod registry;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::health::Health;
use super::notify::{Notifier, Progress};
use super::registry_watch::RegistryWatch;
use super::report::{StatusWriter, Traffic};
use super::round::Member;
use super::signals::{Request, SignalRequests};
use super::status::{DaemonState, RankStatus};
use super::work::{self, Connectors, Context, Outcome};
use crate::history::History;
use crate::logging::LogHandle;
use crate::metrics::Metrics;
use crate::registry::{self as reg, Kind, Rank, RankView, Registry, SyncUser, SyncUserId};
use crate::settings::{LoadOptions, Settings};

/// A unit of work; at most one of each is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Work {
    Pass(SyncUserId, Kind),
    /// The rank-wide reads of a tick.
    Round,
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
    /// Users that moved away: their history is handed over (`true`) or dropped (`false`: the
    /// new rank starts them afresh) once their passes have ended.
    leaving: BTreeMap<SyncUserId, bool>,
    /// Users that moved here and wait for their history (from the rank named).
    arriving: BTreeMap<SyncUserId, Rank>,
    /// Each user's state: ok, backing off, failed, paused.
    health: Health,
    /// The (user, kind)s the running round reads for: their passes follow it.
    in_round: HashSet<(SyncUserId, Kind)>,
    /// Resumed with `--allow-deletes`: the next pass of these lets mass deletes through.
    allow_deletes: HashSet<(SyncUserId, Kind)>,
    /// The last resume request acted on, per user.
    resumes: HashMap<SyncUserId, u64>,
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
    ticks: u64,
    last_tick: Option<jiff::Timestamp>,
    metrics: Metrics,
    traffic: Arc<Traffic>,
    /// What the status file shows besides the users: start time, totals, recent errors.
    status: RankStatus,
    writer: StatusWriter,
    /// The status changed since it was last offered to the writer.
    dirty: bool,
}

/// What the scheduler is given besides the registry.
pub struct Parts {
    pub rank: Rank,
    pub settings: Arc<Settings>,
    pub connectors: Arc<Connectors>,
    pub history: History,
    pub notifier: Notifier,
    pub progress: Progress,
    pub beat: Duration,
    pub metrics: Metrics,
    pub traffic: Arc<Traffic>,
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// How often the status file is rewritten at most.
const STATUS_EVERY: Duration = Duration::from_secs(1);

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
    pub fn new(parts: Parts, registry: &Registry) -> Self {
        let Parts {
            rank,
            settings,
            connectors,
            history,
            notifier,
            progress,
            beat,
            metrics,
            traffic,
            metrics_addr,
        } = parts;
        let permits = Arc::new(Semaphore::new(
            settings.sync.max_parallel_users.get() as usize
        ));
        let mut status = RankStatus::starting(
            rank,
            settings.sync.interval.as_secs(),
            jiff::Timestamp::now(),
        );
        status.metrics_addr = metrics_addr.map(|a| a.to_string());
        let mut scheduler = Scheduler {
            rank,
            view: RankView::default(),
            writer: StatusWriter::new(settings.daemon.state_dir.clone()),
            settings,
            connectors,
            history,
            leaving: BTreeMap::new(),
            arriving: BTreeMap::new(),
            health: Health::default(),
            in_round: HashSet::new(),
            allow_deletes: HashSet::new(),
            // Requests made before this daemon started are not acted on: its users start
            // afresh anyway, and an old allowance to delete is not renewed by a restart.
            resumes: registry
                .users
                .iter()
                .filter_map(|u| u.resume.as_ref().map(|r| (u.id.clone(), r.generation)))
                .collect(),
            checked: HashMap::new(),
            notifier,
            progress,
            beat,
            work: JoinSet::new(),
            in_flight: HashSet::new(),
            tasks: HashMap::new(),
            permits,
            stop: CancellationToken::new(),
            ticks: 0,
            last_tick: None,
            metrics,
            traffic,
            status,
            dirty: true,
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
        let failed = self
            .health
            .count(|h| matches!(h, super::health::Hold::Failed { .. }));
        let paused = self
            .health
            .count(|h| matches!(h, super::health::Hold::Paused { .. }));
        let backing_off = self
            .health
            .count(|h| matches!(h, super::health::Hold::BackingOff { .. }));
        for (n, what) in [
            (failed, "failed"),
            (paused, "paused"),
            (backing_off, "backing off"),
        ] {
            if n > 0 {
                line.push_str(&format!(", {n} {what}"));
            }
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
        let mut flush = interval(STATUS_EVERY, false);
        self.status.state = DaemonState::Running;
        self.publish();
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
                _ = flush.tick() => self.publish(),
                _ = beat.tick() => {}
            }
        }
    }

    /// Offers the status to its writer if it changed (at most once per [`STATUS_EVERY`]).
    fn publish(&mut self) {
        if self.dirty {
            let snapshot = self.snapshot();
            self.writer.offer(snapshot);
            self.dirty = false;
        }
        self.writer.pump();
    }

    /// Writes the status a last time, as `Stopped` (after [`Scheduler::drain`]).
    pub async fn stopped(&mut self) {
        self.status.state = DaemonState::Stopped;
        let snapshot = self.snapshot();
        self.writer.write_last(snapshot).await;
    }

    /// Lets running work reach its safe point within `deadline`; a second stop request
    /// ends the process at once. Returns true if all work finished in time.
    pub async fn drain(&mut self, signals: &mut SignalRequests) -> bool {
        self.stop.cancel();
        self.permits.close();
        self.status.state = DaemonState::Stopping;
        self.dirty = true;
        self.publish();
        let deadline = tokio::time::sleep(self.shutdown_deadline());
        tokio::pin!(deadline);
        let mut beat = interval(self.beat, false);
        loop {
            self.progress.beat();
            self.writer.pump();
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

    fn tick(&mut self) {
        self.ticks += 1;
        self.last_tick = Some(jiff::Timestamp::now());
        self.metrics.tick();
        if let Ok(bytes) = self.history.size_on_disk() {
            self.metrics.set_history_bytes(bytes);
        }
        self.connectors.prune();
        let due = self.schedule(None);
        tracing::debug!(tick = self.ticks, due, "tick");
        self.notifier.status(&self.status_line());
        self.dirty = true;
    }

    fn spawn(&mut self, work: Work, unit: impl Future<Output = Outcome> + Send + 'static) {
        let task = self.work.spawn(unit);
        self.tasks.insert(task.id(), work.clone());
        self.in_flight.insert(work);
    }

    /// Whether the pass of (user, kind) should also compare its pairs with the CRM's ids
    /// (every `[sync] crm_check_interval`); if so, the time is noted.
    fn check_due(&mut self, user: &SyncUserId, kind: Kind, now: tokio::time::Instant) -> bool {
        let key = (user.clone(), kind);
        let due = self
            .checked
            .get(&key)
            .is_none_or(|at| now.duration_since(*at) >= self.settings.sync.crm_check_interval);
        if due {
            self.checked.insert(key, now);
        }
        due
    }

    fn spawn_pass(
        &mut self,
        user: SyncUser,
        kind: Kind,
        check: bool,
        prefetched: Option<super::pass::Prefetched>,
    ) {
        let allow_deletes = self.allow_deletes.contains(&(user.id.clone(), kind));
        let (permits, stop) = (self.permits.clone(), self.stop.child_token());
        let job = work::PassJob {
            user,
            kind,
            check_crm_ids: check,
            allow_deletes,
            prefetched: prefetched.unwrap_or_default(),
        };
        let work = Work::Pass(job.user.id.clone(), kind);
        self.spawn(work, work::pass(self.context(), job, permits, stop));
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
                    || !reg::dropped_path(&context.state_dir, self.rank, &t.id).exists()
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
        let leaving: Vec<(SyncUserId, bool)> = self
            .leaving
            .iter()
            .map(|(id, h)| (id.clone(), *h))
            .collect();
        for (id, hand_over) in leaving {
            let work = Work::HandOver(id.clone());
            if !self.in_flight.contains(&work) && !self.passes_running(&id) {
                self.spawn(work, work::hand_over(context.clone(), id, hand_over));
                started += 1;
            }
        }
        let arrived: Vec<SyncUserId> = self
            .arriving
            .keys()
            .filter(|id| reg::handoff_path(&context.state_dir, id).exists())
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
        let due: Vec<(SyncUser, Kind)> = self
            .view
            .active_users()
            .filter(|u| only.is_none_or(|set| set.contains(&u.id)))
            .filter(|u| {
                self.health.schedulable(&u.id, now)
                    && !self.arriving.contains_key(&u.id)
                    && !self.leaving.contains_key(&u.id)
            })
            .flat_map(|u| u.enabled_kinds().map(move |k| (u.clone(), k)))
            .filter(|(u, k)| {
                !self.in_flight.contains(&Work::Pass(u.id.clone(), *k))
                    && !self.in_round.contains(&(u.id.clone(), *k))
            })
            .collect();
        if only.is_some() {
            // New users, or users freed by a registry change: their own passes, now.
            for (user, kind) in due {
                let check = self.check_due(&user.id, kind, now);
                self.spawn_pass(user, kind, check, None);
                started += 1;
            }
        } else if !due.is_empty() && !self.in_flight.contains(&Work::Round) {
            let mut members: BTreeMap<Kind, Vec<Member>> = BTreeMap::new();
            for (user, kind) in due {
                self.in_round.insert((user.id.clone(), kind));
                let check_crm_ids = self.check_due(&user.id, kind, now);
                members.entry(kind).or_default().push(Member {
                    user,
                    check_crm_ids,
                });
            }
            let stop = self.stop.child_token();
            self.spawn(Work::Round, work::round(context, members, stop));
            started += 1;
        }
        started
    }
}
