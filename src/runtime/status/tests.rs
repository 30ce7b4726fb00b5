use super::liveness::overview_with;
use super::*;

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn rank(n: u16) -> Rank {
    Rank::new(n).unwrap()
}

fn sample(rank: Rank) -> RankStatus {
    let mut status = RankStatus::starting(rank, 60, ts("2026-11-20T10:00:00Z"));
    status.state = DaemonState::Running;
    status.pid = 4242;
    status.updated_at = ts("2026-11-20T10:05:00Z");
    status.tick = 5;
    status.last_tick_at = Some(ts("2026-11-20T10:05:00Z"));
    status.metrics_addr = Some("127.0.0.1:9101".into());
    let mut kinds = BTreeMap::new();
    kinds.insert(
        Kind::Diary,
        KindStatus {
            last_pass_at: Some(ts("2026-11-20T10:04:58Z")),
            last_result: Some(PassOutcome::Ok),
            last_duration_ms: Some(812),
            passes: 5,
            created: 3,
            pairs: Some(40),
            ..KindStatus::default()
        },
    );
    kinds.insert(Kind::Contact, KindStatus::default());
    status.users.push(UserStatus {
        id: SyncUserId::parse("u1").unwrap(),
        associate_id: 11,
        login: Some("anna".into()),
        mailbox: "anna@contoso.com".into(),
        state: UserState::BackingOff,
        since: Some(ts("2026-11-20T10:04:00Z")),
        detail: Some("graph: 503".into()),
        retry_at: Some(ts("2026-11-20T10:06:00Z")),
        kinds,
    });
    status.throttle.push(ThrottleStatus {
        service: "graph".into(),
        requests: 40,
        throttled: 2,
        waited_secs: 1.5,
    });
    status.push_error(ErrorEntry {
        at: ts("2026-11-20T10:04:00Z"),
        user: Some(SyncUserId::parse("u1").unwrap()),
        kind: Some(Kind::Diary),
        class: "transient".into(),
        message: "graph: 503".into(),
    });
    status
}

#[test]
fn a_written_status_reads_back_the_same_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let status = sample(rank(2));
    std::fs::create_dir_all(dir.path().join("rank-2")).unwrap();
    status.write(dir.path()).unwrap();
    let path = status_path(dir.path(), rank(2));
    assert_eq!(path, dir.path().join("rank-2").join("status.json"));
    assert_eq!(RankStatus::read(&path).unwrap(), status);
    // Written again over the old one: still exactly one file.
    status.write(dir.path()).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path().join("rank-2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["status.json"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

#[test]
fn the_json_names_ranks_as_numbers_kinds_as_keys_and_states_in_snake_case() {
    let json: serde_json::Value = serde_json::to_value(sample(rank(2))).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["rank"], 2);
    assert_eq!(json["state"], "running");
    assert_eq!(json["users"][0]["state"], "backing_off");
    assert_eq!(json["users"][0]["kinds"]["diary"]["last_result"], "ok");
    assert_eq!(json["users"][0]["kinds"]["diary"]["pairs"], 40);
    assert!(json["users"][0]["kinds"]["contact"].is_object());
    assert_eq!(json["started_at"], "2026-11-20T10:00:00Z");
    assert_eq!(json["errors"][0]["kind"], "diary");
    assert_eq!(json["totals"]["errors"], 1);
}

#[test]
fn errors_keep_the_newest_fifty_and_count_all() {
    let mut status = RankStatus::starting(rank(1), 60, ts("2026-11-20T10:00:00Z"));
    for i in 0..60 {
        status.push_error(ErrorEntry {
            at: ts("2026-11-20T10:00:00Z"),
            user: None,
            kind: None,
            class: "service".into(),
            message: format!("error {i}"),
        });
    }
    assert_eq!(status.errors.len(), MAX_ERRORS);
    assert_eq!(status.errors[0].message, "error 10");
    assert_eq!(status.errors[49].message, "error 59");
    assert_eq!(status.totals.errors, 60);
}

#[test]
fn damaged_and_newer_files_get_messages_that_say_what_to_do() {
    let path = Path::new("/state/rank-1/status.json");
    let e = RankStatus::parse(b"{\"version\": 1, \"rank\": ", path).unwrap_err();
    assert!(matches!(e, StatusError::Corrupt { .. }));
    let text = e.to_string();
    assert!(text.contains("/state/rank-1/status.json"), "{text}");
    assert!(text.contains("rewrites it after its next pass"), "{text}");

    let e = RankStatus::parse(b"{\"version\": 2, \"whatever\": true}", path).unwrap_err();
    assert!(matches!(e, StatusError::NewerVersion { found: 2, .. }));
    assert!(e.to_string().contains("newer crmsync"), "{e}");
    let e = RankStatus::parse(b"{\"version\": 0}", path).unwrap_err();
    assert!(matches!(e, StatusError::UnknownVersion { found: 0, .. }));
    let e = RankStatus::parse(b"[]", path).unwrap_err();
    assert!(matches!(e, StatusError::Corrupt { .. }));
}

#[test]
fn processes_are_the_daemon_only_as_crmsync_run_of_the_same_rank() {
    let r = rank(3);
    let daemon = b"/usr/local/bin/crmsync\0run\0--rank\x003\0--config\0/etc/crmsync/crmsync.toml\0";
    assert_eq!(classify_process("crmsync", daemon, r), Process::Daemon);
    let other_order = b"crmsync\0--config\0/x\0run\0--rank=3\0";
    assert_eq!(classify_process("crmsync", other_order, r), Process::Daemon);
    assert_eq!(classify_process("crmsync", daemon, rank(4)), Process::Other);
    let status_cmd = b"crmsync\0status\0--rank\x003\0";
    assert_eq!(classify_process("crmsync", status_cmd, r), Process::Other);
    let bash = b"/bin/bash\0run\0--rank\x003\0";
    assert_eq!(classify_process("bash", bash, r), Process::Other);
    assert_eq!(classify_process("crmsync", b"", r), Process::Unknown);
    assert_eq!(classify_process("sleep", b"", r), Process::Other);
}

fn seen(process: Process, state: DaemonState, updated_at: &str) -> Seen {
    Seen {
        pid: 100,
        process,
        state,
        updated_at: ts(updated_at),
        interval_secs: 60,
    }
}

#[test]
fn liveness_comes_from_the_process_the_state_and_the_age() {
    use DaemonState::*;
    use Process::*;
    let now = ts("2026-11-20T10:10:00Z");
    let judged = |s: Option<&Seen>, l: Option<&LockHolder>| judge(s, l, now);

    let recent = seen(Daemon, Running, "2026-11-20T10:09:00Z");
    assert_eq!(judged(Some(&recent), None), (Liveness::Running, Some(100)));
    // Three intervals of 60 s are less than the 3 minute floor: 2m59s is fresh, 3m01s is not.
    let edge = seen(Daemon, Running, "2026-11-20T10:07:01Z");
    assert_eq!(judged(Some(&edge), None).0, Liveness::Running);
    let old = seen(Daemon, Running, "2026-11-20T10:06:59Z");
    assert_eq!(judged(Some(&old), None).0, Liveness::Stale);
    let slow = Seen {
        interval_secs: 600,
        ..old.clone()
    };
    assert_eq!(judged(Some(&slow), None).0, Liveness::Running);
    // No /proc to ask: the age decides.
    assert_eq!(
        judged(Some(&seen(Unknown, Running, "2026-11-20T10:09:00Z")), None).0,
        Liveness::Running
    );

    for gone in [Gone, Other] {
        let crashed = seen(gone, Running, "2026-11-20T10:09:00Z");
        assert_eq!(judged(Some(&crashed), None), (Liveness::Down, Some(100)));
        let stopped = seen(gone, Stopped, "2026-11-20T09:00:00Z");
        assert_eq!(judged(Some(&stopped), None).0, Liveness::Stopped);
    }
    // It wrote `stopped` and is on its way out.
    let exiting = seen(Daemon, Stopped, "2026-11-20T10:09:59Z");
    assert_eq!(judged(Some(&exiting), None).0, Liveness::Stopped);
    assert_eq!(judged(None, None), (Liveness::NeverStarted, None));
}

#[test]
fn a_daemon_that_holds_the_lock_but_has_not_written_yet_is_running() {
    use DaemonState::*;
    use Process::*;
    let now = ts("2026-11-20T10:10:00Z");
    let starting = LockHolder {
        pid: 200,
        process: Daemon,
        since: Some(ts("2026-11-20T10:09:50Z")),
    };
    assert_eq!(
        judge(None, Some(&starting), now),
        (Liveness::Running, Some(200))
    );
    // A restart: the old process wrote `stopped`, the new one is starting.
    let old = seen(Gone, Stopped, "2026-11-20T10:09:40Z");
    assert_eq!(
        judge(Some(&old), Some(&starting), now),
        (Liveness::Running, Some(200))
    );
    // ... or the old one crashed.
    let crashed = seen(Gone, Running, "2026-11-20T10:00:00Z");
    assert_eq!(
        judge(Some(&crashed), Some(&starting), now).0,
        Liveness::Running
    );
    let hung = LockHolder {
        since: Some(ts("2026-11-20T09:00:00Z")),
        ..starting.clone()
    };
    assert_eq!(judge(None, Some(&hung), now).0, Liveness::Stale);
    // The lock file of a daemon long gone says nothing.
    let gone = LockHolder {
        process: Gone,
        ..starting
    };
    assert_eq!(judge(None, Some(&gone), now).0, Liveness::NeverStarted);
    assert_eq!(judge(Some(&crashed), Some(&gone), now).0, Liveness::Down);
}

const REGISTRY: &str = r#"version = 1

[[users]]
id = "u9"
associate_id = 9
mailbox = "nine@contoso.com"
mail_system = "contoso"
rank = 9
diary = true
task = true
contact = false
created = "2026-11-01T10:00:00Z"
"#;

#[test]
fn read_all_lists_directories_and_registry_ranks_and_judges_each() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let now = ts("2026-11-20T10:06:00Z");
    for n in [1, 2, 3, 4] {
        std::fs::create_dir_all(state.join(format!("rank-{n}"))).unwrap();
    }
    std::fs::create_dir_all(state.join("rank-01")).unwrap();
    std::fs::create_dir_all(state.join("handoff")).unwrap();
    std::fs::write(state.join("users.toml"), REGISTRY).unwrap();
    // 1 runs (pid 4242 is "the daemon"), 2 crashed, 3 stopped, 4 has only a history.
    sample(rank(1)).write(state).unwrap();
    let mut crashed = sample(rank(2));
    crashed.pid = 5151;
    crashed.write(state).unwrap();
    let mut stopped = sample(rank(3));
    stopped.state = DaemonState::Stopped;
    stopped.write(state).unwrap();
    let probe = |pid: u32, _: Rank| {
        if pid == 4242 {
            Process::Daemon
        } else {
            Process::Gone
        }
    };
    let overview = overview_with(state, now, &probe).unwrap();
    assert!(overview.registry_error.is_none());
    let got: Vec<_> = overview
        .ranks
        .iter()
        .map(|v| (v.rank.get(), v.liveness, v.registry_users))
        .collect();
    assert_eq!(
        got,
        [
            (1, Liveness::Running, Some(0)),
            (2, Liveness::Down, Some(0)),
            (3, Liveness::Stopped, Some(0)),
            (4, Liveness::NeverStarted, Some(0)),
            (9, Liveness::NeverStarted, Some(1)),
        ]
    );
    assert_eq!(overview.ranks[1].pid, Some(5151));
    assert!(overview.ranks[0].status.is_some());

    // Later, the running one has not written for too long.
    let later = ts("2026-11-20T10:30:00Z");
    let again = overview_with(state, later, &probe).unwrap();
    assert_eq!(again.ranks[0].liveness, Liveness::Stale);

    let json = serde_json::to_value(&overview).unwrap();
    assert_eq!(json["ranks"][0]["rank"], 1);
    assert_eq!(json["ranks"][0]["liveness"], "running");
    assert_eq!(json["ranks"][0]["status"]["pid"], 4242);
    assert_eq!(json["ranks"][0]["error"], serde_json::Value::Null);
    assert_eq!(json["ranks"][3]["liveness"], "never_started");
    assert_eq!(json["ranks"][3]["status"], serde_json::Value::Null);
}

#[test]
fn a_bad_file_is_an_error_of_its_rank_only_and_a_bad_registry_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let now = ts("2026-11-20T10:06:00Z");
    sample_dirs(state, &[1, 2, 3]);
    sample(rank(1)).write(state).unwrap();
    let mut newer = serde_json::to_value(sample(rank(2))).unwrap();
    newer["version"] = 2.into();
    newer["state"] = "stopped".into();
    std::fs::write(
        status_path(state, rank(2)),
        serde_json::to_vec(&newer).unwrap(),
    )
    .unwrap();
    std::fs::write(status_path(state, rank(3)), "{\"version\": 1, ").unwrap();
    std::fs::write(state.join("users.toml"), "version = 1\n[[users]]\nid = 5\n").unwrap();
    let overview = overview_with(state, now, &|_, _| Process::Gone).unwrap();
    let registry = overview.registry_error.as_ref().unwrap().to_string();
    assert!(registry.contains("users.toml"), "{registry}");
    let [one, two, three] = &overview.ranks[..] else {
        panic!("three ranks: {overview:?}")
    };
    assert!(one.error.is_none());
    assert_eq!(one.liveness, Liveness::Down);
    assert_eq!(one.registry_users, None);
    // Newer: the fields liveness needs are still read.
    assert!(matches!(
        two.error,
        Some(StatusError::NewerVersion { found: 2, .. })
    ));
    assert_eq!(two.liveness, Liveness::Stopped);
    assert!(two.status.is_none());
    assert!(matches!(three.error, Some(StatusError::Corrupt { .. })));
    assert_eq!(three.liveness, Liveness::Down);
    // A status file in the wrong rank's directory.
    let moved = sample(rank(1));
    std::fs::copy(status_path(state, rank(1)), status_path(state, rank(3))).unwrap();
    let overview = overview_with(state, now, &|_, _| Process::Daemon).unwrap();
    assert!(matches!(
        overview.ranks[2].error,
        Some(StatusError::WrongRank { found, .. }) if found == moved.rank
    ));
}

#[test]
fn a_missing_state_directory_says_to_check_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_all(&dir.path().join("nope"), ts("2026-11-20T10:00:00Z")).unwrap_err();
    assert!(e.to_string().contains("check [daemon] state_dir"), "{e}");
    assert!(
        read_all(dir.path(), ts("2026-11-20T10:00:00Z"))
            .unwrap()
            .is_empty()
    );
}

fn sample_dirs(state: &Path, ranks: &[u16]) {
    for n in ranks {
        std::fs::create_dir_all(state.join(format!("rank-{n}"))).unwrap();
    }
}

#[test]
fn a_users_state_is_named_the_same_in_the_file_and_in_the_metrics() {
    use super::UserState::*;
    for state in [
        Ok, Syncing, BackingOff, Failed, Paused, Disabled, Waiting, Arriving, Leaving,
    ] {
        let json = serde_json::to_value(state).expect("a state encodes");
        assert_eq!(json, state.as_str(), "{state:?}");
    }
}
