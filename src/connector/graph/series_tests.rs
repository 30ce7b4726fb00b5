use serde_json::{Value, json};

use super::*;

fn utc(text: &str) -> Value {
    json!({"dateTime": text, "timeZone": "UTC"})
}

/// A weekly Monday 09:00 Oslo series from 2026-03-02, four occurrences.
fn master() -> Value {
    json!({
        "id": "M1", "type": "seriesMaster", "changeKey": "ck1",
        "subject": "Team", "body": {"contentType": "text", "content": ""},
        "isAllDay": false,
        "start": utc("2026-03-02T08:00:00.0000000"), "end": utc("2026-03-02T09:00:00.0000000"),
        "originalStartTimeZone": "W. Europe Standard Time",
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 4,
                      "recurrenceTimeZone": "Europe/Oslo"}
        }
    })
}

fn bare(id: &str, start: &str, end: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.event", "id": id, "type": "occurrence",
           "seriesMasterId": "M1", "start": utc(start), "end": utc(end)})
}

fn window() -> Window {
    Window {
        start: "2026-03-01T00:00:00Z".parse().unwrap(),
        end: "2026-04-30T00:00:00Z".parse().unwrap(),
    }
}

fn page(with_master: bool) -> Vec<Value> {
    let mut exception = master();
    let e = exception.as_object_mut().unwrap();
    e.insert("id".into(), json!("X2"));
    e.insert("type".into(), json!("exception"));
    e.insert("seriesMasterId".into(), json!("M1"));
    e.insert("recurrence".into(), Value::Null);
    e.insert("originalStart".into(), json!("2026-03-09T08:00:00Z"));
    e.insert("subject".into(), json!("Team (moved)"));
    e.insert("start".into(), utc("2026-03-10T10:00:00.0000000"));
    e.insert("end".into(), utc("2026-03-10T11:00:00.0000000"));
    let mut items = vec![
        json!({"id": "S1", "type": "singleInstance", "subject": "Lunch"}),
        bare(
            "O1",
            "2026-03-02T08:00:00.0000000",
            "2026-03-02T09:00:00.0000000",
        ),
        exception,
        // March 16 is missing: cancelled.
        bare(
            "O4",
            "2026-03-23T08:00:00.0000000",
            "2026-03-23T09:00:00.0000000",
        ),
        json!({"id": "gone", "@removed": {"reason": "deleted"}}),
    ];
    if with_master {
        items.insert(0, master());
    }
    items
}

#[test]
fn a_page_groups_by_master_and_reads_exceptions_and_cancellations() {
    let groups = group(page(true)).unwrap();
    assert_eq!(groups.singles.len(), 1);
    assert_eq!(groups.removed, vec!["gone".to_string()]);
    assert_eq!(groups.series.len(), 1);
    let series = &groups.series[0];
    assert!(!series.needs_master());
    let read = series.read(None, &window()).unwrap();
    assert_eq!(read.master_id, "M1");
    assert_eq!(read.version, Version("ck1".into()));
    assert_eq!(read.time_zone, "Europe/Berlin");
    assert_eq!(read.recurrence.time_zone, "Europe/Oslo");
    assert_eq!(read.first_start, "2026-03-02T08:00:00Z".parse().unwrap());
    assert_eq!(read.occurrences.len(), 2);
    let original: Timestamp = "2026-03-09T08:00:00Z".parse().unwrap();
    let exception = &read.exceptions[&original];
    assert_eq!(exception.id, "X2");
    assert_eq!(
        exception.changed,
        BTreeSet::from([Changed::Time, Changed::Subject])
    );
    assert_eq!(
        read.cancelled,
        vec!["2026-03-16T08:00:00Z".parse::<Timestamp>().unwrap()]
    );
}

#[test]
fn a_page_with_only_instances_asks_for_the_master() {
    let groups = group(page(false)).unwrap();
    let series = &groups.series[0];
    assert!(series.needs_master());
    assert!(matches!(
        series.read(None, &window()),
        Err(SeriesError::Field {
            field: "seriesMaster",
            ..
        })
    ));
    let read = series.read(Some(&master()), &window()).unwrap();
    assert_eq!(read.cancelled.len(), 1);
    // Another event fetched instead is refused.
    let mut other = master();
    other["id"] = json!("M2");
    assert!(series.read(Some(&other), &window()).is_err());
    let mailbox = MailboxRef {
        address: "anna@contoso.example".into(),
        id: None,
    };
    let path = master_path(&mailbox, "M1");
    assert!(
        path.starts_with("/users/anna%40contoso.example/events/M1?$expand="),
        "{path}"
    );
}

#[test]
fn an_unchanged_series_has_nothing_cancelled_across_summer_time() {
    let items = vec![
        master(),
        bare(
            "O1",
            "2026-03-02T08:00:00.0000000",
            "2026-03-02T09:00:00.0000000",
        ),
        bare(
            "O2",
            "2026-03-09T08:00:00.0000000",
            "2026-03-09T09:00:00.0000000",
        ),
        bare(
            "O3",
            "2026-03-16T08:00:00.0000000",
            "2026-03-16T09:00:00.0000000",
        ),
        bare(
            "O4",
            "2026-03-23T08:00:00.0000000",
            "2026-03-23T09:00:00.0000000",
        ),
    ];
    let mut never = master();
    never["recurrence"]["range"] =
        json!({"type": "noEnd", "startDate": "2026-03-02", "recurrenceTimeZone": "Europe/Oslo"});
    let read = group(items.clone()).unwrap().series[0]
        .read(None, &window())
        .unwrap();
    assert!(read.cancelled.is_empty());
    assert!(read.exceptions.is_empty());
    // Never-ending: the Mondays after March 29 are at 07:00 UTC, and missing here.
    let mut items = items;
    items[0] = never;
    let read = group(items).unwrap().series[0]
        .read(None, &window())
        .unwrap();
    let first: Timestamp = "2026-03-30T07:00:00Z".parse().unwrap();
    assert_eq!(read.cancelled.first(), Some(&first));
    assert_eq!(read.cancelled.len(), 5);
}

#[test]
fn what_cannot_be_read_names_the_field() {
    let no_master = json!({"id": "O9", "type": "occurrence", "start": utc("2026-03-02T08:00:00"), "end": utc("2026-03-02T09:00:00")});
    assert!(matches!(
        group(vec![no_master]),
        Err(SeriesError::Field {
            field: "seriesMasterId",
            ..
        })
    ));
    let no_time = json!({"id": "O9", "type": "occurrence", "seriesMasterId": "M1"});
    assert!(matches!(
        group(vec![no_time]),
        Err(SeriesError::Field { field: "start", .. })
    ));
    let mut items = page(true);
    items[0]["recurrence"]["pattern"]["type"] = json!("hourly");
    let e = group(items).unwrap().series[0]
        .read(None, &window())
        .unwrap_err();
    assert!(e.to_string().contains("recurrence.pattern.type"), "{e}");
    let mut items = page(true);
    items[3].as_object_mut().unwrap().remove("originalStart");
    assert!(matches!(
        group(items).unwrap().series[0].read(None, &window()),
        Err(SeriesError::Field {
            field: "originalStart",
            ..
        })
    ));
}
