//! The command line: parses arguments, runs the command, maps errors to exit codes.
//! The only module that uses `anyhow`; everything below it has its own error types.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod demo;
mod history;
mod sandbox;
mod status;
mod users;

use crate::exit;
use crate::logging::{self, LogError};
use crate::registry::Rank;
use crate::runtime::{self, Reloader, RunError};
use crate::settings::{self, LoadOptions, SettingsError};

#[derive(Debug, Parser)]
#[command(
    name = "crmsync",
    version,
    about = "Keeps SuperOffice CRM and Exchange Online mailboxes in sync, one daemon per rank."
)]
struct Cli {
    /// Configuration file [default: /etc/crmsync/crmsync.toml, which may be absent].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sync daemon of one rank until SIGTERM or SIGINT (SIGHUP reloads).
    Run {
        /// The rank to serve, 1 to 999: only sync users of this rank are synced.
        #[arg(long, value_name = "N")]
        rank: Rank,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect a rank's sync history.
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// Show every rank: whether its daemon runs, its users, last passes, counts, errors and
    /// throttling. Exits 1 when a rank is down or stale (see --help).
    Status(status::StatusArgs),
    /// Try crmsync on this machine: the sandbox, the admin panel, two rank daemons, a round of
    /// users' edits, and a summary. Exits 0 when both sides converged without duplicates.
    Demo(demo::DemoArgs),
    /// Serve emulated SuperOffice and Microsoft Graph APIs on loopback until SIGTERM/SIGINT.
    Sandbox(Box<sandbox::SandboxArgs>),
    /// Link associates to mailboxes and manage the sync users (the admin panel).
    Users(users::UsersArgs),
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Pairs per kind, open intents and the last cursor of each user (a stopped rank).
    Stats(history::StatsArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets shown as <redacted>), or its problems.
    Check,
}

/// Runs the command line of this process and returns its exit code.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "crmsync: {e:#}");
            code
        }
    }
}

/// The exit code for an error: the first error in the chain that has one decides.
fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.downcast_ref::<SettingsError>().is_some()
            || cause.downcast_ref::<LogError>().is_some()
        {
            return exit::CONFIG;
        }
        if let Some(e) = cause.downcast_ref::<RunError>() {
            return e.exit_code();
        }
        if let Some(code) = users::exit_code(cause) {
            return code;
        }
        if let Some(crate::runtime::status::StatusError::NoStateDir { .. }) = cause.downcast_ref() {
            return exit::CONFIG;
        }
        if cause
            .downcast_ref::<crate::sandbox::scenario::ScenarioError>()
            .is_some()
        {
            return exit::USAGE;
        }
        if let Some(crate::demo::DemoError::Usage(_)) = cause.downcast_ref() {
            return exit::USAGE;
        }
    }
    exit::FAILURE
}

/// Runs the command; its exit code when it did not fail (`status` reports through it).
fn run(cli: Cli) -> anyhow::Result<u8> {
    let load = LoadOptions::from_process(cli.config);
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let loaded = settings::load(&load)?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(loaded.render().as_bytes())?;
            Ok(exit::OK)
        }
        Command::History {
            command: HistoryCommand::Stats(args),
        } => {
            let loaded = settings::load(&load)?;
            history::stats(&loaded.settings, &args)?;
            Ok(exit::OK)
        }
        Command::Status(args) => {
            let loaded = settings::load(&load)?;
            status::status(&loaded.settings, &args)
        }
        Command::Users(args) => {
            let loaded = settings::load(&load)?;
            users::run(&loaded.settings, args)?;
            Ok(exit::OK)
        }
        Command::Demo(args) => demo::demo(args),
        Command::Sandbox(args) => {
            let logging = crate::settings::LogSettings {
                format: crate::settings::LogFormat::Text,
                level: "info".to_string(),
            };
            logging::init(&logging, None)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("crmsync-sandbox")
                .build()?;
            runtime.block_on(sandbox::serve(*args))?;
            Ok(exit::OK)
        }
        Command::Run { rank } => {
            let loaded = settings::load(&load)?;
            let logging = logging::init(&loaded.settings.log, Some(rank))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("crmsync")
                .build()?;
            let reloader = Reloader {
                load,
                logging: Some(logging),
            };
            runtime.block_on(runtime::run_rank(rank, loaded.settings, reloader))?;
            Ok(exit::OK)
        }
    }
}
