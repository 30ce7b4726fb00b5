//! `crmsync sandbox`: the emulators as a process of their own.

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address of the Graph listener; the SuperOffice listeners take the next two ports
    /// (free ports when the port is 0).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7700")]
    pub listen: std::net::SocketAddr,
    /// "small", "empty", "generated:users=N[,events=N][,tasks=N][,contacts=N][,seed=N]", or a
    /// JSON scenario file.
    #[arg(long, value_name = "NAME|FILE", default_value = "small")]
    pub scenario: String,
    /// The services' documented limits ("real"), none ("off"), or rates divided by FACTOR
    /// ("scaled:FACTOR").
    #[arg(long, value_name = "real|scaled:FACTOR|off", default_value = "real")]
    pub limits: crate::sandbox::LimitSpec,
    /// Also write a crmsync configuration for this sandbox (crmsync.toml and secret files) into DIR.
    #[arg(long, value_name = "DIR")]
    pub write_config: Option<PathBuf>,
    /// The state directory named in the written configuration [default: DIR/state].
    #[arg(long, value_name = "DIR", requires = "write_config")]
    pub state_dir: Option<PathBuf>,
    /// Print the URLs and credentials as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn serve(args: SandboxArgs) -> anyhow::Result<()> {
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
