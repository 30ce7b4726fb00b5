//! Recurring appointments as SuperOffice stores them: a recurrence rule, and one appointment
//! row per occurrence pointing at it (`recurrenceRuleId`). A never-ending rule is materialized
//! up to [`HORIZON_DAYS`] ahead of the sandbox clock and extended as the clock moves.

mod expand;
mod user;
mod wire;

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

pub use expand::{Daily, End, MonthDay, Pattern, Spec, weekday_bit};
pub use user::{SeriesEnd, UserSeries, router};
pub use wire::{Requested, read, render};

use super::model::{
    Appointment, AppointmentData, Data, Occurrence, Span, TABLE_APPOINTMENT, TTL_DELETE,
    TTL_INSERT, WriteError,
};

/// How far ahead of the clock a series' rows exist.
pub const HORIZON_DAYS: i64 = 365;

/// The most rows a series may have up to the horizon: a daily series started decades ago is
/// refused rather than written as tens of thousands of rows.
pub const MAX_ROWS: usize = 3000;

/// A recurrence rule and what its new rows are made of.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: u32,
    pub spec: Spec,
    /// The series' own zone: occurrences keep their local time in it across DST.
    pub zone: TimeZone,
    /// `PreferredTZLocation` the series was saved with (0: the tenant's base zone).
    pub zone_id: u32,
    /// The content of a new occurrence; its span is the first occurrence's.
    pub template: AppointmentData,
    /// Dates the rule gives that a user cancelled (deleted alone or took out of the series).
    pub cancelled: BTreeSet<Date>,
    /// Row per original date.
    pub rows: BTreeMap<Date, u32>,
    /// Rows exist for every date up to this one.
    pub materialized_until: Date,
    /// Who registered the series: the registrar of rows added later.
    pub created_by: u32,
}

/// A requested recurrence, before it is tied to a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// `None`: the appointment's own date.
    pub start: Option<Date>,
    pub end: End,
    pub pattern: Pattern,
    pub zone_id: u32,
}

impl Rule {
    /// The rule as a request would ask for it.
    pub fn wanted(&self) -> Wanted {
        Wanted {
            start: Some(self.spec.start),
            end: self.spec.end,
            pattern: self.spec.pattern,
            zone_id: self.zone_id,
        }
    }

    fn horizon(&self, now: Timestamp) -> Date {
        let today = now.to_zoned(self.zone.clone()).date();
        today.checked_add(HORIZON_DAYS.days()).unwrap_or(today)
    }

    /// The dates that have rows at `now`: those up to the horizon, and the first one even
    /// beyond it, so that a series starting later still has its first row.
    fn due_dates(&self, now: Timestamp) -> Vec<Date> {
        let horizon = self.horizon(now);
        let start = self.spec.start;
        // A yearly rule's first date is at most a year after its start.
        let first_within = start.checked_add(1.year()).unwrap_or(start);
        let mut dates = self.spec.dates(horizon.max(first_within));
        let first = dates.first().copied();
        dates.retain(|d| *d <= horizon || Some(*d) == first);
        dates
    }

    /// The span of the occurrence on `date`, at the template's local time in the series' zone.
    fn span_on(&self, date: Date) -> Result<Span, WriteError> {
        let invalid = |e: jiff::Error| WriteError::Invalid(format!("Occurrence on {date}: {e}"));
        match self.template.span {
            Span::AllDay { start, end } => {
                let days = start.until(end).map_err(invalid)?;
                let end = date.checked_add(days).map_err(invalid)?;
                Ok(Span::AllDay { start: date, end })
            }
            Span::Timed { start, end } => {
                let first = start.to_zoned(self.zone.clone()).datetime();
                let last = end.to_zoned(self.zone.clone()).datetime();
                let length: SignedDuration = first.duration_until(last);
                let local = DateTime::from_parts(date, first.time());
                let start = local.to_zoned(self.zone.clone()).map_err(invalid)?;
                let end = local
                    .checked_add(length)
                    .and_then(|l| l.to_zoned(self.zone.clone()))
                    .map_err(invalid)?;
                Ok(Span::Timed {
                    start: start.timestamp(),
                    end: end.timestamp(),
                })
            }
        }
    }

    fn occurrence_data(&self, date: Date) -> Result<AppointmentData, WriteError> {
        Ok(AppointmentData {
            span: self.span_on(date)?,
            ..self.template.clone()
        })
    }
}

/// The date a span starts on in `zone`.
fn start_date(span: &Span, zone: &TimeZone) -> Date {
    match span {
        Span::AllDay { start, .. } => *start,
        Span::Timed { start, .. } => start.to_zoned(zone.clone()).date(),
    }
}

impl Data {
    /// Creates a series from its first occurrence's content: the rule, and its rows up to the
    /// horizon. Returns the first row's id.
    pub fn create_series(
        &mut self,
        mut data: AppointmentData,
        wanted: &Wanted,
        by: u32,
        now: Timestamp,
    ) -> Result<u32, WriteError> {
        self.validate_appointment(&mut data)?;
        let rule_id = self.new_rule(data, wanted, by, now)?;
        self.materialize(rule_id, by, now)?;
        self.first_row(rule_id)
    }

    /// Makes the existing row `id` a series with `data` as its content: the row becomes the
    /// rule's first occurrence (keeping its id), the others are added.
    pub fn make_series(
        &mut self,
        id: u32,
        mut data: AppointmentData,
        wanted: &Wanted,
        by: u32,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        self.validate_appointment(&mut data)?;
        let rule_id = self.new_rule(data, wanted, by, now)?;
        let (first, rule_data) = {
            let rule = self.rule(rule_id)?;
            let first = rule.due_dates(now).first().copied();
            let Some(first) = first else {
                return Err(no_occurrences());
            };
            (first, rule.occurrence_data(first)?)
        };
        self.replace_appointment(id, rule_data, by, now, false)?;
        self.set_occurrence(id, rule_id, first);
        self.materialize(rule_id, by, now)
    }

    fn new_rule(
        &mut self,
        data: AppointmentData,
        wanted: &Wanted,
        by: u32,
        now: Timestamp,
    ) -> Result<u32, WriteError> {
        let zone = super::time::zone_by_id(wanted.zone_id).ok_or_else(|| {
            WriteError::Invalid(format!("PreferredTZLocation {} not found", wanted.zone_id))
        })?;
        let spec = Spec {
            start: wanted.start.unwrap_or(start_date(&data.span, &zone)),
            end: wanted.end,
            pattern: wanted.pattern,
        };
        let id = self.next_rule.max(1);
        let rule = Rule {
            id,
            spec,
            zone,
            zone_id: wanted.zone_id,
            template: data,
            cancelled: BTreeSet::new(),
            rows: BTreeMap::new(),
            materialized_until: spec.start,
            created_by: by,
        };
        // The template's span is the first occurrence's, so that new rows copy its local time.
        let first = check(&rule, now)?[0];
        let template = rule.occurrence_data(first)?;
        self.next_rule = id + 1;
        self.rules.insert(id, Rule { template, ..rule });
        Ok(id)
    }

    fn rule(&self, id: u32) -> Result<&Rule, WriteError> {
        self.rules.get(&id).ok_or(WriteError::NotFound {
            entity: "Recurrence rule",
            id,
        })
    }

    fn first_row(&self, rule_id: u32) -> Result<u32, WriteError> {
        self.rule(rule_id)?
            .rows
            .values()
            .next()
            .copied()
            .ok_or_else(no_occurrences)
    }

    fn set_occurrence(&mut self, id: u32, rule_id: u32, date: Date) {
        if let Some(a) = self.appointments.get_mut(&id) {
            a.occurrence = Some(Occurrence {
                rule_id,
                original_date: date,
                exception: false,
            });
        }
        if let Some(rule) = self.rules.get_mut(&rule_id) {
            rule.rows.insert(date, id);
        }
    }

    /// Adds the rows of dates up to the horizon that have none (and were not cancelled).
    fn materialize(&mut self, rule_id: u32, by: u32, now: Timestamp) -> Result<(), WriteError> {
        let rule = self.rule(rule_id)?;
        let horizon = rule.horizon(now);
        let mut new = Vec::new();
        for date in rule.due_dates(now) {
            if !rule.rows.contains_key(&date) && !rule.cancelled.contains(&date) {
                new.push((date, rule.occurrence_data(date)?));
            }
        }
        for (date, data) in new {
            let id = self.next_appointment.max(1);
            self.next_appointment = id + 1;
            let at = Self::stamp(now, None);
            let row = Appointment {
                id,
                data,
                created: at,
                updated: at,
                created_by: by,
                updated_by: by,
                updated_count: 0,
                occurrence: None,
            };
            self.index_appointment(&row);
            self.appointments.insert(id, row);
            self.set_occurrence(id, rule_id, date);
            self.log(now, TABLE_APPOINTMENT, id, TTL_INSERT, by, 0);
        }
        if let Some(rule) = self.rules.get_mut(&rule_id) {
            rule.materialized_until = horizon;
        }
        Ok(())
    }

    /// Housekeeping: extends every series whose rows stop short of the horizon of `now`.
    /// Cheap when nothing is due, so the API runs it before every request.
    pub fn extend_series(&mut self, now: Timestamp) {
        let due: Vec<(u32, u32)> = self
            .rules
            .values()
            .filter(|r| r.materialized_until < r.horizon(now))
            .map(|r| (r.id, r.created_by))
            .collect();
        for (id, by) in due {
            // A rule whose dates cannot be computed any more keeps the rows it has.
            let _ = self.materialize(id, by, now);
        }
    }

    /// Whether the API's housekeeping has anything to do at `now`.
    pub fn series_due(&self, now: Timestamp) -> bool {
        self.rules
            .values()
            .any(|r| r.materialized_until < r.horizon(now))
    }

    /// A new rule (pattern, end, zone) and content for the whole series of row `id`, saved
    /// through that row: see [`Data::change_rule`].
    pub fn change_series(
        &mut self,
        id: u32,
        mut data: AppointmentData,
        wanted: &Wanted,
        by: u32,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        self.validate_appointment(&mut data)?;
        let rule_id = self
            .appointments
            .get(&id)
            .and_then(|a| a.occurrence)
            .map(|o| o.rule_id)
            .ok_or(WriteError::NotFound {
                entity: "Recurrence rule of appointment",
                id,
            })?;
        self.change_rule(rule_id, data, wanted, Some(id), by, now)
    }

    /// A new rule and content for a series: rows whose date no longer occurs are deleted, the
    /// others take the new content and time (exceptions keep theirs, except the `edited` row
    /// the change was saved through), and dates without a row get one.
    pub(super) fn change_rule(
        &mut self,
        rule_id: u32,
        data: AppointmentData,
        wanted: &Wanted,
        edited: Option<u32>,
        by: u32,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let zone = super::time::zone_by_id(wanted.zone_id).ok_or_else(|| {
            WriteError::Invalid(format!("PreferredTZLocation {} not found", wanted.zone_id))
        })?;
        let old = self.rule(rule_id)?.clone();
        let spec = Spec {
            start: wanted.start.unwrap_or(old.spec.start),
            end: wanted.end,
            pattern: wanted.pattern,
        };
        let mut rule = Rule {
            spec,
            zone,
            zone_id: wanted.zone_id,
            template: data,
            ..old.clone()
        };
        let dates = check(&rule, now)?;
        let first = dates[0];
        let dates: BTreeSet<Date> = dates.into_iter().collect();
        rule.template = rule.occurrence_data(first)?;
        rule.cancelled.retain(|d| dates.contains(d));
        self.rules.insert(rule_id, rule);
        for (date, row) in &old.rows {
            if !dates.contains(date) {
                if let Some(gone) = self.appointments.remove(row) {
                    self.unindex_appointment(&gone);
                    self.log(now, TABLE_APPOINTMENT, *row, TTL_DELETE, by, 0);
                }
                if let Some(r) = self.rules.get_mut(&rule_id) {
                    r.rows.remove(date);
                }
                continue;
            }
            let exception = self
                .appointments
                .get(row)
                .and_then(|a| a.occurrence)
                .is_some_and(|o| o.exception);
            if exception && Some(*row) != edited {
                continue;
            }
            let fresh = self.rule(rule_id)?.occurrence_data(*date)?;
            if self.appointments.get(row).is_some_and(|a| a.data != fresh) {
                self.replace_appointment(*row, fresh, by, now, false)?;
            }
            if let Some(a) = self.appointments.get_mut(row)
                && let Some(o) = a.occurrence.as_mut()
            {
                o.exception = false;
            }
        }
        self.materialize(rule_id, by, now)
    }

    /// Takes row `id` out of its series (`IsRecurrence` false on one row): it stays as a
    /// plain appointment, and the rule does not give its date again.
    pub fn detach_occurrence(&mut self, id: u32) {
        let Some(o) = self
            .appointments
            .get_mut(&id)
            .and_then(|a| a.occurrence.take())
        else {
            return;
        };
        self.forget_occurrence(o);
    }

    /// The bookkeeping of a row leaving its series: its date is cancelled.
    pub(super) fn forget_occurrence(&mut self, o: Occurrence) {
        if let Some(rule) = self.rules.get_mut(&o.rule_id) {
            rule.rows.remove(&o.original_date);
            rule.cancelled.insert(o.original_date);
            // The REST API deletes a series row by row: once none is left the series is gone,
            // and housekeeping must not bring it back at the horizon.
            if rule.rows.is_empty() {
                self.rules.remove(&o.rule_id);
            }
        }
    }

    /// The first row of the series of a row (which may itself be gone).
    pub fn first_row_of(&self, o: Occurrence) -> Option<u32> {
        self.rules.get(&o.rule_id)?.rows.values().next().copied()
    }
}

fn no_occurrences() -> WriteError {
    WriteError::Invalid("The recurrence pattern gives no occurrences".into())
}

/// What the API refuses in a rule's dates; else its dates up to the horizon (at least one).
fn check(rule: &Rule, now: Timestamp) -> Result<Vec<Date>, WriteError> {
    let spec = &rule.spec;
    let invalid = |m: String| Err(WriteError::Invalid(m));
    match spec.end {
        End::Date(d) if d < spec.start => {
            return invalid("Recurrence EndDate is before its StartDate".into());
        }
        End::Count(0) => return invalid("RecurrenceCounter must be at least 1".into()),
        _ => {}
    }
    let dates = rule.due_dates(now);
    if dates.is_empty() {
        return Err(no_occurrences());
    }
    if dates.len() > MAX_ROWS {
        return invalid(format!(
            "The recurrence gives {} occurrences up to {}; a series may have at most \
             {MAX_ROWS}",
            dates.len(),
            rule.horizon(now)
        ));
    }
    Ok(dates)
}
