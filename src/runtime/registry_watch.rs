//! Notices changes of the registry file by polling its metadata: cheap, and it sees the
//! atomic rename the admin commands use as well as an edit in place.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::registry::{Registry, RegistryError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        inode: meta.ino(),
        len: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
    })
}

/// What a check found.
#[derive(Debug)]
pub enum Change {
    /// The file changed and reads as a valid registry.
    Valid(Registry),
    /// The file changed and does not read; the last good registry stays in force.
    Invalid(RegistryError),
    /// The file was there and is gone; the last good registry stays in force.
    Vanished,
}

pub struct RegistryWatch {
    path: PathBuf,
    last: Option<Stamp>,
}

impl RegistryWatch {
    /// Starts watching; `initial` is the registry just read, `path` its file.
    pub fn new(path: PathBuf) -> Self {
        let last = stamp(&path);
        RegistryWatch { path, last }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the registry again if its file changed since the last check (or always, when
    /// `force`, as on SIGHUP). `None`: nothing changed.
    pub fn check(&mut self, force: bool) -> Option<Change> {
        let now = stamp(&self.path);
        if now == self.last && !force {
            return None;
        }
        let was_there = self.last.is_some();
        self.last = now;
        match now {
            None if was_there => Some(Change::Vanished),
            None => force.then(|| Change::Valid(Registry::empty())),
            Some(_) => Some(match Registry::read(&self.path) {
                Ok(registry) => Change::Valid(registry),
                Err(e) => Change::Invalid(e),
            }),
        }
    }
}
