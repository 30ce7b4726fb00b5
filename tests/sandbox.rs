//! The sandbox's shared machinery, in-process: the control API, the request log, injected
//! faults, limits with Retry-After and the record of violations.

mod common;

use std::time::Duration;

use crmsync::sandbox::{LimitSpec, Rate, Sandbox, SandboxOptions, Scenario};
use serde_json::{Value, json};

async fn sandbox() -> Sandbox {
    let scenario = Scenario::small(jiff::Timestamp::now());
    Sandbox::start(SandboxOptions::local(scenario))
        .await
        .expect("sandbox starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn control(
    sandbox: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", sandbox.urls().control);
    let mut request = client().request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("control API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_reports_urls_credentials_limits_and_clock() {
    let sandbox = sandbox().await;
    let (status, info) = control(&sandbox, reqwest::Method::GET, "", None).await;
    assert_eq!(status, 200);
    assert_eq!(info["scenario"], "small");
    assert_eq!(info["urls"]["graph"], sandbox.urls().graph.as_str());
    assert_eq!(
        info["credentials"]["graph_tenant_id"],
        sandbox.credentials().graph_tenant_id
    );

    let (status, limits) = control(
        &sandbox,
        reqwest::Method::PUT,
        "/limits",
        Some(json!({"preset": "scaled:100"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(limits["graph_mailbox"]["requests"], 100);
    let (status, _) = control(
        &sandbox,
        reqwest::Method::PUT,
        "/limits",
        Some(json!({"preset": "fast"})),
    )
    .await;
    assert_eq!(status, 400);

    let before = sandbox.state().clock.now();
    let (status, _) = control(
        &sandbox,
        reqwest::Method::POST,
        "/clock",
        Some(json!({"advance": "2h"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        sandbox.state().clock.now().duration_since(before) >= jiff::SignedDuration::from_hours(2)
    );
    let (status, body) = control(
        &sandbox,
        reqwest::Method::POST,
        "/clock",
        Some(json!({"advance": "soon"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap_or("").contains("soon"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injected_429_carries_retry_after_and_an_early_retry_is_a_violation() {
    let sandbox = sandbox().await;
    let mailbox = sandbox.state().scenario().graph.mailboxes[0].clone();
    let (status, _) = control(
        &sandbox,
        reqwest::Method::POST,
        "/faults",
        Some(json!({"kind": "too_many_requests", "retry_after_secs": 2.5, "mailbox": mailbox.id, "next": 1})),
    )
    .await;
    assert_eq!(status, 201);

    // Addressed by UPN, counted against the mailbox's id.
    let url = format!(
        "{}/users/{}/events",
        sandbox.urls().graph,
        mailbox.user_principal_name
    );
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["Retry-After"], "2.500");
    let body: Value = response.json().await.unwrap();
    common::shape::assert_same_shape(
        "graph/error-429.json",
        &common::shape::reference("graph/error-429.json"),
        &body,
    );

    // Right away again: the sandbox records the violation.
    let _ = client().get(&url).send().await.unwrap();
    let (_, violations) = control(&sandbox, reqwest::Method::GET, "/violations", None).await;
    let violations = violations.as_array().cloned().unwrap_or_default();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0]["target"]["id"], mailbox.id);

    let (_, log) = control(
        &sandbox,
        reqwest::Method::GET,
        &format!("/requests?mailbox={}", mailbox.id),
        None,
    )
    .await;
    let log = log.as_array().cloned().unwrap_or_default();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["status"], 429);
    assert_eq!(log[0]["fault"], "429");
    assert!(log[0]["seq"].as_u64() < log[1]["seq"].as_u64());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mailbox_rate_limit_answers_429_until_the_quota_refills() {
    let sandbox = sandbox().await;
    sandbox.state().limits.set_spec(LimitSpec {
        graph_mailbox: Some(Rate {
            requests: 3,
            per: Duration::from_secs(30),
        }),
        ..LimitSpec::off()
    });
    let mailbox = sandbox.state().scenario().graph.mailboxes[1].id.clone();
    let url = format!("{}/users/{mailbox}/events", sandbox.urls().graph);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(client().get(&url).send().await.unwrap());
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status().as_u16() != 429));
    assert_eq!(last.status().as_u16(), 429);
    let wait: f64 = last.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait > 5.0 && wait <= 10.0,
        "one request's worth of a 3-per-30s quota: {wait}"
    );
    // Another mailbox is not affected.
    let other = sandbox.state().scenario().graph.mailboxes[2].id.clone();
    let response = client()
        .get(format!("{}/users/{other}/events", sandbox.urls().graph))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status().as_u16(), 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn resets_truncated_bodies_and_server_errors_are_injected() {
    let sandbox = sandbox().await;
    let state = sandbox.state();
    let graph = sandbox.urls().graph.clone();
    for (rule, check) in [
        (json!({"kind": "reset", "next": 1}), "reset"),
        (json!({"kind": "truncate", "next": 1}), "truncate"),
        (
            json!({"kind": "server_error", "status": 503, "retry_after_secs": 1, "next": 1}),
            "503",
        ),
    ] {
        let rule: crmsync::sandbox::FaultRule = serde_json::from_value(rule).unwrap();
        state.faults.add(rule).unwrap();
        let result = client().get(format!("{graph}/users")).send().await;
        match check {
            "reset" => assert!(result.is_err() || result.unwrap().bytes().await.is_err()),
            "truncate" => {
                let response = result.unwrap();
                assert!(response.bytes().await.is_err(), "the body breaks off");
            }
            _ => {
                let response = result.unwrap();
                assert_eq!(response.status().as_u16(), 503);
                assert_eq!(response.headers()["Retry-After"], "1");
            }
        }
    }
    assert!(state.faults.list().is_empty(), "counted faults are used up");
}
