//! History commits: pairs per second written in the executor's batches of 50, and the bytes
//! each pair takes on disk after a clean close and reopen.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crmsync::connector::model::{ContentHash, CrmId, Kind, MailboxItemId, Version};
use crmsync::history::{Commit, History, HistoryOptions, Pair, Side};
use crmsync::registry::SyncUserId;

fn options() -> HistoryOptions {
    HistoryOptions {
        cache_capacity_bytes: 64 << 20,
        flush_interval: Duration::from_millis(500),
    }
}

/// A pair with ids and versions the size real ones have (Graph immutable ids are about 150
/// characters; change keys about 30; SuperOffice versions are RFC 3339 times).
fn pair(n: u32) -> Pair {
    Pair {
        crm_id: CrmId(n),
        mailbox_id: MailboxItemId(format!(
            "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AwQJs7Tz3Ak6xRrsUnLm-UgAAA{n:0>92}AAA="
        )),
        crm_version: Version("2026-11-22T10:15:42Z".into()),
        mailbox_version: Version(format!("EZ9r3czxY0m2jz8c45czkwAA{n:08}")),
        crm_hash: ContentHash([n as u8; 16]),
        mailbox_hash: ContentHash([n as u8; 16]),
        origin: Side::Crm,
        span: Some((1_795_000_000, 1_795_003_600)),
        stamped: true,
        mailbox_read_only: false,
    }
}

fn bench_commits(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let history = History::open(dir.path(), &options())
        .expect("history")
        .history;
    let user = history
        .user(&SyncUserId::parse("bench").expect("id"))
        .expect("user");
    let mut next = 0u32;
    let mut group = c.benchmark_group("history");
    group.throughput(Throughput::Elements(50));
    group.bench_function("commit 50 new pairs", |b| {
        b.iter(|| {
            let commit = Commit {
                put: (next..next + 50).map(pair).collect(),
                ..Commit::default()
            };
            next += 50;
            user.commit(Kind::Diary, black_box(&commit))
                .expect("commit");
        })
    });
    group.finish();

    // Bytes per pair on disk: 100,000 pairs, a clean close, a reopen.
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let history = History::open(dir.path(), &options())
            .expect("history")
            .history;
        let user = history
            .user(&SyncUserId::parse("size").expect("id"))
            .expect("user");
        for chunk in 0..2000u32 {
            let commit = Commit {
                put: (chunk * 50..chunk * 50 + 50).map(pair).collect(),
                ..Commit::default()
            };
            user.commit(Kind::Diary, &commit).expect("commit");
        }
    }
    let history = History::open(dir.path(), &options())
        .expect("history")
        .history;
    let size = history.size_on_disk().expect("size");
    eprintln!(
        "history on disk: {size} bytes for 100000 pairs = {:.0} bytes per pair",
        size as f64 / 100_000.0
    );
}

criterion_group!(benches, bench_commits);
criterion_main!(benches);
