//! The limiter's own cost per request: what every Graph and SuperOffice request pays before
//! it is sent, with quotas far from binding (so only the bookkeeping is measured).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crmsync::limits::{Limiter, LimiterSettings, RateLimit};

fn generous(requests: u32) -> RateLimit {
    let n = NonZeroU32::new(requests).expect("non-zero");
    RateLimit {
        requests: n,
        per: Duration::from_secs(1),
        burst: n,
    }
}

fn bench_acquire(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let limiter = Limiter::new(LimiterSettings {
        per_key: Some(generous(1_000_000_000)),
        concurrency_per_key: Some(4),
        global: Some(generous(1_000_000_000)),
    });
    let mailboxes: Vec<String> = (0..1000).map(|i| format!("mailbox-{i}")).collect();
    let mut next = 0usize;
    c.bench_function("limiter acquire+release, 1000 mailboxes", |b| {
        b.iter(|| {
            next = (next + 1) % mailboxes.len();
            let permit = runtime.block_on(limiter.acquire(black_box(&mailboxes[next])));
            drop(permit);
        })
    });
    c.bench_function("limiter acquire+release, one mailbox", |b| {
        b.iter(|| drop(runtime.block_on(limiter.acquire(black_box("mailbox-0")))))
    });
    let key_only = Limiter::new(LimiterSettings {
        per_key: None,
        concurrency_per_key: None,
        global: Some(generous(1_000_000_000)),
    });
    c.bench_function("limiter acquire, global quota only (SuperOffice)", |b| {
        b.iter(|| drop(runtime.block_on(key_only.acquire(black_box("superoffice")))))
    });
}

criterion_group!(benches, bench_acquire);
criterion_main!(benches);
