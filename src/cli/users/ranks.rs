//! The command side of rank moves and removals: what a command does to a rank's history
//! when no daemon holds the rank, and the tidying of tombstones a daemon has confirmed.
//!
//! A rank whose lock (`STATE_DIR/rank-N/lock`) is free has no daemon on this host: the command
//! takes the lock, so none can start meanwhile, and works on the history itself. A held lock
//! means the rank's daemon runs and does the work (see docs/admin.md for the protocol).

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::history::{HISTORY_DIR, History, HistoryOptions, LockError, RankLock};
use crate::registry::store::StoreLock;
use crate::registry::{Rank, Registry, SyncUserId, Tombstone, dropped_path, handoff_path};
use crate::settings::Settings;

/// A rank as a command finds it.
pub enum RankState {
    /// No daemon: the command holds the lock. `history` is `None` when the rank has no
    /// history database here.
    Free {
        _lock: RankLock,
        history: Option<History>,
    },
    /// A daemon (or `history stats`) holds the rank.
    Held { holder: Option<u32> },
    /// The rank has no directory in this state directory: it never ran here.
    Absent,
}

impl RankState {
    pub fn history(&self) -> Option<&History> {
        match self {
            RankState::Free { history, .. } => history.as_ref(),
            _ => None,
        }
    }

    /// Whether `user` has a history tree in this (free) rank.
    pub fn has_user(&self, user: &SyncUserId) -> bool {
        self.history().is_some_and(|h| h.has_user(user))
    }
}

/// The ranks a command has looked at, each opened at most once.
pub struct Ranks<'a> {
    settings: &'a Settings,
    ranks: BTreeMap<Rank, RankState>,
}

fn history_options(settings: &Settings) -> HistoryOptions {
    HistoryOptions {
        cache_capacity_bytes: settings.history.cache_capacity_bytes,
        flush_interval: settings.history.flush_interval,
    }
}

impl<'a> Ranks<'a> {
    pub fn new(settings: &'a Settings) -> Self {
        Ranks {
            settings,
            ranks: BTreeMap::new(),
        }
    }

    fn state_dir(&self) -> &Path {
        &self.settings.daemon.state_dir
    }

    /// The rank, locked and its history opened if no daemon holds it.
    pub fn get(&mut self, rank: Rank) -> anyhow::Result<&RankState> {
        if !self.ranks.contains_key(&rank) {
            let state = self.open(rank)?;
            self.ranks.insert(rank, state);
        }
        self.ranks
            .get(&rank)
            .context("internal error: a rank that was just opened is missing")
    }

    fn open(&self, rank: Rank) -> anyhow::Result<RankState> {
        let dir = self.state_dir().join(rank.dir_name());
        if !dir.is_dir() {
            return Ok(RankState::Absent);
        }
        let lock = match RankLock::acquire(&dir) {
            Ok(lock) => lock,
            Err(LockError::Held { holder, .. }) => return Ok(RankState::Held { holder }),
            Err(e) => return Err(e.into()),
        };
        if !dir.join(HISTORY_DIR).exists() {
            return Ok(RankState::Free {
                _lock: lock,
                history: None,
            });
        }
        let opened = History::open(&dir, &history_options(self.settings))
            .with_context(|| format!("opening the history of rank {rank}"))?;
        if let Some(moved) = &opened.moved_aside {
            eprintln!(
                "crmsync: rank {rank}'s history database was corrupt ({}) and was moved aside to {}; \
                 its users' histories are rebuilt from the stamps when the daemon runs",
                moved.reason,
                moved.to.display()
            );
        }
        Ok(RankState::Free {
            _lock: lock,
            history: Some(opened.history),
        })
    }

    /// Drops `user`'s tree from a free rank and flushes. True if there was one.
    pub async fn drop_user(&self, rank: Rank, user: &SyncUserId) -> anyhow::Result<bool> {
        let Some(history) = self.ranks.get(&rank).and_then(RankState::history) else {
            return Ok(false);
        };
        let existed = history
            .drop_user(user)
            .with_context(|| format!("deleting the history of sync user {user} in rank {rank}"))?;
        history
            .flush()
            .await
            .with_context(|| format!("flushing the history of rank {rank}"))?;
        Ok(existed)
    }

    /// Exports `user`'s tree from a free rank into its hand-over file.
    pub fn export(&self, rank: Rank, user: &SyncUserId) -> anyhow::Result<PathBuf> {
        let history = self
            .ranks
            .get(&rank)
            .and_then(RankState::history)
            .context("internal error: exporting from a rank that is not open")?;
        let path = handoff_path(self.state_dir(), user);
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        history
            .export_user(user)
            .and_then(|handoff| handoff.write(&path))
            .with_context(|| {
                format!("handing over the history of sync user {user} from rank {rank}")
            })?;
        Ok(path)
    }
}

/// Removes the tombstones whose rank daemon has left its `dropped` note (in memory; the caller
/// writes the registry, then calls [`finish_sweep`]).
pub fn sweep(state_dir: &Path, registry: &mut Registry) -> Vec<Tombstone> {
    let (done, kept): (Vec<Tombstone>, Vec<Tombstone>) = registry
        .tombstones
        .drain(..)
        .partition(|t| dropped_path(state_dir, t.rank, &t.id).exists());
    registry.tombstones = kept;
    done
}

/// After the registry without `done` is written: deletes their notes, and the hand-over
/// files of users that have no tombstone left.
pub fn finish_sweep(state_dir: &Path, registry: &Registry, done: &[Tombstone]) {
    for t in done {
        let _ = std::fs::remove_file(dropped_path(state_dir, t.rank, &t.id));
        if !registry.tombstones.iter().any(|k| k.id == t.id) {
            let _ = std::fs::remove_file(handoff_path(state_dir, &t.id));
        }
    }
}

/// Writes the registry under `lock`, then tidies what `swept` confirmed.
pub fn write(lock: &StoreLock<'_>, registry: &Registry, swept: &[Tombstone]) -> anyhow::Result<()> {
    lock.write_registry(registry)?;
    finish_sweep(lock.store().state_dir(), registry, swept);
    Ok(())
}

/// "rank 2's daemon (process 4711)".
pub fn daemon_name(rank: Rank, holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("rank {rank}'s daemon (process {pid})"),
        None => format!("rank {rank}'s daemon"),
    }
}
