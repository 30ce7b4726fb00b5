//! Client-side limits: what crmsync allows itself so that the services' quotas, not their
//! 429s, set the pace. Per mailbox (app + mailbox) a keyed quota and at most N requests in
//! flight through a fair semaphore; a global quota per mail system (or per service); and
//! pauses from `Retry-After` that hold every caller for that mailbox, not only the one that
//! was told.
//!
//! Architecture invariant: a request is sent only after [`Limiter::acquire`] returned for its
//! key, and a `Retry-After` is always reported back with [`Limiter::pause`].

mod backoff;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use backoff::Backoff;

/// `requests` per `per`, passing bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub per: Duration,
    pub burst: NonZeroU32,
}

impl RateLimit {
    fn quota(self) -> Quota {
        let period = self.per / self.requests.get();
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.requests))
            .allow_burst(self.burst)
    }
}

/// The limits of one service or mail system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterSettings {
    /// Per key (mailbox); `None` for a service limited only as a whole.
    pub per_key: Option<RateLimit>,
    /// Requests in flight per key.
    pub concurrency_per_key: Option<usize>,
    /// For all keys together.
    pub global: Option<RateLimit>,
}

/// Counters for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimiterStats {
    /// Callers waiting in `acquire` now.
    pub waiting: usize,
    /// Keys with state (semaphores or pauses) now.
    pub keys: usize,
    /// Pauses imposed by `Retry-After`.
    pub pauses: u64,
    /// Seconds callers spent waiting on pauses.
    pub paused_seconds: f64,
}

/// Told what the limits cost callers, for metrics (the connectors feed their
/// `HttpObserver` from it). Called on every acquire, never while a lock is held: keep it
/// cheap.
pub trait LimiterObserver: Send + Sync {
    /// A caller waited `wait` for a `Retry-After` pause or a quota (not for a slot: slots
    /// bound concurrency, they do not throttle).
    fn waited(&self, wait: Duration);
    /// `delta` callers began (+1) or ended (-1) waiting for admission in an `acquire`.
    fn queue(&self, delta: i64);
}

/// Limits for one service: a mail system (keys are mailboxes) or SuperOffice (one key).
pub struct Limiter {
    settings: LimiterSettings,
    per_key: Option<DefaultKeyedRateLimiter<String>>,
    global: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    pauses: Mutex<HashMap<String, Instant>>,
    waiting: AtomicUsize,
    pause_count: AtomicU64,
    paused_micros: AtomicU64,
    /// When state was last pruned (milliseconds after `born`).
    born: Instant,
    pruned_at_ms: AtomicU64,
    observer: Option<Arc<dyn LimiterObserver>>,
}

/// How often idle keys' state is dropped (governor keeps every key it has seen until told).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A caller's right to send one request for its key; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    _slot: Option<OwnedSemaphorePermit>,
}

/// A caller waiting in an `acquire`, counted until admitted or cancelled.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    observer: Option<&'a dyn LimiterObserver>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        if let Some(observer) = self.observer {
            observer.queue(-1);
        }
    }
}

impl Limiter {
    pub fn new(settings: LimiterSettings) -> Self {
        Limiter {
            per_key: settings
                .per_key
                .map(|r| DefaultKeyedRateLimiter::keyed(r.quota())),
            global: settings
                .global
                .map(|r| DefaultDirectRateLimiter::direct(r.quota())),
            settings,
            clock: DefaultClock::default(),
            slots: Mutex::new(HashMap::new()),
            pauses: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
            pause_count: AtomicU64::new(0),
            paused_micros: AtomicU64::new(0),
            born: Instant::now(),
            pruned_at_ms: AtomicU64::new(0),
            observer: None,
        }
    }

    /// Reports waits and the number of waiting callers to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn LimiterObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn enter(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let observer = self.observer.as_deref();
        if let Some(observer) = observer {
            observer.queue(1);
        }
        Waiting {
            count: &self.waiting,
            observer,
        }
    }

    fn waited(&self, wait: Duration) {
        if let Some(observer) = &self.observer {
            observer.waited(wait);
        }
    }

    /// Sleeps for a quota, and reports the time slept.
    async fn sleep_for_quota(&self, wait: Duration) {
        let started = Instant::now();
        tokio::time::sleep(wait).await;
        self.waited(started.elapsed());
    }

    /// Prunes idle keys once per [`PRUNE_EVERY`], on the way through an acquire: a long-running
    /// daemon's keyed state stays the size of its active mailboxes without a task of its own.
    fn prune_now_and_then(&self) {
        let now_ms = self.born.elapsed().as_millis() as u64;
        let last = self.pruned_at_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= PRUNE_EVERY.as_millis() as u64
            && self
                .pruned_at_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.prune();
        }
    }

    fn slot(&self, key: &str) -> Option<Arc<Semaphore>> {
        let limit = self.settings.concurrency_per_key?;
        let mut slots = self.slots.lock().ok()?;
        Some(
            slots
                .entry(key.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1))))
                .clone(),
        )
    }

    fn paused_until(&self, key: &str) -> Option<Instant> {
        let pauses = self.pauses.lock().ok()?;
        pauses
            .get(key)
            .copied()
            .filter(|until| *until > Instant::now())
    }

    /// Waits until a request for `key` may be sent: a free slot (first come, first served),
    /// the key's and the global quota, and no pause from `Retry-After` in force.
    pub async fn acquire(&self, key: &str) -> Permit {
        self.prune_now_and_then();
        let _waiting = self.enter();
        let slot = match self.slot(key) {
            // The semaphores are never closed, so acquiring fails only if that changes.
            Some(semaphore) => semaphore.acquire_owned().await.ok(),
            None => None,
        };
        self.wait_pause(key).await;
        self.wait_key_quota(key).await;
        self.wait_global().await;
        // A 429 for this key may have come back while this caller waited for its quota.
        self.wait_pause(key).await;
        Permit { _slot: slot }
    }

    /// Waits until `n` requests for `key` may go out together inside one `$batch`: `n` slots
    /// (at most the concurrency limit, taken at once so that two batches never hold part of
    /// each other's slots), `n` of the key's and of the global quota, and no pause in force.
    pub async fn acquire_many(&self, key: &str, n: u32) -> Permit {
        self.prune_now_and_then();
        let _waiting = self.enter();
        let slot = match (self.slot(key), self.settings.concurrency_per_key) {
            (Some(semaphore), Some(limit)) => {
                let wanted = n.clamp(1, u32::try_from(limit.max(1)).unwrap_or(u32::MAX));
                semaphore.acquire_many_owned(wanted).await.ok()
            }
            _ => None,
        };
        self.wait_pause(key).await;
        for _ in 0..n {
            self.wait_key_quota(key).await;
            self.wait_global().await;
        }
        self.wait_pause(key).await;
        Permit { _slot: slot }
    }

    /// Waits until a request that belongs to no key (a `$batch` envelope, a directory read)
    /// may be sent: the global quota, and no pause in force for `key`. No slot is taken.
    pub async fn acquire_global(&self, key: &str) -> Permit {
        let _waiting = self.enter();
        self.wait_pause(key).await;
        self.wait_global().await;
        self.wait_pause(key).await;
        Permit { _slot: None }
    }

    async fn wait_key_quota(&self, key: &str) {
        if let Some(limiter) = &self.per_key {
            let key = key.to_string();
            while let Err(not_until) = limiter.check_key(&key) {
                self.sleep_for_quota(not_until.wait_time_from(self.clock.now()))
                    .await;
            }
        }
    }

    async fn wait_global(&self) {
        if let Some(limiter) = &self.global {
            while let Err(not_until) = limiter.check() {
                self.sleep_for_quota(not_until.wait_time_from(self.clock.now()))
                    .await;
            }
        }
    }

    async fn wait_pause(&self, key: &str) {
        while let Some(until) = self.paused_until(key) {
            let started = Instant::now();
            tokio::time::sleep_until(until).await;
            let waited = started.elapsed();
            self.paused_micros
                .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
            self.waited(waited);
        }
    }

    /// Holds every caller for `key` for at least `duration` (a `Retry-After`).
    pub fn pause(&self, key: &str, duration: Duration) {
        let until = Instant::now() + duration;
        self.pause_count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut pauses) = self.pauses.lock() {
            let entry = pauses.entry(key.to_string()).or_insert(until);
            if *entry < until {
                *entry = until;
            }
        }
    }

    /// Drops the state of keys that are idle: no caller holds or waits for a slot, no pause
    /// is in force, and their quota has refilled. Called periodically.
    pub fn prune(&self) {
        if let Some(limiter) = &self.per_key {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let limit = self.settings.concurrency_per_key.unwrap_or(0);
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() != limit);
        }
        let now = Instant::now();
        if let Ok(mut pauses) = self.pauses.lock() {
            pauses.retain(|_, until| *until > now);
        }
    }

    /// The limits this limiter enforces (for logs and tests).
    pub fn settings(&self) -> LimiterSettings {
        self.settings
    }

    pub fn stats(&self) -> LimiterStats {
        let keys = self.slots.lock().map(|s| s.len()).unwrap_or(0)
            + self.pauses.lock().map(|p| p.len()).unwrap_or(0);
        LimiterStats {
            waiting: self.waiting.load(Ordering::Relaxed),
            keys,
            pauses: self.pause_count.load(Ordering::Relaxed),
            paused_seconds: self.paused_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests;
