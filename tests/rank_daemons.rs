//! Rank daemons at work, as operators run them: two real `crmsync run` processes against a
//! `crmsync sandbox` process. Each daemon calls the services only for its own users, both
//! converge, `crmsync status` shows both, a daemon stopped in the middle of its work leaves a
//! consistent history, and a user whose mailbox is gone or throttled does not hold the others
//! back.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Daemon, PATIENCE, SandboxProcess};
use serde_json::{Value, json};

/// The extended property crmsync stamps its events with.
const STAMP_PROPERTY: &str = crmsync::connector::graph::map::STAMP_PROPERTY;

/// Convergence of a first full round of many mailboxes takes longer than one event.
const CONVERGENCE: Duration = Duration::from_secs(240);

struct Rig {
    dir: tempfile::TempDir,
    sandbox: SandboxProcess,
    /// Per user id: (associate id, mailbox id, mailbox address, rank).
    users: BTreeMap<String, (u32, String, String, u16)>,
}

impl Rig {
    fn start(scenario: &str) -> Rig {
        let dir = tempfile::tempdir().expect("temporary directory");
        let state = dir.path().join("state");
        let sandbox = SandboxProcess::start(&dir.path().join("sbx"), &state, scenario);
        Rig {
            dir,
            sandbox,
            users: BTreeMap::new(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The scenario's mailboxes: (id, address), in order.
    fn mailboxes(&self) -> Vec<(String, String)> {
        self.sandbox
            .get("/graph/mailboxes")
            .as_array()
            .expect("mailboxes")
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().expect("id").to_string(),
                    m["mail"].as_str().expect("mail").to_string(),
                )
            })
            .collect()
    }

    fn add_user(&mut self, id: &str, associate: u32, mailbox: (String, String), rank: u16) {
        self.users
            .insert(id.to_string(), (associate, mailbox.0, mailbox.1, rank));
    }

    /// Writes the registry: diary and tasks on, contacts off.
    fn write_registry(&self) {
        let mut text = String::from("version = 1\n");
        for (id, (associate, mailbox_id, address, rank)) in &self.users {
            text.push_str(&format!(
                "\n[[users]]\nid = \"{id}\"\nassociate_id = {associate}\nmailbox = \"{address}\"\n\
                 mailbox_id = \"{mailbox_id}\"\nmail_system = \"sandbox\"\nrank = {rank}\n\
                 diary = true\ntask = true\ncontact = false\ncreated = \"2026-11-01T10:00:00Z\"\n"
            ));
        }
        std::fs::create_dir_all(self.state()).expect("state directory");
        let tmp = self.state().join(".users.toml.tmp");
        std::fs::write(&tmp, text).expect("write the registry");
        std::fs::rename(&tmp, self.state().join("users.toml")).expect("rename the registry");
    }

    fn daemon(&self, rank: u16) -> Daemon {
        self.daemon_with(rank, &[])
    }

    fn daemon_with(&self, rank: u16, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.sandbox.config)
            .args(["run", "--rank", &rank.to_string()])
            .env("CRMSYNC__SYNC__INTERVAL", "1s")
            .env("CRMSYNC__SYNC__RETRY_MAX", "8s")
            .env("CRMSYNC__DAEMON__REGISTRY_POLL_INTERVAL", "200ms")
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().copied());
        if std::env::var_os("RANK_DAEMONS_DEBUG").is_some() {
            cmd.env("CRMSYNC__LOG__LEVEL", "debug");
        }
        let daemon = Daemon::spawn(cmd);
        daemon.wait_serving();
        daemon
    }

    fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let client = reqwest::blocking::Client::new();
        let mut request = client.request(method, format!("{}{path}", self.sandbox.control()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().expect("control API");
        let status = response.status();
        let text = response.text().unwrap_or_default();
        assert!(status.is_success(), "control API {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Diary items of a user on each side: (CRM appointments, mailbox events, stamps found
    /// on more than one event).
    fn diary(&self, user: &str) -> (usize, usize, Vec<String>) {
        let (associate, mailbox_id, _, _) = &self.users[user];
        let crm = self
            .sandbox
            .get(&format!("/superoffice/associates/{associate}"));
        let crm_items = crm["appointments"].as_array().map_or(0, Vec::len);
        let mailbox = self.sandbox.get(&format!("/graph/mailboxes/{mailbox_id}"));
        let events = mailbox["calendar"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        let mut twice = Vec::new();
        for event in &events {
            for prop in event["singleValueExtendedProperties"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let stamp = prop["id"]
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(STAMP_PROPERTY));
                if let Some(value) = prop["value"].as_str()
                    && stamp
                    && !seen.insert(value.to_string())
                {
                    twice.push(value.to_string());
                }
            }
        }
        (crm_items, events.len(), twice)
    }

    /// Waits until every user in `users` has as many events as CRM appointments (and at
    /// least `at_least`), with no stamp twice.
    fn wait_converged(&self, users: &[&str], at_least: usize, daemons: &[&Daemon]) {
        let deadline = Instant::now() + CONVERGENCE;
        loop {
            let behind: Vec<String> = users
                .iter()
                .filter_map(|u| {
                    let (crm, mailbox, twice) = self.diary(u);
                    assert!(twice.is_empty(), "{u}: duplicated events {twice:?}");
                    (crm != mailbox || crm < at_least)
                        .then(|| format!("{u}: {crm} in the CRM, {mailbox} in the mailbox"))
                })
                .collect();
            if behind.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                for daemon in daemons {
                    let lines = daemon.log.all();
                    let tail = lines.len().saturating_sub(80);
                    eprintln!("daemon {} log:\n{}", daemon.pid(), lines[tail..].join("\n"));
                }
                panic!(
                    "not converged: {}\nrank 1: {:#}\nrank 2: {:#}",
                    behind.join("; "),
                    self.status(1),
                    self.status(2)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn status(&self, rank: u16) -> Value {
        let path = self
            .state()
            .join(format!("rank-{rank}"))
            .join("status.json");
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    /// Waits until `check` holds for `rank`'s status file.
    fn wait_status(&self, rank: u16, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.status(rank);
            if check(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; status:\n{status:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn user_status<'a>(status: &'a Value, user: &str) -> &'a Value {
    status["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["id"] == user))
        .unwrap_or(&Value::Null)
}

fn diary_passes(status: &Value, user: &str) -> u64 {
    user_status(status, user)["kinds"]["diary"]["passes"]
        .as_u64()
        .unwrap_or(0)
}

fn rank_of(request: &Value) -> Option<u16> {
    let client = request["client"].as_str()?;
    let rank = client.split("(rank ").nth(1)?.split(')').next()?;
    rank.parse().ok()
}

fn crmsync_status(config: &Path) -> Value {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["status", "--json"])
        .output()
        .expect("run crmsync status");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "crmsync status --json: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn two_rank_daemons_sync_only_their_own_users_converge_and_survive_a_stop_mid_pass() {
    let mut rig = Rig::start("generated:users=40,events=3,tasks=2,contacts=0,seed=7");
    let mailboxes = rig.mailboxes();
    assert_eq!(mailboxes.len(), 40);
    let mut ids = Vec::new();
    for (i, mailbox) in mailboxes.into_iter().enumerate() {
        let id = format!("u{i:02}");
        let rank = if i % 2 == 0 { 1 } else { 2 };
        rig.add_user(&id, 100_000 + i as u32, mailbox, rank);
        ids.push(id);
    }
    rig.write_registry();
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();

    // Rank 1 gets one second to stop: its pass is cut off between two writes, not finished.
    // The two ranks share the tenant's SuperOffice budget, as an operator sets them up.
    const SHARED: (&str, &str) = ("CRMSYNC__SUPEROFFICE__SHARED_BY_RANKS", "2");
    let mut one = rig.daemon_with(1, &[("CRMSYNC__DAEMON__SHUTDOWN_DEADLINE", "1s"), SHARED]);
    let mut two = rig.daemon_with(2, &[SHARED]);
    rig.wait_converged(&all, 3, &[&one, &two]);

    // Each daemon asked the mail system only about its own users' mailboxes.
    let rank_of_mailbox: BTreeMap<&str, u16> = rig
        .users
        .values()
        .map(|(_, mailbox, _, rank)| (mailbox.as_str(), *rank))
        .collect();
    let log = rig.sandbox.get("/requests?emulator=graph");
    let mut per_rank: BTreeMap<u16, usize> = BTreeMap::new();
    for request in log.as_array().expect("the request log") {
        let Some(mailbox) = request["mailbox"].as_str() else {
            continue;
        };
        let owner = rank_of_mailbox.get(mailbox).copied();
        let asker = rank_of(request);
        assert_eq!(
            asker, owner,
            "a request for mailbox {mailbox} came from rank {asker:?}: {request}"
        );
        *per_rank.entry(owner.unwrap_or(0)).or_default() += 1;
    }
    assert!(per_rank.get(&1).is_some_and(|n| *n > 0), "{per_rank:?}");
    assert!(per_rank.get(&2).is_some_and(|n| *n > 0), "{per_rank:?}");

    // `crmsync status` shows both ranks running with their 20 users each.
    let overview = crmsync_status(&rig.sandbox.config);
    let text = overview.to_string();
    for rank in [1, 2] {
        let status = rig.wait_status(rank, "20 users with passes", |s| {
            s["users"].as_array().is_some_and(|u| {
                u.len() == 20
                    && u.iter()
                        .all(|u| u["state"] == "ok" || u["state"] == "syncing")
            })
        });
        assert_eq!(status["state"], "running", "{status:#}");
    }
    assert!(
        text.contains("\"rank\":1") && text.contains("\"rank\":2"),
        "{overview:#}"
    );

    // Stop rank 1 in the middle of its work: slow answers for its mailboxes and a burst of
    // new appointments, then SIGTERM once it has started creating them.
    let rank_one: Vec<&str> = all.iter().copied().step_by(2).collect();
    let busy = rank_one[0];
    let (associate, busy_mailbox, _, _) = rig.users[busy].clone();
    let slow = rig.control(
        reqwest::Method::POST,
        "/faults",
        Some(json!({"kind": "slow", "delay": 300, "emulator": "graph", "mailbox": busy_mailbox, "probability": 1.0})),
    );
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    for n in 0..12 {
        let from = start + jiff::SignedDuration::from_hours(n);
        rig.control(
            reqwest::Method::POST,
            "/superoffice/appointments",
            Some(json!({
                "associate_id": associate,
                "title": format!("Burst {n}"),
                "when": {"kind": "timed", "start": from.to_string(),
                         "end": (from + jiff::SignedDuration::from_mins(30)).to_string(),
                         "time_zone": "Europe/Oslo"},
            })),
        );
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let creates = rig
            .sandbox
            .get(&format!("/requests?mailbox={busy_mailbox}"))
            .as_array()
            .map_or(0, |r| {
                r.iter()
                    .filter(|q| q["method"] == "POST" && rank_of(q) == Some(1))
                    .count()
            });
        if creates > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "rank 1 never started creating");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(one.stop().code(), Some(0), "{}", one.log.text());
    let cut = rig.diary(busy);
    assert!(
        cut.0 > cut.1,
        "the stop came after the pass had finished: {cut:?}"
    );
    let stopped = rig.status(1);
    assert_eq!(stopped["state"], "stopped", "{stopped:#}");
    let down = crmsync_status(&rig.sandbox.config).to_string();
    assert!(down.contains("stopped"), "{down}");

    if let Some(id) = slow["id"].as_u64() {
        rig.control(reqwest::Method::DELETE, &format!("/faults/{id}"), None);
    }
    let mut one = rig.daemon_with(1, &[SHARED]);
    rig.wait_converged(&all, 3, &[&one, &two]);
    let (crm, mailbox, twice) = rig.diary(busy);
    assert!(
        crm >= 15 && crm == mailbox && twice.is_empty(),
        "{crm} {mailbox} {twice:?}"
    );
    assert_eq!(one.stop().code(), Some(0));
    assert_eq!(two.stop().code(), Some(0));
}

#[test]
fn a_gone_mailbox_fails_its_user_and_a_throttled_one_backs_off_while_the_others_keep_pace() {
    let mut rig = Rig::start("generated:users=6,events=2,tasks=1,contacts=0,seed=11");
    let mailboxes = rig.mailboxes();
    for (i, mailbox) in mailboxes.iter().take(5).enumerate() {
        rig.add_user(&format!("u{i}"), 100_000 + i as u32, mailbox.clone(), 1);
    }
    // The sixth associate's mailbox was deleted in the tenant: the registry still names it.
    rig.add_user(
        "ghost",
        100_005,
        (
            "0d1e2f30-4050-6070-8090-a0b0c0d0e0f0".to_string(),
            "gone@tenant.example".to_string(),
        ),
        1,
    );
    rig.write_registry();
    let hot_mailbox = rig.users["u4"].1.clone();
    rig.control(
        reqwest::Method::POST,
        "/faults",
        Some(json!({"kind": "too_many_requests", "retry_after_secs": 1.0,
                    "emulator": "graph", "mailbox": hot_mailbox, "probability": 1.0})),
    );

    let mut daemon = rig.daemon(1);
    let calm = ["u0", "u1", "u2", "u3"];
    rig.wait_converged(&calm, 2, &[&daemon]);

    let failed = rig.wait_status(1, "ghost failed", |s| {
        user_status(s, "ghost")["state"] == "failed"
    });
    let detail = user_status(&failed, "ghost")["detail"].to_string();
    assert!(!detail.is_empty() && detail != "null", "{failed:#}");

    let throttled = rig.wait_status(1, "u4 backing off", |s| {
        user_status(s, "u4")["state"] == "backing_off"
    });
    assert!(
        user_status(&throttled, "u4")["retry_at"].is_string(),
        "{throttled:#}"
    );
    // Meanwhile the others keep their pace: three more passes each while u4 stays held.
    let before: Vec<u64> = calm.iter().map(|u| diary_passes(&throttled, u)).collect();
    let later = rig.wait_status(1, "three more passes for the calm users", |s| {
        calm.iter()
            .zip(&before)
            .all(|(u, b)| diary_passes(s, u) >= b + 3)
    });
    assert_ne!(user_status(&later, "u4")["state"], "ok", "{later:#}");
    assert_eq!(user_status(&later, "ghost")["state"], "failed");
    let graph = later["throttle"]
        .as_array()
        .and_then(|t| t.iter().find(|s| s["service"] == "graph"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(graph["throttled"].as_u64().unwrap_or(0) > 0, "{later:#}");
    assert!(
        graph["waited_secs"].as_f64().unwrap_or(0.0) > 0.0,
        "{later:#}"
    );

    // `users resume` tries the failed user again at once (it fails again: still gone).
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&rig.sandbox.config)
        .args(["users", "resume", "ghost"])
        .output()
        .expect("run crmsync users resume");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon
        .log
        .wait_for_all(&["resumed by an operator", "user=ghost"]);
    assert_eq!(daemon.stop().code(), Some(0));
}

/// The value of the first sample whose name is `name` and whose labels include `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, v)| v.parse().ok())
}

/// Requests of the sandbox's log since it was last cleared, by service: round trips only
/// (the items of a `$batch` are logged besides it and not counted).
fn round_trips(rig: &Rig) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in rig
        .sandbox
        .get("/requests")
        .as_array()
        .into_iter()
        .flatten()
    {
        if r["batch"].is_null() {
            let service = r["emulator"].as_str().unwrap_or("?").to_string();
            *counts.entry(service).or_default() += 1;
        }
    }
    counts
}

#[test]
fn idle_ticks_cost_one_batch_per_twenty_pairs_and_a_few_crm_reads_and_metrics_show_the_work() {
    const USERS: usize = 40;
    let mut rig = Rig::start("generated:users=40,events=2,tasks=1,contacts=0,seed=5");
    for (i, mailbox) in rig.mailboxes().into_iter().enumerate() {
        rig.add_user(&format!("u{i:02}"), 100_000 + i as u32, mailbox, 1);
    }
    rig.write_registry();
    let ids: Vec<String> = rig.users.keys().cloned().collect();
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut daemon = rig.daemon(1);
    rig.wait_converged(&all, 2, &[&daemon]);
    // Settled: every user ok, a pass of each kind behind it.
    let settled = rig.wait_status(1, "every user ok with both kinds passed", |s| {
        s["users"].as_array().is_some_and(|users| {
            users.len() == USERS
                && users.iter().all(|u| {
                    u["state"] == "ok"
                        && u["kinds"]["diary"]["passes"].as_u64().unwrap_or(0) > 1
                        && u["kinds"]["task"]["passes"].as_u64().unwrap_or(0) > 1
                })
        })
    });

    // Idle ticks: nothing changes anywhere. Count the round trips of several of them.
    rig.control(reqwest::Method::DELETE, "/requests", None);
    let first = rig.status(1)["tick"].as_u64().unwrap_or(0);
    const TICKS: u64 = 5;
    let later = rig.wait_status(1, "five more ticks", |s| {
        s["tick"].as_u64().unwrap_or(0) > first + TICKS
    });
    let ticks = later["tick"].as_u64().unwrap_or(0) - first;
    let trips = round_trips(&rig);
    let pairs = (USERS * 2) as f64;
    let graph = trips.get("graph").copied().unwrap_or(0) as f64 / ticks as f64;
    let crm = trips.get("superoffice").copied().unwrap_or(0) as f64 / ticks as f64;
    eprintln!(
        "idle ticks: {ticks}; per tick: {graph:.1} Graph round trips for {pairs} (user, kind) pairs \
         ({:.1} pairs per round trip), {crm:.1} SuperOffice requests",
        pairs / graph.max(f64::MIN_POSITIVE)
    );
    // One `$batch` per 20 pairs (the last tick may be cut off half-way: one batch of slack),
    // and a constant number of CRM reads per kind, whatever the number of users.
    assert!(
        graph <= (pairs / 20.0).ceil() + 1.0,
        "{graph} Graph round trips per idle tick: {trips:?}"
    );
    assert!(
        crm <= 8.0,
        "{crm} SuperOffice requests per idle tick: {trips:?}"
    );

    // The metrics endpoint shows the work.
    let addr = settled["metrics_addr"]
        .as_str()
        .expect("the status names the metrics address")
        .to_string();
    let text = reqwest::blocking::get(format!("http://{addr}/metrics"))
        .and_then(|r| r.text())
        .expect("scrape /metrics");
    let present = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    assert!(
        present(
            "crmsync_passes_total",
            &[("kind", "diary"), ("result", "ok")]
        ) > 0.0
    );
    assert!(present("crmsync_pass_duration_seconds_count", &[("kind", "diary")]) > 0.0);
    assert!(
        present(
            "crmsync_items_total",
            &[("kind", "diary"), ("operation", "created")]
        ) > 0.0
    );
    present("crmsync_conflicts_total", &[("kind", "diary")]);
    present("crmsync_errors_total", &[("class", "transient")]);
    assert!(present("crmsync_http_requests_total", &[("service", "graph")]) > 0.0);
    assert!(present("crmsync_http_requests_total", &[("service", "superoffice")]) > 0.0);
    present(
        "crmsync_http_throttled_total",
        &[("service", "superoffice")],
    );
    present(
        "crmsync_throttle_wait_seconds_total",
        &[("service", "graph")],
    );
    present("crmsync_limiter_queue_depth", &[("service", "graph")]);
    assert_eq!(present("crmsync_users", &[("state", "ok")]), USERS as f64);
    assert!(present("crmsync_history_size_bytes", &[]) > 0.0);
    assert!(present("crmsync_ticks_total", &[]) > 0.0);
    assert_eq!(daemon.stop().code(), Some(0));
}
