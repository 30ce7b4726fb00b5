//! How a SuperOffice rule's rows make one series, without IO: the shape of an occurrence,
//! each row's original date, and which row holds the series' content (`series.rs` reads and
//! writes; the rules are in its module comment).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use crate::connector::model::{DiaryItem, Item, Version, When};

/// The content of a diary item without its time, to compare occurrences.
pub(super) fn content(d: &DiaryItem) -> DiaryItem {
    DiaryItem {
        when: When::AllDay {
            start: Date::constant(2000, 1, 1),
            end: Date::constant(2000, 1, 2),
        },
        series: None,
        ..d.clone()
    }
}

/// Where an occurrence is relative to its date: local start time and length, or whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Shape {
    Timed(Time, SignedDuration),
    AllDay(i32),
}

pub(super) fn shape_of(when: &When, tz: &TimeZone) -> (Date, Shape) {
    match when {
        When::Timed { start, end } => {
            let local = start.to_zoned(tz.clone());
            (
                local.date(),
                Shape::Timed(local.time(), end.duration_since(*start)),
            )
        }
        When::AllDay { start, end } => (*start, Shape::AllDay((*end - *start).get_days().max(1))),
    }
}

/// The occurrence on `date` with `shape`, and its key (timed: its start; all-day: midnight UTC).
pub(super) fn slot(date: Date, shape: Shape, tz: &TimeZone) -> Option<(Timestamp, When)> {
    match shape {
        Shape::Timed(at, length) => {
            let start = DateTime::from_parts(date, at).to_zoned(tz.clone()).ok()?;
            let end = start.timestamp().checked_add(length).ok()?;
            Some((
                start.timestamp(),
                When::Timed {
                    start: start.timestamp(),
                    end,
                },
            ))
        }
        Shape::AllDay(days) => {
            let key = date.to_zoned(TimeZone::UTC).ok()?.timestamp();
            let end = date.checked_add(i64::from(days).days()).ok()?;
            Some((key, When::AllDay { start: date, end }))
        }
    }
}

/// `updated#digest`: the newest row's `UpdatedDate` and a digest of the series as shown, so
/// that a cancellation (a row gone, none changed) changes it too.
pub(super) fn series_version(updated: Timestamp, item: &Item) -> Version {
    let digest = item.content_hash().to_string();
    Version(format!("{}#{}", updated, &digest[..12]))
}

/// Each row's original date, from the rows (id, start date in the series' zone; by start) and
/// the dates that have rows (`Recurrence.Dates`): a row on one of those dates not taken by an
/// earlier row is on its own date; the rows left over (moved) take the dates left over, in
/// order. The API names no row's original date, so two rows moved across each other may be
/// paired the wrong way round.
pub(super) fn pair_rows(
    rows: impl IntoIterator<Item = (u32, Date)>,
    row_dates: &BTreeSet<Date>,
) -> BTreeMap<u32, Date> {
    let mut free = row_dates.clone();
    let mut original = BTreeMap::new();
    let mut leftover = Vec::new();
    for (row, date) in rows {
        if free.remove(&date) {
            original.insert(row, date);
        } else {
            leftover.push(row);
        }
    }
    for (row, date) in leftover.into_iter().zip(free) {
        original.insert(row, date);
    }
    original
}

/// A listed row: id, times, last write and what the list shows of its content (enough to
/// tell which rows share the series' content without reading each row).
pub(super) struct Listed {
    pub id: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    pub updated: Timestamp,
    pub title: String,
    pub location: String,
    pub text: String,
}

/// What the list shows of a row on its own date, to vote on the series' content: local start
/// time, length, title, location and description.
pub(super) type Look<'l> = (Time, SignedDuration, &'l str, &'l str, &'l str);

/// How the list shows a row, in the series' zone.
pub(super) fn look_of<'l>(row: &'l Listed, tz: &TimeZone) -> (Date, Look<'l>) {
    let local = row.start.to_zoned(tz.clone());
    (
        local.date(),
        (
            local.time(),
            row.end.duration_since(row.start),
            row.title.as_str(),
            row.location.as_str(),
            row.text.as_str(),
        ),
    )
}

/// The row that holds the series' content: among the rows on their own date, those sharing
/// the look most rows share (a tie goes to the group written longest ago: an exception is a
/// later edit of one row, while the series' content is written to all its rows at once, then
/// to the group with the earliest date); of that group, the row written longest ago. `None`
/// when no row is on its own date.
pub(super) fn content_row(
    listed: &[Listed],
    original: &BTreeMap<u32, Date>,
    tz: &TimeZone,
) -> Option<u32> {
    /// Rows sharing one look: how many, the oldest write, the earliest date, and the oldest
    /// row (write, date, id).
    struct Group {
        rows: usize,
        oldest: Timestamp,
        earliest: Date,
        oldest_row: (Timestamp, Date, u32),
    }
    let mut groups: HashMap<Look<'_>, Group> = HashMap::new();
    for row in listed {
        let (date, look) = look_of(row, tz);
        if original.get(&row.id) != Some(&date) {
            continue;
        }
        let oldest = (row.updated, date, row.id);
        let group = groups.entry(look).or_insert(Group {
            rows: 0,
            oldest: row.updated,
            earliest: date,
            oldest_row: oldest,
        });
        group.rows += 1;
        group.oldest = group.oldest.min(row.updated);
        group.earliest = group.earliest.min(date);
        group.oldest_row = group.oldest_row.min(oldest);
    }
    groups
        .into_values()
        .max_by(|a, b| {
            a.rows
                .cmp(&b.rows)
                .then(b.oldest.cmp(&a.oldest))
                .then(b.earliest.cmp(&a.earliest))
        })
        .map(|g| g.oldest_row.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn rows_on_their_dates_keep_them_and_moved_rows_take_the_dates_left_over() {
        let dates: BTreeSet<Date> = [
            date(2026, 1, 5),
            date(2026, 1, 12),
            date(2026, 1, 19),
            date(2026, 1, 26),
        ]
        .into();
        // Row 2 moved from the 12th to the 13th, row 4 from the 26th to the 20th; the rows
        // come by start.
        let rows = [
            (1, date(2026, 1, 5)),
            (2, date(2026, 1, 13)),
            (3, date(2026, 1, 19)),
            (4, date(2026, 1, 20)),
        ];
        let paired = pair_rows(rows, &dates);
        assert_eq!(paired[&1], date(2026, 1, 5));
        assert_eq!(paired[&2], date(2026, 1, 12));
        assert_eq!(paired[&3], date(2026, 1, 19));
        assert_eq!(paired[&4], date(2026, 1, 26));
        // A row moved onto another row's date: the first by start keeps the date (the
        // documented ambiguity), the other takes the date left over.
        let rows = [(1, date(2026, 1, 5)), (2, date(2026, 1, 5))];
        let two: BTreeSet<Date> = [date(2026, 1, 5), date(2026, 1, 12)].into();
        let paired = pair_rows(rows, &two);
        assert_eq!(paired[&1], date(2026, 1, 5));
        assert_eq!(paired[&2], date(2026, 1, 12));
    }

    #[test]
    fn versions_change_with_the_series_shown_even_when_no_row_changed() {
        let at: Timestamp = "2026-01-05T07:00:00Z".parse().unwrap();
        let a = Item::Diary(DiaryItem {
            subject: "A".into(),
            body: String::new(),
            when: When::AllDay {
                start: date(2026, 1, 5),
                end: date(2026, 1, 6),
            },
            location: String::new(),
            private: false,
            show_as: crate::connector::model::ShowAs::Busy,
            reminder_minutes: None,
            task_type: None,
            organized_by_other: false,
            series: None,
        });
        let mut b = a.clone();
        if let Item::Diary(d) = &mut b {
            d.subject = "B".into();
        }
        assert_ne!(series_version(at, &a), series_version(at, &b));
        assert_eq!(series_version(at, &a), series_version(at, &a.clone()));
        assert!(
            series_version(at, &a)
                .0
                .starts_with("2026-01-05T07:00:00Z#")
        );
    }
}
