//! No secret, access token or delta token in any log line, at trace level.
//!
//! Its own test binary: the subscriber is the process-wide default, so the lines of every
//! thread (client, sandbox, connection pool) reach it, and no other test's first use of a
//! log call site can leave that call site switched off.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crmsync::connector::MailboxConnector;
use crmsync::connector::model::Kind;
use crmsync::sandbox::FaultKind;

// Half of the harness goes unused by this one test.
#[allow(dead_code)]
#[path = "connector_graph/harness.rs"]
mod harness;

use harness::{T, diary, stamp, task};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_a_log_line_at_trace_level() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let t = T::start().await;
    let m = t.mailbox(0);
    let secret = t.sandbox.credentials().graph_client_secret;
    let round = t
        .client
        .changes(&m, Kind::Diary, None, &t.window())
        .await
        .unwrap();
    t.client
        .create(&m, &diary("Logged", &t), &stamp(Kind::Diary, 1))
        .await
        .unwrap();
    t.client
        .create(&m, &task("Logged"), &stamp(Kind::Task, 2))
        .await
        .unwrap();
    // A 401 and a renewal, a 429, a broken connection, an expired delta token.
    t.state().clock.advance(Duration::from_secs(7200));
    t.fault(
        FaultKind::TooManyRequests {
            retry_after_secs: 0.2,
            as_http_date: false,
        },
        m.id.as_deref(),
        None,
        None,
        Some(1),
    );
    t.fault(
        FaultKind::Reset,
        m.id.as_deref(),
        Some("delta"),
        None,
        Some(1),
    );
    let next = t
        .client
        .changes(&m, Kind::Diary, Some(&round.cursor), &t.window())
        .await
        .unwrap();
    t.client
        .poll(&[(m.clone(), Kind::Diary, next.cursor.clone())])
        .await;
    t.state()
        .graph
        .expire_delta_tokens(m.id.as_deref().unwrap());
    let _ = t
        .client
        .changes(&m, Kind::Diary, Some(&next.cursor), &t.window())
        .await;
    assert!(t.client.tokens_fetched() >= 2);
    let debug = format!("{:?}", t.client);

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(text.lines().count() > 20, "trace logging was on: {text}");
    let token = next
        .cursor
        .0
        .split("$deltatoken=")
        .nth(1)
        .unwrap()
        .to_string();
    for (what, needle) in [
        ("the client secret", secret.as_str()),
        ("an access token", "eyJ"),
        ("a bearer header", "Bearer "),
        ("a delta token", token.as_str()),
        ("a delta link", "deltatoken="),
        ("a skip link", "skiptoken="),
    ] {
        assert!(
            !text.contains(needle),
            "{what} in the log:\n{}",
            text.lines()
                .filter(|l| l.contains(needle))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            !debug.contains(needle) || what == "a delta token",
            "{what} in Debug: {debug}"
        );
    }
}
