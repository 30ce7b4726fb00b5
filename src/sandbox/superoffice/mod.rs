//! The SuperOffice Web API emulator: the environment host (system-user authentication,
//! tenant status) and the tenant host (REST API v1).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::SandboxState;
use super::scenario::SuperOfficeTenant;

type AppState = Arc<SandboxState>;

/// All of the emulated SuperOffice tenant's state.
pub struct SuperOfficeStore {
    inner: Mutex<SuperOfficeTenant>,
}

impl SuperOfficeStore {
    pub fn new(tenant: &SuperOfficeTenant, now: jiff::Timestamp, seed: u64) -> Self {
        let store = SuperOfficeStore {
            inner: Mutex::new(tenant.clone()),
        };
        store.reset(tenant, now, seed);
        store
    }

    /// Replaces the tenant's data.
    pub fn reset(&self, tenant: &SuperOfficeTenant, _now: jiff::Timestamp, _seed: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            *inner = tenant.clone();
        }
    }
}

/// The environment host: `/Login/api/PartnerSystemUser/Authenticate`, `/api/state/{ctx}`.
pub fn environment_router() -> Router<AppState> {
    Router::new()
}

/// The tenant host: `/{ctx}/api/v1/...`.
pub fn tenant_router() -> Router<AppState> {
    Router::new()
}

/// Acting as a user in SuperOffice and inspecting the tenant, at `/_sandbox/superoffice`.
pub fn control_router() -> Router<AppState> {
    Router::new()
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "Error": true,
            "ErrorType": error_type,
            "ErrorMessage": message,
            "ErrorSource": "",
            "Message": message,
        })),
    )
        .into_response()
}

/// Over the request rate (SuperOffice documents no body; its REST error shape is used).
pub fn throttled() -> Response {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Too many requests: no more than 10 API calls per second",
    )
}

/// A 5xx in SuperOffice's error shape.
pub fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(
        status,
        "ServerError",
        "The server could not process the request",
    )
}
