//! The rank macro benchmark (BENCHMARKS.md, "Rank of 1,000 users"):
//!
//! ```text
//! cargo bench --bench rank -- [--users 1000] [--events 200] [--tasks 50] [--contacts 100]
//!     [--seed 1] [--runs 3] [--superoffice-rate 100] [--interval 60] [--idle-ticks 3]
//!     [--edits 20] [--load-external 20000] [--out target/rank-bench.json]
//! ```
//!
//! Each run starts a `crmsync sandbox` process with a generated tenant, saves its users to
//! rank 1 and measures one `crmsync run --rank 1` process from outside (`harness.rs`). The
//! table gives the median of the runs beside each goal.

mod harness;

use std::time::Duration;

use harness::{Figures, Options};

fn main() {
    let options = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rank bench: {e}");
            std::process::exit(2);
        }
    };
    let (options, runs, out) = options;
    eprintln!(
        "rank bench: {} users x ({} events, {} tasks, {} contacts), SuperOffice at {}/s, \
         interval {:?}, {runs} run(s)",
        options.users,
        options.events,
        options.tasks,
        options.contacts,
        options.superoffice_rate,
        options.interval
    );
    let mut all = Vec::new();
    for n in 1..=runs {
        match harness::run(&options) {
            Ok(f) => {
                eprintln!("run {n}: {f:?}");
                all.push(f);
            }
            Err(e) => {
                eprintln!("rank bench: run {n} failed: {e}");
                std::process::exit(1);
            }
        }
    }
    print_table(&options, &all);
    let report = serde_json::json!({
        "users": options.users,
        "events": options.events,
        "tasks": options.tasks,
        "contacts": options.contacts,
        "seed": options.seed,
        "superoffice_rate": options.superoffice_rate,
        "interval_s": options.interval.as_secs_f64(),
        "runs": all,
    });
    if let Err(e) = std::fs::write(&out, format!("{report:#}\n")) {
        eprintln!("rank bench: {out}: {e}");
    } else {
        eprintln!("rank bench: every run's figures in {out}");
    }
}

type Parsed = (Options, usize, String);

fn parse(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut o = Options {
        users: 1000,
        events: 200,
        tasks: 50,
        contacts: 100,
        seed: 1,
        superoffice_rate: 100,
        interval: Duration::from_secs(60),
        idle_ticks: 3,
        edits: 20,
        load_external_mailboxes: 20_000,
        patience: Duration::from_secs(4 * 3600),
    };
    let mut runs = 3;
    let mut out = "target/rank-bench.json".to_string();
    while let Some(arg) = args.next() {
        // `cargo bench` adds `--bench`.
        if arg == "--bench" {
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{arg} {value:?}: not a whole number"))
        };
        match arg.as_str() {
            "--users" => o.users = number()? as u32,
            "--events" => o.events = number()? as u32,
            "--tasks" => o.tasks = number()? as u32,
            "--contacts" => o.contacts = number()? as u32,
            "--seed" => o.seed = number()?,
            "--runs" => runs = number()? as usize,
            "--superoffice-rate" => o.superoffice_rate = number()?.max(1) as u32,
            "--interval" => o.interval = Duration::from_secs(number()?.max(1)),
            "--idle-ticks" => o.idle_ticks = number()?.max(1),
            "--edits" => o.edits = number()? as usize,
            "--load-external" => o.load_external_mailboxes = number()? as u32,
            "--out" => out = value,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok((o, runs.max(1), out))
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_table(options: &Options, runs: &[Figures]) {
    let m = |f: fn(&Figures) -> f64| median(runs.iter().map(f));
    let floor = m(|f| f.quota_floor_pairs_s.max(f.quota_floor_graph_s));
    let initial = m(|f| f.initial_sync_s);
    let interval = options.interval.as_secs_f64();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "\n| figure | goal | median of {} run(s) | |\n|---|---|---|---|",
        runs.len()
    );
    println!(
        "| initial sync, {} users | <= 1.15 x quota floor ({:.0} s: one SuperOffice request per pair, {:.0} pairs at {}/s; all {:.0} requests made: {:.0} s) | {:.0} s ({:.2} x) | {} |",
        options.users,
        floor,
        m(|f| f.pairs as f64),
        options.superoffice_rate,
        m(|f| f.superoffice_requests as f64),
        m(|f| f.quota_floor_requests_s),
        initial,
        if floor > 0.0 { initial / floor } else { 0.0 },
        verdict(initial <= 1.15 * floor)
    );
    let cpu = m(|f| f.cpu_per_item_us);
    println!(
        "| daemon CPU per item, initial sync | <= 50 us | {cpu:.0} us ({:.1} s for {:.0} pairs) | {} |",
        m(|f| f.initial_cpu_s),
        m(|f| f.pairs as f64),
        verdict(cpu <= 50.0)
    );
    let (g, s, c) = (
        m(|f| f.idle_graph_round_trips_per_tick),
        m(|f| f.idle_superoffice_round_trips_per_tick),
        m(|f| f.idle_cpu_s_per_tick),
    );
    println!(
        "| idle tick | <= 150 Graph, <= 10 SuperOffice round trips, <= 0.3 CPU s | {g:.0} Graph, {s:.0} SuperOffice, {c:.2} CPU s | {} |",
        verdict(g <= 150.0 && s <= 10.0 && c <= 0.3)
    );
    let p99 = m(|f| f.propagation_p99_s);
    println!(
        "| propagation p99, interval {interval:.0} s | <= {:.0} s | {p99:.1} s (p50 {:.1} s, {:.0} edits) | {} |",
        interval + 5.0,
        m(|f| f.propagation_p50_s),
        m(|f| f.propagation_samples as f64),
        verdict(p99 <= interval + 5.0)
    );
    let (rss_sync, rss_idle) = (m(|f| f.initial_peak_rss_mib), m(|f| f.idle_peak_rss_mib));
    println!(
        "| peak RSS, initial sync / idle | <= 150 / 64 MiB | {rss_sync:.0} / {rss_idle:.0} MiB | {} |",
        verdict(rss_sync <= 150.0 && rss_idle <= 64.0)
    );
    let per_pair = m(|f| f.history_bytes_per_pair);
    println!(
        "| history on disk after a clean restart | <= 400 bytes per pair | {per_pair:.0} bytes ({:.1} MB) | {} |",
        m(|f| f.history_bytes as f64) / 1e6,
        verdict(per_pair <= 400.0)
    );
    if runs.iter().any(|f| f.load_external_s.is_some()) {
        let load = m(|f| f.load_external_s.unwrap_or(0.0));
        println!(
            "| users load-external, {} mailboxes | < 10 s | {load:.1} s | {} |",
            options.load_external_mailboxes,
            verdict(load < 10.0)
        );
    }
    if let Some(first) = runs.first() {
        let mut routes: Vec<(&String, &f64)> = first.idle_routes.iter().collect();
        routes.sort_by(|a, b| b.1.total_cmp(a.1));
        eprintln!("idle round trips per tick by route (run 1):");
        for (route, n) in routes.iter().take(12) {
            eprintln!("  {n:8.1}  {route}");
        }
    }
    println!(
        "| correctness | 0 | {:.0} duplicates, {:.0} users with unstamped events, {:.0} Retry-After violations, {:.0} answers 429 | |",
        m(|f| f.duplicates as f64),
        m(|f| f.unpaired_users as f64),
        m(|f| f.retry_after_violations as f64),
        m(|f| f.throttled as f64)
    );
}
