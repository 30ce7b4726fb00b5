//! `crmsync demo` end to end: the real binary starts the sandbox, links users through the
//! admin commands, runs two rank daemons, makes a round of edits and prints its summary. It
//! must converge without a duplicate and exit 0, and leave no daemon behind.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_crmsync");

/// The value after a summary line's label (`  duplicates       0` -> `0`).
fn value<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

#[test]
fn the_demo_converges_without_duplicates_and_prints_its_summary() {
    // Small numbers and generous deadlines: a loaded two-core machine must pass it.
    let output = Command::new(BIN)
        .args(["demo", "--users", "4", "--items", "4", "--timeout", "240s"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run crmsync demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Not a terminal: no progress lines.
    assert!(stderr.trim().is_empty(), "stderr: {stderr}");

    assert!(
        value(&stdout, "users linked").starts_with("4 (rank 1: 2, rank 2: 2)"),
        "{stdout}"
    );
    for kind in ["diary items", "to-dos", "contacts"] {
        let counts: Vec<u64> = value(&stdout, kind)
            .split_whitespace()
            .map(|n| n.parse().expect("a count"))
            .collect();
        assert_eq!(counts.len(), 2, "{kind}: {stdout}");
        assert_eq!(
            counts[0], counts[1],
            "{kind}: both sides the same: {stdout}"
        );
        assert!(counts[0] > 0, "{kind}: {stdout}");
    }
    assert_eq!(value(&stdout, "duplicates"), "0", "{stdout}");
    assert!(
        value(&stdout, "conflicts").starts_with("1 (policy newest"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Outlook's version kept on both sides"),
        "the conflict and how it was resolved: {stdout}"
    );
    assert!(
        value(&stdout, "requests").starts_with("Microsoft Graph"),
        "{stdout}"
    );
    assert!(value(&stdout, "throttle waits").contains("429"), "{stdout}");
    assert!(value(&stdout, "time").ends_with('s'), "{stdout}");
    assert!(
        value(&stdout, "result").starts_with("converged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rank 1 stopped cleanly (exit 0); rank 2 stopped cleanly (exit 0)"),
        "{stdout}"
    );
    // No secret of the sandbox's tenants is printed.
    for secret in [
        "sandbox-graph-secret-",
        "sandbox-password-",
        "SysUserToken-",
    ] {
        assert!(!stdout.contains(secret), "{secret} in {stdout}");
    }
}

#[test]
fn nonsense_sizes_are_usage_errors() {
    let output = Command::new(BIN)
        .args(["demo", "--users", "1"])
        .output()
        .expect("run crmsync demo");
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--users"));
}
