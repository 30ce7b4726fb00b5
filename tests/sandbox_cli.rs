//! `crmsync sandbox` as a separate process, the way black-box tests and benchmarks use it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::{BIN, PATIENCE, Sandbox};
use serde_json::Value;

#[test]
fn the_sandbox_process_prints_its_urls_writes_a_valid_config_and_stops_on_sigterm() {
    let dir = Sandbox::new();
    let config_dir = dir.path("sbx");
    let mut child = Command::new(BIN)
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            "small",
            "--limits",
            "scaled:10",
            "--json",
        ])
        .arg("--write-config")
        .arg(&config_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the sandbox");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(PATIENCE)
        .expect("the sandbox prints a line");
    let info: Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(info["scenario"], "small");
    let control = info["urls"]["control"]
        .as_str()
        .expect("control URL")
        .to_string();

    let answer: Value = reqwest::blocking::get(&control)
        .and_then(|r| r.json())
        .expect("the control API answers");
    assert_eq!(answer["limits"]["graph_mailbox"]["requests"], 1000);

    // The written configuration is one crmsync accepts as it is.
    let config = info["config"].as_str().expect("config path");
    let out = Command::new(BIN)
        .args(["config", "check", "--config", config])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(info["urls"]["graph"].as_str().unwrap()),
        "{shown}"
    );
    assert!(!shown.contains(info["credentials"]["graph_client_secret"].as_str().unwrap()));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bad_sandbox_arguments_exit_64() {
    for args in [
        &["sandbox", "--listen", "127.0.0.1:0", "--scenario", "huge"][..],
        &["sandbox", "--listen", "127.0.0.1:0", "--limits", "fast"],
        &[
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            "generated:users=x",
        ],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
