//! The Microsoft Graph v1.0 emulator (and the identity platform's token endpoint).
//!
//! Documented in docs/sandbox/graph.md: what is emulated, and every choice made where
//! Microsoft's documentation is silent.

mod api;
mod auth;
mod batch;
mod body;
mod calendar;
mod contacts;
mod contacts_api;
mod control;
mod delta;
mod error;
mod events;
mod events_json;
mod extprops;
mod filter;
mod query;
mod recurrence;
mod series;
mod store;
mod todo;
mod todo_api;
mod tokens;
mod users;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

pub use error::GraphError;

use super::scenario::GraphTenant;
use super::{SandboxState, Target};

type AppState = Arc<SandboxState>;

/// All of the emulated Microsoft 365 tenant's state.
pub struct GraphStore {
    tenant: RwLock<Arc<store::Tenant>>,
    tokens: Mutex<auth::TokenStore>,
    codec: tokens::Codec,
    /// Changes whenever the tenant's data is replaced, so older state tokens are refused.
    epoch: AtomicU64,
}

impl GraphStore {
    pub fn new(tenant: &GraphTenant, now: jiff::Timestamp, seed: u64) -> Self {
        // Tokens of another sandbox process (same seed) must not look valid here.
        let nonce = uuid::Uuid::new_v4().as_u64_pair().0;
        GraphStore {
            tenant: RwLock::new(Arc::new(store::Tenant::build(tenant, now, seed))),
            tokens: Mutex::new(auth::TokenStore::new(seed)),
            codec: tokens::Codec::new(seed),
            epoch: AtomicU64::new(nonce),
        }
    }

    /// Replaces the tenant's data (issued access tokens stay valid if the tenant and app
    /// stay the same; delta and paging tokens do not).
    pub fn reset(&self, tenant: &GraphTenant, now: jiff::Timestamp, seed: u64) {
        let built = Arc::new(store::Tenant::build(tenant, now, seed));
        match self.tenant.write() {
            Ok(mut t) => *t = built,
            Err(e) => *e.into_inner() = built,
        }
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// The canonical id of the mailbox a path segment names (id, UPN or address).
    pub fn resolve_mailbox(&self, id_or_address: &str) -> Option<String> {
        let tenant = self.tenant();
        tenant
            .resolve(id_or_address)
            .and_then(|i| tenant.users.get(i))
            .map(|u| u.id.clone())
    }

    fn tenant(&self) -> Arc<store::Tenant> {
        match self.tenant.read() {
            Ok(t) => t.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }
}

/// The Graph API, mounted at `/v1.0`.
pub fn api_router() -> Router<AppState> {
    Router::new().fallback(api::handle)
}

/// The identity platform, mounted at `/login` (the authority URL).
pub fn identity_router() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", any(auth::token_endpoint))
        .fallback(auth::not_found)
}

/// Acting as a user in Outlook and inspecting mailboxes, at `/_sandbox/graph`.
pub fn control_router() -> Router<AppState> {
    control::router()
}

/// What a request (path relative to `/v1.0`) is counted against: its mailbox for
/// `/users/{id|upn}/...`, else the app.
pub fn target_of(state: &SandboxState, path: &str) -> Target {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some(users), Some(user)) if users.eq_ignore_ascii_case("users") && !user.is_empty() => {
            let user = wire::percent_decode(user);
            Target::Mailbox(state.graph.resolve_mailbox(&user).unwrap_or(user))
        }
        _ => Target::GraphApp,
    }
}

/// An error body outside a request's handling (real time, fresh ids).
fn error_body(status: StatusCode, code: &str, message: &str) -> serde_json::Value {
    let ids = error::RequestIds::of(&axum::http::HeaderMap::new());
    GraphError::new(status, code, message).body(&ids, jiff::Timestamp::now())
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
    (status, Json(error_body(status, code, message))).into_response()
}
