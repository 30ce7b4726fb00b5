use jiff::civil::Date;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::*;
use crate::connector::model::{CrmId, Kind};

fn stamp(kind: Kind) -> Stamp {
    Stamp {
        tenant: "Cust12345".into(),
        kind,
        crm_id: CrmId(4711),
    }
}

/// What Graph keeps of a write: the body's fields, merged into the item as it was
/// (extended properties by id, a null value removing one).
fn apply(current: &Value, patch: &Value) -> Value {
    let mut out = current.as_object().cloned().unwrap_or_default();
    for (k, v) in patch.as_object().unwrap() {
        if k == "singleValueExtendedProperties" {
            let mut props: Vec<Value> = out
                .get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for p in v.as_array().unwrap() {
                props.retain(|q| q["id"] != p["id"]);
                if !p["value"].is_null() {
                    props.push(p.clone());
                }
            }
            out.insert(k.clone(), Value::Array(props));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out.entry("id").or_insert(json!("AAMkAGI1AAAt9AHjAAA="));
    out.entry("changeKey")
        .or_insert(json!("ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ=="));
    out.entry("@odata.etag")
        .or_insert(json!("W/\"ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==\""));
    out.entry("lastModifiedDateTime")
        .or_insert(json!("2026-04-15T03:00:51.245372Z"));
    out.entry("isOrganizer").or_insert(json!(true));
    Value::Object(out)
}

fn diary_item() -> DiaryItem {
    DiaryItem {
        subject: "Review".into(),
        body: "Line one\nLine <two> & three".into(),
        when: When::Timed {
            start: "2026-11-23T09:00:00Z".parse().unwrap(),
            end: "2026-11-23T10:30:00.5Z".parse().unwrap(),
        },
        location: "Oslo".into(),
        private: true,
        show_as: ShowAs::Tentative,
        reminder_minutes: Some(15),
        task_type: Some("Meeting".into()),
        organized_by_other: false,
        series: None,
    }
}

#[test]
fn an_event_create_carries_every_mapped_field_and_the_stamp() {
    let body = event_create(&diary_item(), &stamp(Kind::Diary), "tx-1");
    assert_eq!(body["subject"], "Review");
    assert_eq!(body["body"]["contentType"], "text");
    assert_eq!(body["start"]["dateTime"], "2026-11-23T09:00:00.0000000");
    assert_eq!(body["start"]["timeZone"], "UTC");
    assert_eq!(body["end"]["dateTime"], "2026-11-23T10:30:00.5000000");
    assert_eq!(body["isAllDay"], false);
    assert_eq!(body["location"]["displayName"], "Oslo");
    assert_eq!(body["sensitivity"], "private");
    assert_eq!(body["showAs"], "tentative");
    assert_eq!(body["isReminderOn"], true);
    assert_eq!(body["reminderMinutesBeforeStart"], 15);
    assert_eq!(body["categories"], json!(["Meeting", "SuperOffice"]));
    assert_eq!(body["transactionId"], "tx-1");
    assert!(body.get("attendees").is_none(), "never invitations");
    let read = apply(&json!({}), &body);
    assert_eq!(stamp_of(&read), Some(stamp(Kind::Diary)));
    assert_eq!(diary(&read), Some(diary_item()));
}

#[test]
fn all_day_events_are_whole_dates_at_midnight_in_one_zone() {
    let mut item = diary_item();
    item.when = When::AllDay {
        start: "2026-03-29".parse().unwrap(),
        end: "2026-03-31".parse().unwrap(),
    };
    let body = event_create(&item, &stamp(Kind::Diary), "tx");
    assert_eq!(body["isAllDay"], true);
    assert_eq!(body["start"]["dateTime"], "2026-03-29T00:00:00.0000000");
    assert_eq!(body["end"]["dateTime"], "2026-03-31T00:00:00.0000000");
    assert_eq!(body["start"]["timeZone"], body["end"]["timeZone"]);
    assert_eq!(diary(&apply(&json!({}), &body)), Some(item.clone()));
    // The same days, as a service shows them in another zone: not shifted.
    let shifted = json!({"isAllDay": true,
        "start": {"dateTime": "2026-03-28T23:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-30T22:00:00.0000000", "timeZone": "UTC"}});
    assert_eq!(diary(&shifted).map(|d| d.when), Some(item.when));
}

#[test]
fn a_patch_touches_only_what_changed_and_keeps_the_users_categories() {
    let created = apply(
        &json!({}),
        &event_create(&diary_item(), &stamp(Kind::Diary), "tx"),
    );
    // The user adds a category of their own and marks it confidential.
    let mut current = created.clone();
    current["categories"] = json!(["Meeting", "SuperOffice", "Personal"]);
    current["sensitivity"] = json!("confidential");
    assert_eq!(event_patch(&current, &diary_item()), None, "nothing to do");

    let mut changed = diary_item();
    changed.subject = "Review 2".into();
    changed.task_type = Some("Phone".into());
    let patch = event_patch(&current, &changed).unwrap();
    assert_eq!(patch["subject"], "Review 2");
    assert!(
        patch.get("sensitivity").is_none(),
        "confidential is private"
    );
    assert!(patch.get("start").is_none());
    assert_eq!(
        patch["categories"],
        json!(["Personal", "Phone", "SuperOffice"])
    );
    let after = apply(&current, &patch);
    assert_eq!(diary(&after), Some(changed.clone()));

    let mut untyped = changed.clone();
    untyped.task_type = None;
    untyped.reminder_minutes = None;
    let patch = event_patch(&after, &untyped).unwrap();
    assert_eq!(patch["categories"], json!(["Personal", "SuperOffice"]));
    assert_eq!(patch["isReminderOn"], false);
    assert_eq!(diary(&apply(&after, &patch)), Some(untyped));
}

#[test]
fn events_organised_by_others_and_html_bodies_are_read() {
    let event = json!({"subject": "Board", "isOrganizer": false, "isAllDay": false,
        "start": {"dateTime": "2026-01-01T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-01T11:00:00.0000000", "timeZone": "UTC"},
        "body": {"contentType": "html", "content": "<html><head></head><body><p>A &amp; B</p>C</body></html>"},
        "showAs": "unknown", "sensitivity": "personal"});
    let d = diary(&event).unwrap();
    assert!(d.organized_by_other);
    assert_eq!(d.body, "A & B\nC");
    assert_eq!(d.show_as, ShowAs::Busy);
    assert!(!d.private);
    assert_eq!(d.reminder_minutes, None);
    assert_eq!(d.task_type, None);
}

fn task_item() -> TaskItem {
    TaskItem {
        title: "Send offer".into(),
        body: "Draft attached".into(),
        due: Some("2026-03-10".parse().unwrap()),
        completed: Some("2026-03-09T14:15:16Z".parse().unwrap()),
        importance: Importance::High,
    }
}

#[test]
fn tasks_round_trip_and_carry_their_link() {
    let linked = linked_resource(
        &stamp(Kind::Task),
        Some("https://crm.example/appointment/4711"),
    );
    let body = task_create(&task_item(), linked);
    assert_eq!(
        body["dueDateTime"]["dateTime"],
        "2026-03-10T00:00:00.0000000"
    );
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["linkedResources"][0]["externalId"],
        stamp(Kind::Task).encode()
    );
    assert_eq!(
        body["linkedResources"][0]["applicationName"],
        APPLICATION_NAME
    );
    assert_eq!(
        body["linkedResources"][0]["webUrl"],
        "https://crm.example/appointment/4711"
    );
    let read = apply(&json!({}), &body);
    assert_eq!(task(&read), task_item());
    assert_eq!(task_stamp_of(&read), Some(stamp(Kind::Task)));

    // Reopened in the CRM: status back; a user's own open status is kept otherwise.
    let mut open = task_item();
    open.completed = None;
    let patch = task_patch(&read, &open).unwrap();
    assert_eq!(patch["status"], "notStarted");
    let mut in_progress = apply(&read, &patch);
    in_progress["status"] = json!("inProgress");
    in_progress
        .as_object_mut()
        .unwrap()
        .remove("completedDateTime");
    assert_eq!(task(&in_progress), open);
    assert_eq!(task_patch(&in_progress, &open), None);
    let mut undated = open.clone();
    undated.due = None;
    let patch = task_patch(&in_progress, &undated).unwrap();
    assert_eq!(patch["dueDateTime"], Value::Null);
}

fn contact_item() -> ContactItem {
    ContactItem {
        given_name: "Kari".into(),
        surname: "Nordmann".into(),
        emails: vec!["kari@example.no".into(), "kn@example.com".into()],
        business_phones: vec!["+47 22 00 00 00".into()],
        mobile_phone: Some("+47 900 00 000".into()),
        company: Some("Nordmann AS".into()),
        job_title: None,
    }
}

#[test]
fn contacts_round_trip_with_addresses_in_order() {
    let body = contact_create(&contact_item(), &stamp(Kind::Contact));
    assert_eq!(body["emailAddresses"][1]["address"], "kn@example.com");
    assert_eq!(body["jobTitle"], Value::Null);
    let read = apply(&json!({}), &body);
    assert_eq!(contact(&read), contact_item());
    assert_eq!(stamp_of(&read), Some(stamp(Kind::Contact)));
    let o = observed(Kind::Contact, &read).unwrap();
    assert_eq!(o.version.0, "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==");
}

#[test]
fn property_ids_match_as_exchange_matches_them() {
    assert!(same_property(
        "string {5C1F3B0E-7A2D-4C8E-9B61-3F0D2E8A4C17} name crmsyncStamp",
        STAMP_PROPERTY
    ));
    assert!(!same_property(
        "String {5c1f3b0e-7a2d-4c8e-9b61-3f0d2e8a4c17} Name crmsyncstamp",
        STAMP_PROPERTY
    ));
}

fn word(rng: &mut ChaCha8Rng) -> String {
    const PARTS: &[&str] = &[
        "Møte", "review", "O'Brien", "<b>", "&amp;", "\n", " ", "Zürich", "日本", "\"q\"", "x",
    ];
    (0..rng.random_range(0..5))
        .map(|_| PARTS[rng.random_range(0..PARTS.len())])
        .collect()
}

fn instant(rng: &mut ChaCha8Rng) -> Timestamp {
    // To 100 ns, Graph's precision.
    let secs = rng.random_range(1_700_000_000i64..1_900_000_000);
    let ticks = rng.random_range(0..10_000_000i32);
    Timestamp::new(secs, ticks * 100).unwrap()
}

fn date(rng: &mut ChaCha8Rng) -> Date {
    Date::new(
        rng.random_range(2020..2040),
        rng.random_range(1..13),
        rng.random_range(1..29),
    )
    .unwrap()
}

#[test]
fn generated_items_round_trip_losslessly() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let show = [
        ShowAs::Free,
        ShowAs::Tentative,
        ShowAs::Busy,
        ShowAs::OutOfOffice,
        ShowAs::WorkingElsewhere,
    ];
    let importance = [Importance::Low, Importance::Normal, Importance::High];
    for _ in 0..500 {
        let start = instant(&mut rng);
        let when = if rng.random_bool(0.3) {
            let s = date(&mut rng);
            When::AllDay {
                start: s,
                end: s.tomorrow().unwrap(),
            }
        } else {
            When::Timed {
                start,
                end: start
                    .checked_add(jiff::SignedDuration::from_secs(rng.random_range(0..86_400)))
                    .unwrap(),
            }
        };
        let d = DiaryItem {
            subject: word(&mut rng),
            body: word(&mut rng).trim_end().to_string(),
            when,
            location: word(&mut rng),
            private: rng.random_bool(0.5),
            show_as: show[rng.random_range(0..show.len())],
            reminder_minutes: rng.random_bool(0.5).then(|| rng.random_range(0..10_000)),
            task_type: rng
                .random_bool(0.7)
                .then(|| word(&mut rng))
                .filter(|t| !t.is_empty() && t != CATEGORY),
            organized_by_other: false,
            series: None,
        };
        let created = apply(&json!({}), &event_create(&d, &stamp(Kind::Diary), "t"));
        assert_eq!(diary(&created).as_ref(), Some(&d));
        let mut other = d.clone();
        other.subject.push('!');
        other.task_type = None;
        let patched = apply(&created, &event_patch(&created, &other).unwrap());
        assert_eq!(diary(&patched), Some(other));

        let t = TaskItem {
            title: word(&mut rng),
            body: word(&mut rng),
            due: rng.random_bool(0.5).then(|| date(&mut rng)),
            completed: rng.random_bool(0.5).then(|| instant(&mut rng)),
            importance: importance[rng.random_range(0..3)],
        };
        let created = apply(
            &json!({}),
            &task_create(&t, linked_resource(&stamp(Kind::Task), None)),
        );
        assert_eq!(task(&created), t);

        let c = ContactItem {
            given_name: word(&mut rng),
            surname: word(&mut rng),
            emails: (0..rng.random_range(0..4))
                .map(|i| format!("p{i}@example.com"))
                .collect(),
            business_phones: (0..rng.random_range(0..3))
                .map(|i| format!("+47 {i}"))
                .collect(),
            mobile_phone: rng.random_bool(0.5).then(|| word(&mut rng)),
            company: rng.random_bool(0.5).then(|| word(&mut rng)),
            job_title: rng.random_bool(0.5).then(|| word(&mut rng)),
        };
        let created = apply(&json!({}), &contact_create(&c, &stamp(Kind::Contact)));
        assert_eq!(contact(&created), c);
    }
}
