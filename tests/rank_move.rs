//! Two real rank daemons against a sandbox process: a user moved from rank 1 to rank 2 while
//! both run carries its history over and is never synced by both; a removed user's history is
//! deleted by its rank's daemon, which says so.

mod common;

use std::process::Command;
use std::time::Instant;

use common::{Daemon, PATIENCE, SandboxProcess};
use serde_json::Value;

struct Two {
    dir: tempfile::TempDir,
    sandbox: SandboxProcess,
    scenario: Value,
}

impl Two {
    fn start() -> Two {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let sandbox = SandboxProcess::start(&dir.path().join("sbx"), &state, "small");
        let scenario = sandbox.get("/scenario");
        Two {
            dir,
            sandbox,
            scenario,
        }
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// Mailbox i of the scenario: (Graph id, address).
    fn mailbox(&self, i: usize) -> (String, String) {
        let m = &self.scenario["graph"]["mailboxes"][i];
        (
            m["id"].as_str().unwrap().to_string(),
            m["mail"].as_str().unwrap().to_string(),
        )
    }

    fn write_registry(
        &self,
        users: &[(&str, u32, usize, u16, Option<u16>)],
        tombstones: &[(&str, u16)],
    ) {
        let mut text = String::from("version = 1\n");
        for (id, associate, mailbox, rank, moved_from) in users {
            let (mailbox_id, address) = self.mailbox(*mailbox);
            text.push_str(&format!(
                "\n[[users]]\nid = \"{id}\"\nassociate_id = {associate}\nmailbox = \"{address}\"\n\
                 mailbox_id = \"{mailbox_id}\"\nmail_system = \"sandbox\"\nrank = {rank}\n\
                 diary = true\ntask = false\ncontact = false\ncreated = \"2026-11-01T10:00:00Z\"\n"
            ));
            if let Some(from) = moved_from {
                text.push_str(&format!("moved_from = {from}\n"));
            }
        }
        for (id, rank) in tombstones {
            text.push_str(&format!(
                "\n[[tombstones]]\nid = \"{id}\"\nrank = {rank}\nremoved = \"2026-11-02T10:00:00Z\"\n"
            ));
        }
        std::fs::create_dir_all(self.state()).unwrap();
        let tmp = self.state().join(".users.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.state().join("users.toml")).unwrap();
    }

    fn daemon(&self, rank: u16) -> Daemon {
        let mut cmd = Command::new(common::BIN);
        cmd.arg("--config")
            .arg(&self.sandbox.config)
            .args(["run", "--rank", &rank.to_string()])
            .env("CRMSYNC__SYNC__INTERVAL", "1s")
            .env("CRMSYNC__DAEMON__REGISTRY_POLL_INTERVAL", "200ms")
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET");
        Daemon::spawn(cmd)
    }

    /// The sandbox's log of requests for one mailbox.
    fn requests(&self, mailbox_id: &str) -> Vec<Value> {
        self.sandbox
            .get(&format!("/requests?mailbox={mailbox_id}"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the sandbox has seen a request for `mailbox_id` from `rank`'s daemon.
    fn wait_for_request(&self, mailbox_id: &str, rank: u16) {
        let deadline = Instant::now() + PATIENCE;
        let agent = format!("(rank {rank})");
        loop {
            if self
                .requests(mailbox_id)
                .iter()
                .any(|r| r["client"].as_str().is_some_and(|c| c.contains(&agent)))
            {
                return;
            }
            assert!(Instant::now() < deadline, "no request from rank {rank}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

fn rank_of(request: &Value) -> Option<u16> {
    let client = request["client"].as_str()?;
    let rank = client.split("(rank ").nth(1)?.trim_end_matches(')');
    rank.parse().ok()
}

#[test]
fn a_user_moved_between_running_daemons_is_handed_over_and_never_synced_by_both() {
    let two = Two::start();
    let (anna, _) = two.mailbox(0);
    two.write_registry(&[("anna", 101, 0, 1, None), ("bo", 102, 1, 2, None)], &[]);
    let mut one = two.daemon(1);
    let mut second = two.daemon(2);
    one.wait_serving();
    second.wait_serving();
    one.log.wait_for_all(&["pass", "user=anna"]);

    two.write_registry(
        &[("anna", 101, 0, 2, Some(1)), ("bo", 102, 1, 2, None)],
        &[],
    );
    one.log.wait_for_all(&["handed over", "user=anna"]);
    second.log.wait_for_all(&["taken over", "user=anna"]);
    two.wait_for_request(&anna, 2);

    assert_eq!(one.stop().code(), Some(0));
    assert_eq!(second.stop().code(), Some(0));

    // Never both: every request for ANNA's mailbox from rank 1 comes before every one from
    // rank 2.
    let requests = two.requests(&anna);
    let last_of_one = requests
        .iter()
        .filter(|r| rank_of(r) == Some(1))
        .map(|r| r["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    let first_of_two = requests
        .iter()
        .filter(|r| rank_of(r) == Some(2))
        .map(|r| r["seq"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(
        last_of_one < first_of_two,
        "rank 1 asked after rank 2 started"
    );
    // The history arrived intact: rank 2 created nothing for ANNA (no duplicates).
    let creates = requests
        .iter()
        .filter(|r| {
            rank_of(r) == Some(2)
                && r["method"] == "POST"
                && r["path"].as_str().unwrap_or("").contains("/events")
        })
        .count();
    assert_eq!(
        creates, 0,
        "rank 2 created events for ANNA: the history did not arrive"
    );
    assert!(!common::registry_handoff(&two.state(), "anna").exists());

    // The history is at rank 2 now, and gone from rank 1.
    let stats = |rank: u16| {
        let out = Command::new(common::BIN)
            .arg("--config")
            .arg(&two.sandbox.config)
            .args(["history", "stats", "--rank", &rank.to_string(), "--json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let users = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!users(&stats(1)).contains(&"anna".to_string()));
    let at_two = stats(2);
    let anna_stats = at_two["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "anna")
        .unwrap();
    assert!(anna_stats["kinds"][0][1]["pairs"].as_u64().unwrap() > 0);
}

#[test]
fn a_removed_users_history_is_deleted_by_the_running_daemon_which_leaves_a_note() {
    let two = Two::start();
    two.write_registry(&[("anna", 101, 0, 1, None), ("bo", 102, 1, 1, None)], &[]);
    let mut daemon = two.daemon(1);
    daemon.wait_serving();
    daemon.log.wait_for_all(&["pass", "user=bo"]);
    daemon.log.wait_for_all(&["pass", "user=anna"]);

    two.write_registry(&[("anna", 101, 0, 1, None)], &[("bo", 1)]);
    let note = two.state().join("rank-1").join("dropped").join("bo");
    let deadline = Instant::now() + PATIENCE;
    while !note.exists() {
        assert!(Instant::now() < deadline, "no note from the daemon");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    daemon
        .log
        .wait_for_all(&["removed user's history deleted", "user=bo", "existed=true"]);
    assert_eq!(daemon.stop().code(), Some(0));
}
