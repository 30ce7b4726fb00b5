//! The CRM change cursor: where each of a kind's feeds (items by `updatedDate`, deletions in
//! the travel transaction log by `ttime`) stands, as compact JSON in an opaque [`Cursor`].
//!
//! A feed keeps `since`, the lower bound of its next query (`afterTime`, strict), `high`, the
//! newest time it has read, and `seen`, the (id, time) pairs it already reported above
//! `since`. Each round re-reads a margin below what it has seen ([`ITEM_LAG`]) and skips what
//! `seen` holds, so an item written in the same second as the watermark, committed a moment
//! late, or changed while the pages were read is found by a later round, and an unchanged one
//! is not fetched twice.
//!
//! Why nothing is missed: a row that a round does not return was written after that round's
//! query ran (its first page, which fixed the primary keys the later pages use). The next
//! `since` never passes the newest time on that first page, nor the newest time read in
//! earlier rounds: both were written before the query ran. So the next round's query, less
//! the margin, still covers the row.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::connector::model::{Cursor, Kind};

/// Re-read this far below the watermark: rows committed late or stamped by another node's clock.
pub const ITEM_LAG: SignedDuration = SignedDuration::from_secs(120);
/// The travel log's `ttime` is a local time of the tenant's zone; in the hour the clocks go
/// back it is ambiguous, so the log is re-read an hour and a little further back.
pub const LOG_LAG: SignedDuration = SignedDuration::from_secs(65 * 60);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// (id, time in milliseconds), sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<(u64, i64)>,
}

/// What one round read: the newest time known before its query ran (a probe), the newest on
/// its first page, and every row.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub probe: Option<Timestamp>,
    pub first_page_max: Option<Timestamp>,
    pub rows: Vec<(u64, Timestamp)>,
}

impl Feed {
    pub fn is_new(&self, id: u64, at: Timestamp) -> bool {
        let ms = at.as_millisecond();
        self.seen
            .binary_search_by(|(i, _)| i.cmp(&id))
            .map(|pos| self.seen[pos].1 != ms)
            .unwrap_or(true)
    }

    /// The feed after `round`.
    pub fn advance(&self, round: &Round, lag: SignedDuration) -> Feed {
        let settled = self.high.max(round.probe);
        let bound = settled.max(round.first_page_max);
        let since = self.since.max(bound.and_then(|b| b.checked_sub(lag).ok()));
        let newest = round.rows.iter().map(|(_, at)| *at).max();
        let high = settled.max(newest);
        let mut seen: Vec<(u64, i64)> = round
            .rows
            .iter()
            .filter(|(_, at)| since.is_none_or(|s| *at > s))
            .map(|(id, at)| (*id, at.as_millisecond()))
            .collect();
        // The newest time per id.
        seen.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        seen.dedup_by_key(|(id, _)| *id);
        Feed { high, since, seen }
    }
}

const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentCursor {
    pub v: u8,
    pub kind: Kind,
    pub items: Feed,
    pub log: Feed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCursor {
    pub v: u8,
    pub kind: Kind,
    pub persons: Feed,
    pub companies: Feed,
    pub log: Feed,
}

impl AppointmentCursor {
    pub fn new(kind: Kind, items: Feed, log: Feed) -> Self {
        AppointmentCursor {
            v: VERSION,
            kind,
            items,
            log,
        }
    }

    /// `None` for a cursor of another kind or format: the caller lists everything again.
    pub fn decode(cursor: &Cursor, kind: Kind) -> Option<Self> {
        serde_json::from_str::<Self>(&cursor.0)
            .ok()
            .filter(|c| c.v == VERSION && c.kind == kind)
    }

    pub fn encode(&self) -> Cursor {
        Cursor(serde_json::to_string(self).unwrap_or_default())
    }
}

impl ContactCursor {
    pub fn new(persons: Feed, companies: Feed, log: Feed) -> Self {
        ContactCursor {
            v: VERSION,
            kind: Kind::Contact,
            persons,
            companies,
            log,
        }
    }

    pub fn decode(cursor: &Cursor) -> Option<Self> {
        serde_json::from_str::<Self>(&cursor.0)
            .ok()
            .filter(|c| c.v == VERSION && c.kind == Kind::Contact)
    }

    pub fn encode(&self) -> Cursor {
        Cursor(serde_json::to_string(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        format!("2026-11-22T{s}Z").parse().unwrap()
    }

    #[test]
    fn the_watermark_never_passes_the_first_page_of_a_paged_round() {
        let start = Feed::default().advance(
            &Round {
                probe: Some(t("09:00:00")),
                ..Round::default()
            },
            ITEM_LAG,
        );
        assert_eq!(start.since, Some(t("08:58:00")));
        // A paged round: the first page saw 09:05, later pages rows changed up to 09:30.
        let round = Round {
            probe: None,
            first_page_max: Some(t("09:05:00")),
            rows: vec![(1, t("09:05:00")), (7, t("09:30:00")), (3, t("08:59:00"))],
        };
        let next = start.advance(&round, ITEM_LAG);
        assert_eq!(next.since, Some(t("09:03:00")), "bounded by the first page");
        assert_eq!(next.high, Some(t("09:30:00")));
        assert!(
            !next.is_new(7, t("09:30:00")),
            "reported rows are not fetched again"
        );
        assert!(next.is_new(7, t("09:31:00")), "a newer write is");
        assert!(next.is_new(3, t("08:59:00")), "below since: forgotten");
        // The round after: everything read before it bounds it, so it moves on.
        let after = next.advance(&Round::default(), ITEM_LAG);
        assert_eq!(after.since, Some(t("09:28:00")));
        assert!(after.seen.is_empty());
        // It never goes back.
        let odd = after.advance(
            &Round {
                first_page_max: Some(t("08:00:00")),
                ..Round::default()
            },
            ITEM_LAG,
        );
        assert_eq!(odd.since, after.since);
    }

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let c = AppointmentCursor::new(
            Kind::Diary,
            Feed {
                high: Some(t("09:00:00")),
                since: Some(t("08:58:00")),
                seen: vec![(5, 1)],
            },
            Feed::default(),
        );
        let encoded = c.encode();
        assert_eq!(AppointmentCursor::decode(&encoded, Kind::Diary), Some(c));
        assert_eq!(AppointmentCursor::decode(&encoded, Kind::Task), None);
        assert_eq!(
            AppointmentCursor::decode(&Cursor("garbage".into()), Kind::Diary),
            None
        );
        assert_eq!(ContactCursor::decode(&encoded), None);
    }
}
