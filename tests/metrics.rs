//! The metrics endpoint over real HTTP, and the Graph client feeding it against the
//! in-process sandbox (a 429 with `Retry-After` is counted, throttled and waited for).

use std::sync::Arc;
use std::time::Duration;

use crmsync::connector::MailboxConnector;
use crmsync::connector::graph::{BatchItem, GraphClient, GraphOptions};
use crmsync::connector::http::Retry;
use crmsync::connector::model::Kind as ItemKind;
use crmsync::metrics::{self, Metrics, MetricsError, Operation, PassResult, Side};
use crmsync::registry::{Kind, Rank};
use crmsync::sandbox::FaultKind;
use reqwest::Method;
use tokio_util::sync::CancellationToken;

// Most of the harness serves the Graph client's own tests.
#[allow(dead_code)]
#[path = "connector_graph/harness.rs"]
mod harness;

/// Bounds a wait that should end at once; only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// The value of the sample `name` whose labels include `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, v)| v.parse().ok())
}

async fn scrape(addr: std::net::SocketAddr) -> (String, String) {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("the endpoint answers");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, response.text().await.expect("a body"))
}

fn rank(n: u16) -> Rank {
    Rank::new(n).expect("a rank")
}

#[tokio::test]
async fn the_endpoint_serves_every_series_as_openmetrics_until_stopped() {
    let m = Metrics::new(rank(4));
    let stop = CancellationToken::new();
    let (addr, task) = metrics::serve("127.0.0.1:0".parse().unwrap(), m.clone(), stop.clone())
        .await
        .expect("serves");
    assert_ne!(addr.port(), 0, "the bound port is returned");

    m.pass_finished(Kind::Diary, PassResult::Ok, Duration::from_millis(40));
    m.items(Kind::Task, Operation::Updated, Side::Crm, 2);
    m.conflicts(Kind::Diary, 1);
    m.quarantined(Kind::Contact, 1);
    m.error("user");
    m.set_users(&[("ok", 2), ("backing_off", 1)]);
    m.set_history_bytes(4096);
    m.tick();

    let (content_type, text) = scrape(addr).await;
    assert_eq!(content_type, metrics::CONTENT_TYPE);
    assert!(content_type.starts_with("application/openmetrics-text"));
    assert!(text.ends_with("# EOF\n"));
    for (name, labels, expected) in [
        (
            "crmsync_passes_total",
            &[("kind", "diary"), ("result", "ok")][..],
            1.0,
        ),
        (
            "crmsync_pass_duration_seconds_count",
            &[("kind", "diary")],
            1.0,
        ),
        (
            "crmsync_items_total",
            &[("kind", "task"), ("operation", "updated"), ("side", "crm")],
            2.0,
        ),
        ("crmsync_conflicts_total", &[("kind", "diary")], 1.0),
        (
            "crmsync_items_quarantined_total",
            &[("kind", "contact")],
            1.0,
        ),
        ("crmsync_errors_total", &[("class", "user")], 1.0),
        ("crmsync_users", &[("state", "backing_off")], 1.0),
        ("crmsync_history_size_bytes", &[], 4096.0),
        ("crmsync_ticks_total", &[], 1.0),
        ("crmsync_http_throttled_total", &[("service", "graph")], 0.0),
        (
            "crmsync_throttle_wait_seconds_total",
            &[("service", "superoffice")],
            0.0,
        ),
        ("crmsync_limiter_queue_depth", &[("service", "graph")], 0.0),
    ] {
        let mut labels = labels.to_vec();
        labels.push(("rank", "4"));
        assert_eq!(
            value(&text, name, &labels),
            Some(expected),
            "{name} {labels:?} in:\n{text}"
        );
    }

    let other = reqwest::get(format!("http://{addr}/other")).await.unwrap();
    assert_eq!(other.status(), 404);

    stop.cancel();
    tokio::time::timeout(HANG, task)
        .await
        .expect("the endpoint stops when told")
        .expect("the task ends cleanly");
}

#[tokio::test]
async fn a_taken_port_is_an_error_at_once_that_names_it() {
    let stop = CancellationToken::new();
    let (taken, _task) = metrics::serve(
        "127.0.0.1:0".parse().unwrap(),
        Metrics::new(rank(1)),
        stop.clone(),
    )
    .await
    .expect("serves");
    let second = metrics::serve(taken, Metrics::new(rank(1)), stop.clone()).await;
    match second {
        Err(e @ MetricsError::Bind { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&taken.to_string()), "{message}");
            assert!(message.contains("in use"), "{message}");
            assert!(message.contains("[metrics] listen"), "{message}");
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    stop.cancel();
}

fn observed(t: &harness::T, m: &Metrics) -> GraphClient {
    GraphClient::new(
        &t.settings,
        GraphOptions {
            observer: Some(Arc::new(m.clone())),
            ..harness::options()
        },
    )
    .expect("a client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_client_counts_answers_throttles_and_waits() {
    let t = harness::T::start().await;
    let m = Metrics::new(rank(2));
    let client = observed(&t, &m);
    let mailbox = t.mailbox(0);
    t.fault(
        FaultKind::TooManyRequests {
            retry_after_secs: 0.2,
            as_http_date: false,
        },
        mailbox.id.as_deref(),
        None,
        None,
        Some(1),
    );
    client
        .changes(&mailbox, ItemKind::Diary, None, &t.window())
        .await
        .expect("the round completes after the pause");

    let stop = CancellationToken::new();
    let (addr, _task) = metrics::serve("127.0.0.1:0".parse().unwrap(), m.clone(), stop.clone())
        .await
        .expect("serves");
    let (_, text) = scrape(addr).await;
    let graph = ("service", "graph");
    let ok = value(
        &text,
        "crmsync_http_requests_total",
        &[graph, ("status", "200"), ("rank", "2")],
    );
    assert!(ok.is_some_and(|n| n > 0.0), "{text}");
    assert_eq!(
        value(
            &text,
            "crmsync_http_requests_total",
            &[graph, ("status", "429")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "crmsync_http_throttled_total", &[graph]),
        Some(1.0)
    );
    let waited = value(&text, "crmsync_throttle_wait_seconds_total", &[graph]);
    assert!(waited.is_some_and(|s| s > 0.0), "{text}");
    assert_eq!(
        value(&text, "crmsync_limiter_queue_depth", &[graph]),
        Some(0.0),
        "nobody waits any more"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_counts_its_round_trips_and_each_item_a_429_inside_as_a_throttle() {
    let t = harness::T::generated(2).await;
    let m = Metrics::new(rank(2));
    let client = observed(&t, &m);
    let items: Vec<BatchItem> = [0, 1, 1]
        .into_iter()
        .map(|i| {
            let mailbox = t.mailbox(i);
            BatchItem {
                url: format!(
                    "/users/{}/events?$top=1&$select=id",
                    mailbox.id.clone().unwrap_or_default()
                ),
                mailbox,
                method: Method::GET,
                prefer: None,
                body: None,
                retry: Retry::Safe,
                if_match: None,
            }
        })
        .collect();
    t.fault(
        FaultKind::TooManyRequests {
            retry_after_secs: 0.2,
            as_http_date: false,
        },
        t.mailbox(0).id.as_deref(),
        None,
        None,
        Some(1),
    );
    let replies = client.batch(items).await;
    assert!(
        replies
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status == 200))
    );
    let text = m.render();
    let graph = ("service", "graph");
    // Two round trips (all three items, then the throttled one alone), three items answered
    // 200 in the end and one 429.
    assert_eq!(
        value(
            &text,
            "crmsync_http_requests_total",
            &[graph, ("status", "200")]
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "crmsync_http_requests_total",
            &[graph, ("status", "429")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "crmsync_http_throttled_total", &[graph]),
        Some(1.0)
    );
    let waited = value(&text, "crmsync_throttle_wait_seconds_total", &[graph]);
    assert!(waited.is_some_and(|s| s > 0.0), "{text}");
}
