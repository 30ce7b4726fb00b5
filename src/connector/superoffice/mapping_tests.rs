use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

const TASKS: [(u32, &str, &str); 4] = [
    (1, "Meeting", "Appointment"),
    (2, "Phone", "Phone"),
    (3, "Lunch", "Appointment"),
    (4, "To do", "ToDo"),
];

fn task_id(name: &str) -> Option<u32> {
    TASKS
        .iter()
        .find(|(_, n, t)| n.eq_ignore_ascii_case(name) && *t != "ToDo")
        .map(|(id, ..)| *id)
}

/// A new entity as `CreateDefaultAppointmentEntityByTypeAndAssociate` gives it.
fn default_entity(todo: bool) -> Value {
    let (task, kind) = if todo {
        (4, "inChecklist")
    } else {
        (1, "inDiary")
    };
    let mut e = json!({
        "AppointmentId": 0,
        "Associate": {"AssociateId": 102, "Name": "BO"},
        "Contact": null,
        "Person": null,
        "CreatedDate": "0001-01-01T00:00:00",
        "UpdatedDate": "0001-01-01T00:00:00",
        "Description": "",
        "Title": "",
        "StartDate": "2026-11-22T10:00:00+00:00",
        "EndDate": "2026-11-22T11:00:00+00:00",
        "MotherId": 0,
        "Private": "Public",
        "Type": kind,
        "Completed": "NotStarted",
        "AlarmLeadTime": "00:00:00",
        "HasAlarm": false,
        "IsFree": false,
        "IsAlldayEvent": false,
        "Location": "",
        "BookingType": "None",
    });
    server_fills(&mut e, task);
    e
}

/// What the server does on save: an id, a version, the task's name and type.
fn server_fills(e: &mut Value, task: u32) {
    let task = e["Task"]["TaskListItemId"]
        .as_u64()
        .map(|t| t as u32)
        .unwrap_or(task);
    let (id, name, kind) = TASKS.iter().find(|(i, ..)| *i == task).unwrap();
    e["Task"] = json!({"TaskListItemId": id, "Value": name, "Type": kind});
    e["AppointmentId"] = json!(4711);
    e["UpdatedDate"] = json!("2026-11-22T09:14:07Z");
}

/// Writes `item` into a new entity and reads it back.
fn round_trip(item: &Item) -> Item {
    let mut entity = default_entity(matches!(item, Item::Task(_)));
    let changes = changes(item, None, &task_id);
    apply(&mut entity, &changes);
    server_fills(&mut entity, 0);
    read_appointment(&entity).unwrap().unwrap().item
}

/// A sample from `../shared/reference/superoffice/` (beside the clone, as in CI).
fn reference(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/superoffice")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn diary() -> DiaryItem {
    DiaryItem {
        subject: "Review".into(),
        body: "Line 1\nLine 2".into(),
        when: When::Timed {
            start: at("2026-12-10T08:00:00Z"),
            end: at("2026-12-10T09:30:00Z"),
        },
        location: "Oslo".into(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: Some(15),
        task_type: Some("Meeting".into()),
        organized_by_other: false,
        series: None,
    }
}

#[test]
fn every_diary_field_round_trips() {
    let base = diary();
    let variants: Vec<(&str, DiaryItem)> = vec![
        ("base", base.clone()),
        (
            "subject",
            DiaryItem {
                subject: "Ny avtale – «møte»".into(),
                ..base.clone()
            },
        ),
        (
            "empty subject",
            DiaryItem {
                subject: String::new(),
                ..base.clone()
            },
        ),
        (
            "body",
            DiaryItem {
                body: String::new(),
                ..base.clone()
            },
        ),
        (
            "all-day",
            DiaryItem {
                when: When::AllDay {
                    start: "2026-12-24".parse().unwrap(),
                    end: "2026-12-27".parse().unwrap(),
                },
                ..base.clone()
            },
        ),
        (
            "location",
            DiaryItem {
                location: String::new(),
                ..base.clone()
            },
        ),
        (
            "private",
            DiaryItem {
                private: true,
                ..base.clone()
            },
        ),
        (
            "free",
            DiaryItem {
                show_as: ShowAs::Free,
                ..base.clone()
            },
        ),
        (
            "no reminder",
            DiaryItem {
                reminder_minutes: None,
                ..base.clone()
            },
        ),
        (
            "reminder at start",
            DiaryItem {
                reminder_minutes: Some(0),
                ..base.clone()
            },
        ),
        (
            "long reminder",
            DiaryItem {
                reminder_minutes: Some(2 * 1440 + 30),
                ..base.clone()
            },
        ),
        (
            "task type",
            DiaryItem {
                task_type: Some("Phone".into()),
                ..base.clone()
            },
        ),
    ];
    for (name, d) in variants {
        let item = Item::Diary(d);
        assert_eq!(round_trip(&item), item, "{name}");
    }
}

#[test]
fn what_superoffice_cannot_hold_is_normalised() {
    let base = diary();
    let tentative = Item::Diary(DiaryItem {
        show_as: ShowAs::Tentative,
        ..base.clone()
    });
    assert_eq!(
        round_trip(&tentative),
        Item::Diary(DiaryItem {
            show_as: ShowAs::Busy,
            ..base.clone()
        })
    );
    let long = "x".repeat(300);
    let Item::Diary(d) = round_trip(&Item::Diary(DiaryItem {
        location: long,
        ..base.clone()
    })) else {
        panic!()
    };
    assert_eq!(d.location.chars().count(), LOCATION_MAX);
    // A task type the tenant does not have: the default stays.
    let Item::Diary(d) = round_trip(&Item::Diary(DiaryItem {
        task_type: Some("Yoga".into()),
        ..base.clone()
    })) else {
        panic!()
    };
    assert_eq!(d.task_type.as_deref(), Some("Meeting"));
    // Invitations from others are read, never written.
    let other = Item::Diary(DiaryItem {
        organized_by_other: true,
        series: None,
        ..base
    });
    let Item::Diary(d) = round_trip(&other) else {
        panic!()
    };
    assert!(!d.organized_by_other);
}

#[test]
fn every_task_field_round_trips_and_completion_is_a_state() {
    let base = TaskItem {
        title: "Call back".into(),
        body: "About the offer".into(),
        due: Some("2026-12-05".parse().unwrap()),
        completed: None,
        importance: Importance::Normal,
    };
    for (name, t) in [
        ("base", base.clone()),
        (
            "title",
            TaskItem {
                title: "Ring".into(),
                ..base.clone()
            },
        ),
        (
            "body",
            TaskItem {
                body: String::new(),
                ..base.clone()
            },
        ),
        (
            "due",
            TaskItem {
                due: Some("2027-01-31".parse().unwrap()),
                ..base.clone()
            },
        ),
    ] {
        let item = Item::Task(t);
        assert_eq!(round_trip(&item), item, "{name}");
    }
    let done = Item::Task(TaskItem {
        completed: Some(at("2026-12-01T10:00:00Z")),
        ..base.clone()
    });
    let Item::Task(read) = round_trip(&done) else {
        panic!()
    };
    assert_eq!(
        read.completed,
        Some(at("2026-11-22T09:14:07Z")),
        "the state, dated by UpdatedDate"
    );
    let high = Item::Task(TaskItem {
        importance: Importance::High,
        ..base
    });
    let Item::Task(read) = round_trip(&high) else {
        panic!()
    };
    assert_eq!(read.importance, Importance::Normal, "Priority is not held");
}

#[test]
fn updates_send_only_what_differs_and_keep_a_to_dos_time_of_day() {
    let mut entity = default_entity(false);
    apply(&mut entity, &changes(&Item::Diary(diary()), None, &task_id));
    server_fills(&mut entity, 0);
    let current = read_appointment(&entity).unwrap().unwrap();
    assert!(changes(&Item::Diary(diary()), Some((&current, &entity)), &task_id).is_empty());
    let moved = DiaryItem {
        location: "Bergen".into(),
        private: true,
        ..diary()
    };
    let ops = changes(&Item::Diary(moved), Some((&current, &entity)), &task_id);
    assert_eq!(
        ops,
        vec![
            ("Location", json!("Bergen")),
            ("Private", json!("PrivateUser"))
        ]
    );
    assert_eq!(
        patch(&ops),
        json!([
            {"op": "replace", "path": "Location", "value": "Bergen"},
            {"op": "replace", "path": "Private", "value": "PrivateUser"}
        ])
    );
    // A to-do due at 11:00 UTC (noon in Oslo) moves to another day at the same time.
    let mut todo = default_entity(true);
    todo["StartDate"] = json!("2026-12-05T11:00:00+00:00");
    todo["EndDate"] = json!("2026-12-05T11:00:00+00:00");
    let current = read_appointment(&todo).unwrap().unwrap();
    let Item::Task(t) = &current.item else {
        panic!()
    };
    let later = Item::Task(TaskItem {
        due: Some("2026-12-09".parse().unwrap()),
        ..t.clone()
    });
    let ops = changes(&later, Some((&current, &todo)), &task_id);
    assert_eq!(
        ops,
        vec![
            ("StartDate", json!("2026-12-09T11:00:00")),
            ("EndDate", json!("2026-12-09T11:00:00"))
        ]
    );
}

#[test]
fn entities_in_the_documented_shapes_are_read() {
    // The captured sample: a BookingForChecklist with Task null is neither kind.
    let sample = reference("appointment-entity.json");
    let read = read_appointment(&json!({
        "AppointmentId": sample["AppointmentId"],
        "Associate": {"AssociateId": 1},
        "UpdatedDate": sample["UpdatedDate"],
        "Type": sample["Type"],
    }));
    assert_eq!(read, Ok(None));
    // Offsets in every documented form; an all-day end inside a day includes that day.
    let mut e = default_entity(false);
    e["StartDate"] = json!("2026-12-24T00:00:00-0500");
    e["EndDate"] = json!("2026-12-25T23:59:00-05:00");
    e["IsAlldayEvent"] = json!(true);
    e["MotherId"] = json!(99);
    let a = read_appointment(&e).unwrap().unwrap();
    let Item::Diary(d) = a.item else { panic!() };
    assert_eq!(
        d.when,
        When::AllDay {
            start: "2026-12-24".parse().unwrap(),
            end: "2026-12-26".parse().unwrap()
        }
    );
    assert!(
        d.organized_by_other,
        "a booking child belongs to another's meeting"
    );
    assert!(read_appointment(&json!({"AppointmentId": 1})).is_err());
}

#[test]
fn persons_map_names_emails_in_rank_order_phones_and_company() {
    let sample = reference("person-entity.json");
    let person = read_person(&sample).unwrap();
    assert_eq!(person.id, sample["PersonId"].as_u64().unwrap() as u32);
    let emails: Vec<String> = sample["Emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["Value"].as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(person.item.emails, emails);
    let p = read_person(&json!({
        "PersonId": 7,
        "Firstname": "Ola",
        "MiddleName": "Johan",
        "Lastname": "Nordmann",
        "Title": "CFO",
        "UpdatedDate": "2026-11-22T09:14:07Z",
        "Emails": [{"Value": "ola@x.example"}, {"Value": ""}, {"Value": "o.n@y.example"}],
        "OfficePhones": [{"Value": "+47 22 00 00 00"}],
        "MobilePhones": [{"Value": "+47 900 00 000"}, {"Value": "+47 911 11 111"}],
        "Contact": {"ContactId": 10001, "Name": "Nordmann AS"},
        "Associate": {"AssociateId": 101},
    }))
    .unwrap();
    assert_eq!(
        p.item,
        ContactItem {
            given_name: "Ola Johan".into(),
            surname: "Nordmann".into(),
            emails: vec!["ola@x.example".into(), "o.n@y.example".into()],
            business_phones: vec!["+47 22 00 00 00".into()],
            mobile_phone: Some("+47 900 00 000".into()),
            company: Some("Nordmann AS".into()),
            job_title: Some("CFO".into()),
        }
    );
    assert_eq!((p.company, p.our_contact), (Some(10001), Some(101)));
    // A renamed company changes the version though the person's card did not change.
    let mut renamed = p.clone();
    renamed.item.company = Some("Nordmann Holding AS".into());
    assert_ne!(p.observed().version, renamed.observed().version);
}

fn text(rng: &mut ChaCha8Rng) -> String {
    const PIECES: [&str; 8] = ["Møte", "review", " ", "\n", "é", "“quoted”", "&<>", "🙂"];
    (0..rng.random_range(0..6))
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

fn random_item(rng: &mut ChaCha8Rng) -> Item {
    let second = |rng: &mut ChaCha8Rng| {
        Timestamp::from_second(1_790_000_000 + rng.random_range(0..50_000_000)).unwrap()
    };
    if rng.random_bool(0.6) {
        let when = if rng.random_bool(0.3) {
            let start = second(rng).to_zoned(jiff::tz::TimeZone::UTC).date();
            let end = start
                .checked_add(jiff::Span::new().days(rng.random_range(1..5)))
                .unwrap();
            When::AllDay { start, end }
        } else {
            let start = second(rng);
            let end = start + jiff::SignedDuration::from_secs(rng.random_range(0..86_400 * 3));
            When::Timed { start, end }
        };
        Item::Diary(DiaryItem {
            subject: text(rng),
            body: text(rng),
            when,
            location: text(rng),
            private: rng.random_bool(0.5),
            show_as: if rng.random_bool(0.5) {
                ShowAs::Free
            } else {
                ShowAs::Busy
            },
            reminder_minutes: rng.random_bool(0.5).then(|| rng.random_range(0..10_000)),
            task_type: Some(["Meeting", "Phone", "Lunch"][rng.random_range(0..3)].to_string()),
            organized_by_other: false,
            series: None,
        })
    } else {
        Item::Task(TaskItem {
            title: text(rng),
            body: text(rng),
            due: Some(second(rng).to_zoned(jiff::tz::TimeZone::UTC).date()),
            completed: None,
            importance: Importance::Normal,
        })
    }
}

#[test]
fn generated_items_round_trip_and_updates_reach_the_target() {
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_122);
    for case in 0..500 {
        let item = random_item(&mut rng);
        assert_eq!(round_trip(&item), item, "case {case}");
        // From any item of the kind to any other: the changes lead there.
        let mut entity = default_entity(matches!(item, Item::Task(_)));
        apply(&mut entity, &changes(&item, None, &task_id));
        server_fills(&mut entity, 0);
        let current = read_appointment(&entity).unwrap().unwrap();
        let target = loop {
            let t = random_item(&mut rng);
            if t.kind() == item.kind() {
                break t;
            }
        };
        let ops = changes(&target, Some((&current, &entity)), &task_id);
        apply(&mut entity, &ops);
        server_fills(&mut entity, 0);
        assert_eq!(
            read_appointment(&entity).unwrap().unwrap().item,
            target,
            "case {case} update"
        );
    }
}
