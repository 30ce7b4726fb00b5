//! The rank daemon's lifecycle, through the real binary: locking, signals, systemd notify,
//! registry changes and a corrupt history.

mod common;

use common::{NotifySocket, Sandbox, registry, stderr};

#[test]
fn a_second_daemon_of_the_same_rank_exits_75_and_another_rank_runs() {
    let sandbox = Sandbox::new();
    let mut first = sandbox.daemon(3, |_| {});
    first.wait_serving();

    let out = sandbox.run(&["run", "--rank", "3"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let expected = format!(
        "rank 3 is already running ({} is locked)",
        sandbox.state_dir().join("rank-3").display()
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));

    let mut other = sandbox.daemon(4, |_| {});
    other.wait_serving();
    assert_eq!(other.stop().code(), Some(0));
    assert_eq!(first.stop().code(), Some(0));

    // Once the first has stopped, its rank can start again.
    let mut again = sandbox.daemon(3, |_| {});
    again.wait_serving();
    assert_eq!(again.stop().code(), Some(0));
}

#[test]
fn sigterm_and_sigint_stop_cleanly_within_the_deadline() {
    let sandbox = Sandbox::new();
    sandbox.write_config_with_connections("secret", "");
    sandbox.write_registry(&registry(&[("u1", 1, "a@contoso.com", 1)], &[]));
    for signal in ["TERM", "INT"] {
        let mut daemon = sandbox.daemon(1, |cmd| {
            cmd.env("RUST_LOG", "crmsync=debug");
        });
        daemon.wait_serving();
        // Past the first round of passes, so that stopping meets a running scheduler.
        daemon.log.wait_for_all(&["tick tick=2"]);
        daemon.signal(signal);
        assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log.text());
        let log = daemon.log.text();
        assert!(log.contains(&format!("reason=\"SIG{signal}\"")), "{log}");
        assert!(log.contains("stopped; history flushed clean=true"), "{log}");
        assert!(!log.contains("deadline reached"), "{log}");
        assert!(!log.contains("ERROR"), "{log}");
    }
}

#[test]
fn every_log_line_carries_the_rank_in_text_and_json() {
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.daemon(7, |cmd| {
        cmd.env("RUST_LOG", "debug");
    });
    daemon.wait_serving();
    assert_eq!(daemon.stop().code(), Some(0));
    let lines = daemon.log.all();
    assert!(lines.len() > 3);
    for line in &lines {
        assert!(line.contains(" rank=7 "), "{line}");
    }

    sandbox.write_config("[log]\nformat = \"json\"\n");
    let mut daemon = sandbox.daemon(7, |_| {});
    daemon.wait_serving();
    assert_eq!(daemon.stop().code(), Some(0));
    for line in daemon.log.all() {
        assert!(line.starts_with("{\"rank\":7,"), "{line}");
        assert!(line.ends_with('}'), "{line}");
    }
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    let sandbox = Sandbox::new();
    let socket = NotifySocket::bind(sandbox.dir.path());
    let mut daemon = sandbox.daemon(2, |cmd| {
        cmd.env("NOTIFY_SOCKET", &socket.path)
            .env("WATCHDOG_USEC", "400000");
    });
    let messages = &socket.messages;
    messages.wait_for_all(&["READY=1"]);
    let status = messages.wait_for("a STATUS line", |m| m.starts_with("STATUS=rank 2:"));
    assert!(status.contains("0 users"), "{status}");
    messages.wait_for_all(&["WATCHDOG=1"]);

    daemon.signal("HUP");
    daemon.log.wait_for_all(&["SIGHUP: reloading"]);
    messages.wait_until("READY=1 after RELOADING=1", |all| {
        let reloading = all.iter().position(|m| m == "RELOADING=1")?;
        all[reloading..]
            .iter()
            .find(|m| *m == "READY=1")
            .map(|_| ())
    });
    assert!(
        messages
            .all()
            .iter()
            .any(|m| m.starts_with("MONOTONIC_USEC="))
    );

    assert_eq!(daemon.stop().code(), Some(0));
    messages.wait_for_all(&["STOPPING=1"]);
    let watchdog_pings = messages.count(|m| m == "WATCHDOG=1");
    assert!(watchdog_pings >= 1);
}

#[test]
fn without_notify_socket_the_daemon_is_silent_towards_systemd() {
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.daemon(2, |_| {});
    daemon.wait_serving();
    assert_eq!(daemon.stop().code(), Some(0));
    assert!(!daemon.log.text().contains("NOTIFY_SOCKET"));
}

#[test]
fn registry_edits_are_picked_up_without_restart() {
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.daemon(1, |_| {});
    daemon.wait_serving();

    sandbox.write_registry(&registry(
        &[
            ("u1", 1, "a@contoso.com", 1),
            ("u2", 2, "b@contoso.com", 1),
            ("u3", 3, "c@contoso.com", 2),
        ],
        &[],
    ));
    let line = daemon.log.wait_for_all(&["registry reloaded"]);
    assert!(
        line.contains("users=2 added=2"),
        "only this rank's users: {line}"
    );

    // An edit in place (not a rename) is seen too.
    std::fs::write(
        sandbox.state_dir().join("users.toml"),
        registry(&[("u1", 1, "a@contoso.com", 1)], &[]),
    )
    .unwrap();
    daemon
        .log
        .wait_for_all(&["registry reloaded", "users=1", "removed=1"]);

    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_corrupt_registry_is_refused_with_its_line_and_the_last_good_one_stays() {
    let sandbox = Sandbox::new();
    sandbox.write_registry(&registry(&[("u1", 1, "a@contoso.com", 1)], &[]));
    let socket = NotifySocket::bind(sandbox.dir.path());
    let mut daemon = sandbox.daemon(1, |cmd| {
        cmd.env("NOTIFY_SOCKET", &socket.path);
    });
    daemon.wait_serving();

    let broken = registry(&[("u1", 1, "a@contoso.com", 1)], &[]).replace("rank = 1", "rank = one");
    sandbox.write_registry(&broken);
    let line = daemon.log.wait_for_all(&["registry refused"]);
    assert!(line.contains("users.toml:8: "), "names the line: {line}");
    assert!(
        line.contains("(1 users on this rank) stays in force"),
        "{line}"
    );

    // The last good registry is still in force: the status still counts one user.
    daemon.signal("HUP");
    daemon.log.wait_for_all(&["settings reloaded"]);
    socket.messages.wait_for("a status with the one user", |m| {
        m.starts_with("STATUS=rank 1: 1 user (1 active")
    });
    assert_eq!(daemon.log.count(|l| l.contains("registry reloaded")), 0);

    // Mended, it is taken.
    sandbox.write_registry(&registry(&[], &[]));
    daemon
        .log
        .wait_for_all(&["registry reloaded", "users=0", "removed=1"]);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_registry_that_does_not_parse_at_start_is_a_configuration_error() {
    let sandbox = Sandbox::new();
    sandbox.write_registry("version = 1\n[[users]]\nid = \n");
    let out = sandbox.run(&["run", "--rank", "1"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("users.toml:3:"), "{}", stderr(&out));
}

#[test]
fn a_corrupt_history_is_moved_aside_and_the_daemon_goes_on() {
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.daemon(5, |_| {});
    daemon.wait_serving();
    assert_eq!(daemon.stop().code(), Some(0));

    let rank_dir = sandbox.state_dir().join("rank-5");
    // Long enough for sled to check it (and find the checksum wrong), not to skip it as empty.
    std::fs::write(
        rank_dir.join("history").join("conf"),
        "not a sled configuration file",
    )
    .unwrap();
    let mut daemon = sandbox.daemon(5, |_| {});
    daemon.wait_serving();
    let line = daemon
        .log
        .wait_for_all(&["ERROR", "history database was corrupt"]);
    assert!(line.contains("history.corrupt-"), "{line}");
    assert_eq!(daemon.stop().code(), Some(0));
    let aside = std::fs::read_dir(&rank_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("history.corrupt-")
        })
        .count();
    assert_eq!(aside, 1);
}

#[test]
fn a_removed_users_history_is_dropped_by_its_rank_and_no_other() {
    use crmsync::history::{History, HistoryOptions};
    use crmsync::registry::SyncUserId;

    let sandbox = Sandbox::new();
    let options = HistoryOptions {
        cache_capacity_bytes: 1 << 20,
        flush_interval: std::time::Duration::from_millis(100),
    };
    let rank_dir = sandbox.state_dir().join("rank-1");
    std::fs::create_dir_all(&rank_dir).unwrap();
    let (gone, kept) = (
        SyncUserId::parse("gone").unwrap(),
        SyncUserId::parse("kept").unwrap(),
    );
    {
        let history = History::open(&rank_dir, &options).unwrap().history;
        history.ensure_user(&gone).unwrap();
        history.ensure_user(&kept).unwrap();
    }
    sandbox.write_registry(&registry(
        &[("kept", 1, "k@contoso.com", 1)],
        &[("gone", 1)],
    ));

    let mut daemon = sandbox.daemon(1, |_| {});
    daemon.wait_serving();
    daemon.log.wait_for_all(&[
        "removed user's history deleted",
        "user=gone",
        "existed=true",
    ]);
    assert_eq!(daemon.stop().code(), Some(0));

    let history = History::open(&rank_dir, &options).unwrap().history;
    assert!(!history.has_user(&gone));
    assert!(history.has_user(&kept));
}
