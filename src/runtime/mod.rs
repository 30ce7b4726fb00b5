//! The rank daemon (`crmsync run --rank N`): start-up, the scheduler loop, shutdown.
//!
//! Start-up takes the rank lock, opens the rank's history, reads the registry and tells
//! systemd READY. Shutdown (SIGTERM/SIGINT) stops starting work, lets running work reach a
//! safe point within `[daemon] shutdown_deadline`, flushes the history and returns; a
//! second signal exits at once.

mod health;
mod notify;
pub mod pass;
mod registry_watch;
mod report;
mod round;
mod scheduler;
mod signals;
pub mod status;
mod work;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use scheduler::Reloader;

use crate::history::{History, HistoryError, HistoryOptions, LockError, RankLock};
use crate::registry::{Rank, Registry, RegistryError};
use crate::settings::Settings;
use notify::{Notifier, Progress};
use registry_watch::RegistryWatch;
use scheduler::{Parts, Scheduler, Stopped};
use signals::SignalRequests;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "rank {rank} is already running ({} is locked){}",
        dir.display(),
        holder.map(|pid| format!("; process {pid} holds it")).unwrap_or_default()
    )]
    AlreadyRunning {
        rank: Rank,
        dir: PathBuf,
        holder: Option<u32>,
    },
    #[error("cannot create the rank directory {}: {source}", path.display())]
    RankDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(LockError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("the registry is refused, fix it and start again: {0}")]
    Registry(#[from] RegistryError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("cannot set up the connectors: {0}")]
    Connectors(crate::connector::ConnectorError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

impl RunError {
    /// The process exit code (DESIGN section 9).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::AlreadyRunning { .. } => crate::exit::TEMPORARY,
            RunError::Registry(_) => crate::exit::CONFIG,
            RunError::Metrics(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

fn create_rank_dir(path: &std::path::Path) -> Result<(), RunError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| RunError::RankDir {
            path: path.to_path_buf(),
            source,
        })
}

/// Takes the rank lock. An admin command holds a stopped rank's lock for a moment (to purge
/// or hand over a user's history itself), so a held lock is tried again for a few seconds
/// before the rank counts as running.
async fn acquire_rank_lock(rank: Rank, rank_dir: &std::path::Path) -> Result<RankLock, RunError> {
    const ATTEMPTS: u32 = 15;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match RankLock::acquire(rank_dir) {
            Ok(lock) => return Ok(lock),
            Err(LockError::Held { .. }) if attempt < ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(LockError::Held { holder, .. }) => {
                return Err(RunError::AlreadyRunning {
                    rank,
                    dir: rank_dir.to_path_buf(),
                    holder,
                });
            }
            Err(other) => return Err(RunError::Lock(other)),
        }
    }
}

/// Runs the daemon of `rank` until it is asked to stop.
pub async fn run_rank(rank: Rank, settings: Settings, reloader: Reloader) -> Result<(), RunError> {
    let settings = Arc::new(settings);
    let notifier = Notifier::new();
    let progress = Progress::new();
    // Installed first, so that a stop request during start-up is kept, not fatal.
    let mut signals = SignalRequests::install().map_err(RunError::Signals)?;

    let watchdog = notify::watchdog_period();
    let stop_watchdog = CancellationToken::new();
    if let Some(period) = watchdog {
        tracing::debug!(?period, "systemd watchdog enabled");
        let pinger = notifier.clone();
        tokio::spawn(notify::run_watchdog(
            move || pinger.watchdog(),
            progress.clone(),
            period,
            stop_watchdog.clone(),
        ));
    }

    let state_dir = &settings.daemon.state_dir;
    let rank_dir = state_dir.join(rank.dir_name());
    create_rank_dir(&rank_dir)?;
    let _lock = acquire_rank_lock(rank, &rank_dir).await?;

    let options = HistoryOptions {
        cache_capacity_bytes: settings.history.cache_capacity_bytes,
        flush_interval: settings.history.flush_interval,
    };
    let opened = tokio::task::spawn_blocking(move || History::open(&rank_dir, &options))
        .await
        .map_err(|e| RunError::Internal(format!("opening the history stopped: {e}")))??;
    if let Some(moved) = &opened.moved_aside {
        tracing::error!(
            moved_to = %moved.to.display(),
            reason = %moved.reason,
            "the history database was corrupt: it was moved aside and a fresh one started; every user of this rank is reconciled by the stamps on its items, so nothing is duplicated"
        );
    }
    let history = opened.history;

    // Stamp the file before reading it, so a change in between is seen by the next poll.
    let registry_path = Registry::path_in(state_dir);
    let mut watch = RegistryWatch::new(registry_path.clone());
    let registry = Registry::read(&registry_path)?;

    crate::connector::http::identify_as(&format!("rank {rank}"));
    let metrics = crate::metrics::Metrics::new(rank);
    let traffic = report::Traffic::new(metrics.clone());
    let connectors =
        work::Connectors::build(&settings, Some(traffic.clone())).map_err(RunError::Connectors)?;
    let stop_metrics = CancellationToken::new();
    let metrics_server = if settings.metrics.enabled {
        let address = settings.metrics.address_for(rank)?;
        let (bound, task) =
            crate::metrics::serve(address, metrics.clone(), stop_metrics.clone()).await?;
        tracing::info!(%bound, "metrics at http://{bound}/metrics");
        Some((bound, task))
    } else {
        None
    };
    let beat = notify::beat_interval(watchdog);
    let mut scheduler = Scheduler::new(
        Parts {
            rank,
            settings: settings.clone(),
            connectors: Arc::new(connectors),
            history: history.clone(),
            notifier: notifier.clone(),
            progress,
            beat,
            metrics,
            traffic,
            metrics_addr: metrics_server.as_ref().map(|(bound, _)| *bound),
        },
        &registry,
    );
    notifier.ready(&scheduler.status_line());
    tracing::info!(
        state_dir = %state_dir.display(),
        history = %history.path().display(),
        "{}; serving",
        scheduler.status_line()
    );

    let stopped = scheduler.run(&mut signals, &mut watch, &reloader).await;
    let reason = match stopped {
        Stopped::Signal(signal) => signal,
        Stopped::SignalsClosed => "signal handlers closed",
    };
    let deadline = scheduler.shutdown_deadline();
    notifier.stopping(&format!("rank {rank}: stopping ({reason})"));
    tracing::info!(
        reason,
        deadline = %humantime::format_duration(deadline),
        "stopping: no new passes; running ones finish their current unit of work"
    );
    let clean = scheduler.drain(&mut signals).await;
    let flushed = history.flush().await;
    scheduler.stopped().await;
    stop_metrics.cancel();
    if let Some((_, task)) = metrics_server {
        // Scrapes in progress are answered; a hanging one does not hold the exit.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    stop_watchdog.cancel();
    match flushed {
        Ok(bytes) => tracing::info!(clean, flushed_bytes = bytes, "stopped; history flushed"),
        Err(e) => {
            tracing::error!(error = %e, "stopped, but the history could not be flushed");
            return Err(e.into());
        }
    }
    Ok(())
}
