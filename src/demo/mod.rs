//! `crmsync demo`: the whole product on one machine in well under a minute. It starts the
//! sandbox (emulated Microsoft Graph and SuperOffice, with their documented limits) in this
//! process, writes a configuration and a state directory into a temporary directory, runs the
//! admin panel's flow with the real `crmsync users` commands (load-external, auto-link, save
//! half the users on rank 1 and half on rank 2), runs two real rank daemons as child
//! processes, waits until both sides hold the same items, makes a round of edits as users
//! would (on both sides, with a conflict and deletes), waits again, stops the daemons and
//! reports.
//!
//! The comparison reads the emulators' own state, not crmsync's clients: what the demo
//! calls converged is what the services hold. `flow.rs` is the set-up and the panel,
//! `daemons.rs` the child processes, `converge.rs` the comparison, `edits.rs` the users'
//! edits, `summary.rs` the report.

mod converge;
mod daemons;
mod edits;
mod flow;
mod summary;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use summary::Report;

/// What the demo does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Linked users (half on rank 1, half on rank 2).
    pub users: u32,
    /// Diary items, to-dos and contacts per user (each kind; diary items and to-dos half in
    /// the CRM and half in the mailbox).
    pub items: u32,
    /// How long each convergence may take before the demo gives up.
    pub timeout: Duration,
    /// The daemons' `[sync] interval`.
    pub interval: Duration,
    /// Keep the temporary directory (configuration, state, the daemons' logs).
    pub keep: bool,
    /// The sandbox's limits.
    pub limits: crate::sandbox::LimitSpec,
    /// The crmsync binary to run for the admin commands and the daemons.
    pub exe: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot start the sandbox: {0}")]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`crmsync {command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`crmsync {command}` printed something unexpected: {detail}")]
    Output { command: String, detail: String },
    #[error("the registry the panel wrote cannot be read: {0}")]
    Registry(#[from] crate::registry::store::StoreError),
    #[error("the rank {rank} daemon exited early ({status}); its last log lines:\n{tail}")]
    DaemonExited {
        rank: u16,
        status: String,
        tail: String,
    },
    #[error("a user's edit in the sandbox was refused: {0}")]
    Edit(String),
    #[error("interrupted")]
    Interrupted,
}

impl DemoError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
        let what = what.into();
        move |source| DemoError::Io { what, source }
    }
}

/// Progress lines on standard error, only when it is a terminal: one line that is rewritten
/// while a phase runs, and kept when the phase is done.
pub struct Progress {
    tty: bool,
    started: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    fn prefix(&self) -> String {
        format!("[{:>3}s]", self.started.elapsed().as_secs())
    }

    /// Rewrites the current line.
    pub fn update(&self, text: &str) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{} {text}", self.prefix());
            let _ = err.flush();
        }
    }

    /// Finishes the current line with `text`.
    pub fn done(&self, text: &str) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "\r\x1b[K{} {text}", self.prefix());
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// Runs the demo; the report says whether both sides converged. `cancel` interrupts it
/// (the daemons are still stopped). An `Err` is a demo that could not run at all.
pub async fn run(
    options: &DemoOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Report, DemoError> {
    if options.users < 2 {
        return Err(DemoError::Usage(
            "--users must be at least 2 (half of them go to each rank)".into(),
        ));
    }
    if !(2..=200).contains(&options.items) {
        return Err(DemoError::Usage(
            "--items must be from 2 to 200 (the edits need two diary items per user)".into(),
        ));
    }
    if options.users > 500 {
        return Err(DemoError::Usage("--users must be at most 500".into()));
    }
    let started = Instant::now();
    let mut world = flow::World::set_up(options, progress).await?;
    let result = flow::scenario(&mut world, options, progress, cancel).await;
    let stopped = world.daemons.stop_all().await;
    progress.done("daemons stopped");
    let mut report = match result {
        Ok((mut report, users, comparison)) => {
            report.finish(&world, &users, comparison);
            report
        }
        Err(DemoError::Interrupted) => return Err(DemoError::Interrupted),
        Err(e) => {
            world.keep_on_failure();
            if let Some(dir) = world.kept(false) {
                eprintln!(
                    "crmsync demo: kept {} (configuration, state, each daemon's rank-N.log)",
                    dir.display()
                );
            }
            return Err(e);
        }
    };
    report.daemons_stopped = stopped;
    report.seconds = started.elapsed().as_secs_f64();
    if !report.ok() {
        world.keep_on_failure();
    }
    report.kept = world.kept(options.keep);
    Ok(report)
}
