//! The environment host (`sod`/`online` in production): system-user authentication, the
//! tenant status document and SuperID's signing keys. Tenant API calls that reach it are
//! refused with 421, as SuperOffice does since November 2023.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, auth, error, not_found};

pub const VERSION_LABEL: &str = "Release_11.10_2026.02.24-02";

pub fn router() -> Router<AppState> {
    Router::new().fallback(dispatch)
}

/// Paths are matched case-insensitively, as IIS does.
async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_ascii_lowercase();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["login", "api", "partnersystemuser", "authenticate"]) => {
            authenticate(&state, &body)
        }
        ("GET", ["api", "state", ctx]) => {
            let original = uri
                .path()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(ctx)
                .to_string();
            tenant_state(&state, &original)
        }
        ("GET", ["login", ".well-known", "jwks"]) => Json(auth::jwks()).into_response(),
        ("GET", ["login", ".well-known", "openid-configuration"]) => {
            let base = state.urls.superoffice.as_str().trim_end_matches('/');
            Json(json!({
                "issuer": base,
                "jwks_uri": format!("{base}/login/.well-known/jwks"),
                "id_token_signing_alg_values_supported": ["RS256"],
            }))
            .into_response()
        }
        (_, ["login", "api", "partnersystemuser", "authenticate"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Use POST to authenticate",
        ),
        (_, [_ctx, "api", ..]) => error(
            StatusCode::MISDIRECTED_REQUEST,
            "MisdirectedRequest",
            "Wrong subdomain used to access tenant",
        ),
        _ => not_found(&format!("No resource at {}", uri.path())),
    }
}

fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "IsSuccessful": false,
            "ErrorMessage": message,
            "Token": null,
        })),
    )
        .into_response()
}

/// `POST /Login/api/PartnerSystemUser/Authenticate`: a malformed request is a 400; a
/// well-formed one that fails a check is a 200 with `IsSuccessful: false` and the reason
/// (the service answers with its result object, which the documented clients inspect).
fn authenticate(state: &AppState, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return refused(StatusCode::BAD_REQUEST, "The request body is not JSON");
    };
    let field = |name: &str| request.get(name).and_then(Value::as_str);
    let (Some(signed), Some(app_token), Some(ctx)) = (
        field("SignedSystemToken"),
        field("ApplicationToken"),
        field("ContextIdentifier"),
    ) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "SignedSystemToken, ApplicationToken and ContextIdentifier are required strings",
        );
    };
    match request.get("ReturnTokenType") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("jwt") => {}
        None | Some(Value::Null) => {}
        Some(_) => {
            return refused(StatusCode::BAD_REQUEST, "ReturnTokenType must be \"JWT\"");
        }
    }
    let now = state.clock.now();
    let mut inner = state.superoffice.write();
    let inner = &mut *inner;
    let credentials = &inner.credentials;
    if !ctx.eq_ignore_ascii_case(&credentials.context_identifier) {
        return refused(StatusCode::OK, &format!("Unknown context identifier {ctx}"));
    }
    if app_token != credentials.client_secret {
        return refused(
            StatusCode::OK,
            "The application token is not valid for this application",
        );
    }
    if let Err(reason) = auth::check_signed_token(credentials, signed, now) {
        return refused(StatusCode::OK, &reason);
    }
    let ticket = inner
        .tickets
        .issue(&credentials.context_identifier, now, &mut inner.rng);
    let tenant = state.urls.superoffice_tenant.as_str();
    match auth::issue_jwt(
        &inner.credentials,
        &ticket,
        tenant,
        inner.data.api_associate,
        now,
    ) {
        Some(token) => Json(json!({
            "IsSuccessful": true,
            "ErrorMessage": "",
            "Token": token,
        }))
        .into_response(),
        None => refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The sandbox's signing key is unusable",
        ),
    }
}

/// `GET /api/state/{ctx}` (`tenant-state.json`). An unknown tenant is reported as state
/// `Unknown`, which the docs describe as "the customer tenant is unknown".
fn tenant_state(state: &AppState, ctx: &str) -> Response {
    let now = state.clock.now();
    let inner = state.superoffice.read();
    let valid_until = super::time::plus_seconds(now, 3600)
        .strftime("%Y-%m-%dT%H:%M:%S%.7fZ")
        .to_string();
    if !ctx.eq_ignore_ascii_case(&inner.credentials.context_identifier) {
        return Json(json!({
            "ContextIdentifier": ctx,
            "Endpoint": null,
            "State": "Unknown",
            "IsRunning": false,
            "ValidUntil": valid_until,
            "Api": null,
            "Version": VERSION_LABEL,
        }))
        .into_response();
    }
    let endpoint = state
        .urls
        .superoffice_tenant
        .as_str()
        .trim_end_matches('/')
        .to_string();
    Json(json!({
        "ContextIdentifier": inner.credentials.context_identifier,
        "Endpoint": endpoint,
        "State": inner.state,
        "IsRunning": auth::state_is_running(inner.state),
        "ValidUntil": valid_until,
        "Api": format!("{endpoint}/api"),
        "Version": VERSION_LABEL,
    }))
    .into_response()
}
