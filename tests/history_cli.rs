//! `crmsync history stats` on a stopped rank, through the real binary.

mod common;

use common::{Sandbox, registry, stderr, stdout};
use crmsync::connector::model::{ContentHash, CrmId, Cursor, Kind, MailboxItemId, Version};
use crmsync::history::{Commit, History, HistoryOptions, Pair, Side};
use crmsync::registry::SyncUserId;

fn seed_history(sandbox: &Sandbox) {
    let rank_dir = sandbox.state_dir().join("rank-1");
    std::fs::create_dir_all(&rank_dir).unwrap();
    let history = History::open(
        &rank_dir,
        &HistoryOptions {
            cache_capacity_bytes: 1 << 20,
            flush_interval: std::time::Duration::from_millis(100),
        },
    )
    .unwrap()
    .history;
    let user = history.user(&SyncUserId::parse("u1").unwrap()).unwrap();
    let pairs = (1..=3)
        .map(|i| Pair {
            crm_id: CrmId(i),
            mailbox_id: MailboxItemId(format!("m{i}")),
            crm_version: Version("c".into()),
            mailbox_version: Version("m".into()),
            crm_hash: ContentHash([0; 16]),
            mailbox_hash: ContentHash([0; 16]),
            origin: Side::Crm,
            span: None,
            stamped: true,
            mailbox_read_only: false,
        })
        .collect();
    user.commit(
        Kind::Diary,
        &Commit {
            put: pairs,
            mailbox_cursor: Some(Cursor("delta".into())),
            at: Some(1_795_000_000),
            ..Commit::default()
        },
    )
    .unwrap();
}

#[test]
fn stats_show_pairs_intents_and_cursor_times_per_user() {
    let sandbox = Sandbox::new();
    sandbox.write_registry(&registry(&[("u1", 11, "anna@contoso.com", 1)], &[]));
    seed_history(&sandbox);

    let out = sandbox.run(&["history", "stats", "--rank", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 user with history"), "{text}");
    let diary = text
        .lines()
        .find(|l| l.contains(" diary "))
        .expect("a diary line");
    assert!(diary.contains("anna@contoso.com"), "{diary}");
    assert!(diary.contains("      3 "), "three pairs: {diary}");
    assert!(diary.contains("2026-11-18 11:06:40Z"), "{diary}");

    let out = sandbox.run(&[
        "history",
        "stats",
        "--rank",
        "1",
        "anna@contoso.com",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["users"][0]["kinds"][0][1]["pairs"], 3);

    let out = sandbox.run(&["history", "stats", "--rank", "1", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no history for user \"nobody\""));
}

#[test]
fn stats_refuse_a_running_rank_and_a_rank_without_history() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["history", "stats", "--rank", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("rank 2 has no history"),
        "{}",
        stderr(&out)
    );

    let mut daemon = sandbox.daemon(2, |_| {});
    daemon.wait_serving();
    let out = sandbox.run(&["history", "stats", "--rank", "2"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stop its daemon first"),
        "{}",
        stderr(&out)
    );
    assert_eq!(daemon.stop().code(), Some(0));
    let out = sandbox.run(&["history", "stats", "--rank", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
