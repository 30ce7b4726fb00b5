//! The neutral model <-> Graph JSON, field by field (docs/connectors/graph.md has the table).
//! Writes build the body of a create or of a PATCH that touches only what crmsync maps;
//! reads turn an event, To Do task or contact into an [`Observed`] with its stamp.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::wire;
use crate::connector::model::{
    ContactItem, DiaryItem, Importance, Item, Links, MailboxItemId, Observed, ShowAs, Stamp,
    TaskItem, Version, When,
};

/// The GUID of crmsync's named extended properties (fixed forever: items carry it).
pub const PROPERTY_SET: &str = "{5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17}";
/// The stamp on events and contacts: `String {guid} Name crmsyncStamp`.
pub const STAMP_PROPERTY: &str = "String {5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17} Name crmsyncStamp";
/// The SuperOffice task type crmsync wrote as a category (to tell it from the user's own).
pub const TASK_TYPE_PROPERTY: &str =
    "String {5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17} Name crmsyncTaskType";
/// The category every event from the CRM carries.
pub const CATEGORY: &str = "SuperOffice";
/// `linkedResources[].applicationName` of crmsync's link on a To Do task.
pub const APPLICATION_NAME: &str = "SuperOffice";

/// `$expand` that brings both of crmsync's extended properties.
pub fn expand_properties() -> String {
    format!(
        "singleValueExtendedProperties($filter=id eq {} or id eq {})",
        wire::literal(STAMP_PROPERTY),
        wire::literal(TASK_TYPE_PROPERTY)
    )
}

/// `$filter` for the item carrying `stamp`.
pub fn stamp_filter(stamp: &Stamp) -> String {
    format!(
        "singleValueExtendedProperties/Any(ep: ep/id eq {} and ep/value eq {})",
        wire::literal(STAMP_PROPERTY),
        wire::literal(&stamp.encode())
    )
}

/// Whether an extended property id returned by Graph is `wanted`: type, GUID and keyword
/// compare case-insensitively, the name exactly (as Exchange matches them).
pub fn same_property(id: &str, wanted: &str) -> bool {
    fn split(s: &str) -> Option<(&str, &str, &str, &str)> {
        let words: Vec<&str> = s.split_whitespace().collect();
        (words.len() == 4).then(|| (words[0], words[1], words[2], words[3]))
    }
    match (split(id), split(wanted)) {
        (Some(a), Some(b)) => {
            a.0.eq_ignore_ascii_case(b.0)
                && a.1.eq_ignore_ascii_case(b.1)
                && a.2.eq_ignore_ascii_case(b.2)
                && a.3 == b.3
        }
        _ => false,
    }
}

/// The value of an extended property in an item's `singleValueExtendedProperties`.
pub fn property<'a>(item: &'a Value, wanted: &str) -> Option<&'a str> {
    item.get("singleValueExtendedProperties")?
        .as_array()?
        .iter()
        .find(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| same_property(id, wanted))
        })?
        .get("value")?
        .as_str()
}

/// The stamp of an event or contact (read with [`expand_properties`]).
pub fn stamp_of(item: &Value) -> Option<Stamp> {
    property(item, STAMP_PROPERTY).and_then(Stamp::decode)
}

/// The stamp of a To Do task (read with `$expand=linkedResources`).
pub fn task_stamp_of(item: &Value) -> Option<Stamp> {
    item.get("linkedResources")?
        .as_array()?
        .iter()
        .filter_map(|l| l.get("externalId").and_then(Value::as_str))
        .find_map(Stamp::decode)
}

/// Whether any of a To Do task's linked resources carries `stamp`.
pub fn task_has_stamp(item: &Value, stamp: &Stamp) -> bool {
    item.get("linkedResources")
        .and_then(Value::as_array)
        .is_some_and(|links| {
            links
                .iter()
                .filter_map(|l| l.get("externalId").and_then(Value::as_str))
                .any(|e| Stamp::decode(e).as_ref() == Some(stamp))
        })
}

fn text(item: &Value, key: &str) -> String {
    item.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn opt_text(item: &Value, key: &str) -> Option<String> {
    item.get(key).and_then(Value::as_str).map(str::to_string)
}

fn strings(item: &Value, key: &str) -> Vec<String> {
    item.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A body as plain text: `text` as is; `html` (when a service ignored the preference) with
/// its tags dropped and the common entities decoded.
fn body_text(item: &Value) -> String {
    let body = &item["body"];
    let content = body["content"].as_str().unwrap_or_default();
    if body["contentType"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("html"))
    {
        html_to_text(content)
    } else {
        content.to_string()
    }
}

fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let start = lower
        .find("<body")
        .and_then(|i| html[i..].find('>').map(|j| i + j + 1));
    let end = lower.rfind("</body>");
    let inner = match (start, end) {
        (Some(s), Some(e)) if s <= e => &html[s..e],
        _ => html,
    };
    let mut out = String::new();
    let mut in_tag = false;
    let mut tag = String::new();
    for c in inner.chars() {
        match c {
            '<' => {
                in_tag = true;
                tag.clear();
            }
            '>' if in_tag => {
                in_tag = false;
                let name = tag.trim_start_matches('/').to_ascii_lowercase();
                let breaks =
                    name.starts_with("br") || name.starts_with('p') || name.starts_with("div");
                if breaks && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            c if in_tag => tag.push(c),
            c => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .trim_end()
        .to_string()
}

/// What every observed item carries: id, version, modification time.
pub struct Meta {
    pub id: MailboxItemId,
    pub version: Version,
    pub modified: Timestamp,
}

/// The version of an event or contact: its `changeKey` (the `@odata.etag` wraps the same).
fn change_key(item: &Value) -> Option<String> {
    opt_text(item, "changeKey").or_else(|| {
        let etag = item.get("@odata.etag")?.as_str()?;
        Some(etag.trim_start_matches("W/").trim_matches('"').to_string())
    })
}

pub fn meta(item: &Value, kind_is_task: bool) -> Option<Meta> {
    let id = item.get("id")?.as_str()?.to_string();
    // To Do has no changeKey: its `@odata.etag` is the version.
    let version = if kind_is_task {
        opt_text(item, "@odata.etag")?
    } else {
        change_key(item)?
    };
    // Always there in practice; the docs' truncated samples leave it out.
    let time = |key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let modified = time("lastModifiedDateTime")
        .or_else(|| time("createdDateTime"))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    Some(Meta {
        id: MailboxItemId(id),
        version: Version(version),
        modified,
    })
}

// ---------------------------------------------------------------------------------------
// Diary items <-> events

fn show_as(value: &str) -> ShowAs {
    match value.to_ascii_lowercase().as_str() {
        "free" => ShowAs::Free,
        "tentative" => ShowAs::Tentative,
        "oof" => ShowAs::OutOfOffice,
        "workingelsewhere" => ShowAs::WorkingElsewhere,
        // busy, unknown
        _ => ShowAs::Busy,
    }
}

fn show_as_text(value: ShowAs) -> &'static str {
    match value {
        ShowAs::Free => "free",
        ShowAs::Tentative => "tentative",
        ShowAs::Busy => "busy",
        ShowAs::OutOfOffice => "oof",
        ShowAs::WorkingElsewhere => "workingElsewhere",
    }
}

fn is_private(sensitivity: &str) -> bool {
    sensitivity.eq_ignore_ascii_case("private") || sensitivity.eq_ignore_ascii_case("confidential")
}

/// An event as a diary item (`None` when its times cannot be read).
pub fn diary(event: &Value) -> Option<DiaryItem> {
    let when = if event["isAllDay"].as_bool().unwrap_or(false) {
        let start = wire::whole_date(&event["start"])?;
        let end = wire::whole_date(&event["end"])?;
        When::AllDay { start, end }
    } else {
        When::Timed {
            start: wire::instant(&event["start"])?,
            end: wire::instant(&event["end"])?,
        }
    };
    let reminder_minutes = if event["isReminderOn"].as_bool().unwrap_or(false) {
        event["reminderMinutesBeforeStart"]
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
    } else {
        None
    };
    Some(DiaryItem {
        subject: text(event, "subject"),
        body: body_text(event),
        when,
        location: event["location"]["displayName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        private: is_private(event["sensitivity"].as_str().unwrap_or("normal")),
        show_as: show_as(event["showAs"].as_str().unwrap_or("busy")),
        reminder_minutes,
        task_type: property(event, TASK_TYPE_PROPERTY)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        organized_by_other: !event["isOrganizer"].as_bool().unwrap_or(true),
        series: None,
    })
}

fn when_json(when: &When, out: &mut Map<String, Value>) {
    match when {
        When::Timed { start, end } => {
            out.insert("isAllDay".into(), json!(false));
            out.insert("start".into(), wire::utc(*start));
            out.insert("end".into(), wire::utc(*end));
        }
        // Midnight to midnight in one zone (UTC): the dates, never shifted.
        When::AllDay { start, end } => {
            out.insert("isAllDay".into(), json!(true));
            out.insert(
                "start".into(),
                json!({"dateTime": wire::midnight(*start), "timeZone": "UTC"}),
            );
            out.insert(
                "end".into(),
                json!({"dateTime": wire::midnight(*end), "timeZone": "UTC"}),
            );
        }
    }
}

/// The categories of an event: the user's own kept, crmsync's (the task type it wrote
/// before, `SuperOffice`) replaced.
pub fn categories(
    current: &[String],
    old_type: Option<&str>,
    new_type: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = current
        .iter()
        .filter(|c| c.as_str() != CATEGORY && Some(c.as_str()) != old_type)
        .cloned()
        .collect();
    if let Some(t) = new_type
        && !t.is_empty()
        && !out.iter().any(|c| c == t)
    {
        out.push(t.to_string());
    }
    out.push(CATEGORY.to_string());
    out
}

/// The body of `POST /users/{u}/events` for a diary item from the CRM (never attendees).
pub fn event_create(item: &DiaryItem, stamp: &Stamp, transaction_id: &str) -> Value {
    let mut out = Map::new();
    out.insert("subject".into(), json!(item.subject));
    out.insert(
        "body".into(),
        json!({"contentType": "text", "content": item.body}),
    );
    when_json(&item.when, &mut out);
    out.insert("location".into(), json!({"displayName": item.location}));
    out.insert(
        "sensitivity".into(),
        json!(if item.private { "private" } else { "normal" }),
    );
    out.insert("showAs".into(), json!(show_as_text(item.show_as)));
    reminder_json(item.reminder_minutes, &mut out);
    out.insert(
        "categories".into(),
        json!(categories(&[], None, item.task_type.as_deref())),
    );
    out.insert("transactionId".into(), json!(transaction_id));
    let mut props = vec![json!({"id": STAMP_PROPERTY, "value": stamp.encode()})];
    if let Some(t) = &item.task_type {
        props.push(json!({"id": TASK_TYPE_PROPERTY, "value": t}));
    }
    out.insert("singleValueExtendedProperties".into(), Value::Array(props));
    Value::Object(out)
}

fn reminder_json(minutes: Option<u32>, out: &mut Map<String, Value>) {
    match minutes {
        Some(m) => {
            out.insert("isReminderOn".into(), json!(true));
            out.insert("reminderMinutesBeforeStart".into(), json!(m));
        }
        None => {
            out.insert("isReminderOn".into(), json!(false));
        }
    }
}

/// The PATCH that makes `current` (the event as it is, read with [`expand_properties`])
/// show `item`: only the fields crmsync maps that differ; the user's other categories and a
/// sensitivity that means the same (`confidential` for private) are kept. `None`: nothing to
/// change.
pub fn event_patch(current: &Value, item: &DiaryItem) -> Option<Value> {
    let mut out = Map::new();
    let now = diary(current);
    let now = now.as_ref();
    if now.map(|d| &d.subject) != Some(&item.subject) {
        out.insert("subject".into(), json!(item.subject));
    }
    if now.map(|d| &d.body) != Some(&item.body) {
        out.insert(
            "body".into(),
            json!({"contentType": "text", "content": item.body}),
        );
    }
    if now.map(|d| &d.when) != Some(&item.when) {
        when_json(&item.when, &mut out);
    }
    if now.map(|d| &d.location) != Some(&item.location) {
        out.insert("location".into(), json!({"displayName": item.location}));
    }
    if now.map(|d| d.private) != Some(item.private) {
        out.insert(
            "sensitivity".into(),
            json!(if item.private { "private" } else { "normal" }),
        );
    }
    if now.map(|d| d.show_as) != Some(item.show_as) {
        out.insert("showAs".into(), json!(show_as_text(item.show_as)));
    }
    if now.map(|d| d.reminder_minutes) != Some(item.reminder_minutes) {
        reminder_json(item.reminder_minutes, &mut out);
    }
    let current_categories = strings(current, "categories");
    let old_type = property(current, TASK_TYPE_PROPERTY).filter(|t| !t.is_empty());
    let wanted = categories(&current_categories, old_type, item.task_type.as_deref());
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    // The same categories in another order (the user's) are left alone.
    if sorted(&wanted) != sorted(&current_categories) {
        out.insert("categories".into(), json!(wanted));
    }
    if old_type != item.task_type.as_deref() {
        // An empty value for "no task type": removing a property with a null value is not
        // documented.
        out.insert(
            "singleValueExtendedProperties".into(),
            json!([{"id": TASK_TYPE_PROPERTY, "value": item.task_type.clone().unwrap_or_default()}]),
        );
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

// ---------------------------------------------------------------------------------------
// Tasks <-> To Do

fn importance(value: &str) -> Importance {
    match value.to_ascii_lowercase().as_str() {
        "low" => Importance::Low,
        "high" => Importance::High,
        _ => Importance::Normal,
    }
}

fn importance_text(value: Importance) -> &'static str {
    match value {
        Importance::Low => "low",
        Importance::Normal => "normal",
        Importance::High => "high",
    }
}

pub fn task(todo: &Value) -> TaskItem {
    let completed = if todo["status"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("completed"))
    {
        // A completed task without a completion time: its last change is the best guess.
        wire::instant(&todo["completedDateTime"]).or_else(|| {
            todo["lastModifiedDateTime"]
                .as_str()
                .and_then(|t| t.parse().ok())
        })
    } else {
        None
    };
    TaskItem {
        title: text(todo, "title"),
        body: body_text(todo),
        due: wire::whole_date(&todo["dueDateTime"]),
        completed,
        importance: importance(todo["importance"].as_str().unwrap_or("normal")),
    }
}

fn due_json(due: Option<jiff::civil::Date>) -> Value {
    match due {
        Some(d) => json!({"dateTime": wire::midnight(d), "timeZone": "UTC"}),
        None => Value::Null,
    }
}

/// A link back to the CRM item on a To Do task, carrying the stamp.
pub fn linked_resource(stamp: &Stamp, web_url: Option<&str>) -> Value {
    let mut out = Map::new();
    out.insert("applicationName".into(), json!(APPLICATION_NAME));
    out.insert(
        "displayName".into(),
        json!(format!("SuperOffice {} {}", stamp.kind, stamp.crm_id)),
    );
    out.insert("externalId".into(), json!(stamp.encode()));
    if let Some(url) = web_url {
        out.insert("webUrl".into(), json!(url));
    }
    Value::Object(out)
}

/// The body of `POST .../todo/lists/{l}/tasks`.
pub fn task_create(item: &TaskItem, linked: Value) -> Value {
    let mut out = Map::new();
    out.insert("title".into(), json!(item.title));
    out.insert(
        "body".into(),
        json!({"contentType": "text", "content": item.body}),
    );
    out.insert("importance".into(), json!(importance_text(item.importance)));
    if item.due.is_some() {
        out.insert("dueDateTime".into(), due_json(item.due));
    }
    if let Some(done) = item.completed {
        out.insert("status".into(), json!("completed"));
        out.insert("completedDateTime".into(), wire::utc(done));
    }
    out.insert("linkedResources".into(), json!([linked]));
    Value::Object(out)
}

/// The PATCH that makes `current` show `item` (`None`: nothing to change). An open task keeps
/// the user's own open status (`inProgress`, `waitingOnOthers`, ...).
pub fn task_patch(current: &Value, item: &TaskItem) -> Option<Value> {
    let now = task(current);
    let mut out = Map::new();
    if now.title != item.title {
        out.insert("title".into(), json!(item.title));
    }
    if now.body != item.body {
        out.insert(
            "body".into(),
            json!({"contentType": "text", "content": item.body}),
        );
    }
    if now.importance != item.importance {
        out.insert("importance".into(), json!(importance_text(item.importance)));
    }
    if now.due != item.due {
        out.insert("dueDateTime".into(), due_json(item.due));
    }
    if now.completed != item.completed {
        match item.completed {
            Some(done) => {
                out.insert("status".into(), json!("completed"));
                out.insert("completedDateTime".into(), wire::utc(done));
            }
            None => {
                out.insert("status".into(), json!("notStarted"));
            }
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

// ---------------------------------------------------------------------------------------
// Contacts

pub fn contact(value: &Value) -> ContactItem {
    ContactItem {
        given_name: text(value, "givenName"),
        surname: text(value, "surname"),
        emails: value["emailAddresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["address"].as_str())
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        business_phones: strings(value, "businessPhones"),
        mobile_phone: opt_text(value, "mobilePhone"),
        company: opt_text(value, "companyName"),
        job_title: opt_text(value, "jobTitle"),
    }
}

/// The mapped fields of a contact (a create, or a PATCH that sets them all: a contact is
/// crmsync's, one way from the CRM).
pub fn contact_fields(item: &ContactItem) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("givenName".into(), json!(item.given_name));
    out.insert("surname".into(), json!(item.surname));
    out.insert(
        "emailAddresses".into(),
        Value::Array(
            item.emails
                .iter()
                .map(|a| json!({"address": a, "name": a}))
                .collect(),
        ),
    );
    out.insert("businessPhones".into(), json!(item.business_phones));
    out.insert("mobilePhone".into(), json!(item.mobile_phone));
    out.insert("companyName".into(), json!(item.company));
    out.insert("jobTitle".into(), json!(item.job_title));
    out
}

pub fn contact_create(item: &ContactItem, stamp: &Stamp) -> Value {
    let mut out = contact_fields(item);
    out.insert(
        "singleValueExtendedProperties".into(),
        json!([{"id": STAMP_PROPERTY, "value": stamp.encode()}]),
    );
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------

/// An item of `kind` as Graph shows it (read with crmsync's expansions), observed.
pub fn observed(
    kind: crate::connector::model::Kind,
    value: &Value,
) -> Option<Observed<MailboxItemId>> {
    use crate::connector::model::Kind;
    let meta = meta(value, kind == Kind::Task)?;
    let (item, stamp) = match kind {
        Kind::Diary => (Item::Diary(diary(value)?), stamp_of(value)),
        Kind::Task => (Item::Task(task(value)), task_stamp_of(value)),
        Kind::Contact => (Item::Contact(contact(value)), stamp_of(value)),
    };
    Some(Observed {
        id: meta.id,
        version: meta.version,
        modified: meta.modified,
        item,
        stamp,
        links: Links::default(),
    })
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
