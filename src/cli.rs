//! The command line: parses arguments, runs the command, maps errors to exit codes.
//! The only module that uses `anyhow`; everything below it has its own error types.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Serve emulated SuperOffice and Microsoft Graph APIs on loopback until SIGTERM/SIGINT.
    Sandbox(Box<SandboxArgs>),
}

#[derive(Debug, clap::Args)]
struct SandboxArgs {
    /// Address of the Graph listener; the SuperOffice listeners take the next two ports
    /// (free ports when the port is 0).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7700")]
    listen: std::net::SocketAddr,
    /// "small", "empty", "generated:users=N[,events=N][,tasks=N][,contacts=N][,seed=N]", or a
    /// JSON scenario file.
    #[arg(long, value_name = "NAME|FILE", default_value = "small")]
    scenario: String,
    /// The services' documented limits ("real"), none ("off"), or rates divided by FACTOR
    /// ("scaled:FACTOR").
    #[arg(long, value_name = "real|scaled:FACTOR|off", default_value = "real")]
    limits: crate::sandbox::LimitSpec,
    /// Also write a crmsync configuration for this sandbox (crmsync.toml and secret files) into DIR.
    #[arg(long, value_name = "DIR")]
    write_config: Option<PathBuf>,
    /// The state directory named in the written configuration [default: DIR/state].
    #[arg(long, value_name = "DIR", requires = "write_config")]
    state_dir: Option<PathBuf>,
    /// Print the URLs and credentials as one JSON line instead of text.
    #[arg(long)]
    json: bool,
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
        Ok(()) => exit::OK,
        Err(e) => {
            let code = exit_code(&e);
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "crmsync: {e:#}");
            code
        }
    }
}

async fn serve_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    use crate::sandbox::{Sandbox, SandboxOptions, Scenario};
    let scenario = Scenario::load(&args.scenario, jiff::Timestamp::now())?;
    let sandbox = Sandbox::start(SandboxOptions {
        listen: args.listen,
        scenario,
        limits: args.limits,
    })
    .await?;
    let config = match &args.write_config {
        Some(dir) => {
            let state_dir = match &args.state_dir {
                Some(s) => s.clone(),
                None => std::path::absolute(dir.join("state"))?,
            };
            Some(sandbox.write_config(&std::path::absolute(dir)?, &state_dir)?)
        }
        None => None,
    };
    let urls = sandbox.urls();
    let credentials = sandbox.credentials();
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let line = serde_json::json!({
            "urls": urls,
            "credentials": credentials,
            "scenario": sandbox.state().scenario().name,
            "config": config,
        });
        writeln!(stdout, "{line}")?;
    } else {
        writeln!(
            stdout,
            "crmsync sandbox ({} scenario), until SIGTERM or Ctrl-C\n\n\
             Microsoft Graph       {}\n\
             identity platform     {}  (tenant {}, client id {}, secret {})\n\
             SuperOffice           {}  (context {}, system-user auth; Basic: {} / {})\n\
             SuperOffice tenant    {}\n\
             control API           {}",
            sandbox.state().scenario().name,
            urls.graph,
            urls.authority,
            credentials.graph_tenant_id,
            credentials.graph_client_id,
            credentials.graph_client_secret,
            urls.superoffice,
            credentials.superoffice_context_identifier,
            credentials.superoffice_username,
            credentials.superoffice_password,
            urls.superoffice_tenant,
            urls.control,
        )?;
        if let Some(config) = &config {
            writeln!(stdout, "crmsync configuration {}", config.display())?;
        }
    }
    stdout.flush()?;
    drop(stdout);
    let mut signals = signal_hook_tokio::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    use futures::StreamExt;
    let _ = signals.next().await;
    sandbox.shutdown().await;
    Ok(())
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
        if cause
            .downcast_ref::<crate::sandbox::scenario::ScenarioError>()
            .is_some()
        {
            return exit::USAGE;
        }
    }
    exit::FAILURE
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let load = LoadOptions::from_process(cli.config);
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let loaded = settings::load(&load)?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(loaded.render().as_bytes())?;
            Ok(())
        }
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
            runtime.block_on(serve_sandbox(*args))
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
            Ok(())
        }
    }
}
