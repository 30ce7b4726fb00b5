use jiff::civil::date;
use serde_json::{Value, json};

use super::*;

/// A sample from `../shared/reference/graph/` (beside the clone, as in CI).
fn reference(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/graph")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn series(pattern: Pattern, end: RangeEnd) -> Recurrence {
    Recurrence {
        pattern,
        range: Range {
            start: date(2026, 1, 5),
            end,
        },
        time_zone: "Europe/Oslo".into(),
    }
}

/// One of each pattern kind, with each range type among them.
fn every_kind() -> Vec<Recurrence> {
    use DayOfWeek::*;
    vec![
        series(Pattern::Daily { interval: 2 }, RangeEnd::Count(10)),
        series(
            Pattern::Weekly {
                interval: 1,
                days: vec![Monday, Wednesday, Friday],
                first_day_of_week: Monday,
            },
            RangeEnd::Date(date(2026, 12, 31)),
        ),
        series(
            Pattern::AbsoluteMonthly {
                interval: 3,
                day_of_month: 31,
            },
            RangeEnd::Never,
        ),
        series(
            Pattern::RelativeMonthly {
                interval: 1,
                days: vec![Monday, Tuesday, Wednesday, Thursday, Friday],
                index: WeekIndex::Last,
            },
            RangeEnd::Count(12),
        ),
        series(
            Pattern::AbsoluteYearly {
                interval: 1,
                month: 2,
                day_of_month: 29,
            },
            RangeEnd::Never,
        ),
        series(
            Pattern::RelativeYearly {
                interval: 2,
                month: 11,
                days: vec![Thursday],
                index: WeekIndex::Fourth,
            },
            RangeEnd::Date(date(2040, 1, 1)),
        ),
    ]
}

#[test]
fn every_pattern_kind_and_range_type_goes_both_ways() {
    for r in every_kind() {
        let graph = to_graph(&r).unwrap();
        assert_eq!(from_graph(&graph, None).unwrap(), r, "{graph}");
        // And the JSON comes back as it was sent.
        let again = to_graph(&from_graph(&graph, None).unwrap()).unwrap();
        assert_eq!(again, graph);
    }
}

#[test]
fn graphs_full_echo_reads_as_the_short_form() {
    // What Graph hands back: every property, unused ones 0, first, sunday, 0001-01-01.
    for r in every_kind() {
        let mut graph = to_graph(&r).unwrap();
        let pattern = graph["pattern"].as_object_mut().unwrap();
        for (k, v) in [
            ("month", json!(0)),
            ("dayOfMonth", json!(0)),
            ("daysOfWeek", json!([])),
            ("firstDayOfWeek", json!("sunday")),
            ("index", json!("first")),
        ] {
            pattern.entry(k).or_insert(v);
        }
        let range = graph["range"].as_object_mut().unwrap();
        range.entry("endDate").or_insert(json!("0001-01-01"));
        range.entry("numberOfOccurrences").or_insert(json!(0));
        range.insert(
            "recurrenceTimeZone".into(),
            json!("W. Europe Standard Time"),
        );
        let read = from_graph(&graph, None).unwrap();
        assert_eq!(read.pattern, r.pattern, "{graph}");
        assert_eq!(read.range, r.range, "{graph}");
        assert_eq!(read.time_zone, "Europe/Berlin");
    }
}

#[test]
fn the_reference_samples_parse() {
    let event = reference("event-recurring.json");
    let r = of_event(&event).unwrap().unwrap();
    assert_eq!(
        r,
        Recurrence {
            pattern: Pattern::Weekly {
                interval: 1,
                days: vec![DayOfWeek::Monday],
                first_day_of_week: DayOfWeek::Sunday,
            },
            range: Range {
                start: date(2017, 9, 4),
                end: RangeEnd::Date(date(2017, 12, 31)),
            },
            time_zone: "America/Los_Angeles".into(),
        }
    );
    // The documented request: capitalised day, no firstDayOfWeek and no zone in the range,
    // whose zone is the start's.
    let request = reference("event-recurring-request.json");
    let zone = request["start"]["timeZone"].as_str();
    assert_eq!(from_graph(&request["recurrence"], zone).unwrap(), r);
    // A single event is no series.
    assert_eq!(of_event(&reference("event.json")).unwrap(), None);
}

#[test]
fn eastern_and_iana_zones_are_read() {
    let mut graph = to_graph(&every_kind()[0]).unwrap();
    graph["range"]["recurrenceTimeZone"] = json!("Eastern Standard Time");
    assert_eq!(
        from_graph(&graph, None).unwrap().time_zone,
        "America/New_York"
    );
    graph["range"]["recurrenceTimeZone"] = json!("America/New_York");
    assert_eq!(
        from_graph(&graph, None).unwrap().time_zone,
        "America/New_York"
    );
    // No zone in the range: the event's.
    graph["range"]
        .as_object_mut()
        .unwrap()
        .remove("recurrenceTimeZone");
    assert_eq!(
        from_graph(&graph, Some("Pacific Standard Time"))
            .unwrap()
            .time_zone,
        "America/Los_Angeles"
    );
}

fn error_field(e: GraphRecurrenceError) -> &'static str {
    match e {
        GraphRecurrenceError::Field { field, .. } | GraphRecurrenceError::Invalid { field, .. } => {
            field
        }
    }
}

#[test]
fn json_that_cannot_be_read_names_the_field() {
    let good = to_graph(&every_kind()[1]).unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/pattern/type",
            json!("fortnightly"),
            "recurrence.pattern.type",
        ),
        ("/pattern/type", json!(7), "recurrence.pattern.type"),
        ("/pattern/interval", json!(0), "recurrence.pattern.interval"),
        (
            "/pattern/interval",
            json!(-1),
            "recurrence.pattern.interval",
        ),
        (
            "/pattern/interval",
            json!("1"),
            "recurrence.pattern.interval",
        ),
        (
            "/pattern/daysOfWeek",
            json!(["funday"]),
            "recurrence.pattern.daysOfWeek",
        ),
        (
            "/pattern/daysOfWeek",
            json!([]),
            "recurrence.pattern.daysOfWeek",
        ),
        (
            "/pattern/daysOfWeek",
            json!("monday"),
            "recurrence.pattern.daysOfWeek",
        ),
        (
            "/pattern/firstDayOfWeek",
            json!("someday"),
            "recurrence.pattern.firstDayOfWeek",
        ),
        ("/range/type", json!("forever"), "recurrence.range.type"),
        (
            "/range/startDate",
            json!("2026-13-01"),
            "recurrence.range.startDate",
        ),
        (
            "/range/startDate",
            Value::Null,
            "recurrence.range.startDate",
        ),
        (
            "/range/endDate",
            json!("2025-01-01"),
            "recurrence.range.endDate",
        ),
        (
            "/range/recurrenceTimeZone",
            json!("Mars Standard Time"),
            "recurrence.range.recurrenceTimeZone",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut bad = good.clone();
        *bad.pointer_mut(pointer).unwrap() = value.clone();
        let e = from_graph(&bad, None).unwrap_err();
        assert_eq!(error_field(e.clone()), expected, "{pointer} = {value}: {e}");
        assert!(e.to_string().starts_with(expected), "{e}");
    }
    let mut monthly = to_graph(&every_kind()[2]).unwrap();
    monthly["pattern"]["dayOfMonth"] = json!(32);
    assert_eq!(
        error_field(from_graph(&monthly, None).unwrap_err()),
        "recurrence.pattern.dayOfMonth"
    );
    let mut yearly = to_graph(&every_kind()[4]).unwrap();
    yearly["pattern"]["dayOfMonth"] = json!(30);
    assert_eq!(
        error_field(from_graph(&yearly, None).unwrap_err()),
        "recurrence.pattern.dayOfMonth"
    );
    yearly["pattern"]["month"] = json!(0);
    assert_eq!(
        error_field(from_graph(&yearly, None).unwrap_err()),
        "recurrence.pattern.month"
    );
    let mut numbered = to_graph(&every_kind()[0]).unwrap();
    numbered["range"]["numberOfOccurrences"] = json!(0);
    assert_eq!(
        error_field(from_graph(&numbered, None).unwrap_err()),
        "recurrence.range.numberOfOccurrences"
    );
    numbered["range"]["recurrenceTimeZone"] = Value::Null;
    numbered["range"]["numberOfOccurrences"] = json!(3);
    assert_eq!(
        error_field(from_graph(&numbered, None).unwrap_err()),
        "recurrence.range.recurrenceTimeZone"
    );
    assert_eq!(
        error_field(from_graph(&json!([]), None).unwrap_err()),
        "recurrence"
    );
    assert_eq!(
        error_field(from_graph(&json!({"range": good["range"]}), None).unwrap_err()),
        "recurrence.pattern"
    );
}

#[test]
fn patterns_graph_cannot_hold_are_refused_by_field() {
    let mut r = every_kind()[0].clone();
    r.pattern = Pattern::Daily { interval: 100 };
    assert_eq!(
        error_field(to_graph(&r).unwrap_err()),
        "recurrence.pattern.interval"
    );
    r.pattern = Pattern::Daily { interval: 99 };
    assert!(to_graph(&r).is_ok());
    r.range.end = RangeEnd::Count(u32::MAX);
    assert_eq!(
        error_field(to_graph(&r).unwrap_err()),
        "recurrence.range.numberOfOccurrences"
    );
    r.range.end = RangeEnd::Never;
    r.time_zone = "W. Europe Standard Time".into();
    assert_eq!(
        error_field(to_graph(&r).unwrap_err()),
        "recurrence.range.recurrenceTimeZone"
    );
}

#[test]
fn days_are_one_form_whatever_their_order() {
    let mut graph = to_graph(&every_kind()[1]).unwrap();
    graph["pattern"]["daysOfWeek"] = json!(["Friday", "monday", "WEDNESDAY", "friday"]);
    assert_eq!(from_graph(&graph, None).unwrap(), every_kind()[1]);
}
