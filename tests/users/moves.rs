//! Rank moves from the command's side: who hands the history over, and what `moved_from`
//! says, with the old rank's daemon running (the test holds its lock), stopped, or never
//! having handed over an earlier move.

use crmsync::history::{Handoff, RankLock};
use crmsync::registry::{SyncUserId, handoff_path};

use super::common::registry;
use super::{Env, rank, seed};

fn id(s: &str) -> SyncUserId {
    SyncUserId::parse(s).unwrap()
}

fn by_id(env: &Env, user: &str) -> crmsync::registry::SyncUser {
    env.registry()
        .users
        .into_iter()
        .find(|u| u.id.as_str() == user)
        .unwrap_or_else(|| panic!("{user} is not saved"))
}

/// u1 and u2 on rank 1, each with history.
fn two_on_rank_one() -> Env {
    let env = Env::offline();
    env.dir.write_registry(&registry(
        &[
            ("u1", 101, "anna@contoso.example", 1),
            ("u2", 102, "bo@contoso.example", 1),
        ],
        &[],
    ));
    let history = env.history(1);
    seed(&history, &id("u1"), 3);
    seed(&history, &id("u2"), 5);
    env.flush(&history);
    env
}

#[test]
fn a_running_old_rank_hands_over_itself_and_the_command_touches_no_history() {
    let env = two_on_rank_one();
    let before = env.history(1).user(&id("u1")).unwrap().checksum().unwrap();
    let lock = RankLock::acquire(&env.rank_dir(1)).unwrap();
    let out = env.ok(&["set", "u1", "--rank", "2"]);
    assert!(out.contains("in the daemons' hands"), "{out}");
    let u1 = by_id(&env, "u1");
    assert_eq!((u1.rank, u1.moved_from), (rank(2), Some(rank(1))));
    assert!(!handoff_path(&env.state_dir(), &id("u1")).exists());
    drop(lock);
    assert_eq!(
        env.history(1).user(&id("u1")).unwrap().checksum().unwrap(),
        before,
        "the history stays for rank 1's daemon to hand over"
    );

    // That daemon stopped before it handed over: the next move hands over from rank 1.
    let out = env.ok(&["set", "u1", "--rank", "3"]);
    assert!(
        out.contains("handed over by this command from rank 1"),
        "{out}"
    );
    let u1 = by_id(&env, "u1");
    assert_eq!((u1.rank, u1.moved_from), (rank(3), Some(rank(1))));
    let handoff = Handoff::read(&handoff_path(&env.state_dir(), &id("u1"))).unwrap();
    assert_eq!(handoff.checksum, before);
    assert!(!env.history(1).has_user(&id("u1")));
    assert!(env.history(1).has_user(&id("u2")));
}

#[test]
fn a_history_in_transit_goes_on_and_fresh_abandons_it() {
    let env = two_on_rank_one();
    env.ok(&["set", "u2", "--rank", "2"]);
    let path = handoff_path(&env.state_dir(), &id("u2"));
    let sum = Handoff::read(&path).unwrap().checksum;
    // Rank 2 never took it in; moving on to rank 3 keeps the file for rank 3.
    let out = env.ok(&["set", "u2", "--rank", "3"]);
    assert!(out.contains("still in transit"), "{out}");
    assert_eq!(by_id(&env, "u2").moved_from, Some(rank(2)));
    assert_eq!(Handoff::read(&path).unwrap().checksum, sum);
    // Options leave the move alone.
    env.ok(&["set", "u2", "--diary", "off"]);
    assert_eq!(by_id(&env, "u2").moved_from, Some(rank(2)));

    let out = env.ok(&["set", "u2", "--rank", "4", "--fresh"]);
    assert!(out.contains("rebuilds the pairs from the stamps"), "{out}");
    let u2 = by_id(&env, "u2");
    assert_eq!((u2.rank, u2.moved_from), (rank(4), None));
    assert!(!path.exists(), "the abandoned hand-over is deleted");

    // --fresh from a stopped rank that holds the tree deletes it.
    let out = env.ok(&["set", "u1", "--rank", "4", "--fresh"]);
    assert!(out.contains("deleted by this command"), "{out}");
    assert!(!env.history(1).has_user(&id("u1")));
    assert!(!handoff_path(&env.state_dir(), &id("u1")).exists());
}

#[test]
fn a_rank_without_history_here_moves_without_a_hand_over() {
    let env = Env::offline();
    env.dir
        .write_registry(&registry(&[("u1", 101, "anna@contoso.example", 5)], &[]));
    let out = env.ok(&["set", "anna@contoso.example", "--rank", "6"]);
    assert!(
        out.contains("holds no history for it on this host"),
        "{out}"
    );
    assert_eq!(by_id(&env, "u1").moved_from, None);
    let out = env.ok(&["set", "u1", "--rank", "6", "--task", "off"]);
    assert!(!out.contains("history"), "no move to the same rank: {out}");
}
