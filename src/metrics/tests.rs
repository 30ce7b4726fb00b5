use std::collections::BTreeMap;

use super::*;

/// One sample line of the text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The sample lines of `text` (label values here never hold `,`, `"` or `}`).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label=value");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn rank(n: u16) -> Rank {
    Rank::new(n).unwrap()
}

/// Something of every series.
fn record_everything(m: &Metrics) {
    m.pass_finished(Kind::Diary, PassResult::Ok, Duration::from_millis(1500));
    m.pass_finished(Kind::Task, PassResult::Failed, Duration::from_secs(400));
    m.items(Kind::Diary, Operation::Created, Side::Mailbox, 3);
    m.items(Kind::Contact, Operation::Linked, Side::Crm, 2);
    m.conflicts(Kind::Diary, 1);
    m.quarantined(Kind::Task, 4);
    m.error("transient");
    m.error("history");
    m.set_users(&[("ok", 5), ("failed", 1)]);
    m.set_history_bytes(123_456);
    m.tick();
    m.tick();
    m.response(Service::Graph, Some(200));
    m.response(Service::Graph, Some(429));
    m.response(Service::SuperOffice, Some(503));
    m.response(Service::SuperOffice, None);
    m.waited(Service::Graph, Duration::from_millis(2500));
    m.queue(Service::Graph, 2);
    m.queue(Service::Graph, -1);
}

/// Every series name, the histogram's three included.
const NAMES: [&str; 15] = [
    "crmsync_passes_total",
    "crmsync_pass_duration_seconds_bucket",
    "crmsync_pass_duration_seconds_sum",
    "crmsync_pass_duration_seconds_count",
    "crmsync_items_total",
    "crmsync_conflicts_total",
    "crmsync_items_quarantined_total",
    "crmsync_errors_total",
    "crmsync_users",
    "crmsync_history_size_bytes",
    "crmsync_ticks_total",
    "crmsync_http_requests_total",
    "crmsync_http_throttled_total",
    "crmsync_throttle_wait_seconds_total",
    "crmsync_limiter_queue_depth",
];

#[test]
fn every_series_is_rendered_with_the_rank_label() {
    let m = Metrics::new(rank(7));
    record_everything(&m);
    let text = m.render();
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics ends with EOF:\n{text}"
    );
    let s = samples(&text);
    for name in NAMES {
        assert!(
            s.iter().any(|x| x.name == name),
            "{name} is missing:\n{text}"
        );
    }
    assert!(
        s.iter()
            .all(|x| x.labels.get("rank").map(String::as_str) == Some("7")),
        "a sample without rank=\"7\":\n{text}"
    );
    let v = |name, labels: &[(&str, &str)]| value(&s, name, labels);
    assert_eq!(
        v(
            "crmsync_passes_total",
            &[("kind", "diary"), ("result", "ok")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "crmsync_passes_total",
            &[("kind", "task"), ("result", "failed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "crmsync_pass_duration_seconds_bucket",
            &[("kind", "diary"), ("le", "2.5")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "crmsync_pass_duration_seconds_bucket",
            &[("kind", "task"), ("le", "300.0")]
        ),
        Some(0.0),
        "400 s is beyond the last bucket"
    );
    assert_eq!(
        v(
            "crmsync_pass_duration_seconds_bucket",
            &[("kind", "task"), ("le", "+Inf")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "crmsync_items_total",
            &[
                ("kind", "diary"),
                ("operation", "created"),
                ("side", "mailbox")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "crmsync_items_total",
            &[
                ("kind", "contact"),
                ("operation", "linked"),
                ("side", "crm")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        v("crmsync_conflicts_total", &[("kind", "diary")]),
        Some(1.0)
    );
    assert_eq!(
        v("crmsync_items_quarantined_total", &[("kind", "task")]),
        Some(4.0)
    );
    assert_eq!(
        v("crmsync_errors_total", &[("class", "history")]),
        Some(1.0)
    );
    assert_eq!(v("crmsync_errors_total", &[("class", "user")]), Some(0.0));
    assert_eq!(v("crmsync_users", &[("state", "ok")]), Some(5.0));
    assert_eq!(v("crmsync_users", &[("state", "paused")]), Some(0.0));
    assert_eq!(v("crmsync_history_size_bytes", &[]), Some(123_456.0));
    assert_eq!(v("crmsync_ticks_total", &[]), Some(2.0));
    assert_eq!(
        v(
            "crmsync_http_requests_total",
            &[("service", "graph"), ("status", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "crmsync_http_requests_total",
            &[("service", "superoffice"), ("status", "error")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("crmsync_http_throttled_total", &[("service", "graph")]),
        Some(1.0)
    );
    assert_eq!(
        v(
            "crmsync_http_throttled_total",
            &[("service", "superoffice")]
        ),
        Some(1.0),
        "a 503 is a throttle too"
    );
    assert_eq!(
        v(
            "crmsync_throttle_wait_seconds_total",
            &[("service", "graph")]
        ),
        Some(2.5)
    );
    assert_eq!(
        v("crmsync_limiter_queue_depth", &[("service", "graph")]),
        Some(1.0)
    );
}

#[test]
fn the_fixed_series_exist_at_zero_before_anything_happens() {
    let s = samples(&Metrics::new(rank(1)).render());
    // 3 kinds x 4 results.
    let passes = s
        .iter()
        .filter(|x| x.name == "crmsync_passes_total")
        .count();
    assert_eq!(passes, 12);
    // 3 kinds x 4 operations x 2 sides.
    let items = s.iter().filter(|x| x.name == "crmsync_items_total").count();
    assert_eq!(items, 24);
    assert!(
        s.iter()
            .filter(|x| x.name != "crmsync_pass_duration_seconds_bucket")
            .all(|x| x.value == 0.0)
    );
    // No status has been seen yet: no request series.
    assert!(!s.iter().any(|x| x.name == "crmsync_http_requests_total"));
}

#[test]
fn no_label_value_comes_from_outside_the_fixed_sets() {
    let m = Metrics::new(rank(12));
    record_everything(&m);
    // What a careless caller might pass: an address, a token, an error text.
    m.error("alice@example.com");
    m.error("Bearer eyJ0eXAi.secret");
    m.set_users(&[("ok", 1), ("bob@example.com", 2), ("syncing: token xyz", 3)]);
    let text = m.render();
    for leaked in ["alice", "bob", "Bearer", "secret", "xyz", "@"] {
        assert!(!text.contains(leaked), "{leaked} leaked:\n{text}");
    }
    let s = samples(&text);
    assert_eq!(
        value(&s, "crmsync_errors_total", &[("class", "other")]),
        Some(2.0)
    );
    assert_eq!(value(&s, "crmsync_users", &[("state", "other")]), Some(5.0));

    let kinds = ["diary", "task", "contact"];
    let results = PassResult::ALL.map(PassResult::as_str);
    let operations = Operation::ALL.map(Operation::as_str);
    let sides = Side::ALL.map(Side::as_str);
    let services = ["graph", "superoffice"];
    for sample in &s {
        for (label, v) in &sample.labels {
            let allowed = match label.as_str() {
                "rank" => v == "12",
                "kind" => kinds.contains(&v.as_str()),
                "result" => results.contains(&v.as_str()),
                "operation" => operations.contains(&v.as_str()),
                "side" => sides.contains(&v.as_str()),
                "class" => ERROR_CLASSES.contains(&v.as_str()) || v == OTHER,
                "state" => USER_STATES.contains(&v.as_str()) || v == OTHER,
                "service" => services.contains(&v.as_str()),
                "status" => v == "error" || (v.len() == 3 && v.parse::<u16>().is_ok()),
                "le" => v == "+Inf" || v.parse::<f64>().is_ok(),
                _ => false,
            };
            assert!(allowed, "{label}={v:?} in {sample:?}");
        }
    }
}

#[test]
fn the_user_counts_given_are_the_whole_picture() {
    let m = Metrics::new(rank(1));
    m.set_users(&[("ok", 3), ("weird", 1)]);
    m.set_users(&[("failed", 2)]);
    let s = samples(&m.render());
    assert_eq!(value(&s, "crmsync_users", &[("state", "ok")]), Some(0.0));
    assert_eq!(
        value(&s, "crmsync_users", &[("state", "failed")]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "crmsync_users", &[("state", "other")]),
        None,
        "other goes once nothing reports an unknown state"
    );
}

#[test]
fn a_size_beyond_a_gauge_is_clamped() {
    let m = Metrics::new(rank(1));
    m.set_history_bytes(u64::MAX);
    let s = samples(&m.render());
    assert_eq!(
        value(&s, "crmsync_history_size_bytes", &[]),
        Some(i64::MAX as f64)
    );
}

#[test]
fn a_bind_error_names_the_address_the_setting_and_the_way_out() {
    let e = MetricsError::Bind {
        addr: "127.0.0.1:9101".parse().unwrap(),
        rank: rank(1),
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    };
    let message = e.to_string();
    for part in [
        "127.0.0.1:9101",
        "base port 9100 plus rank 1",
        "in use",
        "[metrics] listen",
        "enabled = false",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    assert_eq!(e.exit_code(), crate::exit::CONFIG);
}

#[test]
fn a_port_overflow_says_which_base_ports_work() {
    let e = MetricsError::PortOverflow {
        base: "127.0.0.1:65000".parse().unwrap(),
        rank: rank(999),
    };
    let message = e.to_string();
    assert!(message.contains("65000 plus rank 999"), "{message}");
    assert!(message.contains("at most 64536"), "{message}");
}
