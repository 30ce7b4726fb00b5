//! The request log: every request an emulator answered, for tests and benchmarks to count
//! and inspect (which mailbox, which rank's daemon, how many round trips).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::Emulator;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Position in the log, from 1.
    pub seq: u64,
    /// Sandbox time the request arrived.
    pub at: jiff::Timestamp,
    pub emulator: Emulator,
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    /// The mailbox (Graph user id) the request was for, if any.
    pub mailbox: Option<String>,
    pub status: u16,
    pub duration_ms: f64,
    /// The injected fault that answered it, if one did.
    pub fault: Option<String>,
    /// The `$batch` request this one was part of.
    pub batch: Option<u64>,
    /// The client's `User-Agent` (a rank daemon names its rank there).
    #[serde(default)]
    pub client: Option<String>,
}

/// Counts of one emulator's logged requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideSummary {
    /// Every request, `$batch` parts counted one by one (what the service's limits count).
    pub requests: u64,
    /// HTTP round trips (a `$batch` is one, its parts none).
    pub round_trips: u64,
    /// Answered 429.
    pub throttled: u64,
    /// Requests other than GET (a `$batch` envelope is not one; its parts are).
    pub writes: u64,
    pub first_at: Option<jiff::Timestamp>,
    pub last_at: Option<jiff::Timestamp>,
    pub last_write_at: Option<jiff::Timestamp>,
    /// Sum of the emulator's handling times.
    pub busy_ms: f64,
    /// Round trips by route: method and path without the query, ids as `{id}` (where the
    /// requests went, for finding what a tick spends them on).
    pub routes: std::collections::BTreeMap<String, u64>,
}

/// `GET /v1.0/users/{id}/calendarView/delta` for a logged request: numbers and long ids as
/// `{id}`, the query left out.
fn route(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| {
            let numeric = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let long_id = s.len() >= 20 && !s.starts_with('$');
            if numeric || long_id { "{id}" } else { s }
        })
        .collect();
    format!("{method} {}", segments.join("/"))
}

/// Counts over a part of the log (`GET /_sandbox/requests/summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogSummary {
    pub graph: SideSummary,
    pub superoffice: SideSummary,
    /// Mailboxes with at least one request, and the most requests one mailbox got (`$batch`
    /// parts counted one by one, the envelopes not).
    pub mailboxes: u64,
    pub max_per_mailbox: u64,
    /// The newest sequence number counted (0: none): the `since` of a next summary.
    pub last_seq: u64,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    next: AtomicU64,
    entries: Mutex<Vec<LoggedRequest>>,
}

/// Which entries to return.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogQuery {
    /// Only entries with a sequence number above this.
    pub since: Option<u64>,
    pub emulator: Option<Emulator>,
    pub mailbox: Option<String>,
}

impl RequestLog {
    /// Reserves the next sequence number (taken when a request arrives).
    pub fn next_seq(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn push(&self, entry: LoggedRequest) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(entry);
        }
    }

    pub fn query(&self, query: &LogQuery) -> Vec<LoggedRequest> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        let mut found: Vec<LoggedRequest> = entries
            .iter()
            .filter(|e| query.since.is_none_or(|s| e.seq > s))
            .filter(|e| query.emulator.is_none_or(|em| e.emulator == em))
            .filter(|e| {
                query
                    .mailbox
                    .as_deref()
                    .is_none_or(|m| e.mailbox.as_deref() == Some(m))
            })
            .cloned()
            .collect();
        // Entries are written when their response is done, so not always in arrival order.
        found.sort_by_key(|e| e.seq);
        found
    }

    /// Counts over the entries `query` selects, without the entries themselves: what a
    /// benchmark of thousands of mailboxes needs from a log of hundreds of thousands.
    pub fn summary(&self, query: &LogQuery) -> LogSummary {
        let mut summary = LogSummary::default();
        let Ok(entries) = self.entries.lock() else {
            return summary;
        };
        let mut per_mailbox: std::collections::HashMap<&str, u64> =
            std::collections::HashMap::new();
        for e in entries
            .iter()
            .filter(|e| query.since.is_none_or(|s| e.seq > s))
            .filter(|e| query.emulator.is_none_or(|em| e.emulator == em))
        {
            let side = match e.emulator {
                Emulator::Graph => &mut summary.graph,
                Emulator::SuperOffice => &mut summary.superoffice,
            };
            summary.last_seq = summary.last_seq.max(e.seq);
            side.requests += 1;
            if e.batch.is_none() {
                side.round_trips += 1;
                *side.routes.entry(route(&e.method, &e.path)).or_default() += 1;
            }
            if e.status == 429 {
                side.throttled += 1;
            }
            if e.method != "GET" && !e.path.contains("$batch") {
                side.writes += 1;
                side.last_write_at = side.last_write_at.max(Some(e.at));
            }
            side.first_at = Some(side.first_at.map_or(e.at, |f| f.min(e.at)));
            side.last_at = side.last_at.max(Some(e.at));
            side.busy_ms += e.duration_ms;
            if let Some(m) = &e.mailbox
                && !e.path.contains("$batch")
            {
                *per_mailbox.entry(m.as_str()).or_default() += 1;
            }
        }
        summary.mailboxes = per_mailbox.len() as u64;
        summary.max_per_mailbox = per_mailbox.values().copied().max().unwrap_or(0);
        summary
    }

    pub fn all(&self) -> Vec<LoggedRequest> {
        self.query(&LogQuery::default())
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(log: &RequestLog, emulator: Emulator, method: &str, path: &str) -> LoggedRequest {
        LoggedRequest {
            seq: log.next_seq(),
            at: "2026-12-03T10:00:00Z".parse().unwrap(),
            emulator,
            method: method.into(),
            path: path.into(),
            mailbox: (emulator == Emulator::Graph).then(|| "m1".to_string()),
            status: 200,
            duration_ms: 1.5,
            fault: None,
            batch: None,
            client: None,
        }
    }

    #[test]
    fn the_summary_counts_batch_parts_as_requests_and_envelopes_as_round_trips() {
        let log = RequestLog::default();
        let envelope = entry(&log, Emulator::Graph, "POST", "/v1.0/$batch");
        let batch = envelope.seq;
        log.push(LoggedRequest {
            mailbox: None,
            ..envelope
        });
        for _ in 0..3 {
            log.push(LoggedRequest {
                batch: Some(batch),
                ..entry(&log, Emulator::Graph, "PATCH", "/v1.0/users/m1/events/e")
            });
        }
        log.push(LoggedRequest {
            status: 429,
            ..entry(&log, Emulator::SuperOffice, "GET", "/api/v1/Appointment")
        });
        let all = log.summary(&LogQuery::default());
        assert_eq!(
            (all.graph.requests, all.graph.round_trips, all.graph.writes),
            (4, 1, 3)
        );
        assert_eq!(
            (
                all.superoffice.requests,
                all.superoffice.throttled,
                all.superoffice.writes
            ),
            (1, 1, 0)
        );
        assert_eq!(
            (all.mailboxes, all.max_per_mailbox, all.last_seq),
            (1, 3, 5)
        );
        let later = log.summary(&LogQuery {
            since: Some(4),
            ..LogQuery::default()
        });
        assert_eq!((later.graph.requests, later.superoffice.requests), (0, 1));
    }
}
