//! The identity platform: tokens, their expiry by the sandbox clock, the documented errors.

use std::time::Duration;

use serde_json::{Value, json};

use super::G;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expire_by_the_sandbox_clock_and_renewals_are_counted() {
    let mut g = G::start().await;
    let user = g.mailbox(0).id;
    let issued = g.state().graph.tokens_issued();
    assert_eq!(g.get(&format!("/users/{user}/events")).await.status, 200);
    g.state().clock.advance(Duration::from_secs(3600));
    let expired = g.get(&format!("/users/{user}/events")).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.code(), "InvalidAuthenticationToken");
    assert!(expired.header("WWW-Authenticate").is_some());
    g.token = g.new_token().await;
    let renewed = &g;
    assert_eq!(
        renewed.get(&format!("/users/{user}/events")).await.status,
        200
    );
    assert_eq!(renewed.state().graph.tokens_issued(), issued + 1);
    let control = renewed
        .http
        .get(format!("{}/graph/tokens", renewed.sandbox.urls().control))
        .send()
        .await
        .unwrap();
    let control: Value = control.json().await.unwrap();
    assert_eq!(control["issued"], issued + 1);

    let no_token = renewed
        .http
        .get(format!("{}/users", renewed.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status().as_u16(), 401);
    let junk = renewed
        .http
        .get(format!("{}/users", renewed.base))
        .bearer_auth("junk")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status().as_u16(), 401);
    let me = renewed.get("/me/events").await;
    assert_eq!(me.status, 400, "/me is for delegated tokens");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_answers_the_documented_errors() {
    let g = G::start().await;
    let c = g.sandbox.credentials();
    let url = g.token_url();
    let good = [
        ("client_id", c.graph_client_id.clone()),
        ("scope", "https://graph.microsoft.com/.default".to_string()),
        ("client_secret", c.graph_client_secret.clone()),
        ("grant_type", "client_credentials".to_string()),
    ];
    let with = |key: &'static str, value: Option<&str>| {
        good.iter()
            .filter(|(k, _)| *k != key)
            .cloned()
            .chain(value.map(|v| (key, v.to_string())))
            .collect::<Vec<_>>()
    };
    type Form = Vec<(&'static str, String)>;
    let cases: Vec<(Form, u16, &str, u64)> = vec![
        (
            with("client_secret", Some("wrong")),
            401,
            "invalid_client",
            7000215,
        ),
        (with("client_secret", None), 401, "invalid_client", 7000218),
        (
            with("client_id", Some("00000000-0000-0000-0000-000000000000")),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            with("grant_type", Some("password")),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (with("grant_type", None), 400, "invalid_request", 900144),
        (with("scope", None), 400, "invalid_request", 900144),
        (
            with("scope", Some("User.Read")),
            400,
            "invalid_scope",
            1002012,
        ),
        (with("client_id", None), 400, "invalid_request", 900144),
    ];
    for (form, status, error, code) in cases {
        let answer = g.http.post(&url).form(&form).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{error} {code}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(body["error_codes"], json!([code]), "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}:"))
        );
    }
    let authority = g
        .sandbox
        .urls()
        .authority
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let unknown_tenant = g
        .http
        .post(format!("{authority}/contoso.example/oauth2/v2.0/token"))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_tenant.status().as_u16(), 400);
    let body: Value = unknown_tenant.json().await.unwrap();
    assert_eq!(body["error_codes"], json!([90002]));
    let get = g.http.get(&url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 400);
    // Client id and secret may come as HTTP Basic credentials (RFC 6749).
    let basic = g
        .http
        .post(&url)
        .basic_auth(&c.graph_client_id, Some(&c.graph_client_secret))
        .form(&[
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 200);
}
