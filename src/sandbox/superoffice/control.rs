//! Acting as a user in SuperOffice, and inspecting the tenant: the control API at
//! `/_sandbox/superoffice` and the matching methods of [`SuperOfficeStore`]. User edits bump
//! `UpdatedDate` and write travel transaction log rows exactly as API writes do, but they are
//! neither logged as API requests nor rate-limited.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::SandboxState;
use super::super::control::bad_request;
use super::super::scenario::When;
use super::entities::View;
use super::model::{AppointmentData, Completed, Data, Person, Private, RecordType, WriteError};
use super::time::TzMode;
use super::{Appointment, SuperOfficeStore, seeded_span};

type AppState = Arc<SandboxState>;

/// A new appointment or to-do, as a user enters it.
#[derive(Debug, Clone, Deserialize)]
pub struct UserAppointment {
    pub associate_id: u32,
    /// A to-do (task list item of record type ToDo) rather than a diary appointment.
    #[serde(default)]
    pub todo: bool,
    /// The task list item's name (default: "Meeting", or "To do" for a to-do).
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub location: String,
    /// A to-do given whole days is due at noon of its first day, without a start time.
    pub when: When,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub free: Option<bool>,
    #[serde(default)]
    pub alarm_minutes: Option<u32>,
    #[serde(default)]
    pub completed: bool,
    #[serde(default)]
    pub person_id: Option<u32>,
    #[serde(default)]
    pub company_id: Option<u32>,
}

/// A change a user makes to an appointment; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentChange {
    pub title: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub when: Option<When>,
    pub private: Option<bool>,
    pub free: Option<bool>,
    /// `0` removes the alarm.
    pub alarm_minutes: Option<u32>,
    pub completed: Option<bool>,
    /// Moves the item to another associate's diary.
    pub associate_id: Option<u32>,
    pub task: Option<String>,
}

/// A new person card.
#[derive(Debug, Clone, Deserialize)]
pub struct UserPerson {
    pub company_id: u32,
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub mobiles: Vec<String>,
    #[serde(default)]
    pub title: String,
}

/// A change to a person card; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonChange {
    pub company_id: Option<u32>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Rank order: the first is the primary address.
    pub emails: Option<Vec<String>>,
    pub phones: Option<Vec<String>>,
    pub mobiles: Option<Vec<String>>,
    pub title: Option<String>,
}

impl SuperOfficeStore {
    /// A user creates an appointment or to-do in SuperOffice.
    pub fn user_create_appointment(
        &self,
        new: UserAppointment,
        now: Timestamp,
    ) -> Result<Appointment, WriteError> {
        let mut inner = self.write();
        let data = &mut inner.data;
        let by = new.associate_id;
        let appointment = user_appointment_data(data, new)?;
        let id = data.create_appointment(appointment, by, now)?;
        data.appointments
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound {
                entity: "Appointment",
                id,
            })
    }

    /// A user changes an appointment or to-do.
    pub fn user_update_appointment(
        &self,
        id: u32,
        change: AppointmentChange,
        now: Timestamp,
    ) -> Result<Appointment, WriteError> {
        let mut inner = self.write();
        let data = &mut inner.data;
        let current = data
            .appointments
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound {
                entity: "Appointment",
                id,
            })?;
        let mut d = current.data.clone();
        let todo = data.is_todo(&current);
        if let Some(v) = change.title {
            d.title = v;
        }
        if let Some(v) = change.description {
            d.description = v;
        }
        if let Some(v) = change.location {
            d.location = v;
        }
        if let Some(when) = change.when {
            (d.kind, d.span) = seeded_span(todo, &when);
        }
        if let Some(v) = change.private {
            d.private = if v {
                Private::PrivateUser
            } else {
                Private::Public
            };
        }
        if let Some(v) = change.free {
            d.free = v;
        }
        if let Some(v) = change.alarm_minutes {
            d.alarm_minutes = (v > 0).then_some(v);
        }
        if let Some(v) = change.completed {
            d.completed = if v {
                Completed::Completed
            } else {
                Completed::NotStarted
            };
        }
        if let Some(name) = change.task {
            d.task_id = data
                .task_named(&name)
                .ok_or_else(|| WriteError::Invalid(format!("No task list item {name:?}")))?
                .id;
        }
        let by = d.associate_id;
        if let Some(a) = change.associate_id {
            d.associate_id = a;
        }
        data.update_appointment(id, d, by, now)?;
        data.appointments
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound {
                entity: "Appointment",
                id,
            })
    }

    /// A user deletes an appointment or to-do (a hard delete, logged in the travel log).
    pub fn user_delete_appointment(&self, id: u32, now: Timestamp) -> Result<(), WriteError> {
        let mut inner = self.write();
        let by = inner
            .data
            .appointments
            .get(&id)
            .map(|a| a.data.associate_id)
            .ok_or(WriteError::NotFound {
                entity: "Appointment",
                id,
            })?;
        inner.data.delete_appointment(id, by, now)
    }

    pub fn user_create_person(
        &self,
        new: UserPerson,
        now: Timestamp,
    ) -> Result<Person, WriteError> {
        let mut inner = self.write();
        let by = inner.data.api_associate;
        let person = Person {
            id: 0,
            contact_id: new.company_id,
            first_name: new.first_name,
            last_name: new.last_name,
            emails: new.emails,
            phones: new.phones,
            mobiles: new.mobiles,
            title: new.title,
            created: now,
            updated: now,
            created_by: by,
            updated_by: by,
        };
        let id = inner.data.create_person(person, by, now)?;
        inner
            .data
            .persons
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound {
                entity: "Person",
                id,
            })
    }

    pub fn user_update_person(
        &self,
        id: u32,
        change: PersonChange,
        now: Timestamp,
    ) -> Result<Person, WriteError> {
        let mut inner = self.write();
        let by = inner.data.api_associate;
        let mut p = inner
            .data
            .persons
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound {
                entity: "Person",
                id,
            })?;
        if let Some(v) = change.company_id {
            p.contact_id = v;
        }
        if let Some(v) = change.first_name {
            p.first_name = v;
        }
        if let Some(v) = change.last_name {
            p.last_name = v;
        }
        if let Some(v) = change.emails {
            p.emails = v;
        }
        if let Some(v) = change.phones {
            p.phones = v;
        }
        if let Some(v) = change.mobiles {
            p.mobiles = v;
        }
        if let Some(v) = change.title {
            p.title = v;
        }
        inner.data.update_person(p, by, now)?;
        inner
            .data
            .persons
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound {
                entity: "Person",
                id,
            })
    }

    /// A user deletes a person: a soft delete, which SuperOffice does not log.
    pub fn user_delete_person(&self, id: u32) -> Result<(), WriteError> {
        self.write().data.soft_delete_person(id)
    }

    /// A user changes a company's "our contact".
    pub fn user_set_our_contact(
        &self,
        company: u32,
        associate: Option<u32>,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let mut inner = self.write();
        let by = inner.data.api_associate;
        inner.data.set_our_contact(company, associate, by, now)
    }

    /// An associate's full state: its person card, its appointments and to-dos, the companies
    /// where it is our contact and their persons (entities in UTC with offsets).
    pub fn dump_associate(&self, id: u32, api: &str) -> Option<Value> {
        let inner = self.read();
        let data = &inner.data;
        let associate = data.associates.get(&id)?;
        let tz = TzMode::utc_with_offset();
        let view = View { data, tz: &tz, api };
        let (mut appointments, mut todos) = (Vec::new(), Vec::new());
        for a in data
            .appointments_of(id)
            .filter_map(|i| data.appointments.get(&i))
        {
            if data.is_todo(a) {
                todos.push(view.appointment(a));
            } else {
                appointments.push(view.appointment(a));
            }
        }
        let companies: Vec<u32> = data.companies_of(id).collect();
        let persons: Vec<Value> = companies
            .iter()
            .flat_map(|c| data.persons_of_company(*c))
            .filter_map(|p| data.persons.get(&p))
            .map(|p| view.person(p))
            .collect();
        Some(json!({
            "associate": view.associate(id),
            "email": data.associate_email(associate),
            "person": data.persons.get(&associate.person_id).map(|p| view.person(p)),
            "appointments": appointments,
            "todos": todos,
            "companies": companies.iter().filter_map(|c| data.companies.get(c)).map(|c| view.company(c)).collect::<Vec<_>>(),
            "persons": persons,
        }))
    }
}

/// What a user enters for a new appointment, as the row's content.
pub(super) fn user_appointment_data(
    data: &Data,
    new: UserAppointment,
) -> Result<AppointmentData, WriteError> {
    let record_type = if new.todo {
        RecordType::ToDo
    } else {
        RecordType::Appointment
    };
    let task_name = new
        .task
        .unwrap_or_else(|| if new.todo { "To do" } else { "Meeting" }.to_string());
    let task = data
        .task_named(&task_name)
        .filter(|t| (t.record_type == RecordType::ToDo) == new.todo)
        .ok_or_else(|| {
            WriteError::Invalid(format!(
                "No task list item {task_name:?} of record type {}",
                record_type.name()
            ))
        })?
        .clone();
    let (kind, span) = seeded_span(new.todo, &new.when);
    let appointment = AppointmentData {
        associate_id: new.associate_id,
        task_id: task.id,
        kind,
        title: new.title,
        description: new.description,
        location: new.location,
        span,
        private: if new.private {
            Private::PrivateUser
        } else {
            Private::Public
        },
        free: new.free.unwrap_or(task.default_free),
        alarm_minutes: new.alarm_minutes,
        completed: if new.completed {
            Completed::Completed
        } else {
            Completed::NotStarted
        },
        person_id: new.person_id,
        contact_id: new.company_id,
    };
    Ok(appointment)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(summary))
        .route("/tickets", get(tickets).delete(expire_tickets))
        .route("/state", get(tenant_state).put(set_tenant_state))
        .route("/appointments", post(create_appointment))
        .route(
            "/appointments/{id}",
            get(get_appointment)
                .patch(update_appointment)
                .delete(delete_appointment),
        )
        .route("/persons", post(create_person))
        .route("/persons/{id}", patch(update_person).delete(delete_person))
        .route("/companies/{id}/our-contact", put(set_our_contact))
        .route("/associates/{id}", get(dump_associate))
        .route("/travel-log", get(travel_log))
        .merge(super::recurrence::router())
}

fn api_url(state: &SandboxState) -> String {
    format!(
        "{}/api/v1",
        state.urls.superoffice_tenant.as_str().trim_end_matches('/')
    )
}

pub(super) fn refused(e: WriteError) -> Response {
    match e {
        WriteError::NotFound { .. } => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
        WriteError::Invalid(m) => bad_request(m),
    }
}

pub(super) fn appointment_json(state: &SandboxState, a: &Appointment) -> Value {
    let inner = state.superoffice.read();
    let tz = TzMode::utc_with_offset();
    let api = api_url(state);
    View {
        data: &inner.data,
        tz: &tz,
        api: &api,
    }
    .appointment(a)
}

async fn summary(State(state): State<AppState>) -> Json<Value> {
    let now = state.clock.now();
    let inner = state.superoffice.read();
    Json(json!({
        "context_identifier": inner.credentials.context_identifier,
        "state": inner.state,
        "tickets_issued": inner.tickets.issued,
        "tickets_active": inner.tickets.active(now, inner.credentials.ticket_lifetime_secs),
        "associates": inner.data.associates.len(),
        "persons": inner.data.persons.len(),
        "companies": inner.data.companies.len(),
        "appointments": inner.data.appointments.len(),
        "travel_log_rows": inner.data.travel_log.len(),
    }))
}

async fn tickets(State(state): State<AppState>) -> Json<Value> {
    let now = state.clock.now();
    let inner = state.superoffice.read();
    Json(json!({
        "issued": inner.tickets.issued,
        "active": inner.tickets.active(now, inner.credentials.ticket_lifetime_secs),
    }))
}

async fn expire_tickets(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "expired": state.superoffice.expire_tickets() }))
}

async fn tenant_state(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "state": state.superoffice.tenant_state() }))
}

#[derive(Deserialize)]
struct SetState {
    state: String,
}

async fn set_tenant_state(State(state): State<AppState>, body: Option<Json<SetState>>) -> Response {
    let Some(Json(body)) = body else {
        return bad_request("expected {\"state\": \"OfflineMaintenance\"}");
    };
    match state.superoffice.set_tenant_state(&body.state) {
        Ok(s) => Json(json!({ "state": s })).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn create_appointment(
    State(state): State<AppState>,
    body: Option<Json<UserAppointment>>,
) -> Response {
    let Some(Json(body)) = body else {
        return bad_request("expected an appointment (see docs/sandbox/superoffice.md)");
    };
    match state
        .superoffice
        .user_create_appointment(body, state.clock.now())
    {
        Ok(a) => (StatusCode::CREATED, Json(appointment_json(&state, &a))).into_response(),
        Err(e) => refused(e),
    }
}

async fn get_appointment(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    match state.superoffice.appointment(id) {
        Some(a) => Json(appointment_json(&state, &a)).into_response(),
        None => refused(WriteError::NotFound {
            entity: "Appointment",
            id,
        }),
    }
}

async fn update_appointment(
    State(state): State<AppState>,
    Path(id): Path<u32>,
    body: Option<Json<AppointmentChange>>,
) -> Response {
    let Some(Json(body)) = body else {
        return bad_request("expected a change (see docs/sandbox/superoffice.md)");
    };
    match state
        .superoffice
        .user_update_appointment(id, body, state.clock.now())
    {
        Ok(a) => Json(appointment_json(&state, &a)).into_response(),
        Err(e) => refused(e),
    }
}

async fn delete_appointment(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    match state
        .superoffice
        .user_delete_appointment(id, state.clock.now())
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

fn person_json(state: &SandboxState, p: &Person) -> Value {
    let inner = state.superoffice.read();
    let tz = TzMode::utc_with_offset();
    let api = api_url(state);
    View {
        data: &inner.data,
        tz: &tz,
        api: &api,
    }
    .person(p)
}

async fn create_person(State(state): State<AppState>, body: Option<Json<UserPerson>>) -> Response {
    let Some(Json(body)) = body else {
        return bad_request("expected a person (see docs/sandbox/superoffice.md)");
    };
    match state
        .superoffice
        .user_create_person(body, state.clock.now())
    {
        Ok(p) => (StatusCode::CREATED, Json(person_json(&state, &p))).into_response(),
        Err(e) => refused(e),
    }
}

async fn update_person(
    State(state): State<AppState>,
    Path(id): Path<u32>,
    body: Option<Json<PersonChange>>,
) -> Response {
    let Some(Json(body)) = body else {
        return bad_request("expected a change (see docs/sandbox/superoffice.md)");
    };
    match state
        .superoffice
        .user_update_person(id, body, state.clock.now())
    {
        Ok(p) => Json(person_json(&state, &p)).into_response(),
        Err(e) => refused(e),
    }
}

async fn delete_person(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    match state.superoffice.user_delete_person(id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OurContact {
    associate_id: Option<u32>,
}

async fn set_our_contact(
    State(state): State<AppState>,
    Path(id): Path<u32>,
    body: Option<Json<OurContact>>,
) -> Response {
    let Some(Json(body)) = body else {
        return bad_request("expected {\"associate_id\": 102} or {\"associate_id\": null}");
    };
    match state
        .superoffice
        .user_set_our_contact(id, body.associate_id, state.clock.now())
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

async fn dump_associate(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    match state.superoffice.dump_associate(id, &api_url(&state)) {
        Some(v) => Json(v).into_response(),
        None => refused(WriteError::NotFound {
            entity: "Associate",
            id,
        }),
    }
}

async fn travel_log(State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.superoffice.travel_log()))
}
