use super::*;

fn options() -> HistoryOptions {
    HistoryOptions {
        cache_capacity_bytes: 8 * 1024 * 1024,
        flush_interval: Duration::from_millis(100),
    }
}

fn user(id: &str) -> SyncUserId {
    SyncUserId::parse(id).unwrap()
}

/// A database with one user tree holding some data, closed again.
fn populated(rank_dir: &Path) {
    let opened = History::open(rank_dir, &options()).unwrap();
    assert!(opened.moved_aside.is_none());
    let tree = opened.history.db.open_tree("u1").unwrap();
    for i in 0..500u32 {
        tree.insert(i.to_be_bytes(), vec![7u8; 64]).unwrap();
    }
    opened.history.db.flush().unwrap();
}

fn aside_dirs(rank_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(rank_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("history.corrupt-"))
        })
        .collect()
}

#[test]
fn users_have_their_own_trees_and_dropping_one_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), &options()).unwrap().history;
    assert!(history.user_ids().is_empty());
    for id in ["a", "b"] {
        history
            .db
            .open_tree(id)
            .unwrap()
            .insert("k", id.as_bytes())
            .unwrap();
    }
    assert!(history.has_user(&user("a")));
    let mut ids = history.user_ids();
    ids.sort();
    assert_eq!(ids, vec![user("a"), user("b")]);

    assert!(history.drop_user(&user("a")).unwrap());
    assert!(!history.drop_user(&user("a")).unwrap());
    assert!(!history.has_user(&user("a")));
    assert_eq!(
        history
            .db
            .open_tree("b")
            .unwrap()
            .get("k")
            .unwrap()
            .as_deref(),
        Some(&b"b"[..])
    );
}

#[test]
fn a_reopened_database_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    let opened = History::open(dir.path(), &options()).unwrap();
    assert!(opened.moved_aside.is_none());
    assert_eq!(opened.history.db.open_tree("u1").unwrap().len(), 500);
    assert!(aside_dirs(dir.path()).is_empty());
}

#[test]
fn a_corrupt_database_is_moved_aside_and_a_fresh_one_started() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    std::fs::write(dir.path().join(HISTORY_DIR).join("conf"), b"not sled's").unwrap();

    let opened = History::open(dir.path(), &options()).unwrap();
    let moved = opened
        .moved_aside
        .expect("the corrupt database is moved aside");
    assert_eq!(aside_dirs(dir.path()), vec![moved.to.clone()]);
    assert!(moved.to.join("db").exists(), "the evidence is kept");
    assert!(opened.history.user_ids().is_empty());
}

#[test]
fn a_database_that_sled_opens_empty_is_reported_as_lost_not_taken_as_fresh() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    // sled reads a garbled log as a torn write at offset 0 and starts over, silently.
    std::fs::write(dir.path().join(HISTORY_DIR).join("db"), vec![0xAB; 4096]).unwrap();

    let opened = History::open(dir.path(), &options()).unwrap();
    let moved = opened.moved_aside.expect("the loss is reported");
    assert!(moved.reason.contains("opened it empty"), "{}", moved.reason);
    drop(opened.history);

    // The fresh database is the one the marker names now: the next open is quiet.
    let again = History::open(dir.path(), &options()).unwrap();
    assert!(again.moved_aside.is_none());
}

#[tokio::test]
async fn flush_writes_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), &options()).unwrap().history;
    history.db.open_tree("x").unwrap().insert("k", "v").unwrap();
    history.flush().await.unwrap();
    assert!(history.size_on_disk().unwrap() > 0);
}

/// Many flushes at once, from many users' passes, all complete (sled's own `flush_async`
/// could leave some waiting forever: see `flush_tree`). The timeout only bounds a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_flushes_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), &options()).unwrap().history;
    let mut tasks = tokio::task::JoinSet::new();
    for u in 0..32u32 {
        let history = history.clone();
        tasks.spawn(async move {
            let tree = history.db.open_tree(format!("u{u}")).unwrap();
            for i in 0..20u32 {
                tree.insert(i.to_be_bytes(), vec![1u8; 32]).unwrap();
                flush_tree(tree.clone()).await.unwrap();
                history.flush().await.unwrap();
            }
        });
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("every flush completes");
}

mod users {
    use super::*;
    use crate::connector::model::{ContentHash, CrmId, Cursor, Kind, MailboxItemId, Version};

    fn pair(crm: u32, mailbox: &str) -> Pair {
        Pair {
            crm_id: CrmId(crm),
            mailbox_id: MailboxItemId(mailbox.to_string()),
            crm_version: Version(format!("c{crm}")),
            mailbox_version: Version(format!("m{mailbox}")),
            crm_hash: ContentHash([crm as u8; 16]),
            mailbox_hash: ContentHash([crm as u8; 16]),
            origin: Side::Crm,
            span: Some((1, 2)),
            stamped: true,
            mailbox_read_only: false,
        }
    }

    fn open(dir: &Path) -> History {
        History::open(dir, &options()).unwrap().history
    }

    #[test]
    fn pairs_are_found_from_either_side_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path()).user(&user("u")).unwrap();
        h.commit(
            Kind::Diary,
            &Commit {
                put: vec![pair(1, "AAA"), pair(2, "BBB")],
                crm_cursor: Some(Cursor("w1".into())),
                mailbox_cursor: Some(Cursor("d1".into())),
                ..Commit::default()
            },
        )
        .unwrap();
        assert_eq!(
            h.pair_by_crm(Kind::Diary, CrmId(1)).unwrap(),
            Some(pair(1, "AAA"))
        );
        assert_eq!(
            h.pair_by_mailbox(Kind::Diary, &MailboxItemId("BBB".into()))
                .unwrap(),
            Some(pair(2, "BBB"))
        );
        assert_eq!(
            h.pair_by_crm(Kind::Task, CrmId(1)).unwrap(),
            None,
            "kinds are apart"
        );
        assert_eq!(h.pair_count(Kind::Diary).unwrap(), 2);
        assert_eq!(
            h.cursors(Kind::Diary).unwrap().crm,
            Some(Cursor("w1".into()))
        );
        assert_eq!(h.pairs(Kind::Diary).unwrap().len(), 2);
    }

    #[test]
    fn an_unreadable_history_is_set_aside_whole_and_the_user_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let history = open(dir.path());
        let h = history.user(&user("u")).unwrap();
        let other = history.user(&user("v")).unwrap();
        let commit = Commit {
            put: vec![pair(1, "AAA"), pair(2, "BBB")],
            ..Commit::default()
        };
        h.commit(Kind::Diary, &commit).unwrap();
        other.commit(Kind::Diary, &commit).unwrap();
        let others_before = other.checksum().unwrap();
        // A pair record that no longer decodes (a torn write, a bit flip).
        h.tree
            .insert(
                super::super::user::pair_key_for_tests(Kind::Diary, CrmId(2)),
                &[0xff; 3],
            )
            .unwrap();
        let damaged = h.entries().unwrap();
        assert!(matches!(
            h.pairs(Kind::Diary),
            Err(HistoryError::Unreadable { .. })
        ));

        let at: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let kept = history.set_aside_user(&user("u"), at).unwrap();
        assert_eq!(kept, "u.unreadable-20261203T100000Z");
        let again = history.set_aside_user(&user("u"), at).unwrap();
        assert_eq!(
            again, "u.unreadable-20261203T100000Z-1",
            "never overwritten"
        );
        let copy = history.db.open_tree(&kept).unwrap();
        let copied: Vec<_> = copy
            .iter()
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        assert_eq!(copied, damaged, "kept byte for byte");

        let fresh = history.user(&user("u")).unwrap();
        assert_eq!(fresh.pair_count(Kind::Diary).unwrap(), 0, "starts again");
        assert_eq!(fresh.pairs(Kind::Diary).unwrap(), vec![]);
        let mut ids = history.user_ids();
        ids.sort();
        assert_eq!(ids, vec![user("u"), user("v")], "a copy is not a user");
        assert_eq!(other.checksum().unwrap(), others_before, "others untouched");

        // Removing the user removes its copies too (DESIGN invariant 8), and nothing else.
        assert!(history.drop_user(&user("u")).unwrap());
        assert_eq!(history.set_aside_names(&user("u")), Vec::<String>::new());
        assert_eq!(other.checksum().unwrap(), others_before);
    }

    #[test]
    fn a_commit_applied_twice_changes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path()).user(&user("u")).unwrap();
        let commit = Commit {
            put: vec![pair(1, "AAA")],
            remove: vec![CrmId(9)],
            mailbox_cursor: Some(Cursor("d1".into())),
            ..Commit::default()
        };
        h.commit(Kind::Task, &commit).unwrap();
        let once = h.checksum().unwrap();
        h.commit(Kind::Task, &commit).unwrap();
        assert_eq!(h.checksum().unwrap(), once);
        assert_eq!(h.pair_count(Kind::Task).unwrap(), 1);
    }

    #[test]
    fn repairing_keeps_the_index_exact() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path()).user(&user("u")).unwrap();
        let kind = Kind::Contact;
        h.commit(
            kind,
            &Commit {
                put: vec![pair(1, "AAA")],
                ..Commit::default()
            },
        )
        .unwrap();
        // The CRM item now pairs with another mailbox item: the old reverse entry goes.
        h.commit(
            kind,
            &Commit {
                put: vec![pair(1, "NEW")],
                ..Commit::default()
            },
        )
        .unwrap();
        assert_eq!(
            h.pair_by_mailbox(kind, &MailboxItemId("AAA".into()))
                .unwrap(),
            None
        );
        assert_eq!(
            h.pair_by_mailbox(kind, &MailboxItemId("NEW".into()))
                .unwrap()
                .unwrap()
                .crm_id,
            CrmId(1)
        );
        // Another CRM item claims that mailbox item: the stale pair goes with it.
        h.commit(
            kind,
            &Commit {
                put: vec![pair(2, "NEW")],
                ..Commit::default()
            },
        )
        .unwrap();
        assert_eq!(h.pair_by_crm(kind, CrmId(1)).unwrap(), None);
        assert_eq!(h.pair_count(kind).unwrap(), 1);
        h.commit(
            kind,
            &Commit {
                remove: vec![CrmId(2)],
                ..Commit::default()
            },
        )
        .unwrap();
        assert_eq!(h.pair_count(kind).unwrap(), 0);
        assert_eq!(
            h.entries()
                .unwrap()
                .iter()
                .filter(|(k, _)| k[0] == b'p')
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn intents_are_durable_until_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let intent = {
            let h = open(dir.path()).user(&user("u")).unwrap();
            h.record_intent(Intent {
                id: 0,
                kind: Kind::Diary,
                target: Side::Mailbox,
                from_crm: Some(CrmId(7)),
                from_mailbox: None,
                stamp: None,
                item: crate::connector::model::Item::Task(crate::connector::model::TaskItem {
                    title: "Call back".into(),
                    body: String::new(),
                    due: None,
                    completed: None,
                    importance: crate::connector::model::Importance::Normal,
                }),
                started: 1_800_000_000,
            })
            .await
            .unwrap()
        };
        let h = open(dir.path()).user(&user("u")).unwrap();
        assert_eq!(h.intents(Kind::Diary).unwrap(), vec![intent.clone()]);
        h.commit(
            Kind::Diary,
            &Commit {
                put: vec![pair(7, "X")],
                resolved_intents: vec![intent.id],
                ..Commit::default()
            },
        )
        .unwrap();
        assert!(h.intents(Kind::Diary).unwrap().is_empty());
    }

    #[tokio::test]
    async fn removing_one_user_leaves_the_others_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let history = open(dir.path());
        for (n, id) in ["a", "b", "c"].iter().enumerate() {
            let h = history.user(&user(id)).unwrap();
            let pairs = (0..50)
                .map(|i| pair(i + 100 * n as u32, &format!("{id}{i}")))
                .collect();
            h.commit(
                Kind::Diary,
                &Commit {
                    put: pairs,
                    ..Commit::default()
                },
            )
            .unwrap();
        }
        let before: Vec<String> = ["a", "c"]
            .iter()
            .map(|id| history.user(&user(id)).unwrap().checksum().unwrap())
            .collect();
        assert!(history.drop_user(&user("b")).unwrap());
        let after: Vec<String> = ["a", "c"]
            .iter()
            .map(|id| history.user(&user(id)).unwrap().checksum().unwrap())
            .collect();
        assert_eq!(before, after);
        assert!(!history.has_user(&user("b")));
        // Re-added, it starts empty.
        assert_eq!(
            history
                .user(&user("b"))
                .unwrap()
                .pair_count(Kind::Diary)
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn a_handed_over_history_arrives_intact_and_never_overwrites() {
        let from_dir = tempfile::tempdir().unwrap();
        let to_dir = tempfile::tempdir().unwrap();
        let from = open(from_dir.path());
        let h = from.user(&user("u")).unwrap();
        h.commit(
            Kind::Diary,
            &Commit {
                put: (0..20).map(|i| pair(i, &format!("m{i}"))).collect(),
                mailbox_cursor: Some(Cursor("delta".into())),
                ..Commit::default()
            },
        )
        .unwrap();
        let handoff = from.export_user(&user("u")).unwrap();
        let file = from_dir.path().join("u.handoff");
        handoff.write(&file).unwrap();

        let to = open(to_dir.path());
        let read = Handoff::read(&file).unwrap();
        to.import_user(&read).await.unwrap();
        let imported = to.user(&user("u")).unwrap();
        assert_eq!(imported.checksum().unwrap(), h.checksum().unwrap());
        assert_eq!(imported.pair_count(Kind::Diary).unwrap(), 20);
        assert!(matches!(
            to.import_user(&read).await,
            Err(HistoryError::ImportOverExisting { .. })
        ));

        // A damaged file is refused.
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 40;
        bytes[last] ^= 0xff;
        std::fs::write(&file, bytes).unwrap();
        assert!(Handoff::read(&file).is_err());
    }
}
