//! `$batch` and the limits: 20 requests at most, `dependsOn` and 424, per-item 429 with
//! `Retry-After`, the per-mailbox rate and concurrency limits.

use std::time::Duration;

use crmsync::sandbox::{LimitSpec, Rate};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::G;
use super::common::PATIENCE;

fn item<'a>(answer: &'a Value, id: &str) -> &'a Value {
    answer["responses"]
        .as_array()
        .and_then(|r| r.iter().find(|i| i["id"] == id))
        .unwrap_or_else(|| panic!("no item {id} in {answer}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_takes_at_most_twenty_requests() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let requests = |n: usize| json!({"requests": (0..n).map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{user}/events?$top=1")})).collect::<Vec<_>>()});
    let too_many = g.post("/$batch", &requests(21)).await;
    assert_eq!(too_many.status, 400, "{}", too_many.body);
    assert_eq!(too_many.code(), "BadRequest");
    let twenty = g.post("/$batch", &requests(20)).await;
    assert_eq!(twenty.status, 200);
    let responses = twenty.body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 20);
    assert!(
        responses
            .iter()
            .all(|r| r["status"] == 200 && r["body"]["value"].is_array())
    );

    for (bad, why) in [
        (json!({"requests": []}), "empty"),
        (
            json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}]}),
            "duplicate ids",
        ),
        (
            json!({"requests": [{"id": "1", "method": "POST", "url": format!("/users/{user}/events"), "body": {}}]}),
            "a body without Content-Type",
        ),
        (
            json!({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]}),
            "an unknown dependency",
        ),
        (
            json!({"requests": [{"method": "GET", "url": "/users"}]}),
            "no id",
        ),
        (
            json!({"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]}),
            "an absolute url",
        ),
        (json!({"value": 1}), "no requests"),
    ] {
        let answer = g.post("/$batch", &bad).await;
        assert_eq!(answer.status, 400, "{why}: {}", answer.body);
        assert!(answer.body["error"]["message"].is_string(), "{why}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn depends_on_orders_requests_and_a_failure_fails_its_dependants_with_424() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let event = json!({
        "subject": "From a batch",
        "start": {"dateTime": "2026-02-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-02-01T10:00:00", "timeZone": "UTC"},
        "transactionId": "batch-1",
    });
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": format!("users/{user}/events"), "body": event, "headers": {"Content-Type": "application/json"}},
        {"id": "2", "dependsOn": ["1"], "method": "GET", "url": format!("/users/{user}/events?$filter=subject eq 'From a batch'")},
        {"id": "3", "method": "GET", "url": format!("/users/{user}/events/AAMkAGI1AAAt9AHjAAA=")},
        {"id": "4", "dependsOn": ["3"], "method": "GET", "url": "/users"},
        {"id": "5", "dependsOn": ["4"], "method": "GET", "url": "/users"},
    ]});
    let answer = g.post("/$batch", &batch).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(item(&answer.body, "1")["status"], 201);
    assert!(item(&answer.body, "1")["headers"]["Location"].is_string());
    let found = item(&answer.body, "2");
    assert_eq!(found["status"], 200);
    assert_eq!(
        found["body"]["value"].as_array().unwrap().len(),
        1,
        "2 ran after 1"
    );
    assert_eq!(item(&answer.body, "3")["status"], 404);
    assert_eq!(
        item(&answer.body, "3")["body"]["error"]["code"],
        "ErrorItemNotFound"
    );
    for dependant in ["4", "5"] {
        assert_eq!(item(&answer.body, dependant)["status"], 424, "{dependant}");
        assert!(item(&answer.body, dependant)["body"]["error"]["code"].is_string());
    }
    // Each item is a request of its own in the log, marked as part of the batch.
    let log = g.state().log.all();
    let outer = log
        .iter()
        .find(|r| r.path.ends_with("$batch"))
        .expect("the batch is logged");
    let items: Vec<_> = log.iter().filter(|r| r.batch == Some(outer.seq)).collect();
    assert_eq!(items.len(), 3, "the three that ran: {items:?}");
    assert!(items.iter().all(|r| r.path.starts_with("/v1.0/users")));
    assert!(
        items
            .iter()
            .filter(|r| r.mailbox.as_deref() == Some(user.as_str()))
            .count()
            >= 3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_item_over_the_mailbox_limit_gets_its_own_429_with_retry_after() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    g.state().limits.set_spec(LimitSpec {
        graph_mailbox: Some(Rate {
            requests: 3,
            per: Duration::from_secs(600),
        }),
        ..LimitSpec::off()
    });
    let batch = json!({"requests": (1..=5).map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{user}/todo/lists")})).collect::<Vec<_>>()});
    let answer = g.post("/$batch", &batch).await;
    assert_eq!(answer.status, 200, "the batch itself is accepted");
    let responses = answer.body["responses"].as_array().unwrap();
    let ok = responses.iter().filter(|r| r["status"] == 200).count();
    let throttled: Vec<&Value> = responses.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!((ok, throttled.len()), (3, 2), "{}", answer.body);
    for t in throttled {
        let wait: f64 = t["headers"]["Retry-After"]
            .as_str()
            .expect("Retry-After in the item's headers")
            .parse()
            .unwrap();
        assert!(wait > 0.0);
        assert_eq!(t["body"]["error"]["code"], "TooManyRequests");
    }
    // The app-wide requests (the batch itself, /users) are not the mailbox's.
    assert_eq!(g.get("/users").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mailbox_rate_limit_answers_429_with_retry_after_and_records_early_retries() {
    let g = G::start().await;
    let user = g.mailbox(0).user_principal_name;
    g.state().limits.set_spec(LimitSpec {
        graph_mailbox: Some(Rate {
            requests: 3,
            per: Duration::from_secs(600),
        }),
        ..LimitSpec::off()
    });
    for _ in 0..3 {
        assert_eq!(g.get(&format!("/users/{user}/contacts")).await.status, 200);
    }
    let throttled = g.get(&format!("/users/{user}/contacts")).await;
    assert_eq!(throttled.status, 429);
    let wait: f64 = throttled.header("Retry-After").unwrap().parse().unwrap();
    assert!(
        wait > 100.0,
        "one request's worth of 3 per 10 minutes: {wait}"
    );
    assert_eq!(throttled.code(), "TooManyRequests");
    assert!(g.state().limits.violations().is_empty());
    let again = g.get(&format!("/users/{user}/contacts")).await;
    assert_eq!(again.status, 429);
    assert_eq!(
        g.state().limits.violations().len(),
        1,
        "a retry before Retry-After ran out"
    );
    let other = g.mailbox(1).id;
    assert_eq!(g.get(&format!("/users/{other}/contacts")).await.status, 200);
}

/// Sends a POST's head with `Expect: 100-continue` and waits for `100 Continue`, which the
/// server sends once the request was admitted and its handler reads the body: from then on
/// it is in flight until the body is sent.
async fn hold(g: &G, path: &str, body: &str) -> TcpStream {
    let url = &g.sandbox.urls().graph;
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1.0{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        g.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let text = read_head(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 100"), "{text}");
    stream
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(PATIENCE, async {
        while !buf.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            buf.push(byte[0]);
        }
    })
    .await
    .expect("an answer in time");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifth_concurrent_request_for_a_mailbox_gets_429() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    g.state().limits.set_spec(LimitSpec {
        graph_mailbox_concurrency: Some(4),
        ..LimitSpec::off()
    });
    let body = json!({
        "subject": "held",
        "start": {"dateTime": "2026-02-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-02-01T10:00:00", "timeZone": "UTC"},
    })
    .to_string();
    let path = format!("/users/{user}/events");
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(hold(&g, &path, &body).await);
    }
    let fifth = g.get(&path).await;
    assert_eq!(fifth.status, 429, "{}", fifth.body);
    assert!(fifth.header("Retry-After").is_some());
    assert_eq!(fifth.code(), "ApplicationThrottled");
    // Another mailbox is not affected.
    assert_eq!(
        g.get(&format!("/users/{}/events", g.mailbox(1).id))
            .await
            .status,
        200
    );
    for stream in &mut held {
        stream.write_all(body.as_bytes()).await.unwrap();
        let head = read_head(stream).await;
        assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    }
}
