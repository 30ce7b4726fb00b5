//! SuperOffice entities <-> the neutral model. Pure functions over the JSON of
//! `AppointmentEntity` and `PersonEntity`; `docs/connectors/superoffice.md` has the table.
//!
//! Diary item: Title <-> subject, Description <-> body, StartDate/EndDate (UTC) <-> a timed
//! span, IsAlldayEvent with midnight dates <-> whole days, Location, Private (Public or not),
//! IsFree (Free or busy), HasAlarm/AlarmLeadTime <-> reminder, Task.Value <-> task type.
//! To-do (Task of record type ToDo): Title, Description, EndDate's date <-> due, Completed.
//! Person: names, e-mails in rank order, office and mobile phones, company, job title.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde_json::{Value, json};

use super::time::{self, format_midnight, format_timespan, format_utc, parse_timespan_minutes};
use crate::connector::model::{
    ContactItem, CrmId, DiaryItem, Importance, Item, Links, Observed, ShowAs, TaskItem, Version,
    When,
};

/// SuperOffice's limit on `Location`.
pub const LOCATION_MAX: usize = 254;

fn text(v: &Value, name: &str) -> String {
    v.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn flag(v: &Value, name: &str) -> bool {
    match v.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn carrier_id(v: &Value, name: &str, key: &str) -> Option<u32> {
    id_of(v.get(name)?, key)
}

fn id_of(v: &Value, key: &str) -> Option<u32> {
    let n = match v.get(key)? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    u32::try_from(n).ok().filter(|n| *n != 0)
}

fn date_time(v: &Value, name: &str) -> Result<time::SoDateTime, String> {
    let raw = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{name} is missing"))?;
    time::parse(raw).ok_or_else(|| format!("{name} {raw:?} is not a date-time"))
}

/// An appointment as read: who owns it, its version, and the neutral item.
#[derive(Debug, Clone, PartialEq)]
pub struct Appointment {
    pub id: u32,
    pub associate: u32,
    pub updated: Timestamp,
    pub item: Item,
    pub links: Links,
    /// Task list item id (to keep it when nothing asks for another).
    pub task_id: Option<u32>,
    /// `inChecklist` rather than `inDiary` (a to-do without a time).
    pub checklist: bool,
    /// The associate who registered it (`CreatedBy`).
    pub created_by: Option<u32>,
}

impl Appointment {
    pub fn observed(&self) -> Observed<CrmId> {
        Observed {
            id: CrmId(self.id),
            version: version(self.updated),
            modified: self.updated,
            item: self.item.clone(),
            stamp: None,
            links: self.links,
        }
    }
}

/// The version crmsync hands out: `UpdatedDate` in RFC 3339 (UTC).
pub fn version(updated: Timestamp) -> Version {
    Version(updated.to_string())
}

pub fn version_time(version: &Version) -> Option<Timestamp> {
    time::parse_instant(&version.0)
}

/// Whether the entity is a to-do: its Task list item has record type ToDo.
pub fn is_todo(entity: &Value) -> bool {
    entity
        .get("Task")
        .and_then(|t| t.get("Type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("ToDo"))
}

/// Reads an `AppointmentEntity`. `Ok(None)`: neither a diary item nor a to-do (a note, a
/// document, an invitation not yet accepted, a follow-up in the checklist).
pub fn read_appointment(entity: &Value) -> Result<Option<Appointment>, String> {
    let id = id_of(entity, "AppointmentId").ok_or("AppointmentId is missing")?;
    let associate = carrier_id(entity, "Associate", "AssociateId").ok_or("Associate is missing")?;
    let updated = date_time(entity, "UpdatedDate")?
        .timestamp()
        .ok_or("UpdatedDate is out of range")?;
    let kind = text(entity, "Type");
    let todo = is_todo(entity);
    let checklist = kind.eq_ignore_ascii_case("inChecklist");
    let item = if todo {
        Item::Task(read_task(entity, updated)?)
    } else if kind.eq_ignore_ascii_case("inDiary") {
        Item::Diary(read_diary(entity)?)
    } else {
        return Ok(None);
    };
    Ok(Some(Appointment {
        id,
        associate,
        updated,
        item,
        links: Links {
            person: carrier_id(entity, "Person", "PersonId").map(CrmId),
            company: carrier_id(entity, "Contact", "ContactId"),
            made_by_crmsync: false,
        },
        task_id: carrier_id(entity, "Task", "TaskListItemId"),
        checklist,
        created_by: carrier_id(entity, "CreatedBy", "AssociateId"),
    }))
}

fn read_when(entity: &Value) -> Result<When, String> {
    let start = date_time(entity, "StartDate")?;
    let end = date_time(entity, "EndDate")?;
    if flag(entity, "IsAlldayEvent") {
        // Floating dates, taken as written: no zone shifts them.
        let first = start.civil.date();
        let mut last = end.civil.date();
        // An end inside a day (23:59) includes that day.
        if end.civil.time() != Time::midnight() {
            last = last.tomorrow().map_err(|e| e.to_string())?;
        }
        if last <= first {
            last = first.tomorrow().map_err(|e| e.to_string())?;
        }
        Ok(When::AllDay {
            start: first,
            end: last,
        })
    } else {
        let start = start.timestamp().ok_or("StartDate is out of range")?;
        let end = end.timestamp().ok_or("EndDate is out of range")?;
        Ok(When::Timed {
            start,
            end: end.max(start),
        })
    }
}

fn read_diary(entity: &Value) -> Result<DiaryItem, String> {
    let mother = entity.get("MotherId").and_then(Value::as_u64).unwrap_or(0);
    let own = entity
        .get("AppointmentId")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(DiaryItem {
        subject: text(entity, "Title"),
        body: text(entity, "Description"),
        when: read_when(entity)?,
        location: text(entity, "Location"),
        private: !matches!(
            entity.get("Private").and_then(Value::as_str),
            None | Some("Public")
        ),
        show_as: if flag(entity, "IsFree") {
            ShowAs::Free
        } else {
            ShowAs::Busy
        },
        reminder_minutes: flag(entity, "HasAlarm")
            .then(|| parse_timespan_minutes(&text(entity, "AlarmLeadTime")).unwrap_or(0)),
        task_type: entity
            .get("Task")
            .and_then(|t| t.get("Value"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        organized_by_other: text(entity, "BookingType").eq_ignore_ascii_case("Participant")
            || (mother != 0 && mother != own),
        series: None,
    })
}

fn read_task(entity: &Value, updated: Timestamp) -> Result<TaskItem, String> {
    let end = date_time(entity, "EndDate")?;
    let due = if end.is_empty_date() {
        None
    } else {
        Some(
            end.timestamp()
                .ok_or("EndDate is out of range")?
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date(),
        )
    };
    Ok(TaskItem {
        title: text(entity, "Title"),
        body: text(entity, "Description"),
        due,
        // SuperOffice keeps the state, not when it changed: the last change stands for it.
        completed: text(entity, "Completed")
            .eq_ignore_ascii_case("Completed")
            .then_some(updated),
        // Priority is a tenant-defined list: not held.
        importance: Importance::Normal,
    })
}

/// A task type's list item id, by name (case-insensitive), among non-to-do items.
pub trait TaskIds {
    fn task_id(&self, name: &str) -> Option<u32>;
}

impl<F: Fn(&str) -> Option<u32>> TaskIds for F {
    fn task_id(&self, name: &str) -> Option<u32> {
        self(name)
    }
}

/// Location as SuperOffice holds it.
pub fn held_location(location: &str) -> String {
    location.chars().take(LOCATION_MAX).collect()
}

/// The properties to set so that the entity holds `item`; with `current`, only those that
/// differ from it. `current_entity` gives what the item keeps when the neutral model cannot
/// say (a to-do's time of day).
pub fn changes(
    item: &Item,
    current: Option<(&Appointment, &Value)>,
    tasks: &dyn TaskIds,
) -> Vec<(&'static str, Value)> {
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    match item {
        Item::Diary(d) => {
            let cur = current.and_then(|(a, _)| match &a.item {
                Item::Diary(c) => Some(c),
                _ => None,
            });
            let differs = |f: &dyn Fn(&DiaryItem) -> bool| cur.is_none_or(|c| !f(c));
            if differs(&|c| c.subject == d.subject) {
                out.push(("Title", json!(d.subject)));
            }
            if differs(&|c| c.body == d.body) {
                out.push(("Description", json!(d.body)));
            }
            if differs(&|c| c.when == d.when) {
                match d.when {
                    When::Timed { start, end } => {
                        out.push(("StartDate", json!(format_utc(start))));
                        out.push(("EndDate", json!(format_utc(end))));
                        out.push(("IsAlldayEvent", json!(false)));
                    }
                    When::AllDay { start, end } => {
                        out.push(("StartDate", json!(format_midnight(start))));
                        out.push(("EndDate", json!(format_midnight(end))));
                        out.push(("IsAlldayEvent", json!(true)));
                    }
                }
            }
            let location = held_location(&d.location);
            if differs(&|c| c.location == location) {
                out.push(("Location", json!(location)));
            }
            if differs(&|c| c.private == d.private) {
                out.push((
                    "Private",
                    json!(if d.private { "PrivateUser" } else { "Public" }),
                ));
            }
            let free = d.show_as == ShowAs::Free;
            if differs(&|c| (c.show_as == ShowAs::Free) == free) {
                out.push(("IsFree", json!(free)));
            }
            if differs(&|c| c.reminder_minutes == d.reminder_minutes) {
                out.push(("HasAlarm", json!(d.reminder_minutes.is_some())));
                out.push((
                    "AlarmLeadTime",
                    json!(format_timespan(d.reminder_minutes.unwrap_or(0))),
                ));
            }
            if let Some(name) = &d.task_type {
                let same = cur.is_some_and(|c| {
                    c.task_type
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                });
                if !same && let Some(id) = tasks.task_id(name) {
                    out.push(("Task", json!({ "TaskListItemId": id })));
                }
            }
        }
        Item::Task(t) => {
            let cur = current.and_then(|(a, e)| match &a.item {
                Item::Task(c) => Some((c, a, e)),
                _ => None,
            });
            if cur.is_none_or(|(c, ..)| c.title != t.title) {
                out.push(("Title", json!(t.title)));
            }
            if cur.is_none_or(|(c, ..)| c.body != t.body) {
                out.push(("Description", json!(t.body)));
            }
            if let Some(due) = t.due
                && cur.is_none_or(|(c, ..)| c.due != Some(due))
            {
                let (start, end) = due_span(due, cur.map(|(_, a, e)| (a, e)));
                out.push(("StartDate", json!(format_utc(start))));
                out.push(("EndDate", json!(format_utc(end))));
            }
            let done = t.completed.is_some();
            if cur.is_none_or(|(c, ..)| c.completed.is_some() != done) {
                out.push((
                    "Completed",
                    json!(if done { "Completed" } else { "NotStarted" }),
                ));
            }
        }
        Item::Contact(_) => {}
    }
    out
}

/// Start and end of a to-do due on `due`: noon UTC for a new one (the same date in every
/// zone within 11 hours of UTC); an existing one keeps its time of day and duration.
fn due_span(due: Date, current: Option<(&Appointment, &Value)>) -> (Timestamp, Timestamp) {
    let noon = |d: Date| {
        d.at(12, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    };
    let Some((appointment, entity)) = current else {
        let at = noon(due);
        return (at, at);
    };
    let read = |name: &str| date_time(entity, name).ok().and_then(|d| d.timestamp());
    match (read("StartDate"), read("EndDate")) {
        (Some(start), Some(end)) if !appointment.checklist && start != end => {
            let old = end.to_zoned(jiff::tz::TimeZone::UTC);
            let new_end = due
                .to_datetime(old.time())
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .unwrap_or(end);
            let shift = new_end.duration_since(end);
            (start.checked_add(shift).unwrap_or(start), new_end)
        }
        (_, Some(end)) => {
            let old = end.to_zoned(jiff::tz::TimeZone::UTC);
            let at = due
                .to_datetime(old.time())
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .unwrap_or_else(|_| noon(due));
            (at, at)
        }
        _ => {
            let at = noon(due);
            (at, at)
        }
    }
}

/// Sets `changes` on an entity (a new one from the defaults, or the current one).
pub fn apply(entity: &mut Value, changes: &[(&'static str, Value)]) {
    if let Value::Object(o) = entity {
        for (name, value) in changes {
            o.insert((*name).to_string(), value.clone());
        }
    }
}

/// JSON Patch (RFC 6902) `replace` operations, the form SuperOffice prefers.
pub fn patch(changes: &[(&'static str, Value)]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|(name, value)| json!({"op": "replace", "path": name, "value": value}))
            .collect(),
    )
}

/// A person as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: u32,
    pub updated: Timestamp,
    pub company: Option<u32>,
    /// The company's "our contact".
    pub our_contact: Option<u32>,
    pub item: ContactItem,
}

impl Person {
    /// Version: the person's `UpdatedDate` and a digest of what is shown, because the company
    /// name can change without the person's `UpdatedDate` moving.
    pub fn observed(&self) -> Observed<CrmId> {
        let item = Item::Contact(self.item.clone());
        let digest = item.content_hash().to_string();
        Observed {
            id: CrmId(self.id),
            version: Version(format!("{}#{}", self.updated, &digest[..8])),
            modified: self.updated,
            item,
            stamp: None,
            links: Links {
                person: None,
                company: self.company,
                made_by_crmsync: false,
            },
        }
    }
}

fn values(entity: &Value, name: &str) -> Vec<String> {
    entity
        .get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("Value").and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn non_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

/// Reads a `PersonEntity`.
pub fn read_person(entity: &Value) -> Result<Person, String> {
    let id = id_of(entity, "PersonId").ok_or("PersonId is missing")?;
    let updated = date_time(entity, "UpdatedDate")?
        .timestamp()
        .ok_or("UpdatedDate is out of range")?;
    let first = text(entity, "Firstname");
    let middle = text(entity, "MiddleName");
    let given = if middle.trim().is_empty() {
        first
    } else {
        format!("{first} {middle}").trim().to_string()
    };
    let company_name = entity
        .get("Contact")
        .and_then(|c| c.get("Name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(Person {
        id,
        updated,
        company: carrier_id(entity, "Contact", "ContactId"),
        our_contact: carrier_id(entity, "Associate", "AssociateId"),
        item: ContactItem {
            given_name: given,
            surname: text(entity, "Lastname"),
            emails: values(entity, "Emails"),
            business_phones: values(entity, "OfficePhones"),
            mobile_phone: values(entity, "MobilePhones").into_iter().next(),
            company: non_empty(company_name),
            job_title: non_empty(text(entity, "Title")),
        },
    })
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
