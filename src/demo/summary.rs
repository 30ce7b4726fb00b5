//! The demo's report: what happened, what each side holds, duplicates, conflicts, what crmsync
//! wrote, the requests it made and how often it was throttled, and the time taken; as text a
//! newcomer reads, or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::converge::{Comparison, Difference, Linked};
use super::edits::Edit;
use super::flow::World;
use crate::registry::Kind;
use crate::sandbox::Emulator;

/// How many differences the text shows.
const SHOWN: usize = 25;

/// The set-up: what the panel did and how the daemons run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Setup {
    pub mailboxes_loaded: u64,
    pub auto_linked: u64,
    pub unmatched: Vec<String>,
    pub linked: u64,
    pub interval_secs: f64,
    pub daemon_pids: Vec<(u16, u32)>,
}

/// A wait for convergence.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phase {
    pub converged: bool,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sides {
    pub superoffice: u64,
    pub mailboxes: u64,
}

/// Items written by crmsync, both sides together.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Written {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Where the numbers come from: the daemons' status files or their logs.
    pub source: &'static str,
}

/// Requests one service answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Requests {
    pub service: &'static str,
    pub total: u64,
    /// By client: "rank 1", "rank 2", "admin commands".
    pub by_client: BTreeMap<String, u64>,
    /// Answered 429 Too Many Requests (with `Retry-After`).
    pub throttled: u64,
    pub throttled_by_client: BTreeMap<String, u64>,
    /// Seconds the daemons waited for them, from their status files when they say.
    pub waited_secs: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConflictSeen {
    pub rank: u16,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub setup: Setup,
    pub users_per_rank: BTreeMap<u16, u64>,
    pub first: Phase,
    pub second: Option<Phase>,
    pub edits: Vec<Edit>,
    pub items: BTreeMap<Kind, Sides>,
    pub duplicates: Vec<Difference>,
    pub differences: Vec<Difference>,
    pub conflict_policy: &'static str,
    pub conflicts: Vec<ConflictSeen>,
    pub written: Written,
    pub requests: Vec<Requests>,
    /// How the daemons stopped for the edits, and their pids when started again.
    pub stopped_for_edits: Vec<(u16, String)>,
    pub restarted_pids: Vec<(u16, u32)>,
    pub daemons_stopped: Vec<(u16, String)>,
    pub seconds: f64,
    pub kept: Option<PathBuf>,
}

/// Who sent a request, from its `User-Agent` (a rank daemon names its rank there).
fn client_of(agent: Option<&str>) -> String {
    agent
        .and_then(|a| a.split("(rank ").nth(1))
        .and_then(|r| r.split(')').next())
        .map(|r| format!("rank {r}"))
        .unwrap_or_else(|| "admin commands".into())
}

impl Report {
    pub fn new(setup: Setup, users: &[Linked]) -> Report {
        let mut users_per_rank = BTreeMap::new();
        for u in users {
            *users_per_rank.entry(u.rank).or_default() += 1;
        }
        Report {
            setup,
            users_per_rank,
            conflict_policy: "newest",
            ..Report::default()
        }
    }

    /// Both converged, and nothing is held twice.
    pub fn ok(&self) -> bool {
        self.first.converged
            && self.second.is_some_and(|p| p.converged)
            && self.duplicates.is_empty()
    }

    /// Fills in the final state, the counts and the requests (after the daemons stopped).
    pub fn finish(&mut self, world: &World, _users: &[Linked], comparison: Comparison) {
        for (kind, (crm, mailbox)) in &comparison.counts {
            self.items.insert(
                *kind,
                Sides {
                    superoffice: *crm,
                    mailboxes: *mailbox,
                },
            );
        }
        self.duplicates = comparison.duplicates;
        self.differences = comparison.differences;

        let mut from_logs = Written {
            source: "the daemons' logs",
            ..Written::default()
        };
        for (rank, counts) in world.daemons.counts() {
            from_logs.created += counts.created;
            from_logs.updated += counts.updated;
            from_logs.deleted += counts.deleted;
            self.conflicts.extend(
                counts
                    .conflicts
                    .into_iter()
                    .map(|text| ConflictSeen { rank, text }),
            );
        }
        // The status files, where the daemons write their totals.
        let mut from_status = Written {
            source: "the daemons' status files",
            ..Written::default()
        };
        let mut waited: BTreeMap<String, f64> = BTreeMap::new();
        let mut status_passes = 0;
        for status in world.earlier.iter().cloned().chain(world.rank_statuses()) {
            status_passes += status.totals.passes;
            from_status.created += status.totals.created;
            from_status.updated += status.totals.updated;
            from_status.deleted += status.totals.deleted;
            for t in &status.throttle {
                *waited.entry(t.service.clone()).or_default() += t.waited_secs;
            }
        }
        self.written = if status_passes > 0 {
            from_status
        } else {
            from_logs
        };

        let mut requests: BTreeMap<&'static str, Requests> = BTreeMap::new();
        for r in world.sandbox.state().log.all() {
            let (service, key) = match r.emulator {
                Emulator::Graph => ("Microsoft Graph", "graph"),
                Emulator::SuperOffice => ("SuperOffice", "superoffice"),
            };
            let entry = requests.entry(service).or_insert_with(|| Requests {
                service,
                waited_secs: waited.get(key).copied(),
                ..Requests::default()
            });
            let client = client_of(r.client.as_deref());
            entry.total += 1;
            if r.status == 429 {
                entry.throttled += 1;
                *entry.throttled_by_client.entry(client.clone()).or_default() += 1;
            }
            *entry.by_client.entry(client).or_default() += 1;
        }
        self.requests = requests.into_values().collect();
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_story(&mut out);
        self.render_summary(&mut out);
        out
    }

    fn render_story(&self, out: &mut String) {
        let s = &self.setup;
        let _ = writeln!(
            out,
            "crmsync demo: {} linked users, synced by two rank daemons against the sandbox\n\
             (emulated Microsoft 365 and SuperOffice on this machine, with their documented limits)\n",
            s.linked
        );
        let _ = writeln!(out, "What happened");
        let per_rank: Vec<String> = self
            .users_per_rank
            .iter()
            .map(|(r, n)| format!("{n} on rank {r}"))
            .collect();
        let _ = writeln!(
            out,
            "  panel            {} mailboxes loaded (users load-external); {} users linked by e-mail \
             (users auto-link); saved {} (users save --rank N)",
            s.mailboxes_loaded,
            s.auto_linked,
            per_rank.join(", ")
        );
        for u in &s.unmatched {
            let _ = writeln!(out, "                   not linked: {u}");
        }
        let pids: Vec<String> = s
            .daemon_pids
            .iter()
            .map(|(r, p)| format!("rank {r} (pid {p})"))
            .collect();
        let _ = writeln!(
            out,
            "  daemons          {} (crmsync run --rank N), a pass every {}s",
            pids.join(" and "),
            s.interval_secs
        );
        let phase = |p: &Phase| {
            if p.converged {
                format!("converged in {:.1}s", p.seconds)
            } else {
                format!("NOT converged within {:.0}s", p.seconds)
            }
        };
        let _ = writeln!(out, "  first sync       {}", phase(&self.first));
        let ended = |list: &[(u16, String)]| {
            list.iter()
                .map(|(r, how)| format!("rank {r} {how}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !self.stopped_for_edits.is_empty() {
            let _ = writeln!(
                out,
                "  daemons stopped  {} (SIGTERM, as for an upgrade: the edits below then surely \
                 fall between two passes)",
                ended(&self.stopped_for_edits)
            );
        }
        if !self.edits.is_empty() {
            let _ = writeln!(
                out,
                "  edits            {}, made as users would:",
                self.edits.len()
            );
            for e in &self.edits {
                let _ = writeln!(
                    out,
                    "    {:<11}  {} (rank {}): {}\n                 -> {}",
                    e.side, e.user, e.rank, e.what, e.outcome
                );
            }
        }
        if !self.restarted_pids.is_empty() {
            let pids: Vec<String> = self
                .restarted_pids
                .iter()
                .map(|(r, p)| format!("rank {r} (pid {p})"))
                .collect();
            let _ = writeln!(
                out,
                "  daemons started  {} again, with the history they kept",
                pids.join(" and ")
            );
        }
        if let Some(second) = &self.second {
            let _ = writeln!(out, "  after the edits  {}", phase(second));
        }
        if !self.daemons_stopped.is_empty() {
            let _ = writeln!(out, "  daemons stopped  {}", ended(&self.daemons_stopped));
        }
        let _ = writeln!(out);
    }

    fn render_summary(&self, out: &mut String) {
        let _ = writeln!(out, "Summary");
        let per_rank: Vec<String> = self
            .users_per_rank
            .iter()
            .map(|(r, n)| format!("rank {r}: {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  users linked     {} ({})",
            self.setup.linked,
            per_rank.join(", ")
        );
        let _ = writeln!(
            out,
            "  items            {:>11}  {:>13}",
            "SuperOffice", "Microsoft 365"
        );
        for (kind, sides) in &self.items {
            let _ = writeln!(
                out,
                "    {:<14} {:>11}  {:>13}",
                kind_name(*kind),
                sides.superoffice,
                sides.mailboxes
            );
        }
        let _ = writeln!(out, "  duplicates       {}", self.duplicates.len());
        for d in self.duplicates.iter().take(SHOWN) {
            let _ = writeln!(out, "    - {d}");
        }
        let _ = writeln!(
            out,
            "  conflicts        {} (policy {}: the later change wins, a tie goes to SuperOffice)",
            self.conflicts.len(),
            self.conflict_policy
        );
        for c in &self.conflicts {
            let _ = writeln!(out, "    - rank {}: {}", c.rank, conflict_text(&c.text));
        }
        let w = &self.written;
        let _ = writeln!(
            out,
            "  written          created {}, updated {}, deleted {} (both sides, from {})",
            w.created, w.updated, w.deleted, w.source
        );
        for (i, r) in self.requests.iter().enumerate() {
            let label = if i == 0 { "requests" } else { "" };
            let _ = writeln!(
                out,
                "  {label:<16} {} {} ({})",
                r.service,
                r.total,
                by_client(&r.by_client)
            );
        }
        for (i, r) in self.requests.iter().enumerate() {
            let label = if i == 0 { "throttle waits" } else { "" };
            let mut line = format!(
                "  {label:<16} {} answered 429 Too Many Requests {} times",
                r.service, r.throttled
            );
            if r.throttled > 0 {
                let _ = write!(line, " ({})", by_client(&r.throttled_by_client));
            }
            match r.waited_secs {
                Some(w) => {
                    let _ = write!(
                        line,
                        "; callers waited {w:.1}s in all for quotas and Retry-After"
                    );
                }
                None if r.throttled > 0 => line.push_str("; crmsync waited as told (Retry-After)"),
                None => {}
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "  time             {:.1}s", self.seconds);
        if self.ok() {
            let _ = writeln!(
                out,
                "  result           converged: both sides hold the same items, no duplicates"
            );
        } else {
            let _ = writeln!(
                out,
                "  result           NOT CONVERGED: {} differences, {} duplicates",
                self.differences.len(),
                self.duplicates.len()
            );
            for d in self.differences.iter().take(SHOWN) {
                let _ = writeln!(out, "    - {d}");
            }
            if self.differences.len() > SHOWN {
                let _ = writeln!(out, "    ... and {} more", self.differences.len() - SHOWN);
            }
        }
        if let Some(dir) = &self.kept {
            let _ = writeln!(
                out,
                "  kept             {} (configuration, state, rank-N.log of each daemon)",
                dir.display()
            );
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Diary => "diary items",
        Kind::Task => "to-dos",
        Kind::Contact => "contacts",
    }
}

fn by_client(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A daemon's conflict line, without the long mailbox id and in the services' names:
/// "diary item 17 / AAMk...: both sides changed (REASON); Mailbox side kept".
fn conflict_text(text: &str) -> String {
    let Some((head, rest)) = text.split_once(": both sides changed (") else {
        return text.to_string();
    };
    let item = head.split(" / ").next().unwrap_or(head);
    let (reason, kept) = rest.rsplit_once("); ").unwrap_or((rest, ""));
    let kept = match kept {
        "Mailbox side kept" => "Outlook's version kept on both sides",
        "Crm side kept" => "SuperOffice's version kept on both sides",
        other => other,
    };
    format!("{item} changed on both sides; {reason}: {kept}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_lines_are_told_in_the_services_names() {
        assert_eq!(
            conflict_text(
                "diary item 17 / AAMkAGI2=: both sides changed (policy newest: the mailbox's change is later); Mailbox side kept"
            ),
            "diary item 17 changed on both sides; policy newest: the mailbox's change is later: Outlook's version kept on both sides"
        );
        assert_eq!(conflict_text("something else"), "something else");
    }

    #[test]
    fn requests_are_attributed_to_ranks_by_user_agent() {
        assert_eq!(client_of(Some("crmsync/0.1.0 (rank 2)")), "rank 2");
        assert_eq!(client_of(Some("crmsync/0.1.0")), "admin commands");
        assert_eq!(client_of(None), "admin commands");
    }
}
