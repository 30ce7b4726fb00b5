//! The registry `STATE_DIR/users.toml`: the sync users (associate linked to mailbox),
//! their options and ranks, and tombstones of removed users.
//!
//! The admin commands write it; rank daemons only read it. Reading validates everything and
//! names the line at fault; a registry that does not validate is refused as a whole.

pub mod external;
pub mod link;
pub mod pending;
mod rank;
pub mod resolve;
pub mod store;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use rank::{Rank, RankError};

use crate::text::line_of;

/// Where a user's history waits between ranks: `STATE_DIR/handoff/{user id}.handoff`.
pub fn handoff_path(state_dir: &Path, user: &SyncUserId) -> PathBuf {
    state_dir.join("handoff").join(format!("{user}.handoff"))
}

/// The note a rank daemon leaves when it has deleted a removed user's history:
/// `STATE_DIR/rank-N/dropped/{user id}` (the removing command waits for it).
pub fn dropped_path(state_dir: &Path, rank: Rank, user: &SyncUserId) -> PathBuf {
    state_dir
        .join(rank.dir_name())
        .join("dropped")
        .join(user.as_str())
}

/// The registry format this build reads and writes.
pub const REGISTRY_VERSION: u32 = 1;
/// The registry's file name inside the state directory.
pub const REGISTRY_FILE: &str = "users.toml";

/// The kinds of items synced per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Diary,
    Task,
    Contact,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Diary, Kind::Task, Kind::Contact];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Diary => "diary",
            Kind::Task => "task",
            Kind::Contact => "contact",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sync user's id: new on every save, so a removed and re-added user never meets its old
/// history. It names the user's history tree, so it is restricted to `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SyncUserId(String);

impl<'de> Deserialize<'de> for SyncUserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SyncUserId::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a sync user id: 1 to 64 letters, digits, '-' or '_'"
            ))
        })
    }
}

impl SyncUserId {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then(|| SyncUserId(s.to_string()))
    }

    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        SyncUserId(uuid::Uuid::now_v7().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SyncUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One associate linked to one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncUser {
    pub id: SyncUserId,
    /// The SuperOffice associate id.
    pub associate_id: u32,
    /// The associate's login name, for display and for naming the user on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The associate's full name, for display (absent in registries written by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The mailbox's primary SMTP address.
    pub mailbox: String,
    /// The mail system's id for the mailbox (Graph user id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_id: Option<String>,
    /// The `[mail_systems.NAME]` the mailbox belongs to.
    pub mail_system: String,
    pub rank: Rank,
    pub diary: bool,
    pub task: bool,
    pub contact: bool,
    pub created: jiff::Timestamp,
    /// Set by a rank move: the rank whose history the new rank takes over (through
    /// `STATE_DIR/handoff/`) before its first pass for the user. Absent for a fresh start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<Rank>,
    /// Set by `crmsync users resume`: the daemon tries a failed or paused user again when
    /// this changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

/// An operator's request to try a failed or paused user again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// Counts the requests for this user; a daemon acts once per new value.
    pub generation: u64,
    /// Let the next pass of each kind through the mass-delete guard (`--allow-deletes`).
    #[serde(default)]
    pub allow_deletes: bool,
    pub at: jiff::Timestamp,
}

impl SyncUser {
    pub fn kind_enabled(&self, kind: Kind) -> bool {
        match kind {
            Kind::Diary => self.diary,
            Kind::Task => self.task,
            Kind::Contact => self.contact,
        }
    }

    pub fn enabled_kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        Kind::ALL.into_iter().filter(|k| self.kind_enabled(*k))
    }

    /// All kinds off: nothing syncs, the history is kept.
    pub fn is_disabled(&self) -> bool {
        self.enabled_kinds().next().is_none()
    }
}

/// A removed user: its history is to be dropped by the daemon of its rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tombstone {
    pub id: SyncUserId,
    pub rank: Rank,
    pub removed: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Registry {
    pub version: u32,
    pub users: Vec<SyncUser>,
    pub tombstones: Vec<Tombstone>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    version: Option<Spanned<u32>>,
    #[serde(default)]
    users: Vec<Spanned<SyncUser>>,
    #[serde(default)]
    tombstones: Vec<Spanned<Tombstone>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the registry {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The users and tombstones one rank daemon serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RankView {
    pub rank: Option<Rank>,
    pub users: Vec<SyncUser>,
    pub tombstones: Vec<Tombstone>,
}

impl RankView {
    pub fn active_users(&self) -> impl Iterator<Item = &SyncUser> {
        self.users.iter().filter(|u| !u.is_disabled())
    }
}

impl Registry {
    pub fn empty() -> Self {
        Registry {
            version: REGISTRY_VERSION,
            users: Vec::new(),
            tombstones: Vec::new(),
        }
    }

    /// The registry's path inside a state directory.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(REGISTRY_FILE)
    }

    /// Reads the registry; a missing file is an empty registry (nothing linked yet).
    pub fn read(path: &Path) -> Result<Self, RegistryError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(source) => Err(RegistryError::Unreadable {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses and validates registry text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, RegistryError> {
        let invalid = |offset: usize, message: String| RegistryError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawRegistry = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map(|s| s.start).unwrap_or(0),
                e.message().to_string(),
            )
        })?;

        let version = raw.version.ok_or_else(|| {
            invalid(
                0,
                format!("the registry has no `version`; expected version = {REGISTRY_VERSION}"),
            )
        })?;
        if *version.get_ref() != REGISTRY_VERSION {
            let message = if *version.get_ref() > REGISTRY_VERSION {
                format!(
                    "registry version {} was written by a newer crmsync; this one reads version {REGISTRY_VERSION}: upgrade crmsync",
                    version.get_ref()
                )
            } else {
                format!(
                    "registry version {} is not supported; this crmsync reads version {REGISTRY_VERSION}",
                    version.get_ref()
                )
            };
            return Err(invalid(version.span().start, message));
        }

        // Offsets, not lines: a line is counted only for a message (counting for every
        // entry made parsing quadratic in the number of users).
        let line = |offset: usize| line_of(text, offset);
        let mut ids: HashMap<&SyncUserId, usize> = HashMap::new();
        let mut associates: HashMap<u32, usize> = HashMap::new();
        let mut mailboxes: HashMap<String, usize> = HashMap::new();
        for user in &raw.users {
            let at = user.span().start;
            let u = user.get_ref();
            if let Some(prev) = ids.insert(&u.id, at) {
                return Err(invalid(
                    at,
                    format!(
                        "sync user id {} is used twice (also on line {})",
                        u.id,
                        line(prev)
                    ),
                ));
            }
            if let Some(prev) = associates.insert(u.associate_id, at) {
                return Err(invalid(
                    at,
                    format!(
                        "associate {} is linked twice (also on line {}); one mailbox per associate",
                        u.associate_id,
                        line(prev)
                    ),
                ));
            }
            let mailbox = u.mailbox.trim().to_lowercase();
            if !mailbox.contains('@') {
                return Err(invalid(
                    at,
                    format!(
                        "mailbox {:?} of sync user {} is not an e-mail address",
                        u.mailbox, u.id
                    ),
                ));
            }
            if let Some(prev) = mailboxes.insert(mailbox, at) {
                return Err(invalid(
                    at,
                    format!(
                        "mailbox {} is linked twice (also on line {}); one associate per mailbox",
                        u.mailbox,
                        line(prev)
                    ),
                ));
            }
            if u.mail_system.trim().is_empty() {
                return Err(invalid(
                    at,
                    format!("sync user {} has an empty mail_system", u.id),
                ));
            }
        }
        for tomb in &raw.tombstones {
            if let Some(prev) = ids.get(&tomb.get_ref().id) {
                return Err(invalid(
                    tomb.span().start,
                    format!(
                        "sync user {} is both active (line {}) and removed",
                        tomb.get_ref().id,
                        line(*prev)
                    ),
                ));
            }
        }

        Ok(Registry {
            version: *version.get_ref(),
            users: raw.users.into_iter().map(Spanned::into_inner).collect(),
            tombstones: raw
                .tombstones
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
        })
    }

    /// The registry as TOML text, in the format [`Registry::parse`] reads.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# crmsync registry: sync users, their options and ranks. Written by `crmsync users ...`;\n\
             # rank daemons read it and pick up changes within seconds.\n{body}"
        )
    }

    /// The part of the registry that `rank` serves.
    pub fn rank_view(&self, rank: Rank) -> RankView {
        RankView {
            rank: Some(rank),
            users: self
                .users
                .iter()
                .filter(|u| u.rank == rank)
                .cloned()
                .collect(),
            tombstones: self
                .tombstones
                .iter()
                .filter(|t| t.rank == rank)
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
