//! Recurring series: a stored `seriesMaster` event carries its recurrence, its exceptions
//! (occurrences changed on their own, keyed by their original start) and its cancelled
//! occurrences. Occurrences are not stored: they are computed for the window asked for, with
//! ids made from the master's id and the original start, so an occurrence has the same id in
//! every answer and becomes an exception under that id.
//!
//! Every change to a series (the master, an exception, a cancellation) is a change of the
//! master, which delta reports as the series' instances in the window. So that a delta round
//! can also report the instances a change took away, the master keeps its earlier shapes,
//! each with the change that replaced it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::{Map, Value};

use super::error::GraphError;
use super::events::{Event, Span};
use super::recurrence::Recur;
use super::store::Mailbox;
use super::tokens;
use super::wire::{self, Obj};

/// Earlier shapes a master keeps; a delta round older than all of them may miss removals.
const MAX_EARLIER: usize = 64;

fn validation(detail: &str) -> GraphError {
    GraphError::bad_request(
        "ErrorPropertyValidationFailure",
        format!("At least one property failed validation. {detail}"),
    )
}

/// What decides which instances a series has, and where.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The master's span: the first occurrence's.
    pub span: Span,
    pub recur: Recur,
    pub cancelled: BTreeSet<Timestamp>,
    /// Exceptions' spans by original start.
    pub moved: BTreeMap<Timestamp, Span>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub recur: Recur,
    /// Occurrences changed on their own, by original start (`id` is the occurrence's).
    pub exceptions: BTreeMap<Timestamp, Event>,
    pub cancelled: BTreeSet<Timestamp>,
    /// Earlier shapes, each with the sequence number of the change that replaced it.
    pub earlier: VecDeque<(u64, Shape)>,
}

/// One instance of a series in a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub original_start: Timestamp,
    pub span: Span,
    pub exception: bool,
}

/// An instance as answers show it: its event (the master's properties, or the exception's)
/// and what ties it to its series.
#[derive(Debug, Clone)]
pub struct Instance {
    pub event: Event,
    pub master_id: String,
    pub master_change_key: String,
    pub master_ical_uid: String,
    pub original_start: Timestamp,
    pub exception: bool,
}

impl Span {
    /// The time the span covers, for windows (all-day days from UTC midnight).
    pub fn view(&self) -> (Timestamp, Timestamp) {
        match *self {
            Span::Timed { start, end } => (start, end),
            Span::AllDay { start, end } => (utc_midnight(start), utc_midnight(end)),
        }
    }

    /// Whether the span shows in a view of `[start, end)`.
    pub fn in_window(&self, start: Timestamp, end: Timestamp) -> bool {
        let (s, e) = self.view();
        s < end && (e > start || (s == e && s >= start))
    }
}

fn utc_midnight(date: Date) -> Timestamp {
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Shape {
    /// The pattern's occurrences (cancelled and moved ones too) that may touch the window,
    /// each at the master's wall time on its date in the recurrence's zone.
    fn pattern_slots(&self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Span)> {
        match self.span {
            Span::Timed { start, end } => {
                let tz = &self.recur.zone.tz;
                let time = tz.to_datetime(start).time();
                let length = end.duration_since(start);
                let first = tz
                    .to_datetime(from.checked_sub(length).unwrap_or(from))
                    .date()
                    .yesterday()
                    .unwrap_or(Date::MIN);
                let last = tz.to_datetime(to).date().tomorrow().unwrap_or(Date::MAX);
                self.recur
                    .dates(first, last)
                    .into_iter()
                    .filter_map(|d| {
                        let s = d.to_datetime(time).to_zoned(tz.clone()).ok()?.timestamp();
                        let e = s.checked_add(length).ok()?;
                        Some((s, Span::Timed { start: s, end: e }))
                    })
                    .collect()
            }
            Span::AllDay { start, end } => {
                let days = start.until(end).map(|s| s.get_days()).unwrap_or(1);
                let utc = jiff::tz::TimeZone::UTC;
                let back = from
                    .checked_sub(SignedDuration::from_hours(24 * i64::from(days)))
                    .unwrap_or(from);
                let first = utc
                    .to_datetime(back)
                    .date()
                    .yesterday()
                    .unwrap_or(Date::MIN);
                let last = utc.to_datetime(to).date().tomorrow().unwrap_or(Date::MAX);
                self.recur
                    .dates(first, last)
                    .into_iter()
                    .filter_map(|d| {
                        let e = d.checked_add(days.days()).ok()?;
                        Some((utc_midnight(d), Span::AllDay { start: d, end: e }))
                    })
                    .collect()
            }
        }
    }

    /// The live instances in `[from, to)`, by start.
    pub fn slots(&self, from: Timestamp, to: Timestamp) -> Vec<Slot> {
        let mut out: Vec<Slot> = self
            .pattern_slots(from, to)
            .into_iter()
            .filter(|(key, span)| {
                !self.cancelled.contains(key)
                    && !self.moved.contains_key(key)
                    && span.in_window(from, to)
            })
            .map(|(original_start, span)| Slot {
                original_start,
                span,
                exception: false,
            })
            .collect();
        out.extend(
            self.moved
                .iter()
                .filter(|(_, span)| span.in_window(from, to))
                .map(|(key, span)| Slot {
                    original_start: *key,
                    span: *span,
                    exception: true,
                }),
        );
        out.sort_by_key(|s| (s.span.view().0, s.original_start));
        out
    }

    /// The pattern's occurrence that starts at `original_start`, if there is one.
    fn pattern_slot(&self, original_start: Timestamp) -> Option<Span> {
        let after = original_start
            .checked_add(SignedDuration::from_secs(1))
            .ok()?;
        self.pattern_slots(original_start, after)
            .into_iter()
            .find(|(key, _)| *key == original_start)
            .map(|(_, span)| span)
    }

    /// The live instance whose original start is `original_start`.
    pub fn slot_at(&self, original_start: Timestamp) -> Option<Slot> {
        if self.cancelled.contains(&original_start) {
            return None;
        }
        if let Some(span) = self.moved.get(&original_start) {
            return Some(Slot {
                original_start,
                span: *span,
                exception: true,
            });
        }
        self.pattern_slot(original_start).map(|span| Slot {
            original_start,
            span,
            exception: false,
        })
    }
}

impl Series {
    /// Remembers the shape a change (sequence number `seq`) replaced.
    pub fn remember(&mut self, seq: u64, before: Shape) {
        self.earlier.push_back((seq, before));
        while self.earlier.len() > MAX_EARLIER {
            self.earlier.pop_front();
        }
    }
}

/// Original starts of instances that shapes replaced after `since` had in the window and
/// `now` (the current instances' original starts) lacks.
pub fn gone_since(
    earlier: &VecDeque<(u64, Shape)>,
    since: u64,
    from: Timestamp,
    to: Timestamp,
    now: &BTreeSet<Timestamp>,
) -> BTreeSet<Timestamp> {
    earlier
        .iter()
        .filter(|(replaced, _)| *replaced > since)
        .flat_map(|(_, shape)| shape.slots(from, to))
        .map(|slot| slot.original_start)
        .filter(|key| !now.contains(key))
        .collect()
}

impl Event {
    /// The series' current shape (`None` for a single instance).
    pub fn shape(&self) -> Option<Shape> {
        let series = self.series.as_ref()?;
        Some(Shape {
            span: self.span,
            recur: series.recur.clone(),
            cancelled: series.cancelled.clone(),
            moved: series
                .exceptions
                .iter()
                .map(|(key, e)| (*key, e.span))
                .collect(),
        })
    }

    /// This master's instance at `slot`.
    pub fn instance(&self, slot: &Slot) -> Instance {
        let stored = slot
            .exception
            .then(|| {
                self.series
                    .as_ref()
                    .and_then(|s| s.exceptions.get(&slot.original_start))
            })
            .flatten();
        let event = match stored {
            Some(exception) => exception.clone(),
            None => self.occurrence_event(slot),
        };
        Instance {
            event,
            master_id: self.id.clone(),
            master_change_key: self.change_key.clone(),
            master_ical_uid: self.ical_uid.clone(),
            original_start: slot.original_start,
            exception: slot.exception,
        }
    }

    /// An occurrence as an event of its own: the master's properties at the slot's time.
    fn occurrence_event(&self, slot: &Slot) -> Event {
        let mut event = Event {
            series: None,
            transaction_id: None,
            ..self.clone()
        };
        event.id = tokens::occurrence_id(&self.id, slot.original_start);
        event.span = slot.span;
        event
    }

    /// The instances of this master in `[from, to)`, by start.
    pub fn instances(&self, from: Timestamp, to: Timestamp) -> Vec<Instance> {
        self.shape()
            .map(|shape| shape.slots(from, to))
            .unwrap_or_default()
            .iter()
            .map(|slot| self.instance(slot))
            .collect()
    }

    /// Applies a `recurrence` property (after the times, which it is checked against).
    pub(super) fn apply_recurrence(&mut self, value: Option<&Value>) -> Result<(), GraphError> {
        let recur = match value {
            None => match &self.series {
                // New times for a series: the same pattern, from the new start's date.
                Some(series) => {
                    let mut recur = series.recur.clone();
                    recur.start = match self.span {
                        Span::Timed { start, .. } => recur.zone.tz.to_datetime(start).date(),
                        Span::AllDay { start, .. } => start,
                    };
                    recur
                }
                None => return Ok(()),
            },
            Some(Value::Null) if self.series.is_none() => return Ok(()),
            Some(Value::Null) => {
                return Err(GraphError::bad_request(
                    "ErrorInvalidRequest",
                    "A series master cannot be made a single event; delete the series instead.",
                ));
            }
            Some(Value::Object(map)) => {
                let zone = wire::zone(&self.start_zone).unwrap_or_else(wire::Zone::utc);
                Recur::parse(&Obj::new(map, "patternedRecurrence"), &zone)?
            }
            Some(other) => {
                return Err(GraphError::body_read(format!(
                    "Cannot convert a value of JSON type {} to 'microsoft.graph.patternedRecurrence'.",
                    wire::json_kind(other)
                )));
            }
        };
        let start_date = match self.span {
            Span::Timed { start, .. } => recur.zone.tz.to_datetime(start).date(),
            Span::AllDay { start, .. } => start,
        };
        if recur.start != start_date {
            return Err(validation(
                "The recurrence's startDate must be the date of the event's start.",
            ));
        }
        let mut series = self.series.as_deref().cloned().unwrap_or_else(|| Series {
            recur: recur.clone(),
            exceptions: BTreeMap::new(),
            cancelled: BTreeSet::new(),
            earlier: VecDeque::new(),
        });
        series.recur = recur;
        let mut shape = Shape {
            span: self.span,
            recur: series.recur.clone(),
            cancelled: BTreeSet::new(),
            moved: BTreeMap::new(),
        };
        // The master is the first occurrence (Outlook moves a start that is off the pattern).
        let horizon = shape
            .recur
            .start
            .checked_add(400.years())
            .unwrap_or(Date::MAX);
        let first = shape
            .recur
            .dates(shape.recur.start, horizon)
            .first()
            .copied()
            .ok_or_else(|| validation("The recurrence has no occurrences."))?;
        self.span = shift_to(self.span, &shape, first);
        shape.span = self.span;
        // Exceptions and cancellations stay only where the new pattern still has an occurrence.
        series
            .exceptions
            .retain(|key, _| shape.pattern_slot(*key).is_some());
        series
            .cancelled
            .retain(|key| shape.pattern_slot(*key).is_some());
        self.series = Some(Arc::new(series));
        Ok(())
    }
}

/// The span moved to `date` at the same wall time in the recurrence's zone.
fn shift_to(span: Span, shape: &Shape, date: Date) -> Span {
    match span {
        Span::Timed { start, end } => {
            let tz = &shape.recur.zone.tz;
            let time = tz.to_datetime(start).time();
            let moved = date
                .to_datetime(time)
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .unwrap_or(start);
            let end = moved.checked_add(end.duration_since(start)).unwrap_or(end);
            Span::Timed { start: moved, end }
        }
        Span::AllDay { start, end } => {
            let days = start.until(end).map(|s| s.get_days()).unwrap_or(1);
            Span::AllDay {
                start: date,
                end: date.checked_add(days.days()).unwrap_or(end),
            }
        }
    }
}

/// The master and original start an occurrence id names, when the master exists.
pub fn lookup<'a>(mb: &'a Mailbox, id: &str) -> Option<(&'a Event, Timestamp)> {
    let (master_id, original_start) = tokens::split_occurrence_id(id)?;
    let master = mb.events.get(&master_id)?;
    master.series.as_ref()?;
    Some((master, original_start))
}

/// Stores a changed master as a new change, remembering the shape it replaced.
fn commit(mb: &mut Mailbox, mut master: Event, before: Shape, now: Timestamp) -> Event {
    let seq = mb.next_seq();
    master.modified = now;
    master.change_key = mb.change_key(seq);
    if let Some(series) = master.series.as_mut() {
        Arc::make_mut(series).remember(seq, before);
    }
    mb.events.put(master.clone(), seq);
    master.seq = seq;
    master
}

/// PATCH of an occurrence or exception: the instance becomes (or stays) an exception.
pub fn update_instance(
    mb: &mut Mailbox,
    master_id: &str,
    original_start: Timestamp,
    body: &Map<String, Value>,
    now: Timestamp,
) -> Result<Instance, GraphError> {
    let mut master = mb
        .events
        .get(master_id)
        .cloned()
        .ok_or_else(GraphError::item_not_found)?;
    let before = master.shape().ok_or_else(GraphError::item_not_found)?;
    let slot = before
        .slot_at(original_start)
        .ok_or_else(GraphError::item_not_found)?;
    let obj = Obj::new(body, "event");
    if obj.get("recurrence").is_some_and(|r| !r.is_null()) {
        return Err(GraphError::bad_request(
            "ErrorInvalidRequest",
            "The recurrence of an occurrence cannot be set; update the series master.",
        ));
    }
    if obj.string("transactionId")?.is_some() {
        return Err(GraphError::bad_request(
            "ErrorInvalidRequest",
            "An occurrence has no transactionId of its own.",
        ));
    }
    let mut exception = master.instance(&slot).event;
    exception.apply_instance(&obj)?;
    if let Some(series) = master.series.as_mut() {
        Arc::make_mut(series)
            .exceptions
            .insert(original_start, exception);
    }
    let master = commit(mb, master, before, now);
    let slot = Slot {
        exception: true,
        ..slot
    };
    let mut instance = master.instance(&slot);
    if let Some(series) = &master.series
        && let Some(stored) = series.exceptions.get(&original_start)
    {
        instance.event = stored.clone();
    }
    Ok(instance)
}

/// DELETE of an occurrence or exception: the occurrence is cancelled.
pub fn delete_instance(
    mb: &mut Mailbox,
    master_id: &str,
    original_start: Timestamp,
    now: Timestamp,
) -> Result<(), GraphError> {
    let mut master = mb
        .events
        .get(master_id)
        .cloned()
        .ok_or_else(GraphError::item_not_found)?;
    let before = master.shape().ok_or_else(GraphError::item_not_found)?;
    before
        .slot_at(original_start)
        .ok_or_else(GraphError::item_not_found)?;
    if let Some(series) = master.series.as_mut() {
        let series = Arc::make_mut(series);
        series.exceptions.remove(&original_start);
        series.cancelled.insert(original_start);
    }
    commit(mb, master, before, now);
    Ok(())
}

impl Instance {
    /// The instance's JSON: the event's properties, with what makes it an instance.
    pub fn mark(&self, map: &mut Map<String, Value>) {
        let id = tokens::occurrence_id(&self.master_id, self.original_start);
        let date = jiff::tz::TimeZone::UTC
            .to_datetime(self.original_start)
            .date();
        // Instances carry their master's version (as `event-instances.json` shows).
        map.insert(
            "@odata.etag".into(),
            format!("W/\"{}\"", self.master_change_key).into(),
        );
        map.insert("changeKey".into(), self.master_change_key.clone().into());
        map.insert("id".into(), id.into());
        map.insert(
            "type".into(),
            if self.exception {
                "exception"
            } else {
                "occurrence"
            }
            .into(),
        );
        map.insert("seriesMasterId".into(), self.master_id.clone().into());
        map.insert("recurrence".into(), Value::Null);
        map.insert(
            "iCalUId".into(),
            tokens::occurrence_ical_uid(&self.master_ical_uid, date).into(),
        );
        map.insert(
            "originalStart".into(),
            wire::utc_secs(self.original_start).into(),
        );
        map.remove("transactionId");
    }
}
