//! `crmsync demo`: the sandbox, the panel, two rank daemons, a round of edits, a summary.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::demo::{self, DemoOptions, Progress};
use crate::exit;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Linked users; the first half is synced by rank 1, the rest by rank 2.
    #[arg(long, value_name = "N", default_value_t = 8)]
    users: u32,
    /// Diary items, to-dos and contacts per user (diary items and to-dos start half in
    /// SuperOffice, half in the mailbox).
    #[arg(long, value_name = "N", default_value_t = 6)]
    items: u32,
    /// How long each wait for convergence may take.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The daemons' [sync] interval.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// The sandbox's limits: the services' documented ones ("real"), none ("off"), or rates
    /// divided by FACTOR ("scaled:FACTOR").
    #[arg(long, value_name = "real|scaled:FACTOR|off", default_value = "real")]
    limits: crate::sandbox::LimitSpec,
    /// Keep the temporary directory (configuration, state directory, the daemons' logs) and
    /// print its path. It is always kept when the demo fails.
    #[arg(long)]
    keep: bool,
    /// Print the report as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the demo; 0 when both sides converged with no duplicate, else 1.
pub fn demo(args: DemoArgs) -> anyhow::Result<u8> {
    let exe = std::env::current_exe()?;
    let options = DemoOptions {
        users: args.users,
        items: args.items,
        timeout: args.timeout,
        interval: args.interval,
        keep: args.keep,
        limits: args.limits,
        exe,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("crmsync-demo")
        .build()?;
    let report = runtime.block_on(async {
        let cancel = CancellationToken::new();
        // Ctrl-C, SIGTERM or SIGHUP: stop the daemons, then exit 1 (no orphans).
        let mut signals = signal_hook_tokio::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ])?;
        let on_signal = cancel.clone();
        let watcher = tokio::spawn(async move {
            if signals.next().await.is_some() {
                on_signal.cancel();
            }
        });
        let progress = Progress::new();
        let report = demo::run(&options, &progress, &cancel).await;
        watcher.abort();
        anyhow::Ok(report?)
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(stdout, "{}", report.render())?;
    }
    stdout.flush()?;
    Ok(if report.ok() { exit::OK } else { exit::FAILURE })
}
