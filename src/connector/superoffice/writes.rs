//! Reading and writing single items: appointments (diary items and to-dos) and persons,
//! associates, the task list, entity defaults, and finding an appointment a lost POST made.
//!
//! Creates start from `CreateDefaultAppointmentEntityByTypeAndAssociate` (type 1 for a diary
//! item, 6 for a to-do, and the owner), as SuperOffice recommends creating from defaults; the
//! defaults are cached per (type, associate) for an hour. Updates read the item, check its
//! version, and send only the properties that differ as a JSON Patch with
//! `If-Unmodified-Since`; a 412 becomes [`ConnectorError::Conflict`] unless the item already
//! holds what was sent (a retry after a lost answer).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::HeaderName;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::mapping::{self, Appointment, Person};
use super::query::{self, ListQuery};
use super::{Call, Ctx, SuperOfficeClient, fetch_all, refusal, time};
use crate::connector::http::Retry;
use crate::connector::model::{CrmId, Item, Kind, Observed, Version};
use crate::connector::{ConnectorError, CreatedSince, CrmAssociate, Deleted, Service, Written};

const DEFAULTS_TTL: Duration = Duration::from_secs(3600);
const TASKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown task type name is looked up again at most this often.
const TASKS_RETRY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub(crate) struct TaskEntry {
    pub id: u32,
    pub name: String,
    pub todo: bool,
}

#[derive(Default)]
pub(crate) struct Caches {
    tasks: Mutex<Option<(Instant, Vec<TaskEntry>)>>,
    defaults: Mutex<HashMap<(u8, u32), (Instant, Value)>>,
}

/// An appointment as fetched: the mapped view and the entity it came from.
pub(crate) struct Fetched {
    pub appointment: Appointment,
    pub entity: Value,
}

pub(crate) fn item_error(id: impl ToString, what: impl Into<String>) -> ConnectorError {
    ConnectorError::Item {
        service: Service::SuperOffice,
        item: id.to_string(),
        what: what.into(),
    }
}

pub(crate) fn conflict(id: CrmId) -> ConnectorError {
    ConnectorError::Conflict {
        service: Service::SuperOffice,
        item: id.to_string(),
    }
}

fn written(a: &Appointment) -> Written<CrmId> {
    Written {
        id: CrmId(a.id),
        version: mapping::version(a.updated),
        modified: a.updated,
        item: Some(a.item.clone()),
    }
}

/// The same content for what SuperOffice holds (a to-do's completion time is not held).
fn same_content(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::Task(x), Item::Task(y)) => {
            x.title == y.title
                && x.body == y.body
                && x.due == y.due
                && x.completed.is_some() == y.completed.is_some()
        }
        _ => a == b,
    }
}

impl SuperOfficeClient {
    /// The task list (`GET List/Task/Items`), cached.
    pub(crate) async fn task_list(
        &self,
        looking_for: Option<&str>,
    ) -> Result<Vec<TaskEntry>, ConnectorError> {
        let mut cache = self.caches.tasks.lock().await;
        let fresh = cache.as_ref().is_some_and(|(at, list)| {
            at.elapsed() < TASKS_TTL
                && looking_for.is_none_or(|name| {
                    at.elapsed() < TASKS_RETRY
                        || list.iter().any(|t| t.name.eq_ignore_ascii_case(name))
                })
        });
        if !fresh {
            let answer = self
                .call_json(&Call::new(Method::GET, "List/Task/Items"), Ctx::Query)
                .await?;
            let list = answer
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter(|t| !t.get("Deleted").and_then(Value::as_bool).unwrap_or(false))
                        .filter_map(|t| {
                            Some(TaskEntry {
                                id: query::id(t, "TaskListItemId")?,
                                name: query::text(t, "Value").to_string(),
                                todo: query::text(t, "Type").eq_ignore_ascii_case("ToDo"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            *cache = Some((Instant::now(), list));
        }
        Ok(cache.as_ref().map(|(_, l)| l.clone()).unwrap_or_default())
    }

    /// `GET Appointment/{id}`: `None` if it does not exist or is neither a diary item nor a to-do.
    pub(crate) async fn read_appointment(
        &self,
        id: CrmId,
    ) -> Result<Option<(Observed<CrmId>, Fetched)>, ConnectorError> {
        let response = self
            .call(&Call::new(Method::GET, &format!("Appointment/{id}")))
            .await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status.is_success() {
            return Err(refusal(&response, Ctx::Read(id.to_string())));
        }
        let entity: Value = response
            .json()
            .map_err(|e| item_error(id, format!("unreadable appointment: {e}")))?;
        let own = self.auth.own_associate().await;
        match mapping::read_appointment(&entity) {
            Ok(Some(mut appointment)) => {
                appointment.links.made_by_crmsync = own.is_some() && appointment.created_by == own;
                Ok(Some((
                    appointment.observed(),
                    Fetched {
                        appointment,
                        entity,
                    },
                )))
            }
            Ok(None) => Ok(None),
            Err(what) => Err(item_error(id, what)),
        }
    }

    /// `GET Person/{id}`.
    pub(crate) async fn read_person(
        &self,
        id: CrmId,
    ) -> Result<Option<(Observed<CrmId>, Person)>, ConnectorError> {
        let response = self
            .call(&Call::new(Method::GET, &format!("Person/{id}")))
            .await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status.is_success() {
            return Err(refusal(&response, Ctx::Read(id.to_string())));
        }
        let entity: Value = response
            .json()
            .map_err(|e| item_error(id, format!("unreadable person: {e}")))?;
        let person = mapping::read_person(&entity).map_err(|what| item_error(id, what))?;
        Ok(Some((person.observed(), person)))
    }

    pub(crate) async fn read_persons(
        &self,
        ids: &[CrmId],
    ) -> Result<Vec<Observed<CrmId>>, ConnectorError> {
        let mut ids: Vec<u32> = ids.iter().map(|i| i.0).collect();
        ids.sort_unstable();
        ids.dedup();
        fetch_all(ids, self.options.fetch_concurrency, |id| async move {
            Ok(self.read_person(CrmId(id)).await?.map(|(o, _)| o))
        })
        .await
    }

    /// The InternalUsers archive: every associate, active or retired, with the primary
    /// e-mail of its own person card.
    pub(crate) async fn read_associates(&self) -> Result<Vec<CrmAssociate>, ConnectorError> {
        let q = ListQuery::new(
            "Archive/InternalUsers",
            "associateDbId,assocName,userName,fullName,personId,personEmail,isActive",
            "associateDbId",
        )
        .entities("all,retired")
        .top(self.options.page_size);
        let mut out: BTreeMap<u32, CrmAssociate> = BTreeMap::new();
        for listing in self.list(&q).await? {
            for row in listing.rows {
                let Some(id) =
                    query::id(&row, "associateDbId").or_else(|| query::id(&row, "PrimaryKey"))
                else {
                    continue;
                };
                let login = Some(query::text(&row, "assocName"))
                    .filter(|s| !s.is_empty())
                    .unwrap_or(query::text(&row, "userName"))
                    .to_string();
                let email = query::text(&row, "personEmail").trim().to_string();
                out.insert(
                    id,
                    CrmAssociate {
                        id,
                        login,
                        full_name: query::text(&row, "fullName").to_string(),
                        person_id: query::id(&row, "personId").filter(|p| *p != 0),
                        email: (!email.is_empty()).then_some(email),
                        active: row.get("isActive").and_then(Value::as_bool).unwrap_or(true),
                    },
                );
            }
        }
        Ok(out.into_values().collect())
    }

    /// Why writes for `associate` fail, if it is the associate: unknown or retired.
    async fn associate_problem(&self, associate: u32) -> Option<ConnectorError> {
        let q = ListQuery::new(
            "Archive/InternalUsers",
            "associateDbId,isActive",
            "associateDbId",
        )
        .entities("all,retired")
        .associates("associateDbId", &[associate]);
        let rows: Vec<Value> = self
            .list(&q)
            .await
            .ok()?
            .into_iter()
            .flat_map(|l| l.rows)
            .collect();
        let what = match rows.first() {
            None => format!("associate {associate} does not exist in SuperOffice"),
            Some(row) if row.get("isActive").and_then(Value::as_bool) == Some(false) => {
                format!("associate {associate} is retired in SuperOffice")
            }
            Some(_) => return None,
        };
        Some(ConnectorError::User {
            service: Service::SuperOffice,
            what,
        })
    }

    /// A new entity with the defaults for `record_type` (1 appointment, 6 to-do) in
    /// `associate`'s diary.
    async fn default_entity(
        &self,
        record_type: u8,
        associate: u32,
    ) -> Result<Value, ConnectorError> {
        {
            let cache = self.caches.defaults.lock().await;
            if let Some((at, entity)) = cache.get(&(record_type, associate))
                && at.elapsed() < DEFAULTS_TTL
            {
                return Ok(entity.clone());
            }
        }
        // Makes nothing: safe to repeat.
        let call = Call::new(
            Method::POST,
            "Agents/Appointment/CreateDefaultAppointmentEntityByTypeAndAssociate",
        )
        .body(json!({ "Type": record_type, "AssociateId": associate }))
        .retry(Retry::Safe);
        let response = self.call(&call).await?;
        if response.status == StatusCode::BAD_REQUEST
            && let Some(problem) = self.associate_problem(associate).await
        {
            return Err(problem);
        }
        if !response.status.is_success() {
            return Err(refusal(&response, Ctx::Query));
        }
        let entity: Value = response.json().map_err(|e| ConnectorError::Transient {
            service: Service::SuperOffice,
            what: format!("unreadable default appointment: {e}"),
            retry_after: None,
        })?;
        self.caches
            .defaults
            .lock()
            .await
            .insert((record_type, associate), (Instant::now(), entity.clone()));
        Ok(entity)
    }

    /// The task list, if `item` asks for a task type that `entity` does not have.
    pub(crate) async fn task_ids_for(
        &self,
        item: &Item,
        entity: &Value,
    ) -> Result<Vec<TaskEntry>, ConnectorError> {
        let current = entity
            .get("Task")
            .and_then(|t| t.get("Value"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match item {
            Item::Diary(d) => match &d.task_type {
                Some(name) if !name.eq_ignore_ascii_case(current) => {
                    self.task_list(Some(name)).await
                }
                _ => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        }
    }

    pub(crate) async fn create_item(
        &self,
        associate: u32,
        item: &Item,
    ) -> Result<Written<CrmId>, ConnectorError> {
        let record_type = match item {
            Item::Diary(_) => 1,
            Item::Task(_) => 6,
            Item::Contact(_) => {
                return Err(item_error(
                    "new",
                    "contacts flow from SuperOffice only; none is created there",
                ));
            }
        };
        let mut entity = self.default_entity(record_type, associate).await?;
        if let Item::Diary(d) = item
            && let Some(series) = &d.series
        {
            return self
                .create_series(associate, d, &series.recurrence, entity)
                .await;
        }
        let tasks = self.task_ids_for(item, &entity).await?;
        let lookup = |name: &str| {
            tasks
                .iter()
                .find(|t| !t.todo && t.name.eq_ignore_ascii_case(name))
                .map(|t| t.id)
        };
        let changes = mapping::changes(item, None, &lookup);
        mapping::apply(&mut entity, &changes);
        let entity = self.post_appointment(associate, entity, "new item").await?;
        let created = mapping::read_appointment(&entity)
            .map_err(|what| item_error("new", what))?
            .ok_or_else(|| {
                item_error(
                    "new",
                    "the created appointment is neither a diary item nor a to-do",
                )
            })?;
        tracing::debug!(
            id = created.id,
            associate,
            "SuperOffice appointment created"
        );
        Ok(written(&created))
    }

    /// POSTs a new appointment (a single item, or a series' first row) for `associate` and
    /// returns the entity answered. A lost answer may still have created it: the caller
    /// resolves that with `find_created`. A 400 is first checked against the associate (gone
    /// or without a diary), whose message says what to do.
    pub(crate) async fn post_appointment(
        &self,
        associate: u32,
        entity: Value,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let call = Call::new(Method::POST, "Appointment")
            .body(entity)
            .retry(Retry::Unsafe);
        let response = self.call(&call).await?;
        if response.status == StatusCode::BAD_REQUEST
            && let Some(problem) = self.associate_problem(associate).await
        {
            return Err(problem);
        }
        if !response.status.is_success() {
            return Err(refusal(
                &response,
                Ctx::Write(format!("{what} for associate {associate}")),
            ));
        }
        response
            .json()
            .map_err(|e| item_error("new", format!("unreadable answer to a create: {e}")))
    }

    pub(crate) async fn update_item(
        &self,
        id: CrmId,
        item: &Item,
        expected: &Version,
    ) -> Result<Written<CrmId>, ConnectorError> {
        if item.kind() == Kind::Contact {
            return Err(item_error(
                id,
                "contacts flow from SuperOffice only; none is changed there",
            ));
        }
        if let Some(rule) = id.series_rule() {
            return match item {
                Item::Diary(d) => self.update_series(id, rule, d, expected).await,
                _ => Err(item_error(id, "a recurring series is a diary item")),
            };
        }
        if let Item::Diary(d) = item
            && d.series.is_some()
        {
            return Err(item_error(
                id,
                "a single appointment cannot be turned into a recurring series; \
                 delete it and create the series",
            ));
        }
        let expected_at = mapping::version_time(expected).ok_or_else(|| {
            item_error(id, format!("{:?} is not a SuperOffice version", expected.0))
        })?;
        let Some((_, current)) = self.read_appointment(id).await? else {
            // Deleted (or no longer of a kind crmsync syncs) since it was read.
            return Err(conflict(id));
        };
        if current.appointment.item.kind() != item.kind()
            || current.appointment.updated > expected_at
        {
            return Err(conflict(id));
        }
        let tasks = self.task_ids_for(item, &current.entity).await?;
        let lookup = |name: &str| {
            tasks
                .iter()
                .find(|t| !t.todo && t.name.eq_ignore_ascii_case(name))
                .map(|t| t.id)
        };
        let changes =
            mapping::changes(item, Some((&current.appointment, &current.entity)), &lookup);
        if changes.is_empty() {
            return Ok(written(&current.appointment));
        }
        // Replacing the same properties again is harmless: safe to retry. A retry after a
        // lost answer meets 412, which the check below recognises.
        let call = Call::new(Method::PATCH, &format!("Appointment/{id}"))
            .body(mapping::patch(&changes))
            .header(
                HeaderName::from_static("if-unmodified-since"),
                &time::http_date_at_or_after(expected_at),
            )
            .retry(Retry::Safe);
        let response = self.call(&call).await?;
        match response.status {
            s if s.is_success() => {
                let entity: Value = response
                    .json()
                    .map_err(|e| item_error(id, format!("unreadable answer to an update: {e}")))?;
                let updated = mapping::read_appointment(&entity)
                    .map_err(|what| item_error(id, what))?
                    .ok_or_else(|| conflict(id))?;
                Ok(written(&updated))
            }
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
                let mut intended = current.entity.clone();
                mapping::apply(&mut intended, &changes);
                let intended = mapping::read_appointment(&intended).ok().flatten();
                match (self.read_appointment(id).await?, intended) {
                    (Some((_, now)), Some(intended))
                        if same_content(&now.appointment.item, &intended.item) =>
                    {
                        Ok(written(&now.appointment))
                    }
                    _ => Err(conflict(id)),
                }
            }
            StatusCode::NOT_FOUND => Err(conflict(id)),
            _ => Err(refusal(&response, Ctx::Write(id.to_string()))),
        }
    }

    pub(crate) async fn delete_item(
        &self,
        kind: Kind,
        id: CrmId,
        expected: Option<&Version>,
    ) -> Result<Deleted, ConnectorError> {
        if kind == Kind::Contact {
            return Err(item_error(
                id,
                "contacts flow from SuperOffice only; none is deleted there",
            ));
        }
        if let Some(rule) = id.series_rule() {
            return self.delete_series(id, rule, expected).await;
        }
        let read_at = match expected {
            Some(expected) => Some(mapping::version_time(expected).ok_or_else(|| {
                item_error(id, format!("{:?} is not a SuperOffice version", expected.0))
            })?),
            None => None,
        };
        self.delete_row(id, id.0, read_at).await
    }

    /// The appointments of `item`'s kind registered for `associate` since `since` that a
    /// create whose answer was lost may have made, oldest first. When the system user's own
    /// associate is known, those it registered (whatever the user did to them since);
    /// otherwise (Basic sign-in) anyone's with the same title.
    pub async fn created_since(
        &self,
        associate: u32,
        item: &Item,
        since: jiff::Timestamp,
    ) -> Result<CreatedSince, ConnectorError> {
        let (kind, title) = match item {
            Item::Diary(d) => (Kind::Diary, d.subject.as_str()),
            Item::Task(t) => (Kind::Task, t.title.as_str()),
            Item::Contact(_) => return Ok(CreatedSince::default()),
        };
        let from = since
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap_or(since);
        let own = self.auth.own_associate().await;
        let mut q = ListQuery::new(
            "Appointment",
            "appointmentId,associateId,registeredDate,appointment/title,recurrenceRuleId",
            "appointmentId",
        )
        .associates("associateId", &[associate])
        .filter(format!(
            "registeredDate afterTime '{}'",
            time::literal(from)
        ))
        .top(self.options.page_size);
        if let Some(own) = own {
            q = q.filter(format!("registeredBy associateIsOneOf ({own})"));
        }
        let rows: Vec<Value> = self
            .list(&q)
            .await?
            .into_iter()
            .flat_map(|l| l.rows)
            .filter(|row| own.is_some() || query::text(row, "appointment/title") == title)
            .collect();
        let mut items = Vec::new();
        let mut rules = std::collections::BTreeSet::new();
        for row in rows {
            // A row of a series stands for its series (found once).
            if let Some(rule) = query::id(&row, "recurrenceRuleId").filter(|r| *r != 0) {
                if kind == Kind::Diary
                    && rules.insert(rule)
                    && let Some(series) = self.read_series(rule).await?
                {
                    items.push(series.observed);
                }
                continue;
            }
            let Some(id) = query::id(&row, "appointmentId") else {
                continue;
            };
            if let Some((observed, _)) = self.read_appointment(CrmId(id)).await?
                && observed.item.kind() == kind
            {
                items.push(observed);
            }
        }
        Ok(CreatedSince {
            items,
            by_crmsync: own.is_some(),
        })
    }
}
