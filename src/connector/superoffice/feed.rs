//! The rank-wide change feed for diary items and to-dos: one `FindAppointment` query per
//! kind for all the rank's associates (`associateId associateIsOneOf (...)`, split only when
//! the URL would be too long) with `updatedDate afterTime` the cursor's bound, in primary-key
//! order, paged with `$top`/`$skip`; each changed item is then read in full
//! (`GET Appointment/{id}`: the list has no `Private`, `IsAlldayEvent` or alarm lead time).
//! Deletions come from the travel transaction log (table 9, type Delete), unattributed, read
//! by row id.
//!
//! Diary items are `rawType` 1 (inDiary) whose task record type is not ToDo; to-dos are
//! appointments whose task has record type ToDo, whatever their type.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::cursor::{AppointmentCursor, Feed, ITEM_LAG, LOG_LAG, LogFeed, Round};
use super::query::{self, ListQuery, Listing};
use super::{SuperOfficeClient, by_associate, fetch_all, time};
use crate::connector::model::{CrmId, Cursor, Item, Kind, Observed, Window};
use crate::connector::{ConnectorError, RankChanges};

pub const TABLE_PERSON: u32 = 6;
pub const TABLE_APPOINTMENT: u32 = 9;
pub const TTL_DELETE: u32 = 4864;
/// Log rows are small; a large page keeps an idle round to one request.
const LOG_PAGE: usize = 1000;
/// A log answer serves the other kinds of the same round (diary items and to-dos share table
/// 9) if they ask within this time; each kind uses an answer once.
const LOG_CACHE_TTL: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct CachedLog {
    at: Instant,
    /// The rows above this id.
    after: Option<u64>,
    /// The server's time when it answered.
    server_time: Option<Timestamp>,
    /// (log row id, record id)
    rows: Vec<(u64, u32)>,
    /// The kinds this answer has served.
    used_by: Vec<Kind>,
}

const LOG_ID: &str = "traveltransactionlog.traveltransactionlog_id";

#[derive(Default)]
pub(crate) struct LogCache(Mutex<HashMap<u32, CachedLog>>);

/// The `$filter` terms that pick a kind.
pub(crate) fn kind_terms(kind: Kind) -> Vec<String> {
    match kind {
        Kind::Task => vec!["recordType is 'ToDo'".to_string()],
        _ => vec![
            "rawType eq 1".to_string(),
            "recordType isNot 'ToDo'".to_string(),
        ],
    }
}

/// The window as list filters, a day wider on each side (all-day items are dates, and the
/// list cannot tell them from timed ones): diary items that overlap it, to-dos due in it.
fn window_terms(kind: Kind, window: &Window) -> Vec<String> {
    let day = SignedDuration::from_hours(24);
    let from = time::literal(window.start.checked_sub(day).unwrap_or(window.start));
    let to = time::literal(window.end.checked_add(day).unwrap_or(window.end));
    match kind {
        Kind::Task => vec![
            format!("endDate afterTime '{from}'"),
            format!("endDate beforeTime '{to}'"),
        ],
        _ => vec![
            format!("endDate afterTime '{from}'"),
            format!("date beforeTime '{to}'"),
        ],
    }
}

/// What change listings of appointments select.
const LIST_COLUMNS: &str = "appointmentId,associateId,updatedDate,recurrenceRuleId";

/// Rows of series (by their rule) and single rows, apart.
fn split_rows(rows: Vec<u32>, rules: &HashMap<u32, u32>) -> (Vec<u32>, Vec<u32>) {
    let mut single = Vec::new();
    let mut series = Vec::new();
    for row in rows {
        match rules.get(&row) {
            Some(rule) => series.push(*rule),
            None => single.push(row),
        }
    }
    (single, series)
}

/// The appointments this client created whose pair is committed, and the `UpdatedDate` the
/// create gave them. A feed round that lists a row at exactly that time lists the client's
/// own create: reading it in full would only find what the create's answer already said
/// (after an initial sync, one GET per item created, at the tenant's call rate). A later edit
/// changes the time and is read as usual. Registered only after the pair's commit
/// (`CrmConnector::create_committed`): a pass cut off before it must see its create again to
/// settle it. Creates only: a user's edit in the same second as crmsync's update
/// (`UpdatedDate` has whole seconds) must not pass for an echo; nobody edits an appointment
/// in the second it is created. Memory only: after a restart the creates are read back once.
#[derive(Debug, Default)]
pub(crate) struct OwnWrites(std::sync::Mutex<HashMap<u32, Timestamp>>);

/// Entries kept at most; past it the oldest half goes (a write not yet echoed is then read).
const OWN_WRITES_KEPT: usize = 200_000;

impl OwnWrites {
    pub(crate) fn remember(&self, id: u32, updated: Timestamp) {
        let Ok(mut writes) = self.0.lock() else {
            return;
        };
        if writes.len() >= OWN_WRITES_KEPT {
            let mut times: Vec<Timestamp> = writes.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            writes.retain(|_, at| *at > cut);
        }
        writes.insert(id, updated);
    }

    /// Whether row `id` listed at `at` is this client's own write (forgotten once matched,
    /// and once the row has moved on).
    pub(crate) fn is_echo(&self, id: u32, at: Timestamp) -> bool {
        let Ok(mut writes) = self.0.lock() else {
            return false;
        };
        match writes.get(&id) {
            Some(written) if *written == at => {
                writes.remove(&id);
                true
            }
            Some(written) if *written < at => {
                writes.remove(&id);
                false
            }
            _ => false,
        }
    }
}

/// The server's time when the first listing was answered.
pub(crate) fn server_time(listings: &[Listing]) -> Option<Timestamp> {
    listings.first().and_then(|l| l.server_time)
}

/// (id, time) of every row, and the newest time on the first page.
pub(crate) fn round_of(
    listings: &[Listing],
    id_col: &str,
    at_col: &str,
    probe: Option<Timestamp>,
) -> Round {
    let pair =
        |row: &serde_json::Value| Some((query::number(row, id_col)?, query::instant(row, at_col)?));
    Round {
        probe,
        // The first chunk's query ran first: its first page, and the server's time when it
        // answered, bound them all.
        first_page_max: listings.first().and_then(|l| {
            l.first_page
                .iter()
                .filter_map(pair)
                .map(|(_, at)| at)
                .max()
                .max(l.server_time)
        }),
        rows: listings
            .iter()
            .flat_map(|l| l.rows.iter().filter_map(pair))
            .collect(),
    }
}

impl SuperOfficeClient {
    /// Row -> rule of the listed rows of series (diary items only), remembered for deletions.
    fn rules_of_rows(&self, listings: &[Listing], kind: Kind) -> HashMap<u32, u32> {
        let mut out = HashMap::new();
        if kind != Kind::Diary {
            return out;
        }
        for row in listings.iter().flat_map(|l| l.rows.iter()) {
            if let (Some(id), Some(rule)) = (
                query::id(row, "appointmentId"),
                query::id(row, "recurrenceRuleId").filter(|r| *r != 0),
            ) {
                out.insert(id, rule);
                self.remember_rows(rule, [id]);
            }
        }
        out
    }

    fn appointment_list(&self, associates: &[u32], kind: Kind, select: &str) -> ListQuery {
        let mut q = ListQuery::new("Appointment", select, "appointmentId")
            .associates("associateId", associates)
            .top(self.options.page_size);
        for term in kind_terms(kind) {
            q = q.filter(term);
        }
        q
    }

    /// Where the travel log stands now: after the newest row older than the margin before
    /// `server_time` (the newest row at all when that is unknown), so that a deletion still
    /// committing while a listing began is read in the next round.
    pub(crate) async fn log_start(
        &self,
        server_time: Option<Timestamp>,
    ) -> Result<LogFeed, ConnectorError> {
        let mut q = ListQuery::new("Archive/dynamic", LOG_ID, &format!("{LOG_ID} desc")).top(1);
        q.one_page = true;
        if let Some(before) = server_time.and_then(|t| t.checked_sub(LOG_LAG).ok()) {
            q = q.filter(format!(
                "traveltransactionlog.ttime beforeTime '{}'",
                time::literal(before)
            ));
        }
        let listings = self.list(&q).await?;
        let newest = listings
            .iter()
            .flat_map(|l| l.rows.iter())
            .filter_map(|row| query::number(row, LOG_ID))
            .max();
        Ok(LogFeed::at(newest))
    }

    /// Records of `table` deleted since the log position, and the position after them.
    pub(crate) async fn deleted_since(
        &self,
        table: u32,
        log: &LogFeed,
        kind: Kind,
    ) -> Result<(Vec<CrmId>, LogFeed), ConnectorError> {
        let cached = {
            let mut cache = self.log_cache.0.lock().await;
            let usable = cache.get_mut(&table).filter(|c| {
                c.at.elapsed() < LOG_CACHE_TTL
                    && !c.used_by.contains(&kind)
                    && match (c.after, log.after) {
                        (None, _) => true,
                        (Some(a), Some(b)) => a <= b,
                        (Some(_), None) => false,
                    }
            });
            usable.map(|c| {
                c.used_by.push(kind);
                c.clone()
            })
        };
        let listing = match cached {
            Some(c) => c,
            None => {
                let mut q = ListQuery::new(
                    "Archive/dynamic",
                    &format!("{LOG_ID},traveltransactionlog.record_id"),
                    LOG_ID,
                )
                .top(LOG_PAGE);
                if let Some(after) = log.after {
                    q = q.filter(format!("{LOG_ID} gt {after}"));
                }
                q = q
                    .filter(format!("traveltransactionlog.tablenumber eq {table}"))
                    .filter(format!("traveltransactionlog.type eq {TTL_DELETE}"));
                let listings = self.list(&q).await?;
                let rows = listings
                    .iter()
                    .flat_map(|l| l.rows.iter())
                    .filter_map(|row| {
                        Some((
                            query::number(row, LOG_ID)?,
                            query::id(row, "traveltransactionlog.record_id")?,
                        ))
                    })
                    .collect();
                let fresh = CachedLog {
                    at: Instant::now(),
                    after: log.after,
                    server_time: server_time(&listings),
                    rows,
                    used_by: vec![kind],
                };
                self.log_cache.0.lock().await.insert(table, fresh.clone());
                fresh
            }
        };
        let rows: Vec<(u64, u32)> = listing
            .rows
            .iter()
            .filter(|(row, _)| log.after.is_none_or(|a| *row > a))
            .copied()
            .collect();
        let mut deleted: Vec<CrmId> = rows
            .iter()
            .filter(|(row, _)| log.is_new(*row))
            .map(|(_, record)| CrmId(*record))
            .collect();
        deleted.sort_unstable();
        deleted.dedup();
        let ids: Vec<u64> = rows.iter().map(|(row, _)| *row).collect();
        // Without the server's time, the client's clock decides when a row is passed over.
        let now = listing.server_time.or_else(|| Some((self.options.clock)()));
        Ok((deleted, log.advance(&ids, now)))
    }

    /// Reads the listed appointments in full, keeping those of `kind` owned by `associates`.
    async fn fetch_appointments(
        &self,
        ids: Vec<u32>,
        kind: Kind,
        associates: &BTreeSet<u32>,
        window: Option<&Window>,
    ) -> Result<Vec<(u32, Observed<CrmId>)>, ConnectorError> {
        fetch_all(ids, self.options.fetch_concurrency, |id| async move {
            let (observed, fetched) = match self.read_appointment(CrmId(id)).await {
                Ok(Some(found)) => found,
                // Deleted meanwhile (the travel log tells), or no longer of a synced kind.
                Ok(None) => return Ok(None),
                // One unreadable item must not hold up the rank; it is read again when it
                // changes, and `get` reports its error.
                Err(ConnectorError::Item { item, what, .. }) => {
                    tracing::warn!(item, what, "SuperOffice appointment skipped");
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let owner = fetched.appointment.associate;
            let in_window = match (&observed.item, window) {
                (Item::Diary(d), Some(w)) => d.overlaps(w),
                _ => true,
            };
            Ok(
                (observed.item.kind() == kind && associates.contains(&owner) && in_window)
                    .then_some((owner, observed)),
            )
        })
        .await
    }

    /// Reads the series of `rules`, keeping those owned by `associates` (and, with a window,
    /// overlapping it). Also returns the rows read (for the feed's bookkeeping) and the rules
    /// that have no rows any more.
    #[allow(clippy::type_complexity)]
    async fn fetch_series(
        &self,
        rules: Vec<u32>,
        associates: &BTreeSet<u32>,
        window: Option<&Window>,
    ) -> Result<(Vec<(u32, Observed<CrmId>)>, Vec<(u64, Timestamp)>, Vec<u32>), ConnectorError>
    {
        let read = fetch_all(rules, self.options.fetch_concurrency, |rule| async move {
            match self.read_series(rule).await {
                Ok(found) => Ok(Some((rule, found))),
                Err(ConnectorError::Item { item, what, .. }) => {
                    tracing::warn!(item, what, "SuperOffice series skipped");
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        })
        .await?;
        let mut items = Vec::new();
        let mut rows = Vec::new();
        let mut gone = Vec::new();
        for (rule, found) in read {
            let Some(series) = found else {
                gone.push(rule);
                continue;
            };
            rows.extend(
                series
                    .row_versions
                    .iter()
                    .map(|(r, at)| (u64::from(*r), *at)),
            );
            let in_window = match (&series.observed.item, window) {
                (Item::Diary(d), Some(w)) => d.overlaps(w),
                _ => true,
            };
            if associates.contains(&series.associate) && in_window {
                items.push((series.associate, series.observed));
            }
        }
        Ok((items, rows, gone))
    }

    pub(crate) async fn appointment_changes(
        &self,
        associates: &[u32],
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> Result<RankChanges, ConnectorError> {
        let set: BTreeSet<u32> = associates.iter().copied().collect();
        if kind == Kind::Diary {
            self.set_series_window(*window);
        }
        let Some(previous) = cursor.and_then(|c| AppointmentCursor::decode(c, kind)) else {
            if cursor.is_some() {
                tracing::warn!(
                    ?kind,
                    "unreadable SuperOffice cursor; listing everything again"
                );
            }
            return self
                .appointment_listing(associates, &set, kind, window)
                .await;
        };
        let mut q = self.appointment_list(associates, kind, LIST_COLUMNS);
        if let Some(since) = previous.items.since {
            q = q.filter(format!("updatedDate afterTime '{}'", time::literal(since)));
        }
        let listings = self.list(&q).await?;
        let mut round = round_of(&listings, "appointmentId", "updatedDate", None);
        let rules = self.rules_of_rows(&listings, kind);
        let new_rows: Vec<u32> = round
            .rows
            .iter()
            .filter(|(id, at)| previous.items.is_new(*id, *at))
            .filter_map(|(id, at)| Some((u32::try_from(*id).ok()?, *at)))
            .filter(|(id, at)| !self.own_writes.is_echo(*id, *at))
            .map(|(id, _)| id)
            .collect();
        let (mut wanted, mut series_rules) = split_rows(new_rows, &rules);
        let (deleted_rows, log) = self
            .deleted_since(TABLE_APPOINTMENT, &previous.log, kind)
            .await?;
        // A deleted row of a series (known from an earlier read) changes its series.
        let mut deleted = Vec::new();
        for row in deleted_rows {
            match self.rule_of_row(row.0).filter(|_| kind == Kind::Diary) {
                Some(rule) => series_rules.push(rule),
                None => deleted.push(row),
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        series_rules.sort_unstable();
        series_rules.dedup();
        let mut changed = self.fetch_appointments(wanted, kind, &set, None).await?;
        // What was fetched is newer than its list row: remember that version as seen.
        round
            .rows
            .extend(changed.iter().map(|(_, o)| (u64::from(o.id.0), o.modified)));
        let (series, series_rows, gone) = self.fetch_series(series_rules, &set, None).await?;
        changed.extend(series);
        round.rows.extend(series_rows);
        deleted.extend(gone.into_iter().map(CrmId::series));
        let items = previous.items.advance(&round, ITEM_LAG);
        tracing::debug!(
            ?kind,
            changed = changed.len(),
            deleted = deleted.len(),
            "SuperOffice changes read"
        );
        Ok(RankChanges {
            by_associate: by_associate(changed),
            deleted,
            cursor: AppointmentCursor::new(kind, items, log).encode(),
            full: false,
        })
    }

    /// Without a cursor: every item of the kind in the window, and a cursor from now on.
    async fn appointment_listing(
        &self,
        associates: &[u32],
        set: &BTreeSet<u32>,
        kind: Kind,
        window: &Window,
    ) -> Result<RankChanges, ConnectorError> {
        let mut q = self.appointment_list(associates, kind, LIST_COLUMNS);
        for term in window_terms(kind, window) {
            q = q.filter(term);
        }
        let listings = self.list(&q).await?;
        // The cursor starts from the server's time when the listing began.
        let mut round = round_of(&listings, "appointmentId", "updatedDate", None);
        let log = self.log_start(server_time(&listings)).await?;
        let rules = self.rules_of_rows(&listings, kind);
        let all: Vec<u32> = round
            .rows
            .iter()
            .filter_map(|(id, _)| u32::try_from(*id).ok())
            .collect();
        let (mut ids, mut series_rules) = split_rows(all, &rules);
        ids.sort_unstable();
        ids.dedup();
        series_rules.sort_unstable();
        series_rules.dedup();
        let mut items = self
            .fetch_appointments(ids, kind, set, Some(window))
            .await?;
        round
            .rows
            .extend(items.iter().map(|(_, o)| (u64::from(o.id.0), o.modified)));
        let (series, series_rows, _) = self.fetch_series(series_rules, set, Some(window)).await?;
        items.extend(series);
        round.rows.extend(series_rows);
        let feed = Feed::default().advance(&round, ITEM_LAG);
        Ok(RankChanges {
            by_associate: by_associate(items),
            deleted: Vec::new(),
            cursor: AppointmentCursor::new(kind, feed, log).encode(),
            full: true,
        })
    }

    /// The safety net: ids of every item of `kind` per associate in the window (a day wider
    /// on each side, so that nothing inside it is left out).
    pub(crate) async fn appointment_ids(
        &self,
        associates: &[u32],
        kind: Kind,
        window: &Window,
    ) -> Result<BTreeMap<u32, Vec<CrmId>>, ConnectorError> {
        let mut q = self.appointment_list(
            associates,
            kind,
            "appointmentId,associateId,recurrenceRuleId",
        );
        for term in window_terms(kind, window) {
            q = q.filter(term);
        }
        let mut out: BTreeMap<u32, Vec<CrmId>> =
            associates.iter().map(|a| (*a, Vec::new())).collect();
        for listing in self.list(&q).await? {
            for row in listing.rows {
                if let (Some(id), Some(owner)) = (
                    query::id(&row, "appointmentId"),
                    query::id(&row, "associateId"),
                ) && let Some(ids) = out.get_mut(&owner)
                {
                    // A row of a series stands for its series, reported once.
                    match query::id(&row, "recurrenceRuleId").filter(|r| *r != 0) {
                        Some(rule) if kind == Kind::Diary => ids.push(CrmId::series(rule)),
                        _ => ids.push(CrmId(id)),
                    }
                }
            }
        }
        for ids in out.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }
        Ok(out)
    }
}
