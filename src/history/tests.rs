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
