//! Whether a rank's daemon is running, judged from outside: the pid in its status file (and in
//! its lock file) checked in `/proc`, and the age of the status. The rank lock is never taken
//! here: a daemon starting at that moment would find it held and exit.

use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use super::{DaemonState, RankStatus, StatusError, status_path};
use crate::history::LOCK_FILE;
use crate::registry::{Rank, Registry, RegistryError};

/// Whether a rank's daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// The process is alive and its status is recent.
    Running,
    /// The process is alive but its status is older than [`stale_after`]: it hangs, or its
    /// passes take far longer than they should.
    Stale,
    /// It stopped cleanly (it wrote state `stopped`).
    Stopped,
    /// The process is gone without writing `stopped`: it crashed or was killed.
    Down,
    /// No status file: the daemon has not written one yet.
    NeverStarted,
}

impl Liveness {
    /// Running or stopped on purpose: nothing for an operator to look at.
    pub fn is_fine(self) -> bool {
        matches!(self, Liveness::Running | Liveness::Stopped)
    }
}

/// What `/proc` says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// `crmsync run --rank N` of the rank in question.
    Daemon,
    /// Another program, another rank, another crmsync command, or a thread: the pid was reused.
    Other,
    /// No such process (or a zombie).
    Gone,
    /// `/proc` cannot tell (not mounted, or the process is not readable by this user).
    Unknown,
}

impl Process {
    fn maybe_alive(self) -> bool {
        matches!(self, Process::Daemon | Process::Unknown)
    }
}

/// A status older than this, from a live process, is stale: three ticks, at least 3 minutes
/// (a tick whose passes are slow is not yet a hang).
pub fn stale_after(interval_secs: u64) -> jiff::SignedDuration {
    let secs = interval_secs.saturating_mul(3).max(180);
    jiff::SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Classifies a process from its `comm` and its NUL-separated `cmdline`: the daemon of `rank`
/// is a program named crmsync whose arguments say `run` and `--rank N`.
pub fn classify_process(comm: &str, cmdline: &[u8], rank: Rank) -> Process {
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let program = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    if !program.starts_with("crmsync") && !comm.starts_with("crmsync") {
        return Process::Other;
    }
    if program.is_empty() {
        // comm says crmsync, but the arguments cannot be seen.
        return Process::Unknown;
    }
    let mut rest = args.iter().skip(1);
    let mut run = false;
    let mut served = None;
    while let Some(arg) = rest.next() {
        if arg == "run" {
            run = true;
        } else if arg == "--rank" {
            served = rest.next().map(|s| s.as_str());
        } else if let Some(n) = arg.strip_prefix("--rank=") {
            served = Some(n);
        }
    }
    match served.and_then(|s| s.parse::<Rank>().ok()) {
        Some(served) if run && served == rank => Process::Daemon,
        _ => Process::Other,
    }
}

/// Looks `pid` up in `/proc` and classifies it for `rank`.
pub fn probe_process(pid: u32, rank: Rank) -> Process {
    probe_in(Path::new("/proc"), pid, rank)
}

fn probe_in(proc: &Path, pid: u32, rank: Rank) -> Process {
    if pid == 0 {
        return Process::Gone;
    }
    if !proc.join("self").exists() {
        return Process::Unknown;
    }
    let dir = proc.join(pid.to_string());
    let status = match std::fs::read_to_string(dir.join("status")) {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Process::Gone,
        Err(_) if !dir.exists() => return Process::Gone,
        Err(_) => return Process::Unknown,
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    if field("State:").is_some_and(|s| s.starts_with('Z') || s.starts_with('X')) {
        return Process::Gone;
    }
    // /proc/TID exists for every thread too; a thread is not the daemon.
    if field("Tgid:").is_some_and(|t| t != pid.to_string()) {
        return Process::Other;
    }
    let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    if comm.is_empty() && cmdline.is_empty() {
        // It ended between the reads, or it cannot be read.
        return if dir.exists() {
            Process::Unknown
        } else {
            Process::Gone
        };
    }
    classify_process(comm.trim_end(), &cmdline, rank)
}

/// What the status file says about the process that wrote it (also read from a file whose
/// version or shape this crmsync does not know, where those fields could still be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub pid: u32,
    pub process: Process,
    pub state: DaemonState,
    pub updated_at: jiff::Timestamp,
    pub interval_secs: u64,
}

/// The process named in the rank's lock file: the last one to take the lock.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    pub pid: u32,
    pub process: Process,
    /// When it took the lock (the file's modification time).
    pub since: Option<jiff::Timestamp>,
}

/// Decides a rank's liveness and the pid to show for it.
pub fn judge(
    seen: Option<&Seen>,
    lock: Option<&LockHolder>,
    now: jiff::Timestamp,
) -> (Liveness, Option<u32>) {
    let fresh =
        |at: jiff::Timestamp, interval: u64| now.duration_since(at) <= stale_after(interval);
    if let Some(s) = seen
        && s.process.maybe_alive()
        && s.state != DaemonState::Stopped
    {
        let liveness = if fresh(s.updated_at, s.interval_secs) {
            Liveness::Running
        } else {
            Liveness::Stale
        };
        return (liveness, Some(s.pid));
    }
    // A daemon that holds the lock but has not written its status yet (starting, or started
    // after a clean stop of another process).
    if let Some(l) = lock
        && l.process == Process::Daemon
        && seen.is_none_or(|s| s.pid != l.pid || s.state != DaemonState::Stopped)
    {
        let interval = seen.map_or(0, |s| s.interval_secs);
        let liveness = match l.since {
            Some(since) if !fresh(since, interval) => Liveness::Stale,
            _ => Liveness::Running,
        };
        return (liveness, Some(l.pid));
    }
    match seen {
        Some(s) if s.state == DaemonState::Stopped => (Liveness::Stopped, Some(s.pid)),
        Some(s) => (Liveness::Down, Some(s.pid)),
        None => (Liveness::NeverStarted, None),
    }
}

/// One rank as `crmsync status` shows it.
#[derive(Debug, Serialize)]
pub struct RankView {
    pub rank: Rank,
    pub liveness: Liveness,
    /// The live daemon's pid, or else the last one known.
    pub pid: Option<u32>,
    /// How many users the registry assigns to the rank (None: the registry cannot be read).
    pub registry_users: Option<usize>,
    /// The last status the daemon wrote, if it could be read.
    pub status: Option<RankStatus>,
    /// Why the status file could not be read.
    #[serde(serialize_with = "message")]
    pub error: Option<StatusError>,
}

/// Every rank of a state directory.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub state_dir: PathBuf,
    pub now: jiff::Timestamp,
    /// The registry could not be read: ranks come from the directories alone.
    #[serde(serialize_with = "message")]
    pub registry_error: Option<RegistryError>,
    pub ranks: Vec<RankView>,
}

fn message<S: Serializer, E: std::fmt::Display>(e: &Option<E>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_str(&e.to_string()),
        None => s.serialize_none(),
    }
}

/// Every rank of the state directory, with its liveness: each `rank-N` directory and each
/// rank the registry assigns users to.
pub fn read_all(state_dir: &Path, now: jiff::Timestamp) -> Result<Vec<RankView>, StatusError> {
    overview(state_dir, now).map(|o| o.ranks)
}

/// [`read_all`], with the registry's problem if it could not be read.
pub fn overview(state_dir: &Path, now: jiff::Timestamp) -> Result<Overview, StatusError> {
    overview_with(state_dir, now, &probe_process)
}

pub(super) fn overview_with(
    state_dir: &Path,
    now: jiff::Timestamp,
    probe: &dyn Fn(u32, Rank) -> Process,
) -> Result<Overview, StatusError> {
    let entries = std::fs::read_dir(state_dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            StatusError::NoStateDir {
                path: state_dir.to_path_buf(),
            }
        } else {
            StatusError::ListStateDir {
                path: state_dir.to_path_buf(),
                source,
            }
        }
    })?;
    let mut ranks = std::collections::BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|source| StatusError::ListStateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(rank) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rank-"))
            .and_then(|n| n.parse::<Rank>().ok())
        else {
            continue;
        };
        if rank.dir_name().as_str() == name && entry.path().is_dir() {
            ranks.insert(rank);
        }
    }
    let (registry, registry_error) = match Registry::read(&Registry::path_in(state_dir)) {
        Ok(registry) => (Some(registry), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(registry) = &registry {
        ranks.extend(registry.users.iter().map(|u| u.rank));
    }
    let ranks = ranks
        .into_iter()
        .map(|rank| {
            let registry_users = registry
                .as_ref()
                .map(|r| r.users.iter().filter(|u| u.rank == rank).count());
            view(state_dir, rank, registry_users, now, probe)
        })
        .collect();
    Ok(Overview {
        state_dir: state_dir.to_path_buf(),
        now,
        registry_error,
        ranks,
    })
}

fn view(
    state_dir: &Path,
    rank: Rank,
    registry_users: Option<usize>,
    now: jiff::Timestamp,
    probe: &dyn Fn(u32, Rank) -> Process,
) -> RankView {
    let path = status_path(state_dir, rank);
    let (status, error, loose) = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None, None),
        Err(source) => (None, Some(StatusError::Read { path, source }), None),
        Ok(bytes) => match RankStatus::parse(&bytes, &path) {
            Ok(status) if status.rank != rank => {
                let found = status.rank;
                (None, Some(StatusError::WrongRank { path, found }), None)
            }
            Ok(status) => (Some(status), None, None),
            Err(e) => (None, Some(e), Loose::parse(&bytes)),
        },
    };
    let seen = match (&status, loose) {
        (Some(s), _) => Some(Seen {
            pid: s.pid,
            process: probe(s.pid, rank),
            state: s.state,
            updated_at: s.updated_at,
            interval_secs: s.interval_secs,
        }),
        (None, Some(l)) => Some(Seen {
            pid: l.pid,
            process: probe(l.pid, rank),
            state: l.state,
            updated_at: l.updated_at,
            interval_secs: l.interval_secs,
        }),
        (None, None) => None,
    };
    let lock = lock_holder(&state_dir.join(rank.dir_name()), rank, probe);
    let (mut liveness, pid) = judge(seen.as_ref(), lock.as_ref(), now);
    // A status file that cannot be read at all, and no live process: the daemon ran (it
    // wrote the file) and is gone, and whether it stopped cleanly cannot be told.
    if liveness == Liveness::NeverStarted && error.is_some() {
        liveness = Liveness::Down;
    }
    RankView {
        rank,
        liveness,
        pid: pid.or(lock.map(|l| l.pid)),
        registry_users,
        status,
        error,
    }
}

/// The fields liveness needs, from a status file this crmsync cannot read in full.
#[derive(serde::Deserialize)]
struct Loose {
    pid: u32,
    state: DaemonState,
    updated_at: jiff::Timestamp,
    interval_secs: u64,
}

impl Loose {
    fn parse(bytes: &[u8]) -> Option<Loose> {
        serde_json::from_slice(bytes).ok()
    }
}

fn lock_holder(
    rank_dir: &Path,
    rank: Rank,
    probe: &dyn Fn(u32, Rank) -> Process,
) -> Option<LockHolder> {
    let path = rank_dir.join(LOCK_FILE);
    let pid: u32 = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
    let since = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok());
    Some(LockHolder {
        pid,
        process: probe(pid, rank),
        since,
    })
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn this_process_is_alive_but_not_a_daemon_and_a_missing_pid_is_gone() {
        let rank = Rank::new(1).unwrap();
        assert_eq!(probe_process(std::process::id(), rank), Process::Other);
        assert_eq!(probe_process(0, rank), Process::Gone);
        // Above the kernel's pid_max (at most 2^22).
        assert_eq!(probe_process(4_194_304 + 17, rank), Process::Gone);
    }

    #[test]
    fn a_fake_proc_tells_zombies_threads_and_daemons_apart() {
        let rank = Rank::new(3).unwrap();
        let proc = tempfile::tempdir().unwrap();
        std::fs::create_dir(proc.path().join("self")).unwrap();
        let process = |pid: u32, state: &str, tgid: u32, cmdline: &str| {
            let dir = proc.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("status"),
                format!("Name:\tcrmsync\nState:\t{state}\nTgid:\t{tgid}\n"),
            )
            .unwrap();
            std::fs::write(dir.join("comm"), "crmsync\n").unwrap();
            std::fs::write(dir.join("cmdline"), cmdline.replace(' ', "\0")).unwrap();
        };
        process(10, "S (sleeping)", 10, "/usr/bin/crmsync run --rank 3 ");
        process(11, "Z (zombie)", 11, "");
        process(12, "S (sleeping)", 10, "/usr/bin/crmsync run --rank 3 ");
        process(13, "R (running)", 13, "/usr/bin/crmsync run --rank 4 ");
        assert_eq!(probe_in(proc.path(), 10, rank), Process::Daemon);
        assert_eq!(probe_in(proc.path(), 11, rank), Process::Gone);
        assert_eq!(probe_in(proc.path(), 12, rank), Process::Other);
        assert_eq!(probe_in(proc.path(), 13, rank), Process::Other);
        assert_eq!(probe_in(proc.path(), 14, rank), Process::Gone);
        let no_proc = tempfile::tempdir().unwrap();
        assert_eq!(probe_in(no_proc.path(), 10, rank), Process::Unknown);
    }
}
