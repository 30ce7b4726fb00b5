//! Recurring series: SuperOffice keeps a rule and one appointment row per occurrence
//! (`recurring`, `recurrenceRuleId`); crmsync shows the series as ONE diary item named
//! `CrmId::series(rule)` (the contract in the docs: `docs/connectors/superoffice.md`).
//!
//! Reading a series: list its rows (`recurrenceRuleId eq {rule}`: id, times, updated, title,
//! location, text), read one row for the rule, pair every row with its original date, and
//! read in full the rows whose original occurrence falls in the series window. A row's
//! original date: its own start date when that is one of the dates `Recurrence.Dates` names
//! and no earlier row took it;
//! the rows left over are paired in start order with the dates left over (the API names no
//! row's original date; two rows moved across each other can be paired the wrong way round).
//! The series' content and local time are what most rows on their own date share, as the list
//! shows them (all rows, so the rows beyond the window, rarely edited, count too; a tie goes
//! to the rows written longest ago). An occurrence whose row differs in time or content is an
//! exception, a pattern date in the window without a row is a cancellation. When every row
//! was edited alone, one of the edits is read as the series and the others as exceptions:
//! every occurrence stays where its user put it (SuperOffice keeps no time or content of its
//! own for a rule).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use reqwest::header::HeaderName;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::query::{self, ListQuery};
use super::recurrence as so_recurrence;
use super::series_rows::{
    Listed, Shape, content, content_row, look_of, pair_rows, series_version, shape_of, slot,
};
use super::writes::{Fetched, conflict, item_error};
use super::{Call, Ctx, SuperOfficeClient, fetch_all, mapping, refusal, time};
use crate::connector::http::Retry;
use crate::connector::model::{CrmId, DiaryItem, Item, Observed, Series, Version, When, Window};
use crate::connector::recurrence::{Recurrence, occurrence_dates};
use crate::connector::{ConnectorError, Deleted, Written};

/// A series as read, with what writes need.
pub(crate) struct SeriesRead {
    pub associate: u32,
    pub observed: Observed<CrmId>,
    /// Original start (the model's key) -> row, for the occurrences in the window that have one.
    pub rows: BTreeMap<Timestamp, u32>,
    /// The rows read in full, by id.
    pub fetched: HashMap<u32, Fetched>,
    /// Rows in the window not read, because they hold the series' content as the holder
    /// row's write left it: id -> `UpdatedDate`.
    pub unread: HashMap<u32, Timestamp>,
    /// A row on its slot with the series' content (where a change of the whole series is
    /// saved through), else any row.
    pub template_row: u32,
    /// Every row of the rule.
    pub all_rows: Vec<u32>,
    /// (row, UpdatedDate) of the rows read in full, for the change feed's bookkeeping.
    pub row_versions: Vec<(u32, Timestamp)>,
}

impl SuperOfficeClient {
    /// The series window (contract 3): the last diary `changes` window, or one set here.
    pub fn set_series_window(&self, window: Window) {
        if let Ok(mut w) = self.series_window.lock() {
            *w = Some(window);
        }
    }

    fn current_series_window(&self) -> Option<Window> {
        self.series_window.lock().ok().and_then(|w| *w)
    }

    /// Remembers which rule a row belongs to (a deleted row's series is read again).
    pub(crate) fn remember_rows(&self, rule: u32, rows: impl IntoIterator<Item = u32>) {
        if let Ok(mut map) = self.row_rules.lock() {
            for row in rows {
                map.insert(row, rule);
            }
        }
    }

    /// The rule a row was last seen in.
    pub(crate) fn rule_of_row(&self, row: u32) -> Option<u32> {
        self.row_rules.lock().ok()?.get(&row).copied()
    }

    /// Every row of a rule, by start.
    async fn series_rows(&self, rule: u32) -> Result<Vec<Listed>, ConnectorError> {
        let q = ListQuery::new(
            "Appointment",
            "appointmentId,date,endDate,updatedDate,appointment/title,location,text",
            "appointmentId",
        )
        .filter(format!("recurrenceRuleId eq {rule}"))
        .top(self.options.page_size);
        let mut rows: Vec<Listed> = self
            .list(&q)
            .await?
            .into_iter()
            .flat_map(|l| l.rows)
            .filter_map(|row| {
                let start = query::instant(&row, "date")?;
                Some(Listed {
                    id: query::id(&row, "appointmentId")?,
                    start,
                    end: query::instant(&row, "endDate").unwrap_or(start),
                    updated: query::instant(&row, "updatedDate").unwrap_or(start),
                    title: query::text(&row, "appointment/title").to_string(),
                    location: query::text(&row, "location").to_string(),
                    text: query::text(&row, "text").to_string(),
                })
            })
            .collect();
        rows.sort_by_key(|r| (r.start, r.id));
        rows.dedup_by_key(|r| r.id);
        Ok(rows)
    }

    /// Reads the series of `rule`: `None` when the rule has no rows (gone).
    pub(crate) async fn read_series(
        &self,
        rule: u32,
    ) -> Result<Option<SeriesRead>, ConnectorError> {
        let id = CrmId::series(rule);
        let listed = self.series_rows(rule).await?;
        let Some(first_listed) = listed.first() else {
            return Ok(None);
        };
        self.remember_rows(rule, listed.iter().map(|r| r.id));
        // One row gives the rule and the dates that have rows.
        let Some((_, first)) = self.read_appointment(CrmId(first_listed.id)).await? else {
            return Ok(None);
        };
        let recurrence = so_recurrence::read(&first.entity).map_err(|what| item_error(id, what))?;
        let row_dates: BTreeSet<Date> = so_recurrence::row_dates(&first.entity)
            .into_iter()
            .collect();
        let tz = recurrence
            .zone()
            .map_err(|e| item_error(id, e.to_string()))?;
        let first_date = recurrence.range.start;
        let window = self.current_series_window().unwrap_or_else(|| {
            let start = first_date
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::UNIX_EPOCH);
            Window {
                start,
                end: start
                    .checked_add(SignedDuration::from_hours(24 * 366))
                    .unwrap_or(start),
            }
        });
        let day = SignedDuration::from_hours(24);
        let from = window
            .start
            .checked_sub(day * 2)
            .unwrap_or(window.start)
            .to_zoned(tz.clone())
            .date();
        let to = window
            .end
            .checked_add(day * 2)
            .unwrap_or(window.end)
            .to_zoned(tz.clone())
            .date();
        let pattern_dates: Vec<Date> =
            occurrence_dates(&recurrence, from, to).map_err(|e| item_error(id, e.to_string()))?;

        let original = pair_rows(
            listed
                .iter()
                .map(|r| (r.id, r.start.to_zoned(tz.clone()).date())),
            &row_dates,
        );
        let in_range = |d: &Date| *d >= from && *d <= to;
        // The series' content: the row the list votes for (outside the window too, where
        // rows are rarely edited), or the first row when no row is on its own date.
        let holder = content_row(&listed, &original, &tz).unwrap_or(first_listed.id);
        // Rows in the window that the holder's own write left as they are (on their date,
        // same look, same `UpdatedDate`) hold the series' content: they are not read one by
        // one. Any later edit of a row changes its `UpdatedDate`.
        let unread: HashMap<u32, Timestamp> = match listed.iter().find(|r| r.id == holder) {
            Some(h) => {
                let (_, holder_look) = look_of(h, &tz);
                listed
                    .iter()
                    .filter(|r| r.id != holder && r.id != first_listed.id)
                    .filter(|r| r.updated == h.updated)
                    .filter(|r| {
                        let (date, look) = look_of(r, &tz);
                        original.get(&r.id) == Some(&date) && look == holder_look
                    })
                    .map(|r| (r.id, r.updated))
                    .collect()
            }
            None => HashMap::new(),
        };
        let mut wanted: Vec<u32> = original
            .iter()
            .filter(|(row, d)| (in_range(d) && !unread.contains_key(row)) || **row == holder)
            .map(|(row, _)| *row)
            .collect();
        wanted.retain(|r| *r != first_listed.id);
        let mut fetched: HashMap<u32, Fetched> = HashMap::new();
        fetched.insert(first_listed.id, first);
        let more = fetch_all(wanted, self.options.fetch_concurrency, |row| async move {
            Ok(self
                .read_appointment(CrmId(row))
                .await?
                .map(|(_, f)| (row, f)))
        })
        .await?;
        fetched.extend(more);

        let diary = |f: &Fetched| match &f.appointment.item {
            Item::Diary(d) => Some(d.clone()),
            _ => None,
        };
        let held = fetched
            .get(&holder)
            .or_else(|| fetched.get(&first_listed.id))
            .and_then(diary)
            .ok_or_else(|| item_error(id, "the series' rows are not diary items"))?;
        let shape = shape_of(&held.when, &tz).1;
        let series_content = content(&held);

        // Occurrences in the window: exceptions and cancellations.
        let by_date: BTreeMap<Date, u32> = original.iter().map(|(r, d)| (*d, *r)).collect();
        let mut rows = BTreeMap::new();
        let mut exceptions = BTreeMap::new();
        let mut cancelled = BTreeSet::new();
        let mut template_row = None;
        for date in pattern_dates {
            let Some((key, when)) = slot(date, shape, &tz) else {
                continue;
            };
            if !when.overlaps(&window) {
                continue;
            }
            let Some(row) = by_date.get(&date) else {
                cancelled.insert(key);
                continue;
            };
            rows.insert(key, *row);
            let Some(d) = fetched.get(row).and_then(diary) else {
                continue;
            };
            if d.when == when && content(&d) == series_content {
                template_row.get_or_insert(*row);
            } else {
                exceptions.insert(key, DiaryItem { series: None, ..d });
            }
        }
        let (_, first_when) = slot(first_date, shape, &tz)
            .ok_or_else(|| item_error(id, "the first occurrence has no time"))?;
        let item = Item::Diary(DiaryItem {
            when: first_when,
            series: Some(Box::new(Series {
                recurrence,
                exceptions,
                cancelled,
            })),
            ..series_content
        });
        let template_row = template_row.unwrap_or(holder);
        let template = fetched
            .get(&template_row)
            .or_else(|| fetched.get(&first_listed.id))
            .ok_or_else(|| item_error(id, "no row of the series could be read"))?;
        let updated = fetched
            .values()
            .map(|f| f.appointment.updated)
            .max()
            .unwrap_or(template.appointment.updated);
        let own = self.auth.own_associate().await;
        let mut links = template.appointment.links;
        links.made_by_crmsync = own.is_some() && template.appointment.created_by == own;
        let observed = Observed {
            id,
            version: series_version(updated, &item),
            modified: updated,
            item,
            stamp: None,
            links,
        };
        let row_versions = fetched
            .iter()
            .map(|(r, f)| (*r, f.appointment.updated))
            .chain(
                rows.values()
                    .filter_map(|r| unread.get(r).map(|at| (*r, *at))),
            )
            .collect();
        Ok(Some(SeriesRead {
            associate: template.appointment.associate,
            observed,
            rows,
            template_row,
            all_rows: listed.iter().map(|r| r.id).collect(),
            row_versions,
            fetched,
            unread,
        }))
    }

    /// PATCH of one row: without `Recurrence` an edit of that row alone (an exception), with
    /// it the whole series. `If-Unmodified-Since` the row's `UpdatedDate` as read.
    async fn patch_row(
        &self,
        series: CrmId,
        row: u32,
        ops: &[(&'static str, Value)],
        read_at: Timestamp,
    ) -> Result<(), ConnectorError> {
        let call = Call::new(Method::PATCH, &format!("Appointment/{row}"))
            .body(mapping::patch(ops))
            .header(
                HeaderName::from_static("if-unmodified-since"),
                &time::http_date_at_or_after(read_at),
            )
            .retry(Retry::Safe);
        let response = self.call(&call).await?;
        match response.status {
            s if s.is_success() => Ok(()),
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT | StatusCode::NOT_FOUND => {
                Err(conflict(series))
            }
            _ => Err(refusal(&response, Ctx::Write(series.to_string()))),
        }
    }

    /// DELETE of one appointment row (a single item, or an occurrence of `item`'s series),
    /// `If-Unmodified-Since` the row's `UpdatedDate` as read; a `412` is a `Conflict` on `item`.
    pub(crate) async fn delete_row(
        &self,
        item: CrmId,
        row: u32,
        read_at: Option<Timestamp>,
    ) -> Result<Deleted, ConnectorError> {
        let mut call = Call::new(Method::DELETE, &format!("Appointment/{row}"));
        if let Some(at) = read_at {
            call = call.header(
                HeaderName::from_static("if-unmodified-since"),
                &time::http_date_at_or_after(at),
            );
        }
        let response = self.call(&call).await?;
        match response.status {
            s if s.is_success() => Ok(Deleted::Deleted),
            StatusCode::NOT_FOUND => Ok(Deleted::AlreadyGone),
            StatusCode::PRECONDITION_FAILED => Err(conflict(item)),
            _ => Err(refusal(&response, Ctx::Write(item.to_string()))),
        }
    }

    /// The content properties of `d` (all of them) for a row.
    async fn content_ops(
        &self,
        d: &DiaryItem,
        entity: &Value,
    ) -> Result<Vec<(&'static str, Value)>, ConnectorError> {
        let item = Item::Diary(DiaryItem {
            series: None,
            ..d.clone()
        });
        let tasks = self.task_ids_for(&item, entity).await?;
        let lookup = |name: &str| {
            tasks
                .iter()
                .find(|t| !t.todo && t.name.eq_ignore_ascii_case(name))
                .map(|t| t.id)
        };
        Ok(mapping::changes(&item, None, &lookup))
    }

    /// Brings the occurrences in the window to `want`: exceptions written (that row alone),
    /// cancellations deleted, exceptions absent from `want` written back to the series.
    async fn write_occurrences(
        &self,
        now: &SeriesRead,
        want: &DiaryItem,
    ) -> Result<(), ConnectorError> {
        let id = now.observed.id;
        let Some(target) = &want.series else {
            return Ok(());
        };
        let tz = target
            .recurrence
            .zone()
            .map_err(|e| item_error(id, e.to_string()))?;
        let (_, shape) = shape_of(&want.when, &tz);
        // Where the pattern puts the occurrence named `key`.
        let slot_of = |key: Timestamp| match shape {
            Shape::Timed(_, length) => key
                .checked_add(length)
                .ok()
                .map(|end| When::Timed { start: key, end }),
            Shape::AllDay(days) => {
                let date = key.to_zoned(TimeZone::UTC).date();
                let end = date.checked_add(i64::from(days).days()).ok()?;
                Some(When::AllDay { start: date, end })
            }
        };
        // An occurrence cancelled in SuperOffice has no row left to write: it cannot be
        // brought back through the REST API.
        if let Item::Diary(current) = &now.observed.item
            && let Some(have) = &current.series
        {
            for key in have
                .cancelled
                .iter()
                .filter(|k| !target.cancelled.contains(k))
            {
                tracing::warn!(
                    series = %id,
                    occurrence = %key,
                    "an occurrence cancelled in SuperOffice cannot be restored; left cancelled"
                );
            }
        }
        let read_content = match &now.observed.item {
            Item::Diary(d) => Some((content(d), shape_of(&d.when, &tz).1)),
            _ => None,
        };
        let wanted_content = (content(want), shape);
        for (key, row) in &now.rows {
            // The row's `UpdatedDate` as read: in full, or from the list for a row left unread.
            let listed_at = match now.fetched.get(row) {
                Some(f) => Some(f.appointment.updated),
                None => now.unread.get(row).copied(),
            };
            let Some(listed_at) = listed_at else {
                continue;
            };
            if target.cancelled.contains(key) {
                self.delete_row(id, *row, Some(listed_at)).await?;
                continue;
            }
            let late;
            let f = match now.fetched.get(row) {
                Some(f) => f,
                None => {
                    // A row left unread holds the series' content as read: only a change of
                    // that content, or an exception for it, needs the row itself.
                    if !target.exceptions.contains_key(key)
                        && read_content.as_ref() == Some(&wanted_content)
                    {
                        continue;
                    }
                    let Some((_, read)) = self.read_appointment(CrmId(*row)).await? else {
                        continue;
                    };
                    late = read;
                    &late
                }
            };
            let read_at = f.appointment.updated;
            let desired = match target.exceptions.get(key) {
                Some(e) => DiaryItem {
                    series: None,
                    ..e.clone()
                },
                None => match slot_of(*key) {
                    Some(when) => DiaryItem {
                        when,
                        series: None,
                        ..want.clone()
                    },
                    None => continue,
                },
            };
            let Item::Diary(current_row) = &f.appointment.item else {
                continue;
            };
            if *current_row == desired {
                continue;
            }
            let item = Item::Diary(desired);
            let tasks = self.task_ids_for(&item, &f.entity).await?;
            let lookup = |name: &str| {
                tasks
                    .iter()
                    .find(|t| !t.todo && t.name.eq_ignore_ascii_case(name))
                    .map(|t| t.id)
            };
            let ops = mapping::changes(&item, Some((&f.appointment, &f.entity)), &lookup);
            if !ops.is_empty() {
                self.patch_row(id, *row, &ops, read_at).await?;
            }
        }
        Ok(())
    }

    /// Reads a series back after a write, as the answer.
    async fn series_written(&self, rule: u32) -> Result<Written<CrmId>, ConnectorError> {
        let id = CrmId::series(rule);
        let read = self
            .read_series(rule)
            .await?
            .ok_or_else(|| item_error(id, "the series was deleted meanwhile"))?;
        Ok(Written {
            id,
            version: read.observed.version,
            modified: read.observed.modified,
            item: Some(read.observed.item),
        })
    }

    /// `POST /Appointment` with the rule, then the exceptions and cancellations.
    pub(crate) async fn create_series(
        &self,
        associate: u32,
        d: &DiaryItem,
        recurrence: &Recurrence,
        mut entity: Value,
    ) -> Result<Written<CrmId>, ConnectorError> {
        let (info, zone) =
            so_recurrence::render(recurrence).map_err(|what| item_error("new series", what))?;
        let ops = self.content_ops(d, &entity).await?;
        mapping::apply(&mut entity, &ops);
        entity["Recurrence"] = info;
        entity["PreferredTZLocation"] = json!(zone);
        let answer = self
            .post_appointment(associate, entity, "new series")
            .await?;
        let rule = so_recurrence::rule_of(&answer)
            .ok_or_else(|| item_error("new series", "the answer is not a recurring row"))?;
        tracing::debug!(rule, associate, "SuperOffice series created");
        let has_changes = d
            .series
            .as_ref()
            .is_some_and(|s| !s.exceptions.is_empty() || !s.cancelled.is_empty());
        if has_changes && let Some(now) = self.read_series(rule).await? {
            self.write_occurrences(&now, d).await?;
        }
        self.series_written(rule).await
    }

    /// Contract 6: rule and content if they differ, then the occurrences in the window.
    pub(crate) async fn update_series(
        &self,
        id: CrmId,
        rule: u32,
        d: &DiaryItem,
        expected: &Version,
    ) -> Result<Written<CrmId>, ConnectorError> {
        let Some(target) = &d.series else {
            return Err(item_error(
                id,
                "a recurring series cannot be turned into a single appointment",
            ));
        };
        let Some(now) = self.read_series(rule).await? else {
            return Err(conflict(id));
        };
        if now.observed.version != *expected {
            return Err(conflict(id));
        }
        let Item::Diary(current) = &now.observed.item else {
            return Err(conflict(id));
        };
        let have = current.series.as_deref();
        let same_rule = have.is_some_and(|h| h.recurrence == target.recurrence);
        let same_content = content(current) == content(d) && current.when == d.when;
        let now = if same_rule && same_content {
            now
        } else {
            let (info, zone) =
                so_recurrence::render(&target.recurrence).map_err(|what| item_error(id, what))?;
            let row = now.template_row;
            let f = now
                .fetched
                .get(&row)
                .ok_or_else(|| item_error(id, "no row of the series could be read"))?;
            let mut ops = self.content_ops(d, &f.entity).await?;
            ops.push(("Recurrence", info));
            ops.push(("PreferredTZLocation", json!(zone)));
            self.patch_row(id, row, &ops, f.appointment.updated).await?;
            self.read_series(rule).await?.ok_or_else(|| conflict(id))?
        };
        self.write_occurrences(&now, d).await?;
        self.series_written(rule).await
    }

    /// Deletes every row of the rule (the REST API deletes a series row by row; the rule goes
    /// with its last row).
    pub(crate) async fn delete_series(
        &self,
        id: CrmId,
        rule: u32,
        expected: Option<&Version>,
    ) -> Result<Deleted, ConnectorError> {
        let rows = match expected {
            Some(expected) => {
                let Some(now) = self.read_series(rule).await? else {
                    return Ok(Deleted::AlreadyGone);
                };
                if now.observed.version != *expected {
                    return Err(conflict(id));
                }
                now.all_rows
            }
            None => self
                .series_rows(rule)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect(),
        };
        if rows.is_empty() {
            return Ok(Deleted::AlreadyGone);
        }
        for row in rows {
            self.delete_row(id, row, None).await?;
        }
        // Housekeeping may have added a row meanwhile.
        for row in self.series_rows(rule).await? {
            self.delete_row(id, row.id, None).await?;
        }
        Ok(Deleted::Deleted)
    }
}
