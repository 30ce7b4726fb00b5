//! The neutral model: diary items, tasks and contacts as the engine sees them, whichever side
//! they come from. Times are UTC instants; all-day items are whole dates that no time zone
//! shifts. Nothing here knows HTTP or JSON field names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::connector::recurrence::Recurrence;
use crate::connector::recurrence::{self, RangeEnd, RecurrenceError};
pub use crate::registry::Kind;

/// When a diary item happens.
// Externally tagged: the compact binary encoding of history (postcard) needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// A span between two instants.
    Timed { start: Timestamp, end: Timestamp },
    /// Whole days, `end` exclusive: the same dates in every time zone.
    AllDay { start: Date, end: Date },
}

impl When {
    /// Whether any part of it falls in `[from, to)`; all-day items are taken at UTC midnight
    /// widened by a day on each side, so that no zone's view of the window loses one.
    pub fn overlaps(&self, window: &Window) -> bool {
        match self {
            When::Timed { start, end } => *start < window.end && *end > window.start,
            When::AllDay { start, end } => {
                let from = window.start.to_zoned(jiff::tz::TimeZone::UTC).date();
                let to = window.end.to_zoned(jiff::tz::TimeZone::UTC).date();
                let from = from.yesterday().unwrap_or(from);
                let to = to.tomorrow().unwrap_or(to);
                *start < to && *end > from
            }
        }
    }

    /// Start and end in Unix seconds; all-day items from UTC midnight.
    pub fn span_seconds(&self) -> (i64, i64) {
        let midnight = |date: Date| {
            date.to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp().as_second())
                .unwrap_or(0)
        };
        match self {
            When::Timed { start, end } => (start.as_second(), end.as_second()),
            When::AllDay { start, end } => (midnight(*start), midnight(*end)),
        }
    }
}

/// The sync window for diary items: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// How a diary item shows in the free/busy view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShowAs {
    Free,
    Tentative,
    Busy,
    OutOfOffice,
    WorkingElsewhere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Importance {
    Low,
    Normal,
    High,
}

/// A diary appointment (SuperOffice) or calendar event (Exchange).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiaryItem {
    pub subject: String,
    /// Plain text.
    pub body: String,
    pub when: When,
    pub location: String,
    pub private: bool,
    pub show_as: ShowAs,
    /// Minutes before the start; `None` when no reminder is set.
    pub reminder_minutes: Option<u32>,
    /// The SuperOffice task type ("Meeting", "Phone", ...), shown in Outlook as a category.
    pub task_type: Option<String>,
    /// A meeting organised by someone else: read, never rewritten in the mailbox.
    pub organized_by_other: bool,
    /// Set on a recurring series: then `when` is its first occurrence (where the pattern
    /// starts, even if that occurrence was cancelled) and the item stands for the whole
    /// series. `None` on single items and on the exceptions inside a series.
    #[serde(default)]
    pub series: Option<Box<Series>>,
}

/// A recurring series as one side shows it inside the sync window: the rule, and the
/// occurrences in the window that differ from it. Occurrences are named by their original
/// start (an all-day series: midnight UTC of the original date), which no edit changes.
/// Nothing outside the window is known, compared or written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Series {
    pub recurrence: Recurrence,
    /// Occurrences moved or changed alone, as they are now (their own `series` is `None`).
    pub exceptions: BTreeMap<Timestamp, DiaryItem>,
    /// Occurrences deleted alone.
    pub cancelled: BTreeSet<Timestamp>,
}

impl DiaryItem {
    /// Whether any part of it may fall in the window. A series counts from its first
    /// occurrence to the end of its range (a numbered or never-ending range: for ever), so a
    /// series is never taken for gone while any of it may still be in the window.
    pub fn overlaps(&self, window: &Window) -> bool {
        match &self.series {
            None => self.when.overlaps(window),
            Some(series) => {
                let (start, _) = self.when.span_seconds();
                let end = series.range_end_seconds();
                start < window.end.as_second() && end > window.start.as_second()
            }
        }
    }

    /// The item's span in Unix seconds (all-day items from UTC midnight); a series spans its
    /// whole range.
    pub fn span_seconds(&self) -> (i64, i64) {
        let (start, end) = self.when.span_seconds();
        match &self.series {
            None => (start, end),
            Some(series) => (start, series.range_end_seconds().max(end)),
        }
    }

    /// The occurrences of a series that overlap the window, where the pattern puts them
    /// (exceptions and cancellations not applied). Empty for a single item.
    pub fn pattern_occurrences(
        &self,
        window: &Window,
    ) -> Result<Vec<recurrence::Occurrence>, RecurrenceError> {
        let Some(series) = &self.series else {
            return Ok(Vec::new());
        };
        let tz = series.recurrence.zone()?;
        let (first, duration) = match self.when {
            When::Timed { start, end } => {
                (start.to_zoned(tz).datetime(), end.duration_since(start))
            }
            When::AllDay { start, end } => (
                start.to_datetime(jiff::civil::Time::midnight()),
                jiff::SignedDuration::from_hours(24 * i64::from((end - start).get_days().max(1))),
            ),
        };
        recurrence::occurrences(
            first,
            duration,
            &series.recurrence,
            window.start,
            window.end,
        )
    }
}

impl Series {
    /// The end of the range in Unix seconds: a day after the end date (any zone's end of that
    /// day is before it), or for ever.
    fn range_end_seconds(&self) -> i64 {
        match self.recurrence.range.end {
            RangeEnd::Date(date) => date
                .tomorrow()
                .and_then(|d| d.tomorrow())
                .ok()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map_or(i64::MAX, |z| z.timestamp().as_second()),
            RangeEnd::Count(_) | RangeEnd::Never => i64::MAX,
        }
    }
}

/// A to-do (SuperOffice) or Microsoft To Do task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskItem {
    pub title: String,
    /// Plain text.
    pub body: String,
    pub due: Option<Date>,
    /// When it was completed; `None` while open.
    pub completed: Option<Timestamp>,
    pub importance: Importance,
}

/// A person in the CRM, a contact in the mailbox (one way: CRM to mailbox).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContactItem {
    pub given_name: String,
    pub surname: String,
    /// In rank order: the first is the primary address.
    pub emails: Vec<String>,
    pub business_phones: Vec<String>,
    pub mobile_phone: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Diary(DiaryItem),
    Task(TaskItem),
    Contact(ContactItem),
}

/// A fingerprint of an item's content: equal items have equal hashes on every machine and
/// in every version of crmsync that keeps the model's fields, so history can compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 16]);

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Item {
    pub fn kind(&self) -> Kind {
        match self {
            Item::Diary(_) => Kind::Diary,
            Item::Task(_) => Kind::Task,
            Item::Contact(_) => Kind::Contact,
        }
    }

    /// The item reduced to what both sides hold, so that two copies in sync compare equal:
    /// SuperOffice knows free or busy only, keeps no to-do completion time or importance, and
    /// whether a meeting was organised by someone else is the mailbox's to know.
    pub fn shared_form(&self) -> Item {
        let mut item = self.clone();
        match &mut item {
            Item::Diary(d) => {
                d.show_as = match d.show_as {
                    ShowAs::Free => ShowAs::Free,
                    _ => ShowAs::Busy,
                };
                d.organized_by_other = false;
                if let Some(series) = &mut d.series {
                    // Outlook and SuperOffice may name one zone differently (Europe/Berlin
                    // and Europe/Oslo): what they hold is the same if the clocks are.
                    series.recurrence.time_zone =
                        recurrence::zone_class(&series.recurrence.time_zone);
                    for exception in series.exceptions.values_mut() {
                        if let Item::Diary(shared) = Item::Diary(exception.clone()).shared_form() {
                            *exception = shared;
                        }
                    }
                }
            }
            Item::Task(t) => {
                t.completed = t.completed.map(|_| Timestamp::UNIX_EPOCH);
                t.importance = Importance::Normal;
            }
            Item::Contact(_) => {}
        }
        item
    }

    /// SHA-256 over the item's canonical JSON, cut to 128 bits.
    pub fn content_hash(&self) -> ContentHash {
        // Serializing plain data with derived impls cannot fail; an empty input would only
        // make every item look changed, which is safe.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&canonical);
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        ContentHash(out)
    }
}

/// A SuperOffice record id: an appointment (diary item or to-do) or a person (contact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CrmId(pub u32);

impl CrmId {
    const SERIES: u32 = 1 << 31;

    /// A recurring series in the CRM, named by its recurrence rule: no row of it names it for
    /// good (any row may be deleted alone). SuperOffice ids are positive 32-bit integers, so
    /// the top bit is free to tell a rule from a row.
    pub fn series(rule_id: u32) -> CrmId {
        CrmId(rule_id | Self::SERIES)
    }

    /// The recurrence rule this id names, if it names a series.
    pub fn series_rule(self) -> Option<u32> {
        (self.0 & Self::SERIES != 0).then_some(self.0 & !Self::SERIES)
    }
}

impl fmt::Display for CrmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A mailbox item id (Graph immutable id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MailboxItemId(pub String);

impl fmt::Display for MailboxItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The version a side reports for an item (Graph `changeKey`, SuperOffice `UpdatedDate`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version(pub String);

/// The stamp on a mailbox item that names its CRM counterpart, so that history can be rebuilt
/// from the mailbox (DESIGN invariant 4). It names the tenant and the record, never the sync
/// user: a removed and re-added user still finds its items.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// The SuperOffice context identifier (`Cust12345`) or onsite installation name.
    pub tenant: String,
    pub kind: Kind,
    pub crm_id: CrmId,
}

impl Stamp {
    const PREFIX: &'static str = "crmsync:1";

    /// The stamp's text, as written into the mailbox item.
    pub fn encode(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            Self::PREFIX,
            self.tenant,
            self.kind.as_str(),
            self.crm_id
        )
    }

    /// Reads a stamp written by [`Stamp::encode`]; anything else is not one of ours.
    pub fn decode(text: &str) -> Option<Stamp> {
        let rest = text.strip_prefix(Self::PREFIX)?.strip_prefix(':')?;
        let (rest, id) = rest.rsplit_once(':')?;
        let (tenant, kind) = rest.rsplit_once(':')?;
        let kind = Kind::ALL.into_iter().find(|k| k.as_str() == kind)?;
        if tenant.is_empty() {
            return None;
        }
        Some(Stamp {
            tenant: tenant.to_string(),
            kind,
            crm_id: CrmId(id.parse().ok()?),
        })
    }
}

/// What the CRM says about an item besides its content: what it is linked to (not synced,
/// but it decides which persons are in a user's contact scope) and who made it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Links {
    /// The person the appointment or to-do is with.
    pub person: Option<CrmId>,
    /// The company (SuperOffice "contact") it is with, or a person belongs to.
    pub company: Option<u32>,
    /// crmsync registered it (the CRM names crmsync's API user as its creator): it was made
    /// from a mailbox item, and that item carries its stamp.
    #[serde(default)]
    pub made_by_crmsync: bool,
}

/// An item as a side reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed<Id> {
    pub id: Id,
    pub version: Version,
    /// When the side says it was last changed, for the `newest` conflict policy.
    pub modified: Timestamp,
    pub item: Item,
    /// The stamp found on a mailbox item (always `None` on the CRM side).
    pub stamp: Option<Stamp>,
    /// Links of a CRM item (empty on the mailbox side).
    pub links: Links,
}

/// One change a side reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<Id> {
    /// Created or changed: the item as it is now.
    Upsert(Box<Observed<Id>>),
    /// Deleted (or, on the mailbox side, gone from the delta's view: Graph reports an event
    /// that left the window the same way; the engine tells the two apart).
    Removed(Id),
}

/// An opaque position in a side's change feed (a Graph delta link, a CRM watermark).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor(pub String);

/// What changed since a cursor, and the cursor that covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<Id> {
    pub changes: Vec<Change<Id>>,
    pub cursor: Cursor,
    /// The old cursor had expired: this is a full listing, not a difference, and what is not
    /// in it is not thereby deleted.
    pub full: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diary() -> Item {
        Item::Diary(DiaryItem {
            subject: "Review".into(),
            body: String::new(),
            when: When::Timed {
                start: "2026-11-23T09:00:00Z".parse().unwrap(),
                end: "2026-11-23T10:00:00Z".parse().unwrap(),
            },
            location: "Oslo".into(),
            private: false,
            show_as: ShowAs::Busy,
            reminder_minutes: Some(15),
            task_type: Some("Meeting".into()),
            organized_by_other: false,
            series: None,
        })
    }

    #[test]
    fn series_ids_never_meet_row_ids() {
        let series = CrmId::series(52);
        assert_eq!(series.series_rule(), Some(52));
        assert_eq!(CrmId(52).series_rule(), None);
        assert_ne!(series, CrmId(52));
        let stamp = Stamp {
            tenant: "Cust1".into(),
            kind: Kind::Diary,
            crm_id: series,
        };
        assert_eq!(Stamp::decode(&stamp.encode()), Some(stamp));
    }

    #[test]
    fn stamps_round_trip_and_strangers_are_refused() {
        let stamp = Stamp {
            tenant: "Cust12345".into(),
            kind: Kind::Diary,
            crm_id: CrmId(4711),
        };
        assert_eq!(stamp.encode(), "crmsync:1:Cust12345:diary:4711");
        assert_eq!(Stamp::decode(&stamp.encode()), Some(stamp));
        for other in [
            "",
            "crmsync:2:C:diary:1",
            "crmsync:1::diary:1",
            "crmsync:1:C:note:1",
            "crmsync:1:C:diary:x",
        ] {
            assert_eq!(Stamp::decode(other), None, "{other}");
        }
        // A tenant name with a colon still decodes.
        let odd = Stamp {
            tenant: "crm.example.com:8080".into(),
            kind: Kind::Task,
            crm_id: CrmId(1),
        };
        assert_eq!(Stamp::decode(&odd.encode()), Some(odd));
    }

    #[test]
    fn content_hashes_follow_content_only() {
        let a = diary();
        assert_eq!(a.content_hash(), diary().content_hash());
        let mut b = diary();
        if let Item::Diary(d) = &mut b {
            d.location = "Bergen".into();
        }
        assert_ne!(a.content_hash(), b.content_hash());
        // Fixed across builds: a hash stored in history keeps its meaning. A change of the
        // model's serialized form changes it; then history must be migrated.
        assert_eq!(
            a.content_hash().to_string(),
            "37ea4760abd1720be961761934270780"
        );
    }

    #[test]
    fn all_day_items_are_in_the_window_whatever_the_zone() {
        let window = Window {
            start: "2026-11-01T00:00:00Z".parse().unwrap(),
            end: "2026-12-01T00:00:00Z".parse().unwrap(),
        };
        let day = |d: &str| d.parse::<Date>().unwrap();
        assert!(
            When::AllDay {
                start: day("2026-11-30"),
                end: day("2026-12-01")
            }
            .overlaps(&window)
        );
        assert!(
            When::AllDay {
                start: day("2026-10-31"),
                end: day("2026-11-01")
            }
            .overlaps(&window)
        );
        assert!(
            !When::AllDay {
                start: day("2026-10-20"),
                end: day("2026-10-21")
            }
            .overlaps(&window)
        );
        let timed = When::Timed {
            start: "2026-12-01T00:00:00Z".parse().unwrap(),
            end: "2026-12-01T01:00:00Z".parse().unwrap(),
        };
        assert!(
            !timed.overlaps(&window),
            "the end of the window is exclusive"
        );
    }
}
