//! The rank status file `STATE_DIR/rank-N/status.json`: what a rank daemon is doing, written
//! atomically after its passes and read by `crmsync status` (and operators' scripts:
//! `docs/status.md` describes every field; [`STATUS_VERSION`] changes when a field changes
//! meaning or goes away).
//!
//! The file holds no secrets: mailbox addresses, logins and error messages only (connector
//! errors never carry credentials).

mod liveness;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::registry::{Kind, Rank, SyncUserId};

pub use liveness::{
    Liveness, LockHolder, Overview, Process, RankView, Seen, classify_process, judge, overview,
    probe_process, read_all, stale_after,
};

/// The status file's name inside the rank directory.
pub const STATUS_FILE: &str = "status.json";
/// The format this build writes and reads.
pub const STATUS_VERSION: u32 = 1;
/// How many recent errors the file keeps.
pub const MAX_ERRORS: usize = 50;

/// Where `rank` keeps its status: `STATE_DIR/rank-N/status.json`.
pub fn status_path(state_dir: &Path, rank: Rank) -> PathBuf {
    state_dir.join(rank.dir_name()).join(STATUS_FILE)
}

/// The state of the daemon as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    Starting,
    Running,
    Stopping,
    /// Written last, on a clean stop: a rank without it whose process is gone crashed or was
    /// killed.
    Stopped,
}

/// The state of one sync user in its daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    Ok,
    Syncing,
    BackingOff,
    Failed,
    /// Stopped by the delete guard until `crmsync users resume`.
    Paused,
    /// All kinds switched off.
    Disabled,
    /// No pass has finished yet.
    Waiting,
    /// Moved here; waits for its history from the old rank.
    Arriving,
    /// Moved away; its history is handed over once its passes end.
    Leaving,
}

impl UserState {
    /// The state as the file, the metrics and scripts name it (`backing_off`).
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Ok => "ok",
            UserState::Syncing => "syncing",
            UserState::BackingOff => "backing_off",
            UserState::Failed => "failed",
            UserState::Paused => "paused",
            UserState::Disabled => "disabled",
            UserState::Waiting => "waiting",
            UserState::Arriving => "arriving",
            UserState::Leaving => "leaving",
        }
    }
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassOutcome {
    Ok,
    Error,
    Paused,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankStatus {
    pub version: u32,
    pub rank: Rank,
    pub pid: u32,
    pub state: DaemonState,
    pub started_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    /// The tick interval, for judging whether the file is stale.
    pub interval_secs: u64,
    pub tick: u64,
    pub last_tick_at: Option<jiff::Timestamp>,
    pub metrics_addr: Option<String>,
    pub users: Vec<UserStatus>,
    pub totals: Totals,
    pub throttle: Vec<ThrottleStatus>,
    /// The most recent errors, newest last, at most [`MAX_ERRORS`].
    pub errors: Vec<ErrorEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserStatus {
    pub id: SyncUserId,
    pub associate_id: u32,
    pub login: Option<String>,
    pub mailbox: String,
    pub state: UserState,
    /// When the user entered `state`.
    pub since: Option<jiff::Timestamp>,
    /// Failure reason, guard numbers, last transient error.
    pub detail: Option<String>,
    /// Backing off: when the user is tried again.
    pub retry_at: Option<jiff::Timestamp>,
    pub kinds: BTreeMap<Kind, KindStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindStatus {
    pub last_pass_at: Option<jiff::Timestamp>,
    pub last_result: Option<PassOutcome>,
    pub last_duration_ms: Option<u64>,
    /// Counts since the daemon started, both sides together.
    pub passes: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub conflicts: u64,
    pub quarantined: u64,
    pub pairs: Option<u64>,
    pub last_error: Option<String>,
}

/// Sums over the rank since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub passes: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub conflicts: u64,
    pub quarantined: u64,
    /// Every error since the start, not only the ones still in `errors`.
    pub errors: u64,
}

/// How often a service told the rank to slow down, and how long it waited for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleStatus {
    pub service: String,
    /// HTTP answers since start (retries and each item of a `$batch` counted).
    #[serde(default)]
    pub requests: u64,
    pub throttled: u64,
    pub waited_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub at: jiff::Timestamp,
    pub user: Option<SyncUserId>,
    pub kind: Option<Kind>,
    /// The error's class (`transient`, `user`, `service`, ...).
    pub class: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot write the status file {}: {source}; check that the rank directory is writable by the daemon's user", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the status of rank {rank}: {source}")]
    Encode {
        rank: Rank,
        source: serde_json::Error,
    },
    #[error("cannot read the status file {}: {source}; run `crmsync status` as the daemon's user (sudo -u crmsync) or as root", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the status file {} is damaged ({source}); the daemon rewrites it after its next pass", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the status file {} is version {found}, written by a newer crmsync; this one reads version {STATUS_VERSION}: use the crmsync that runs the daemon", path.display())]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("the status file {} is version {found}, which this crmsync does not read (it reads version {STATUS_VERSION}); the daemon rewrites it after its next pass", path.display())]
    UnknownVersion { path: PathBuf, found: u32 },
    #[error("the status file {} is of rank {found}, not of the rank whose directory holds it; remove it, the daemon writes a new one after its next pass", path.display())]
    WrongRank { path: PathBuf, found: Rank },
    #[error("the state directory {} does not exist: no daemon has run with this configuration; check [daemon] state_dir (and --config)", path.display())]
    NoStateDir { path: PathBuf },
    #[error("cannot list the state directory {}: {source}", path.display())]
    ListStateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Only the version, read before the rest so that a newer format gets a clear message.
#[derive(Deserialize)]
struct VersionOnly {
    version: Option<u32>,
}

impl RankStatus {
    /// A daemon's status at start-up: no users, no passes yet.
    pub fn starting(rank: Rank, interval_secs: u64, now: jiff::Timestamp) -> RankStatus {
        RankStatus {
            version: STATUS_VERSION,
            rank,
            pid: std::process::id(),
            state: DaemonState::Starting,
            started_at: now,
            updated_at: now,
            interval_secs,
            tick: 0,
            last_tick_at: None,
            metrics_addr: None,
            users: Vec::new(),
            totals: Totals::default(),
            throttle: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Records an error: counts it in the totals and keeps the newest [`MAX_ERRORS`].
    pub fn push_error(&mut self, entry: ErrorEntry) {
        self.totals.errors += 1;
        self.errors.push(entry);
        if self.errors.len() > MAX_ERRORS {
            let excess = self.errors.len() - MAX_ERRORS;
            self.errors.drain(..excess);
        }
    }

    /// Writes `STATE_DIR/rank-N/status.json` atomically: a temporary file in the same
    /// directory, fsync, rename. A reader sees the old file or the new one, never a part.
    /// The rank directory must exist (the daemon creates it at start-up). Blocking; a daemon
    /// calls it from `spawn_blocking`.
    pub fn write(&self, state_dir: &Path) -> Result<(), StatusError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = status_path(state_dir, self.rank);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| StatusError::Encode {
            rank: self.rank,
            source,
        })?;
        bytes.push(b'\n');
        // One writer per rank (the rank lock), so a fixed name suffices; one left by a crash
        // is truncated by the next write.
        let tmp = path.with_file_name(format!(".{STATUS_FILE}.tmp"));
        let failed = |source| StatusError::Write {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(failed)?;
        file.write_all(&bytes).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(failed)?;
        // The rename itself is durable only once the directory is synced.
        if let Some(dir) = path.parent()
            && let Ok(dir) = std::fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Reads and checks a status file.
    pub fn read(path: &Path) -> Result<RankStatus, StatusError> {
        let bytes = std::fs::read(path).map_err(|source| StatusError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes, path)
    }

    /// Parses status file contents; `path` is only used in messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<RankStatus, StatusError> {
        let corrupt = |source| StatusError::Corrupt {
            path: path.to_path_buf(),
            source,
        };
        let probe: VersionOnly = serde_json::from_slice(bytes).map_err(corrupt)?;
        match probe.version {
            Some(STATUS_VERSION) => {}
            Some(found) if found > STATUS_VERSION => {
                return Err(StatusError::NewerVersion {
                    path: path.to_path_buf(),
                    found,
                });
            }
            Some(found) => {
                return Err(StatusError::UnknownVersion {
                    path: path.to_path_buf(),
                    found,
                });
            }
            // Let serde name the missing field.
            None => {}
        }
        serde_json::from_slice(bytes).map_err(corrupt)
    }
}

#[cfg(test)]
mod tests;
