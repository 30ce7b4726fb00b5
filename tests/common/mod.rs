//! The one helper the integration tests drive the real `crmsync` binary through: a temporary
//! state directory and configuration, commands, and daemons whose log lines and systemd
//! notify messages can be waited for.

#![allow(dead_code)]

pub mod scenario;
pub mod shape;
pub mod superoffice;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen within seconds. Generous, so a
/// loaded machine does not fail the test; it only keeps a broken build from hanging.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub const BIN: &str = env!("CARGO_BIN_EXE_crmsync");

/// A state directory and a configuration file in a temporary directory.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A configuration with short intervals, so that tests see ticks and registry polls soon.
    pub fn new() -> Self {
        let sandbox = Sandbox {
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        sandbox.write_config("");
        sandbox
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("crmsync.toml")
    }

    /// Writes the configuration: the test defaults, then `extra` (whole sections).
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "[daemon]\nstate_dir = \"{}\"\nshutdown_deadline = \"20s\"\nregistry_poll_interval = \"200ms\"\n\n\
             [sync]\ninterval = \"1s\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n{extra}",
            self.state_dir().display()
        );
        std::fs::write(self.config_path(), text).expect("write configuration");
    }

    /// A configuration with SuperOffice (basic) and the mail system `contoso`, secrets in
    /// files holding `secret`. The services' URLs point at a closed local port: passes fail
    /// fast and stay on this machine.
    pub fn write_config_with_connections(&self, secret: &str, extra: &str) {
        let graph = self.write("secrets/graph", &format!("{secret}\n"));
        let password = self.write("secrets/so", &format!("{secret}-so\n"));
        self.write_config(&format!(
            "[superoffice]\nbase_url = \"http://127.0.0.1:9/superoffice\"\nauth = \"basic\"\n\
             username = \"crmsync\"\npassword_file = \"{}\"\n\n\
             [mail_systems.contoso]\ntenant_id = \"contoso.onmicrosoft.com\"\n\
             client_id = \"11111111-2222-3333-4444-555555555555\"\nclient_secret_file = \"{}\"\n\
             base_url = \"http://127.0.0.1:9/v1.0\"\nauthority_url = \"http://127.0.0.1:9/login\"\n\n{extra}",
            password.display(),
            graph.display()
        ));
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directory");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Replaces the registry the way the admin commands do: a new file renamed over the old.
    pub fn write_registry(&self, text: &str) {
        std::fs::create_dir_all(self.state_dir()).expect("state directory");
        let tmp = self.state_dir().join(".users.toml.tmp");
        std::fs::write(&tmp, text).expect("write registry");
        std::fs::rename(&tmp, self.state_dir().join("users.toml")).expect("rename registry");
    }

    /// `crmsync --config <this config> ARGS...`, with a clean environment for crmsync.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(self.config_path()).args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("CRMSYNC")
                || matches!(
                    name.as_str(),
                    "RUST_LOG"
                        | "NOTIFY_SOCKET"
                        | "WATCHDOG_USEC"
                        | "WATCHDOG_PID"
                        | "JOURNAL_STREAM"
                        | "CREDENTIALS_DIRECTORY"
                )
            {
                cmd.env_remove(name);
            }
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run crmsync")
    }

    /// Starts `crmsync run --rank N`, collecting its log.
    pub fn daemon(&self, rank: u16, configure: impl FnOnce(&mut Command)) -> Daemon {
        let mut cmd = self.command(&["run", "--rank", &rank.to_string()]);
        configure(&mut cmd);
        Daemon::spawn(cmd)
    }
}

/// `crmsync sandbox` as a process of its own, with a crmsync configuration written for it.
pub struct SandboxProcess {
    pub child: Child,
    pub info: serde_json::Value,
    pub config: PathBuf,
}

impl SandboxProcess {
    /// Starts the sandbox with `scenario`, writing its configuration into `dir` and naming
    /// `state_dir` as crmsync's state directory.
    pub fn start(dir: &Path, state_dir: &Path, scenario: &str) -> SandboxProcess {
        let mut child = Command::new(BIN)
            .args([
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--json",
                "--scenario",
                scenario,
            ])
            .arg("--write-config")
            .arg(dir)
            .arg("--state-dir")
            .arg(state_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("the sandbox prints a line");
        let info: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
        let config = PathBuf::from(info["config"].as_str().expect("config path"));
        SandboxProcess {
            child,
            info,
            config,
        }
    }

    pub fn control(&self) -> String {
        self.info["urls"]["control"]
            .as_str()
            .expect("control URL")
            .to_string()
    }

    /// A GET of the control API.
    pub fn get(&self, path: &str) -> serde_json::Value {
        reqwest::blocking::get(format!("{}{path}", self.control()))
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("control API {path}: {e}"))
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines collected from a stream, waited on with a condition variable.
#[derive(Clone, Default)]
pub struct Lines {
    inner: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Lines {
    pub fn push(&self, line: String) {
        let (lines, changed) = &*self.inner;
        lines.lock().expect("lines").push(line);
        changed.notify_all();
    }

    pub fn all(&self) -> Vec<String> {
        self.inner.0.lock().expect("lines").clone()
    }

    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    /// Waits until a line satisfies `pred`, and returns it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_until(what, |lines| lines.iter().find(|l| pred(l)).cloned())
    }

    /// Waits until `check` finds what it looks for in all the lines so far.
    pub fn wait_until<T>(&self, what: &str, check: impl Fn(&[String]) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        let (lines, changed) = &*self.inner;
        let mut guard = lines.lock().expect("lines");
        loop {
            if let Some(found) = check(&guard) {
                return found;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "gave up waiting for {what}; got:\n{}",
                guard.join("\n")
            );
            guard = changed
                .wait_timeout(guard, deadline - now)
                .expect("lines")
                .0;
        }
    }

    /// Waits for a line containing every one of `fragments`.
    pub fn wait_for_all(&self, fragments: &[&str]) -> String {
        self.wait_for(&format!("a line with {fragments:?}"), |l| {
            fragments.iter().all(|f| l.contains(f))
        })
    }

    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.all().iter().filter(|l| pred(l)).count()
    }
}

/// A running daemon.
pub struct Daemon {
    pub child: Child,
    pub log: Lines,
    status: Option<ExitStatus>,
}

impl Daemon {
    pub fn spawn(mut cmd: Command) -> Daemon {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start crmsync");
        let stderr = child.stderr.take().expect("stderr");
        let log = Lines::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(line) => sink.push(line),
                    Err(_) => break,
                }
            }
        });
        Daemon {
            child,
            log,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for crmsync") {
                self.status = Some(status);
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "crmsync did not exit; log:\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the daemon says it serves.
    pub fn wait_serving(&self) {
        self.log.wait_for_all(&["serving"]);
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fake systemd notify socket: a Unix datagram socket whose messages are collected.
pub struct NotifySocket {
    pub path: PathBuf,
    pub messages: Lines,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        let messages = Lines::default();
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    sink.push(line.to_string());
                }
            }
        });
        NotifySocket { path, messages }
    }
}

/// A registry with the given users (`(id, associate, mailbox, rank)`), all kinds on.
pub fn registry(users: &[(&str, u32, &str, u16)], tombstones: &[(&str, u16)]) -> String {
    let mut text = String::from("version = 1\n");
    for (id, associate, mailbox, rank) in users {
        text.push_str(&format!(
            "\n[[users]]\nid = \"{id}\"\nassociate_id = {associate}\nmailbox = \"{mailbox}\"\n\
             mail_system = \"contoso\"\nrank = {rank}\ndiary = true\ntask = true\ncontact = true\n\
             created = \"2026-11-01T10:00:00Z\"\n"
        ));
    }
    for (id, rank) in tombstones {
        text.push_str(&format!(
            "\n[[tombstones]]\nid = \"{id}\"\nrank = {rank}\nremoved = \"2026-11-02T10:00:00Z\"\n"
        ));
    }
    text
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Where a user's history waits between ranks (as `registry::handoff_path` names it).
pub fn registry_handoff(state_dir: &Path, user: &str) -> PathBuf {
    crmsync::registry::handoff_path(
        state_dir,
        &crmsync::registry::SyncUserId::parse(user).expect("a user id"),
    )
}
