//! The demo's set-up and its phases: the temporary directory, the sandbox and the
//! configuration that points at it, the admin panel's flow through the real `crmsync users`
//! commands, the two rank daemons, and the two waits for convergence around the users' edits.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::converge::{self, Comparison, Linked};
use super::daemons::Daemons;
use super::edits;
use super::summary::{Phase, Report, Setup};
use super::{DemoError, DemoOptions, Progress};
use crate::sandbox::scenario::Generate;
use crate::sandbox::{Sandbox, SandboxOptions, Scenario};

/// The temporary directory: removed when dropped, unless kept.
pub struct WorkDir {
    pub path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create() -> Result<WorkDir, DemoError> {
        use std::os::unix::fs::DirBuilderExt;
        let name = format!("crmsync-demo-{}", uuid::Uuid::new_v4().simple());
        let path = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(DemoError::io(format!(
                "cannot create the demo's directory {}",
                path.display()
            )))?;
        Ok(WorkDir { path, keep: false })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Everything the demo runs.
pub struct World {
    pub dir: WorkDir,
    pub sandbox: Sandbox,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub exe: PathBuf,
    pub daemons: Daemons,
    pub tenant: String,
    pub task_list: String,
    pub contact_folder: String,
    /// The daemons' status files when they were stopped for the edits: their totals count
    /// since each start, so the summary adds these to the final ones.
    pub earlier: Vec<crate::runtime::status::RankStatus>,
}

impl World {
    /// The directory, the sandbox and the configuration.
    pub async fn set_up(options: &DemoOptions, progress: &Progress) -> Result<World, DemoError> {
        progress.update("starting the sandbox");
        let dir = WorkDir::create()?;
        let scenario = Scenario::generate(
            &Generate {
                users: options.users,
                events: options.items,
                tasks: options.items,
                contacts: options.items,
                seed: 7,
            },
            jiff::Timestamp::now(),
        );
        let tenant = scenario.superoffice.context_identifier.clone();
        let sandbox = Sandbox::start(SandboxOptions {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            scenario,
            limits: options.limits.clone(),
        })
        .await?;
        let state_dir = dir.path.join("state");
        std::fs::create_dir_all(&state_dir)
            .map_err(DemoError::io("cannot create the state directory"))?;
        let config = sandbox.write_config(&dir.path.join("config"), &state_dir)?;
        append_settings(&config, options.interval)?;
        progress.done(&format!(
            "sandbox on {} and {}; configuration {}",
            sandbox.urls().graph,
            sandbox.urls().superoffice,
            config.display()
        ));
        Ok(World {
            dir,
            sandbox,
            config,
            state_dir,
            exe: options.exe.clone(),
            daemons: Daemons::default(),
            tenant,
            task_list: "SuperOffice".into(),
            contact_folder: "SuperOffice".into(),
            earlier: Vec::new(),
        })
    }

    /// The status files the two rank daemons wrote (the ones that can be read).
    pub fn rank_statuses(&self) -> Vec<crate::runtime::status::RankStatus> {
        [1u16, 2]
            .into_iter()
            .filter_map(crate::registry::Rank::new)
            .filter_map(|rank| {
                let path = crate::runtime::status::status_path(&self.state_dir, rank);
                crate::runtime::status::RankStatus::read(&path).ok()
            })
            .collect()
    }

    /// Keeps the directory for a look at the logs after a failure.
    pub fn keep_on_failure(&mut self) {
        self.dir.keep = true;
    }

    /// The directory, if it is kept.
    pub fn kept(&mut self, asked: bool) -> Option<PathBuf> {
        self.dir.keep |= asked;
        self.dir.keep.then(|| self.dir.path.clone())
    }

    /// A `crmsync` command as the admin would type it, with this demo's configuration and
    /// none of the caller's crmsync settings.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("--config").arg(&self.config).args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CRMSYNC__") {
                cmd.env_remove(&key);
            }
        }
        for key in [
            "RUST_LOG",
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "CREDENTIALS_DIRECTORY",
            "JOURNAL_STREAM",
        ] {
            cmd.env_remove(key);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs an admin command to its end; its standard output.
    async fn admin(&self, args: &[&str], cancel: &CancellationToken) -> Result<String, DemoError> {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let shown = args.join(" ");
        let child = cmd
            .spawn()
            .map_err(DemoError::io(format!("cannot run `crmsync {shown}`")))?;
        let output = tokio::select! {
            out = child.wait_with_output() => out.map_err(DemoError::io(format!("`crmsync {shown}`")))?,
            _ = cancel.cancelled() => return Err(DemoError::Interrupted),
        };
        if !output.status.success() {
            return Err(DemoError::Command {
                command: shown,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The sync users the panel saved, in the registry's order.
    fn linked(&self) -> Result<Vec<Linked>, DemoError> {
        let registry = crate::registry::store::Store::new(&self.state_dir).registry()?;
        Ok(registry
            .users
            .iter()
            .map(|u| Linked {
                login: u
                    .login
                    .clone()
                    .unwrap_or_else(|| u.associate_id.to_string()),
                associate_id: u.associate_id,
                mailbox: u.mailbox.clone(),
                mailbox_id: u.mailbox_id.clone().unwrap_or_default(),
                rank: u.rank.get(),
            })
            .collect())
    }
}

/// The demo's settings after the sandbox's: a short interval, JSON logs (the demo reads the
/// daemons' pass lines). The sandbox's configuration already puts metrics on free ports.
fn append_settings(config: &Path, interval: Duration) -> Result<(), DemoError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(config)
        .map_err(DemoError::io(format!("cannot extend {}", config.display())))?;
    let text = format!(
        "\n# crmsync demo\n[sync]\ninterval = \"{}ms\"\nconflict_policy = \"newest\"\n\n\
         [log]\nformat = \"json\"\nlevel = \"info\"\n",
        interval.as_millis().max(100)
    );
    file.write_all(text.as_bytes())
        .map_err(DemoError::io(format!("cannot extend {}", config.display())))
}

fn json_of(command: &str, stdout: &str) -> Result<Value, DemoError> {
    serde_json::from_str(stdout.trim()).map_err(|e| DemoError::Output {
        command: command.into(),
        detail: e.to_string(),
    })
}

/// The panel: load the mailboxes, auto-link the first half of the associates and save them on
/// rank 1, then the second half on rank 2.
async fn panel(
    world: &World,
    options: &DemoOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Setup, DemoError> {
    progress.update("crmsync users load-external");
    let loaded = json_of(
        "users load-external",
        &world
            .admin(&["users", "load-external", "--json"], cancel)
            .await?,
    )?;
    let mailboxes = loaded["mailboxes"].as_u64().unwrap_or(0);
    let logins: Vec<String> = (0..options.users).map(|i| format!("U{i:05}")).collect();
    let half = logins.len().div_ceil(2);
    let mut staged = 0;
    let mut unmatched = Vec::new();
    for (rank, group) in [(1u16, &logins[..half]), (2, &logins[half..])] {
        progress.update(&format!(
            "crmsync users auto-link ... && crmsync users save --rank {rank}"
        ));
        let mut args = vec!["users", "auto-link", "--json"];
        args.extend(group.iter().map(String::as_str));
        let linked = json_of("users auto-link", &world.admin(&args, cancel).await?)?;
        staged += linked["staged"].as_array().map_or(0, Vec::len);
        for u in linked["unmatched"].as_array().into_iter().flatten() {
            unmatched.push(format!(
                "{}: {}",
                u["login"].as_str().unwrap_or("?"),
                u["detail"].as_str().unwrap_or("?")
            ));
        }
        let rank = rank.to_string();
        world
            .admin(&["users", "save", "--rank", &rank], cancel)
            .await?;
    }
    progress.done(&format!(
        "panel: {mailboxes} mailboxes loaded, {staged} users auto-linked and saved on ranks 1 and 2"
    ));
    Ok(Setup {
        mailboxes_loaded: mailboxes,
        auto_linked: staged as u64,
        unmatched,
        ..Setup::default()
    })
}

/// Waits until both sides hold the same items (and the edits' expectations hold), a daemon
/// exits, the deadline passes or the demo is cancelled.
async fn wait_converged(
    world: &mut World,
    users: &[Linked],
    expectations: &[edits::Expectation],
    what: &str,
    options: &DemoOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(Phase, Comparison), DemoError> {
    let started = Instant::now();
    loop {
        let comparison = converge::compare(world, users, expectations);
        let in_step = comparison.users_in_step();
        if comparison.converged() {
            let seconds = started.elapsed().as_secs_f64();
            progress.done(&format!("{what}: converged in {seconds:.1}s"));
            return Ok((
                Phase {
                    converged: true,
                    seconds,
                },
                comparison,
            ));
        }
        if started.elapsed() > options.timeout {
            progress.done(&format!(
                "{what}: NOT converged after {}s",
                options.timeout.as_secs()
            ));
            return Ok((
                Phase {
                    converged: false,
                    seconds: started.elapsed().as_secs_f64(),
                },
                comparison,
            ));
        }
        world.daemons.check_running()?;
        progress.update(&format!(
            "{what}: waiting for convergence... {in_step}/{} users in step",
            users.len()
        ));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = cancel.cancelled() => return Err(DemoError::Interrupted),
        }
    }
}

/// Starts (or starts again) the daemons of ranks 1 and 2; their pids.
fn start_daemons(world: &mut World, progress: &Progress) -> Result<Vec<(u16, u32)>, DemoError> {
    progress.update("starting the rank daemons");
    for rank in [1u16, 2] {
        let log = world.dir.path.join(format!("rank-{rank}.log"));
        let mut cmd = world.command(&["run", "--rank", &rank.to_string()]);
        // Two ranks share the one SuperOffice tenant and its 10 calls a second, as an
        // operator configures them (`[superoffice] shared_by_ranks`).
        cmd.env("CRMSYNC__SUPEROFFICE__SHARED_BY_RANKS", "2");
        world.daemons.spawn(rank, cmd, &log)?;
    }
    let pids = world.daemons.pids();
    progress.done(&format!(
        "rank daemons running: {}",
        pids.iter()
            .map(|(r, p)| format!("rank {r} (pid {p})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(pids)
}

/// The phases after the set-up.
pub async fn scenario(
    world: &mut World,
    options: &DemoOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(Report, Vec<Linked>, Comparison), DemoError> {
    let mut setup = panel(world, options, progress, cancel).await?;
    let users = world.linked()?;
    setup.linked = users.len() as u64;
    setup.interval_secs = options.interval.as_secs_f64();

    setup.daemon_pids = start_daemons(world, progress)?;

    let (first, comparison) =
        wait_converged(world, &users, &[], "first sync", options, progress, cancel).await?;
    let mut report = Report::new(setup, &users);
    report.first = first;
    if !first.converged {
        return Ok((report, users, comparison));
    }

    // The edits are made while the daemons are stopped (as during an upgrade), so that both
    // edits of the conflict surely fall between two passes of their user.
    progress.update("stopping the daemons for the users' edits");
    report.stopped_for_edits = world.daemons.stop_all().await;
    world.earlier = world.rank_statuses();
    let round = edits::apply(world, &users, &comparison)?;
    progress.done(&format!("{} edits made as users would", round.len()));
    report.restarted_pids = start_daemons(world, progress)?;
    let expectations: Vec<edits::Expectation> = round.iter().map(|e| e.expect.clone()).collect();
    let (second, comparison) = wait_converged(
        world,
        &users,
        &expectations,
        "after the edits",
        options,
        progress,
        cancel,
    )
    .await?;
    report.second = Some(second);
    report.edits = round;
    Ok((report, users, comparison))
}
