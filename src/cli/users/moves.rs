//! Server Rank: moving a user from rank R to rank M. The history travels through
//! `STATE_DIR/handoff/`, and at no moment do two daemons sync the user: the new rank waits
//! for the hand-over file whenever `moved_from` is set.
//!
//! Where R's lock is free (no daemon on this host), the command hands over itself: export,
//! file, registry, drop, flush. Where it is held, R's daemon does it when it sees the change.

use std::path::{Path, PathBuf};

use super::ranks::{RankState, Ranks, daemon_name};
use crate::registry::{Rank, SyncUser, SyncUserId, handoff_path};

/// What a command found at a rank for one user.
enum Seen {
    Held(Option<u32>),
    Free { has_tree: bool },
    Absent,
}

fn see(ranks: &mut Ranks<'_>, rank: Rank, user: &SyncUserId) -> anyhow::Result<Seen> {
    Ok(match ranks.get(rank)? {
        RankState::Held { holder } => Seen::Held(*holder),
        state @ RankState::Free { .. } => Seen::Free {
            has_tree: state.has_user(user),
        },
        RankState::Absent => Seen::Absent,
    })
}

/// The work of the moves of one command, done in order: hand-over files written before the
/// registry (and removed again if it cannot be written), then trees dropped and abandoned
/// hand-over files deleted after it.
#[derive(Default)]
pub struct Plan {
    pub exported: Vec<PathBuf>,
    pub drops: Vec<(Rank, SyncUserId)>,
    pub abandoned: Vec<PathBuf>,
}

impl Plan {
    /// Undoes what was done before the registry was written.
    pub fn undo(&self) {
        for path in &self.exported {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Moves `user` (its entry already changed to) rank `to`; returns the new `moved_from`
    /// and what to tell the operator.
    pub fn one(
        &mut self,
        ranks: &mut Ranks<'_>,
        state_dir: &Path,
        user: &SyncUser,
        to: Rank,
        fresh: bool,
    ) -> anyhow::Result<(Option<Rank>, Vec<String>)> {
        let from = user.rank;
        let id = &user.id;
        let in_transit = handoff_path(state_dir, id);
        // An earlier move whose hand-over has not happened yet: the history may still be there.
        let earlier = user.moved_from.filter(|e| *e != from);
        let mut lines = Vec::new();
        if fresh {
            for rank in [Some(from), earlier].into_iter().flatten() {
                match see(ranks, rank, id)? {
                    Seen::Held(holder) => lines.push(format!(
                        "{} deletes its old history",
                        daemon_name(rank, holder)
                    )),
                    Seen::Free { has_tree: true } => {
                        self.drops.push((rank, id.clone()));
                        lines.push(format!(
                            "its old history in rank {rank} is deleted by this command"
                        ));
                    }
                    _ => {}
                }
            }
            if in_transit.exists() {
                self.abandoned.push(in_transit);
            }
            lines.push(format!(
                "rank {to} starts it with an empty history: it rebuilds the pairs from the stamps \
                 on the mailbox items, without duplicates"
            ));
            return Ok((None, lines));
        }
        match see(ranks, from, id)? {
            Seen::Held(holder) => {
                lines.push(format!(
                    "the hand-over is in the daemons' hands: {} stops the user and hands its \
                     history over; rank {to}'s daemon takes it in before its first pass",
                    daemon_name(from, holder)
                ));
                return Ok((Some(from), lines));
            }
            _ if in_transit.exists() => {
                lines.push(format!(
                    "its history, still in transit ({}), goes on to rank {to}",
                    in_transit.display()
                ));
                return Ok((Some(from), lines));
            }
            Seen::Free { has_tree: true } => {
                return Ok((Some(from), vec![self.hand_over(ranks, from, to, id)?]));
            }
            _ => {}
        }
        let Some(earlier) = earlier else {
            lines.push(format!(
                "rank {from} holds no history for it on this host: it starts on rank {to} with an \
                 empty history"
            ));
            return Ok((None, lines));
        };
        if earlier == to {
            // Back to the rank that never handed it over: the history is where it goes.
            lines.push(format!("its history is still in rank {to}"));
            return Ok((None, lines));
        }
        match see(ranks, earlier, id)? {
            Seen::Free { has_tree: true } => {
                Ok((Some(earlier), vec![self.hand_over(ranks, earlier, to, id)?]))
            }
            Seen::Held(holder) => {
                lines.push(format!(
                    "its history is still on its way from rank {earlier}: {} hands it over, and \
                     rank {to} waits for it",
                    daemon_name(earlier, holder)
                ));
                Ok((Some(earlier), lines))
            }
            _ => {
                lines.push(format!(
                    "neither rank {from} nor rank {earlier} holds history for it on this host: it \
                     starts on rank {to} with an empty history"
                ));
                Ok((None, lines))
            }
        }
    }

    fn hand_over(
        &mut self,
        ranks: &mut Ranks<'_>,
        from: Rank,
        to: Rank,
        id: &SyncUserId,
    ) -> anyhow::Result<String> {
        let path = ranks.export(from, id)?;
        let line = format!(
            "history handed over by this command from rank {from} ({}); rank {to}'s daemon takes \
             it in before its first pass for the user",
            path.display()
        );
        self.exported.push(path);
        self.drops.push((from, id.clone()));
        Ok(line)
    }
}
