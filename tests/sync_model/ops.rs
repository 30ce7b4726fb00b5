//! The operations a case is made of, how proptest generates them, and how each is carried out:
//! a user's edit through the emulators' user interfaces (recorded in the model), a pass (whole,
//! or cut off by a crash), or trouble (lost or rolled-back history, expired delta tokens,
//! faults for the next requests).

use std::fmt;

use crmsync::connector::model::When;
use crmsync::sandbox::scenario::When as SeedWhen;
use crmsync::sandbox::superoffice::{AppointmentChange, UserAppointment};
use crmsync::sandbox::{Emulator, FaultKind, FaultRule};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use super::model::{Content, Model, Side};
use super::series::{self, OccurrenceEdit, SeriesSlot};
use super::world::World;

/// When an item happens, relative to the day the case started (so that the few minutes the
/// clock moves during a case never move an item across the window's edge).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub all_day: bool,
    /// Days from the case's first day.
    pub day: i16,
    /// Start hour (timed) or 0.
    pub hour: u8,
    /// Hours (timed) or days (all-day).
    pub length: u8,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all_day {
            write!(f, "day {:+} for {}d", self.day, self.length)
        } else {
            write!(
                f,
                "day {:+} {}:00 for {}h",
                self.day, self.hour, self.length
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with a short `Retry-After`.
    Throttle,
    /// 503 without `Retry-After`.
    Unavailable,
    /// The connection closes before the answer is complete.
    Reset,
}

#[derive(Debug, Clone)]
pub enum Op {
    Create(Side, Slot),
    Update(Side, Index, Slot),
    Delete(Side, Index),
    /// The same item edited on both sides before the next pass (a conflict), the CRM first or not.
    BothUpdate(Index, bool, Slot, Slot),
    /// A new date outside the sync window (past or future).
    MoveOut(Side, Index, Slot),
    /// An item whose last edit left the window gets a date inside it again.
    MoveIn(Side, Index, Slot),
    /// A whole pass; `true`: with the CRM id safety net.
    Pass(bool),
    /// A pass that crashes after this many writes (0: before the first).
    CrashPass(u32),
    LoseHistory,
    SnapshotHistory,
    /// The history as of the last snapshot, as after a hard stop that lost recent writes.
    RollbackHistory,
    ExpireDeltaTokens,
    /// A fault for the next `n` requests to one service (both when `None`).
    Faults(Fault, u32, Option<Emulator>),
    /// A new weekly series.
    CreateSeries(Side, SeriesSlot),
    /// One occurrence (by number) of a series moved or cancelled.
    EditOccurrence(Side, Index, u8, OccurrenceEdit),
    /// A series given this many occurrences.
    EndSeries(Side, Index, u8),
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Crm), Just(Side::Mailbox)]
}

fn slot(days: impl Strategy<Value = i16>) -> impl Strategy<Value = Slot> {
    (any::<bool>(), days, 7u8..18, 1u8..3).prop_map(|(all_day, day, hour, length)| Slot {
        all_day,
        day,
        hour: if all_day { 0 } else { hour },
        length,
    })
}

/// Inside the window (30 days back, 120 ahead) with a margin.
fn inside() -> impl Strategy<Value = Slot> {
    slot(-20i16..100)
}

fn outside() -> impl Strategy<Value = Slot> {
    slot(prop_oneof![-80i16..-40, 135i16..200])
}

pub fn op() -> BoxedStrategy<Op> {
    let plain = plain_op();
    prop_oneof![
        14 => plain,
        2 => (side(), series::series_slot()).prop_map(|(s, w)| Op::CreateSeries(s, w)),
        3 => (side(), any::<Index>(), 0u8..12, series::occurrence_edit())
            .prop_map(|(s, i, k, e)| Op::EditOccurrence(s, i, k, e)),
        1 => (side(), any::<Index>(), 2u8..10).prop_map(|(s, i, n)| Op::EndSeries(s, i, n)),
    ]
    .boxed()
}

fn plain_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (side(), inside()).prop_map(|(s, w)| Op::Create(s, w)),
        4 => (side(), any::<Index>(), inside()).prop_map(|(s, i, w)| Op::Update(s, i, w)),
        2 => (side(), any::<Index>()).prop_map(|(s, i)| Op::Delete(s, i)),
        2 => (any::<Index>(), any::<bool>(), inside(), inside())
            .prop_map(|(i, c, a, b)| Op::BothUpdate(i, c, a, b)),
        1 => (side(), any::<Index>(), outside()).prop_map(|(s, i, w)| Op::MoveOut(s, i, w)),
        1 => (side(), any::<Index>(), inside()).prop_map(|(s, i, w)| Op::MoveIn(s, i, w)),
        4 => any::<bool>().prop_map(Op::Pass),
        3 => (0u32..6).prop_map(Op::CrashPass),
        1 => Just(Op::LoseHistory),
        1 => Just(Op::SnapshotHistory),
        1 => Just(Op::RollbackHistory),
        1 => Just(Op::ExpireDeltaTokens),
        2 => (
            prop_oneof![Just(Fault::Throttle), Just(Fault::Unavailable), Just(Fault::Reset)],
            1u32..7,
            prop_oneof![
                Just(None),
                Just(Some(Emulator::Graph)),
                Just(Some(Emulator::SuperOffice))
            ],
        )
            .prop_map(|(f, n, e)| Op::Faults(f, n, e)),
    ]
}

/// What the case saw happen, for the summary that shows the ops were not vacuous.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub edits: u64,
    /// Of those, series made and occurrences or ends of series changed.
    pub series_edits: u64,
    /// Edits of an item no longer on that side (deleted there, or never synced there).
    pub skipped: u64,
    pub passes_ok: u64,
    pub passes_failed: u64,
    pub crashes: u64,
    pub conflicts: u64,
    pub resyncs: u64,
    pub intents_resolved: u64,
    pub history_losses: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.edits += other.edits;
        self.series_edits += other.series_edits;
        self.skipped += other.skipped;
        self.passes_ok += other.passes_ok;
        self.passes_failed += other.passes_failed;
        self.crashes += other.crashes;
        self.conflicts += other.conflicts;
        self.resyncs += other.resyncs;
        self.intents_resolved += other.intents_resolved;
        self.history_losses += other.history_losses;
    }
}

impl Slot {
    pub fn when(&self, model: &Model) -> When {
        let day = model
            .first_day
            .checked_add(jiff::Span::new().days(i64::from(self.day)))
            .expect("a date");
        if self.all_day {
            let end = day
                .checked_add(jiff::Span::new().days(i64::from(self.length)))
                .expect("a date");
            return When::AllDay { start: day, end };
        }
        let start = day
            .at(self.hour as i8, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .expect("a UTC time")
            .timestamp();
        let end = start + jiff::SignedDuration::from_hours(i64::from(self.length));
        When::Timed { start, end }
    }
}

fn seed_when(when: &When) -> SeedWhen {
    match when {
        When::Timed { start, end } => SeedWhen::Timed {
            start: *start,
            end: *end,
            time_zone: "UTC".into(),
        },
        When::AllDay { start, end } => SeedWhen::AllDay {
            start: *start,
            end: *end,
        },
    }
}

fn graph_when(when: &When) -> Value {
    let utc = |t: String| json!({ "dateTime": t, "timeZone": "UTC" });
    match when {
        When::Timed { start, end } => json!({
            "isAllDay": false,
            "start": utc(start.strftime("%Y-%m-%dT%H:%M:%S").to_string()),
            "end": utc(end.strftime("%Y-%m-%dT%H:%M:%S").to_string()),
        }),
        When::AllDay { start, end } => json!({
            "isAllDay": true,
            "start": utc(format!("{start}T00:00:00")),
            "end": utc(format!("{end}T00:00:00")),
        }),
    }
}

impl World {
    /// The user's items on the CRM side whose title names `key`.
    pub fn crm_ids_of(&self, key: &str) -> Vec<u32> {
        let items = self
            .sandbox
            .state()
            .superoffice
            .associate_items(self.user.associate_id)
            .expect("ANNA's items");
        items
            .appointments
            .iter()
            .filter(|(a, todo)| !todo && Model::key_of(&a.data.title) == Some(key))
            .map(|(a, _)| a.id)
            .collect()
    }

    /// Every event id in the user's calendar (inside the window or not).
    pub fn event_ids(&self) -> Vec<(String, String)> {
        let dump = self
            .sandbox
            .state()
            .graph
            .mailbox_state(&self.mailbox_id())
            .expect("ANNA's mailbox");
        dump["calendar"]["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    // Occurrences and exceptions are read with their series.
                    .filter(|e| e["type"] != "occurrence" && e["type"] != "exception")
                    .map(|e| {
                        (
                            e["id"].as_str().unwrap_or_default().to_string(),
                            e["subject"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn event_ids_of(&self, key: &str) -> Vec<String> {
        self.event_ids()
            .into_iter()
            .filter(|(_, subject)| Model::key_of(subject) == Some(key))
            .map(|(id, _)| id)
            .collect()
    }

    /// The user writes `content` over the item `key` on `side`; `false` if it is not there.
    fn user_edit(&self, side: Side, key: &str, content: &Content) -> bool {
        let now = self.now();
        let state = self.sandbox.state();
        match side {
            Side::Crm => {
                let Some(id) = self.crm_ids_of(key).first().copied() else {
                    return false;
                };
                let change = AppointmentChange {
                    title: Some(content.title.clone()),
                    when: Some(seed_when(&content.when)),
                    ..AppointmentChange::default()
                };
                state
                    .superoffice
                    .user_update_appointment(id, change, now)
                    .expect("the user's CRM edit");
            }
            Side::Mailbox => {
                let Some(id) = self.event_ids_of(key).first().cloned() else {
                    return false;
                };
                let mut patch = graph_when(&content.when);
                patch["subject"] = json!(content.title);
                state
                    .graph
                    .user_update_event(now, &self.mailbox_id(), &id, &patch)
                    .expect("the user's Outlook edit");
            }
        }
        true
    }

    fn user_create(&self, side: Side, content: &Content) {
        let now = self.now();
        let state = self.sandbox.state();
        match side {
            Side::Crm => {
                state
                    .superoffice
                    .user_create_appointment(
                        UserAppointment {
                            associate_id: self.user.associate_id,
                            todo: false,
                            task: None,
                            title: content.title.clone(),
                            description: String::new(),
                            location: String::new(),
                            when: seed_when(&content.when),
                            private: false,
                            free: None,
                            alarm_minutes: None,
                            completed: false,
                            person_id: None,
                            company_id: None,
                        },
                        now,
                    )
                    .expect("the user's new CRM appointment");
            }
            Side::Mailbox => {
                let mut body = graph_when(&content.when);
                body["subject"] = json!(content.title);
                state
                    .graph
                    .user_create_event(now, &self.mailbox_id(), &body)
                    .expect("the user's new Outlook event");
            }
        }
    }

    fn user_delete(&self, side: Side, key: &str) -> bool {
        let now = self.now();
        let state = self.sandbox.state();
        match side {
            Side::Crm => match self.crm_ids_of(key).first() {
                Some(id) => {
                    state
                        .superoffice
                        .user_delete_appointment(*id, now)
                        .expect("the user's CRM delete");
                    true
                }
                None => false,
            },
            Side::Mailbox => match self.event_ids_of(key).first() {
                Some(id) => {
                    state
                        .graph
                        .user_delete_event(now, &self.mailbox_id(), id)
                        .expect("the user's Outlook delete");
                    true
                }
                None => false,
            },
        }
    }

    /// An edit of item `index` on `side`, recorded in the model if it happened.
    fn edit(&self, model: &mut Model, tally: &mut Tally, side: Side, index: usize, slot: Slot) {
        let when = slot.when(model);
        let (key, content) = model.next_content(index, when);
        if self.user_edit(side, &key, &content) {
            model.edited(index, side, content);
            tally.edits += 1;
        } else {
            tally.skipped += 1;
        }
        self.tick();
    }

    /// Carries out one op.
    pub async fn apply(&mut self, model: &mut Model, tally: &mut Tally, op: &Op) {
        match op {
            Op::Create(side, slot) => {
                let content = model.create(*side, slot.when(model));
                self.user_create(*side, &content);
                tally.edits += 1;
                self.tick();
            }
            Op::Update(side, index, slot) | Op::MoveOut(side, index, slot) => {
                if let Some(i) = model.pick(index) {
                    self.edit(model, tally, *side, i, *slot);
                }
            }
            Op::MoveIn(side, index, slot) => {
                let window = self.window();
                if let Some(i) = model.pick_outside(index, &window) {
                    self.edit(model, tally, *side, i, *slot);
                }
            }
            Op::BothUpdate(index, crm_first, first, second) => {
                if let Some(i) = model.pick(index) {
                    let (a, b) = if *crm_first {
                        (Side::Crm, Side::Mailbox)
                    } else {
                        (Side::Mailbox, Side::Crm)
                    };
                    self.edit(model, tally, a, i, *first);
                    self.edit(model, tally, b, i, *second);
                }
            }
            Op::Delete(side, index) => {
                if let Some(i) = model.pick(index) {
                    let key = model.items[i].key.clone();
                    if self.user_delete(*side, &key) {
                        model.deleted(i, *side);
                        tally.edits += 1;
                    } else {
                        tally.skipped += 1;
                    }
                    self.tick();
                }
            }
            Op::CreateSeries(side, slot) => {
                let first_day = model.first_day;
                self.create_series(&mut model.series, *side, *slot, first_day, tally);
            }
            Op::EditOccurrence(side, index, k, edit) => {
                self.edit_occurrence(&mut model.series, *side, index, *k, *edit, tally);
            }
            Op::EndSeries(side, index, count) => {
                self.end_series(&mut model.series, *side, index, *count, tally);
            }
            Op::Pass(check) => {
                let outcome = self.pass(*check).await;
                self.tally_pass(tally, Some(outcome));
            }
            Op::CrashPass(after) => {
                let outcome = self.crash_pass(*after).await;
                self.tally_pass(tally, outcome);
            }
            Op::LoseHistory if self.lose_history_now() => {
                self.lose_history();
                tally.history_losses += 1;
            }
            Op::LoseHistory => {}
            Op::SnapshotHistory => self.snapshot_history(),
            Op::RollbackHistory => {
                if self.lose_history_now() && self.rollback_history().await {
                    tally.history_losses += 1;
                }
            }
            Op::ExpireDeltaTokens => {
                self.sandbox
                    .state()
                    .graph
                    .expire_delta_tokens(&self.mailbox_id())
                    .expect("ANNA's mailbox");
            }
            Op::Faults(fault, n, emulator) => {
                let kind = match fault {
                    Fault::Throttle => FaultKind::TooManyRequests {
                        retry_after_secs: 0.02,
                        as_http_date: false,
                    },
                    Fault::Unavailable => FaultKind::ServerError {
                        status: 503,
                        retry_after_secs: None,
                    },
                    Fault::Reset => FaultKind::Reset,
                };
                self.sandbox
                    .state()
                    .faults
                    .add(FaultRule {
                        kind,
                        emulator: *emulator,
                        mailbox: None,
                        path_contains: None,
                        method: None,
                        next: Some(*n),
                        probability: None,
                    })
                    .expect("a valid fault");
            }
        }
    }

    /// The known limitation (`known.rs`): history is not lost while a create may be in flight.
    fn lose_history_now(&self) -> bool {
        !(self.in_flight && self.avoid_known_bugs)
    }

    fn tally_pass(
        &mut self,
        tally: &mut Tally,
        outcome: Option<
            Result<crmsync::runtime::pass::PassReport, crmsync::runtime::pass::PassError>,
        >,
    ) {
        match outcome {
            None => {
                tally.crashes += 1;
                self.in_flight = true;
            }
            Some(Ok(report)) => {
                self.in_flight = false;
                tally.passes_ok += 1;
                tally.conflicts += report.conflicts.len() as u64;
                tally.resyncs += u64::from(report.resynced);
                tally.intents_resolved += report.intents_resolved;
            }
            // Faults may fail a pass: what it did is kept, the rest comes again.
            Some(Err(_)) => tally.passes_failed += 1,
        }
        self.tick();
    }
}
