//! The Microsoft Graph emulator, in-process: conformance of its answers with the documented
//! samples in ../shared/reference/graph, and its behaviour (paging, delta, tokens, limits,
//! batching, bad input).

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod batch_limits;
mod calendar;
mod conformance;
mod delta;
mod errors;
mod recurrence;
mod todo_contacts;

use std::sync::Arc;

use crmsync::sandbox::scenario::MailboxSeed;
use crmsync::sandbox::{Sandbox, SandboxOptions, SandboxState, Scenario};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A property id crmsync might stamp items with.
pub const STAMP: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmsyncId";

/// A sandbox, a client and a valid token.
pub struct G {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub token: String,
    pub base: String,
}

/// An answer: status, headers, JSON body (`Null` when there is none).
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The Graph error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl G {
    pub async fn start() -> G {
        G::with(Scenario::small(jiff::Timestamp::now())).await
    }

    pub async fn with(scenario: Scenario) -> G {
        let sandbox = Sandbox::start(SandboxOptions::local(scenario))
            .await
            .expect("sandbox starts");
        let base = sandbox
            .urls()
            .graph
            .as_str()
            .trim_end_matches('/')
            .to_string();
        let mut g = G {
            sandbox,
            http: reqwest::Client::new(),
            token: String::new(),
            base,
        };
        g.token = g.new_token().await;
        g
    }

    pub fn state(&self) -> &Arc<SandboxState> {
        self.sandbox.state()
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.state().clock.now()
    }

    pub fn mailbox(&self, i: usize) -> MailboxSeed {
        self.state().scenario().graph.mailboxes[i].clone()
    }

    pub fn token_url(&self) -> String {
        let tenant = self.sandbox.credentials().graph_tenant_id;
        let authority = self.sandbox.urls().authority.as_str().trim_end_matches('/');
        format!("{authority}/{tenant}/oauth2/v2.0/token")
    }

    /// A token from the token endpoint, with the sandbox's credentials.
    pub async fn new_token(&self) -> String {
        let c = self.sandbox.credentials();
        let response = self
            .http
            .post(self.token_url())
            .form(&[
                ("client_id", c.graph_client_id.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_secret", c.graph_client_secret.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .expect("token endpoint answers");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// A request to a full URL with the token and extra headers.
    pub async fn url(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the emulator answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request to a path below `/v1.0`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        self.url(method, &url, body, headers).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None, &[]).await
    }

    /// Follows `@odata.nextLink` to the end; all items and the final body.
    pub async fn all_pages(&self, first: &str, headers: &[(&str, &str)]) -> (Vec<Value>, Value) {
        let mut url = format!("{}{first}", self.base);
        let mut items = Vec::new();
        for _ in 0..10_000 {
            let page = self.url(Method::GET, &url, None, headers).await;
            assert_eq!(page.status, 200, "{}", page.body);
            items.extend(page.body["value"].as_array().cloned().unwrap_or_default());
            match page.body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => return (items, page.body),
            }
        }
        panic!("paging does not end");
    }

    /// A delta round from `url` (a path or a delta link) to its delta link.
    pub async fn delta_round(&self, url: &str, headers: &[(&str, &str)]) -> (Vec<Value>, String) {
        let first = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut url = first;
        let mut items = Vec::new();
        for _ in 0..10_000 {
            let page = self.url(Method::GET, &url, None, headers).await;
            assert_eq!(page.status, 200, "{}", page.body);
            items.extend(page.body["value"].as_array().cloned().unwrap_or_default());
            if let Some(next) = page.body["@odata.nextLink"].as_str() {
                url = next.to_string();
            } else {
                let delta = page.body["@odata.deltaLink"]
                    .as_str()
                    .expect("a round ends with a delta link");
                return (items, delta.to_string());
            }
        }
        panic!("the round does not end");
    }

    /// Creates an event through the API (UTC times) and returns it.
    pub async fn create_event(
        &self,
        user: &str,
        subject: &str,
        start: &str,
        end: &str,
        extra: Value,
    ) -> Value {
        let mut body = json!({
            "subject": subject,
            "start": {"dateTime": start, "timeZone": "UTC"},
            "end": {"dateTime": end, "timeZone": "UTC"},
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let answer = self.post(&format!("/users/{user}/events"), &body).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }
}

/// Ids of the items of a delta answer (changed ones and `@removed` ones apart).
pub fn split_delta(items: &[Value]) -> (Vec<String>, Vec<String>) {
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for item in items {
        let id = item["id"].as_str().unwrap_or_default().to_string();
        if item.get("@removed").is_some() {
            removed.push(id);
        } else {
            changed.push(id);
        }
    }
    (changed, removed)
}

/// A date `days` from the sandbox's today, as `YYYY-MM-DD`.
pub fn day(g: &G, days: i64) -> String {
    use jiff::ToSpan;
    let today = g.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    today.checked_add(days.days()).expect("a date").to_string()
}
