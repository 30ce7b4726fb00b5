//! Merging two versions of one recurring series that both changed. A series is one item, but
//! its occurrences are edited one by one, often on different sides (a meeting moved in
//! Outlook, another cancelled in SuperOffice): taking one side whole would drop the other's
//! edits. So the winner of the conflict gives the rule and the series' content, and the
//! occurrences are merged: an occurrence edited on one side only keeps that edit, one edited
//! on both takes the winner's, and an edit beats a cancellation unless deletes win.

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::connector::model::{DiaryItem, Window};

/// A merged series, and the loser's occurrence edits it could not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub item: DiaryItem,
    /// Original starts of the loser's exceptions and cancellations that the winner's rule no
    /// longer has in the window (the series was moved or shortened): reported, not written.
    pub dropped: Vec<Timestamp>,
}

/// `winner` and `loser` are both series; `None` otherwise. The result holds the winner's rule
/// and content with both sides' occurrence edits that the winner's rule still has in
/// `window`.
pub fn merge(
    winner: &DiaryItem,
    loser: &DiaryItem,
    window: &Window,
    delete_wins: bool,
) -> Option<Merged> {
    let (Some(w), Some(l)) = (&winner.series, &loser.series) else {
        return None;
    };
    let mut item = winner.clone();
    let occurring: Option<BTreeSet<Timestamp>> = winner
        .pattern_occurrences(window)
        .ok()
        .map(|all| all.into_iter().map(|o| o.original_start).collect());
    let kept = |at: &Timestamp| occurring.as_ref().is_none_or(|set| set.contains(at));
    let mut dropped = Vec::new();
    let merged = item.series.as_mut()?;
    for (at, exception) in &l.exceptions {
        if w.exceptions.contains_key(at) {
            continue;
        }
        if !kept(at) {
            dropped.push(*at);
            continue;
        }
        if w.cancelled.contains(at) {
            if delete_wins {
                continue;
            }
            merged.cancelled.remove(at);
        }
        merged.exceptions.insert(*at, exception.clone());
    }
    for at in &l.cancelled {
        if w.cancelled.contains(at) {
            continue;
        }
        if !kept(at) {
            dropped.push(*at);
            continue;
        }
        if w.exceptions.contains_key(at) && !delete_wins {
            continue;
        }
        merged.exceptions.remove(at);
        merged.cancelled.insert(*at);
    }
    dropped.sort();
    dropped.dedup();
    Some(Merged { item, dropped })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use jiff::civil::date;

    use super::*;
    use crate::connector::model::{Series, ShowAs, When};
    use crate::connector::recurrence::{DayOfWeek, Pattern, Range, RangeEnd, Recurrence};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn weekly(subject: &str) -> DiaryItem {
        DiaryItem {
            subject: subject.into(),
            body: String::new(),
            when: When::Timed {
                start: at("2026-11-02T08:00:00Z"),
                end: at("2026-11-02T09:00:00Z"),
            },
            location: String::new(),
            private: false,
            show_as: ShowAs::Busy,
            reminder_minutes: None,
            task_type: None,
            organized_by_other: false,
            series: Some(Box::new(Series {
                recurrence: Recurrence {
                    pattern: Pattern::Weekly {
                        interval: 1,
                        days: vec![DayOfWeek::Monday],
                        first_day_of_week: DayOfWeek::Sunday,
                    },
                    range: Range {
                        start: date(2026, 11, 2),
                        end: RangeEnd::Never,
                    },
                    time_zone: "Europe/Oslo".into(),
                },
                exceptions: BTreeMap::new(),
                cancelled: BTreeSet::new(),
            })),
        }
    }

    fn moved(start: &str, end: &str) -> DiaryItem {
        let mut item = weekly("Team");
        item.series = None;
        item.when = When::Timed {
            start: at(start),
            end: at(end),
        };
        item
    }

    fn window() -> Window {
        Window {
            start: at("2026-11-01T00:00:00Z"),
            end: at("2027-01-01T00:00:00Z"),
        }
    }

    fn series(item: &mut DiaryItem) -> &mut Series {
        item.series.as_mut().unwrap()
    }

    #[test]
    fn edits_of_different_occurrences_are_both_kept() {
        let mut winner = weekly("Team (renamed)");
        let mut loser = weekly("Team");
        let week2 = at("2026-11-09T08:00:00Z");
        let week3 = at("2026-11-16T08:00:00Z");
        let week4 = at("2026-11-23T08:00:00Z");
        series(&mut loser)
            .exceptions
            .insert(week2, moved("2026-11-10T08:00:00Z", "2026-11-10T09:00:00Z"));
        series(&mut loser).cancelled.insert(week3);
        series(&mut winner).cancelled.insert(week4);

        let merged = merge(&winner, &loser, &window(), false).unwrap();
        assert_eq!(
            merged.item.subject, "Team (renamed)",
            "the winner's content"
        );
        let s = merged.item.series.unwrap();
        assert_eq!(s.exceptions.keys().copied().collect::<Vec<_>>(), [week2]);
        assert_eq!(
            s.cancelled.into_iter().collect::<Vec<_>>(),
            [week3, week4],
            "both cancellations"
        );
        assert!(merged.dropped.is_empty());
    }

    #[test]
    fn one_occurrence_edited_on_both_sides_takes_the_winners_edit() {
        let mut winner = weekly("Team");
        let mut loser = weekly("Team");
        let week2 = at("2026-11-09T08:00:00Z");
        series(&mut winner)
            .exceptions
            .insert(week2, moved("2026-11-09T10:00:00Z", "2026-11-09T11:00:00Z"));
        series(&mut loser)
            .exceptions
            .insert(week2, moved("2026-11-10T08:00:00Z", "2026-11-10T09:00:00Z"));
        let merged = merge(&winner, &loser, &window(), false).unwrap();
        assert_eq!(merged.item, winner);
    }

    #[test]
    fn an_edit_beats_a_cancellation_unless_deletes_win() {
        let week2 = at("2026-11-09T08:00:00Z");
        let mut winner = weekly("Team");
        series(&mut winner).cancelled.insert(week2);
        let mut loser = weekly("Team");
        series(&mut loser)
            .exceptions
            .insert(week2, moved("2026-11-09T10:00:00Z", "2026-11-09T11:00:00Z"));

        let kept = merge(&winner, &loser, &window(), false).unwrap().item;
        let s = kept.series.unwrap();
        assert!(s.cancelled.is_empty() && s.exceptions.contains_key(&week2));

        let deleted = merge(&winner, &loser, &window(), true).unwrap().item;
        assert_eq!(deleted, winner);

        // The same the other way round: the loser cancelled what the winner edited.
        let (winner, loser) = (loser, winner);
        assert_eq!(
            merge(&winner, &loser, &window(), false).unwrap().item,
            winner
        );
        let s = merge(&winner, &loser, &window(), true)
            .unwrap()
            .item
            .series
            .unwrap();
        assert!(s.exceptions.is_empty() && s.cancelled.contains(&week2));
    }

    #[test]
    fn edits_the_winners_rule_no_longer_has_are_reported() {
        let mut winner = weekly("Team");
        // The winner moved the series to Tuesdays: Monday occurrences are gone.
        if let Some(s) = winner.series.as_mut() {
            s.recurrence.pattern = Pattern::Weekly {
                interval: 1,
                days: vec![DayOfWeek::Tuesday],
                first_day_of_week: DayOfWeek::Sunday,
            };
            s.recurrence.range.start = date(2026, 11, 3);
        }
        winner.when = When::Timed {
            start: at("2026-11-03T08:00:00Z"),
            end: at("2026-11-03T09:00:00Z"),
        };
        let mut loser = weekly("Team");
        let week2 = at("2026-11-09T08:00:00Z");
        series(&mut loser).cancelled.insert(week2);
        let merged = merge(&winner, &loser, &window(), false).unwrap();
        assert_eq!(merged.item, winner);
        assert_eq!(merged.dropped, [week2]);
    }

    #[test]
    fn single_items_are_not_merged() {
        let mut single = weekly("Team");
        single.series = None;
        assert!(merge(&single, &weekly("Team"), &window(), false).is_none());
        assert!(merge(&weekly("Team"), &single, &window(), false).is_none());
    }
}
