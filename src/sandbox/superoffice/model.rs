//! The tenant's data: associates, persons, companies, appointments (diary items and to-dos),
//! the task list and the travel transaction log, with the indexes the change queries use.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Table numbers of the standard schema (docs: `appointment Table (9)`, `contact Table (5)`,
/// `person Table (6)`).
pub const TABLE_CONTACT: u32 = 5;
pub const TABLE_PERSON: u32 = 6;
pub const TABLE_APPOINTMENT: u32 = 9;

/// `TrlogTransType` values.
pub const TTL_INSERT: u32 = 4352;
pub const TTL_UPDATE: u32 = 4608;
pub const TTL_DELETE: u32 = 4864;
pub const TTL_UPDATE_OWNER: u32 = 5120;

/// `TaskType`, the record type of a task list item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordType {
    Appointment,
    Phone,
    ToDo,
}

impl RecordType {
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Appointment => "Appointment",
            RecordType::Phone => "Phone",
            RecordType::ToDo => "ToDo",
        }
    }

    pub fn number(self) -> i64 {
        match self {
            RecordType::Appointment => 1,
            RecordType::Phone => 5,
            RecordType::ToDo => 6,
        }
    }
}

/// An item of the Task list (activity types such as Meeting, Phone, To do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskItem {
    pub id: u32,
    pub name: String,
    pub record_type: RecordType,
    pub default_free: bool,
}

/// The built-in task list. New names met in a scenario are appended.
pub fn default_tasks() -> Vec<TaskItem> {
    let item = |id, name: &str, record_type, default_free| TaskItem {
        id,
        name: name.to_string(),
        record_type,
        default_free,
    };
    vec![
        item(1, "Meeting", RecordType::Appointment, false),
        item(2, "Phone", RecordType::Phone, false),
        item(3, "Lunch", RecordType::Appointment, false),
        item(4, "To do", RecordType::ToDo, true),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssociateKind {
    Internal,
    /// The API's own user (the system user online, the Basic user onsite).
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Associate {
    pub id: u32,
    pub login: String,
    pub person_id: u32,
    pub active: bool,
    pub kind: AssociateKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: u32,
    pub contact_id: u32,
    pub first_name: String,
    pub last_name: String,
    /// Rank order: the first is the primary address.
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub mobiles: Vec<String>,
    pub title: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub created_by: u32,
    pub updated_by: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Company {
    pub id: u32,
    pub name: String,
    /// "Our contact": the associate responsible for the company.
    pub our_contact: Option<u32>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub created_by: u32,
    pub updated_by: u32,
}

/// When an appointment happens. All-day items are floating dates (midnight to midnight),
/// which no time zone shifts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Span {
    Timed { start: Timestamp, end: Timestamp },
    AllDay { start: Date, end: Date },
}

/// `AppointmentType` (only the two a diary or checklist item can have).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppointmentType {
    InDiary,
    InChecklist,
}

impl AppointmentType {
    pub fn name(self) -> &'static str {
        match self {
            AppointmentType::InDiary => "inDiary",
            AppointmentType::InChecklist => "inChecklist",
        }
    }

    pub fn number(self) -> i64 {
        match self {
            AppointmentType::InDiary => 1,
            AppointmentType::InChecklist => 2,
        }
    }
}

/// `AppointmentPrivate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Private {
    Public,
    PrivateUser,
    PrivateGroup,
}

impl Private {
    pub fn name(self) -> &'static str {
        match self {
            Private::Public => "Public",
            Private::PrivateUser => "PrivateUser",
            Private::PrivateGroup => "PrivateGroup",
        }
    }
}

/// The completed part of the status (`NotStarted` = 1, `Started` = 2, `Completed` = 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Completed {
    NotStarted,
    Started,
    Completed,
}

impl Completed {
    pub fn name(self) -> &'static str {
        match self {
            Completed::NotStarted => "NotStarted",
            Completed::Started => "Started",
            Completed::Completed => "Completed",
        }
    }

    pub fn raw_status(self) -> i64 {
        match self {
            Completed::NotStarted => 1,
            Completed::Started => 2,
            Completed::Completed => 3,
        }
    }
}

/// The editable content of an appointment (what a user or a client sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentData {
    pub associate_id: u32,
    pub task_id: u32,
    pub kind: AppointmentType,
    pub title: String,
    pub description: String,
    pub location: String,
    pub span: Span,
    pub private: Private,
    pub free: bool,
    pub alarm_minutes: Option<u32>,
    pub completed: Completed,
    pub person_id: Option<u32>,
    pub contact_id: Option<u32>,
}

/// A row of the `appointment` table. A recurring series is a rule (`Data::rules`) plus one
/// row per occurrence, each pointing at the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: u32,
    pub data: AppointmentData,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub created_by: u32,
    pub updated_by: u32,
    pub updated_count: u32,
    /// Set on the rows of a recurring series.
    #[serde(default)]
    pub occurrence: Option<Occurrence>,
}

/// Where a row sits in its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// `recurrenceRuleId`.
    pub rule_id: u32,
    /// The date (in the series' zone) the rule gave this row; it keeps it when moved.
    pub original_date: Date,
    /// Edited alone: a re-materialization of the series leaves it as it is.
    pub exception: bool,
}

/// A row of the travel transaction log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TravelLogRow {
    pub id: u64,
    pub ttime: Timestamp,
    pub table: u32,
    pub record_id: u32,
    pub kind: u32,
    pub associate_id: u32,
    pub prev_record_id: u32,
}

/// Everything in the tenant's database that the emulator keeps.
#[derive(Debug, Default)]
pub struct Data {
    pub tasks: Vec<TaskItem>,
    pub associates: BTreeMap<u32, Associate>,
    pub persons: BTreeMap<u32, Person>,
    pub companies: BTreeMap<u32, Company>,
    pub appointments: BTreeMap<u32, Appointment>,
    pub travel_log: Vec<TravelLogRow>,
    /// Recurrence rules by `recurrenceRuleId`.
    pub rules: BTreeMap<u32, super::recurrence::Rule>,
    /// The associate the API acts as.
    pub api_associate: u32,
    pub(super) next_appointment: u32,
    pub(super) next_person: u32,
    pub(super) next_rule: u32,
    // Indexes, so that the rank-wide change query touches only what it returns.
    pub(super) appointments_by_associate: HashMap<u32, BTreeSet<u32>>,
    pub(super) appointments_by_updated: BTreeSet<(Timestamp, u32)>,
    pub(super) persons_by_contact: HashMap<u32, BTreeSet<u32>>,
    pub(super) persons_by_updated: BTreeSet<(Timestamp, u32)>,
    pub(super) companies_by_our_contact: HashMap<u32, BTreeSet<u32>>,
    pub(super) travel_log_by_time: BTreeSet<(Timestamp, usize)>,
}

/// Why a write was refused (the API turns these into 400s and 404s).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("{entity} id {id} not found")]
    NotFound { entity: &'static str, id: u32 },
    #[error("{0}")]
    Invalid(String),
}

impl Data {
    pub fn task(&self, id: u32) -> Option<&TaskItem> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn task_named(&self, name: &str) -> Option<&TaskItem> {
        self.tasks
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    pub fn add_task(&mut self, name: &str, record_type: RecordType) -> u32 {
        let id = self.tasks.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        self.tasks.push(TaskItem {
            id,
            name: name.to_string(),
            record_type,
            default_free: record_type == RecordType::ToDo,
        });
        id
    }

    pub fn is_todo(&self, appointment: &Appointment) -> bool {
        self.task(appointment.data.task_id)
            .is_some_and(|t| t.record_type == RecordType::ToDo)
    }

    /// The primary e-mail on an associate's own person card.
    pub fn associate_email(&self, associate: &Associate) -> Option<&str> {
        self.persons
            .get(&associate.person_id)
            .and_then(|p| p.emails.first())
            .map(String::as_str)
    }

    pub fn set_next_ids(&mut self) {
        self.next_appointment = self.appointments.keys().max().copied().unwrap_or(0) + 1;
        self.next_person = self.persons.keys().max().copied().unwrap_or(0) + 1;
    }

    pub fn insert_seeded_appointment(&mut self, appointment: Appointment) {
        self.index_appointment(&appointment);
        self.appointments.insert(appointment.id, appointment);
    }

    pub(super) fn index_appointment(&mut self, a: &Appointment) {
        self.appointments_by_associate
            .entry(a.data.associate_id)
            .or_default()
            .insert(a.id);
        self.appointments_by_updated.insert((a.updated, a.id));
    }

    pub(super) fn unindex_appointment(&mut self, a: &Appointment) {
        if let Some(set) = self.appointments_by_associate.get_mut(&a.data.associate_id) {
            set.remove(&a.id);
        }
        self.appointments_by_updated.remove(&(a.updated, a.id));
    }

    pub fn insert_seeded_person(&mut self, person: Person) {
        self.index_person(&person);
        self.persons.insert(person.id, person);
    }

    pub(super) fn index_person(&mut self, p: &Person) {
        self.persons_by_contact
            .entry(p.contact_id)
            .or_default()
            .insert(p.id);
        self.persons_by_updated.insert((p.updated, p.id));
    }

    pub(super) fn unindex_person(&mut self, p: &Person) {
        if let Some(set) = self.persons_by_contact.get_mut(&p.contact_id) {
            set.remove(&p.id);
        }
        self.persons_by_updated.remove(&(p.updated, p.id));
    }

    pub fn insert_seeded_company(&mut self, company: Company) {
        if let Some(a) = company.our_contact {
            self.companies_by_our_contact
                .entry(a)
                .or_default()
                .insert(company.id);
        }
        self.companies.insert(company.id, company);
    }

    pub fn appointments_of(&self, associate: u32) -> impl Iterator<Item = u32> + '_ {
        self.appointments_by_associate
            .get(&associate)
            .into_iter()
            .flat_map(|s| s.iter().copied())
    }

    /// Appointment ids updated after `at` (exclusive).
    pub fn appointments_updated_after(&self, at: Timestamp) -> impl Iterator<Item = u32> + '_ {
        self.appointments_by_updated
            .range((at, u32::MAX)..)
            .filter(move |(t, _)| *t > at)
            .map(|(_, id)| *id)
    }

    pub fn persons_of_company(&self, company: u32) -> impl Iterator<Item = u32> + '_ {
        self.persons_by_contact
            .get(&company)
            .into_iter()
            .flat_map(|s| s.iter().copied())
    }

    pub fn persons_updated_after(&self, at: Timestamp) -> impl Iterator<Item = u32> + '_ {
        self.persons_by_updated
            .range((at, u32::MAX)..)
            .filter(move |(t, _)| *t > at)
            .map(|(_, id)| *id)
    }

    /// Travel log rows (by position) written after `at` (exclusive).
    pub fn travel_log_after(&self, at: Timestamp) -> impl Iterator<Item = &TravelLogRow> + '_ {
        self.travel_log_by_time
            .range((at, usize::MAX)..)
            .filter(move |(t, _)| *t > at)
            .filter_map(|(_, i)| self.travel_log.get(*i))
    }

    pub fn companies_of(&self, associate: u32) -> impl Iterator<Item = u32> + '_ {
        self.companies_by_our_contact
            .get(&associate)
            .into_iter()
            .flat_map(|s| s.iter().copied())
    }
}
