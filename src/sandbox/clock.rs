//! The sandbox's clock: real time plus an offset that tests and the control API move, so
//! that token expiry, `UpdatedDate`s and moving sync windows can be simulated.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct SandboxClock {
    offset_ms: AtomicI64,
}

impl SandboxClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn now(&self) -> jiff::Timestamp {
        let offset = jiff::SignedDuration::from_millis(self.offset_ms.load(Ordering::Relaxed));
        jiff::Timestamp::now()
            .checked_add(offset)
            .unwrap_or(jiff::Timestamp::MAX)
    }

    /// Moves the sandbox's time forward (emulated services only; real timers are unaffected).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Sets the sandbox's time to `at` (it goes on ticking from there).
    pub fn set(&self, at: jiff::Timestamp) {
        let offset = at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    /// How far the sandbox's time is ahead of real time.
    pub fn offset(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_when_told() {
        let clock = SandboxClock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        let after = clock.now();
        assert!(after.duration_since(before) >= jiff::SignedDuration::from_secs(3600));
        let target = jiff::Timestamp::from_second(2_000_000_000).unwrap();
        clock.set(target);
        assert!(clock.now().duration_since(target).abs() < jiff::SignedDuration::from_secs(5));
    }
}
