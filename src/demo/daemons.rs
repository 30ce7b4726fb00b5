//! The two rank daemons as child processes: `crmsync run --rank N` of this very binary. Their
//! standard error (JSON log lines) goes to `rank-N.log` in the demo's directory and is read
//! for the passes' counts and the conflicts. They are stopped with SIGTERM as systemd would;
//! a daemon still running when the demo ends any other way is killed (no orphans).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::DemoError;

/// How long a daemon may take to stop after SIGTERM: its own drain deadline is 20 s.
const STOP_PATIENCE: Duration = Duration::from_secs(30);
/// Log lines kept per daemon for an error message.
const TAIL: usize = 12;

/// What a daemon's log said.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonCounts {
    /// Items created, updated and deleted, both sides together.
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Each conflict as the daemon logged it.
    pub conflicts: Vec<String>,
    pub warnings: u64,
    pub errors: u64,
    #[serde(skip)]
    tail: VecDeque<String>,
}

impl DaemonCounts {
    fn read(&mut self, line: &str) {
        self.tail.push_back(line.to_string());
        if self.tail.len() > TAIL {
            self.tail.pop_front();
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let fields = if v["fields"].is_object() {
            &v["fields"]
        } else {
            &v
        };
        let n = |key: &str| fields[key].as_u64().unwrap_or(0);
        match v["level"].as_str() {
            Some("WARN") => self.warnings += 1,
            Some("ERROR") => self.errors += 1,
            _ => {}
        }
        let message = fields["message"].as_str().unwrap_or_default();
        if message == "pass" {
            self.created += n("created_in_mailbox") + n("created_in_crm");
            self.updated += n("updated_in_mailbox") + n("updated_in_crm");
            self.deleted += n("deleted_in_mailbox") + n("deleted_in_crm");
        } else if let Some(conflict) = message.strip_prefix("conflict: ") {
            self.conflicts.push(conflict.to_string());
        }
    }
}

struct RankDaemon {
    rank: u16,
    pid: u32,
    child: tokio::process::Child,
    counts: Arc<Mutex<DaemonCounts>>,
    reader: tokio::task::JoinHandle<()>,
    exit: Option<ExitStatus>,
}

impl RankDaemon {
    fn tail(&self) -> String {
        self.counts
            .lock()
            .map(|c| c.tail.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    fn terminate(&self) {
        if self.exit.is_none()
            && let Some(pid) = i32::try_from(self.pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}

/// The running daemons. Dropping this kills those still running.
#[derive(Default)]
pub struct Daemons {
    ranks: Vec<RankDaemon>,
}

impl Daemons {
    /// Starts `cmd` (a `run --rank N` command) with its log going to `log`.
    pub fn spawn(
        &mut self,
        rank: u16,
        mut cmd: tokio::process::Command,
        log: &Path,
    ) -> Result<(), DemoError> {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(DemoError::io(format!(
            "cannot start the rank {rank} daemon"
        )))?;
        let pid = child.id().unwrap_or(0);
        let stderr = child.stderr.take();
        let counts = Arc::new(Mutex::new(DaemonCounts::default()));
        // A restarted daemon's lines follow its earlier ones.
        let file = std::fs::File::options()
            .append(true)
            .create(true)
            .open(log)
            .map_err(DemoError::io(format!("cannot create {}", log.display())))?;
        let sink = counts.clone();
        let reader = tokio::spawn(async move {
            let mut file = tokio::fs::File::from_std(file);
            let Some(stderr) = stderr else { return };
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = file.write_all(line.as_bytes()).await;
                let _ = file.write_all(b"\n").await;
                if let Ok(mut c) = sink.lock() {
                    c.read(&line);
                }
            }
            let _ = file.flush().await;
        });
        self.ranks.push(RankDaemon {
            rank,
            pid,
            child,
            counts,
            reader,
            exit: None,
        });
        Ok(())
    }

    /// The running daemons' pids, by rank.
    pub fn pids(&self) -> Vec<(u16, u32)> {
        self.ranks
            .iter()
            .filter(|d| d.exit.is_none())
            .map(|d| (d.rank, d.pid))
            .collect()
    }

    /// An error if a daemon has exited while the demo needs it.
    pub fn check_running(&mut self) -> Result<(), DemoError> {
        for d in self.ranks.iter_mut().filter(|d| d.exit.is_none()) {
            if let Ok(Some(status)) = d.child.try_wait() {
                d.exit = Some(status);
                return Err(DemoError::DaemonExited {
                    rank: d.rank,
                    status: status.to_string(),
                    tail: d.tail(),
                });
            }
        }
        Ok(())
    }

    /// SIGTERM to every daemon, then waits for each (killing one that takes longer than its
    /// drain deadline allows). How each ended, by rank.
    pub async fn stop_all(&mut self) -> Vec<(u16, String)> {
        for d in &self.ranks {
            d.terminate();
        }
        let mut ended = Vec::new();
        for d in self.ranks.iter_mut().filter(|d| d.exit.is_none()) {
            let status = match tokio::time::timeout(STOP_PATIENCE, d.child.wait()).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => {
                    let _ = d.child.kill().await;
                    Err(format!(
                        "did not stop within {}s and was killed",
                        STOP_PATIENCE.as_secs()
                    ))
                }
            };
            if let Ok(s) = status {
                d.exit = Some(s);
            }
            // The log's last lines, before the counts are read.
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut d.reader).await;
            let how = match status {
                Ok(s) if s.success() => "stopped cleanly (exit 0)".to_string(),
                Ok(s) => format!("ended with {s}"),
                Err(e) => e,
            };
            ended.push((d.rank, how));
        }
        ended
    }

    /// Each daemon's counts (every run of it), by rank.
    pub fn counts(&self) -> BTreeMap<u16, DaemonCounts> {
        let mut all: BTreeMap<u16, DaemonCounts> = BTreeMap::new();
        for d in &self.ranks {
            let Ok(c) = d.counts.lock() else { continue };
            let sum = all.entry(d.rank).or_default();
            sum.created += c.created;
            sum.updated += c.updated;
            sum.deleted += c.deleted;
            sum.warnings += c.warnings;
            sum.errors += c.errors;
            sum.conflicts.extend(c.conflicts.iter().cloned());
        }
        all
    }
}
