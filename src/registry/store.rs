//! The write side of the admin files in the state directory: the registry (`users.toml`),
//! the staged links (`pending.toml`) and the loaded mailbox list (`external-users.json`).
//!
//! Every change is a read-modify-write under an exclusive `flock` on `STATE_DIR/users.lock`,
//! held for the whole of it, so concurrent `crmsync users ...` commands never lose each
//! other's updates. Files are replaced atomically (temporary file in the same directory,
//! fsync, rename, fsync of the directory), so a daemon reading at any moment sees the old
//! file or the new one. A file that does not parse is never overwritten: reading it fails
//! first, naming the line, and nothing is written.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::external::{ExternalError, ExternalUsers};
use super::pending::{Pending, PendingError};
use super::{Registry, RegistryError};
use crate::exit;

/// The lock file every registry change holds, inside the state directory.
pub const LOCK_FILE: &str = "users.lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "another crmsync command has held {} for {}; try again when it has finished",
        path.display(),
        humantime::format_duration(*waited)
    )]
    LockTimeout { path: PathBuf, waited: Duration },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the state directory {} belongs to user id {owner}, but this command runs as user id {me}: \
         run it as the service user (e.g. `sudo -u crmsync crmsync users ...`), so that the rank \
         daemons can still read what it writes",
        dir.display()
    )]
    WrongUser { dir: PathBuf, owner: u32, me: u32 },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Pending(#[from] PendingError),
    #[error(transparent)]
    External(#[from] ExternalError),
    /// A guard: what is about to be written does not read back (a bug, never a user's error).
    #[error("refusing to write {}: it would not read back ({reason}); nothing was written", path.display())]
    WouldNotReadBack { path: PathBuf, reason: String },
}

impl StoreError {
    /// The process exit code (DESIGN section 9).
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::LockTimeout { .. } => exit::TEMPORARY,
            StoreError::WrongUser { .. }
            | StoreError::Registry(RegistryError::Invalid { .. })
            | StoreError::Pending(PendingError::Invalid { .. })
            | StoreError::External(ExternalError::Invalid { .. }) => exit::CONFIG,
            _ => exit::FAILURE,
        }
    }
}

/// The admin files of one state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// The held `users.lock`: the only way to write, so that no write happens unlocked.
#[derive(Debug)]
pub struct StoreLock<'a> {
    _file: File,
    store: &'a Store,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { what, path, source }
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.to_path_buf(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    pub fn registry_path(&self) -> PathBuf {
        Registry::path_in(&self.dir)
    }

    pub fn pending_path(&self) -> PathBuf {
        Pending::path_in(&self.dir)
    }

    pub fn external_path(&self) -> PathBuf {
        ExternalUsers::path_in(&self.dir)
    }

    /// Reads the registry (each file is replaced atomically, so reading needs no lock).
    pub fn registry(&self) -> Result<Registry, StoreError> {
        Ok(Registry::read(&self.registry_path())?)
    }

    pub fn pending(&self) -> Result<Pending, StoreError> {
        Ok(Pending::read(&self.pending_path())?)
    }

    /// The loaded mailboxes; `None` if never loaded.
    pub fn external(&self) -> Result<Option<ExternalUsers>, StoreError> {
        Ok(ExternalUsers::read(&self.external_path())?)
    }

    /// Takes `users.lock`, waiting at most `timeout` for another command to finish. Creates
    /// the state directory (mode 0700) if it does not exist yet.
    pub fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        if !self.dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(io("create the state directory", &self.dir))?;
        }
        self.check_owner()?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io("open the lock file", &path))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(StoreLock {
                        _file: file,
                        store: self,
                    });
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io("lock", &path)(e)),
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(StoreError::LockTimeout { path, waited });
            }
            // Short pauses: each holder keeps the lock for milliseconds.
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Files written by another user than the daemons' would lock them out of their state.
    fn check_owner(&self) -> Result<(), StoreError> {
        let owner = std::fs::metadata(&self.dir)
            .map_err(io("read the state directory", &self.dir))?
            .uid();
        // /proc/self belongs to the process's effective user; without /proc, no check.
        let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
            return Ok(());
        };
        if owner != me {
            return Err(StoreError::WrongUser {
                dir: self.dir.clone(),
                owner,
                me,
            });
        }
        Ok(())
    }
}

impl StoreLock<'_> {
    pub fn store(&self) -> &Store {
        self.store
    }

    /// Writes the registry, after checking that it reads back as written.
    pub fn write_registry(&self, registry: &Registry) -> Result<(), StoreError> {
        let path = self.store.registry_path();
        let text = registry.to_toml();
        match Registry::parse(&text, &path) {
            Ok(back) if &back == registry => {}
            Ok(_) => {
                return Err(StoreError::WouldNotReadBack {
                    path,
                    reason: "it reads back differently".into(),
                });
            }
            Err(e) => {
                return Err(StoreError::WouldNotReadBack {
                    path,
                    reason: e.to_string(),
                });
            }
        }
        write_atomically(&path, text.as_bytes())
    }

    pub fn write_pending(&self, pending: &Pending) -> Result<(), StoreError> {
        let path = self.store.pending_path();
        let text = pending.to_toml();
        match Pending::parse(&text, &path) {
            Ok(back) if &back == pending => {}
            other => {
                return Err(StoreError::WouldNotReadBack {
                    path,
                    reason: other.err().map(|e| e.to_string()).unwrap_or_default(),
                });
            }
        }
        write_atomically(&path, text.as_bytes())
    }

    pub fn write_external(&self, external: &ExternalUsers) -> Result<(), StoreError> {
        let path = self.store.external_path();
        let text = external.to_json();
        match ExternalUsers::parse(&text, &path) {
            Ok(back) if &back == external => {}
            other => {
                return Err(StoreError::WouldNotReadBack {
                    path,
                    reason: other.err().map(|e| e.to_string()).unwrap_or_default(),
                });
            }
        }
        write_atomically(&path, text.as_bytes())
    }
}

/// Replaces `path` with `bytes`: a temporary file in the same directory, fsync, rename, fsync
/// of the directory. The file keeps its permissions (new files get 0600).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        file.write_all(bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("replace", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the directory", dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_file_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&dir.path().join("state"));
        let lock = store.lock(Duration::from_secs(5)).unwrap();
        let mut registry = Registry::empty();
        lock.write_registry(&registry).unwrap();
        registry.tombstones.push(super::super::Tombstone {
            id: super::super::SyncUserId::parse("u1").unwrap(),
            rank: super::super::Rank::MIN,
            removed: jiff::Timestamp::UNIX_EPOCH,
        });
        lock.write_registry(&registry).unwrap();
        assert_eq!(store.registry().unwrap(), registry);
        let names: Vec<String> = std::fs::read_dir(store.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
        let mode = std::fs::metadata(store.state_dir())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_held_lock_makes_the_second_wait_and_give_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let held = store.lock(Duration::from_secs(5)).unwrap();
        match store.lock(Duration::from_millis(30)) {
            Err(e @ StoreError::LockTimeout { .. }) => {
                assert_eq!(e.exit_code(), exit::TEMPORARY);
            }
            other => panic!("{other:?}"),
        }
        drop(held);
        store.lock(Duration::from_millis(30)).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        std::fs::write(store.pending_path(), "version = 1\n[[links]]\nlogin = 3\n").unwrap();
        let e = store.pending().unwrap_err();
        assert_eq!(e.exit_code(), exit::CONFIG);
        assert!(e.to_string().contains("pending.toml:3"), "{e}");
    }
}
