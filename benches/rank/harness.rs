//! The rank macro benchmark: one `crmsync run --rank 1` process serving a generated tenant
//! in a `crmsync sandbox` process, measured from outside. Used by `benches/rank/main.rs`
//! (the figures of BENCHMARKS.md) and by `tests/rank_bench.rs` (a small smoke run that only
//! checks that the harness works; it asserts no timing).
//!
//! One run: the sandbox starts with `generated:users=N,...` and the SuperOffice rate given;
//! the users are loaded, auto-linked and saved with the real `crmsync users` commands; the
//! daemon starts, and the initial sync ends when every user has had a pass of every kind and
//! no write has reached the sandbox for two ticks. Then the idle ticks are counted (round
//! trips from the sandbox's request log, CPU from /proc), edits are made on both sides and
//! timed until the other side shows them, the daemon is stopped, started and stopped again,
//! and the history is measured with `crmsync history stats`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_crmsync");

/// What one run does.
#[derive(Debug, Clone)]
pub struct Options {
    pub users: u32,
    pub events: u32,
    pub tasks: u32,
    pub contacts: u32,
    pub seed: u64,
    /// SuperOffice requests per second, in the sandbox and in crmsync's configuration (the
    /// documented 10 makes a 1,000-user initial sync take hours).
    pub superoffice_rate: u32,
    /// The daemon's pass interval.
    pub interval: Duration,
    /// Idle ticks counted.
    pub idle_ticks: u64,
    /// Edits timed, per direction.
    pub edits: usize,
    /// Mailboxes of the `users load-external` measurement (0: skipped).
    pub load_external_mailboxes: u32,
    /// The longest any phase may take before the run is given up.
    pub patience: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    pub users: u32,
    pub pairs: u64,
    pub initial_sync_s: f64,
    /// The quota floor: every pair needs at least one SuperOffice request that nothing can
    /// batch (a CRM item is read in full once, or created once), at the SuperOffice rate;
    /// and, for comparison, the floor of all SuperOffice requests made.
    pub quota_floor_pairs_s: f64,
    pub quota_floor_requests_s: f64,
    pub quota_floor_graph_s: f64,
    pub initial_cpu_s: f64,
    pub cpu_per_item_us: f64,
    pub initial_peak_rss_mib: f64,
    pub graph_requests: u64,
    pub superoffice_requests: u64,
    pub superoffice_writes: u64,
    pub throttled: u64,
    pub idle_graph_round_trips_per_tick: f64,
    pub idle_superoffice_round_trips_per_tick: f64,
    pub idle_cpu_s_per_tick: f64,
    pub idle_peak_rss_mib: f64,
    /// Where the idle ticks' round trips went: route -> round trips per tick.
    pub idle_routes: BTreeMap<String, f64>,
    pub propagation_p50_s: f64,
    pub propagation_p99_s: f64,
    pub propagation_samples: usize,
    pub history_bytes: u64,
    pub history_bytes_per_pair: f64,
    pub load_external_s: Option<f64>,
    pub duplicates: u64,
    pub unpaired_users: u64,
    pub retry_after_violations: u64,
}

/// A failure of the harness (a step that did not work), with what was seen.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, HarnessError>;

fn fail<T>(what: impl Into<String>) -> Result<T> {
    Err(HarnessError(what.into()))
}

/// The sandbox process and its control API.
struct Sandbox {
    child: Child,
    control: String,
    config: PathBuf,
    http: reqwest::blocking::Client,
}

impl Sandbox {
    fn start(dir: &Path, scenario: &str, patience: Duration) -> Result<Sandbox> {
        let mut child = bare_crmsync()
            .args(["sandbox", "--listen", "127.0.0.1:0", "--json"])
            .args(["--scenario", scenario, "--limits", "real"])
            .arg("--write-config")
            .arg(dir)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError(format!("start the sandbox ({BIN}): {e}")))?;
        let Some(stdout) = child.stdout.take() else {
            return fail("the sandbox has no stdout");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(patience)
            .map_err(|_| HarnessError("the sandbox printed no line".into()))?;
        let info: Value = serde_json::from_str(&line)
            .map_err(|e| HarnessError(format!("the sandbox's line {line:?}: {e}")))?;
        let control = info["urls"]["control"]
            .as_str()
            .ok_or_else(|| HarnessError(format!("no control URL in {info}")))?
            .to_string();
        let config = PathBuf::from(info["config"].as_str().unwrap_or_default());
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| HarnessError(e.to_string()))?;
        Ok(Sandbox {
            child,
            control,
            config,
            http,
        })
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.control));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .map_err(|e| HarnessError(format!("control API {path}: {e}")))?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if !status.is_success() {
            return fail(format!("control API {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None)
    }

    /// The documented limits, with SuperOffice at `rate` requests per second.
    fn set_superoffice_rate(&self, rate: u32) -> Result<()> {
        let mut spec = self.get("/limits")?;
        spec["superoffice"] = json!({"requests": rate, "per": "1s"});
        self.call(reqwest::Method::PUT, "/limits", Some(spec))?;
        Ok(())
    }

    fn summary(&self, since: u64) -> Result<Value> {
        self.get(&format!("/requests/summary?since={since}"))
    }

    /// The sequence number of the newest logged request.
    fn last_seq(&self) -> Result<u64> {
        Ok(self.summary(0)?["last_seq"].as_u64().unwrap_or(0))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `crmsync` without the caller's `CRMSYNC_*` variables (crmsync refuses ones it does not
/// read, such as a test's `CRMSYNC_MODEL_CASES`).
fn bare_crmsync() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CRMSYNC_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// `crmsync` with the sandbox's configuration and the benchmark's settings.
fn crmsync(config: &Path, options: &Options) -> Command {
    let mut cmd = bare_crmsync();
    cmd.arg("--config")
        .arg(config)
        .env(
            "CRMSYNC__SYNC__INTERVAL",
            format!("{}ms", options.interval.as_millis()),
        )
        .env(
            "CRMSYNC__SUPEROFFICE__CALLS_PER_SECOND",
            options.superoffice_rate.to_string(),
        )
        .env("CRMSYNC__DAEMON__REGISTRY_POLL_INTERVAL", "1s")
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET");
    cmd
}

fn run_command(cmd: &mut Command, what: &str) -> Result<String> {
    let output = cmd
        .output()
        .map_err(|e| HarnessError(format!("{what}: {e}")))?;
    if !output.status.success() {
        return fail(format!(
            "{what}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The process's CPU seconds (user + system) and peak RSS in MiB, from /proc.
fn cpu_and_peak(pid: u32) -> Result<(f64, f64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| HarnessError(format!("/proc/{pid}/stat: {e}")))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
        return fail(format!("unreadable /proc/{pid}/stat: {stat}"));
    };
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| HarnessError(format!("/proc/{pid}/status: {e}")))?;
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok(((user + system) / clock_ticks(), peak_kib / 1024.0))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resets the process's peak RSS (Linux: `5` into `clear_refs`).
fn reset_peak(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The daemon under measurement.
struct Daemon {
    child: Child,
    status_file: PathBuf,
}

impl Daemon {
    fn start(config: &Path, state: &Path, options: &Options, log: &Path) -> Result<Daemon> {
        let log_file =
            fs::File::create(log).map_err(|e| HarnessError(format!("{}: {e}", log.display())))?;
        let child = crmsync(config, options)
            .args(["run", "--rank", "1"])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| HarnessError(format!("start crmsync run: {e}")))?;
        Ok(Daemon {
            child,
            status_file: state.join("rank-1").join("status.json"),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status(&self) -> Value {
        fs::read_to_string(&self.status_file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    fn stop(&mut self, patience: Duration) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return if status.success() {
                    Ok(())
                } else {
                    fail(format!("crmsync run exited with {status}"))
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        fail("crmsync run did not stop within the grace period")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every user has had a pass of every kind it syncs that began after `after` (the last
/// write): a quiet spell while some users had no pass yet is not the end of the sync.
fn every_user_passed_since(status: &Value, users: u32, after: Option<jiff::Timestamp>) -> bool {
    let Some(list) = status["users"].as_array() else {
        return false;
    };
    let passed = |s: &Value| {
        let at = s["last_pass_at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        s["passes"].as_u64() >= Some(1) && at.is_some() && at >= after
    };
    list.len() as u32 >= users
        && list.iter().all(|u| {
            u["kinds"]
                .as_object()
                .is_some_and(|k| !k.is_empty() && k.values().all(passed))
        })
}

fn pairs_of(status: &Value) -> u64 {
    status["users"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|u| u["kinds"].as_object().into_iter().flatten())
        .filter_map(|(_, k)| k["pairs"].as_u64())
        .sum()
}

fn seconds_between(a: &Value, b: &Value) -> Option<f64> {
    let a: jiff::Timestamp = a.as_str()?.parse().ok()?;
    let b: jiff::Timestamp = b.as_str()?.parse().ok()?;
    Some(b.duration_since(a).as_secs_f64())
}

/// Time the quotas need for `requests` at `rate` per `per` seconds with a full bucket of
/// `rate` at the start.
fn floor_seconds(requests: u64, rate: f64, per: f64) -> f64 {
    ((requests as f64 - rate).max(0.0)) / (rate / per)
}

/// One whole run.
pub fn run(options: &Options) -> Result<Figures> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError(e.to_string()))?;
    let scenario = format!(
        "generated:users={},events={},tasks={},contacts={},seed={}",
        options.users, options.events, options.tasks, options.contacts, options.seed
    );
    let sandbox = Sandbox::start(dir.path(), &scenario, options.patience)?;
    sandbox.set_superoffice_rate(options.superoffice_rate)?;
    let config = sandbox.config.clone();
    let state = dir.path().join("state");

    // The admin's steps, with the real commands.
    run_command(
        crmsync(&config, options).args(["users", "load-external"]),
        "users load-external",
    )?;
    run_command(
        crmsync(&config, options).args(["users", "auto-link"]),
        "users auto-link",
    )?;
    run_command(
        crmsync(&config, options).args([
            "users",
            "save",
            "--rank",
            "1",
            "--diary",
            "on",
            "--task",
            "on",
            "--contact",
            "on",
        ]),
        "users save",
    )?;

    let mut figures = Figures {
        users: options.users,
        ..Figures::default()
    };
    sandbox.call(reqwest::Method::DELETE, "/requests", None)?;
    let started_at = sandbox.get("/clock")?["now"].clone();
    let mut daemon = Daemon::start(&config, &state, options, &dir.path().join("daemon.log"))?;

    // Initial sync: every user passed, then no write for two ticks.
    let deadline = Instant::now() + options.patience;
    let mut last_writes = u64::MAX;
    let mut quiet_since_tick = 0;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let status = daemon.status();
        let summary = sandbox.summary(0)?;
        let writes = summary["graph"]["writes"].as_u64().unwrap_or(0)
            + summary["superoffice"]["writes"].as_u64().unwrap_or(0);
        let tick = status["tick"].as_u64().unwrap_or(0);
        let last_write_at = summary["graph"]["last_write_at"]
            .as_str()
            .max(summary["superoffice"]["last_write_at"].as_str())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        if writes != last_writes {
            last_writes = writes;
            quiet_since_tick = tick;
        } else if tick >= quiet_since_tick + 2
            && every_user_passed_since(&status, options.users, last_write_at)
        {
            let last_write = summary["graph"]["last_write_at"]
                .as_str()
                .max(summary["superoffice"]["last_write_at"].as_str())
                .map(|s| json!(s))
                .unwrap_or(Value::Null);
            figures.initial_sync_s = seconds_between(&started_at, &last_write).unwrap_or(0.0);
            figures.pairs = pairs_of(&status);
            figures.graph_requests = summary["graph"]["requests"].as_u64().unwrap_or(0);
            figures.superoffice_requests = summary["superoffice"]["requests"].as_u64().unwrap_or(0);
            figures.superoffice_writes = summary["superoffice"]["writes"].as_u64().unwrap_or(0);
            figures.throttled = summary["graph"]["throttled"].as_u64().unwrap_or(0)
                + summary["superoffice"]["throttled"].as_u64().unwrap_or(0);
            let rate = f64::from(options.superoffice_rate);
            figures.quota_floor_pairs_s = floor_seconds(figures.pairs, rate, 1.0);
            figures.quota_floor_requests_s = floor_seconds(figures.superoffice_requests, rate, 1.0);
            // Graph: per mailbox 10,000 per 10 minutes; per app 130,000 per 10 seconds.
            let per_mailbox = summary["max_per_mailbox"].as_u64().unwrap_or(0);
            figures.quota_floor_graph_s = floor_seconds(per_mailbox, 10_000.0, 600.0)
                .max(floor_seconds(figures.graph_requests, 130_000.0, 10.0));
            let (cpu, peak) = cpu_and_peak(daemon.pid())?;
            figures.initial_cpu_s = cpu;
            figures.initial_peak_rss_mib = peak;
            if figures.pairs > 0 {
                figures.cpu_per_item_us = cpu * 1e6 / figures.pairs as f64;
            }
            break;
        }
        if Instant::now() > deadline {
            return fail(format!(
                "the initial sync did not finish within {:?}: {} writes so far; status:\n{status:#}",
                options.patience, writes
            ));
        }
    }

    // Idle ticks: nothing changed.
    reset_peak(daemon.pid());
    let seq = sandbox.last_seq()?;
    let first_tick = daemon.status()["tick"].as_u64().unwrap_or(0);
    wait_ticks(&daemon, first_tick + 1, options)?;
    let seq_start = sandbox.last_seq()?.max(seq);
    let (cpu_start, _) = cpu_and_peak(daemon.pid())?;
    wait_ticks(&daemon, first_tick + 1 + options.idle_ticks, options)?;
    let idle = sandbox.summary(seq_start)?;
    let (cpu_end, idle_peak) = cpu_and_peak(daemon.pid())?;
    let ticks = options.idle_ticks.max(1) as f64;
    figures.idle_graph_round_trips_per_tick =
        idle["graph"]["round_trips"].as_f64().unwrap_or(0.0) / ticks;
    figures.idle_superoffice_round_trips_per_tick =
        idle["superoffice"]["round_trips"].as_f64().unwrap_or(0.0) / ticks;
    figures.idle_cpu_s_per_tick = (cpu_end - cpu_start) / ticks;
    figures.idle_peak_rss_mib = idle_peak;
    for side in ["graph", "superoffice"] {
        for (route, n) in idle[side]["routes"].as_object().into_iter().flatten() {
            figures
                .idle_routes
                .insert(route.clone(), n.as_f64().unwrap_or(0.0) / ticks);
        }
    }

    // Propagation: edits on both sides, timed until the other side shows them.
    let latencies = propagation(&sandbox, options)?;
    figures.propagation_samples = latencies.len();
    figures.propagation_p50_s = percentile(&latencies, 0.50);
    figures.propagation_p99_s = percentile(&latencies, 0.99);

    // A clean stop, a restart, a clean stop: then the history is measured.
    daemon.stop(options.patience)?;
    let mut again = Daemon::start(&config, &state, options, &dir.path().join("daemon2.log"))?;
    let deadline = Instant::now() + options.patience;
    while again.status()["pid"].as_u64() != Some(u64::from(again.pid())) {
        if Instant::now() > deadline {
            return fail("the restarted daemon wrote no status");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    again.stop(options.patience)?;
    let stats: Value = serde_json::from_str(&run_command(
        crmsync(&config, options).args(["history", "stats", "--rank", "1", "--json"]),
        "history stats",
    )?)
    .map_err(|e| HarnessError(format!("history stats --json: {e}")))?;
    figures.history_bytes = stats["size_on_disk"].as_u64().unwrap_or(0);
    let pairs: u64 = stats["users"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|u| u["kinds"].as_array().into_iter().flatten())
        .filter_map(|k| k[1]["pairs"].as_u64())
        .sum();
    if pairs > 0 {
        figures.history_bytes_per_pair = figures.history_bytes as f64 / pairs as f64;
    }

    let (duplicates, unpaired) = check_converged(&sandbox)?;
    figures.duplicates = duplicates;
    figures.unpaired_users = unpaired;
    figures.retry_after_violations = sandbox
        .get("/violations")?
        .as_array()
        .map_or(0, |v| v.len() as u64);

    if options.load_external_mailboxes > 0 {
        figures.load_external_s = Some(load_external(options)?);
    }
    Ok(figures)
}

fn wait_ticks(daemon: &Daemon, tick: u64, options: &Options) -> Result<()> {
    let deadline = Instant::now() + options.patience;
    while daemon.status()["tick"].as_u64().unwrap_or(0) < tick {
        if Instant::now() > deadline {
            return fail(format!("the daemon did not reach tick {tick}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * (sorted.len() - 1) as f64).ceil() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A mailbox's events: how many, and those crmsync stamped as (event id, CRM id).
fn events_of(sandbox: &Sandbox, mailbox: &str) -> Result<(usize, Vec<(String, u64)>)> {
    let dump = sandbox.get(&format!("/graph/mailboxes/{mailbox}"))?;
    let property = crmsync::connector::graph::map::STAMP_PROPERTY;
    let events = dump["calendar"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let stamped = events
        .iter()
        .filter_map(|e| {
            let stamp = e["singleValueExtendedProperties"]
                .as_array()?
                .iter()
                .find(|p| {
                    p["id"]
                        .as_str()
                        .is_some_and(|id| id.eq_ignore_ascii_case(property))
                })?;
            let decoded = crmsync::connector::model::Stamp::decode(stamp["value"].as_str()?)?;
            Some((e["id"].as_str()?.to_string(), u64::from(decoded.crm_id.0)))
        })
        .collect();
    Ok((events.len(), stamped))
}

/// Edits `options.edits` events in Outlook and as many appointments in SuperOffice, spread
/// over one interval, and returns how long each took to show on the other side (seconds).
fn propagation(sandbox: &Sandbox, options: &Options) -> Result<Vec<f64>> {
    let mailboxes = sandbox.get("/graph/mailboxes")?;
    let ids: Vec<String> = mailboxes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    if ids.is_empty() || options.edits == 0 {
        return Ok(Vec::new());
    }
    // Pending edits: (made at, mailbox, event, CRM id, subject, edited in Outlook).
    let mut pending: Vec<(Instant, String, String, u64, String, bool)> = Vec::new();
    let spacing = options.interval.as_secs_f64() / (2 * options.edits) as f64;
    for n in 0..2 * options.edits {
        // A different user each time, spread over the tenant.
        let mailbox = &ids[(n * 7919 + options.seed as usize) % ids.len()];
        let (_, events) = events_of(sandbox, mailbox)?;
        let Some((event, crm)) = events.get(n % events.len().max(1)).cloned() else {
            continue;
        };
        let in_outlook = n % 2 == 0;
        let subject = format!("bench edit {n} {}", if in_outlook { "O" } else { "S" });
        if in_outlook {
            sandbox.call(
                reqwest::Method::PATCH,
                &format!("/graph/users/{mailbox}/events/{event}"),
                Some(json!({"subject": subject})),
            )?;
        } else {
            sandbox.call(
                reqwest::Method::PATCH,
                &format!("/superoffice/appointments/{crm}"),
                Some(json!({"title": subject})),
            )?;
        }
        pending.push((
            Instant::now(),
            mailbox.clone(),
            event,
            crm,
            subject,
            in_outlook,
        ));
        std::thread::sleep(Duration::from_secs_f64(spacing));
    }
    let deadline = Instant::now() + options.interval * 3 + Duration::from_secs(30);
    let mut latencies = Vec::new();
    while !pending.is_empty() {
        if Instant::now() > deadline {
            return fail(format!(
                "{} edits did not reach the other side within three intervals",
                pending.len()
            ));
        }
        let mut still = Vec::new();
        for edit in pending {
            let (at, mailbox, event, crm, subject, in_outlook) = &edit;
            let seen = if *in_outlook {
                crm_title(sandbox, *crm)? == *subject
            } else {
                sandbox.get(&format!("/graph/users/{mailbox}/events/{event}"))?["subject"].as_str()
                    == Some(subject.as_str())
            };
            if seen {
                latencies.push(at.elapsed().as_secs_f64());
            } else {
                still.push(edit);
            }
        }
        pending = still;
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(latencies)
}

fn crm_title(sandbox: &Sandbox, crm: u64) -> Result<String> {
    let entity = sandbox.get(&format!("/superoffice/appointments/{crm}"))?;
    Ok(entity["Title"].as_str().unwrap_or_default().to_string())
}

/// Duplicates (a stamp on two events of one mailbox) and users whose diary counts differ.
fn check_converged(sandbox: &Sandbox) -> Result<(u64, u64)> {
    let mailboxes = sandbox.get("/graph/mailboxes")?;
    let mut duplicates = 0;
    let mut unpaired = 0;
    for m in mailboxes.as_array().into_iter().flatten() {
        let Some(id) = m["id"].as_str() else { continue };
        let (all, stamped) = events_of(sandbox, id)?;
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        for (_, crm) in &stamped {
            *seen.entry(*crm).or_default() += 1;
        }
        duplicates += seen.values().filter(|n| **n > 1).count() as u64;
        if all != stamped.len() {
            unpaired += 1;
        }
    }
    Ok((duplicates, unpaired))
}

/// `crmsync users load-external` against a tenant of `options.load_external_mailboxes`
/// mailboxes, in seconds.
fn load_external(options: &Options) -> Result<f64> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError(e.to_string()))?;
    let scenario = format!(
        "generated:users={},events=0,tasks=0,contacts=0,seed={}",
        options.load_external_mailboxes, options.seed
    );
    let sandbox = Sandbox::start(dir.path(), &scenario, options.patience)?;
    let started = Instant::now();
    run_command(
        crmsync(&sandbox.config, options).args(["users", "load-external"]),
        "users load-external",
    )?;
    Ok(started.elapsed().as_secs_f64())
}
