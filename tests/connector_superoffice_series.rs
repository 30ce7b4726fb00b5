//! Recurring series through the SuperOffice client against the sandbox's emulator: each
//! pattern kind written and read back, user exceptions and cancellations, the client's own
//! exceptions, cancellations and whole-series changes, a changed end, a never-ending series
//! in two windows as the clock moves, daylight-saving changes in Oslo and New York, and a
//! lost create found by `created_since`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::superoffice::So;
use crmsync::connector::CrmConnector;
use crmsync::connector::model::{CrmId, DiaryItem, Item, Kind, Series, ShowAs, When, Window};
use crmsync::connector::recurrence::{DayOfWeek, Pattern, Range, RangeEnd, Recurrence, WeekIndex};
use crmsync::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crmsync::limits::LimiterSettings;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::json;

const ASSOCIATE: u32 = 102;
/// Monday 5 January 2026, 08:00 in Oslo.
const MONDAY: &str = "2026-01-05T07:00:00Z";

async fn start(at: &str) -> (So, SuperOfficeClient) {
    let mut so = So::start().await;
    so.sandbox.state().clock.set(at.parse().unwrap());
    so.ticket = so.authenticate().await;
    let options = SuperOfficeOptions {
        limits: Some(LimiterSettings {
            per_key: None,
            concurrency_per_key: Some(8),
            global: None,
        }),
        ..common::superoffice::client_options(so.sandbox.state())
    };
    let client = SuperOfficeClient::new(
        &common::superoffice::system_user_settings(so.sandbox.state()),
        options,
    )
    .unwrap();
    (so, client)
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn window(from: &str, to: &str) -> Window {
    Window {
        start: at(from),
        end: at(to),
    }
}

/// A timed series whose first occurrence is `first` local time in `zone`, lasting an hour.
fn series(zone: &str, first: &str, pattern: Pattern, end: RangeEnd) -> DiaryItem {
    let tz = TimeZone::get(zone).unwrap();
    let local: jiff::civil::DateTime = first.parse().unwrap();
    let start = local.to_zoned(tz).unwrap().timestamp();
    DiaryItem {
        subject: "Team meeting".into(),
        body: "Agenda".into(),
        when: When::Timed {
            start,
            end: start + SignedDuration::from_hours(1),
        },
        location: "Room 1".into(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: Some(15),
        task_type: Some("Meeting".into()),
        organized_by_other: false,
        series: Some(Box::new(Series {
            recurrence: Recurrence {
                pattern,
                range: Range {
                    start: local.date(),
                    end,
                },
                time_zone: zone.into(),
            },
            exceptions: BTreeMap::new(),
            cancelled: BTreeSet::new(),
        })),
    }
}

fn diary(item: &Item) -> &DiaryItem {
    match item {
        Item::Diary(d) => d,
        other => panic!("not a diary item: {other:?}"),
    }
}

fn series_of(item: &Item) -> &Series {
    diary(item).series.as_deref().expect("a series")
}

/// The rows of a rule: (id, start), by start.
async fn rows(so: &So, rule: u32) -> Vec<(u32, Timestamp)> {
    let mut rows: Vec<(u32, Timestamp)> = so
        .rows(&format!(
            "Appointment?$select=appointmentId,date&$filter=recurrenceRuleId eq {rule}&$orderby=appointmentId"
        ))
        .await
        .iter()
        .map(|r| {
            (
                r["appointmentId"].as_u64().unwrap() as u32,
                crmsync::connector::superoffice::time::parse_instant(r["date"].as_str().unwrap())
                    .unwrap(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r.1);
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn each_pattern_kind_created_through_the_client_reads_back_equal() {
    use DayOfWeek::*;
    let (_so, client) = start(MONDAY).await;
    client.set_series_window(window("2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z"));
    let oslo = "Europe/Oslo";
    let cases = [
        series(
            oslo,
            "2026-01-06T09:00",
            Pattern::Daily { interval: 2 },
            RangeEnd::Count(10),
        ),
        series(
            oslo,
            "2026-01-05T09:00",
            Pattern::Weekly {
                interval: 1,
                days: vec![Monday, Tuesday, Wednesday, Thursday, Friday],
                first_day_of_week: Sunday,
            },
            RangeEnd::Date(date(2026, 2, 27)),
        ),
        series(
            oslo,
            "2026-01-06T14:00",
            Pattern::Weekly {
                interval: 2,
                days: vec![Tuesday, Thursday],
                first_day_of_week: Monday,
            },
            RangeEnd::Never,
        ),
        series(
            "America/New_York",
            "2026-01-31T10:00",
            Pattern::AbsoluteMonthly {
                interval: 1,
                day_of_month: 31,
            },
            RangeEnd::Count(8),
        ),
        series(
            oslo,
            "2026-01-30T08:30",
            Pattern::RelativeMonthly {
                interval: 2,
                days: vec![Friday],
                index: WeekIndex::Last,
            },
            RangeEnd::Never,
        ),
        series(
            oslo,
            "2026-03-17T12:00",
            Pattern::AbsoluteYearly {
                interval: 1,
                month: 3,
                day_of_month: 17,
            },
            RangeEnd::Never,
        ),
        series(
            "America/New_York",
            "2026-11-26T11:00",
            Pattern::RelativeYearly {
                interval: 1,
                month: 11,
                days: vec![Thursday],
                index: WeekIndex::Fourth,
            },
            RangeEnd::Count(3),
        ),
    ];
    for (n, item) in cases.into_iter().enumerate() {
        let item = Item::Diary(item);
        let created = client
            .create(ASSOCIATE, &item)
            .await
            .unwrap_or_else(|e| panic!("case {n}: {e}"));
        assert!(created.id.series_rule().is_some(), "case {n}: a series id");
        assert_eq!(created.item.as_ref(), Some(&item), "case {n}: the answer");
        let read = client
            .get(Kind::Diary, created.id)
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(read.item, item, "case {n}: read back");
        assert_eq!(read.version, created.version, "case {n}");
    }

    // Yearly every other year cannot be said in SuperOffice: refused, nothing written.
    let refused = Item::Diary(series(
        oslo,
        "2026-03-17T12:00",
        Pattern::AbsoluteYearly {
            interval: 2,
            month: 3,
            day_of_month: 17,
        },
        RangeEnd::Never,
    ));
    match client.create(ASSOCIATE, &refused).await {
        Err(crmsync::connector::ConnectorError::Item { what, .. }) => {
            assert!(what.contains("cannot express"), "{what}")
        }
        other => panic!("expected an item error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_edits_show_as_exceptions_and_cancellations_of_one_series() {
    let (so, client) = start(MONDAY).await;
    let w = window("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z");
    let item = series(
        "Europe/Oslo",
        "2026-01-07T09:00",
        Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::Wednesday],
            first_day_of_week: DayOfWeek::Sunday,
        },
        RangeEnd::Count(6),
    );
    let created = client
        .create(ASSOCIATE, &Item::Diary(item.clone()))
        .await
        .unwrap();
    let rule = created.id.series_rule().unwrap();
    let full = client
        .changes(&[ASSOCIATE], Kind::Diary, None, &w)
        .await
        .unwrap();
    let mine: Vec<_> = full.by_associate[&ASSOCIATE].iter().collect();
    assert_eq!(mine.len(), 1, "one item for the series: {mine:?}");
    assert_eq!(mine[0].id, created.id);
    let ids = client
        .ids_in_window(&[ASSOCIATE], Kind::Diary, &w)
        .await
        .unwrap();
    assert_eq!(
        ids[&ASSOCIATE],
        vec![created.id],
        "the series once, no rows"
    );

    let rows = rows(&so, rule).await;
    assert_eq!(rows.len(), 6);
    let (second, second_at) = rows[1];
    let (third, third_at) = rows[2];
    so.sandbox
        .state()
        .clock
        .advance(std::time::Duration::from_secs(5));
    // The user moves the second occurrence to 14:00 and renames it, and deletes the third.
    let moved = so
        .control(
            Method::PATCH,
            &format!("/appointments/{second}"),
            Some(json!({"title": "Moved", "when": {"kind": "timed",
                "start": "2026-01-14T13:00:00Z", "end": "2026-01-14T14:00:00Z",
                "time_zone": "Europe/Oslo"}})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let deleted = so
        .control(Method::DELETE, &format!("/appointments/{third}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    so.sandbox
        .state()
        .clock
        .advance(std::time::Duration::from_secs(120));

    let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    let s = series_of(&read.item);
    assert_eq!(s.exceptions.len(), 1, "{:?}", s.exceptions);
    let exception = &s.exceptions[&second_at];
    assert_eq!(exception.subject, "Moved");
    assert_eq!(
        exception.when,
        When::Timed {
            start: at("2026-01-14T13:00:00Z"),
            end: at("2026-01-14T14:00:00Z")
        }
    );
    assert_eq!(s.cancelled, BTreeSet::from([third_at]));
    assert_eq!(
        diary(&read.item).when,
        item.when,
        "still the first occurrence"
    );
    assert_ne!(read.version, created.version);

    // The change feed reports the series again (once), never a row.
    let changes = client
        .changes(&[ASSOCIATE], Kind::Diary, Some(&full.cursor), &w)
        .await
        .unwrap();
    let upserts: Vec<CrmId> = changes
        .by_associate
        .values()
        .flatten()
        .map(|o| o.id)
        .collect();
    assert!(upserts.contains(&created.id), "{upserts:?}");
    assert_eq!(
        upserts.iter().filter(|id| **id == created.id).count(),
        1,
        "{upserts:?}"
    );
    assert!(
        rows.iter().all(|(row, _)| !upserts.contains(&CrmId(*row))),
        "no row of the series is an item: {upserts:?}"
    );
    assert!(
        !changes.deleted.contains(&CrmId(third)),
        "a cancelled row is no deletion of an item"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_writes_exceptions_cancellations_content_and_end() {
    let (so, client) = start(MONDAY).await;
    client.set_series_window(window("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"));
    let mut item = series(
        "Europe/Oslo",
        "2026-01-08T09:00",
        Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::Thursday],
            first_day_of_week: DayOfWeek::Sunday,
        },
        RangeEnd::Never,
    );
    // Created with an exception and a cancellation.
    let key = |d: &str| {
        let local: jiff::civil::DateTime = format!("{d}T09:00").parse().unwrap();
        local
            .to_zoned(TimeZone::get("Europe/Oslo").unwrap())
            .unwrap()
            .timestamp()
    };
    let mut moved = DiaryItem {
        series: None,
        ..item.clone()
    };
    moved.subject = "Moved".into();
    moved.when = When::Timed {
        start: at("2026-01-16T10:00:00Z"),
        end: at("2026-01-16T11:00:00Z"),
    };
    {
        let s = item.series.as_mut().unwrap();
        s.exceptions.insert(key("2026-01-15"), moved.clone());
        s.cancelled.insert(key("2026-01-22"));
    }
    let created = client
        .create(ASSOCIATE, &Item::Diary(item.clone()))
        .await
        .unwrap();
    let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    assert_eq!(read.item, Item::Diary(item.clone()));

    // A content change of the whole series keeps the exception and the cancellation; a
    // second cancellation and a second exception.
    item.subject = "Weekly review".into();
    item.location = "Room 2".into();
    {
        let mut renamed = DiaryItem {
            series: None,
            ..item.clone()
        };
        renamed.subject = "Review with guests".into();
        renamed.when = When::Timed {
            start: key("2026-02-12"),
            end: key("2026-02-12") + SignedDuration::from_hours(1),
        };
        let s = item.series.as_mut().unwrap();
        s.cancelled.insert(key("2026-02-05"));
        s.exceptions.insert(key("2026-02-12"), renamed);
    }
    let updated = client
        .update(created.id, &Item::Diary(item.clone()), &read.version)
        .await
        .unwrap();
    assert_eq!(updated.item.as_ref(), Some(&Item::Diary(item.clone())));
    let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    assert_eq!(read.item, Item::Diary(item.clone()));
    let rule = created.id.series_rule().unwrap();
    let titles: Vec<String> = {
        let mut out = Vec::new();
        for (row, _) in rows(&so, rule).await.into_iter().take(3) {
            out.push(
                so.get(&format!("Appointment/{row}")).await.body["Title"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        out
    };
    assert_eq!(titles, ["Weekly review", "Moved", "Weekly review"]);

    // An exception taken out goes back to the series; the end is set.
    {
        let s = item.series.as_mut().unwrap();
        s.exceptions.remove(&key("2026-01-15"));
        s.recurrence.range.end = RangeEnd::Date(date(2026, 3, 26));
    }
    let updated = client
        .update(created.id, &Item::Diary(item.clone()), &read.version)
        .await
        .unwrap();
    assert_eq!(updated.item.as_ref(), Some(&Item::Diary(item.clone())));
    assert_eq!(
        rows(&so, rule).await.len(),
        12 - 2,
        "12 Thursdays, 2 cancelled"
    );

    // A user edit of one row since the read: the series' version moved, a conflict.
    let row = rows(&so, rule).await[2].0;
    so.sandbox
        .state()
        .clock
        .advance(std::time::Duration::from_secs(2));
    let edited = so
        .control(
            Method::PATCH,
            &format!("/appointments/{row}"),
            Some(json!({"location": "Elsewhere"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let mut other = item.clone();
    other.subject = "Not written".into();
    let raced = client
        .update(created.id, &Item::Diary(other), &updated.version)
        .await;
    assert!(
        matches!(
            raced,
            Err(crmsync::connector::ConnectorError::Conflict { .. })
        ),
        "{raced:?}"
    );
    let after = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    assert_eq!(
        diary(&after.item).subject,
        "Weekly review",
        "nothing written"
    );
    assert_eq!(
        series_of(&after.item).exceptions.len(),
        2,
        "the user's edit is an exception"
    );

    // A stale version is a conflict.
    let stale = client
        .update(created.id, &Item::Diary(item.clone()), &read.version)
        .await;
    assert!(
        matches!(
            stale,
            Err(crmsync::connector::ConnectorError::Conflict { .. })
        ),
        "{stale:?}"
    );

    // The user changes the end (control API): read back.
    let row = rows(&so, rule).await[0].0;
    let ended = so
        .control(
            Method::PUT,
            &format!("/series/{row}/end"),
            Some(json!({"date": "2026-02-26"})),
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    assert_eq!(
        series_of(&read.item).recurrence.range.end,
        RangeEnd::Date(date(2026, 2, 26))
    );

    // Deleting the series deletes every row; it is gone.
    let gone = client
        .delete(Kind::Diary, created.id, Some(&read.version))
        .await
        .unwrap();
    assert_eq!(gone, crmsync::connector::Deleted::Deleted);
    assert!(rows(&so, rule).await.is_empty());
    assert_eq!(client.get(Kind::Diary, created.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_never_ending_series_in_two_windows_as_the_clock_moves() {
    let (so, client) = start(MONDAY).await;
    let item = series(
        "Europe/Oslo",
        "2026-01-05T09:00",
        Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::Monday],
            first_day_of_week: DayOfWeek::Sunday,
        },
        RangeEnd::Never,
    );
    let created = client
        .create(ASSOCIATE, &Item::Diary(item.clone()))
        .await
        .unwrap();
    let first = window("2026-01-05T00:00:00Z", "2026-03-01T00:00:00Z");
    let read = client
        .changes(&[ASSOCIATE], Kind::Diary, None, &first)
        .await
        .unwrap();
    let found: Vec<_> = read.by_associate[&ASSOCIATE]
        .iter()
        .filter(|o| o.id.series_rule().is_some())
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].item, Item::Diary(item.clone()));
    let occurrences = diary(&found[0].item).pattern_occurrences(&first).unwrap();
    assert_eq!(occurrences.len(), 8, "the Mondays of the first window");

    // 400 days on, housekeeping has added rows past the first year.
    so.sandbox
        .state()
        .clock
        .advance(std::time::Duration::from_secs(400 * 86_400));
    let second = window("2027-02-08T00:00:00Z", "2027-04-05T00:00:00Z");
    let read = client
        .changes(&[ASSOCIATE], Kind::Diary, None, &second)
        .await
        .unwrap();
    // (The scenario's own appointments may fall in this window: only series count here.)
    let found: Vec<_> = read.by_associate[&ASSOCIATE]
        .iter()
        .filter(|o| o.id.series_rule().is_some())
        .collect();
    assert_eq!(found.len(), 1, "still one series");
    assert_eq!(found[0].id, created.id);
    assert_eq!(
        found[0].item,
        Item::Diary(item.clone()),
        "every Monday of the second window has its row: nothing cancelled"
    );
    let ids = client
        .ids_in_window(&[ASSOCIATE], Kind::Diary, &second)
        .await
        .unwrap();
    let series_ids: Vec<CrmId> = ids[&ASSOCIATE]
        .iter()
        .copied()
        .filter(|id| id.series_rule().is_some())
        .collect();
    assert_eq!(series_ids, vec![created.id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn occurrences_keep_their_local_time_across_daylight_saving_changes() {
    let (so, client) = start(MONDAY).await;
    client.set_series_window(window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"));
    for zone in ["Europe/Oslo", "America/New_York"] {
        let item = series(
            zone,
            "2026-02-03T09:00",
            Pattern::Weekly {
                interval: 1,
                days: vec![DayOfWeek::Tuesday],
                first_day_of_week: DayOfWeek::Sunday,
            },
            RangeEnd::Date(date(2026, 12, 1)),
        );
        let created = client
            .create(ASSOCIATE, &Item::Diary(item.clone()))
            .await
            .unwrap();
        let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
        assert_eq!(read.item, Item::Diary(item), "{zone}");
        let rows = rows(&so, created.id.series_rule().unwrap()).await;
        assert!(rows.len() > 40, "{zone}: {}", rows.len());
        let tz = TimeZone::get(zone).unwrap();
        let offsets: BTreeSet<i32> = rows
            .iter()
            .map(|(_, start)| start.to_zoned(tz.clone()).offset().seconds())
            .collect();
        assert_eq!(offsets.len(), 2, "{zone}: both sides of the changes");
        for (row, start) in rows {
            let local = start.to_zoned(tz.clone());
            assert_eq!(
                (local.hour(), local.minute()),
                (9, 0),
                "{zone}: row {row} at {local}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn created_since_finds_a_series_as_the_series() {
    let (so, client) = start(MONDAY).await;
    let since = so.now();
    let item = Item::Diary(series(
        "Europe/Oslo",
        "2026-01-09T13:00",
        Pattern::Daily { interval: 7 },
        RangeEnd::Count(5),
    ));
    let created = client.create(ASSOCIATE, &item).await.unwrap();
    let found = client.created_since(ASSOCIATE, &item, since).await.unwrap();
    assert_eq!(found.items.len(), 1, "{:?}", found.items);
    assert_eq!(found.items[0].id, created.id);
    assert_eq!(found.items[0].item, item);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_day_series_with_an_exception_and_a_series_outside_the_window() {
    let (_so, client) = start(MONDAY).await;
    client.set_series_window(window("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"));
    let mut item = series(
        "Europe/Oslo",
        "2026-01-09T00:00",
        Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::Friday],
            first_day_of_week: DayOfWeek::Sunday,
        },
        RangeEnd::Count(8),
    );
    item.when = When::AllDay {
        start: date(2026, 1, 9),
        end: date(2026, 1, 10),
    };
    item.reminder_minutes = None;
    // All-day occurrences are named by midnight UTC of their original date.
    let key = |d: Date| d.to_zoned(TimeZone::UTC).unwrap().timestamp();
    let mut moved = DiaryItem {
        series: None,
        ..item.clone()
    };
    moved.when = When::AllDay {
        start: date(2026, 1, 17),
        end: date(2026, 1, 19),
    };
    moved.subject = "Offsite".into();
    {
        let s = item.series.as_mut().unwrap();
        s.exceptions.insert(key(date(2026, 1, 16)), moved);
        s.cancelled.insert(key(date(2026, 1, 30)));
    }
    let created = client
        .create(ASSOCIATE, &Item::Diary(item.clone()))
        .await
        .unwrap();
    let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    assert_eq!(read.item, Item::Diary(item.clone()));

    // A window after the series' last occurrence: the series still exists (`get` is not
    // `None`), with nothing of it in the window.
    client.set_series_window(window("2026-06-01T00:00:00Z", "2026-09-01T00:00:00Z"));
    let later = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    let s = series_of(&later.item);
    assert!(s.exceptions.is_empty() && s.cancelled.is_empty(), "{s:?}");
    assert_eq!(diary(&later.item).when, item.when);
}

/// Every row of a never-ending series inside the window moved alone (each to its own time):
/// the rows beyond the window still hold the series, so the series keeps its time and title
/// and each edit is an exception, not the series' new content.
#[tokio::test(flavor = "multi_thread")]
async fn every_row_in_the_window_edited_alone_leaves_the_series_as_it_was() {
    let (so, client) = start(MONDAY).await;
    let item = series(
        "Europe/Oslo",
        "2026-01-05T09:00",
        Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::Monday],
            first_day_of_week: DayOfWeek::Sunday,
        },
        RangeEnd::Never,
    );
    let created = client
        .create(ASSOCIATE, &Item::Diary(item.clone()))
        .await
        .unwrap();
    let rule = created.id.series_rule().unwrap();
    // Two Mondays in the window: 5 and 12 January.
    let w = window("2026-01-04T00:00:00Z", "2026-01-18T00:00:00Z");
    client.set_series_window(w);
    let rows = rows(&so, rule).await;
    assert!(rows.len() > 10, "rows up to the horizon: {}", rows.len());
    for (n, (row, at)) in rows.iter().take(2).enumerate() {
        so.sandbox
            .state()
            .clock
            .advance(std::time::Duration::from_secs(60));
        let start = *at + jiff::SignedDuration::from_hours(n as i64 + 1);
        let end = start + jiff::SignedDuration::from_hours(1);
        let moved = so
            .control(
                Method::PATCH,
                &format!("/appointments/{row}"),
                Some(
                    json!({"title": format!("Moved {n}"), "when": {"kind": "timed",
                    "start": start.to_string(), "end": end.to_string(),
                    "time_zone": "Europe/Oslo"}}),
                ),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.body);
    }

    let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    let d = diary(&read.item);
    assert_eq!(d.subject, item.subject, "the series keeps its title");
    assert_eq!(d.when, item.when, "and its time");
    let s = series_of(&read.item);
    assert_eq!(s.exceptions.len(), 2, "both edits are exceptions: {s:?}");
    for (n, (_, at)) in rows.iter().take(2).enumerate() {
        assert_eq!(s.exceptions[at].subject, format!("Moved {n}"));
    }
    assert!(s.cancelled.is_empty());
}

/// The first occurrence of a never-ending series cancelled through the client (an update
/// whose series cancels it) reads back cancelled, and the series still starts on its date.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_occurrence_cancelled_through_the_client_reads_back_cancelled() {
    let (_so, client) = start(MONDAY).await;
    let item = series(
        "Europe/Oslo",
        "2026-01-05T12:00",
        Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::Monday],
            first_day_of_week: DayOfWeek::Sunday,
        },
        RangeEnd::Never,
    );
    client.set_series_window(window("2025-12-06T00:00:00Z", "2026-05-05T00:00:00Z"));
    let created = client
        .create(ASSOCIATE, &Item::Diary(item.clone()))
        .await
        .unwrap();
    let When::Timed { start: first, .. } = item.when else {
        unreachable!()
    };
    let mut target = item.clone();
    target.series.as_mut().unwrap().cancelled.insert(first);
    let written = client
        .update(created.id, &Item::Diary(target.clone()), &created.version)
        .await
        .unwrap();
    let read = client.get(Kind::Diary, created.id).await.unwrap().unwrap();
    assert_eq!(series_of(&read.item).cancelled, BTreeSet::from([first]));
    assert_eq!(read.item, Item::Diary(target));
    assert_eq!(read.version, written.version);
}
