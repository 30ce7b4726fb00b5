//! Recurring series through the client (issue 8, `/work/notes/series-contract.md`): a series
//! is one item, its master's id, read as the master (with crmsync's properties) plus its
//! instances over the series window; created as a master with `recurrence`, then its
//! exceptions (PATCH of the occurrence) and cancellations (DELETE of the occurrence); updated
//! master first (`If-Match` with the master's change key), then occurrence by occurrence.
//!
//! A series' version is the master's change key, `~`, and a digest of the exceptions (their
//! change keys and content) and cancellations in the window: it changes when any of them
//! does, also where Graph leaves the master's change key alone. [`master_version`] takes the
//! change key back out for `If-Match`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::batch::BatchItem;
use super::patterned::GraphRecurrenceError;
use super::series::{self, SeriesError, SeriesGroup};
use super::series_write;
use super::update::if_match;
use super::wire::{self, Op};
use super::writes::{item_error, response_json, transaction_id};
use super::{GraphClient, delta, map};
use crate::connector::http::Retry;
use crate::connector::model::{
    DiaryItem, Item, Kind, Links, MailboxItemId, Observed, Series, Stamp, Version, When, Window,
};
use crate::connector::recurrence::{DayOfWeek, Pattern, Recurrence};
use crate::connector::{ConnectorError, MailboxRef, Service, Written};

/// Between the master's change key and the digest of its occurrences (never in a change key,
/// which is base64).
const VERSION_SEP: char = '~';

/// Instances are asked for over the series window widened by this on each side, so that an
/// exception whose original start is in the window but which was moved a little outside it is
/// still seen (an exception moved further reads as cancelled).
const INSTANCE_MARGIN_DAYS: i64 = 14;

/// Where no `changes` call set a series window: a year from the first occurrence.
const DEFAULT_WINDOW_DAYS: i64 = 366;

/// The part of a series' version that is the master's change key (a single event's version
/// as it is).
pub(super) fn master_version(version: &Version) -> Version {
    match version.0.split_once(VERSION_SEP) {
        Some((key, _)) => Version(key.to_string()),
        None => version.clone(),
    }
}

fn kind_of(event: &Value) -> String {
    event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("singleInstance")
        .to_ascii_lowercase()
}

/// Whether an event read from Graph is a series master.
pub(super) fn is_master(event: &Value) -> bool {
    kind_of(event) == "seriesmaster"
}

/// The master of an occurrence or exception.
pub(super) fn master_of_instance(event: &Value) -> Option<&str> {
    matches!(kind_of(event).as_str(), "occurrence" | "exception")
        .then(|| event.get("seriesMasterId").and_then(Value::as_str))
        .flatten()
}

fn widen(window: &Window) -> Window {
    let margin = SignedDuration::from_hours(24 * INSTANCE_MARGIN_DAYS);
    Window {
        start: window.start.checked_sub(margin).unwrap_or(window.start),
        end: window.end.checked_add(margin).unwrap_or(window.end),
    }
}

fn in_window(at: Timestamp, window: &Window) -> bool {
    at >= window.start && at < window.end
}

impl GraphClient {
    /// Sets the window series are read and written in (contract 3); `changes` of diary
    /// items sets it to its window too.
    pub fn set_series_window(&self, window: Window) {
        if let Ok(mut w) = self.series_window.lock() {
            *w = Some(window);
        }
    }

    /// The series window; with none set, a year from the series' first occurrence.
    pub(super) fn series_window(&self, first: Timestamp) -> Window {
        self.series_window
            .lock()
            .ok()
            .and_then(|w| *w)
            .unwrap_or_else(|| Window {
                start: first,
                end: first
                    .checked_add(SignedDuration::from_hours(24 * DEFAULT_WINDOW_DAYS))
                    .unwrap_or(Timestamp::MAX),
            })
    }
}

/// The canonical form of a rule (contract 4): the range starts on the first occurrence's
/// date, days sorted and each once, weekly with interval 1 starts its weeks on Sunday (the
/// start of the week does not change such a series).
pub fn canonical(recurrence: &Recurrence, first_date: Date) -> Recurrence {
    let mut out = recurrence.clone();
    out.range.start = first_date;
    let tidy = |days: &mut Vec<DayOfWeek>| {
        days.sort();
        days.dedup();
    };
    match &mut out.pattern {
        Pattern::Weekly {
            interval,
            days,
            first_day_of_week,
        } => {
            tidy(days);
            if *interval == 1 {
                *first_day_of_week = DayOfWeek::Sunday;
            }
        }
        Pattern::RelativeMonthly { days, .. } | Pattern::RelativeYearly { days, .. } => tidy(days),
        _ => {}
    }
    out
}

/// The date of a series' first occurrence in its zone.
fn first_date(item: &DiaryItem, recurrence: &Recurrence) -> Option<Date> {
    match item.when {
        When::Timed { start, .. } => Some(start.to_zoned(recurrence.zone().ok()?).date()),
        When::AllDay { start, .. } => Some(start),
    }
}

/// The first occurrence's start, for the default window.
fn first_start(item: &DiaryItem) -> Timestamp {
    match item.when {
        When::Timed { start, .. } => start,
        When::AllDay { start, .. } => start
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_or(Timestamp::UNIX_EPOCH, |z| z.timestamp()),
    }
}

/// The series' occurrence at `original_start` as the pattern puts it, with the series'
/// content.
fn pattern_occurrence(series_item: &DiaryItem, original_start: Timestamp) -> DiaryItem {
    let when = match series_item.when {
        When::Timed { start, end } => When::Timed {
            start: original_start,
            end: original_start
                .checked_add(end.duration_since(start))
                .unwrap_or(original_start),
        },
        When::AllDay { start, end } => {
            let date = original_start.to_zoned(jiff::tz::TimeZone::UTC).date();
            When::AllDay {
                start: date,
                end: date.checked_add(end - start).unwrap_or(date),
            }
        }
    };
    DiaryItem {
        when,
        series: None,
        ..series_item.clone()
    }
}

/// A series as one observed item, from its master (read with crmsync's properties) and its
/// instances over [`widen`]`(window)`: the exceptions and cancellations whose original start
/// is in `window`.
pub(super) fn observe(
    master: &Value,
    instances: &[Value],
    window: &Window,
) -> Result<Observed<MailboxItemId>, SeriesError> {
    let master_id = master
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut group = SeriesGroup {
        master_id: master_id.clone(),
        master: Some(master.clone()),
        ..SeriesGroup::default()
    };
    let mut change_keys: HashMap<String, String> = HashMap::new();
    let mut modified = map::meta(master, false).map_or(Timestamp::UNIX_EPOCH, |m| m.modified);
    for instance in instances {
        let Some(id) = instance.get("id").and_then(Value::as_str) else {
            continue;
        };
        match kind_of(instance).as_str() {
            "occurrence" => {
                let (Some(start), Some(end)) = (
                    wire::instant(&instance["start"]),
                    wire::instant(&instance["end"]),
                ) else {
                    continue;
                };
                group.occurrences.push(series::Instance {
                    id: id.to_string(),
                    start,
                    end,
                });
            }
            "exception" => {
                if let Some(meta) = map::meta(instance, false) {
                    change_keys.insert(id.to_string(), meta.version.0);
                    modified = modified.max(meta.modified);
                }
                group.exceptions.push(instance.clone());
            }
            _ => {}
        }
    }
    let read = group.read(None, &widen(window))?;
    let first = first_date(&read.item, &read.recurrence).ok_or_else(|| SeriesError::Field {
        item: master_id.clone(),
        field: "start",
        what: "the first occurrence's date cannot be found in the series' zone".into(),
    })?;
    let recurrence = canonical(&read.recurrence, first);
    let mut exceptions = BTreeMap::new();
    let mut digest = Sha256::new();
    for (key, exception) in &read.exceptions {
        // Only an occurrence that differs from the series is an exception (contract 2).
        if !in_window(*key, window) || exception.changed.is_empty() {
            continue;
        }
        let item = DiaryItem {
            task_type: read.item.task_type.clone(),
            organized_by_other: read.item.organized_by_other,
            series: None,
            ..exception.item.clone()
        };
        digest.update(key.to_string().as_bytes());
        digest.update(b"\n");
        if let Some(k) = change_keys.get(&exception.id) {
            digest.update(k.as_bytes());
        }
        digest.update(Item::Diary(item.clone()).content_hash().0);
        exceptions.insert(*key, item);
    }
    let cancelled: BTreeSet<Timestamp> = read
        .cancelled
        .iter()
        .copied()
        .filter(|k| in_window(*k, window))
        .collect();
    for key in &cancelled {
        digest.update(b"x");
        digest.update(key.to_string().as_bytes());
    }
    let hex: String = digest.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let item = DiaryItem {
        series: Some(Box::new(Series {
            recurrence,
            exceptions,
            cancelled,
        })),
        ..read.item
    };
    Ok(Observed {
        id: MailboxItemId(master_id),
        version: Version(format!("{}{VERSION_SEP}{hex}", read.version.0)),
        modified,
        item: Item::Diary(item),
        stamp: map::stamp_of(master),
        links: Links::default(),
    })
}

fn unreadable(error: SeriesError) -> ConnectorError {
    wire::malformed(format!("a series that cannot be read: {error}"))
}

/// The first occurrence of a master as Graph shows it, for the default window.
fn master_first_start(master: &Value) -> Timestamp {
    map::diary(master).map_or(Timestamp::UNIX_EPOCH, |d| first_start(&d))
}

/// The instances of a master over [`widen`]`(window)`, all pages; `None`: no such master.
async fn instances(
    client: &GraphClient,
    mailbox: &MailboxRef,
    master_id: &str,
    window: &Window,
) -> Result<Option<Vec<Value>>, ConnectorError> {
    let prefer = delta::prefer(Kind::Diary, None);
    let first = series_write::instances_path(mailbox, master_id, &widen(window));
    let request = client.request(Method::GET, mailbox, &first, &prefer)?;
    let response = client.send(&request).await?;
    if response.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let page = super::json_of(&response, Op::Read, master_id)?;
    rest_of_instances(client, mailbox, master_id, page)
        .await
        .map(Some)
}

/// The values of an instances page and of the pages after it.
async fn rest_of_instances(
    client: &GraphClient,
    mailbox: &MailboxRef,
    master_id: &str,
    mut page: Value,
) -> Result<Vec<Value>, ConnectorError> {
    let prefer = delta::prefer(Kind::Diary, None);
    let mut out = Vec::new();
    for _ in 0..10_000 {
        out.extend(page["value"].as_array().cloned().unwrap_or_default());
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                let path = client.relative(next)?;
                page = client
                    .get_json(mailbox, &path, &prefer, Op::Read, master_id)
                    .await?;
            }
            None => return Ok(out),
        }
    }
    Err(wire::malformed("an instances listing that does not end"))
}

/// The master with crmsync's properties; `None`: gone.
async fn master(
    client: &GraphClient,
    mailbox: &MailboxRef,
    master_id: &str,
) -> Result<Option<Value>, ConnectorError> {
    let request = client.request(
        Method::GET,
        mailbox,
        &series::master_path(mailbox, master_id),
        &delta::prefer(Kind::Diary, None),
    )?;
    let response = client.send(&request).await?;
    if response.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    super::json_of(&response, Op::Read, master_id).map(Some)
}

/// The series of `master` (read with crmsync's properties) as one observed item.
pub(super) async fn read(
    client: &GraphClient,
    mailbox: &MailboxRef,
    master: &Value,
) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
    let id = master.get("id").and_then(Value::as_str).unwrap_or_default();
    let window = client.series_window(master_first_start(master));
    let Some(instances) = instances(client, mailbox, id, &window).await? else {
        return Ok(None);
    };
    observe(master, &instances, &window)
        .map(Some)
        .map_err(unreadable)
}

/// The series named by `id` (a master's id) as one item; `None`: gone.
pub(super) async fn read_id(
    client: &GraphClient,
    mailbox: &MailboxRef,
    id: &str,
) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
    match master(client, mailbox, id).await? {
        Some(m) => read(client, mailbox, &m).await,
        None => Ok(None),
    }
}

fn get_item(mailbox: &MailboxRef, url: String) -> BatchItem {
    BatchItem {
        mailbox: mailbox.clone(),
        method: Method::GET,
        url,
        prefer: Some(delta::prefer(Kind::Diary, None)),
        body: None,
        retry: Retry::Safe,
        if_match: None,
    }
}

/// The series of a delta round, by master id, read in `$batch`es: the masters (with
/// crmsync's properties), then their instances. A master gone since the page was read is
/// left out (the next round reports its removal); a series that cannot be read is skipped
/// with a warning, as unreadable single items are.
pub(super) async fn read_many(
    client: &GraphClient,
    mailbox: &MailboxRef,
    master_ids: &[String],
) -> Result<HashMap<String, Observed<MailboxItemId>>, ConnectorError> {
    let mut out = HashMap::new();
    if master_ids.is_empty() {
        return Ok(out);
    }
    let replies = client
        .batch(
            master_ids
                .iter()
                .map(|id| get_item(mailbox, series::master_path(mailbox, id)))
                .collect(),
        )
        .await;
    let mut masters = Vec::new();
    for (id, reply) in master_ids.iter().zip(replies) {
        let reply = reply?;
        if reply.status.is_success() {
            masters.push((id.clone(), reply.body));
        } else if reply.status != StatusCode::NOT_FOUND {
            return Err(super::batch::reply_error(&reply, Op::Read, id));
        }
    }
    let windows: Vec<Window> = masters
        .iter()
        .map(|(_, m)| client.series_window(master_first_start(m)))
        .collect();
    let replies = client
        .batch(
            masters
                .iter()
                .zip(&windows)
                .map(|((id, _), w)| {
                    get_item(
                        mailbox,
                        series_write::instances_path(mailbox, id, &widen(w)),
                    )
                })
                .collect(),
        )
        .await;
    for (((id, master), window), reply) in masters.iter().zip(&windows).zip(replies) {
        let reply = reply?;
        if reply.status == StatusCode::NOT_FOUND {
            continue;
        }
        if !reply.status.is_success() {
            return Err(super::batch::reply_error(&reply, Op::Read, id));
        }
        let instances = rest_of_instances(client, mailbox, id, reply.body).await?;
        match observe(master, &instances, window) {
            Ok(o) => {
                out.insert(id.clone(), o);
            }
            Err(e) => {
                tracing::warn!(mailbox = mailbox.key(), item = %id, error = %e, "skipped a series that cannot be read");
            }
        }
    }
    Ok(out)
}

/// A rule or series Graph cannot hold (contract 7).
fn unexpressible(item: &str, error: &GraphRecurrenceError) -> ConnectorError {
    item_error(
        format!(
            "the recurring series cannot be written to Outlook as it is ({error}); it is left \
             alone: change the series in SuperOffice to a pattern Outlook can hold"
        ),
        item,
    )
}

pub(super) fn written(observed: Observed<MailboxItemId>) -> Written<MailboxItemId> {
    Written {
        id: observed.id,
        version: observed.version,
        modified: observed.modified,
        item: Some(observed.item),
    }
}

/// The series as written, read back; a series gone meanwhile is an item error.
async fn read_back(
    client: &GraphClient,
    mailbox: &MailboxRef,
    id: &str,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    read_id(client, mailbox, id)
        .await?
        .map(written)
        .ok_or_else(|| item_error("the series was deleted while it was written", id))
}

/// Creates the series of `item` (contract 6 and 8): the master with `recurrence` and the
/// same `transactionId` as a single create (a repeated create meets the first), then its
/// exceptions and cancellations in the series window.
pub(super) async fn create(
    client: &GraphClient,
    mailbox: &MailboxRef,
    item: &DiaryItem,
    series: &Series,
    stamp: &Stamp,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    let name = stamp.encode();
    let plain = DiaryItem {
        series: None,
        ..item.clone()
    };
    let body = series_write::series_create(
        &plain,
        &series.recurrence,
        stamp,
        &transaction_id(mailbox, stamp),
    )
    .map_err(|e| unexpressible(&name, &e))?;
    let response = client
        .write(
            Method::POST,
            mailbox,
            &format!("{}/events", GraphClient::mailbox_path(mailbox)),
            &delta::prefer(Kind::Diary, None),
            Some(&body),
            Retry::Safe,
            None,
        )
        .await?;
    let answer = response_json(&response, "event")?;
    let id = answer
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| wire::malformed("a created event without id"))?
        .to_string();
    let window = client.series_window(first_start(item));
    occurrences(client, mailbox, &id, item, series, &window, false).await?;
    read_back(client, mailbox, &id).await
}

/// Brings the occurrences of series `id` in `window` to `target`'s: each exception that
/// differs is written (PATCH of the occurrence), each cancellation made (DELETE of it); with
/// `restore`, an exception present but absent from `target` (and not cancelled there) is
/// written back to the series' content and time. Occurrence writes carry no `If-Match` (the
/// master's guarded the update).
async fn occurrences(
    client: &GraphClient,
    mailbox: &MailboxRef,
    id: &str,
    target: &DiaryItem,
    series: &Series,
    window: &Window,
    restore: bool,
) -> Result<(), ConnectorError> {
    let all_day = matches!(target.when, When::AllDay { .. });
    let Some(instances) = instances(client, mailbox, id, window).await? else {
        return Err(item_error(
            "the series was deleted while it was written",
            id,
        ));
    };
    let mut by_key: BTreeMap<Timestamp, &Value> = BTreeMap::new();
    for instance in &instances {
        let original = instance
            .get("originalStart")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
            .or_else(|| wire::instant(&instance["start"]));
        if let Some(original) = original {
            by_key.insert(series::occurrence_key(original, all_day), instance);
        }
    }
    let prefer = delta::prefer(Kind::Diary, None);
    let mut writes: Vec<(Method, String, Option<Value>)> = Vec::new();
    for (key, exception) in &series.exceptions {
        if !in_window(*key, window) || series.cancelled.contains(key) {
            continue;
        }
        let Some(current) = by_key.get(key) else {
            tracing::warn!(mailbox = mailbox.key(), item = id, occurrence = %key, "no occurrence to write the exception to (cancelled in Outlook, or not on the pattern)");
            continue;
        };
        let wanted = DiaryItem {
            task_type: target.task_type.clone(),
            series: None,
            ..exception.clone()
        };
        if let Some(patch) = series_write::exception_patch(current, &wanted)
            && let Some(oid) = current.get("id").and_then(Value::as_str)
        {
            writes.push((
                Method::PATCH,
                series_write::occurrence_path(mailbox, oid),
                Some(patch),
            ));
        }
    }
    for key in &series.cancelled {
        if !in_window(*key, window) {
            continue;
        }
        if let Some(oid) = by_key
            .get(key)
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
        {
            writes.push((
                Method::DELETE,
                series_write::occurrence_path(mailbox, oid),
                None,
            ));
        }
    }
    if restore {
        for (key, current) in &by_key {
            if kind_of(current) != "exception"
                || !in_window(*key, window)
                || series.exceptions.contains_key(key)
                || series.cancelled.contains(key)
            {
                continue;
            }
            let wanted = pattern_occurrence(target, *key);
            if let Some(patch) = series_write::exception_patch(current, &wanted)
                && let Some(oid) = current.get("id").and_then(Value::as_str)
            {
                writes.push((
                    Method::PATCH,
                    series_write::occurrence_path(mailbox, oid),
                    Some(patch),
                ));
            }
        }
    }
    for (method, path, body) in writes {
        let deleting = method == Method::DELETE;
        let response = client
            .write(
                method,
                mailbox,
                &path,
                &prefer,
                body.as_ref(),
                Retry::Safe,
                None,
            )
            .await?;
        // A cancellation already made (a repeated write) is done.
        if response.status.is_success() || (deleting && response.status == StatusCode::NOT_FOUND) {
            continue;
        }
        return Err(wire::classify(
            response.status,
            &response.body,
            Op::Write,
            id,
        ));
    }
    Ok(())
}

fn conflict(id: &str) -> ConnectorError {
    ConnectorError::Conflict {
        service: Service::Graph,
        item: id.to_string(),
    }
}

/// `target` as the series window shows it, its rule canonical: what a read would report
/// once the series holds it.
fn as_read(target: &DiaryItem, series: &Series, window: &Window) -> Option<DiaryItem> {
    let first = first_date(target, &series.recurrence)?;
    Some(DiaryItem {
        series: Some(Box::new(Series {
            recurrence: canonical(&series.recurrence, first),
            exceptions: series
                .exceptions
                .iter()
                .filter(|(k, _)| in_window(**k, window) && !series.cancelled.contains(k))
                .map(|(k, e)| {
                    (
                        *k,
                        DiaryItem {
                            task_type: target.task_type.clone(),
                            organized_by_other: target.organized_by_other,
                            series: None,
                            ..e.clone()
                        },
                    )
                })
                .collect(),
            cancelled: series
                .cancelled
                .iter()
                .copied()
                .filter(|k| in_window(*k, window))
                .collect(),
        })),
        ..target.clone()
    })
}

/// The PATCH of the master that brings its content, first occurrence and rule to
/// `target`'s; `None`: it holds them.
fn master_patch(
    master: &Value,
    current: &DiaryItem,
    target: &DiaryItem,
    series: &Series,
    id: &str,
) -> Result<Option<Value>, ConnectorError> {
    let plain = DiaryItem {
        series: None,
        ..target.clone()
    };
    let mut patch = match map::event_patch(master, &plain) {
        Some(Value::Object(p)) => p,
        _ => serde_json::Map::new(),
    };
    for key in ["start", "end", "isAllDay"] {
        patch.remove(key);
    }
    let now_rule = current.series.as_ref().map(|s| &s.recurrence);
    let wanted_rule = first_date(target, &series.recurrence)
        .map(|d| canonical(&series.recurrence, d))
        .ok_or_else(|| item_error("the series' time zone is not known", id))?;
    if current.when != target.when || now_rule != Some(&wanted_rule) {
        let times =
            series_write::series_times(&plain, &wanted_rule).map_err(|e| unexpressible(id, &e))?;
        if let Value::Object(times) = times {
            patch.extend(times);
        }
    }
    Ok((!patch.is_empty()).then_some(Value::Object(patch)))
}

/// Brings series `id` to `target` (contract 6), if it is still at `expected`: a
/// [`ConnectorError::Conflict`] when it changed since (read first, or met by `If-Match` on the
/// master in the gap).
pub(super) async fn update(
    client: &GraphClient,
    mailbox: &MailboxRef,
    id: &MailboxItemId,
    target: &DiaryItem,
    series: &Series,
    expected: Option<&Version>,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    let id = id.0.as_str();
    let Some(master_value) = master(client, mailbox, id).await? else {
        return Err(item_error("the series no longer exists", id));
    };
    if !is_master(&master_value) {
        return Err(item_error(
            "a single event is not turned into a recurring series (nor an occurrence into one); \
             the item is left as it is",
            id,
        ));
    }
    if master_value["isOrganizer"].as_bool() == Some(false) {
        return Err(item_error(
            "a meeting organised by someone else is not rewritten",
            id,
        ));
    }
    let Some(current) = read(client, mailbox, &master_value).await? else {
        return Err(item_error("the series no longer exists", id));
    };
    let Item::Diary(now) = &current.item else {
        return Err(wire::malformed("a series read as another kind"));
    };
    let window = client.series_window(first_start(now));
    let wanted = as_read(target, series, &window)
        .ok_or_else(|| item_error("the series' time zone is not known", id))?;
    // Holds it already (whoever wrote it): nothing is overwritten.
    if Item::Diary(wanted.clone()).content_hash() == current.item.content_hash() {
        return Ok(written(current));
    }
    if let Some(expected) = expected
        && !expected.0.is_empty()
        && *expected != current.version
    {
        return Err(conflict(id));
    }
    if let Some(patch) = master_patch(&master_value, now, target, series, id)? {
        let guard = expected.map(master_version).as_ref().and_then(if_match);
        let response = client
            .write(
                Method::PATCH,
                mailbox,
                &delta::item_path(mailbox, Kind::Diary, id, false),
                &delta::prefer(Kind::Diary, None),
                Some(&patch),
                Retry::Safe,
                guard.as_deref(),
            )
            .await?;
        if response.status == StatusCode::PRECONDITION_FAILED {
            // Our own earlier attempt (an answer lost), or someone else's change.
            let Some(again) = master(client, mailbox, id).await? else {
                return Err(item_error("the series no longer exists", id));
            };
            let now = read(client, mailbox, &again)
                .await?
                .and_then(|o| match o.item {
                    Item::Diary(d) => Some(d),
                    _ => None,
                })
                .ok_or_else(|| item_error("the series no longer exists", id))?;
            if master_patch(&again, &now, target, series, id)?.is_some() {
                return Err(conflict(id));
            }
        } else if !response.status.is_success() {
            return Err(wire::classify(
                response.status,
                &response.body,
                Op::Write,
                id,
            ));
        }
    }
    if let Some(now_series) = &now.series {
        for key in now_series.cancelled.difference(&series.cancelled) {
            tracing::warn!(mailbox = mailbox.key(), item = id, occurrence = %key, "a cancelled occurrence cannot be restored through Graph; it stays cancelled");
        }
    }
    occurrences(client, mailbox, id, target, series, &window, true).await?;
    read_back(client, mailbox, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_version_gives_back_the_masters_change_key() {
        let v = Version("AAAA+/x==~0123456789abcdef".into());
        assert_eq!(master_version(&v), Version("AAAA+/x==".into()));
        let single = Version("AAAA+/x==".into());
        assert_eq!(master_version(&single), single);
    }

    #[test]
    fn weekly_rules_with_interval_one_start_their_weeks_on_sunday() {
        use crate::connector::recurrence::{Range, RangeEnd};
        let r = Recurrence {
            pattern: Pattern::Weekly {
                interval: 1,
                days: vec![DayOfWeek::Friday, DayOfWeek::Monday, DayOfWeek::Friday],
                first_day_of_week: DayOfWeek::Monday,
            },
            range: Range {
                start: jiff::civil::date(2026, 1, 1),
                end: RangeEnd::Never,
            },
            time_zone: "Europe/Oslo".into(),
        };
        let c = canonical(&r, jiff::civil::date(2026, 1, 2));
        assert_eq!(
            c.pattern,
            Pattern::Weekly {
                interval: 1,
                days: vec![DayOfWeek::Monday, DayOfWeek::Friday],
                first_day_of_week: DayOfWeek::Sunday,
            }
        );
        assert_eq!(c.range.start, jiff::civil::date(2026, 1, 2));
    }
}
