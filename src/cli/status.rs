//! `crmsync status`: every rank's status file, whether its daemon runs, its users and passes.
//! Reads files only (never the rank lock), so it works beside running daemons.

use std::fmt::Write as _;
use std::io::Write;

use crate::exit;
use crate::registry::{Kind, Rank};
use crate::runtime::status::{
    self, DaemonState, Liveness, Overview, PassOutcome, RankStatus, RankView, UserState, UserStatus,
};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status: 0 when every rank shown is running or stopped cleanly; 1 when a rank is DOWN \
(its process is gone without a clean stop), STALE (alive, but its status is older than three \
ticks and at least 3 minutes), never started although the registry gives it users, or has an \
unreadable status file, and when --rank names a rank that has neither a directory nor users; 64 usage; 78 configuration \
(including a state directory that does not exist). Scripts can alert on a non-zero status.")]
pub struct StatusArgs {
    /// Only this rank.
    #[arg(long, value_name = "N")]
    pub rank: Option<Rank>,
    /// One JSON document instead of a table (docs/status.md describes it).
    #[arg(long)]
    pub json: bool,
}

/// Prints the status and returns the exit code.
pub fn status(settings: &Settings, args: &StatusArgs) -> anyhow::Result<u8> {
    let now = jiff::Timestamp::now();
    let mut overview = status::overview(&settings.daemon.state_dir, now)?;
    if let Some(wanted) = args.rank {
        let known: Vec<String> = overview.ranks.iter().map(|v| v.rank.to_string()).collect();
        overview.ranks.retain(|v| v.rank == wanted);
        if overview.ranks.is_empty() {
            anyhow::bail!(
                "rank {wanted} has no directory in {} and the registry assigns it no users{}",
                settings.daemon.state_dir.display(),
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (ranks known: {})", known.join(", "))
                }
            );
        }
    }
    if let Some(e) = &overview.registry_error {
        eprintln!(
            "crmsync: warning: the registry cannot be read, so ranks are listed from the state directory alone: {e}"
        );
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&overview)?)?;
    } else {
        out.write_all(render(&overview).as_bytes())?;
    }
    Ok(exit_code(&overview))
}

/// 0 when every rank shown is running or stopped cleanly, else 1.
pub fn exit_code(overview: &Overview) -> u8 {
    if overview.ranks.iter().any(needs_attention) {
        exit::FAILURE
    } else {
        exit::OK
    }
}

/// Down, stale, unreadable, or never started although it has users to sync (a rank without
/// users that never ran is no one's problem).
fn needs_attention(view: &RankView) -> bool {
    view.error.is_some()
        || match view.liveness {
            Liveness::Running | Liveness::Stopped => false,
            Liveness::Stale | Liveness::Down => true,
            Liveness::NeverStarted => view.registry_users != Some(0),
        }
}

/// The table `crmsync status` prints.
pub fn render(overview: &Overview) -> String {
    let now = overview.now;
    let mut out = String::new();
    if overview.ranks.is_empty() {
        let _ = writeln!(
            out,
            "no ranks in {}: no daemon has run there and the registry assigns no users",
            overview.state_dir.display()
        );
        return out;
    }
    for view in &overview.ranks {
        rank_block(&mut out, view, now);
        out.push('\n');
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for view in &overview.ranks {
        let label = liveness_label(view.liveness);
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    let ranks = overview.ranks.len();
    let summary: Vec<String> = counts.iter().map(|(l, n)| format!("{n} {l}")).collect();
    let _ = writeln!(out, "{ranks} rank{}: {}", plural(ranks), summary.join(", "));
    let attention: Vec<String> = overview
        .ranks
        .iter()
        .filter(|v| needs_attention(v))
        .map(|v| format!("rank {} ({})", v.rank, liveness_label(v.liveness)))
        .collect();
    if !attention.is_empty() {
        let _ = writeln!(out, "!! needs attention: {}", attention.join(", "));
    }
    out
}

fn liveness_label(liveness: Liveness) -> &'static str {
    match liveness {
        Liveness::Running => "running",
        Liveness::Stale => "STALE",
        Liveness::Stopped => "stopped",
        Liveness::Down => "DOWN",
        Liveness::NeverStarted => "never started",
    }
}

fn rank_block(out: &mut String, view: &RankView, now: jiff::Timestamp) {
    let status = view.status.as_ref();
    let pid = match (view.liveness, view.pid) {
        (Liveness::NeverStarted, _) | (_, None) => String::new(),
        (_, Some(p)) => format!("  pid {p}"),
    };
    let mark = if matches!(view.liveness, Liveness::Down | Liveness::Stale) {
        "!! "
    } else {
        ""
    };
    let _ = write!(
        out,
        "{mark}rank {}  {}{pid}",
        view.rank,
        liveness_label(view.liveness)
    );
    match (view.liveness, status) {
        (Liveness::Running, Some(s)) if s.state != DaemonState::Running => {
            let _ = write!(out, " ({})", daemon_state(s.state));
        }
        (Liveness::Running, None) => out.push_str(" (starting: no status written yet)"),
        _ => {}
    }
    if let Some(s) = status {
        match view.liveness {
            Liveness::Stopped => {
                let _ = write!(out, "  at {}", when(s.updated_at, now));
            }
            Liveness::Running | Liveness::Stale => {
                let _ = write!(out, "  up {}", span(now.duration_since(s.started_at)));
            }
            // Not up: the banner below says when it was last heard of.
            Liveness::Down | Liveness::NeverStarted => {}
        }
        match s.last_tick_at {
            Some(t) => {
                let _ = write!(out, "  tick {} {}", s.tick, age(t, now));
            }
            None => out.push_str("  no tick yet"),
        }
        let _ = write!(
            out,
            " (every {})",
            span(jiff::SignedDuration::from_secs(
                i64::try_from(s.interval_secs).unwrap_or(i64::MAX)
            ))
        );
        if let Some(addr) = &s.metrics_addr {
            let _ = write!(out, "  metrics {addr}");
        }
    }
    out.push('\n');
    match (view.liveness, status) {
        (Liveness::Down, _) => {
            let _ = writeln!(
                out,
                "!! the process is gone without a clean stop (crashed or killed); what follows is the last known status{}",
                status
                    .map(|s| format!(", written {}", when(s.updated_at, now)))
                    .unwrap_or_default()
            );
        }
        (Liveness::Stale, _) => {
            let _ = writeln!(
                out,
                "!! the process is alive but has not updated its status{}: hung or overloaded; what follows is the last known status",
                status
                    .map(|s| format!(" since {}", when(s.updated_at, now)))
                    .unwrap_or_default()
            );
        }
        (Liveness::NeverStarted, _) => {
            let _ = writeln!(out, "  no status file: its daemon has not written one");
        }
        _ => {}
    }
    if let Some(e) = &view.error {
        let _ = writeln!(out, "!! {e}");
    }
    match status {
        Some(s) => rank_details(out, s, now),
        None => {
            if let Some(n) = view.registry_users {
                let _ = writeln!(out, "  users: {n} in the registry");
            }
        }
    }
}

fn daemon_state(state: DaemonState) -> &'static str {
    match state {
        DaemonState::Starting => "starting",
        DaemonState::Running => "running",
        DaemonState::Stopping => "stopping",
        DaemonState::Stopped => "stopped",
    }
}

const USER_STATES: [UserState; 9] = [
    UserState::Ok,
    UserState::Syncing,
    UserState::BackingOff,
    UserState::Failed,
    UserState::Paused,
    UserState::Disabled,
    UserState::Waiting,
    UserState::Arriving,
    UserState::Leaving,
];

fn user_state(state: UserState) -> &'static str {
    match state {
        UserState::Ok => "ok",
        UserState::Syncing => "syncing",
        UserState::BackingOff => "backing off",
        UserState::Failed => "failed",
        UserState::Paused => "paused",
        UserState::Disabled => "disabled",
        UserState::Waiting => "waiting",
        UserState::Arriving => "arriving",
        UserState::Leaving => "leaving",
    }
}

fn outcome(o: PassOutcome) -> &'static str {
    match o {
        PassOutcome::Ok => "ok",
        PassOutcome::Error => "error",
        PassOutcome::Paused => "paused",
        PassOutcome::Failed => "failed",
    }
}

fn rank_details(out: &mut String, s: &RankStatus, now: jiff::Timestamp) {
    let by_state: Vec<String> = USER_STATES
        .iter()
        .filter_map(|state| {
            let n = s.users.iter().filter(|u| u.state == *state).count();
            (n > 0).then(|| format!("{n} {}", user_state(*state)))
        })
        .collect();
    let _ = write!(out, "  users: {}", s.users.len());
    if !by_state.is_empty() {
        let _ = write!(out, " ({})", by_state.join(", "));
    }
    out.push('\n');
    let t = &s.totals;
    let _ = writeln!(
        out,
        "  since start: {} passes, {} created, {} updated, {} deleted, {} conflicts, {} quarantined, {} errors",
        t.passes, t.created, t.updated, t.deleted, t.conflicts, t.quarantined, t.errors
    );
    let throttle: Vec<String> = s
        .throttle
        .iter()
        .filter(|t| t.throttled > 0 || t.waited_secs > 0.0)
        .map(|t| {
            format!(
                "{} {} time{}, waited {:.1}s",
                t.service,
                t.throttled,
                plural(usize::try_from(t.throttled).unwrap_or(usize::MAX)),
                t.waited_secs
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "  throttled: {}",
        if throttle.is_empty() {
            "never".to_string()
        } else {
            throttle.join("; ")
        }
    );
    if !s.users.is_empty() {
        user_table(out, &s.users, now);
    }
    if !s.errors.is_empty() {
        let _ = writeln!(out, "  last errors (of {}):", s.totals.errors.max(1));
        for e in s.errors.iter().rev().take(3) {
            let who = e
                .user
                .as_ref()
                .map(|id| {
                    s.users
                        .iter()
                        .find(|u| &u.id == id)
                        .map(user_name)
                        .unwrap_or_else(|| id.to_string())
                })
                .unwrap_or_else(|| "rank".into());
            let kind = e.kind.map(|k| format!(" {k}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "    {} {who}{kind} {}: {}",
                age(e.at, now),
                e.class,
                shorten(&e.message, 100)
            );
        }
    }
}

fn user_name(u: &UserStatus) -> String {
    u.login
        .clone()
        .unwrap_or_else(|| u.associate_id.to_string())
}

fn user_table(out: &mut String, users: &[UserStatus], now: jiff::Timestamp) {
    let mut rows = vec![vec![
        "USER".to_string(),
        "MAILBOX".into(),
        "STATE".into(),
        "DIARY".into(),
        "TASK".into(),
        "CONTACT".into(),
        "CREATED".into(),
        "UPDATED".into(),
        "DELETED".into(),
        "CONFLICTS".into(),
    ]];
    for u in users {
        let mut state = user_state(u.state).to_string();
        if let Some(retry) = u.retry_at {
            let _ = write!(state, ", retry {}", age(retry, now));
        } else if let Some(since) = u.since {
            let _ = write!(state, " for {}", span(now.duration_since(since)));
        }
        if let Some(detail) = &u.detail {
            let _ = write!(state, ": {detail}");
        }
        let mut row = vec![user_name(u), u.mailbox.clone(), shorten(&state, 48)];
        for kind in Kind::ALL {
            row.push(match u.kinds.get(&kind) {
                None => "-".into(),
                Some(k) => match (k.last_pass_at, k.last_result) {
                    (Some(at), Some(r)) => format!("{} {}", age(at, now), outcome(r)),
                    (Some(at), None) => age(at, now),
                    (None, _) => "waiting".into(),
                },
            });
        }
        let sum = |f: fn(&status::KindStatus) -> u64| -> String {
            u.kinds.values().map(f).sum::<u64>().to_string()
        };
        row.push(sum(|k| k.created));
        row.push(sum(|k| k.updated));
        row.push(sum(|k| k.deleted));
        row.push(sum(|k| k.conflicts));
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            // The counts are right-aligned, the rest left-aligned.
            if c >= 6 {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// "12s", "3m", "2h", "4d": the largest whole unit.
fn span(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs().unsigned_abs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// "12s ago", or "in 40s" for a time to come.
fn age(at: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let d = now.duration_since(at);
    if d.is_negative() {
        format!("in {}", span(d))
    } else {
        format!("{} ago", span(d))
    }
}

/// "2026-11-20 10:04:00Z (3h ago)".
fn when(at: jiff::Timestamp, now: jiff::Timestamp) -> String {
    format!("{} ({})", at.strftime("%Y-%m-%d %H:%M:%SZ"), age(at, now))
}

/// One line of at most `max` characters.
fn shorten(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        let now = ts("2026-11-20T10:00:00Z");
        assert_eq!(age(ts("2026-11-20T09:59:48Z"), now), "12s ago");
        assert_eq!(age(ts("2026-11-20T09:56:30Z"), now), "3m ago");
        assert_eq!(age(ts("2026-11-20T07:00:00Z"), now), "3h ago");
        assert_eq!(age(ts("2026-11-15T10:00:00Z"), now), "5d ago");
        assert_eq!(age(ts("2026-11-20T10:00:40Z"), now), "in 40s");
    }

    #[test]
    fn long_details_are_cut_to_one_line() {
        assert_eq!(shorten("a\n  b", 10), "a b");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }
}
