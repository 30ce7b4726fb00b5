//! `crmsync users ...` through the real binary: against the in-process sandbox's `small`
//! scenario (five associates, six mailboxes), with histories made through the `history` API.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod concurrency;
mod flow;
mod moves;
mod removal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{Sandbox as Dir, stderr, stdout};
use crmsync::connector::model::{ContentHash, CrmId, Cursor, Kind, MailboxItemId, Version};
use crmsync::history::{Commit, History, HistoryOptions, Pair, Side};
use crmsync::registry::{Rank, Registry, SyncUser, SyncUserId};
use crmsync::sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::Value;

/// A state directory and configuration, with the sandbox behind it when linking is tested.
pub struct Env {
    // Dropped before the runtime that serves it.
    pub sandbox: Option<Sandbox>,
    pub rt: tokio::runtime::Runtime,
    pub dir: Dir,
}

impl Env {
    /// The sandbox's `small` scenario and a configuration that points at it.
    pub fn with_sandbox() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let sandbox = rt
            .block_on(Sandbox::start(SandboxOptions::local(Scenario::small(
                jiff::Timestamp::now(),
            ))))
            .expect("the sandbox starts");
        let dir = Dir::new();
        let written = sandbox
            .write_config(dir.dir.path(), &dir.state_dir())
            .expect("the sandbox writes a configuration");
        assert_eq!(written, dir.config_path());
        Env {
            sandbox: Some(sandbox),
            rt,
            dir,
        }
    }

    /// No services: for commands that only touch the state directory.
    pub fn offline() -> Env {
        Env {
            sandbox: None,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            dir: Dir::new(),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.state_dir()
    }

    pub fn rank_dir(&self, rank: u16) -> PathBuf {
        self.state_dir().join(format!("rank-{rank}"))
    }

    /// `crmsync users ARGS...`.
    pub fn users(&self, args: &[&str]) -> Output {
        let mut all = vec!["users"];
        all.extend_from_slice(args);
        self.dir.run(&all)
    }

    /// Runs and expects success; standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.users(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "users {args:?} failed:\n{}\n{}",
            stderr(&out),
            stdout(&out)
        );
        stdout(&out)
    }

    /// Runs and expects exit `code`; standard error.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.users(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "users {args:?}: expected exit {code}:\n{}\n{}",
            stderr(&out),
            stdout(&out)
        );
        stderr(&out)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("users {args:?}: {e}:\n{text}"))
    }

    pub fn registry(&self) -> Registry {
        Registry::read(&Registry::path_in(&self.state_dir())).expect("the registry reads")
    }

    pub fn user(&self, login: &str) -> SyncUser {
        self.registry()
            .users
            .into_iter()
            .find(|u| u.login.as_deref() == Some(login))
            .unwrap_or_else(|| panic!("{login} is not a saved user"))
    }

    /// Opens rank `rank`'s history (its daemon must not run).
    pub fn history(&self, rank: u16) -> History {
        let dir = self.rank_dir(rank);
        std::fs::create_dir_all(&dir).expect("rank directory");
        History::open(
            &dir,
            &HistoryOptions {
                cache_capacity_bytes: 1 << 20,
                flush_interval: Duration::from_millis(100),
            },
        )
        .expect("the history opens")
        .history
    }

    pub fn flush(&self, history: &History) {
        self.rt.block_on(history.flush()).expect("flush");
    }

    /// Every file of the state directory with its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.state_dir(), &mut out);
        out
    }
}

/// Gives `user` some history in `history`: `n` pairs per synced kind, cursors, distinct
/// contents per user.
pub fn seed(history: &History, user: &SyncUserId, n: u32) {
    let tree = history.user(user).expect("user history");
    for (k, kind) in [Kind::Diary, Kind::Task].into_iter().enumerate() {
        let put = (1..=n)
            .map(|i| Pair {
                crm_id: CrmId(i * 10 + k as u32),
                mailbox_id: MailboxItemId(format!("{user}-{k}-{i}")),
                crm_version: Version(format!("c{i}")),
                mailbox_version: Version(format!("m{i}")),
                crm_hash: ContentHash([i as u8; 16]),
                mailbox_hash: ContentHash([k as u8; 16]),
                origin: Side::Crm,
                span: None,
                stamped: true,
                mailbox_read_only: false,
            })
            .collect();
        tree.commit(
            kind,
            &Commit {
                put,
                crm_cursor: Some(Cursor(format!("crm-{user}"))),
                mailbox_cursor: Some(Cursor(format!("delta-{user}"))),
                at: Some(1_795_000_000),
                ..Commit::default()
            },
        )
        .expect("commit");
    }
}

pub fn rank(n: u16) -> Rank {
    Rank::new(n).expect("a rank")
}
