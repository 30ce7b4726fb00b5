//! Exponential back-off with full jitter, for transient failures that carry no `Retry-After`.

use std::time::Duration;

use rand::RngExt;

/// Delays of `base * 2^attempt`, capped at `max`, each drawn uniformly from the upper half
/// of that range so that many callers that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Attempts after the first; then the failure is given up on.
    pub retries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
            retries: 5,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry), or `None` when the
    /// retries are used up.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.retries {
            return None;
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max);
        let half = ceiling / 2;
        let jitter = rand::rng().random_range(0..=half.as_micros() as u64);
        Some(half + Duration::from_micros(jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_end() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            retries: 6,
        };
        for (attempt, ceiling) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000), (5, 1000)] {
            let d = b.delay(attempt).unwrap();
            assert!(
                d >= Duration::from_millis(ceiling / 2) && d <= Duration::from_millis(ceiling),
                "attempt {attempt}: {d:?}"
            );
        }
        assert_eq!(b.delay(6), None);
    }
}
