//! The rank macro benchmark's harness (`benches/rank/harness.rs`), run small: 12 users, short
//! ticks. A smoke test that the harness works end to end (sandbox process, the users
//! commands, `crmsync run`, the request log, /proc, edits on both sides, the history stats).
//! It asserts what must hold whatever the machine's speed, never a timing.

#[allow(dead_code)]
#[path = "../benches/rank/harness.rs"]
mod harness;

use std::time::Duration;

#[test]
fn the_rank_benchmark_harness_measures_a_small_rank() {
    let options = harness::Options {
        users: 12,
        events: 10,
        tasks: 4,
        contacts: 5,
        seed: 3,
        superoffice_rate: 200,
        interval: Duration::from_secs(2),
        idle_ticks: 2,
        edits: 3,
        load_external_mailboxes: 300,
        patience: Duration::from_secs(240),
    };
    let f = harness::run(&options).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{f:#?}");
    // 12 users x (10 events + 4 tasks + 5 contacts in scope).
    assert!(f.pairs >= 12 * 14, "{f:?}");
    assert!(f.superoffice_writes > 0 && f.graph_requests > 0, "{f:?}");
    assert!(
        f.initial_cpu_s > 0.0 && f.initial_peak_rss_mib > 0.0,
        "{f:?}"
    );
    assert!(f.idle_peak_rss_mib > 0.0, "{f:?}");
    assert_eq!(f.propagation_samples, 6, "{f:?}");
    assert!(
        f.history_bytes > 0 && f.history_bytes_per_pair > 0.0,
        "{f:?}"
    );
    assert!(f.load_external_s.is_some(), "{f:?}");
    assert_eq!((f.duplicates, f.retry_after_violations), (0, 0), "{f:?}");
}
