//! Sync history in sled 0.34.7: one database per rank (`STATE_DIR/rank-N/history`), opened
//! once per process, one tree per sync user named by the user's id.
//!
//! Architecture invariant: this is the only module that touches sled. History is precious
//! but rebuildable from the stamps on mailbox items (DESIGN invariant 4), so a database that
//! sled reports as corrupt is moved aside and a fresh one started, never silently reused.

mod handoff;
mod lock;
mod user;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use handoff::Handoff;
pub use lock::{LOCK_FILE, LockError, RankLock};
pub use user::{Commit, Cursors, Intent, KindStats, Pair, Side, UserHistory};

use crate::registry::SyncUserId;

/// The database directory's name inside the rank directory.
pub const HISTORY_DIR: &str = "history";

/// Name of sled's default tree, which is not a user's.
const DEFAULT_TREE: &[u8] = b"__sled__default";
/// Key in the default tree of this database's instance id, also kept in [`INSTANCE_FILE`].
const INSTANCE_KEY: &[u8] = b"crmsync/instance";
/// A copy of the instance id beside the database, outside sled. If sled ever opens a
/// database that held data as an empty one (it does so for some unreadable logs), the ids
/// disagree and the loss is reported instead of being taken for a fresh start.
pub const INSTANCE_FILE: &str = "history.instance";

#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub cache_capacity_bytes: u64,
    pub flush_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot open the history database {}: {source}", path.display())]
    Open { path: PathBuf, source: sled::Error },
    #[error(
        "the history database {} is corrupt ({reason}) and could not be moved aside: {source}",
        path.display()
    )]
    MoveAside {
        path: PathBuf,
        reason: String,
        source: std::io::Error,
    },
    #[error("history database {}: {source}", path.display())]
    Storage { path: PathBuf, source: sled::Error },
    #[error("history of sync user {user}: {source}")]
    User {
        user: SyncUserId,
        source: sled::Error,
    },
    #[error("history: cannot encode a record: {0}")]
    Encoding(String),
    #[error(
        "history: {what} cannot be read ({cause}); the user's history will be rebuilt from the stamps"
    )]
    Unreadable { what: String, cause: String },
    #[error("history hand-over file {}: {what}", path.display())]
    Handoff { path: PathBuf, what: String },
    #[error("sync user {user} already has history here; refusing to import over it")]
    ImportOverExisting { user: SyncUserId },
}

/// Between a user's id and the time in the name of a copy of its history set aside. A dot is
/// never part of a user id, so such a copy is never taken for a user.
const SET_ASIDE_MARK: &str = ".unreadable-";

/// A rank's history database.
#[derive(Debug, Clone)]
pub struct History {
    db: sled::Db,
    path: PathBuf,
}

/// The result of opening: the database, and where a corrupt one was moved, if it was.
#[derive(Debug)]
pub struct Opened {
    pub history: History,
    pub moved_aside: Option<MovedAside>,
}

#[derive(Debug, Clone)]
pub struct MovedAside {
    pub to: PathBuf,
    pub reason: String,
}

enum Attempt {
    Ok(sled::Db),
    Corrupt(String),
    Failed(sled::Error),
}

/// sled's own file lock is released by its flusher thread shortly after the last handle in this
/// process is dropped; a reopen right after a close may find it still held for a moment. (Our
/// rank lock is what keeps other processes out.)
fn attempt_open(path: &Path, options: &HistoryOptions) -> Attempt {
    let mut waited = Duration::ZERO;
    loop {
        match attempt_open_once(path, options) {
            Attempt::Failed(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && waited < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(20));
                waited += Duration::from_millis(20);
            }
            other => return other,
        }
    }
}

fn attempt_open_once(path: &Path, options: &HistoryOptions) -> Attempt {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_capacity_bytes)
        .flush_every_ms(Some(
            u64::try_from(options.flush_interval.as_millis()).unwrap_or(u64::MAX),
        ));
    // sled 0.34 panics instead of returning an error on some corrupt files (spacejam/sled#1533).
    match catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Attempt::Ok(db),
        Ok(Err(e @ (sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)))) => {
            Attempt::Corrupt(e.to_string())
        }
        Ok(Err(e)) => Attempt::Failed(e),
        Err(panic) => Attempt::Corrupt(format!(
            "sled panicked while opening it: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic")
        )),
    }
}

/// What the instance marker says about an opened database.
enum Continuity {
    Same,
    Fresh,
    Lost { expected: String },
}

fn check_continuity(db: &sled::Db, marker: &Path) -> Result<Continuity, sled::Error> {
    let stored = db
        .get(INSTANCE_KEY)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let expected = std::fs::read_to_string(marker)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(match (stored, expected) {
        (Some(id), Some(expected)) if id == expected => Continuity::Same,
        (Some(_), _) => Continuity::Same,
        (None, Some(expected)) => Continuity::Lost { expected },
        (None, None) => Continuity::Fresh,
    })
}

fn write_marker(db: &sled::Db, marker: &Path) -> Result<(), HistoryError> {
    let storage = |source| HistoryError::Storage {
        path: marker.to_path_buf(),
        source,
    };
    let id = match db.get(INSTANCE_KEY).map_err(storage)? {
        Some(id) => String::from_utf8_lossy(&id).into_owned(),
        None => {
            let id = uuid::Uuid::now_v7().simple().to_string();
            db.insert(INSTANCE_KEY, id.as_bytes()).map_err(storage)?;
            db.flush().map_err(storage)?;
            id
        }
    };
    std::fs::write(marker, format!("{id}\n")).map_err(|e| HistoryError::Storage {
        path: marker.to_path_buf(),
        source: sled::Error::Io(e),
    })
}

/// `history.corrupt-<UTC time>`, made unique if that name is taken.
fn aside_path(rank_dir: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let base = rank_dir.join(format!("{HISTORY_DIR}.corrupt-{stamp}"));
    (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => PathBuf::from(format!("{}-{n}", base.display())),
        })
        .find(|p| !p.exists())
        .unwrap_or(base)
}

impl History {
    /// Opens `rank_dir/history`. The caller holds the [`RankLock`] of `rank_dir`, so no other
    /// process has it open. A corrupt database is renamed to `history.corrupt-<UTC time>`
    /// and a fresh one is created; the caller logs that as an error.
    pub fn open(rank_dir: &Path, options: &HistoryOptions) -> Result<Opened, HistoryError> {
        let path = rank_dir.join(HISTORY_DIR);
        let marker = rank_dir.join(INSTANCE_FILE);
        let corrupt = match attempt_open(&path, options) {
            Attempt::Ok(db) => {
                let continuity =
                    check_continuity(&db, &marker).map_err(|source| HistoryError::Open {
                        path: path.clone(),
                        source,
                    })?;
                match continuity {
                    Continuity::Same | Continuity::Fresh => {
                        write_marker(&db, &marker)?;
                        return Ok(Opened {
                            history: History { db, path },
                            moved_aside: None,
                        });
                    }
                    Continuity::Lost { expected } => {
                        drop(db);
                        format!(
                            "sled opened it empty, but it is database {expected} (per {}) that held data",
                            marker.display()
                        )
                    }
                }
            }
            Attempt::Failed(source) => return Err(HistoryError::Open { path, source }),
            Attempt::Corrupt(reason) => reason,
        };
        let to = aside_path(rank_dir);
        std::fs::rename(&path, &to).map_err(|source| HistoryError::MoveAside {
            path: path.clone(),
            reason: corrupt.clone(),
            source,
        })?;
        match attempt_open(&path, options) {
            Attempt::Ok(db) => {
                write_marker(&db, &marker)?;
                Ok(Opened {
                    history: History { db, path },
                    moved_aside: Some(MovedAside {
                        to,
                        reason: corrupt,
                    }),
                })
            }
            Attempt::Failed(source) => Err(HistoryError::Open { path, source }),
            Attempt::Corrupt(reason) => Err(HistoryError::Open {
                path,
                source: sled::Error::Unsupported(reason),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn storage(&self, source: sled::Error) -> HistoryError {
        HistoryError::Storage {
            path: self.path.clone(),
            source,
        }
    }

    /// Ids of the users that have a history tree.
    pub fn user_ids(&self) -> Vec<SyncUserId> {
        self.db
            .tree_names()
            .into_iter()
            .filter(|name| name.as_ref() != DEFAULT_TREE)
            .filter_map(|name| std::str::from_utf8(&name).ok().and_then(SyncUserId::parse))
            .collect()
    }

    pub fn has_user(&self, user: &SyncUserId) -> bool {
        self.db
            .tree_names()
            .iter()
            .any(|name| name.as_ref() == user.as_str().as_bytes())
    }

    /// The history of `user` (its tree is created on first use).
    pub fn user(&self, user: &SyncUserId) -> Result<UserHistory, HistoryError> {
        let tree = self
            .db
            .open_tree(user.as_str())
            .map_err(|e| self.storage(e))?;
        Ok(UserHistory {
            user: user.clone(),
            tree,
            db: self.db.clone(),
        })
    }

    /// Creates the (empty) history tree of `user` if it has none.
    pub fn ensure_user(&self, user: &SyncUserId) -> Result<(), HistoryError> {
        self.user(user).map(|_| ())
    }

    /// Deletes the whole history of `user`, with any copy of it set aside
    /// ([`History::set_aside_user`]), and nothing else. True if it existed.
    pub fn drop_user(&self, user: &SyncUserId) -> Result<bool, HistoryError> {
        for name in self.set_aside_names(user) {
            self.db.drop_tree(name).map_err(|e| self.storage(e))?;
        }
        self.db
            .drop_tree(user.as_str())
            .map_err(|e| self.storage(e))
    }

    /// The trees that hold copies of `user`'s history set aside.
    pub fn set_aside_names(&self, user: &SyncUserId) -> Vec<String> {
        let prefix = format!("{}{SET_ASIDE_MARK}", user.as_str());
        self.db
            .tree_names()
            .into_iter()
            .filter_map(|name| String::from_utf8(name.to_vec()).ok())
            .filter(|name| name.starts_with(&prefix))
            .collect()
    }

    /// Sets `user`'s history aside because part of it cannot be read: it is copied whole to a
    /// tree named `{user}.unreadable-{UTC time}`, kept for a person to look at (and removed
    /// with the user), and the user's own tree is dropped, so that the next pass rebuilds it
    /// from the stamps on the mailbox items (DESIGN invariant 4) instead of failing for ever.
    /// Returns the name of the copy.
    pub fn set_aside_user(
        &self,
        user: &SyncUserId,
        at: jiff::Timestamp,
    ) -> Result<String, HistoryError> {
        let base = format!(
            "{}{SET_ASIDE_MARK}{}",
            user.as_str(),
            at.strftime("%Y%m%dT%H%M%SZ")
        );
        let taken = self.set_aside_names(user);
        let name = (0..)
            .map(|n| {
                if n == 0 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find(|name| !taken.contains(name))
            .unwrap_or(base);
        let source = self
            .db
            .open_tree(user.as_str())
            .map_err(|e| self.storage(e))?;
        let copy = self.db.open_tree(&name).map_err(|e| self.storage(e))?;
        for entry in source.iter() {
            let (key, value) = entry.map_err(|e| self.storage(e))?;
            copy.insert(key, value).map_err(|e| self.storage(e))?;
        }
        self.db
            .drop_tree(user.as_str())
            .map_err(|e| self.storage(e))?;
        Ok(name)
    }

    /// Writes everything to disk; called at safe points and before exit.
    pub async fn flush(&self) -> Result<usize, HistoryError> {
        let tree: &sled::Tree = &self.db;
        flush_tree(tree.clone()).await.map_err(|e| self.storage(e))
    }

    pub fn size_on_disk(&self) -> Result<u64, HistoryError> {
        self.db.size_on_disk().map_err(|e| self.storage(e))
    }
}

#[cfg(test)]
mod tests;

/// Flushes `tree` (and with it the database's log) on tokio's blocking pool. sled 0.34's
/// `flush_async` can lose its wake-up when several are polled at once (sled issues #1241 and
/// #1308): the caller then hangs forever, as whole rank daemons did under load. A blocking
/// flush cannot.
pub(crate) async fn flush_tree(tree: sled::Tree) -> Result<usize, sled::Error> {
    match tokio::task::spawn_blocking(move || tree.flush()).await {
        Ok(flushed) => flushed,
        Err(e) => Err(sled::Error::ReportableBug(format!(
            "the history flush task stopped: {e}"
        ))),
    }
}
