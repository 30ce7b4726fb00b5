use std::sync::Arc;

use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const TENANT: &str = "contoso.onmicrosoft.com";
const SECRET: &str = "s3cr3t/with+special=chars";

async fn tokens(server: &MockServer) -> GraphTokens {
    GraphTokens::new(
        reqwest::Client::new(),
        &Url::parse(&server.uri()).unwrap(),
        TENANT,
        "535fb089-9ff3-47b6-9bfb-4f1264799865",
        Secret::new(SECRET),
        &Url::parse("https://graph.microsoft.com/v1.0").unwrap(),
    )
    .unwrap()
}

fn token_answer(expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.sig"
    }))
}

#[tokio::test]
async fn the_token_request_is_the_documented_client_credentials_form() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains(
            "client_id=535fb089-9ff3-47b6-9bfb-4f1264799865",
        ))
        .and(body_string_contains(
            "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        ))
        .and(body_string_contains(
            "client_secret=s3cr3t%2Fwith%2Bspecial%3Dchars",
        ))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(token_answer(3599))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = tokens(&server).await;
    let headers = tokens.authorize().await.unwrap();
    assert_eq!(headers[0].0, AUTHORIZATION);
    assert!(headers[0].1.is_sensitive());
    assert_eq!(
        headers[0].1.to_str().unwrap(),
        "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.sig"
    );
}

#[tokio::test]
async fn a_token_is_shared_by_callers_and_fetched_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_answer(3599).set_delay(Duration::from_millis(100)))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = Arc::new(tokens(&server).await);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let tokens = tokens.clone();
        tasks.push(tokio::spawn(
            async move { tokens.authorize().await.is_ok() },
        ));
    }
    for task in tasks {
        assert!(task.await.unwrap());
    }
    assert!(tokens.authorize().await.is_ok());
    assert_eq!(tokens.fetched(), 1);
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires_and_after_a_refusal() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_answer(1))
        .mount(&server)
        .await;
    let tokens = tokens(&server).await;
    tokens.authorize().await.unwrap();
    tokens.authorize().await.unwrap();
    assert_eq!(tokens.fetched(), 1);
    // After 80 % of its one-second life, before it expires.
    tokio::time::sleep(Duration::from_millis(850)).await;
    tokens.authorize().await.unwrap();
    assert_eq!(tokens.fetched(), 2);
    tokens.refused();
    tokens.authorize().await.unwrap();
    assert_eq!(tokens.fetched(), 3);
}

#[tokio::test]
async fn refused_credentials_are_named_without_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x\r\nCorrelation ID: y",
            "error_codes": [7000215],
        })))
        .mount(&server)
        .await;
    let result = tokens(&server).await.authorize().await;
    match result {
        Err(ConnectorError::Service { what, .. }) => {
            assert!(what.contains("invalid_client"), "{what}");
            assert!(what.contains("AADSTS7000215"), "{what}");
            assert!(!what.contains("Trace ID"), "{what}");
            assert!(!what.contains(SECRET), "{what}");
        }
        other => panic!("expected a service error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unavailable_token_endpoint_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let result = tokens(&server).await.authorize().await;
    assert!(
        matches!(result, Err(ConnectorError::Transient { .. })),
        "{result:?}"
    );
}

#[test]
fn the_scope_follows_the_graph_url() {
    let scope = |u: &str| scope_for(&Url::parse(u).unwrap());
    assert_eq!(
        scope("https://graph.microsoft.com/v1.0"),
        "https://graph.microsoft.com/.default"
    );
    assert_eq!(
        scope("https://graph.microsoft.us/v1.0/"),
        "https://graph.microsoft.us/.default"
    );
    assert_eq!(
        scope("https://microsoftgraph.chinacloudapi.cn/v1.0"),
        "https://microsoftgraph.chinacloudapi.cn/.default"
    );
    // A proxy or the sandbox stands in for the public cloud.
    assert_eq!(
        scope("http://127.0.0.1:7700/v1.0"),
        "https://graph.microsoft.com/.default"
    );
}
