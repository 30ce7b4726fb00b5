//! The event resource: what is stored, how a create or update body changes it (with Graph's
//! validation of times and all-day events), and the documented JSON it is shown as.
//!
//! A recurring series is one stored event, its `seriesMaster`, with a
//! [`Series`](super::series::Series); `series.rs` expands it into instances.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde_json::{Map, Value, json};

use super::body::ItemBody;
use super::error::GraphError;
use super::events_json::physical_address;
use super::extprops::{self, ExtProps};
use super::series::Series;
use super::store::{Item, Mailbox};
use super::tokens::{self, IdKind};
use super::wire::{self, DtTz, Obj, Zone};
use crate::sandbox::scenario::{EventSeed, When};

pub const IMPORTANCE: &[&str] = &["low", "normal", "high"];
pub const SENSITIVITY: &[&str] = &["normal", "personal", "private", "confidential"];
pub const SHOW_AS: &[&str] = &[
    "free",
    "tentative",
    "busy",
    "oof",
    "workingElsewhere",
    "unknown",
];
const ATTENDEE_TYPES: &[&str] = &["required", "optional", "resource"];
const MEETING_PROVIDERS: &[&str] = &[
    "unknown",
    "teamsForBusiness",
    "skypeForBusiness",
    "skypeForConsumer",
];

/// Properties a create or update may set.
const WRITABLE: &[&str] = &[
    "subject",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "attendees",
    "isAllDay",
    "importance",
    "sensitivity",
    "showAs",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "categories",
    "responseRequested",
    "transactionId",
    "singleValueExtendedProperties",
    "multiValueExtendedProperties",
    "extensions",
    "attachments",
    "recurrence",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "allowNewTimeProposals",
    "hideAttendees",
];

/// Read-only properties a client may send back (a GET body reused for a PATCH): ignored.
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "iCalUId",
    "uid",
    "bodyPreview",
    "hasAttachments",
    "isCancelled",
    "isOrganizer",
    "isDraft",
    "seriesMasterId",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "onlineMeeting",
    "responseStatus",
    "occurrenceId",
    "originalStart",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "organizer",
];

/// When an event happens: instants, or whole days that no time zone shifts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    Timed { start: Timestamp, end: Timestamp },
    AllDay { start: Date, end: Date },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attendee {
    pub name: String,
    pub address: String,
    pub kind: &'static str,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub seq: u64,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub change_key: String,
    pub ical_uid: String,
    pub transaction_id: Option<String>,
    pub subject: String,
    pub body: ItemBody,
    pub span: Span,
    pub start_zone: String,
    pub end_zone: String,
    pub location: Option<Map<String, Value>>,
    pub attendees: Vec<Attendee>,
    pub categories: Vec<String>,
    pub importance: &'static str,
    pub sensitivity: &'static str,
    pub show_as: &'static str,
    pub is_reminder_on: bool,
    pub reminder_minutes: i64,
    pub response_requested: bool,
    pub allow_new_time_proposals: bool,
    pub hide_attendees: bool,
    pub is_online_meeting: bool,
    pub online_meeting_provider: &'static str,
    pub extended: ExtProps,
    /// Set on a series master.
    pub series: Option<Arc<Series>>,
}

impl Item for Event {
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

fn validation(detail: &str) -> GraphError {
    GraphError::bad_request(
        "ErrorPropertyValidationFailure",
        format!("At least one property failed validation. {detail}"),
    )
}

fn midnight(date: Date) -> jiff::civil::DateTime {
    date.to_datetime(Time::midnight())
}

impl Event {
    fn blank(now: Timestamp) -> Event {
        Event {
            id: String::new(),
            seq: 0,
            created: now,
            modified: now,
            change_key: String::new(),
            ical_uid: String::new(),
            transaction_id: None,
            subject: String::new(),
            body: ItemBody::text(""),
            span: Span::Timed {
                start: now,
                end: now,
            },
            start_zone: "UTC".into(),
            end_zone: "UTC".into(),
            location: None,
            attendees: Vec::new(),
            categories: Vec::new(),
            importance: "normal",
            sensitivity: "normal",
            show_as: "busy",
            is_reminder_on: true,
            reminder_minutes: 15,
            response_requested: true,
            allow_new_time_proposals: true,
            hide_attendees: false,
            is_online_meeting: false,
            online_meeting_provider: "unknown",
            extended: Vec::new(),
            series: None,
        }
    }

    /// An event of the scenario, as the user made it in Outlook.
    pub fn seed(mailbox: &mut Mailbox, seed: &EventSeed, now: Timestamp) {
        let mut event = Event::blank(now);
        let zone_name = |iana: &str| wire::windows_name(iana).unwrap_or(iana).to_string();
        match &seed.when {
            When::Timed {
                start,
                end,
                time_zone,
            } => {
                event.span = Span::Timed {
                    start: *start,
                    end: *end,
                };
                event.start_zone = zone_name(time_zone);
            }
            When::AllDay { start, end } => {
                event.span = Span::AllDay {
                    start: *start,
                    end: *end,
                };
                event.start_zone = zone_name(&mailbox.user.time_zone);
            }
        }
        event.end_zone = event.start_zone.clone();
        event.subject = seed.subject.clone();
        event.body = ItemBody::text(&seed.body);
        if !seed.location.is_empty() {
            let mut location = Map::new();
            location.insert("displayName".into(), json!(seed.location));
            event.location = Some(location);
        }
        let member = |list: &[&'static str], v: &str, default| {
            list.iter()
                .find(|m| m.eq_ignore_ascii_case(v))
                .copied()
                .unwrap_or(default)
        };
        event.sensitivity = member(SENSITIVITY, &seed.sensitivity, "normal");
        event.show_as = member(SHOW_AS, &seed.show_as, "busy");
        event.is_reminder_on = seed.reminder_minutes.is_some();
        event.reminder_minutes = seed.reminder_minutes.map(i64::from).unwrap_or(15);
        event.categories = seed.categories.clone();
        event.commit_new(mailbox, now);
    }

    /// Gives a new event its id and first change, and stores it.
    fn commit_new(mut self, mailbox: &mut Mailbox, now: Timestamp) -> Event {
        self.id = mailbox.new_id(IdKind::Event);
        self.ical_uid = tokens::ical_uid(&mut mailbox.rng);
        self.created = now;
        let seq = mailbox.next_seq();
        self.modified = now;
        self.change_key = mailbox.change_key(seq);
        if let Some(tx) = &self.transaction_id {
            mailbox.transactions.insert(tx.clone(), self.id.clone());
        }
        mailbox.events.put(self.clone(), seq);
        self.seq = seq;
        self
    }

    /// Creates an event from a POST body. A `transactionId` already used by a live event of
    /// the mailbox creates nothing: that event is the answer (`false`: not created).
    pub fn create(
        mailbox: &mut Mailbox,
        body: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<(Event, bool), GraphError> {
        let obj = Obj::new(body, "event");
        obj.known(&[WRITABLE, READ_ONLY].concat())?;
        if let Some(tx) = obj.string("transactionId")?
            && let Some(existing) = mailbox
                .transactions
                .get(&tx)
                .and_then(|id| mailbox.events.get(id))
        {
            return Ok((existing.clone(), false));
        }
        let mut event = Event::blank(now);
        event.transaction_id = obj.string("transactionId")?.filter(|t| !t.is_empty());
        if !obj.has("start") || !obj.has("end") {
            return Err(validation("An event needs a start and an end."));
        }
        event.apply(&obj)?;
        Ok((event.commit_new(mailbox, now), true))
    }

    /// Applies a PATCH body and stores the new version.
    pub fn update(
        mailbox: &mut Mailbox,
        id: &str,
        body: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<Event, GraphError> {
        let obj = Obj::new(body, "event");
        obj.known(&[WRITABLE, READ_ONLY].concat())?;
        let mut event = mailbox
            .events
            .get(id)
            .cloned()
            .ok_or_else(GraphError::item_not_found)?;
        if obj.has("transactionId") && obj.string("transactionId")? != event.transaction_id {
            return Err(GraphError::bad_request(
                "ErrorInvalidRequest",
                "The transactionId of an event cannot be changed after the event is created.",
            ));
        }
        let before = event.shape();
        event.apply(&obj)?;
        let seq = mailbox.next_seq();
        event.modified = now;
        event.change_key = mailbox.change_key(seq);
        if let (Some(before), Some(series)) = (before, event.series.as_mut()) {
            Arc::make_mut(series).remember(seq, before);
        }
        mailbox.events.put(event.clone(), seq);
        event.seq = seq;
        Ok(event)
    }

    /// Applies a PATCH body to an occurrence or exception of a series.
    pub(super) fn apply_instance(&mut self, obj: &Obj<'_>) -> Result<(), GraphError> {
        obj.known(&[WRITABLE, READ_ONLY].concat())?;
        self.apply(obj)
    }

    /// Deletes an event (leaving a tombstone for delta).
    pub fn delete(mailbox: &mut Mailbox, id: &str) -> Result<(), GraphError> {
        let seq = mailbox.next_seq();
        let event = mailbox
            .events
            .remove(id, seq)
            .ok_or_else(GraphError::item_not_found)?;
        if let Some(tx) = &event.transaction_id {
            mailbox.transactions.remove(tx);
        }
        // Delta reports a deleted series' instances as removed, from its last shapes.
        if let (Some(shape), Some(series)) = (event.shape(), event.series) {
            let mut shapes = series.earlier.clone();
            shapes.push_back((seq, shape));
            mailbox.remember_removed_series(id, shapes);
        }
        Ok(())
    }

    fn apply(&mut self, obj: &Obj<'_>) -> Result<(), GraphError> {
        for unsupported in ["multiValueExtendedProperties", "extensions", "attachments"] {
            if obj.array(unsupported)?.is_some_and(|a| !a.is_empty()) {
                return Err(GraphError::new(
                    axum::http::StatusCode::NOT_IMPLEMENTED,
                    "notSupported",
                    format!("The sandbox does not emulate '{unsupported}' on events."),
                ));
            }
        }
        if let Some(s) = obj
            .string("subject")?
            .or_else(|| obj.has("subject").then(String::new))
        {
            self.subject = s;
        }
        if let Some(body) = obj.object("body", "itemBody")? {
            self.body = ItemBody::parse(&body)?;
        }
        if let Some(v) = obj.member("importance", IMPORTANCE)? {
            self.importance = v;
        }
        if let Some(v) = obj.member("sensitivity", SENSITIVITY)? {
            self.sensitivity = v;
        }
        if let Some(v) = obj.member("showAs", SHOW_AS)? {
            self.show_as = v;
        }
        if let Some(v) = obj.member("onlineMeetingProvider", MEETING_PROVIDERS)? {
            self.online_meeting_provider = v;
        }
        if let Some(v) = obj.boolean("isReminderOn")? {
            self.is_reminder_on = v;
        }
        if let Some(v) = obj.int("reminderMinutesBeforeStart", 0, 1_000_000)? {
            self.reminder_minutes = v;
        }
        if let Some(v) = obj.boolean("responseRequested")? {
            self.response_requested = v;
        }
        if let Some(v) = obj.boolean("allowNewTimeProposals")? {
            self.allow_new_time_proposals = v;
        }
        if let Some(v) = obj.boolean("hideAttendees")? {
            self.hide_attendees = v;
        }
        if let Some(v) = obj.boolean("isOnlineMeeting")? {
            self.is_online_meeting = v;
        }
        if let Some(v) = obj.strings("categories")? {
            self.categories = v;
        }
        if let Some(attendees) = obj.objects("attendees", "attendee")? {
            self.attendees = attendees
                .iter()
                .map(parse_attendee)
                .collect::<Result<_, _>>()?;
        }
        if obj.has("location") {
            self.location = match obj.object("location", "location")? {
                Some(location) => parse_location(&location)?,
                None => None,
            };
        } else if let Some(locations) = obj.objects("locations", "location")? {
            // Outlook keeps location and locations in step; the first one is the location.
            self.location = match locations.first() {
                Some(first) => parse_location(first)?,
                None => None,
            };
        }
        extprops::apply(&mut self.extended, obj)?;
        self.apply_times(obj)?;
        self.apply_recurrence(obj.get("recurrence"))
    }

    /// The start (or end) as a `dateTimeTimeZone` in the zone it was given in.
    fn bound(&self, end: bool) -> DtTz {
        let name = if end {
            &self.end_zone
        } else {
            &self.start_zone
        };
        let zone = wire::zone(name).unwrap_or_else(Zone::utc);
        match self.span {
            Span::Timed { start, end: e } => {
                let instant = if end { e } else { start };
                DtTz {
                    civil: zone.tz.to_datetime(instant),
                    zone,
                    instant,
                }
            }
            Span::AllDay { start, end: e } => {
                let civil = midnight(if end { e } else { start });
                let instant = civil
                    .to_zoned(zone.tz.clone())
                    .map(|z| z.timestamp())
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                DtTz {
                    civil,
                    zone,
                    instant,
                }
            }
        }
    }

    fn apply_times(&mut self, obj: &Obj<'_>) -> Result<(), GraphError> {
        let all_day = obj
            .boolean("isAllDay")?
            .unwrap_or(matches!(self.span, Span::AllDay { .. }));
        let start = match obj.get("start") {
            Some(v) => wire::parse_dttz(v, "start")?,
            None => self.bound(false),
        };
        let end = match obj.get("end") {
            Some(v) => wire::parse_dttz(v, "end")?,
            None => self.bound(true),
        };
        if all_day {
            let at_midnight = |d: &DtTz| d.civil.time() == Time::midnight();
            if !at_midnight(&start) || !at_midnight(&end) {
                return Err(validation(
                    "If isAllDay is true, start and end must be set to midnight.",
                ));
            }
            if !start.zone.name.eq_ignore_ascii_case(&end.zone.name) {
                return Err(validation(
                    "If isAllDay is true, start and end must be in the same time zone.",
                ));
            }
            if end.civil.date() <= start.civil.date() {
                return Err(validation("An all-day event must end after it starts."));
            }
            self.span = Span::AllDay {
                start: start.civil.date(),
                end: end.civil.date(),
            };
        } else {
            if end.instant < start.instant {
                return Err(GraphError::bad_request(
                    "ErrorCalendarEndDateIsEarlierThanStartDate",
                    "The end date occurs before the start date.",
                ));
            }
            self.span = Span::Timed {
                start: start.instant,
                end: end.instant,
            };
        }
        self.start_zone = start.zone.name;
        self.end_zone = end.zone.name;
        Ok(())
    }

    /// The time the event covers, for calendarView windows (all-day days from UTC midnight).
    pub fn view_span(&self) -> (Timestamp, Timestamp) {
        self.span.view()
    }

    /// Whether the event shows in a calendarView of `[start, end)` (a single instance; a
    /// series shows through its instances).
    pub fn in_window(&self, start: Timestamp, end: Timestamp) -> bool {
        self.span.in_window(start, end)
    }
}

fn parse_attendee(obj: &Obj<'_>) -> Result<Attendee, GraphError> {
    obj.known(&["emailAddress", "type", "status", "proposedNewTime"])?;
    let email = obj.object("emailAddress", "emailAddress")?;
    let (name, address) = match email {
        Some(e) => {
            e.known(&["name", "address"])?;
            (e.string("name")?, e.string("address")?.unwrap_or_default())
        }
        None => (None, String::new()),
    };
    if address.trim().is_empty() {
        return Err(validation("An attendee needs an e-mail address."));
    }
    Ok(Attendee {
        name: name.unwrap_or_else(|| address.clone()),
        address,
        kind: obj.member("type", ATTENDEE_TYPES)?.unwrap_or("required"),
    })
}

fn parse_location(obj: &Obj<'_>) -> Result<Option<Map<String, Value>>, GraphError> {
    obj.known(&[
        "displayName",
        "locationType",
        "uniqueId",
        "uniqueIdType",
        "address",
        "coordinates",
        "locationEmailAddress",
        "locationUri",
    ])?;
    let mut out = Map::new();
    for key in [
        "displayName",
        "locationType",
        "uniqueId",
        "uniqueIdType",
        "locationEmailAddress",
        "locationUri",
    ] {
        if let Some(v) = obj.string(key)? {
            out.insert(key.into(), json!(v));
        }
    }
    if let Some(address) = obj.object("address", "physicalAddress")? {
        out.insert("address".into(), physical_address(&address)?);
    }
    if let Some(c) = obj.object("coordinates", "outlookGeoCoordinates")? {
        c.known(&[
            "latitude",
            "longitude",
            "accuracy",
            "altitude",
            "altitudeAccuracy",
        ])?;
        let mut coordinates = Map::new();
        for key in [
            "latitude",
            "longitude",
            "accuracy",
            "altitude",
            "altitudeAccuracy",
        ] {
            match c.get(key) {
                None | Some(Value::Null) => {}
                Some(v @ Value::Number(_)) => {
                    coordinates.insert(key.into(), v.clone());
                }
                Some(_) => {
                    return Err(GraphError::body_read(format!(
                        "Cannot convert the value of '{key}' to the expected type 'Edm.Double'."
                    )));
                }
            }
        }
        out.insert("coordinates".into(), Value::Object(coordinates));
    }
    let empty = out
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    Ok((!empty).then_some(out))
}
