//! The CRM change cursor: where each of a kind's feeds (items by `updatedDate`, deletions in
//! the travel transaction log by row id) stands, as compact JSON in an opaque [`Cursor`].
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
/// A travel log row is passed over this long after it was first seen: a transaction that took
/// an earlier row id commits within that time.
pub const LOG_LAG: SignedDuration = SignedDuration::from_secs(120);

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

/// Where the travel log stands: every row up to `after` has been read (rows of other tables
/// and types never match), and `pending` holds the rows above it already reported, with the
/// server's time of the round that first saw each. The log's primary key grows with every
/// row, so a position by id needs no clock; `ttime` is a local time of the tenant's zone,
/// ambiguous in the hour the clocks go back, and is not used for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFeed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// (row id, first seen in milliseconds), sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<(u64, i64)>,
}

impl LogFeed {
    pub fn at(after: Option<u64>) -> LogFeed {
        LogFeed {
            after,
            pending: Vec::new(),
        }
    }

    pub fn is_new(&self, row: u64) -> bool {
        self.after.is_none_or(|a| row > a)
            && self
                .pending
                .binary_search_by(|(id, _)| id.cmp(&row))
                .is_err()
    }

    /// The position after a round that read `rows` (every row above `after`) when the server's
    /// time was `now`: rows seen at least [`LOG_LAG`] ago are passed over, with every id below
    /// them.
    pub fn advance(&self, rows: &[u64], now: Option<Timestamp>) -> LogFeed {
        let now_ms = now.map(|t| t.as_millisecond());
        let mut pending: Vec<(u64, i64)> = rows
            .iter()
            .filter(|r| self.after.is_none_or(|a| **r > a))
            .map(|r| {
                let first = self
                    .pending
                    .binary_search_by(|(id, _)| id.cmp(r))
                    .map(|i| self.pending[i].1)
                    .ok()
                    .or(now_ms)
                    .unwrap_or(i64::MAX);
                (*r, first)
            })
            .collect();
        pending.sort_unstable();
        pending.dedup_by_key(|(id, _)| *id);
        let settled_before = now
            .and_then(|t| t.checked_sub(LOG_LAG).ok())
            .map(|t| t.as_millisecond());
        let after = pending
            .iter()
            .filter(|(_, first)| settled_before.is_some_and(|s| *first <= s))
            .map(|(id, _)| *id)
            .max()
            .max(self.after);
        pending.retain(|(id, _)| after.is_none_or(|a| *id > a));
        LogFeed { after, pending }
    }
}

const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentCursor {
    pub v: u8,
    pub kind: Kind,
    pub items: Feed,
    pub log: LogFeed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCursor {
    pub v: u8,
    pub kind: Kind,
    pub persons: Feed,
    pub companies: Feed,
    pub log: LogFeed,
}

impl AppointmentCursor {
    pub fn new(kind: Kind, items: Feed, log: LogFeed) -> Self {
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
    pub fn new(persons: Feed, companies: Feed, log: LogFeed) -> Self {
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

/// The earlier of two optional positions; no position at all (read from the start) is the
/// earliest.
fn earlier<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => None,
    }
}

impl Feed {
    /// A position from which a round reports everything that a round from either position
    /// would: the one further back, or, at the same bound, only what both have seen.
    pub fn earliest(&self, other: &Feed) -> Feed {
        if self.since != other.since {
            return if earlier(self.since, other.since) == self.since {
                self.clone()
            } else {
                other.clone()
            };
        }
        Feed {
            high: earlier(self.high, other.high),
            since: self.since,
            seen: self
                .seen
                .iter()
                .filter(|row| other.seen.binary_search(row).is_ok())
                .copied()
                .collect(),
        }
    }
}

impl LogFeed {
    /// Like [`Feed::earliest`]: the lower position, or at the same one only the rows both
    /// have reported.
    pub fn earliest(&self, other: &LogFeed) -> LogFeed {
        if self.after != other.after {
            return if earlier(self.after, other.after) == self.after {
                self.clone()
            } else {
                other.clone()
            };
        }
        let pending = self
            .pending
            .iter()
            .filter_map(|(id, first)| {
                other
                    .pending
                    .binary_search_by(|(o, _)| o.cmp(id))
                    .ok()
                    .map(|i| (*id, (*first).min(other.pending[i].1)))
            })
            .collect();
        LogFeed {
            after: self.after,
            pending,
        }
    }
}

/// A cursor from which one rank-wide read covers what every one of `cursors` still has to
/// read (users whose cursors drifted apart share one query; what some of them already had
/// comes again and is recognised by its version). `None` when one of them is not a cursor of
/// this kind: that user reads on its own.
pub fn earliest(kind: Kind, cursors: &[&Cursor]) -> Option<Cursor> {
    let (first, rest) = cursors.split_first()?;
    if kind == Kind::Contact {
        let mut merged = ContactCursor::decode(first)?;
        for c in rest {
            let c = ContactCursor::decode(c)?;
            merged = ContactCursor::new(
                merged.persons.earliest(&c.persons),
                merged.companies.earliest(&c.companies),
                merged.log.earliest(&c.log),
            );
        }
        Some(merged.encode())
    } else {
        let mut merged = AppointmentCursor::decode(first, kind)?;
        for c in rest {
            let c = AppointmentCursor::decode(c, kind)?;
            merged = AppointmentCursor::new(
                kind,
                merged.items.earliest(&c.items),
                merged.log.earliest(&c.log),
            );
        }
        Some(merged.encode())
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
    fn the_log_position_passes_a_row_only_after_the_margin() {
        let start = LogFeed::at(Some(10));
        assert!(!start.is_new(10) && start.is_new(11));
        let one = start.advance(&[12, 15], Some(t("09:00:00")));
        assert_eq!(
            one.after,
            Some(10),
            "just seen: an earlier id may still commit"
        );
        assert!(!one.is_new(12) && !one.is_new(15) && one.is_new(13));
        let two = one.advance(&[12, 13, 15], Some(t("09:01:00")));
        assert_eq!(two.after, Some(10));
        assert!(!two.is_new(13));
        let three = two.advance(&[12, 13, 15], Some(t("09:02:30")));
        assert_eq!(three.after, Some(15), "seen two minutes ago: passed over");
        assert_eq!(three.pending, vec![]);
        let three = two.advance(&[12, 13, 15, 16], Some(t("09:02:30")));
        assert_eq!(three.after, Some(15));
        assert_eq!(three.pending, vec![(16, t("09:02:30").as_millisecond())]);
        // Without the server's time nothing is passed over.
        assert_eq!(start.advance(&[12], None).after, Some(10));
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
            LogFeed::at(Some(3)),
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

    #[test]
    fn the_earliest_of_two_positions_reads_what_either_still_has_to() {
        let a = Feed {
            high: Some(t("09:10:00")),
            since: Some(t("09:00:00")),
            seen: vec![(1, 100), (2, 200)],
        };
        let b = Feed {
            high: Some(t("09:20:00")),
            since: Some(t("09:05:00")),
            seen: vec![(3, 300)],
        };
        assert_eq!(a.earliest(&b), a, "the one further back, whole");
        assert_eq!(b.earliest(&a), a);
        let same_bound = Feed {
            seen: vec![(2, 200), (4, 400)],
            high: Some(t("09:05:00")),
            ..a.clone()
        };
        let merged = a.earliest(&same_bound);
        assert_eq!(merged.seen, vec![(2, 200)], "only what both have seen");
        assert_eq!(merged.high, Some(t("09:05:00")));
        assert_eq!(
            a.earliest(&Feed::default()),
            Feed::default(),
            "from the start"
        );

        let one = LogFeed {
            after: Some(10),
            pending: vec![(12, 5), (15, 9)],
        };
        let two = LogFeed {
            after: Some(10),
            pending: vec![(12, 3)],
        };
        assert_eq!(
            one.earliest(&two),
            LogFeed {
                after: Some(10),
                pending: vec![(12, 3)]
            }
        );
        assert_eq!(one.earliest(&LogFeed::at(Some(9))), LogFeed::at(Some(9)));

        let c1 = AppointmentCursor::new(Kind::Diary, a.clone(), one.clone()).encode();
        let c2 = AppointmentCursor::new(Kind::Diary, b, two).encode();
        let merged = earliest(Kind::Diary, &[&c1, &c2]).expect("two diary cursors");
        let merged = AppointmentCursor::decode(&merged, Kind::Diary).expect("a diary cursor");
        assert_eq!(merged.items, a);
        assert_eq!(merged.log.pending, vec![(12, 3)]);
        assert_eq!(earliest(Kind::Task, &[&c1]), None, "another kind's cursor");
        assert_eq!(earliest(Kind::Diary, &[&c1, &Cursor("junk".into())]), None);
    }
}
