//! The Microsoft Graph v1.0 emulator (and the identity platform's token endpoint).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::scenario::{GraphTenant, MailboxSeed};
use super::{SandboxState, Target};

type AppState = Arc<SandboxState>;

/// All of the emulated Microsoft 365 tenant's state.
pub struct GraphStore {
    inner: Mutex<Tenant>,
}

struct Tenant {
    mailboxes: Vec<MailboxSeed>,
}

impl GraphStore {
    pub fn new(tenant: &GraphTenant, now: jiff::Timestamp, seed: u64) -> Self {
        let store = GraphStore {
            inner: Mutex::new(Tenant {
                mailboxes: Vec::new(),
            }),
        };
        store.reset(tenant, now, seed);
        store
    }

    /// Replaces the tenant's data.
    pub fn reset(&self, tenant: &GraphTenant, _now: jiff::Timestamp, _seed: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.mailboxes = tenant.mailboxes.clone();
        }
    }

    /// The canonical id of the mailbox a path segment names (id, UPN or address).
    pub fn resolve_mailbox(&self, id_or_address: &str) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        inner
            .mailboxes
            .iter()
            .find(|m| {
                m.id.eq_ignore_ascii_case(id_or_address)
                    || m.user_principal_name.eq_ignore_ascii_case(id_or_address)
                    || m.mail
                        .as_deref()
                        .is_some_and(|mail| mail.eq_ignore_ascii_case(id_or_address))
            })
            .map(|m| m.id.clone())
    }
}

/// The Graph API, mounted at `/v1.0`.
pub fn api_router() -> Router<AppState> {
    Router::new()
}

/// The identity platform, mounted at `/login` (the authority URL).
pub fn identity_router() -> Router<AppState> {
    Router::new()
}

/// Acting as a user in Outlook and inspecting mailboxes, at `/_sandbox/graph`.
pub fn control_router() -> Router<AppState> {
    Router::new()
}

/// What a request (path relative to `/v1.0`) is counted against: its mailbox for
/// `/users/{id|upn}/...`, else the app.
pub fn target_of(state: &SandboxState, path: &str) -> Target {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some(users), Some(user)) if users.eq_ignore_ascii_case("users") && !user.is_empty() => {
            let user = percent_decode(user);
            Target::Mailbox(state.graph.resolve_mailbox(&user).unwrap_or(user))
        }
        _ => Target::GraphApp,
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    let now = jiff::Timestamp::now();
    json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": uuid::Uuid::new_v4().to_string(),
                "client-request-id": uuid::Uuid::new_v4().to_string(),
            }
        }
    })
}

/// The documented throttling answer (the caller adds `Retry-After`).
pub fn throttled(concurrency: bool) -> Response {
    let now = jiff::Timestamp::now();
    let message = if concurrency {
        "Application is over its MailboxConcurrency limit."
    } else {
        "Please retry again later."
    };
    let body = json!({
        "error": {
            "code": if concurrency { "ApplicationThrottled" } else { "TooManyRequests" },
            "innerError": {
                "code": "429",
                "date": now.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                "message": "Please retry after",
                "request-id": uuid::Uuid::new_v4().to_string(),
                "status": "429"
            },
            "message": message
        }
    });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

/// A 5xx in Graph's error shape.
pub fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        503 => (
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        504 => ("gatewayTimeout", "The gateway timed out."),
        _ => ("generalException", "An internal server error occurred."),
    };
    (status, Json(error_body(code, message))).into_response()
}
