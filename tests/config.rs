//! `crmsync config check` and configuration errors, through the real binary.

mod common;

use common::{Sandbox, stderr, stdout};

#[test]
fn a_valid_configuration_is_printed_with_origins_and_exit_0() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("interval = \"1s\""), "{text}");
    assert!(
        text.contains("crmsync.toml:7"),
        "the origin of sync.interval: {text}"
    );
    assert!(text.contains("max_parallel_users = 64"), "{text}");
    assert!(text.contains("# built-in default"), "{text}");
}

#[test]
fn an_invalid_value_exits_78_and_names_the_key_and_line() {
    let sandbox = Sandbox::new();
    sandbox.write_config("[history]\ncache_capacity_mib = \"lots\"\n");
    let out = sandbox.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains("crmsync.toml:13: history.cache_capacity_mib"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());

    // The daemon refuses the same configuration with the same exit code.
    let out = sandbox.run(&["run", "--rank", "1"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("history.cache_capacity_mib"));
}

#[test]
fn an_unknown_key_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write_config("[history]\ncache_capacity_mb = 4\n");
    let out = sandbox.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains("crmsync.toml:13: history.cache_capacity_mb: unknown key"),
        "{err}"
    );
    assert!(
        err.contains("did you mean history.cache_capacity_mib?"),
        "{err}"
    );
}

#[test]
fn an_environment_override_wins_over_the_file() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .command(&["config", "check"])
        .env("CRMSYNC__SYNC__INTERVAL", "45s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("interval ="))
        .expect("sync.interval is shown");
    assert!(line.contains("\"45s\""), "{line}");
    assert!(
        line.contains("environment variable CRMSYNC__SYNC__INTERVAL"),
        "{line}"
    );

    let out = sandbox
        .command(&["config", "check"])
        .env("CRMSYNC__SYNC__INTERVAL", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("environment variable CRMSYNC__SYNC__INTERVAL: sync.interval"));
}

#[test]
fn a_missing_named_file_is_an_error_but_the_default_file_may_be_absent() {
    let sandbox = Sandbox::new();
    let out = std::process::Command::new(common::BIN)
        .args(["config", "check", "--config"])
        .arg(sandbox.path("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("missing.toml does not exist"));
}

#[test]
fn a_toml_syntax_error_names_line_and_column() {
    let sandbox = Sandbox::new();
    sandbox.write_config("[log]\nformat = json\n");
    let out = sandbox.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("crmsync.toml:13:10: not valid TOML"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_64() {
    let sandbox = Sandbox::new();
    for args in [
        &["run"][..],
        &["run", "--rank", "0"],
        &["run", "--rank", "1000"],
        &["frobnicate"],
    ] {
        let out = sandbox.run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(sandbox.run(&["--help"]).status.code(), Some(0));
}

const SECRET: &str = "s3cret-value-that-must-never-print";

#[test]
fn secrets_from_files_never_appear_in_config_check_or_trace_logs() {
    let sandbox = Sandbox::new();
    sandbox.write_config_with_connections(SECRET, "");
    let out = sandbox
        .command(&["config", "check"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(SECRET), "{all}");
    assert!(all.contains("client_secret = \"<redacted>\""), "{all}");
    assert!(all.contains("password = \"<redacted>\""), "{all}");

    let mut daemon = sandbox.daemon(1, |cmd| {
        cmd.env("RUST_LOG", "trace");
    });
    daemon.wait_serving();
    // A reload reads the secrets again.
    daemon.signal("HUP");
    daemon.log.wait_for_all(&["settings reloaded"]);
    assert_eq!(daemon.stop().code(), Some(0));
    let log = daemon.log.text();
    assert!(log.contains("TRACE"), "trace logging is on");
    assert!(!log.contains(SECRET), "{log}");
}

#[test]
fn secrets_come_from_the_credentials_directory() {
    let sandbox = Sandbox::new();
    sandbox.write("creds/crmsync_graph-contoso-client-secret", SECRET);
    sandbox.write_config("[mail_systems.contoso]\ntenant_id = \"t\"\nclient_id = \"c\"\n");
    let out = sandbox
        .command(&["config", "check"])
        .env("CREDENTIALS_DIRECTORY", sandbox.path("creds"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("credential graph-contoso-client-secret"),
        "{text}"
    );
    assert!(!text.contains(SECRET));

    let out = sandbox.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("$CREDENTIALS_DIRECTORY is not set"));
}

#[test]
fn the_superoffice_budget_and_its_sharers_are_shown() {
    let sandbox = Sandbox::new();
    sandbox.write_config_with_connections("x", "");
    let out = sandbox
        .command(&["config", "check"])
        .env("CRMSYNC__SUPEROFFICE__SHARED_BY_RANKS", "12")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_string()
    };
    assert!(
        line("calls_per_second = 10").contains("built-in default"),
        "{text}"
    );
    assert!(
        line("shared_by_ranks = 12").contains("CRMSYNC__SUPEROFFICE__SHARED_BY_RANKS"),
        "{text}"
    );

    let out = sandbox
        .command(&["config", "check"])
        .env("CRMSYNC__SUPEROFFICE__SHARED_BY_RANKS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(err.contains("superoffice.shared_by_ranks"), "{err}");
    assert!(err.contains("from 1 to 999"), "{err}");
}
