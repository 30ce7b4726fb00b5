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

    pub fn all(&self) -> Vec<LoggedRequest> {
        self.query(&LogQuery::default())
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}
