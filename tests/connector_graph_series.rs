//! Recurring series through the Graph client's `MailboxConnector` calls, against the
//! in-process Graph emulator: a series is one item (the master's id) in `changes`, `get`,
//! `find_by_stamp` and the answers of `create` and `update`; exceptions and cancellations
//! made in Outlook or by the client come back inside it; only the series window is read.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crmsync::connector::model::{
    Change, Changes, DiaryItem, Item, Kind, MailboxItemId, Observed, Series, When, Window,
};
use crmsync::connector::recurrence::{DayOfWeek, Pattern, Range, RangeEnd, Recurrence};
use crmsync::connector::{ConnectorError, MailboxConnector, MailboxRef, Written};

#[allow(dead_code)]
#[path = "connector_graph/harness.rs"]
mod harness;

use harness::{T, diary_at, stamp};

const OSLO: &str = "Europe/Oslo";

fn oslo() -> TimeZone {
    TimeZone::get(OSLO).unwrap()
}

/// 09:00 in Oslo on the date `days` after the sandbox's now, and that date.
fn nine_oclock(t: &T, days: i64) -> (Date, Timestamp) {
    let date = (t.now() + SignedDuration::from_hours(24 * days))
        .to_zoned(oslo())
        .date();
    (date, date.at(9, 0, 0, 0).in_tz(OSLO).unwrap().timestamp())
}

fn weekly(date: Date, end: RangeEnd) -> Recurrence {
    Recurrence {
        pattern: Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::of(date.weekday())],
            // Canonical for interval 1 (contract 4).
            first_day_of_week: DayOfWeek::Sunday,
        },
        range: Range { start: date, end },
        time_zone: OSLO.into(),
    }
}

/// A series item starting at `start` (the first occurrence, an hour and a half long).
fn series_item(start: Timestamp, recurrence: Recurrence, subject: &str) -> DiaryItem {
    let Item::Diary(mut d) = diary_at(start, subject) else {
        unreachable!()
    };
    d.series = Some(Box::new(Series {
        recurrence,
        exceptions: BTreeMap::new(),
        cancelled: BTreeSet::new(),
    }));
    d
}

fn series_of(item: &Item) -> &Series {
    match item {
        Item::Diary(d) => d.series.as_deref().expect("a series"),
        other => panic!("not a diary item: {other:?}"),
    }
}

fn upserts(c: &Changes<MailboxItemId>) -> Vec<&Observed<MailboxItemId>> {
    c.changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(o) => Some(o.as_ref()),
            Change::Removed(_) => None,
        })
        .collect()
}

/// The one upsert of `id` in a round; nothing else of the series (no occurrence) is an
/// upsert of its own.
fn the_series<'a>(
    c: &'a Changes<MailboxItemId>,
    id: &MailboxItemId,
) -> &'a Observed<MailboxItemId> {
    let all = upserts(c);
    let mine: Vec<_> = all.iter().filter(|o| o.id == *id).collect();
    assert_eq!(mine.len(), 1, "the series once: {:?}", c.changes);
    for o in &all {
        if let Item::Diary(d) = &o.item {
            assert!(
                o.id == *id || !d.subject.starts_with("Team"),
                "an occurrence reported on its own: {o:?}"
            );
        }
    }
    mine[0]
}

/// The series' instances as the emulator lists them to the user: (id, original start, start).
fn instances(t: &T, master: &str, window: &Window) -> Vec<(String, Timestamp, Timestamp)> {
    let user = t.mailbox(0).id.unwrap();
    let answer = t
        .state()
        .graph
        .act(
            t.now(),
            axum::http::Method::GET,
            &format!(
                "/users/{user}/events/{}/instances?startDateTime={}&endDateTime={}&$top=1000",
                crmsync::connector::graph::wire::segment(master),
                window.start,
                window.end
            ),
            None,
        )
        .unwrap()
        .unwrap();
    answer["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let start = instant(&i["start"]);
            let original = i["originalStart"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(start);
            (i["id"].as_str().unwrap().to_string(), original, start)
        })
        .collect()
}

/// A Graph `dateTimeTimeZone` as an instant (UTC or an IANA / Windows zone the emulator
/// names).
/// A weekly series at nine o'clock Oslo from two days on, `count` times, created through the
/// client with stamp `n`, and the first diary round after it.
async fn weekly_series_and_round(
    t: &T,
    m: &MailboxRef,
    count: u32,
    subject: &str,
    n: u32,
) -> (Written<MailboxItemId>, Changes<MailboxItemId>) {
    let (date, start) = nine_oclock(t, 2);
    let item = Item::Diary(series_item(
        start,
        weekly(date, RangeEnd::Count(count)),
        subject,
    ));
    let written = t
        .client
        .create(m, &item, &stamp(Kind::Diary, n))
        .await
        .unwrap();
    let round = t
        .client
        .changes(m, Kind::Diary, None, &t.window())
        .await
        .unwrap();
    (written, round)
}

fn instant(v: &Value) -> Timestamp {
    let local: jiff::civil::DateTime = v["dateTime"].as_str().unwrap()[..19].parse().unwrap();
    let zone = v["timeZone"].as_str().unwrap();
    let tz = match zone {
        "UTC" => TimeZone::UTC,
        "W. Europe Standard Time" => oslo(),
        other => TimeZone::get(other).unwrap(),
    };
    local.to_zoned(tz).unwrap().timestamp()
}

fn window_from(start: Timestamp, days: i64) -> Window {
    Window {
        start,
        end: start + SignedDuration::from_hours(24 * days),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_series_created_through_the_client_reads_back_equal() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, start) = nine_oclock(&t, 2);
    let d = series_item(start, weekly(date, RangeEnd::Count(10)), "Team weekly");
    let item = Item::Diary(d);
    let s = stamp(Kind::Diary, 501);
    let written = t.client.create(&m, &item, &s).await.unwrap();
    assert_eq!(
        written.item.as_ref(),
        Some(&item),
        "the answer is the series"
    );

    let round = t
        .client
        .changes(&m, Kind::Diary, None, &t.window())
        .await
        .unwrap();
    let seen = the_series(&round, &written.id);
    assert_eq!(seen.item, item);
    assert_eq!(seen.stamp.as_ref(), Some(&s));
    assert_eq!(seen.version, written.version);

    let got = t
        .client
        .get(&m, Kind::Diary, &written.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.item, item);
    assert_eq!(got.version, written.version);
    let found = t.client.find_by_stamp(&m, &s).await.unwrap().unwrap();
    assert_eq!(found.id, written.id);
    assert_eq!(found.item, item);

    // Nothing changed: an empty round.
    let idle = t
        .client
        .changes(&m, Kind::Diary, Some(&round.cursor), &t.window())
        .await
        .unwrap();
    assert!(idle.changes.is_empty(), "{:?}", idle.changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_and_a_cancellation_made_in_outlook_come_back_in_the_series() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let user = m.id.clone().unwrap();
    let (written, round) = weekly_series_and_round(&t, &m, 8, "Team Outlook", 502).await;
    the_series(&round, &written.id);

    // The user moves the second occurrence an hour later and renames it.
    let listed = instances(&t, &written.id.0, &t.window());
    assert_eq!(listed.len(), 8);
    let (second_id, second, _) = listed[1].clone();
    let later = second + SignedDuration::from_hours(1);
    t.state()
        .graph
        .user_update_event(
            t.now(),
            &user,
            &second_id,
            &json!({"subject": "Team, later",
                "start": {"dateTime": later.to_string(), "timeZone": "UTC"},
                "end": {"dateTime": (later + SignedDuration::from_mins(90)).to_string(), "timeZone": "UTC"}}),
        )
        .unwrap();
    let next = t
        .client
        .changes(&m, Kind::Diary, Some(&round.cursor), &t.window())
        .await
        .unwrap();
    let seen = the_series(&next, &written.id);
    let series = series_of(&seen.item);
    assert_eq!(series.exceptions.len(), 1, "{series:?}");
    let exception = &series.exceptions[&second];
    assert_eq!(exception.subject, "Team, later");
    assert_eq!(
        exception.when,
        When::Timed {
            start: later,
            end: later + SignedDuration::from_mins(90)
        }
    );
    assert!(exception.series.is_none());
    assert!(series.cancelled.is_empty());
    assert_ne!(seen.version, written.version);

    // The user cancels the fourth.
    let (fourth_id, fourth, _) = listed[3].clone();
    t.state()
        .graph
        .user_delete_event(t.now(), &user, &fourth_id)
        .unwrap();
    let after = t
        .client
        .changes(&m, Kind::Diary, Some(&next.cursor), &t.window())
        .await
        .unwrap();
    let seen2 = the_series(&after, &written.id);
    let series = series_of(&seen2.item);
    assert_eq!(series.cancelled, [fourth].into_iter().collect());
    assert!(series.exceptions.contains_key(&second));
    assert_ne!(seen2.version, seen.version);
    // The occurrence's removal names an id that is no item: never the series'.
    for c in &after.changes {
        if let Change::Removed(id) = c {
            assert_ne!(*id, written.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_writes_an_exception_and_a_cancellation_and_reads_them_back() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, start) = nine_oclock(&t, 3);
    let d = series_item(start, weekly(date, RangeEnd::Never), "Team written");
    let written = t
        .client
        .create(&m, &Item::Diary(d.clone()), &stamp(Kind::Diary, 503))
        .await
        .unwrap();
    t.client.set_series_window(t.window());

    let week = SignedDuration::from_hours(24 * 7);
    let (second, third) = (start + week, start + week * 2);
    let mut target = d.clone();
    let mut moved = diary_at(second + SignedDuration::from_hours(2), "Team, moved");
    if let Item::Diary(m) = &mut moved {
        m.location = "Bergen".into();
    }
    let Item::Diary(moved) = moved else {
        unreachable!()
    };
    {
        let s = target.series.as_mut().unwrap();
        s.exceptions.insert(second, moved.clone());
        s.cancelled.insert(third);
    }
    let target_item = Item::Diary(target.clone());

    // A stale version is a conflict, and nothing is written.
    let stale = crmsync::connector::model::Version("AAAA~0000".into());
    match t
        .client
        .update(&m, &written.id, &target_item, Some(&stale))
        .await
    {
        Err(ConnectorError::Conflict { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }

    let updated = t
        .client
        .update(&m, &written.id, &target_item, Some(&written.version))
        .await
        .unwrap();
    assert_eq!(updated.id, written.id);
    assert_eq!(updated.item.as_ref(), Some(&target_item));
    let got = t
        .client
        .get(&m, Kind::Diary, &written.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.item, target_item);
    assert_eq!(got.version, updated.version);
    // In the mailbox: the third is gone, the second moved.
    let listed = instances(&t, &written.id.0, &t.window());
    assert!(listed.iter().all(|(_, o, _)| *o != third));
    let (_, _, now_at) = listed.iter().find(|(_, o, _)| *o == second).unwrap();
    assert_eq!(*now_at, second + SignedDuration::from_hours(2));

    // The exception dropped from the item: written back to the series' time and content;
    // the content of the whole series changes too.
    let mut back = d.clone();
    back.subject = "Team written, renamed".into();
    back.series.as_mut().unwrap().cancelled.insert(third);
    let back_item = Item::Diary(back);
    let again = t
        .client
        .update(&m, &written.id, &back_item, Some(&updated.version))
        .await
        .unwrap();
    assert_eq!(again.item.as_ref(), Some(&back_item));
    let listed = instances(&t, &written.id.0, &t.window());
    let (_, _, now_at) = listed.iter().find(|(_, o, _)| *o == second).unwrap();
    assert_eq!(*now_at, second);

    // The same update again: nothing to write, the same version.
    let same = t
        .client
        .update(&m, &written.id, &back_item, Some(&again.version))
        .await
        .unwrap();
    assert_eq!(same.version, again.version);

    // A single item over the series, or a series over a single item: an item error.
    let single = diary_at(start, "Team single");
    assert!(matches!(
        t.client
            .update(&m, &written.id, &single, None)
            .await
            .unwrap_err(),
        ConnectorError::Item { .. }
    ));
    let one = t
        .client
        .create(&m, &single, &stamp(Kind::Diary, 504))
        .await
        .unwrap();
    assert!(matches!(
        t.client
            .update(&m, &one.id, &back_item, None)
            .await
            .unwrap_err(),
        ConnectorError::Item { .. }
    ));

    // Deleting the master deletes the series.
    t.client.delete(&m, Kind::Diary, &written.id).await.unwrap();
    assert!(
        t.client
            .get(&m, Kind::Diary, &written.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_ending_series_is_read_inside_each_window_only() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, start) = nine_oclock(&t, 1);
    let d = series_item(start, weekly(date, RangeEnd::Never), "Team forever");
    let written = t
        .client
        .create(&m, &Item::Diary(d.clone()), &stamp(Kind::Diary, 505))
        .await
        .unwrap();
    let week = SignedDuration::from_hours(24 * 7);
    let (early, late) = (start + week * 2, start + week * 12);
    let mut target = d.clone();
    {
        let s = target.series.as_mut().unwrap();
        s.cancelled.insert(early);
        let Item::Diary(mut e) = diary_at(late, "Team, special") else {
            unreachable!()
        };
        e.body = "Another agenda".into();
        s.exceptions.insert(late, e);
    }
    t.client
        .set_series_window(window_from(start - week, 7 * 20));
    t.client
        .update(
            &m,
            &written.id,
            &Item::Diary(target),
            Some(&written.version),
        )
        .await
        .unwrap();

    let first = window_from(start - week, 7 * 6);
    let second = window_from(start + week * 6, 7 * 10);
    let since = t.last_seq();
    let round = t
        .client
        .changes(&m, Kind::Diary, None, &first)
        .await
        .unwrap();
    let s1 = series_of(&the_series(&round, &written.id).item).clone();
    assert_eq!(s1.cancelled, [early].into_iter().collect());
    assert!(s1.exceptions.is_empty(), "{s1:?}");
    let round = t
        .client
        .changes(&m, Kind::Diary, None, &second)
        .await
        .unwrap();
    let seen = the_series(&round, &written.id);
    let s2 = series_of(&seen.item);
    assert!(s2.cancelled.is_empty(), "{s2:?}");
    assert_eq!(
        s2.exceptions.keys().copied().collect::<Vec<_>>(),
        vec![late]
    );
    // The item still starts at the first occurrence, outside the second window.
    let Item::Diary(seen_d) = &seen.item else {
        unreachable!()
    };
    assert_eq!(seen_d.when, d.when);
    let occurrences = seen_d.pattern_occurrences(&second).unwrap();
    assert_eq!(occurrences.len(), 10);
    assert!(
        occurrences
            .iter()
            .all(|o| o.original_start >= second.start && o.original_start < second.end)
    );
    // No request asked for more than the window (and the client's margin around it).
    for r in t.state().log.all().into_iter().filter(|r| r.seq > since) {
        if r.path.contains("/instances") {
            assert!(r.path.contains("endDateTime="), "{r:?}");
            let end = r.path.split("endDateTime=").nth(1).unwrap();
            let end = end.split('&').next().unwrap().replace("%3A", ":");
            let end: Timestamp = end.parse().unwrap();
            assert!(
                end <= second.end + SignedDuration::from_hours(24 * 14),
                "{r:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_makes_no_second_series() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, start) = nine_oclock(&t, 4);
    let item = Item::Diary(series_item(
        start,
        weekly(date, RangeEnd::Count(5)),
        "Team once",
    ));
    let s = stamp(Kind::Diary, 506);
    let first = t.client.create(&m, &item, &s).await.unwrap();
    let again = t.fresh_client().create(&m, &item, &s).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(first.version, again.version);
    let state = t.mailbox_state(0);
    let masters = state["calendar"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == "Team once")
        .count();
    assert_eq!(masters, 1, "one series in the mailbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_across_daylight_saving_stays_at_nine_local() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let year = t.now().to_zoned(oslo()).year() + 1;
    // The first Monday of March to the end of November: both changes of Europe/Oslo.
    let mut date = jiff::civil::date(year, 3, 1);
    while date.weekday() != jiff::civil::Weekday::Monday {
        date = date.tomorrow().unwrap();
    }
    let start = date.at(9, 0, 0, 0).in_tz(OSLO).unwrap().timestamp();
    let item = Item::Diary(series_item(
        start,
        weekly(date, RangeEnd::Date(jiff::civil::date(year, 11, 30))),
        "Team DST",
    ));
    let window = Window {
        start: jiff::civil::date(year, 2, 1)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp(),
        end: jiff::civil::date(year, 12, 31)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp(),
    };
    t.client.set_series_window(window);
    let written = t
        .client
        .create(&m, &item, &stamp(Kind::Diary, 507))
        .await
        .unwrap();
    assert_eq!(written.item.as_ref(), Some(&item));
    let round = t
        .client
        .changes(&m, Kind::Diary, None, &window)
        .await
        .unwrap();
    let seen = the_series(&round, &written.id);
    // Every occurrence the emulator has is where crmsync's expansion puts it: none looks
    // moved or cancelled.
    assert_eq!(seen.item, item);
    let listed = instances(&t, &written.id.0, &window);
    assert!(listed.len() >= 39, "{}", listed.len());
    for (_, _, at) in &listed {
        let local = at.to_zoned(oslo());
        assert_eq!((local.hour(), local.minute()), (9, 0), "{local}");
    }
    let Item::Diary(d) = &seen.item else {
        unreachable!()
    };
    let ours = d.pattern_occurrences(&window).unwrap();
    assert_eq!(ours.len(), listed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_outlook_cannot_hold_is_an_item_error() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, start) = nine_oclock(&t, 2);
    let mut r = weekly(date, RangeEnd::Count(3));
    r.pattern = Pattern::Weekly {
        interval: 120,
        days: vec![DayOfWeek::of(date.weekday())],
        first_day_of_week: DayOfWeek::Sunday,
    };
    let item = Item::Diary(series_item(start, r, "Team rare"));
    match t.client.create(&m, &item, &stamp(Kind::Diary, 508)).await {
        Err(ConnectorError::Item { what, .. }) => {
            assert!(what.contains("interval"), "{what}")
        }
        other => panic!("expected an item error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_moved_to_another_hour_with_an_earlier_end_reads_back_equal() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, start) = nine_oclock(&t, 2);
    let d = series_item(start, weekly(date, RangeEnd::Count(10)), "Team rule");
    let written = t
        .client
        .create(&m, &Item::Diary(d.clone()), &stamp(Kind::Diary, 509))
        .await
        .unwrap();
    // An hour later, ending after four weeks (an end date now).
    let later = start + SignedDuration::from_hours(1);
    let mut target = series_item(
        later,
        weekly(date, RangeEnd::Date(date + jiff::ToSpan::weeks(3))),
        "Team rule",
    );
    target.body = "New agenda".into();
    let target = Item::Diary(target);
    let updated = t
        .client
        .update(&m, &written.id, &target, Some(&written.version))
        .await
        .unwrap();
    assert_eq!(updated.item.as_ref(), Some(&target));
    let got = t
        .client
        .get(&m, Kind::Diary, &written.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.item, target);
    let listed = instances(&t, &written.id.0, &t.window());
    assert_eq!(listed.len(), 4);
    for (_, _, at) in &listed {
        assert_eq!(at.to_zoned(oslo()).hour(), 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_deleted_in_outlook_is_removed_by_its_masters_id() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (written, round) = weekly_series_and_round(&t, &m, 4, "Team gone", 510).await;
    the_series(&round, &written.id);
    t.state()
        .graph
        .user_delete_event(t.now(), &m.id.clone().unwrap(), &written.id.0)
        .unwrap();
    let next = t
        .client
        .changes(&m, Kind::Diary, Some(&round.cursor), &t.window())
        .await
        .unwrap();
    assert!(upserts(&next).is_empty(), "{:?}", next.changes);
    assert!(
        next.changes
            .iter()
            .any(|c| matches!(c, Change::Removed(id) if *id == written.id))
    );
    assert!(
        t.client
            .get(&m, Kind::Diary, &written.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_day_series_with_an_exception_and_a_cancellation_reads_back_equal() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, _) = nine_oclock(&t, 3);
    let Item::Diary(mut d) = diary_at(t.now(), "Team all day") else {
        unreachable!()
    };
    d.when = When::AllDay {
        start: date,
        end: date.tomorrow().unwrap(),
    };
    d.series = Some(Box::new(Series {
        recurrence: weekly(date, RangeEnd::Count(6)),
        exceptions: BTreeMap::new(),
        cancelled: BTreeSet::new(),
    }));
    let item = Item::Diary(d.clone());
    let written = t
        .client
        .create(&m, &item, &stamp(Kind::Diary, 511))
        .await
        .unwrap();
    assert_eq!(written.item.as_ref(), Some(&item));
    // Keys of all-day occurrences: midnight UTC of the original date.
    let key = |days: i64| {
        (date + jiff::ToSpan::days(days))
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
    };
    let mut target = d.clone();
    {
        let s = target.series.as_mut().unwrap();
        let mut e = d.clone();
        e.series = None;
        e.subject = "Team all day, moved".into();
        let to = date + jiff::ToSpan::days(8);
        e.when = When::AllDay {
            start: to,
            end: to.tomorrow().unwrap(),
        };
        s.exceptions.insert(key(7), e);
        s.cancelled.insert(key(14));
    }
    let target = Item::Diary(target);
    let updated = t
        .client
        .update(&m, &written.id, &target, Some(&written.version))
        .await
        .unwrap();
    assert_eq!(updated.item.as_ref(), Some(&target));
    let round = t
        .client
        .changes(&m, Kind::Diary, None, &t.window())
        .await
        .unwrap();
    assert_eq!(the_series(&round, &written.id).item, target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_cut_off_after_the_master_is_finished_by_the_next_create() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (date, start) = nine_oclock(&t, 2);
    let mut d = series_item(start, weekly(date, RangeEnd::Count(6)), "Team cut");
    let week = SignedDuration::from_hours(24 * 7);
    d.series.as_mut().unwrap().cancelled.insert(start + week);
    let item = Item::Diary(d);
    let s = stamp(Kind::Diary, 512);
    // The cancellation fails (the master was made): the create fails as a whole.
    let fault = t.fault(
        crmsync::sandbox::FaultKind::ServerError {
            status: 500,
            retry_after_secs: None,
        },
        None,
        Some("/events/"),
        Some("DELETE"),
        None,
    );
    let failed = t.client.create(&m, &item, &s).await;
    assert!(
        matches!(failed, Err(ConnectorError::Transient { .. })),
        "{failed:?}"
    );
    assert!(t.state().faults.remove(fault));
    // Sent again (as the pass does after a crash, or resolving its intent): the same series,
    // finished.
    let again = t.fresh_client().create(&m, &item, &s).await.unwrap();
    assert_eq!(again.item.as_ref(), Some(&item));
    let masters = t.mailbox_state(0)["calendar"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == "Team cut")
        .count();
    assert_eq!(masters, 1);
    let found = t.client.find_by_stamp(&m, &s).await.unwrap().unwrap();
    assert_eq!(found.id, again.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_poll_reports_a_changed_series_whole() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let (written, round) = weekly_series_and_round(&t, &m, 5, "Team polled", 513).await;
    let listed = instances(&t, &written.id.0, &t.window());
    let (third_id, third, _) = listed[2].clone();
    t.state()
        .graph
        .user_delete_event(t.now(), &m.id.clone().unwrap(), &third_id)
        .unwrap();
    let mut answers = t
        .client
        .poll(&[(m.clone(), Kind::Diary, round.cursor.clone())])
        .await;
    let polled = answers.pop().unwrap().unwrap();
    let seen = the_series(&polled, &written.id);
    assert_eq!(
        series_of(&seen.item).cancelled,
        [third].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_the_user_made_in_outlook_is_one_item_without_a_stamp() {
    let t = T::start().await;
    let m = t.mailbox(0);
    let round = t
        .client
        .changes(&m, Kind::Diary, None, &t.window())
        .await
        .unwrap();
    let (date, start) = nine_oclock(&t, 5);
    let local = |ts: Timestamp| ts.to_zoned(oslo()).datetime().to_string();
    let made = t
        .state()
        .graph
        .user_create_event(
            t.now(),
            &m.id.clone().unwrap(),
            &json!({"subject": "Team Outlook-made",
                "start": {"dateTime": local(start), "timeZone": "W. Europe Standard Time"},
                "end": {"dateTime": local(start + SignedDuration::from_mins(30)), "timeZone": "W. Europe Standard Time"},
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [format!("{:?}", date.weekday()).to_lowercase()]},
                    "range": {"type": "numbered", "startDate": date.to_string(), "numberOfOccurrences": 3}}}),
        )
        .unwrap();
    let next = t
        .client
        .changes(&m, Kind::Diary, Some(&round.cursor), &t.window())
        .await
        .unwrap();
    let id = MailboxItemId(made["id"].as_str().unwrap().to_string());
    let seen = the_series(&next, &id);
    assert_eq!(upserts(&next).len(), 1, "{:?}", next.changes);
    assert!(seen.stamp.is_none());
    let Item::Diary(d) = &seen.item else {
        unreachable!()
    };
    assert_eq!(
        d.when,
        When::Timed {
            start,
            end: start + SignedDuration::from_mins(30)
        }
    );
    // A Windows zone reads as its CLDR IANA zone ("W. Europe Standard Time": Berlin, the
    // same rules as Oslo).
    let mut expected = weekly(date, RangeEnd::Count(3));
    expected.time_zone = "Europe/Berlin".into();
    assert_eq!(series_of(&seen.item).recurrence, expected);
}
