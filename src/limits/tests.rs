use std::time::Duration;

use super::*;

fn limit(requests: u32, per_ms: u64, burst: u32) -> RateLimit {
    RateLimit {
        requests: NonZeroU32::new(requests).unwrap(),
        per: Duration::from_millis(per_ms),
        burst: NonZeroU32::new(burst).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_the_concurrency_limit_is_in_flight_per_key() {
    let limiter = Arc::new(Limiter::new(LimiterSettings {
        per_key: None,
        concurrency_per_key: Some(4),
        global: None,
    }));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (limiter, in_flight, peak) = (limiter.clone(), in_flight.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limiter.acquire("m1").await;
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 4);
    // Another key has its own slots.
    let a = limiter.acquire("m1").await;
    let b = limiter.acquire("m2").await;
    drop((a, b));
    limiter.prune();
    assert_eq!(limiter.stats().keys, 0, "idle keys are pruned");
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_every_caller_of_the_key_and_no_other() {
    let limiter = Arc::new(Limiter::new(LimiterSettings {
        per_key: None,
        concurrency_per_key: Some(4),
        global: None,
    }));
    limiter.pause("m1", Duration::from_millis(2500));
    let started = Instant::now();
    let waiting = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            let _p = limiter.acquire("m1").await;
            Instant::now()
        })
    };
    let other = limiter.acquire("m2").await;
    assert_eq!(Instant::now(), started, "another mailbox is not held");
    drop(other);
    let released = waiting.await.unwrap();
    assert!(released.duration_since(started) >= Duration::from_millis(2500));
    let stats = limiter.stats();
    assert_eq!(stats.pauses, 1);
    assert!(stats.paused_seconds >= 2.5);
}

#[tokio::test(start_paused = true)]
async fn a_longer_pause_wins_over_a_shorter_one() {
    let limiter = Limiter::new(LimiterSettings {
        per_key: None,
        concurrency_per_key: None,
        global: None,
    });
    let started = Instant::now();
    limiter.pause("m1", Duration::from_secs(5));
    limiter.pause("m1", Duration::from_secs(1));
    let _p = limiter.acquire("m1").await;
    assert!(Instant::now().duration_since(started) >= Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_quota_spaces_requests_after_the_burst() {
    let limiter = Limiter::new(LimiterSettings {
        per_key: Some(limit(20, 1000, 2)),
        concurrency_per_key: None,
        global: None,
    });
    let started = std::time::Instant::now();
    for _ in 0..6 {
        drop(limiter.acquire("m1").await);
    }
    // Two at once, then one every 50 ms: at least 200 ms for six.
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    // Another key has its own quota, untouched by m1's.
    let per_key = limiter.per_key.as_ref().unwrap();
    assert!(per_key.check_key(&"m1".to_string()).is_err());
    assert!(per_key.check_key(&"m2".to_string()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_quota_binds_across_keys() {
    let limiter = Limiter::new(LimiterSettings {
        per_key: None,
        concurrency_per_key: None,
        global: Some(limit(20, 1000, 1)),
    });
    let started = std::time::Instant::now();
    for key in ["a", "b", "c", "d", "e"] {
        drop(limiter.acquire(key).await);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_take_their_slots_at_once_and_never_wait_on_each_other() {
    let limiter = Arc::new(Limiter::new(LimiterSettings {
        per_key: Some(limit(1000, 1000, 100)),
        concurrency_per_key: Some(4),
        global: Some(limit(1000, 1000, 100)),
    }));
    // Two batches of three items for each of two mailboxes, taken in key order, while single
    // requests come and go: all finish.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let batch = limiter.clone();
        tasks.push(tokio::spawn(async move {
            let limiter = batch;
            let a = limiter.acquire_many("m1", 3).await;
            let b = limiter.acquire_many("m2", 3).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
            drop((a, b));
        }));
        let limiter = limiter.clone();
        tasks.push(tokio::spawn(async move {
            drop(limiter.acquire("m2").await);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // More items than slots take all the slots, not more.
    let all = limiter.acquire_many("m3", 20).await;
    assert_eq!(limiter.slot("m3").unwrap().available_permits(), 0);
    drop(all);
    // The envelope takes no slot.
    let _g = limiter.acquire_global("m3").await;
    assert_eq!(limiter.slot("m3").unwrap().available_permits(), 4);
}

#[tokio::test(start_paused = true)]
async fn idle_keys_are_pruned_by_later_acquires() {
    let limiter = Limiter::new(LimiterSettings {
        per_key: None,
        concurrency_per_key: Some(4),
        global: None,
    });
    for i in 0..100 {
        drop(limiter.acquire(&format!("m{i}")).await);
    }
    assert_eq!(limiter.stats().keys, 100);
    tokio::time::advance(PRUNE_EVERY).await;
    drop(limiter.acquire("m0").await);
    assert!(limiter.stats().keys <= 1, "{:?}", limiter.stats());
}

/// Records what a limiter reports.
#[derive(Default)]
struct Recorder {
    waited: Mutex<Duration>,
    queue: std::sync::atomic::AtomicI64,
    peak: std::sync::atomic::AtomicI64,
}

impl LimiterObserver for Recorder {
    fn waited(&self, wait: Duration) {
        if let Ok(mut total) = self.waited.lock() {
            *total += wait;
        }
    }

    fn queue(&self, delta: i64) {
        let now = self.queue.fetch_add(delta, Ordering::SeqCst) + delta;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn the_observer_hears_of_pause_waits_and_of_every_caller_that_queued() {
    let recorder = Arc::new(Recorder::default());
    let limiter = Arc::new(
        Limiter::new(LimiterSettings {
            per_key: None,
            concurrency_per_key: Some(1),
            global: None,
        })
        .with_observer(recorder.clone()),
    );
    limiter.pause("m1", Duration::from_secs(2));
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let _p = limiter.acquire("m1").await;
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    assert_eq!(recorder.peak.load(Ordering::SeqCst), 3, "all three queued");
    assert_eq!(recorder.queue.load(Ordering::SeqCst), 0, "and none is left");
    // Only the first caller slept through the pause; the others waited for its slot, which
    // is not a throttle wait.
    let waited = *recorder.waited.lock().unwrap();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );

    // A caller that gives up while waiting leaves the queue too.
    limiter.pause("m1", Duration::from_secs(60));
    let gave_up = tokio::time::timeout(Duration::from_secs(1), limiter.acquire("m1")).await;
    assert!(gave_up.is_err());
    assert_eq!(recorder.queue.load(Ordering::SeqCst), 0);
}
