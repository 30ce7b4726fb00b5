//! The JSON an event is shown as: the documented property set (`event.json`), and the
//! properties `$select` and `$filter` know.

use serde_json::{Map, Value, json};

use super::body::BodyType;
use super::error::GraphError;
use super::events::{Event, Span};
use super::extprops;
use super::store::UserInfo;
use super::wire::{self, Obj, Zone};

/// The properties `$select` and `$filter` know.
pub const PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "transactionId",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "subject",
    "bodyPreview",
    "importance",
    "sensitivity",
    "isAllDay",
    "isCancelled",
    "isOrganizer",
    "isDraft",
    "responseRequested",
    "seriesMasterId",
    "showAs",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "onlineMeeting",
    "allowNewTimeProposals",
    "hideAttendees",
    "occurrenceId",
    "responseStatus",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "recurrence",
    "attendees",
    "organizer",
    "singleValueExtendedProperties",
];

impl Event {
    /// The documented property set, times in `zone`, the body as `body_type`.
    pub fn render(&self, owner: &UserInfo, zone: &Zone, body_type: BodyType) -> Map<String, Value> {
        let (start, end) = match self.span {
            Span::Timed { start, end } => {
                (wire::dttz_json(start, zone), wire::dttz_json(end, zone))
            }
            Span::AllDay { start, end } => (
                json!({"dateTime": wire::date7(start), "timeZone": zone.name}),
                json!({"dateTime": wire::date7(end), "timeZone": zone.name}),
            ),
        };
        let (location, locations) = render_location(self.location.as_ref());
        let attendees: Vec<Value> = self
            .attendees
            .iter()
            .map(|a| {
                json!({
                    "type": a.kind,
                    "status": {"response": "none", "time": wire::ZERO_TIME},
                    "emailAddress": {"name": a.name, "address": a.address},
                })
            })
            .collect();
        let mut out = json!({
            "@odata.etag": format!("W/\"{}\"", self.change_key),
            "id": self.id,
            "createdDateTime": wire::utc7(self.created),
            "lastModifiedDateTime": wire::utc7(self.modified),
            "changeKey": self.change_key,
            "categories": self.categories,
            "originalStartTimeZone": self.start_zone,
            "originalEndTimeZone": self.end_zone,
            "iCalUId": self.ical_uid,
            "reminderMinutesBeforeStart": self.reminder_minutes,
            "isReminderOn": self.is_reminder_on,
            "hasAttachments": false,
            "subject": self.subject,
            "bodyPreview": self.body.preview(),
            "importance": self.importance,
            "sensitivity": self.sensitivity,
            "isAllDay": matches!(self.span, Span::AllDay { .. }),
            "isCancelled": false,
            "isOrganizer": true,
            "isDraft": false,
            "responseRequested": self.response_requested,
            "seriesMasterId": null,
            "showAs": self.show_as,
            "type": if self.series.is_some() { "seriesMaster" } else { "singleInstance" },
            "webLink": format!(
                "https://outlook.office365.com/owa/?itemid={}&exvsurl=1&path=/calendar/item",
                wire::percent_encode(&self.id)
            ),
        });
        let rest = json!({
            "onlineMeetingUrl": null,
            "isOnlineMeeting": self.is_online_meeting,
            "onlineMeetingProvider": self.online_meeting_provider,
            "onlineMeeting": null,
            "allowNewTimeProposals": self.allow_new_time_proposals,
            "hideAttendees": self.hide_attendees,
            "occurrenceId": null,
            "responseStatus": {"response": "organizer", "time": wire::ZERO_TIME},
            "body": self.body.render(body_type),
            "start": start,
            "end": end,
            "location": location,
            "locations": locations,
            "recurrence": self.series.as_ref().map(|s| s.recur.render()),
            "attendees": attendees,
            "organizer": {"emailAddress": {"name": owner.display_name, "address": owner.address()}},
        });
        if let (Some(out), Value::Object(rest)) = (out.as_object_mut(), rest) {
            out.extend(rest);
        }
        // Only returned when an app set it (the event resource's documentation).
        if let Some(tx) = &self.transaction_id {
            out["transactionId"] = json!(tx);
        }
        match out {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The JSON a `$filter` is evaluated against (UTC, with the extended properties).
    /// Rendering every event for a lookup by stamp would dominate a mailbox's requests, so
    /// only what the filter reads is made.
    pub fn filter_json(&self, owner: &UserInfo, full: bool) -> Value {
        let mut map = if full {
            self.render(owner, &Zone::utc(), BodyType::Text)
        } else {
            Map::new()
        };
        map.insert(
            "singleValueExtendedProperties".into(),
            extprops::json(&self.extended),
        );
        map.entry("transactionId").or_insert(Value::Null);
        Value::Object(map)
    }
}

/// A `physicalAddress` (its string properties; `{}` when empty, as Outlook shows it).
pub fn physical_address(obj: &Obj<'_>) -> Result<Value, GraphError> {
    const KEYS: &[&str] = &["street", "city", "state", "countryOrRegion", "postalCode"];
    obj.known(KEYS)?;
    let mut out = Map::new();
    for key in KEYS {
        if let Some(v) = obj.string(key)? {
            out.insert((*key).into(), json!(v));
        }
    }
    Ok(Value::Object(out))
}

fn render_location(location: Option<&Map<String, Value>>) -> (Value, Value) {
    let Some(location) = location else {
        return (
            json!({"displayName": "", "locationType": "default", "uniqueIdType": "unknown", "address": {}, "coordinates": {}}),
            json!([]),
        );
    };
    let name = location.get("displayName").cloned().unwrap_or(json!(""));
    let mut main = location.clone();
    main.entry("locationType").or_insert(json!("default"));
    main.entry("uniqueId").or_insert(name.clone());
    main.entry("uniqueIdType").or_insert(json!("private"));
    let mut first = Map::new();
    first.insert("displayName".into(), name);
    first.insert(
        "locationType".into(),
        main.get("locationType")
            .cloned()
            .unwrap_or(json!("default")),
    );
    first.insert("uniqueIdType".into(), json!("unknown"));
    for key in ["address", "coordinates"] {
        if let Some(v) = location.get(key) {
            first.insert(key.into(), v.clone());
        }
    }
    (Value::Object(main), json!([Value::Object(first)]))
}
