//! Recurring series in the Graph emulator: the master, its expansion in calendarView,
//! instances and delta, exceptions, cancellations, changes of the series and time moving on.

use std::time::Duration;

use serde_json::{Value, json};

use super::{G, split_delta};

const PST: (&str, &str) = ("Prefer", "outlook.timezone=\"Pacific Standard Time\"");

/// A weekly series in `zone` at `time` from `start` (a Monday or the pattern's first day).
fn weekly(zone: &str, start: &str, time: &str, days: &[&str], range: Value) -> Value {
    let mut range = range;
    range["startDate"] = json!(start);
    json!({
        "subject": "Weekly",
        "start": {"dateTime": format!("{start}T{time}"), "timeZone": zone},
        "end": {"dateTime": format!("{start}T{time}"), "timeZone": zone},
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": days},
            "range": range,
        }
    })
}

async fn create(g: &G, user: &str, body: &Value) -> Value {
    let answer = g.post(&format!("/users/{user}/events"), body).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.body
}

async fn view(g: &G, user: &str, from: &str, to: &str, headers: &[(&str, &str)]) -> Vec<Value> {
    let (items, _) = g
        .all_pages(
            &format!("/users/{user}/calendarView?startDateTime={from}&endDateTime={to}"),
            headers,
        )
        .await;
    items
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn lunch(g: &G, user: &str) -> Value {
    let body = super::common::shape::reference("graph/event-recurring-request.json");
    create(g, user, &body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_series_is_a_master_and_calendar_view_lists_its_occurrences_not_it() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let master = lunch(&g, &user).await;
    assert_eq!(master["type"], "seriesMaster");
    assert_eq!(
        master["recurrence"]["pattern"]["daysOfWeek"],
        json!(["monday"])
    );
    assert_eq!(
        master["recurrence"]["range"]["recurrenceTimeZone"],
        "Pacific Standard Time"
    );
    let items = view(&g, &user, "2017-09-01", "2018-01-31", &[PST]).await;
    assert_eq!(
        items.len(),
        17,
        "every Monday from 2017-09-04 to 2017-12-31"
    );
    for item in &items {
        assert_eq!(item["type"], "occurrence");
        assert_eq!(item["seriesMasterId"], master["id"]);
        assert_eq!(item["subject"], "Let's go for lunch");
        let start = item["start"]["dateTime"].as_str().unwrap();
        assert!(start.ends_with("T12:00:00.0000000"), "{start}");
    }
    assert!(!ids(&items).contains(&master["id"].as_str().unwrap().to_string()));
    // Ids are the same on every answer, and each names its occurrence.
    let again = view(&g, &user, "2017-09-01", "2018-01-31", &[PST]).await;
    assert_eq!(ids(&items), ids(&again));
    let one = g
        .get(&format!("/users/{user}/events/{}", ids(&items)[3]))
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["start"]["dateTime"], "2017-09-25T19:00:00.0000000");
    assert_eq!(one.body["originalStart"], "2017-09-25T19:00:00Z");
    // The master is listed among the events, with its recurrence.
    let (events, _) = g.all_pages(&format!("/users/{user}/events"), &[]).await;
    let listed = events.iter().find(|e| e["id"] == master["id"]).unwrap();
    assert_eq!(listed["recurrence"], master["recurrence"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patched_occurrence_becomes_an_exception_and_a_deleted_one_is_gone() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let master = lunch(&g, &user).await;
    let master_id = master["id"].as_str().unwrap();
    let delta =
        format!("/users/{user}/calendarView/delta?startDateTime=2017-09-01&endDateTime=2018-01-31");
    let (first, link) = g.delta_round(&delta, &[]).await;
    // The first Monday is the master's own time: the master is listed too.
    assert_eq!(first.len(), 18);
    let occurrence = |i: usize| {
        first
            .iter()
            .filter(|e| e["type"] == "occurrence")
            .nth(i)
            .unwrap()
            .clone()
    };
    let bare = occurrence(0);
    assert!(
        bare.get("subject").is_none(),
        "delta sends occurrences bare"
    );
    let (moved, cancelled) = (occurrence(2), occurrence(5));
    let moved_id = moved["id"].as_str().unwrap();
    let patched = g
        .patch(
            &format!("/users/{user}/events/{moved_id}"),
            &json!({"subject": "Lunch moved", "start": {"dateTime": "2017-09-19T20:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2017-09-19T21:00:00", "timeZone": "UTC"}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["type"], "exception");
    assert_eq!(patched.body["id"], moved["id"], "an exception keeps its id");
    let cancelled_id = cancelled["id"].as_str().unwrap();
    let gone = g
        .delete(&format!("/users/{user}/events/{cancelled_id}"))
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_eq!(
        g.get(&format!("/users/{user}/events/{cancelled_id}"))
            .await
            .status,
        404
    );
    let items = view(&g, &user, "2017-09-01", "2018-01-31", &[]).await;
    assert_eq!(items.len(), 16);
    let exception = items.iter().find(|e| e["id"] == moved["id"]).unwrap();
    assert_eq!(exception["subject"], "Lunch moved");
    assert_eq!(
        exception["start"]["dateTime"],
        "2017-09-19T20:00:00.0000000"
    );
    let master_now = g.get(&format!("/users/{user}/events/{master_id}")).await;
    assert_eq!(master_now.body["subject"], "Let's go for lunch");
    let (next, _) = g.delta_round(&link, &[]).await;
    let (_, removed) = split_delta(&next);
    assert_eq!(removed, [cancelled_id.to_string()]);
    let listed = next.iter().find(|e| e["id"] == moved["id"]).unwrap();
    assert_eq!(listed["type"], "exception");
    assert_eq!(listed["subject"], "Lunch moved");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_end_date_removes_the_later_occurrences_and_deleting_the_master_all() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let master = lunch(&g, &user).await;
    let master_id = master["id"].as_str().unwrap();
    let delta =
        format!("/users/{user}/calendarView/delta?startDateTime=2017-09-01&endDateTime=2018-01-31");
    let (first, link) = g.delta_round(&delta, &[]).await;
    let mut recurrence = master["recurrence"].clone();
    recurrence["range"]["endDate"] = json!("2017-10-31");
    let patched = g
        .patch(
            &format!("/users/{user}/events/{master_id}"),
            &json!({"recurrence": recurrence}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        view(&g, &user, "2017-09-01", "2018-01-31", &[]).await.len(),
        9
    );
    let (next, link) = g.delta_round(&link, &[]).await;
    let (_, removed) = split_delta(&next);
    assert_eq!(removed.len(), 8, "the Mondays of November and December");
    let before: Vec<String> = ids(&first);
    assert!(removed.iter().all(|id| before.contains(id)));
    assert_eq!(
        g.delete(&format!("/users/{user}/events/{master_id}"))
            .await
            .status,
        204
    );
    assert!(
        view(&g, &user, "2017-09-01", "2018-01-31", &[])
            .await
            .is_empty()
    );
    let (last, _) = g.delta_round(&link, &[]).await;
    let (changed, removed) = split_delta(&last);
    assert!(changed.is_empty());
    assert_eq!(removed.len(), 10, "nine occurrences and the master");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_never_ending_series_shows_new_occurrences_as_time_and_the_window_move() {
    let mut g = G::start().await;
    let user = g.mailbox(0).id;
    let today = g.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let monday = today
        .nth_weekday(1, jiff::civil::Weekday::Monday)
        .unwrap()
        .to_string();
    let body = weekly(
        "UTC",
        &monday,
        "09:00:00",
        &["monday"],
        json!({"type": "noEnd"}),
    );
    create(&g, &user, &body).await;
    let window = |g: &G, days: i64| {
        let now = g.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let end = now.checked_add(jiff::Span::new().days(days)).unwrap();
        (now.to_string(), end.to_string())
    };
    let (from, to) = window(&g, 28);
    // The scenario's own events share the window; only the series' occurrences count.
    let occurrences = |items: Vec<Value>| -> Vec<Value> {
        items
            .into_iter()
            .filter(|e| e["type"] == "occurrence")
            .collect()
    };
    let before = occurrences(view(&g, &user, &from, &to, &[]).await);
    assert!((3..=4).contains(&before.len()), "{}", before.len());
    g.state().clock.advance(Duration::from_secs(90 * 86_400));
    g.token = g.new_token().await;
    let (from, to) = window(&g, 28);
    let (later, _) = g
        .delta_round(
            &format!("/users/{user}/calendarView/delta?startDateTime={from}&endDateTime={to}"),
            &[],
        )
        .await;
    let later = occurrences(later);
    assert!((3..=4).contains(&later.len()), "{}", later.len());
    assert!(
        later
            .iter()
            .all(|e| !ids(&before).contains(&e["id"].as_str().unwrap().to_string()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn occurrences_stay_at_nine_local_across_daylight_saving_in_oslo_and_new_york() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    for (zone, start, prefer) in [
        (
            "W. Europe Standard Time",
            "2024-03-04",
            "W. Europe Standard Time",
        ),
        (
            "Eastern Standard Time",
            "2024-03-04",
            "Eastern Standard Time",
        ),
    ] {
        let body = weekly(
            zone,
            start,
            "09:00:00",
            &["monday"],
            json!({"type": "endDate", "endDate": "2024-11-30"}),
        );
        let master = create(&g, &user, &body).await;
        let header = format!("outlook.timezone=\"{prefer}\"");
        let (items, _) = g
            .all_pages(
                &format!(
                    "/users/{user}/events/{}/instances?startDateTime=2024-03-01&endDateTime=2024-12-01",
                    master["id"].as_str().unwrap()
                ),
                &[("Prefer", header.as_str())],
            )
            .await;
        assert_eq!(items.len(), 39, "{zone}");
        for item in &items {
            let local = item["start"]["dateTime"].as_str().unwrap();
            assert!(local.ends_with("T09:00:00.0000000"), "{zone}: {local}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recurrences_graph_refuses_are_refused() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let path = format!("/users/{user}/events");
    let mut no_days = weekly(
        "UTC",
        "2024-03-04",
        "09:00:00",
        &[],
        json!({"type": "noEnd"}),
    );
    no_days["recurrence"]["pattern"]
        .as_object_mut()
        .unwrap()
        .remove("daysOfWeek");
    let wrong_start = weekly(
        "UTC",
        "2024-03-04",
        "09:00:00",
        &["monday"],
        json!({"type": "noEnd"}),
    );
    let mut wrong_start = wrong_start;
    wrong_start["recurrence"]["range"]["startDate"] = json!("2024-03-05");
    let no_count = weekly(
        "UTC",
        "2024-03-04",
        "09:00:00",
        &["monday"],
        json!({"type": "numbered"}),
    );
    for body in [no_days, wrong_start, no_count] {
        let answer = g.post(&path, &body).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(
            answer.body["error"]["code"],
            "ErrorPropertyValidationFailure"
        );
    }
    let master = create(
        &g,
        &user,
        &weekly(
            "UTC",
            "2024-03-04",
            "09:00:00",
            &["monday"],
            json!({"type": "numbered", "numberOfOccurrences": 2}),
        ),
    )
    .await;
    let made_single = g
        .patch(
            &format!("{path}/{}", master["id"].as_str().unwrap()),
            &json!({"recurrence": null}),
        )
        .await;
    assert_eq!(made_single.status, 400, "{}", made_single.body);
}
