//! Remove Selected Users: the sync user leaves the registry, a tombstone stays until exactly
//! its history is deleted, by this command (no daemon holds the rank) or by the rank's daemon
//! (which leaves a `dropped` note that this command waits for).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::output::{confirm, count, interactive};
use super::ranks::{self, RankState, Ranks, daemon_name};
use super::{Ctx, UsersError};
use crate::registry::{Rank, SyncUser, SyncUserId, Tombstone, dropped_path, handoff_path, resolve};

/// What became of a user's history in one rank.
enum Outcome {
    DeletedHere { existed: bool },
    NotHere,
    ByDaemon { holder: Option<u32> },
    DeletedByDaemon,
    NotConfirmed { holder: Option<u32> },
}

fn describe(rank: Rank, outcome: &Outcome, wait: Duration) -> String {
    match outcome {
        Outcome::DeletedHere { existed: true } => {
            format!("history deleted by this command (rank {rank})")
        }
        Outcome::DeletedHere { existed: false } => {
            format!("rank {rank} held no history for it; nothing else to delete")
        }
        Outcome::NotHere => format!("rank {rank} has never run on this host: no history here"),
        Outcome::DeletedByDaemon => format!("history deleted by the rank {rank} daemon"),
        Outcome::ByDaemon { holder } | Outcome::NotConfirmed { holder } => format!(
            "{} has not confirmed the deletion within {}: the tombstone stays, the daemon deletes \
             the history when it gets to it, and a later `crmsync users` command tidies up",
            daemon_name(rank, *holder),
            humantime::format_duration(wait)
        ),
    }
}

fn label(u: &SyncUser) -> String {
    format!(
        "{} ({}) <-> {}, rank {}",
        u.login.as_deref().unwrap_or("?"),
        u.associate_id,
        u.mailbox,
        u.rank
    )
}

pub async fn remove(
    ctx: &Ctx<'_>,
    queries: &[String],
    yes: bool,
    wait: Duration,
) -> anyhow::Result<()> {
    let state_dir = ctx.store.state_dir().to_path_buf();
    let registry = ctx.store.registry()?;
    let pending = ctx.store.pending()?;
    let targets: Vec<SyncUser> = resolve::saved_users(&registry, &pending, queries)?
        .into_iter()
        .map(|i| registry.users[i].clone())
        .collect();
    if !yes {
        if !interactive() {
            return Err(UsersError::Usage(
                "`crmsync users remove` asks for confirmation, and this is not a terminal: pass \
                 --yes to remove without asking; nothing was removed"
                    .into(),
            )
            .into());
        }
        let mut err = std::io::stderr().lock();
        for u in &targets {
            writeln!(err, "  {} (sync user {})", label(u), u.id)?;
        }
        writeln!(
            err,
            "Removing deletes each user's sync history. Adding a user again later starts from an \
             empty history (its items are matched again by their stamps)."
        )?;
        drop(err);
        if !confirm(&format!(
            "Remove {}?",
            count(targets.len(), "sync user", "sync users")
        ))? {
            eprintln!("nothing removed");
            return Ok(());
        }
    }

    let lock = ctx.lock()?;
    let mut registry = ctx.store.registry()?;
    let swept = ranks::sweep(&state_dir, &mut registry);
    // Another command may have changed them since they were shown: remove them as they are now.
    let mut current = Vec::new();
    for t in &targets {
        match registry.users.iter().find(|u| u.id == t.id) {
            Some(u) => current.push(u.clone()),
            None => {
                return Err(UsersError::Temporary(format!(
                    "sync user {} ({}) was removed by another command meanwhile; nothing was removed",
                    t.id,
                    label(t)
                ))
                .into());
            }
        }
    }
    let targets = current;
    let removed = jiff::Timestamp::now();
    // Every rank that may hold a user's history: its own, and the rank it moved from while
    // that rank's daemon may not have handed it over yet.
    let mut places: Vec<(SyncUserId, Rank)> = Vec::new();
    for t in &targets {
        registry.users.retain(|u| u.id != t.id);
        places.push((t.id.clone(), t.rank));
        if let Some(from) = t.moved_from
            && from != t.rank
            && !handoff_path(&state_dir, &t.id).exists()
        {
            places.push((t.id.clone(), from));
        }
    }
    for (id, rank) in &places {
        registry.tombstones.push(Tombstone {
            id: id.clone(),
            rank: *rank,
            removed,
        });
    }
    let mut ranks = Ranks::new(ctx.settings);
    let mut outcomes: BTreeMap<(SyncUserId, Rank), Outcome> = BTreeMap::new();
    for (id, rank) in &places {
        let outcome = match ranks.get(*rank)? {
            RankState::Held { holder } => Outcome::ByDaemon { holder: *holder },
            RankState::Free { .. } => Outcome::DeletedHere { existed: false },
            RankState::Absent => Outcome::NotHere,
        };
        outcomes.insert((id.clone(), *rank), outcome);
    }
    // The tombstones are on disk before any history goes: a crash from here on leaves them
    // for the daemons.
    ranks::write(&lock, &registry, &swept)?;
    let mut done_here = false;
    for ((id, rank), outcome) in outcomes.iter_mut() {
        match outcome {
            Outcome::DeletedHere { existed } => {
                *existed = ranks.drop_user(*rank, id).await?;
            }
            Outcome::NotHere => {}
            _ => continue,
        }
        registry
            .tombstones
            .retain(|t| !(t.id == *id && t.rank == *rank));
        done_here = true;
    }
    if done_here {
        ranks::write(&lock, &registry, &[])?;
        for t in &targets {
            if !registry.tombstones.iter().any(|k| k.id == t.id) {
                let _ = std::fs::remove_file(handoff_path(&state_dir, &t.id));
            }
        }
    }
    drop(ranks);
    drop(lock);

    wait_for_daemons(ctx, &mut outcomes, wait).await?;

    let mut out = std::io::stdout().lock();
    for t in &targets {
        let what: Vec<String> = outcomes
            .iter()
            .filter(|((id, _), _)| *id == t.id)
            .map(|((_, rank), o)| describe(*rank, o, wait))
            .collect();
        writeln!(out, "removed {}: {}", label(t), what.join("; "))?;
    }
    Ok(())
}

/// Waits for the `dropped` notes of the ranks whose daemon deletes the history, then removes
/// their tombstones (and the notes) under the lock.
async fn wait_for_daemons(
    ctx: &Ctx<'_>,
    outcomes: &mut BTreeMap<(SyncUserId, Rank), Outcome>,
    wait: Duration,
) -> anyhow::Result<()> {
    let state_dir = ctx.store.state_dir().to_path_buf();
    let deadline = Instant::now() + wait;
    loop {
        let mut noted = false;
        let mut waiting = false;
        for ((id, rank), outcome) in outcomes.iter_mut() {
            if let Outcome::ByDaemon { .. } = outcome {
                if dropped_path(&state_dir, *rank, id).exists() {
                    *outcome = Outcome::DeletedByDaemon;
                    noted = true;
                } else {
                    waiting = true;
                }
            }
        }
        if noted {
            let lock = ctx.lock()?;
            let mut registry = ctx.store.registry()?;
            let swept = ranks::sweep(&state_dir, &mut registry);
            if !swept.is_empty() {
                ranks::write(&lock, &registry, &swept)?;
            }
        }
        if !waiting {
            return Ok(());
        }
        if Instant::now() >= deadline {
            for outcome in outcomes.values_mut() {
                if let Outcome::ByDaemon { holder } = outcome {
                    *outcome = Outcome::NotConfirmed { holder: *holder };
                }
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
