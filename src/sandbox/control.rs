//! The control API under `/_sandbox`: what tests, the demo and benchmarks use to seed
//! scenarios, act as users, set limits and faults, move the clock and read the request log.
//! Documented in docs/sandbox.md.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{FaultRule, LimitSpec, LogQuery, SandboxState, Scenario, graph, superoffice};

type AppState = Arc<SandboxState>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(info))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/requests/summary", get(request_summary))
        .route("/violations", get(violations).delete(clear_violations))
        .route("/limits", get(limits).put(set_limits))
        .route("/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/faults/{id}", delete(remove_fault))
        .route("/clock", get(clock).post(move_clock))
        .route("/scenario", get(scenario).put(load_scenario))
        .nest("/graph", graph::control_router())
        .nest("/superoffice", superoffice::control_router())
}

/// A control API error: 400 with `{"error": "..."}`.
pub fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.into() })),
    )
        .into_response()
}

async fn info(State(state): State<AppState>) -> Json<serde_json::Value> {
    let scenario = state.scenario();
    Json(json!({
        "urls": state.urls,
        "credentials": state.credentials(),
        "scenario": scenario.name,
        "limits": state.limits.spec(),
        "clock": state.clock.now(),
    }))
}

async fn requests(
    State(state): State<AppState>,
    Query(query): Query<LogQuery>,
) -> Json<serde_json::Value> {
    Json(json!(state.log.query(&query)))
}

async fn request_summary(
    State(state): State<AppState>,
    Query(query): Query<LogQuery>,
) -> Json<serde_json::Value> {
    Json(json!(state.log.summary(&query)))
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.log.clear();
    StatusCode::NO_CONTENT
}

async fn violations(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(state.limits.violations()))
}

async fn clear_violations(State(state): State<AppState>) -> StatusCode {
    state.limits.clear_violations();
    StatusCode::NO_CONTENT
}

async fn limits(State(state): State<AppState>) -> Json<LimitSpec> {
    Json(state.limits.spec())
}

/// A preset (`{"preset": "scaled:100"}`) or a full limit specification.
#[derive(Deserialize)]
#[serde(untagged)]
enum LimitsBody {
    Preset { preset: String },
    Spec(LimitSpec),
}

async fn set_limits(State(state): State<AppState>, body: Option<Json<LimitsBody>>) -> Response {
    let spec = match body {
        Some(Json(LimitsBody::Spec(spec))) => spec,
        Some(Json(LimitsBody::Preset { preset })) => match preset.parse::<LimitSpec>() {
            Ok(spec) => spec,
            Err(e) => return bad_request(e),
        },
        None => return bad_request("expected a JSON limit specification or {\"preset\": ...}"),
    };
    state.limits.set_spec(spec.clone());
    Json(spec).into_response()
}

async fn faults(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(state.faults.list()))
}

async fn add_fault(State(state): State<AppState>, body: Option<Json<FaultRule>>) -> Response {
    let Some(Json(rule)) = body else {
        return bad_request("expected a JSON fault rule (see docs/sandbox.md)");
    };
    match state.faults.add(rule) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    if state.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no fault {id}") })),
        )
            .into_response()
    }
}

async fn clock(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "now": state.clock.now(), "offset_ms": state.clock.offset().as_millis() }))
}

/// `{"advance": "2h"}` or `{"set": "2026-12-24T10:00:00Z"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveClock {
    advance: Option<String>,
    set: Option<jiff::Timestamp>,
}

async fn move_clock(State(state): State<AppState>, body: Option<Json<MoveClock>>) -> Response {
    match body {
        Some(Json(MoveClock {
            advance: Some(by),
            set: None,
        })) => match humantime::parse_duration(&by) {
            Ok(d) => state.clock.advance(d),
            Err(e) => return bad_request(format!("advance {by:?}: {e}")),
        },
        Some(Json(MoveClock {
            advance: None,
            set: Some(at),
        })) => state.clock.set(at),
        _ => {
            return bad_request("expected {\"advance\": \"2h\"} or {\"set\": \"<RFC 3339 time>\"}");
        }
    }
    Json(json!({ "now": state.clock.now() })).into_response()
}

async fn scenario(State(state): State<AppState>) -> Json<Scenario> {
    Json(state.scenario())
}

/// `{"name": "small"}` (or `generated:...`), or a whole scenario.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScenarioBody {
    Named { name: String },
    Full(Box<Scenario>),
}

async fn load_scenario(
    State(state): State<AppState>,
    body: Option<Json<ScenarioBody>>,
) -> Response {
    let scenario = match body {
        Some(Json(ScenarioBody::Full(s))) => *s,
        Some(Json(ScenarioBody::Named { name })) => {
            if std::path::Path::new(&name).exists() {
                return bad_request(
                    "name a built-in or generated scenario; send a file's contents as the body",
                );
            }
            match Scenario::load(&name, state.clock.now()) {
                Ok(s) => s,
                Err(e) => return bad_request(e.to_string()),
            }
        }
        None => return bad_request("expected {\"name\": \"small\"} or a scenario"),
    };
    let name = scenario.name.clone();
    state.load_scenario(scenario);
    // Recorded waits belong to the old data.
    state.limits.clear_violations();
    Json(json!({ "scenario": name })).into_response()
}
