//! The tenant host: `GET /{ctx}/api` (version information) and the REST API at
//! `/{ctx}/api/v1/...`, with its authentication, `SO-TimeZone`, conditional requests and the
//! tenant state. Paths are case-insensitive, as on IIS.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::archives::{self, ListRequest, Provider};
use super::entities::{View, read_appointment};
use super::environment::VERSION_LABEL;
use super::model::{
    Appointment, AppointmentData, AppointmentType, Completed, Private, RecordType, Span, WriteError,
};
use super::patch::{self, PatchError};
use super::recurrence::{self, Requested};
use super::time::{TzMode, http_date, parse_http_date, plus_seconds, whole_seconds};
use super::{AppState, auth, bad_request, error, not_found};

pub fn router() -> Router<AppState> {
    Router::new().fallback(dispatch)
}

/// Who is calling: the associate the request acts as.
struct Caller {
    associate: u32,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn unauthorized(message: &str) -> Box<Response> {
    Box::new(error(
        StatusCode::UNAUTHORIZED,
        "SoAuthenticationFailedException",
        message,
    ))
}

/// Checks the credentials: `SOTicket` with `SO-AppToken`, or Basic (onsite).
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    now: Timestamp,
) -> Result<Caller, Box<Response>> {
    let mut inner = state.superoffice.write();
    let inner = &mut *inner;
    let api_associate = inner.data.api_associate;
    match auth::offered(header(headers, "authorization")) {
        auth::Offered::Ticket(ticket) => {
            match header(headers, "so-apptoken") {
                Some(t) if t == inner.credentials.client_secret => {}
                Some(_) => return Err(unauthorized("SO-AppToken is not valid for this tenant")),
                None => {
                    return Err(unauthorized(
                        "A system user ticket needs the application's SO-AppToken header",
                    ));
                }
            }
            let lifetime = inner.credentials.ticket_lifetime_secs;
            if inner.tickets.touch(ticket, now, lifetime) {
                Ok(Caller {
                    associate: api_associate,
                })
            } else {
                Err(unauthorized("The ticket is unknown or has expired"))
            }
        }
        auth::Offered::Basic { user, password } => {
            let c = &inner.credentials;
            if user.eq_ignore_ascii_case(&c.basic_username) && password == c.basic_password {
                Ok(Caller {
                    associate: api_associate,
                })
            } else {
                Err(unauthorized("Unknown user name or wrong password"))
            }
        }
        auth::Offered::Bearer => Err(unauthorized(
            "The access token is not valid for this tenant",
        )),
        auth::Offered::Nothing => Err(unauthorized("Authorization is required")),
        auth::Offered::Malformed => Err(unauthorized("The Authorization header cannot be read")),
    }
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw: Vec<&str> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let lower: Vec<String> = raw.iter().map(|s| s.to_ascii_lowercase()).collect();
    let segments: Vec<&str> = lower.iter().map(String::as_str).collect();
    let Some((ctx, rest)) = segments.split_first() else {
        return not_found("No resource at /");
    };
    let tenant_ctx = state
        .superoffice
        .read()
        .credentials
        .context_identifier
        .to_ascii_lowercase();
    if rest.first() != Some(&"api") {
        return not_found(&format!("No resource at {}", uri.path()));
    }
    if *ctx != tenant_ctx {
        // Another tenant would live on another host.
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "MisdirectedRequest",
            "Wrong subdomain used to access tenant",
        );
    }
    let base = state
        .urls
        .superoffice_tenant
        .as_str()
        .trim_end_matches('/')
        .to_string();
    if rest.len() == 1 {
        return match method.as_str() {
            "GET" => version_info(&base),
            _ => method_not_allowed(),
        };
    }
    if rest.get(1) != Some(&"v1") {
        return not_found(&format!("No resource at {}", uri.path()));
    }
    let now = state.clock.now();
    let tenant_state = state.superoffice.tenant_state();
    if !auth::state_is_running(tenant_state) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SoTenantNotAvailableException",
            &format!("The tenant is not available (state {tenant_state}); check /api/state"),
        );
    }
    let caller = match authorize(&state, &headers, now) {
        Ok(c) => c,
        Err(response) => return *response,
    };
    state.superoffice.housekeeping(now);
    let tz = match TzMode::from_header(header(&headers, "so-timezone")) {
        Ok(tz) => tz,
        Err(e) => return bad_request(&e),
    };
    let pairs: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request = Request {
        state: &state,
        headers: &headers,
        tz,
        caller,
        now,
        api: format!("{base}/api/v1"),
        pairs,
    };
    let original_id = raw.get(4).copied().unwrap_or_default();
    match (method.as_str(), &rest[2..]) {
        ("GET", ["appointment"]) => request.list(Provider::FindAppointment),
        ("POST", ["appointment"]) => request.create_appointment(&body),
        ("GET", ["appointment", "default"]) => {
            request.default_appointment(None, request.caller.associate)
        }
        ("GET", ["appointment", id]) => match id.parse() {
            Ok(id) => request.get_appointment(id),
            Err(_) => not_found(&format!("Appointment id {original_id} not found")),
        },
        ("PUT" | "PATCH" | "DELETE", ["appointment", id]) => match id.parse() {
            Ok(id) => request.write_appointment(&method, id, &body),
            Err(_) => not_found(&format!("Appointment id {original_id} not found")),
        },
        (
            "POST",
            [
                "agents",
                "appointment",
                "createdefaultappointmententitybytypeandassociate",
            ],
        ) => request.default_by_type(&body),
        ("GET", ["person"]) => request.list(Provider::Person),
        ("GET", ["person", id]) => request.get_person(id),
        ("GET", ["contact"]) => request.list(Provider::SimpleContact),
        ("GET", ["contact", id]) => request.get_contact(id),
        ("GET", ["archive", provider]) => match Provider::by_name(provider) {
            Some(p) => request.list(p),
            None => not_found(&format!("Archive provider {provider:?} not found")),
        },
        ("GET", ["list", "task", "items"]) => request.tasks(None),
        ("GET", ["list", "task", "items", id]) => request.tasks(Some(id)),
        (
            _,
            [
                "appointment" | "person" | "contact" | "archive" | "list",
                ..,
            ],
        ) => method_not_allowed(),
        _ => not_found(&format!("No resource at {}", uri.path())),
    }
}

fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The requested resource does not support this HTTP method",
    )
}

fn version_info(base: &str) -> Response {
    Json(json!({
        "v1": format!("{base}/api/v1/"),
        "NetServerVersion": "11.10.721.0",
        "NetServerAssembly": "11.10.0.0",
        "NetServerDate": "2026-02-24",
        "NetServerLabel": VERSION_LABEL,
        "NetServer": format!("SuperOffice 11.10 NetServer 11.10 Release (Build: {VERSION_LABEL})"),
        "Services": "Services87",
        "ServicesCurrent": "Services88",
        "Version": "v1",
        "Documentation": "https://docs.superoffice.com/en/api/",
    }))
    .into_response()
}

struct Request<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    tz: TzMode,
    caller: Caller,
    now: Timestamp,
    api: String,
    pairs: Vec<(String, String)>,
}

fn with_last_modified(body: Value, at: Timestamp) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&http_date(at)) {
        response.headers_mut().insert("Last-Modified", v);
    }
    response
}

fn write_error(e: WriteError) -> Response {
    match e {
        WriteError::NotFound { .. } => not_found(&e.to_string()),
        WriteError::Invalid(m) => bad_request(&m),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Box::new(bad_request(
            "Entity to save is not in request body",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(bad_request(&format!(
            "The request body is not valid JSON: {e}"
        )))
    })
}

impl Request<'_> {
    fn list(&self, provider: Provider) -> Response {
        let request = ListRequest {
            pairs: &self.pairs,
            tz: &self.tz,
            caller: self.caller.associate,
            now: self.now,
            api: &self.api,
        };
        match archives::list(&self.state.superoffice, provider, &request) {
            Ok(body) => Json(body).into_response(),
            Err(message) => bad_request(&message),
        }
    }

    fn view<'d>(&'d self, data: &'d super::model::Data) -> View<'d> {
        View {
            data,
            tz: &self.tz,
            api: &self.api,
        }
    }

    fn get_appointment(&self, id: u32) -> Response {
        let inner = self.state.superoffice.read();
        let Some(a) = inner.data.appointments.get(&id) else {
            return not_found(&format!("Appointment id {id} not found"));
        };
        if let Some(since) = header(self.headers, "if-modified-since").and_then(parse_http_date)
            && a.updated <= since
        {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        with_last_modified(self.view(&inner.data).appointment(a), a.updated)
    }

    fn create_appointment(&self, body: &[u8]) -> Response {
        let body = match parse_body(body) {
            Ok(b) => b,
            Err(r) => return *r,
        };
        let mut inner = self.state.superoffice.write();
        let data = &mut inner.data;
        let parsed = match read_appointment(&body, &self.tz, data) {
            Ok(p) => p,
            Err(m) => return bad_request(&m),
        };
        let created = match recurrence::read(&body, &self.tz) {
            Ok(Requested::On(wanted)) => {
                data.create_series(parsed, &wanted, self.caller.associate, self.now)
            }
            Ok(_) => data.create_appointment(parsed, self.caller.associate, self.now),
            Err(m) => return bad_request(&m),
        };
        match created {
            Ok(id) => match data.appointments.get(&id) {
                Some(a) => with_last_modified(self.view(data).appointment(a), a.updated),
                None => not_found(&format!("Appointment id {id} not found")),
            },
            Err(e) => write_error(e),
        }
    }

    /// PUT, PATCH and DELETE, with `If-Unmodified-Since` checked under the same lock.
    fn write_appointment(&self, method: &Method, id: u32, body: &[u8]) -> Response {
        let parsed_body = if method == Method::DELETE {
            None
        } else {
            match parse_body(body) {
                Ok(b) => Some(b),
                Err(r) => return *r,
            }
        };
        let mut inner = self.state.superoffice.write();
        let data = &mut inner.data;
        let Some(current) = data.appointments.get(&id).cloned() else {
            return not_found(&format!("Appointment id {id} not found"));
        };
        // An unreadable date is ignored, as HTTP asks of recipients.
        if let Some(since) = header(self.headers, "if-unmodified-since").and_then(parse_http_date)
            && current.updated > since
        {
            return error(
                StatusCode::PRECONDITION_FAILED,
                "SoPreconditionFailedException",
                &format!(
                    "Appointment id {id} has changed since {} (updated {})",
                    http_date(since),
                    http_date(current.updated)
                ),
            );
        }
        let by = self.caller.associate;
        let entity = match (method.as_str(), parsed_body) {
            ("DELETE", _) => {
                return match data.delete_appointment(id, by, self.now) {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => write_error(e),
                };
            }
            ("PATCH", Some(changes)) => {
                // Patch the entity as JSON (exact times, with offsets), then read it back.
                let exact = TzMode {
                    zone: self.tz.zone.clone(),
                    include_offset: true,
                };
                let view = View {
                    data,
                    tz: &exact,
                    api: &self.api,
                };
                let mut entity = view.appointment(&current);
                // The shown entity carries the row's rule; a patch that does not touch
                // `Recurrence` is an edit of this row alone, as a PUT without it.
                if !touches_recurrence(&changes)
                    && let Some(o) = entity.as_object_mut()
                {
                    o.retain(|k, _| !k.eq_ignore_ascii_case("Recurrence"));
                }
                match patch::apply(&mut entity, &changes) {
                    Ok(()) => {}
                    Err(PatchError::TestFailed(m)) => {
                        return error(StatusCode::CONFLICT, "SoConflictException", &m);
                    }
                    Err(PatchError::Invalid(m)) => return bad_request(&m),
                }
                entity
            }
            (_, Some(entity)) => entity,
            (_, None) => return bad_request("Entity to save is not in request body"),
        };
        let (new_data, requested) = match read_appointment(&entity, &self.tz, data)
            .and_then(|d| Ok((d, recurrence::read(&entity, &self.tz)?)))
        {
            Ok(parsed) => parsed,
            Err(m) => return bad_request(&m),
        };
        let now = self.now;
        // A rule (`IsRecurrence` true), changed or not: the whole series, rule and content
        // from this row. No `Recurrence` (absent or null): this row alone (an exception).
        // The reference does not say which edits what; this is the emulator's choice.
        let saved = match (requested, current.occurrence) {
            (Requested::On(w), Some(_)) => data.change_series(id, new_data, &w, by, now),
            (Requested::On(w), None) => data.make_series(id, new_data, &w, by, now),
            (Requested::Off, Some(_)) => data
                .update_appointment(id, new_data, by, now)
                .map(|()| data.detach_occurrence(id)),
            _ => data.update_appointment(id, new_data, by, now),
        };
        if let Err(e) = saved {
            return write_error(e);
        }
        // A new rule may delete the row it was saved through (its date no longer occurs):
        // the answer is then the series' first row.
        let shown = match current.occurrence.and_then(|o| data.first_row_of(o)) {
            Some(first) if !data.appointments.contains_key(&id) => first,
            _ => id,
        };
        match data.appointments.get(&shown) {
            Some(a) => with_last_modified(self.view(data).appointment(a), a.updated),
            None => not_found(&format!("Appointment id {id} not found")),
        }
    }

    /// `GET /Appointment/default`: a new entity as "New" in the client fills it: the caller's
    /// diary, the first appointment-type task, the next whole hour for an hour.
    fn default_appointment(&self, record_type: Option<RecordType>, associate: u32) -> Response {
        let inner = self.state.superoffice.read();
        let data = &inner.data;
        let record_type = record_type.unwrap_or(RecordType::Appointment);
        let Some(task) = data.tasks.iter().find(|t| t.record_type == record_type) else {
            return bad_request("The task list has no item of that type");
        };
        let hour = whole_seconds(self.now).as_second() / 3600 * 3600 + 3600;
        let start = Timestamp::from_second(hour).unwrap_or(self.now);
        let todo = record_type == RecordType::ToDo;
        let empty = Timestamp::from_second(-62_135_596_800).unwrap_or(Timestamp::UNIX_EPOCH);
        let draft = Appointment {
            id: 0,
            data: AppointmentData {
                associate_id: associate,
                task_id: task.id,
                kind: if todo {
                    AppointmentType::InChecklist
                } else {
                    AppointmentType::InDiary
                },
                title: String::new(),
                description: String::new(),
                location: String::new(),
                span: Span::Timed {
                    start,
                    end: if todo {
                        start
                    } else {
                        plus_seconds(start, 3600)
                    },
                },
                private: Private::Public,
                free: task.default_free,
                alarm_minutes: None,
                completed: Completed::NotStarted,
                person_id: None,
                contact_id: None,
            },
            created: empty,
            updated: empty,
            created_by: 0,
            updated_by: 0,
            updated_count: 0,
            occurrence: None,
        };
        let mut body = self.view(data).appointment(&draft);
        body["CreatedDate"] = json!(super::entities::EMPTY_DATE);
        body["UpdatedDate"] = json!(super::entities::EMPTY_DATE);
        if let Some(links) = body.as_object_mut() {
            links.remove("_Links");
        }
        Json(body).into_response()
    }

    /// The agent `CreateDefaultAppointmentEntityByTypeAndAssociate` (`{"Type": 6, "AssociateId": 5}`).
    fn default_by_type(&self, body: &[u8]) -> Response {
        let body = match parse_body(body) {
            Ok(b) => b,
            Err(r) => return *r,
        };
        let Value::Object(o) = &body else {
            return bad_request("Expected {\"Type\": ..., \"AssociateId\": ...}");
        };
        let record_type = match super::entities::get(o, "Type") {
            None => RecordType::Appointment,
            Some(v) => match (v.as_i64(), v.as_str()) {
                (Some(1), _) => RecordType::Appointment,
                (Some(5), _) => RecordType::Phone,
                (Some(6), _) => RecordType::ToDo,
                (_, Some(s)) if s.eq_ignore_ascii_case("Appointment") => RecordType::Appointment,
                (_, Some(s)) if s.eq_ignore_ascii_case("Phone") => RecordType::Phone,
                (_, Some(s)) if s.eq_ignore_ascii_case("ToDo") => RecordType::ToDo,
                _ => return bad_request(&format!("Type {v} is not a task type this tenant has")),
            },
        };
        let associate = match super::entities::get(o, "AssociateId") {
            None => self.caller.associate,
            Some(v) => match super::entities::id_value(v, "AssociateId") {
                Ok(id) => id,
                Err(m) => return bad_request(&m),
            },
        };
        if !self
            .state
            .superoffice
            .read()
            .data
            .associates
            .contains_key(&associate)
        {
            return bad_request(&format!("Associate id {associate} not found"));
        }
        self.default_appointment(Some(record_type), associate)
    }

    fn get_person(&self, id: &str) -> Response {
        let inner = self.state.superoffice.read();
        match id
            .parse::<u32>()
            .ok()
            .and_then(|id| inner.data.persons.get(&id))
        {
            Some(p) => with_last_modified(self.view(&inner.data).person(p), p.updated),
            None => not_found(&format!("Person id {id} not found")),
        }
    }

    fn get_contact(&self, id: &str) -> Response {
        let inner = self.state.superoffice.read();
        match id
            .parse::<u32>()
            .ok()
            .and_then(|id| inner.data.companies.get(&id))
        {
            Some(c) => with_last_modified(self.view(&inner.data).company(c), c.updated),
            None => not_found(&format!("Contact id {id} not found")),
        }
    }

    fn tasks(&self, id: Option<&str>) -> Response {
        let inner = self.state.superoffice.read();
        let view = self.view(&inner.data);
        match id {
            None => Json(Value::Array(
                inner.data.tasks.iter().map(|t| view.task(t)).collect(),
            ))
            .into_response(),
            Some(id) => match id.parse::<u32>().ok().and_then(|id| inner.data.task(id)) {
                Some(t) => Json(view.task(t)).into_response(),
                None => not_found(&format!("TaskListItem id {id} not found")),
            },
        }
    }
}

/// Whether a PATCH (JSON Patch operations or a merge-patch object) sets or removes
/// `Recurrence` or anything inside it.
fn touches_recurrence(changes: &Value) -> bool {
    let is_recurrence = |path: &str| {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        first.eq_ignore_ascii_case("Recurrence")
    };
    match changes {
        Value::Array(ops) => ops.iter().any(|op| {
            op.get("path")
                .and_then(Value::as_str)
                .is_some_and(is_recurrence)
        }),
        Value::Object(o) => o.keys().any(|k| is_recurrence(k)),
        _ => false,
    }
}
