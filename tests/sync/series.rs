//! Recurring series synced both ways: each pattern kind, exceptions and cancellations, a
//! changed end, a never-ending series as the clock moves, daylight-saving changes, a crash in
//! the middle of a series create and a user re-added over an existing series. A series is one
//! item on each side; these tests look at what users see: the occurrences.

use std::collections::BTreeSet;

use crmsync::connector::model::{DiaryItem, Series, When};
use crmsync::sandbox::superoffice::Span;
use crmsync::sandbox::superoffice::{SeriesEnd, UserSeries};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// A Monday in spring (so a window of -30/+120 days holds both zones' spring changes), noon UTC.
const SPRING: &str = "2027-03-01T12:00:00Z";

async fn world_at(at: &str) -> World {
    let at: Timestamp = at.parse().expect("a time");
    let world = World::with_scenario(Scenario::small(at)).await;
    world.sandbox.state().clock.set(at);
    world
}

fn series_of(item: &Item) -> Option<&Series> {
    match item {
        Item::Diary(DiaryItem { series, .. }) => series.as_deref(),
        _ => None,
    }
}

impl World {
    /// The series on each side: (CRM, mailbox).
    async fn series(&self) -> (Vec<Observed<CrmId>>, Vec<Observed<MailboxItemId>>) {
        let crm = self
            .crm_items(Kind::Diary)
            .await
            .into_values()
            .filter(|o| series_of(&o.item).is_some())
            .collect();
        let mailbox = self
            .mailbox_items(Kind::Diary)
            .await
            .into_iter()
            .filter(|o| series_of(&o.item).is_some())
            .collect();
        (crm, mailbox)
    }

    /// Synced, converged, and exactly `n` series on each side.
    async fn settled_with_series(&self, n: usize) -> (Observed<CrmId>, Observed<MailboxItemId>) {
        self.settle(Kind::Diary).await;
        self.assert_converged(Kind::Diary).await;
        let (crm, mailbox) = self.series().await;
        assert_eq!(crm.len(), n, "series in the CRM: {crm:#?}");
        assert_eq!(mailbox.len(), n, "series in the mailbox: {mailbox:#?}");
        (crm[0].clone(), mailbox[0].clone())
    }

    /// A user makes a series in Outlook; its master's id.
    fn outlook_series(&self, subject: &str, start: &str, zone: &str, recurrence: Value) -> String {
        let local: DateTime = start.parse().expect("a local time");
        let end = local + SignedDuration::from_hours(1);
        let master = self
            .graph_act(
                Method::POST,
                "events",
                Some(json!({
                    "subject": subject,
                    "start": {"dateTime": local.to_string(), "timeZone": zone},
                    "end": {"dateTime": end.to_string(), "timeZone": zone},
                    "recurrence": recurrence,
                })),
            )
            .expect("the created master");
        master["id"].as_str().expect("an id").to_string()
    }

    /// A user makes a series in SuperOffice (`zone_id` as `PreferredTZLocation`); its rows.
    fn crm_series(
        &self,
        subject: &str,
        start: Timestamp,
        zone: &str,
        zone_id: u32,
        recurrence: Value,
    ) -> Vec<u32> {
        let new: UserSeries = serde_json::from_value(json!({
            "appointment": {
                "associate_id": self.user.associate_id,
                "title": subject,
                "when": {"kind": "timed", "start": start.to_string(),
                         "end": (start + SignedDuration::from_hours(1)).to_string(),
                         "time_zone": zone},
            },
            "recurrence": recurrence,
            "zone_id": zone_id,
        }))
        .expect("a user series");
        self.sandbox
            .state()
            .superoffice
            .user_create_series(new, self.now())
            .expect("the CRM series")
            .into_iter()
            .map(|row| row.id)
            .collect()
    }

    /// The occurrences of a master in the window, as Outlook shows them: (id, start, original
    /// start).
    fn instances(&self, master: &str) -> Vec<(String, Timestamp, Timestamp)> {
        let window = self.window();
        let page = self
            .graph_act(
                Method::GET,
                &format!(
                    "events/{master}/instances?startDateTime={}&endDateTime={}&$top=500",
                    window.start, window.end
                ),
                None,
            )
            .expect("instances");
        assert!(page["@odata.nextLink"].is_null(), "one page holds them all");
        let time = |v: &Value| -> Timestamp {
            let text = v["dateTime"].as_str().expect("a dateTime");
            let civil: DateTime = text.parse().expect("a civil time");
            let zone = v["timeZone"].as_str().unwrap_or("UTC");
            let zone = if zone == "UTC" {
                TimeZone::UTC
            } else {
                TimeZone::get(zone).expect("a zone")
            };
            civil.to_zoned(zone).expect("a zoned time").timestamp()
        };
        let mut out: Vec<_> = page["value"]
            .as_array()
            .expect("a page")
            .iter()
            .map(|i| {
                let start = time(&i["start"]);
                let original = i["originalStart"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(start);
                (
                    i["id"].as_str().expect("an id").to_string(),
                    start,
                    original,
                )
            })
            .collect();
        out.sort_by_key(|i| i.2);
        out
    }

    /// The rows of the CRM series `id` inside the window: (row id, start).
    fn rows(&self, any_row: u32) -> Vec<(u32, Timestamp)> {
        let window = self.window();
        self.sandbox
            .state()
            .superoffice
            .series_rows(any_row)
            .expect("the series' rows")
            .into_iter()
            .filter_map(|row| timed_start(&row.data.span).map(|start| (row.id, start)))
            .filter(|(_, start)| *start >= window.start && *start < window.end)
            .collect()
    }
}

fn timed_start(span: &Span) -> Option<Timestamp> {
    match span {
        Span::Timed { start, .. } => Some(*start),
        Span::AllDay { .. } => None,
    }
}

fn graph_weekly(days: &[&str], start: &str, range: Value) -> Value {
    let mut range = range;
    range["startDate"] = json!(start);
    json!({
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": days, "firstDayOfWeek": "sunday"},
        "range": range,
    })
}

fn no_end() -> Value {
    json!({"type": "noEnd", "recurrenceTimeZone": "Europe/Oslo"})
}

/// Each pattern kind as Outlook writes it, from Monday 2027-03-01, and the local start.
fn outlook_patterns() -> Vec<(&'static str, Value)> {
    let range =
        |start: &str| json!({"type": "numbered", "numberOfOccurrences": 6, "startDate": start});
    vec![
        (
            "2027-03-01T09:00:00",
            json!({"pattern": {"type": "daily", "interval": 2}, "range": range("2027-03-01")}),
        ),
        (
            "2027-03-01T10:00:00",
            json!({"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"],
                               "firstDayOfWeek": "sunday"}, "range": range("2027-03-01")}),
        ),
        (
            "2027-03-15T11:00:00",
            json!({"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
                   "range": range("2027-03-15")}),
        ),
        (
            "2027-03-09T12:00:00",
            json!({"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"],
                               "index": "second"}, "range": range("2027-03-09")}),
        ),
        (
            "2027-03-20T13:00:00",
            json!({"pattern": {"type": "absoluteYearly", "interval": 1, "month": 3, "dayOfMonth": 20},
                   "range": range("2027-03-20")}),
        ),
        (
            "2027-03-26T14:00:00",
            json!({"pattern": {"type": "relativeYearly", "interval": 1, "month": 3,
                               "daysOfWeek": ["friday"], "index": "last"}, "range": range("2027-03-26")}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_kind_made_in_outlook_reaches_superoffice_once() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    for (n, (start, recurrence)) in outlook_patterns().into_iter().enumerate() {
        world.outlook_series(
            &format!("Outlook series {n}"),
            start,
            "Europe/Oslo",
            recurrence,
        );
    }
    world.settled_with_series(6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_kind_made_in_superoffice_reaches_outlook_once() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    let counter = |n: u32| json!({"RecurrenceEndType": "Counter", "RecurrenceCounter": n});
    let with = |base: Value, end: Value| {
        let mut r = base;
        if let (Value::Object(r), Value::Object(end)) = (&mut r, end) {
            r.extend(end);
        }
        r
    };
    let patterns = [
        (
            "2027-03-01T08:00:00Z",
            json!({"IsRecurrence": true, "Pattern": "Daily",
            "DayPattern": {"Pattern": "EveryCyclicDay", "Cycle": 2}}),
        ),
        (
            "2027-03-01T09:00:00Z",
            json!({"IsRecurrence": true, "Pattern": "Weekly",
            "WeekPattern": {"Weekdays": "Monday, Thursday", "Cycle": 1}}),
        ),
        (
            "2027-03-15T10:00:00Z",
            json!({"IsRecurrence": true, "Pattern": "Monthly",
            "MonthPattern": {"Pattern": "DayOfMonth", "Day": 15, "Cycle": 1}}),
        ),
        (
            "2027-03-09T11:00:00Z",
            json!({"IsRecurrence": true, "Pattern": "Monthly",
            "MonthPattern": {"Pattern": "WeekdayOfMonth", "Weekday": "Tuesday",
                             "WeekOfMonth": "Second", "Cycle": 1}}),
        ),
        (
            "2027-03-20T12:00:00Z",
            json!({"IsRecurrence": true, "Pattern": "Yearly",
            "YearPattern": {"Pattern": "DayOfMonth", "Day": 20, "Cycle": 3}}),
        ),
        (
            "2027-03-26T13:00:00Z",
            json!({"IsRecurrence": true, "Pattern": "Yearly",
            "YearPattern": {"Pattern": "WeekdayOfMonth", "Weekday": "Friday",
                            "WeekOfMonth": "Last", "Cycle": 3}}),
        ),
    ];
    for (n, (start, recurrence)) in patterns.into_iter().enumerate() {
        world.crm_series(
            &format!("CRM series {n}"),
            start.parse().unwrap(),
            "Europe/Oslo",
            0,
            with(recurrence, counter(6)),
        );
    }
    world.settled_with_series(6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occurrence_moved_or_cancelled_in_outlook_is_moved_or_cancelled_in_superoffice() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    let master = world.outlook_series(
        "Weekly review",
        "2027-03-02T09:00:00",
        "Europe/Oslo",
        graph_weekly(&["tuesday"], "2027-03-02", no_end()),
    );
    let (crm, _) = world.settled_with_series(1).await;
    let instances = world.instances(&master);
    let (moved_id, moved_start, moved_original) = instances[1].clone();
    let (cancelled_id, _, cancelled_original) = instances[2].clone();
    let later = moved_start + SignedDuration::from_hours(2);
    let oslo = |t: Timestamp| t.to_zoned(TimeZone::get("Europe/Oslo").unwrap()).datetime();
    world.graph_act(
        Method::PATCH,
        &format!("events/{moved_id}"),
        Some(json!({
            "subject": "Weekly review (later)",
            "start": {"dateTime": oslo(later).to_string(), "timeZone": "Europe/Oslo"},
            "end": {"dateTime": (oslo(later) + SignedDuration::from_hours(1)).to_string(),
                    "timeZone": "Europe/Oslo"},
        })),
    );
    world.graph_act(Method::DELETE, &format!("events/{cancelled_id}"), None);

    let (crm_after, _) = world.settled_with_series(1).await;
    assert_eq!(crm_after.id, crm.id, "still the same series in the CRM");
    let series = series_of(&crm_after.item).expect("a series");
    let exception = series
        .exceptions
        .get(&moved_original)
        .expect("the moved occurrence is an exception in the CRM");
    assert_eq!(exception.subject, "Weekly review (later)");
    assert!(matches!(exception.when, When::Timed { start, .. } if start == later));
    assert!(series.cancelled.contains(&cancelled_original));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occurrence_moved_or_cancelled_in_superoffice_is_moved_or_cancelled_in_outlook() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    let rows = world.crm_series(
        "Stand-up",
        "2027-03-02T08:00:00Z".parse().unwrap(),
        "Europe/Oslo",
        0,
        json!({"IsRecurrence": true, "Pattern": "Weekly",
               "WeekPattern": {"Weekdays": "Tuesday", "Cycle": 1}}),
    );
    let (_, mailbox) = world.settled_with_series(1).await;
    let row = world.rows(rows[0]);
    let (moved_row, moved_start) = row[1];
    let (cancelled_row, cancelled_start) = row[2];
    let later = moved_start + SignedDuration::from_hours(3);
    world.crm_move_row(moved_row, later, Some("Stand-up (moved)"));
    world.crm_cancel_row(cancelled_row);

    world.settled_with_series(1).await;
    let instances = world.instances(&mailbox.id.0);
    let moved = instances
        .iter()
        .find(|i| i.2 == moved_start)
        .expect("the moved occurrence is still in Outlook");
    assert_eq!(moved.1, later, "moved in Outlook too");
    assert!(
        instances.iter().all(|i| i.2 != cancelled_start),
        "the cancelled occurrence is gone from Outlook: {instances:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_end_date_reaches_the_other_side_both_ways() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    let master = world.outlook_series(
        "Course",
        "2027-03-03T13:00:00",
        "Europe/Oslo",
        graph_weekly(
            &["wednesday"],
            "2027-03-03",
            json!({"type": "endDate", "endDate": "2027-05-26", "recurrenceTimeZone": "Europe/Oslo"}),
        ),
    );
    let (crm, _) = world.settled_with_series(1).await;
    // Shortened in Outlook: the CRM keeps rows up to the new end only.
    world.graph_act(
        Method::PATCH,
        &format!("events/{master}"),
        Some(json!({"recurrence": graph_weekly(
            &["wednesday"],
            "2027-03-03",
            json!({"type": "endDate", "endDate": "2027-03-24", "recurrenceTimeZone": "Europe/Oslo"}),
        )})),
    );
    let (crm_after, _) = world.settled_with_series(1).await;
    assert_eq!(crm_after.id, crm.id);
    let rule = crm.id.series_rule().expect("a series id");
    let rows = world.crm_rows_of_rule(rule);
    assert_eq!(rows.len(), 4, "March 3, 10, 17 and 24: {rows:#?}");

    // Lengthened in SuperOffice: Outlook shows the new occurrences.
    world
        .sandbox
        .state()
        .superoffice
        .user_set_series_end(rows[0], SeriesEnd::Count(6), world.now())
        .expect("the user changes the end");
    let (crm_now, mailbox_now) = world.settled_with_series(1).await;
    assert_eq!(
        world.instances(&master).len(),
        6,
        "CRM {crm_now:#?}\nmailbox {mailbox_now:#?}"
    );
}

impl World {
    /// The ids of the rows of rule `rule` (any date).
    fn crm_rows_of_rule(&self, rule: u32) -> Vec<u32> {
        let state = self.sandbox.state();
        let store = &state.superoffice;
        let mut rows: Vec<u32> = store
            .appointments()
            .into_iter()
            .filter(|a| a.occurrence.is_some_and(|o| o.rule_id == rule))
            .map(|a| a.id)
            .collect();
        rows.sort();
        rows
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_ending_series_shows_its_new_occurrences_as_the_window_moves() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    world.crm_series(
        "Weekly 1:1",
        "2027-03-04T14:00:00Z".parse().unwrap(),
        "Europe/Oslo",
        0,
        json!({"IsRecurrence": true, "Pattern": "Weekly",
               "WeekPattern": {"Weekdays": "Thursday", "Cycle": 1}}),
    );
    let (_, mailbox) = world.settled_with_series(1).await;
    let before: BTreeSet<Timestamp> = world.instances(&mailbox.id.0).iter().map(|i| i.2).collect();
    // Half a year on: the window moved; no user did anything.
    world
        .sandbox
        .state()
        .clock
        .advance(std::time::Duration::from_secs(200 * 24 * 3600));
    let (_, mailbox_after) = world.settled_with_series(1).await;
    assert_eq!(mailbox_after.id, mailbox.id, "still one series");
    let after: Vec<Timestamp> = world.instances(&mailbox.id.0).iter().map(|i| i.2).collect();
    let window = world.window();
    assert!(after.iter().all(|t| !before.contains(t)), "all new dates");
    // Every Thursday of the new window is there, on both sides.
    let weeks = (window.end - window.start).get_days() / 7;
    assert!(
        after.len() as i32 >= weeks - 1,
        "{} of {weeks} weeks",
        after.len()
    );
    let (crm, _) = world.series().await;
    let cancelled = &series_of(&crm[0].item).expect("a series").cancelled;
    assert!(
        cancelled.is_empty(),
        "no occurrence missing in the CRM: {cancelled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occurrences_keep_their_local_time_across_both_daylight_saving_changes() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    // 09:00 in Oslo, made in Outlook; 09:00 in New York, made in SuperOffice (zone 460).
    let oslo_master = world.outlook_series(
        "Oslo nine o'clock",
        "2027-02-01T09:00:00",
        "Europe/Oslo",
        graph_weekly(&["monday"], "2027-02-01", no_end()),
    );
    let ny = TimeZone::get("America/New_York").unwrap();
    let ny_first = jiff::civil::date(2027, 2, 2)
        .at(9, 0, 0, 0)
        .to_zoned(ny.clone())
        .unwrap()
        .timestamp();
    world.crm_series(
        "New York nine o'clock",
        ny_first,
        "America/New_York",
        460,
        json!({"IsRecurrence": true, "Pattern": "Weekly",
               "WeekPattern": {"Weekdays": "Tuesday", "Cycle": 1}}),
    );
    let oslo = TimeZone::get("Europe/Oslo").unwrap();
    // Both series as SuperOffice holds them: a row per occurrence, each at 09:00 local.
    let check = |world: &World| {
        for (zone, title) in [(&oslo, "Oslo nine o'clock"), (&ny, "New York nine o'clock")] {
            let rows = world.crm_rows_in_window_at_nine(zone, title);
            assert!(
                rows > 10,
                "{title}: {rows} rows in the window {:?}",
                world.window()
            );
        }
    };
    world.settled_with_series(2).await;
    check(&world);
    let (_, mailbox) = world.series().await;
    let ny_master = mailbox
        .iter()
        .find(|m| matches!(&m.item, Item::Diary(d) if d.subject.starts_with("New York")))
        .expect("the New York series in Outlook")
        .id
        .0
        .clone();
    let at_nine = |world: &World, master: &str, zone: &TimeZone| {
        let instances = world.instances(master);
        assert!(instances.len() > 10, "{} occurrences", instances.len());
        for (_, start, _) in &instances {
            let local = start.to_zoned(zone.clone());
            assert_eq!((local.hour(), local.minute()), (9, 0), "{local}");
        }
    };
    at_nine(&world, &ny_master, &ny);
    at_nine(&world, &oslo_master, &oslo);
    // The autumn changes: the window moves over them.
    world
        .sandbox
        .state()
        .clock
        .set("2027-10-15T12:00:00Z".parse().unwrap());
    world.settled_with_series(2).await;
    check(&world);
    at_nine(&world, &ny_master, &ny);
    at_nine(&world, &oslo_master, &oslo);
}

impl World {
    /// How many rows titled `title` start in the window, all at 09:00 in `zone` (asserted).
    fn crm_rows_in_window_at_nine(&self, zone: &TimeZone, title: &str) -> usize {
        let window = self.window();
        let rows: Vec<Timestamp> = self
            .sandbox
            .state()
            .superoffice
            .appointments()
            .into_iter()
            .filter(|a| a.data.title == title && a.occurrence.is_some())
            .filter_map(|a| timed_start(&a.data.span))
            .filter(|s| *s >= window.start && *s < window.end)
            .collect();
        for start in &rows {
            let local = start.to_zoned(zone.clone());
            assert_eq!((local.hour(), local.minute()), (9, 0), "{title}: {local}");
        }
        rows.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_re_added_over_an_existing_series_gets_no_second_series() {
    let mut world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    world.outlook_series(
        "Board meeting",
        "2027-03-05T10:00:00",
        "Europe/Oslo",
        json!({"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 5},
               "range": {"type": "noEnd", "startDate": "2027-03-05"}}),
    );
    world.crm_series(
        "Sales call",
        "2027-03-08T09:00:00Z".parse().unwrap(),
        "Europe/Oslo",
        0,
        json!({"IsRecurrence": true, "Pattern": "Weekly",
               "WeekPattern": {"Weekdays": "Monday", "Cycle": 1}}),
    );
    world.settled_with_series(2).await;
    assert!(world.history.drop_user(&world.user.id).unwrap());
    world.user.id = SyncUserId::generate();
    let reports = world.settle(Kind::Diary).await;
    assert_eq!(reports[0].created_in_mailbox, 0, "{:#?}", reports[0]);
    assert_eq!(reports[0].created_in_crm, 0, "{:#?}", reports[0]);
    world.settled_with_series(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_create_cut_off_between_master_and_occurrences_is_finished_not_repeated() {
    use crmsync::sandbox::{Emulator, FaultKind, FaultRule};
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    let rows = world.crm_series(
        "Steering group",
        "2027-03-03T10:00:00Z".parse().unwrap(),
        "Europe/Oslo",
        0,
        json!({"IsRecurrence": true, "Pattern": "Weekly",
               "WeekPattern": {"Weekdays": "Wednesday", "Cycle": 1},
               "RecurrenceEndType": "Counter", "RecurrenceCounter": 8}),
    );
    // One occurrence moved, one cancelled: the create must write both after the master.
    let row = world.rows(rows[0]);
    let moved = row[1].1 + SignedDuration::from_hours(1);
    world.crm_move_row(row[1].0, moved, None);
    world.crm_cancel_row(row[3].0);

    // Every write to an occurrence fails: the master is made, its occurrences are not.
    world
        .sandbox
        .state()
        .faults
        .add(FaultRule {
            kind: FaultKind::ServerError {
                status: 500,
                retry_after_secs: None,
            },
            emulator: Some(Emulator::Graph),
            mailbox: None,
            path_contains: None,
            method: Some("PATCH".into()),
            next: Some(50),
            probability: None,
        })
        .expect("a fault");
    let cut = world.try_pass(Kind::Diary).await;
    assert!(cut.is_err(), "the create did not finish: {cut:#?}");
    let (_, half) = world.series().await;
    assert_eq!(half.len(), 1, "the master was made");
    world.sandbox.state().faults.clear();

    let reports = world.settle(Kind::Diary).await;
    assert_eq!(reports[0].intents_resolved, 1, "{:#?}", reports[0]);
    assert_eq!(
        reports[0].conflicts.len(),
        1,
        "the half-made copy and the CRM series were settled: {:#?}",
        reports[0]
    );
    let (_, mailbox) = world.settled_with_series(1).await;
    assert_eq!(mailbox.id, half[0].id, "finished, not made again");
    let series = series_of(&mailbox.item).expect("a series");
    assert_eq!(series.exceptions.len(), 1, "{series:#?}");
    assert_eq!(series.cancelled.len(), 1, "{series:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_superoffice_cannot_hold_is_reported_and_left_alone() {
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    world.outlook_series(
        "Every other year",
        "2027-03-10T09:00:00",
        "Europe/Oslo",
        json!({"pattern": {"type": "absoluteYearly", "interval": 2, "month": 3, "dayOfMonth": 10},
               "range": {"type": "noEnd", "startDate": "2027-03-10"}}),
    );
    let reports = world.settle(Kind::Diary).await;
    assert_eq!(reports[0].created_in_crm, 0);
    let reported: Vec<String> = reports
        .iter()
        .flat_map(|r| r.quarantined.iter().map(|q| format!("{q:?}")))
        .collect();
    assert!(
        reported.iter().any(|q| q.contains("year")),
        "the item is reported with the reason: {reported:#?}"
    );
    let (crm, mailbox) = world.series().await;
    assert!(crm.is_empty(), "nothing distorted in the CRM: {crm:#?}");
    assert_eq!(mailbox.len(), 1, "the Outlook series is left as it is");
    assert!(mailbox[0].stamp.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_create_in_superoffice_cut_off_after_the_rule_is_finished_not_repeated() {
    use crmsync::sandbox::{Emulator, FaultKind, FaultRule};
    let world = world_at(SPRING).await;
    world.settle(Kind::Diary).await;
    let master = world.outlook_series(
        "Planning",
        "2027-03-04T13:00:00",
        "Europe/Oslo",
        graph_weekly(
            &["thursday"],
            "2027-03-04",
            json!({"type": "numbered", "numberOfOccurrences": 8, "recurrenceTimeZone": "Europe/Oslo"}),
        ),
    );
    let instances = world.instances(&master);
    let (moved_id, moved_start, moved_original) = instances[1].clone();
    let later = moved_start + SignedDuration::from_hours(2);
    let oslo = |t: Timestamp| t.to_zoned(TimeZone::get("Europe/Oslo").unwrap()).datetime();
    world.graph_act(
        Method::PATCH,
        &format!("events/{moved_id}"),
        Some(json!({
            "start": {"dateTime": oslo(later).to_string(), "timeZone": "Europe/Oslo"},
            "end": {"dateTime": (oslo(later) + SignedDuration::from_hours(1)).to_string(),
                    "timeZone": "Europe/Oslo"},
        })),
    );
    let (cancelled_id, _, cancelled_original) = instances[4].clone();
    world.graph_act(Method::DELETE, &format!("events/{cancelled_id}"), None);

    // Every write to a row fails: the rule and its rows are made, the exception and the
    // cancellation are not.
    for method in ["PATCH", "PUT", "DELETE"] {
        world
            .sandbox
            .state()
            .faults
            .add(FaultRule {
                kind: FaultKind::ServerError {
                    status: 500,
                    retry_after_secs: None,
                },
                emulator: Some(Emulator::SuperOffice),
                mailbox: None,
                path_contains: None,
                method: Some(method.into()),
                next: Some(50),
                probability: None,
            })
            .expect("a fault");
    }
    let cut = world.try_pass(Kind::Diary).await;
    assert!(cut.is_err(), "the create did not finish: {cut:#?}");
    let (half, _) = world.series().await;
    assert_eq!(half.len(), 1, "the rule was made");
    world.sandbox.state().faults.clear();

    let reports = world.settle(Kind::Diary).await;
    assert_eq!(reports[0].intents_resolved, 1, "{:#?}", reports[0]);
    let (crm, _) = world.settled_with_series(1).await;
    assert_eq!(crm.id, half[0].id, "finished, not made again");
    let series = series_of(&crm.item).expect("a series");
    assert!(
        series.exceptions.contains_key(&moved_original),
        "the moved occurrence: {series:#?}"
    );
    assert!(
        series.cancelled.contains(&cancelled_original),
        "{series:#?}"
    );
}
