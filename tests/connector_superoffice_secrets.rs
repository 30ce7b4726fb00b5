//! No secret, token or ticket in any log line at trace level, in `Debug` output or in errors.
//! Its own test binary: the log capture is per thread, and no other test may share it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crmsync::connector::CrmConnector;
use crmsync::connector::model::{DiaryItem, Item, Kind, ShowAs, When, Window};
use crmsync::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crmsync::limits::Backoff;
use crmsync::sandbox::{Sandbox, SandboxOptions, Scenario};

async fn start() -> Sandbox {
    Sandbox::start(SandboxOptions::local(Scenario::small(
        jiff::Timestamp::now(),
    )))
    .await
    .expect("sandbox starts")
}

fn fast(sandbox: &Sandbox) -> SuperOfficeOptions {
    let mut options = common::superoffice::client_options(sandbox.state());
    options.backoff = Backoff {
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
        retries: 2,
    };
    options
}

fn online(sandbox: &Sandbox) -> SuperOfficeClient {
    SuperOfficeClient::new(
        &common::superoffice::system_user_settings(sandbox.state()),
        fast(sandbox),
    )
    .expect("client")
}

fn window(sandbox: &Sandbox) -> Window {
    let now = sandbox.state().clock.now();
    Window {
        start: now - jiff::SignedDuration::from_hours(24 * 30),
        end: now + jiff::SignedDuration::from_hours(24 * 120),
    }
}

fn meeting(start: &str, end: &str) -> Item {
    Item::Diary(DiaryItem {
        subject: "Quarterly review".into(),
        body: String::new(),
        when: When::Timed {
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        },
        location: String::new(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: None,
        task_type: None,
        organized_by_other: false,
        series: None,
    })
}

/// A log writer tests can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_token_or_ticket_reaches_a_log_line_at_trace_level() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let sandbox = start().await;
    let client = online(&sandbox);
    let window = window(&sandbox);
    let diary = client
        .changes(&[101, 102], Kind::Diary, None, &window)
        .await
        .unwrap();
    sandbox.state().superoffice.expire_tickets();
    client
        .changes(&[101, 102], Kind::Diary, Some(&diary.cursor), &window)
        .await
        .unwrap();
    let _ = client
        .create(
            999,
            &meeting("2026-12-11T09:00:00Z", "2026-12-11T10:00:00Z"),
        )
        .await;
    let basic = SuperOfficeClient::new(
        &common::superoffice::basic_settings(sandbox.state()),
        fast(&sandbox),
    )
    .unwrap();
    basic.associates().await.unwrap();
    sandbox
        .state()
        .superoffice
        .set_tenant_state("OfflineMaintenance")
        .unwrap();
    let down = online(&sandbox).associates().await.unwrap_err();
    let debug = format!("{client:?} {basic:?} {down:?} {down}");

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("SuperOffice system user ticket obtained"),
        "trace logging ran: {}",
        &text[..text.len().min(3000)]
    );
    let c = sandbox.credentials();
    let basic_pair = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", c.superoffice_username, c.superoffice_password),
    );
    let key_line = c
        .superoffice_private_key_pem
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    for (name, secret) in [
        ("client secret", c.superoffice_client_secret.as_str()),
        (
            "system user token",
            c.superoffice_system_user_token.as_str(),
        ),
        ("private key", key_line.as_str()),
        ("password", c.superoffice_password.as_str()),
        ("basic credentials", basic_pair.as_str()),
        ("a ticket", "7T:"),
        ("a JWT", "eyJ"),
    ] {
        assert!(!text.contains(secret), "{name} in the log");
        assert!(!debug.contains(secret), "{name} in Debug or an error");
    }
}
