//! Microsoft To Do: task lists, tasks and their linked resources (the stamp crmsync puts on
//! a task is a linked resource's `externalId`).

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::body::{BodyType, ItemBody};
use super::error::GraphError;
use super::store::{Collection, Item, Mailbox};
use super::tokens::IdKind;
use super::wire::{self, Obj, Zone};
use crate::sandbox::scenario::TaskSeed;

pub const STATUS: &[&str] = &[
    "notStarted",
    "inProgress",
    "completed",
    "waitingOnOthers",
    "deferred",
];
pub const IMPORTANCE: &[&str] = &["low", "normal", "high"];

const WRITABLE: &[&str] = &[
    "title",
    "body",
    "importance",
    "status",
    "isReminderOn",
    "reminderDateTime",
    "dueDateTime",
    "startDateTime",
    "completedDateTime",
    "categories",
    "linkedResources",
    "recurrence",
    "checklistItems",
    "extensions",
    "attachments",
];
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "bodyLastModifiedDateTime",
    "hasAttachments",
];

/// The properties `$select` and `$filter` know.
pub const PROPERTIES: &[&str] = &[
    "id",
    "title",
    "body",
    "importance",
    "status",
    "isReminderOn",
    "reminderDateTime",
    "dueDateTime",
    "startDateTime",
    "completedDateTime",
    "categories",
    "createdDateTime",
    "lastModifiedDateTime",
    "bodyLastModifiedDateTime",
    "hasAttachments",
];

/// A To Do list.
pub struct TodoList {
    pub id: String,
    pub display_name: String,
    /// `defaultList`, `flaggedEmails` or `none`.
    pub wellknown: &'static str,
    pub change_key: String,
    pub tasks: Collection<Task>,
}

impl TodoList {
    /// Every mailbox has the default list "Tasks" and the "Flagged email" list.
    pub fn seed_defaults(mailbox: &mut Mailbox) {
        for (name, wellknown) in [("Tasks", "defaultList"), ("Flagged email", "flaggedEmails")] {
            TodoList::add(mailbox, name, wellknown);
        }
    }

    pub fn add(mailbox: &mut Mailbox, name: &str, wellknown: &'static str) -> String {
        let id = mailbox.new_id(IdKind::TaskList);
        let seq = mailbox.next_seq();
        let list = TodoList {
            id: id.clone(),
            display_name: name.to_string(),
            wellknown,
            change_key: mailbox.change_key(seq),
            tasks: Collection::default(),
        };
        mailbox.lists.push(list);
        id
    }

    pub fn render(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.todoTaskList",
            "@odata.etag": format!("W/\"{}\"", self.change_key),
            "id": self.id,
            "displayName": self.display_name,
            "isOwner": true,
            "isShared": false,
            "wellknownListName": self.wellknown,
        })
    }
}

/// An item of a task's `linkedResources`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedResource {
    pub id: String,
    pub web_url: Option<String>,
    pub application_name: Option<String>,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
}

impl LinkedResource {
    pub fn new(id: String) -> Self {
        LinkedResource {
            id,
            web_url: None,
            application_name: None,
            display_name: None,
            external_id: None,
        }
    }

    /// Sets what a create or update body gives.
    pub fn apply(&mut self, obj: &Obj<'_>) -> Result<(), GraphError> {
        obj.known(&[
            "id",
            "webUrl",
            "applicationName",
            "displayName",
            "externalId",
        ])?;
        for (key, slot) in [
            ("webUrl", &mut self.web_url),
            ("applicationName", &mut self.application_name),
            ("displayName", &mut self.display_name),
            ("externalId", &mut self.external_id),
        ] {
            if obj.has(key) {
                *slot = obj.string(key)?;
            }
        }
        Ok(())
    }

    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "webUrl": self.web_url,
            "applicationName": self.application_name,
            "displayName": self.display_name,
            "externalId": self.external_id,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub seq: u64,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub body_modified: Timestamp,
    pub change_key: String,
    pub title: String,
    pub body: ItemBody,
    pub importance: &'static str,
    pub status: &'static str,
    pub is_reminder_on: bool,
    pub reminder: Option<Timestamp>,
    pub due: Option<Timestamp>,
    pub start: Option<Timestamp>,
    pub completed: Option<Timestamp>,
    pub categories: Vec<String>,
    pub linked: Vec<LinkedResource>,
}

impl Item for Task {
    fn id(&self) -> &str {
        &self.id
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

fn not_supported(what: &str) -> GraphError {
    GraphError::new(
        axum::http::StatusCode::NOT_IMPLEMENTED,
        "notSupported",
        format!("The sandbox does not emulate '{what}' on To Do tasks."),
    )
}

fn instant(obj: &Obj<'_>, key: &str) -> Result<Option<Option<Timestamp>>, GraphError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => Ok(Some(Some(wire::parse_dttz(v, key)?.instant))),
    }
}

impl Task {
    fn blank(now: Timestamp) -> Task {
        Task {
            id: String::new(),
            seq: 0,
            created: now,
            modified: now,
            body_modified: now,
            change_key: String::new(),
            title: String::new(),
            body: ItemBody::text(""),
            importance: "normal",
            status: "notStarted",
            is_reminder_on: false,
            reminder: None,
            due: None,
            start: None,
            completed: None,
            categories: Vec::new(),
            linked: Vec::new(),
        }
    }

    /// A task of the scenario, in the mailbox's default list.
    pub fn seed(mailbox: &mut Mailbox, seed: &TaskSeed, now: Timestamp) {
        let Some(list_id) = mailbox.default_list_id() else {
            return;
        };
        let mut task = Task::blank(now);
        task.title = seed.title.clone();
        task.body = ItemBody::text(&seed.body);
        task.importance = IMPORTANCE
            .iter()
            .find(|i| i.eq_ignore_ascii_case(&seed.importance))
            .copied()
            .unwrap_or("normal");
        task.due = seed.due.and_then(|d| {
            d.to_datetime(jiff::civil::Time::midnight())
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp())
        });
        if seed.completed {
            task.status = "completed";
            task.completed = Some(now);
        }
        let _ = Task::commit(mailbox, &list_id, task, now, true);
    }

    /// Stores a new or changed task as the mailbox's next change.
    pub fn commit(
        mailbox: &mut Mailbox,
        list_id: &str,
        mut task: Task,
        now: Timestamp,
        new: bool,
    ) -> Result<Task, GraphError> {
        if new {
            task.id = mailbox.new_id(IdKind::Task);
            task.created = now;
            task.body_modified = now;
        }
        let seq = mailbox.next_seq();
        task.modified = now;
        task.change_key = mailbox.change_key(seq);
        task.seq = seq;
        let list = mailbox
            .list_mut(list_id)
            .ok_or_else(GraphError::item_not_found)?;
        list.tasks.put(task.clone(), seq);
        Ok(task)
    }

    /// A task from a POST body (with its linked resources).
    pub fn create(
        mailbox: &mut Mailbox,
        list_id: &str,
        body: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<Task, GraphError> {
        let obj = Obj::new(body, "todoTask");
        obj.known(&[WRITABLE, READ_ONLY].concat())?;
        let mut task = Task::blank(now);
        task.apply(&obj, now)?;
        for item in obj
            .objects("linkedResources", "linkedResource")?
            .unwrap_or_default()
        {
            let mut linked = LinkedResource::new(mailbox.new_guid());
            linked.apply(&item)?;
            task.linked.push(linked);
        }
        Task::commit(mailbox, list_id, task, now, true)
    }

    /// Applies a PATCH body.
    pub fn update(
        mailbox: &mut Mailbox,
        list_id: &str,
        id: &str,
        body: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<Task, GraphError> {
        let obj = Obj::new(body, "todoTask");
        obj.known(&[WRITABLE, READ_ONLY].concat())?;
        if obj.has("linkedResources") {
            return Err(GraphError::body_read(
                "linkedResources is a navigation property: change it at .../tasks/{id}/linkedResources.",
            ));
        }
        let list = mailbox
            .list(list_id)
            .ok_or_else(GraphError::item_not_found)?;
        let mut task = list
            .tasks
            .get(id)
            .cloned()
            .ok_or_else(GraphError::item_not_found)?;
        task.apply(&obj, now)?;
        Task::commit(mailbox, list_id, task, now, false)
    }

    fn apply(&mut self, obj: &Obj<'_>, now: Timestamp) -> Result<(), GraphError> {
        if obj.get("recurrence").is_some_and(|r| !r.is_null()) {
            return Err(not_supported("recurrence"));
        }
        for unsupported in ["checklistItems", "extensions", "attachments"] {
            if obj.array(unsupported)?.is_some_and(|a| !a.is_empty()) {
                return Err(not_supported(unsupported));
            }
        }
        if obj.has("title") {
            self.title = obj.string("title")?.unwrap_or_default();
        }
        if let Some(body) = obj.object("body", "itemBody")? {
            let body = ItemBody::parse(&body)?;
            if body != self.body {
                self.body = body;
                self.body_modified = now;
            }
        }
        if let Some(v) = obj.member("importance", IMPORTANCE)? {
            self.importance = v;
        }
        if let Some(v) = obj.boolean("isReminderOn")? {
            self.is_reminder_on = v;
        }
        if let Some(v) = obj.strings("categories")? {
            self.categories = v;
        }
        if let Some(v) = instant(obj, "reminderDateTime")? {
            self.reminder = v;
        }
        if let Some(v) = instant(obj, "dueDateTime")? {
            self.due = v;
        }
        if let Some(v) = instant(obj, "startDateTime")? {
            self.start = v;
        }
        let completed = instant(obj, "completedDateTime")?;
        if let Some(status) = obj.member("status", STATUS)? {
            self.status = status;
            // To Do stamps the completion time, and clears it when a task is reopened.
            self.completed = if status == "completed" {
                completed.flatten().or(self.completed).or(Some(now))
            } else {
                None
            };
        } else if let Some(v) = completed {
            self.completed = v;
        }
        Ok(())
    }

    /// The documented JSON; unset times are left out, as in the samples.
    pub fn render(&self, with_linked: bool) -> Map<String, Value> {
        let utc = Zone::utc();
        let mut out = Map::new();
        out.insert(
            "@odata.etag".into(),
            json!(format!("W/\"{}\"", self.change_key)),
        );
        out.insert("importance".into(), json!(self.importance));
        out.insert("isReminderOn".into(), json!(self.is_reminder_on));
        out.insert("status".into(), json!(self.status));
        out.insert("title".into(), json!(self.title));
        out.insert("createdDateTime".into(), json!(wire::utc7(self.created)));
        out.insert(
            "lastModifiedDateTime".into(),
            json!(wire::utc7(self.modified)),
        );
        out.insert(
            "bodyLastModifiedDateTime".into(),
            json!(wire::utc7(self.body_modified)),
        );
        out.insert("hasAttachments".into(), json!(false));
        out.insert("categories".into(), json!(self.categories));
        out.insert("id".into(), json!(self.id));
        out.insert("body".into(), self.body.render(self.body.content_type));
        for (key, value) in [
            ("dueDateTime", self.due),
            ("startDateTime", self.start),
            ("reminderDateTime", self.reminder),
            ("completedDateTime", self.completed),
        ] {
            if let Some(ts) = value {
                out.insert(key.into(), wire::dttz_json(ts, &utc));
            }
        }
        if with_linked {
            out.insert(
                "linkedResources".into(),
                Value::Array(self.linked.iter().map(LinkedResource::render).collect()),
            );
        }
        out
    }

    /// The JSON a `$filter` is evaluated against.
    pub fn filter_json(&self) -> Value {
        let mut map = self.render(false);
        if map.get("body").is_some() {
            map.insert("body".into(), self.body.render(BodyType::Text));
        }
        Value::Object(map)
    }
}
