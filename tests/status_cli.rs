//! `crmsync status` through the real binary: a running daemon, a crashed rank and a stopped
//! one, as a table and as JSON, with the exit codes scripts alert on.

mod common;

use common::{Sandbox, registry, stderr, stdout};
use crmsync::registry::{Kind, Rank, SyncUserId};
use crmsync::runtime::status::{
    DaemonState, KindStatus, PassOutcome, RankStatus, UserState, UserStatus,
};

const SECRET: &str = "status-test-secret-value";

fn rank(n: u16) -> Rank {
    Rank::new(n).unwrap()
}

/// A status as a daemon of `rank` with `pid` would write it, one user with a diary pass.
fn status(rank: Rank, pid: u32, state: DaemonState) -> RankStatus {
    let now = jiff::Timestamp::now();
    let mut status = RankStatus::starting(rank, 1, now);
    status.pid = pid;
    status.state = state;
    status.tick = 7;
    status.last_tick_at = Some(now);
    let mut kind = KindStatus {
        last_pass_at: Some(now),
        last_result: Some(PassOutcome::Ok),
        passes: 7,
        created: 3,
        ..KindStatus::default()
    };
    kind.pairs = Some(3);
    let id = format!("u{}", rank.get());
    status.users.push(UserStatus {
        id: SyncUserId::parse(&id).unwrap(),
        associate_id: u32::from(rank.get()) + 10,
        login: Some(format!("user{}", rank.get())),
        mailbox: format!("{id}@contoso.com"),
        state: UserState::Ok,
        since: Some(now),
        detail: None,
        retry_at: None,
        kinds: [(Kind::Diary, kind)].into_iter().collect(),
    });
    status.totals.passes = 7;
    status.totals.created = 3;
    status
}

/// A pid that no process has: one of a process that has ended (should it be reused, it is
/// not `crmsync run --rank 1`, which is all the check asks).
fn gone_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn status_shows_running_down_and_stopped_ranks_and_exits_1_for_the_down_one() {
    let sandbox = Sandbox::new();
    sandbox.write_config_with_connections(SECRET, "");
    sandbox.write_registry(&registry(
        &[
            ("u1", 11, "u1@contoso.com", 1),
            ("u2", 12, "u2@contoso.com", 2),
        ],
        &[],
    ));
    let mut daemon = sandbox.daemon(3, |_| {});
    daemon.wait_serving();
    let state = sandbox.state_dir();
    for n in [1, 2] {
        std::fs::create_dir_all(state.join(format!("rank-{n}"))).unwrap();
    }
    status(rank(1), gone_pid(), DaemonState::Running)
        .write(&state)
        .unwrap();
    status(rank(2), gone_pid(), DaemonState::Stopped)
        .write(&state)
        .unwrap();
    // The daemon may write its own status too: with its own pid, it says the same.
    status(rank(3), daemon.pid(), DaemonState::Running)
        .write(&state)
        .unwrap();

    let out = sandbox.run(&["status"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("!! rank 1  DOWN"), "{text}");
    assert!(text.contains("crashed or killed"), "{text}");
    assert!(text.contains("\nrank 2  stopped"), "{text}");
    assert!(
        text.contains(&format!("\nrank 3  running  pid {}", daemon.pid())),
        "{text}"
    );
    assert!(text.contains("u1@contoso.com"), "{text}");
    assert!(text.contains("!! needs attention: rank 1 (DOWN)"), "{text}");
    assert!(!text.contains(SECRET) && !stderr(&out).contains(SECRET));

    let out = sandbox.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ranks = json["ranks"].as_array().unwrap();
    let liveness: Vec<(u64, &str)> = ranks
        .iter()
        .map(|r| (r["rank"].as_u64().unwrap(), r["liveness"].as_str().unwrap()))
        .collect();
    assert_eq!(liveness, [(1, "down"), (2, "stopped"), (3, "running")]);
    let one = &ranks[0];
    assert_eq!(one["error"], serde_json::Value::Null);
    assert_eq!(one["registry_users"], 1);
    assert_eq!(one["status"]["version"], 1);
    assert_eq!(one["status"]["rank"], 1);
    assert_eq!(one["status"]["state"], "running");
    assert_eq!(one["status"]["users"][0]["mailbox"], "u1@contoso.com");
    assert_eq!(
        one["status"]["users"][0]["kinds"]["diary"]["last_result"],
        "ok"
    );
    assert_eq!(one["status"]["totals"]["created"], 3);
    assert_eq!(ranks[2]["pid"], daemon.pid());
    assert!(!stdout(&out).contains(SECRET));

    // --rank shows that rank alone, and its exit code is that rank's.
    let out = sandbox.run(&["status", "--rank", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("rank 1"), "{}", stdout(&out));
    let out = sandbox.run(&["status", "--rank", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ranks"].as_array().unwrap().len(), 1);
    assert_eq!(json["ranks"][0]["liveness"], "stopped");
    let out = sandbox.run(&["status", "--rank", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let out = sandbox.run(&["status", "--rank", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("rank 9 has no directory") && stderr(&out).contains("1, 2, 3"),
        "{}",
        stderr(&out)
    );

    // A damaged file is that rank's problem; the others are still shown.
    std::fs::write(state.join("rank-2").join("status.json"), "{\"version\": 1,").unwrap();
    let out = sandbox.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("is damaged"), "{text}");
    assert!(text.contains("rewrites it after its next pass"), "{text}");
    assert!(text.contains("rank 3  running"), "{text}");

    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn status_without_a_state_directory_is_a_configuration_error() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["status"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("check [daemon] state_dir"),
        "{}",
        stderr(&out)
    );
    let out = sandbox.run(&["status", "--rank", "0"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));

    // An empty state directory: nothing runs and nothing should.
    std::fs::create_dir_all(sandbox.state_dir()).unwrap();
    let out = sandbox.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("no ranks in"), "{}", stdout(&out));
}
