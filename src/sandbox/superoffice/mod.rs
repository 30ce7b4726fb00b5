//! The SuperOffice Web API emulator: the environment host (system-user authentication,
//! tenant status) and the tenant host (REST API v1, also usable onsite-style with Basic).
//! What it does where the docs are silent is written down in docs/sandbox/superoffice.md.

mod api;
mod archives;
mod auth;
mod control;
mod entities;
mod environment;
mod filter;
mod model;
mod odata;
mod patch;
mod people;
mod recurrence;
mod time;
mod writes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::SandboxState;
use super::scenario::{SuperOfficeTenant, When};

pub use control::{AppointmentChange, PersonChange, UserAppointment, UserPerson};
pub use model::{
    Appointment, AppointmentData, AppointmentType, Associate, Company, Completed, Person, Private,
    RecordType, Span, TaskItem, TravelLogRow, WriteError,
};
pub use recurrence::{SeriesEnd, UserSeries};

type AppState = Arc<SandboxState>;

/// An associate's items (see [`SuperOfficeStore::associate_items`]).
#[derive(Debug, Clone)]
pub struct AssociateItems {
    /// Each appointment with whether it is a to-do.
    pub appointments: Vec<(Appointment, bool)>,
    pub persons: Vec<Person>,
}

/// How long NetServer keeps the primary keys of a paged query ("This cache dies 60 seconds
/// after the last call").
const PAGE_CACHE_SECS: i64 = 60;

/// All of the emulated SuperOffice tenant's state.
pub struct SuperOfficeStore {
    inner: RwLock<Inner>,
    /// Primary keys of recent list queries, so that `$skip` pages a stable result.
    pages: Mutex<HashMap<String, (Vec<u64>, Timestamp)>>,
}

struct Inner {
    credentials: auth::TenantCredentials,
    data: model::Data,
    state: &'static str,
    tickets: auth::Tickets,
    rng: ChaCha8Rng,
}

impl SuperOfficeStore {
    pub fn new(tenant: &SuperOfficeTenant, now: Timestamp, seed: u64) -> Self {
        SuperOfficeStore {
            inner: RwLock::new(Inner::load(tenant, now, seed)),
            pages: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the tenant's data (and forgets its tickets and tenant state).
    pub fn reset(&self, tenant: &SuperOfficeTenant, now: Timestamp, seed: u64) {
        *self.write() = Inner::load(tenant, now, seed);
        self.pages().clear();
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn pages(&self) -> MutexGuard<'_, HashMap<String, (Vec<u64>, Timestamp)>> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many tickets the system-user exchange has issued since the scenario was loaded.
    pub fn tickets_issued(&self) -> u64 {
        self.read().tickets.issued
    }

    /// Ends every ticket now: the next call with one gets 401.
    pub fn expire_tickets(&self) -> usize {
        self.write().tickets.expire_all()
    }

    /// The tenant's state as `/api/state/{ctx}` reports it (`Running`, `OfflineMaintenance`, ...).
    pub fn tenant_state(&self) -> &'static str {
        self.read().state
    }

    pub fn set_tenant_state(&self, state: &str) -> Result<&'static str, String> {
        let canonical = auth::canonical_state(state).ok_or_else(|| {
            let names: Vec<&str> = auth::STATES.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown tenant state {state:?}; one of {}",
                names.join(", ")
            )
        })?;
        self.write().state = canonical;
        Ok(canonical)
    }

    pub fn appointment(&self, id: u32) -> Option<Appointment> {
        self.read().data.appointments.get(&id).cloned()
    }

    /// Every appointment row, by id (tests look at what a user of the tenant would see).
    pub fn appointments(&self) -> Vec<Appointment> {
        self.read().data.appointments.values().cloned().collect()
    }

    pub fn person(&self, id: u32) -> Option<Person> {
        self.read().data.persons.get(&id).cloned()
    }

    pub fn company(&self, id: u32) -> Option<Company> {
        self.read().data.companies.get(&id).cloned()
    }

    pub fn associates(&self) -> Vec<Associate> {
        self.read().data.associates.values().cloned().collect()
    }

    pub fn task_list(&self) -> Vec<TaskItem> {
        self.read().data.tasks.clone()
    }

    pub fn travel_log(&self) -> Vec<TravelLogRow> {
        self.read().data.travel_log.clone()
    }

    /// The associate that API writes are recorded as (`UpdatedBy`).
    pub fn api_associate(&self) -> u32 {
        self.read().data.api_associate
    }

    /// What an associate has now: its appointments and to-dos (each with whether it is a
    /// to-do), and the persons of the companies where it is our contact. `None` for an
    /// unknown associate. For `crmsync demo`, which compares both sides without a client.
    pub fn associate_items(&self, id: u32) -> Option<AssociateItems> {
        let inner = self.read();
        let data = &inner.data;
        data.associates.get(&id)?;
        let appointments = data
            .appointments_of(id)
            .filter_map(|i| data.appointments.get(&i))
            .map(|a| (a.clone(), data.is_todo(a)))
            .collect();
        let persons = data
            .companies_of(id)
            .flat_map(|c| data.persons_of_company(c))
            .filter_map(|p| data.persons.get(&p).cloned())
            .collect();
        Some(AssociateItems {
            appointments,
            persons,
        })
    }

    /// SuperOffice's housekeeping: extends never-ending and long series up to the horizon of
    /// `now`. The API runs it before every request; it writes only when a series is due.
    pub fn housekeeping(&self, now: Timestamp) {
        if self.read().data.series_due(now) {
            self.write().data.extend_series(now);
        }
    }

    /// Is `id` one of the tenant's appointment ids that are to-dos?
    pub fn is_todo(&self, id: u32) -> Option<bool> {
        let inner = self.read();
        inner
            .data
            .appointments
            .get(&id)
            .map(|a| inner.data.is_todo(a))
    }
}

impl Inner {
    fn load(tenant: &SuperOfficeTenant, now: Timestamp, seed: u64) -> Inner {
        let mut data = model::Data {
            tasks: model::default_tasks(),
            ..Default::default()
        };
        // Seeded rows look as if registered an hour before the scenario was loaded.
        let seeded = time::plus_seconds(time::whole_seconds(now), -3600);
        for a in &tenant.associates {
            data.associates.insert(
                a.id,
                Associate {
                    id: a.id,
                    login: a.login.clone(),
                    person_id: a.person_id,
                    active: a.active,
                    kind: model::AssociateKind::Internal,
                },
            );
        }
        let api_id = data.associates.keys().max().copied().unwrap_or(0) + 1;
        data.api_associate = api_id;
        data.associates.insert(
            api_id,
            Associate {
                id: api_id,
                login: tenant.basic_username.to_uppercase(),
                person_id: 0,
                active: true,
                kind: model::AssociateKind::System,
            },
        );
        for c in &tenant.companies {
            data.insert_seeded_company(Company {
                id: c.id,
                name: c.name.clone(),
                our_contact: c.our_contact,
                created: seeded,
                updated: seeded,
                created_by: api_id,
                updated_by: api_id,
            });
        }
        for p in &tenant.persons {
            data.insert_seeded_person(Person {
                id: p.id,
                contact_id: p.company_id,
                first_name: p.first_name.clone(),
                last_name: p.last_name.clone(),
                emails: p.emails.clone(),
                phones: p.phones.clone(),
                mobiles: p.mobile.iter().cloned().collect(),
                title: p.job_title.clone().unwrap_or_default(),
                created: seeded,
                updated: seeded,
                created_by: api_id,
                updated_by: api_id,
            });
        }
        for a in &tenant.appointments {
            let record_type = if a.todo {
                RecordType::ToDo
            } else if a.task_type.eq_ignore_ascii_case("phone") {
                RecordType::Phone
            } else {
                RecordType::Appointment
            };
            let task_id = match data.task_named(&a.task_type) {
                Some(t) => t.id,
                None => data.add_task(&a.task_type, record_type),
            };
            let (kind, span) = seeded_span(a.todo, &a.when);
            data.insert_seeded_appointment(Appointment {
                id: a.id,
                data: AppointmentData {
                    associate_id: a.associate_id,
                    task_id,
                    kind,
                    title: a.title.clone(),
                    description: a.description.clone(),
                    location: a.location.clone(),
                    span,
                    private: if a.private {
                        Private::PrivateUser
                    } else {
                        Private::Public
                    },
                    free: a.free,
                    alarm_minutes: a.alarm_minutes,
                    completed: if a.completed {
                        Completed::Completed
                    } else {
                        Completed::NotStarted
                    },
                    person_id: a.person_id,
                    contact_id: a.company_id,
                },
                created: seeded,
                updated: seeded,
                created_by: a.associate_id,
                updated_by: a.associate_id,
                updated_count: 0,
                occurrence: None,
            });
        }
        data.set_next_ids();
        Inner {
            credentials: auth::TenantCredentials::of(tenant),
            data,
            state: "Running",
            tickets: auth::Tickets::default(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5350_4f46),
        }
    }
}

/// A seeded to-do without a time is a checklist item due at noon (base zone) of its day:
/// SuperOffice gives to-dos a start time ("noon the current day") and the deadline as end.
fn seeded_span(todo: bool, when: &When) -> (AppointmentType, Span) {
    match (todo, when) {
        (true, When::AllDay { start, .. }) => {
            let noon = start
                .at(12, 0, 0, 0)
                .to_zoned(time::base_zone())
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::UNIX_EPOCH);
            (
                AppointmentType::InChecklist,
                Span::Timed {
                    start: noon,
                    end: noon,
                },
            )
        }
        (todo, When::Timed { start, end, .. }) => (
            if todo {
                AppointmentType::InChecklist
            } else {
                AppointmentType::InDiary
            },
            Span::Timed {
                start: time::whole_seconds(*start),
                end: time::whole_seconds(*end),
            },
        ),
        (false, When::AllDay { start, end }) => (
            AppointmentType::InDiary,
            Span::AllDay {
                start: *start,
                end: *end,
            },
        ),
    }
}

/// The environment host: `/Login/api/PartnerSystemUser/Authenticate`, `/api/state/{ctx}`.
pub fn environment_router() -> Router<AppState> {
    environment::router()
}

/// The tenant host: `/{ctx}/api` and `/{ctx}/api/v1/...`.
pub fn tenant_router() -> Router<AppState> {
    api::router()
}

/// Acting as a user in SuperOffice and inspecting the tenant, at `/_sandbox/superoffice`.
pub fn control_router() -> Router<AppState> {
    control::router()
}

/// SuperOffice's REST error body (`error-response.json`).
pub(crate) fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "Error": true,
            "ErrorType": error_type,
            "ErrorMessage": message,
            "ErrorSource": "SuperOffice.Services.Implementation",
        })),
    )
        .into_response()
}

pub(crate) fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "SoArgumentException", message)
}

pub(crate) fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "SoNotFoundException", message)
}

/// Over the request rate (SuperOffice documents no body; its REST error shape is used).
pub fn throttled() -> Response {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "SoTooManyRequestsException",
        "Too many requests: no more than 10 API calls per second",
    )
}

/// A 5xx in SuperOffice's error shape.
pub fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(
        status,
        "SoServerException",
        "The server could not process the request",
    )
}
