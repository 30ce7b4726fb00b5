//! Writing a recurring series to Graph, as request bodies and paths (`series_io` sends
//! them): the master is created like any event plus `recurrence`; an exception is
//! a PATCH of the occurrence's id; a cancellation is a DELETE of it. An occurrence's id is
//! found among the master's `instances` by its original start.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::patterned::{self, GraphRecurrenceError};
use super::{GraphClient, delta, map, wire};
use crate::connector::MailboxRef;
use crate::connector::model::{DiaryItem, Kind, Stamp, When, Window};
use crate::connector::recurrence::Recurrence;

fn wall(ts: Timestamp, tz: &jiff::tz::TimeZone, zone: &str) -> Value {
    let civil = ts.to_zoned(tz.clone()).datetime();
    json!({"dateTime": civil.strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": zone})
}

/// The body of `POST /users/{u}/events` for a series master: [`map::event_create`] of its
/// first occurrence with [`series_times`].
pub fn series_create(
    item: &DiaryItem,
    recurrence: &Recurrence,
    stamp: &Stamp,
    transaction_id: &str,
) -> Result<Value, GraphRecurrenceError> {
    let mut body = map::event_create(item, stamp, transaction_id);
    if let (Value::Object(out), Value::Object(times)) = (&mut body, series_times(item, recurrence)?)
    {
        out.extend(times);
    }
    Ok(body)
}

/// The times and `recurrence` of a series master (for a create, or a PATCH of a master
/// whose first occurrence or rule changed): `start` and `end` written at the first
/// occurrence's wall time in the series' zone (so that Exchange keeps the series' wall time
/// and `originalStartTimeZone`), `isAllDay`, and `recurrence`. Graph wants the range to start
/// on the first occurrence's date in that zone: another date is an error here rather than a
/// 400 there.
pub fn series_times(
    item: &DiaryItem,
    recurrence: &Recurrence,
) -> Result<Value, GraphRecurrenceError> {
    let graph = patterned::to_graph(recurrence)?;
    let tz = recurrence
        .zone()
        .map_err(|source| GraphRecurrenceError::Invalid {
            field: "recurrence.range.recurrenceTimeZone",
            source,
        })?;
    let zone = recurrence.time_zone.as_str();
    let mut body = json!({});
    let first_date = match item.when {
        When::Timed { start, end } => {
            body["isAllDay"] = json!(false);
            body["start"] = wall(start, &tz, zone);
            body["end"] = wall(end, &tz, zone);
            start.to_zoned(tz).date()
        }
        // Whole days: the same dates, at midnight in the series' zone.
        When::AllDay { start, end } => {
            body["isAllDay"] = json!(true);
            body["start"] = json!({"dateTime": wire::midnight(start), "timeZone": zone});
            body["end"] = json!({"dateTime": wire::midnight(end), "timeZone": zone});
            start
        }
    };
    if first_date != recurrence.range.start {
        return Err(GraphRecurrenceError::Field {
            field: "recurrence.range.startDate",
            what: format!(
                "{} is not the first occurrence's date {first_date} in {zone}",
                recurrence.range.start
            ),
        });
    }
    body["recurrence"] = graph;
    Ok(body)
}

/// The PATCH that makes the occurrence `current` (read as events are, with
/// [`map::expand_properties`]) show `item`, and so an exception: [`map::event_patch`] without
/// the extended properties, which are the series' (its stamp names the whole series).
/// `None`: nothing differs.
pub fn exception_patch(current: &Value, item: &DiaryItem) -> Option<Value> {
    let mut patch = map::event_patch(current, item)?;
    let fields = patch.as_object_mut()?;
    fields.remove("singleValueExtendedProperties");
    (!fields.is_empty()).then_some(patch)
}

/// The path of an occurrence or exception: PATCH it with [`exception_patch`] to make an
/// exception; DELETE it to cancel it.
pub fn occurrence_path(mailbox: &MailboxRef, occurrence_id: &str) -> String {
    delta::item_path(mailbox, Kind::Diary, occurrence_id, false)
}

/// `GET` of a master's occurrences and exceptions in `window`, for [`occurrence_at`]. No
/// `$select`: the emulator does not take `originalStart` there (Graph documents it on events).
pub fn instances_path(mailbox: &MailboxRef, master_id: &str, window: &Window) -> String {
    format!(
        "{}/events/{}/instances?{}",
        GraphClient::mailbox_path(mailbox),
        wire::segment(master_id),
        wire::query(&[
            ("startDateTime", &window.start.to_string()),
            ("endDateTime", &window.end.to_string()),
            ("$top", INSTANCES_PAGE),
        ])
    )
}

/// Instances asked for per page (the client follows `@odata.nextLink` for more).
const INSTANCES_PAGE: &str = "500";

/// The id of the instance whose original start is `original_start`, in a page of
/// [`instances_path`].
pub fn occurrence_at(instances: &Value, original_start: Timestamp) -> Option<String> {
    instances.get("value")?.as_array()?.iter().find_map(|i| {
        let original = i
            .get("originalStart")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
            // An occurrence not yet changed is where the pattern put it.
            .or_else(|| wire::instant(&i["start"]))?;
        (original == original_start)
            .then(|| i.get("id").and_then(Value::as_str).map(str::to_string))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::connector::model::{CrmId, ShowAs};
    use crate::connector::recurrence::{DayOfWeek, Pattern, Range, RangeEnd};

    fn item(when: When) -> DiaryItem {
        DiaryItem {
            subject: "Team".into(),
            body: String::new(),
            when,
            location: String::new(),
            private: false,
            show_as: ShowAs::Busy,
            reminder_minutes: None,
            task_type: None,
            organized_by_other: false,
            series: None,
        }
    }

    fn weekly(start: jiff::civil::Date, zone: &str) -> Recurrence {
        Recurrence {
            pattern: Pattern::Weekly {
                interval: 1,
                days: vec![DayOfWeek::of(start.weekday())],
                first_day_of_week: DayOfWeek::Monday,
            },
            range: Range {
                start,
                end: RangeEnd::Never,
            },
            time_zone: zone.into(),
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            tenant: "Cust1".into(),
            kind: Kind::Diary,
            crm_id: CrmId(1),
        }
    }

    #[test]
    fn a_master_is_written_at_its_wall_time_in_the_series_zone() {
        // 00:30 in New York on June 2 is 04:30 UTC: the range starts on June 2 there.
        let start: Timestamp = "2026-06-02T04:30:00Z".parse().unwrap();
        let when = When::Timed {
            start,
            end: start + jiff::SignedDuration::from_mins(30),
        };
        let r = weekly(date(2026, 6, 2), "America/New_York");
        let body = series_create(&item(when.clone()), &r, &stamp(), "t").unwrap();
        assert_eq!(
            body["start"],
            json!({"dateTime": "2026-06-02T00:30:00", "timeZone": "America/New_York"})
        );
        assert_eq!(body["end"]["dateTime"], "2026-06-02T01:00:00");
        assert_eq!(body["recurrence"], patterned::to_graph(&r).unwrap());
        assert_eq!(body["transactionId"], "t");
        // The UTC date is not the series' first day.
        let wrong = weekly(date(2026, 6, 1), "America/New_York");
        let e = series_create(&item(when), &wrong, &stamp(), "t").unwrap_err();
        assert!(
            e.to_string().starts_with("recurrence.range.startDate"),
            "{e}"
        );
    }

    #[test]
    fn an_all_day_master_keeps_its_dates_in_the_series_zone() {
        let when = When::AllDay {
            start: date(2026, 6, 2),
            end: date(2026, 6, 3),
        };
        let body = series_create(
            &item(when),
            &weekly(date(2026, 6, 2), "Europe/Oslo"),
            &stamp(),
            "t",
        )
        .unwrap();
        assert_eq!(body["isAllDay"], true);
        assert_eq!(
            body["start"],
            json!({"dateTime": "2026-06-02T00:00:00.0000000", "timeZone": "Europe/Oslo"})
        );
    }

    #[test]
    fn an_occurrence_is_found_by_its_original_start() {
        let page = json!({"value": [
            {"id": "A", "type": "occurrence", "start": {"dateTime": "2026-06-02T07:00:00.0000000", "timeZone": "UTC"}},
            {"id": "B", "type": "exception", "originalStart": "2026-06-09T07:00:00Z",
             "start": {"dateTime": "2026-06-10T07:00:00.0000000", "timeZone": "UTC"}},
        ]});
        let at = |t: &str| occurrence_at(&page, t.parse().unwrap());
        assert_eq!(at("2026-06-02T07:00:00Z").as_deref(), Some("A"));
        assert_eq!(at("2026-06-09T07:00:00Z").as_deref(), Some("B"));
        assert_eq!(at("2026-06-10T07:00:00Z"), None);
        let mailbox = MailboxRef {
            address: "a@b.example".into(),
            id: Some("u1".into()),
        };
        assert_eq!(
            occurrence_path(&mailbox, "A/+="),
            "/users/u1/events/A%2F%2B="
        );
    }
}
