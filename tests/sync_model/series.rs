//! Recurring series in the model: a user makes a weekly series (Europe/Oslo, so that cases
//! cross daylight-saving changes) on either side, moves, retitles or cancels single
//! occurrences on either side, and changes how many occurrences the series has. The oracle:
//! each series is once on each side (never copied occurrence by occurrence), both sides hold
//! the same occurrences, and each occurrence ends in a state a user gave it (the last one when
//! only one side touched it), or unchanged when nobody did.

use std::collections::BTreeMap;
use std::fmt;

use crmsync::connector::model::{Item, Series, When, Window};
use crmsync::sandbox::superoffice::{AppointmentChange, SeriesEnd, UserSeries};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use super::model::Side;
use super::ops::Tally;
use super::world::World;

pub const ZONE: &str = "Europe/Oslo";

fn oslo() -> TimeZone {
    TimeZone::get(ZONE).expect("Europe/Oslo is in the database")
}

/// A new weekly series: its first day (from the case's first day), local hour, and how many
/// occurrences (`None`: no end).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SeriesSlot {
    pub day: i16,
    pub hour: u8,
    pub count: Option<u8>,
}

impl fmt::Debug for SeriesSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "weekly from day {:+} {}:00 Oslo, ", self.day, self.hour)?;
        match self.count {
            Some(n) => write!(f, "{n} times"),
            None => write!(f, "no end"),
        }
    }
}

/// What a user does to one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccurrenceEdit {
    /// Later the same day by this many hours, with a new title.
    Move(u8),
    /// Deleted alone.
    Cancel,
}

pub fn series_slot() -> impl Strategy<Value = SeriesSlot> {
    (
        -10i16..40,
        7u8..16,
        prop_oneof![Just(None), (2u8..9).prop_map(Some)],
    )
        .prop_map(|(day, hour, count)| SeriesSlot { day, hour, count })
}

pub fn occurrence_edit() -> impl Strategy<Value = OccurrenceEdit> {
    prop_oneof![
        2 => (1u8..4).prop_map(OccurrenceEdit::Move),
        1 => Just(OccurrenceEdit::Cancel),
    ]
}

/// The state of one occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occ {
    Plain,
    Moved { title: String, start: Timestamp },
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct SeriesLogical {
    pub key: String,
    pub first: Timestamp,
    pub count: Option<u32>,
    /// Per occurrence number, what users did to it, in order.
    pub edits: BTreeMap<u32, Vec<(Side, Occ)>>,
    revision: u32,
}

impl SeriesLogical {
    /// Where the pattern puts occurrence `k`: the first one's local time, `k` weeks on.
    pub fn original_start(&self, k: u32) -> Timestamp {
        let local = self.first.to_zoned(oslo());
        local
            .checked_add((i64::from(k) * 7).days())
            .expect("a date")
            .timestamp()
    }

    fn occurrences(&self) -> u32 {
        self.count.unwrap_or(12)
    }

    /// Which states occurrence `k` may end in.
    fn allowed(&self, k: u32) -> Vec<Occ> {
        match self.edits.get(&k) {
            None => vec![Occ::Plain],
            Some(edits) => {
                let one_side = edits.iter().all(|(s, _)| *s == edits[0].0);
                if one_side {
                    edits
                        .last()
                        .map(|(_, o)| vec![o.clone()])
                        .unwrap_or_default()
                } else {
                    edits.iter().map(|(_, o)| o.clone()).collect()
                }
            }
        }
    }
}

fn weekday_name(t: Timestamp) -> &'static str {
    match t.to_zoned(oslo()).weekday() {
        jiff::civil::Weekday::Monday => "monday",
        jiff::civil::Weekday::Tuesday => "tuesday",
        jiff::civil::Weekday::Wednesday => "wednesday",
        jiff::civil::Weekday::Thursday => "thursday",
        jiff::civil::Weekday::Friday => "friday",
        jiff::civil::Weekday::Saturday => "saturday",
        jiff::civil::Weekday::Sunday => "sunday",
    }
}

fn local(t: Timestamp) -> String {
    t.to_zoned(oslo())
        .datetime()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn graph_range(first: Timestamp, count: Option<u32>) -> Value {
    let start = first.to_zoned(oslo()).date().to_string();
    match count {
        Some(n) => json!({"type": "numbered", "numberOfOccurrences": n, "startDate": start,
                          "recurrenceTimeZone": ZONE}),
        None => json!({"type": "noEnd", "startDate": start, "recurrenceTimeZone": ZONE}),
    }
}

impl World {
    fn master_of(&self, key: &str) -> Option<String> {
        let dump = self
            .sandbox
            .state()
            .graph
            .mailbox_state(&self.mailbox_id())?;
        dump["calendar"]["events"]
            .as_array()?
            .iter()
            .find(|e| {
                e["type"] == "seriesMaster"
                    && e["subject"].as_str().is_some_and(|s| s.starts_with(key))
            })
            .and_then(|e| e["id"].as_str())
            .map(str::to_string)
    }

    fn crm_rows_of_series(&self, key: &str) -> Vec<crmsync::sandbox::superoffice::Appointment> {
        let state = self.sandbox.state();
        let Some(any) = state
            .superoffice
            .appointments()
            .into_iter()
            .find(|a| a.occurrence.is_some() && a.data.title.starts_with(key))
        else {
            return Vec::new();
        };
        state.superoffice.series_rows(any.id).unwrap_or_default()
    }

    pub fn user_create_series(&self, side: Side, series: &SeriesLogical) {
        let now = self.now();
        let state = self.sandbox.state();
        let end = series.first + SignedDuration::from_hours(1);
        let title = format!("{} r0", series.key);
        match side {
            Side::Mailbox => {
                let body = json!({
                    "subject": title,
                    "start": {"dateTime": local(series.first), "timeZone": ZONE},
                    "end": {"dateTime": local(end), "timeZone": ZONE},
                    "recurrence": {
                        "pattern": {"type": "weekly", "interval": 1,
                                    "daysOfWeek": [weekday_name(series.first)],
                                    "firstDayOfWeek": "sunday"},
                        "range": graph_range(series.first, series.count),
                    },
                });
                state
                    .graph
                    .user_create_event(now, &self.mailbox_id(), &body)
                    .expect("the user's new Outlook series");
            }
            Side::Crm => {
                let mut recurrence = json!({"IsRecurrence": true, "Pattern": "Weekly",
                    "WeekPattern": {"Weekdays": weekday_name(series.first), "Cycle": 1}});
                if let Some(n) = series.count {
                    recurrence["RecurrenceEndType"] = json!("Counter");
                    recurrence["RecurrenceCounter"] = json!(n);
                }
                let new: UserSeries = serde_json::from_value(json!({
                    "appointment": {
                        "associate_id": self.user.associate_id,
                        "title": title,
                        "when": {"kind": "timed", "start": series.first.to_string(),
                                 "end": end.to_string(), "time_zone": ZONE},
                    },
                    "recurrence": recurrence,
                    "zone_id": 0,
                }))
                .expect("a user series");
                state
                    .superoffice
                    .user_create_series(new, now)
                    .expect("the user's new CRM series");
            }
        }
    }

    /// The user edits occurrence `k` of `series` on `side`; `false` if it is not there (the
    /// series is not on that side yet, or the occurrence was cancelled or left the series).
    fn user_edit_occurrence(&self, side: Side, series: &SeriesLogical, k: u32, edit: &Occ) -> bool {
        let now = self.now();
        let state = self.sandbox.state();
        let original = series.original_start(k);
        match side {
            Side::Mailbox => {
                let Some(master) = self.master_of(&series.key) else {
                    return false;
                };
                let window = self.window();
                let path = format!(
                    "/users/{}/events/{master}/instances?startDateTime={}&endDateTime={}",
                    self.mailbox_id(),
                    window.start,
                    window.end
                );
                let Ok(Some(page)) = state.graph.act(now, reqwest::Method::GET, &path, None) else {
                    return false;
                };
                let id = page["value"].as_array().and_then(|all| {
                    all.iter().find_map(|i| {
                        let at = i["originalStart"]
                            .as_str()
                            .and_then(|t| t.parse::<Timestamp>().ok())?;
                        // By date: the series' time may have moved (`occ_in`).
                        (at.to_zoned(oslo()).date() == original.to_zoned(oslo()).date())
                            .then(|| i["id"].as_str().map(str::to_string))?
                    })
                });
                let Some(id) = id else {
                    return false;
                };
                match edit {
                    Occ::Moved { title, start } => {
                        let end = *start + SignedDuration::from_hours(1);
                        let patch = json!({
                            "subject": title,
                            "start": {"dateTime": local(*start), "timeZone": ZONE},
                            "end": {"dateTime": local(end), "timeZone": ZONE},
                        });
                        state
                            .graph
                            .user_update_event(now, &self.mailbox_id(), &id, &patch)
                            .expect("the user's Outlook occurrence edit");
                    }
                    Occ::Cancelled => state
                        .graph
                        .user_delete_event(now, &self.mailbox_id(), &id)
                        .expect("the user's Outlook occurrence delete"),
                    Occ::Plain => return false,
                }
            }
            Side::Crm => {
                let date = original.to_zoned(oslo()).date();
                let Some(row) = self
                    .crm_rows_of_series(&series.key)
                    .into_iter()
                    .find(|r| r.occurrence.is_some_and(|o| o.original_date == date))
                else {
                    return false;
                };
                match edit {
                    Occ::Moved { title, start } => {
                        let change = AppointmentChange {
                            title: Some(title.clone()),
                            when: Some(crmsync::sandbox::scenario::When::Timed {
                                start: *start,
                                end: *start + SignedDuration::from_hours(1),
                                time_zone: ZONE.into(),
                            }),
                            ..AppointmentChange::default()
                        };
                        state
                            .superoffice
                            .user_update_appointment(row.id, change, now)
                            .expect("the user's CRM occurrence edit");
                    }
                    Occ::Cancelled => state
                        .superoffice
                        .user_delete_appointment(row.id, now)
                        .expect("the user's CRM occurrence delete"),
                    Occ::Plain => return false,
                }
            }
        }
        true
    }

    /// The user gives the series `count` occurrences on `side`; `false` if it is not there.
    fn user_end_series(&self, side: Side, series: &SeriesLogical, count: u32) -> bool {
        let now = self.now();
        let state = self.sandbox.state();
        match side {
            Side::Mailbox => {
                let Some(master) = self.master_of(&series.key) else {
                    return false;
                };
                let patch = json!({"recurrence": {
                    "pattern": {"type": "weekly", "interval": 1,
                                "daysOfWeek": [weekday_name(series.first)],
                                "firstDayOfWeek": "sunday"},
                    "range": graph_range(series.first, Some(count)),
                }});
                state
                    .graph
                    .user_update_event(now, &self.mailbox_id(), &master, &patch)
                    .is_ok()
            }
            Side::Crm => match self.crm_rows_of_series(&series.key).first() {
                Some(row) => state
                    .superoffice
                    .user_set_series_end(row.id, SeriesEnd::Count(count), now)
                    .is_ok(),
                None => false,
            },
        }
    }

    pub fn create_series(
        &self,
        series_list: &mut Vec<SeriesLogical>,
        side: Side,
        slot: SeriesSlot,
        first_day: jiff::civil::Date,
        tally: &mut Tally,
    ) {
        let day = first_day
            .checked_add(i64::from(slot.day).days())
            .expect("a date");
        let first = day
            .at(slot.hour as i8, 0, 0, 0)
            .to_zoned(oslo())
            .expect("an Oslo time")
            .timestamp();
        let series = SeriesLogical {
            key: format!("Series-{}", series_list.len()),
            first,
            count: slot.count.map(u32::from),
            edits: BTreeMap::new(),
            revision: 0,
        };
        self.user_create_series(side, &series);
        series_list.push(series);
        tally.edits += 1;
        tally.series_edits += 1;
        self.tick();
    }

    pub fn edit_occurrence(
        &self,
        series_list: &mut [SeriesLogical],
        side: Side,
        index: &Index,
        k: u8,
        edit: OccurrenceEdit,
        tally: &mut Tally,
    ) {
        if series_list.is_empty() {
            return;
        }
        let series = &mut series_list[index.index(series_list.len())];
        let k = u32::from(k) % series.occurrences();
        let state = match edit {
            OccurrenceEdit::Move(hours) => Occ::Moved {
                title: format!("{} k{k} r{}", series.key, series.revision + 1),
                start: series.original_start(k) + SignedDuration::from_hours(i64::from(hours)),
            },
            OccurrenceEdit::Cancel => Occ::Cancelled,
        };
        if self.user_edit_occurrence(side, series, k, &state) {
            series.revision += 1;
            series.edits.entry(k).or_default().push((side, state));
            tally.edits += 1;
            tally.series_edits += 1;
        } else {
            tally.skipped += 1;
        }
        self.tick();
    }

    pub fn end_series(
        &self,
        series_list: &mut [SeriesLogical],
        side: Side,
        index: &Index,
        count: u8,
        tally: &mut Tally,
    ) {
        if series_list.is_empty() {
            return;
        }
        let series = &mut series_list[index.index(series_list.len())];
        let count = u32::from(count);
        if self.user_end_series(side, series, count) {
            series.count = Some(count);
            // Occurrences past the new end are gone with whatever was done to them.
            series.edits.retain(|k, _| *k < count);
            tally.edits += 1;
            tally.series_edits += 1;
        } else {
            tally.skipped += 1;
        }
        self.tick();
    }
}

fn series_of(item: &Item) -> Option<(&str, &When, &Series)> {
    match item {
        Item::Diary(d) => d
            .series
            .as_deref()
            .map(|s| (d.subject.as_str(), &d.when, s)),
        _ => None,
    }
}

/// The state of occurrence `k` of `logical` in a series as a side holds it (`subject`, first
/// occurrence `first`), by where the occurrence is and what it is called, not by how the side
/// represents it: when every row of a SuperOffice series was edited alone, one edit is read as
/// the series itself and its occurrence is plain there, yet it is where its user put it.
fn occ_in(logical: &SeriesLogical, subject: &str, first: &When, series: &Series, k: u32) -> Occ {
    let When::Timed { start: first, .. } = first else {
        return Occ::Plain;
    };
    let Ok(at) = first
        .to_zoned(oslo())
        .checked_add((i64::from(k) * 7).days())
        .map(|z| z.timestamp())
    else {
        return Occ::Plain;
    };
    if series.cancelled.contains(&at) {
        return Occ::Cancelled;
    }
    let (title, start) = match series.exceptions.get(&at) {
        Some(e) => (
            e.subject.clone(),
            match e.when {
                When::Timed { start, .. } => start,
                When::AllDay { .. } => at,
            },
        ),
        None => (subject.to_string(), at),
    };
    if title == format!("{} r0", logical.key) && start == logical.original_start(k) {
        Occ::Plain
    } else {
        Occ::Moved { title, start }
    }
}

/// The series properties, for every series of the model, on what each side holds.
pub fn check(
    series_list: &[SeriesLogical],
    crm: &[&Item],
    mailbox: &[&Item],
    window: &Window,
    problems: &mut Vec<String>,
) {
    for series in series_list {
        let found = |items: &[&Item]| -> Vec<(String, When, Series)> {
            items
                .iter()
                .filter_map(|i| series_of(i))
                .filter(|(subject, _, _)| subject.split(' ').next() == Some(series.key.as_str()))
                .map(|(subject, when, s)| (subject.to_string(), when.clone(), s.clone()))
                .collect()
        };
        let singles = |items: &[&Item]| {
            items
                .iter()
                .filter(|i| {
                    matches!(i, Item::Diary(d) if d.series.is_none()
                        && d.subject.split(' ').next() == Some(series.key.as_str()))
                })
                .count()
        };
        for (side, items) in [("CRM", crm), ("mailbox", mailbox)] {
            let held = found(items);
            if held.len() != 1 {
                problems.push(format!(
                    "{} is {} times in the {side} as a series",
                    series.key,
                    held.len()
                ));
                continue;
            }
            if singles(items) > 0 {
                problems.push(format!(
                    "{}: occurrences in the {side} as single items",
                    series.key
                ));
            }
            for k in 0..series.occurrences() {
                let at = series.original_start(k);
                if at < window.start || at >= window.end {
                    continue;
                }
                let (subject, first, held) = &held[0];
                let state = occ_in(series, subject, first, held, k);
                let allowed = series.allowed(k);
                if !allowed.contains(&state) {
                    problems.push(format!(
                        "{} occurrence {k} ({at}) in the {side} is {state:?}; the users made it one of {allowed:?}",
                        series.key
                    ));
                }
            }
        }
    }
}
