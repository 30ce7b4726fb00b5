//! Acting as a user on recurring series, at `/_sandbox/superoffice/series`: create a series,
//! change its end, list its rows. Editing or deleting one occurrence is the plain appointment
//! control (`PATCH`/`DELETE /appointments/{id}`), which makes an exception or a cancellation.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::super::SandboxState;
use super::super::super::control::bad_request;
use super::super::SuperOfficeStore;
use super::super::control::{UserAppointment, appointment_json, refused, user_appointment_data};
use super::super::model::{Appointment, WriteError};
use super::super::time::TzMode;
use super::{End, Requested, read};

type AppState = Arc<SandboxState>;

/// A new series as a user enters it: its first occurrence and the API's `RecurrenceInfo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeries {
    pub appointment: UserAppointment,
    /// A `RecurrenceInfo` object as the REST API takes it (`IsRecurrence` true).
    pub recurrence: Value,
    /// `PreferredTZLocation`: the series' zone (0, the default, is the tenant's base zone).
    #[serde(default)]
    pub zone_id: u32,
}

/// A series' new end.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesEnd {
    Date(Date),
    Count(u32),
    Never,
}

fn not_in_series(id: u32) -> WriteError {
    WriteError::Invalid(format!("Appointment id {id} is not in a recurring series"))
}

impl SuperOfficeStore {
    /// A user creates a recurring series; returns its rows up to the horizon.
    pub fn user_create_series(
        &self,
        new: UserSeries,
        now: Timestamp,
    ) -> Result<Vec<Appointment>, WriteError> {
        let entity = json!({ "Recurrence": new.recurrence, "PreferredTZLocation": new.zone_id });
        let Requested::On(wanted) = read(&entity, &TzMode::base()).map_err(WriteError::Invalid)?
        else {
            return Err(WriteError::Invalid(
                "recurrence must have IsRecurrence true".into(),
            ));
        };
        let mut inner = self.write();
        let data = &mut inner.data;
        let by = new.appointment.associate_id;
        let appointment = user_appointment_data(data, new.appointment)?;
        let first = data.create_series(appointment, &wanted, by, now)?;
        drop(inner);
        self.series_rows(first)
    }

    /// A user changes when the series of row `id` ends; rows past the new end are deleted,
    /// rows up to it added. Exceptions and cancellations inside the new end stay.
    pub fn user_set_series_end(
        &self,
        id: u32,
        end: SeriesEnd,
        now: Timestamp,
    ) -> Result<Vec<Appointment>, WriteError> {
        let mut inner = self.write();
        let data = &mut inner.data;
        let rule = data
            .appointments
            .get(&id)
            .and_then(|a| a.occurrence)
            .and_then(|o| data.rules.get(&o.rule_id))
            .ok_or_else(|| not_in_series(id))?;
        let mut wanted = rule.wanted();
        wanted.end = match end {
            SeriesEnd::Date(d) => End::Date(d),
            SeriesEnd::Count(n) => End::Count(n),
            SeriesEnd::Never => End::Never,
        };
        let (rule_id, template) = (rule.id, rule.template.clone());
        let by = template.associate_id;
        data.change_rule(rule_id, template, &wanted, None, by, now)?;
        drop(inner);
        self.series_rows(id)
    }

    /// The rows of the series of row `id`, by original date.
    pub fn series_rows(&self, id: u32) -> Result<Vec<Appointment>, WriteError> {
        let inner = self.read();
        let data = &inner.data;
        let rule = data
            .appointments
            .get(&id)
            .and_then(|a| a.occurrence)
            .and_then(|o| data.rules.get(&o.rule_id))
            .ok_or_else(|| not_in_series(id))?;
        Ok(rule
            .rows
            .values()
            .filter_map(|row| data.appointments.get(row).cloned())
            .collect())
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/series", post(create_series))
        .route("/series/{id}", get(get_series))
        .route("/series/{id}/end", put(set_end))
}

fn rows_json(state: &SandboxState, rows: &[Appointment]) -> Value {
    let rows: Vec<Value> = rows.iter().map(|a| appointment_json(state, a)).collect();
    json!({ "rows": rows })
}

async fn create_series(State(state): State<AppState>, body: Option<Json<UserSeries>>) -> Response {
    let Some(Json(body)) = body else {
        return bad_request("expected a series (see docs/sandbox/superoffice.md)");
    };
    match state
        .superoffice
        .user_create_series(body, state.clock.now())
    {
        Ok(rows) => (StatusCode::CREATED, Json(rows_json(&state, &rows))).into_response(),
        Err(e) => refused(e),
    }
}

async fn get_series(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    state.superoffice.housekeeping(state.clock.now());
    match state.superoffice.series_rows(id) {
        Ok(rows) => Json(rows_json(&state, &rows)).into_response(),
        Err(e) => refused(e),
    }
}

async fn set_end(
    State(state): State<AppState>,
    Path(id): Path<u32>,
    body: Option<Json<SeriesEnd>>,
) -> Response {
    let Some(Json(end)) = body else {
        return bad_request("expected {\"date\": \"YYYY-MM-DD\"}, {\"count\": N} or \"never\"");
    };
    match state
        .superoffice
        .user_set_series_end(id, end, state.clock.now())
    {
        Ok(rows) => Json(rows_json(&state, &rows)).into_response(),
        Err(e) => refused(e),
    }
}
