//! Removing deletes exactly the user's history: the other trees stay byte-for-byte the same,
//! no key of the removed user is left in the rank's database or in `handoff/`, and a user
//! added again gets a new id and starts empty. With the rank's daemon stopped (the command
//! deletes) and running (the test holds the rank lock and acts as the daemon).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Instant;

use crmsync::history::{History, RankLock};
use crmsync::registry::{SyncUserId, dropped_path, handoff_path};

use super::common::{PATIENCE, stderr, stdout};
use super::{Env, seed};

/// ANNA, BO and CARL saved on rank 1, each with history.
fn three_with_history(env: &Env) -> [SyncUserId; 3] {
    env.ok(&["load-external"]);
    env.ok(&["auto-link", "ANNA", "BO", "CARL"]);
    env.ok(&["save", "--rank", "1"]);
    let ids = ["ANNA", "BO", "CARL"].map(|l| env.user(l).id);
    let history = env.history(1);
    for (n, id) in ids.iter().enumerate() {
        seed(&history, id, 3 + n as u32);
    }
    env.flush(&history);
    ids
}

fn checksums(history: &History) -> BTreeMap<SyncUserId, String> {
    history
        .user_ids()
        .into_iter()
        .map(|id| {
            let sum = history.user(&id).unwrap().checksum().unwrap();
            (id, sum)
        })
        .collect()
}

/// Nothing of `gone` in the database: no tree of that name, its id in no key or value.
fn assert_no_trace(history: &History, gone: &SyncUserId) {
    assert!(!history.has_user(gone));
    assert!(!history.user_ids().contains(gone));
    for id in history.user_ids() {
        for (k, v) in history.user(&id).unwrap().entries().unwrap() {
            let needle = gone.as_str().as_bytes();
            assert!(!k.windows(needle.len()).any(|w| w == needle));
            assert!(!v.windows(needle.len()).any(|w| w == needle));
        }
    }
}

#[test]
fn with_the_daemon_stopped_the_command_deletes_exactly_that_history() {
    let env = Env::with_sandbox();
    let [anna, bo, carl] = three_with_history(&env);
    // A hand-over file of BO (left from a move) goes too; CARL's stays.
    std::fs::create_dir_all(env.state_dir().join("handoff")).unwrap();
    let bo_handoff = handoff_path(&env.state_dir(), &bo);
    let carl_handoff = handoff_path(&env.state_dir(), &carl);
    env.history(1)
        .export_user(&bo)
        .unwrap()
        .write(&bo_handoff)
        .unwrap();
    env.history(1)
        .export_user(&carl)
        .unwrap()
        .write(&carl_handoff)
        .unwrap();
    let before = checksums(&env.history(1));
    assert_eq!(before.len(), 3);

    let out = env.ok(&["remove", "BO", "--yes"]);
    assert!(
        out.contains("history deleted by this command (rank 1)"),
        "{out}"
    );

    let history = env.history(1);
    let after = checksums(&history);
    assert_eq!(after.get(&anna), before.get(&anna));
    assert_eq!(after.get(&carl), before.get(&carl));
    assert_eq!(after.len(), 2);
    assert_no_trace(&history, &bo);
    drop(history);
    assert!(!bo_handoff.exists());
    assert!(carl_handoff.exists());
    let registry = env.registry();
    assert!(registry.tombstones.is_empty());
    assert_eq!(registry.users.len(), 2);

    // Added again: a new id, and nothing of the old history.
    env.ok(&["auto-link", "BO"]);
    env.ok(&["save", "--rank", "1"]);
    let again = env.user("BO").id;
    assert_ne!(again, bo);
    let history = env.history(1);
    assert!(history.user(&again).unwrap().entries().unwrap().is_empty());
    assert_no_trace(&history, &bo);
}

#[test]
fn with_the_daemon_running_the_command_waits_for_its_note_and_reports_it() {
    let env = Env::with_sandbox();
    let [anna, bo, carl] = three_with_history(&env);
    let before = checksums(&env.history(1));

    // The test is rank 1's daemon: it holds the lock and the database.
    let lock = RankLock::acquire(&env.rank_dir(1)).expect("the rank lock");
    let history = env.history(1);
    let child = env
        .dir
        .command(&["users", "remove", "CARL", "--yes", "--wait", "10m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start crmsync");

    // As the daemon: once the tombstone is there, drop the tree and leave the note.
    let deadline = Instant::now() + PATIENCE;
    while !env.registry().tombstones.iter().any(|t| t.id == carl) {
        assert!(Instant::now() < deadline, "no tombstone for CARL appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(env.registry().users.iter().all(|u| u.id != carl));
    assert!(history.drop_user(&carl).unwrap());
    env.flush(&history);
    let note = dropped_path(&env.state_dir(), super::rank(1), &carl);
    std::fs::create_dir_all(note.parent().unwrap()).unwrap();
    std::fs::write(&note, b"").unwrap();

    let out = child.wait_with_output().expect("crmsync ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("history deleted by the rank 1 daemon"),
        "{}",
        stdout(&out)
    );
    assert!(
        env.registry().tombstones.is_empty(),
        "the tombstone is gone"
    );
    assert!(!note.exists(), "and the note");
    let after = checksums(&history);
    assert_eq!(after.get(&anna), before.get(&anna));
    assert_eq!(after.get(&bo), before.get(&bo));
    assert_no_trace(&history, &carl);

    // A daemon that does not answer in time: the tombstone stays, and a later command
    // tidies up once the note is there.
    let out = env.ok(&["remove", "BO", "--yes", "--wait", "1ms"]);
    assert!(out.contains("has not confirmed the deletion"), "{out}");
    assert!(env.registry().tombstones.iter().any(|t| t.id == bo));
    history.drop_user(&bo).unwrap();
    env.flush(&history);
    let note = dropped_path(&env.state_dir(), super::rank(1), &bo);
    std::fs::write(&note, b"").unwrap();
    env.ok(&["disable", "ANNA"]);
    assert!(env.registry().tombstones.is_empty());
    assert!(!note.exists());
    assert_eq!(checksums(&history).get(&anna), before.get(&anna));
    drop(history);
    drop(lock);
}
