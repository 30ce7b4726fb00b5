//! The services' documented limits, enforced by the emulators: per mailbox (app + mailbox)
//! 10,000 requests per 10 minutes and 4 concurrent requests, per app 130,000 requests per
//! 10 seconds (Microsoft Graph), and 10 requests per second (SuperOffice). Over a limit the
//! answer is 429 with `Retry-After`; a request that arrives before a `Retry-After` it was given
//! has run out is recorded as a violation, so tests can assert that crmsync never makes one.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Emulator;

/// `requests` per `per`, as a token bucket that starts full.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub requests: u32,
    #[serde(with = "humantime_serde_ms")]
    pub per: Duration,
}

/// The limits in force. `None` switches one off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitSpec {
    pub graph_mailbox: Option<Rate>,
    pub graph_mailbox_concurrency: Option<u32>,
    pub graph_app: Option<Rate>,
    pub superoffice: Option<Rate>,
    /// `Retry-After` given with a concurrency 429 (Graph does not document it).
    #[serde(with = "humantime_serde_ms")]
    pub concurrency_retry_after: Duration,
}

mod humantime_serde_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

impl LimitSpec {
    /// The documented limits.
    pub fn real() -> Self {
        LimitSpec {
            graph_mailbox: Some(Rate {
                requests: 10_000,
                per: Duration::from_secs(600),
            }),
            graph_mailbox_concurrency: Some(4),
            graph_app: Some(Rate {
                requests: 130_000,
                per: Duration::from_secs(10),
            }),
            superoffice: Some(Rate {
                requests: 10,
                per: Duration::from_secs(1),
            }),
            concurrency_retry_after: Duration::from_secs(1),
        }
    }

    pub fn off() -> Self {
        LimitSpec {
            graph_mailbox: None,
            graph_mailbox_concurrency: None,
            graph_app: None,
            superoffice: None,
            concurrency_retry_after: Duration::from_secs(1),
        }
    }

    /// The documented limits with every request rate divided by `factor` (same windows,
    /// `factor` times fewer requests, at least one), so that a test or benchmark reaches them
    /// quickly. Concurrency stays at 4: it is not a rate.
    pub fn scaled(factor: f64) -> Self {
        let scale = |rate: Option<Rate>| {
            rate.map(|r| Rate {
                requests: ((f64::from(r.requests) / factor).round() as u32).max(1),
                per: r.per,
            })
        };
        let real = Self::real();
        LimitSpec {
            graph_mailbox: scale(real.graph_mailbox),
            graph_app: scale(real.graph_app),
            superoffice: scale(real.superoffice),
            ..real
        }
    }
}

impl FromStr for LimitSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "real" => Ok(Self::real()),
            "off" => Ok(Self::off()),
            _ => {
                let factor = s
                    .strip_prefix("scaled:")
                    .and_then(|f| f.parse::<f64>().ok())
                    .filter(|f| f.is_finite() && *f >= 1.0);
                factor.map(Self::scaled).ok_or_else(|| {
                    format!(
                        "{s:?} is not a limit setting: use real, off or scaled:FACTOR (FACTOR >= 1)"
                    )
                })
            }
        }
    }
}

/// What a limit is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Target {
    /// One mailbox (app + mailbox) of the Graph tenant.
    Mailbox(String),
    /// The whole Graph app (requests for no mailbox, such as `/users`).
    GraphApp,
    /// The SuperOffice tenant.
    SuperOffice,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Mailbox(id) => write!(f, "mailbox {id}"),
            Target::GraphApp => f.write_str("the Graph app"),
            Target::SuperOffice => f.write_str("the SuperOffice tenant"),
        }
    }
}

/// A request made before a `Retry-After` given for its target had run out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub at: jiff::Timestamp,
    pub emulator: Emulator,
    pub target: Target,
    pub method: String,
    pub path: String,
    /// How much too early it came.
    pub early_ms: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// A request rate is exceeded; retry after the given time.
    Rate { retry_after: Duration },
    /// Too many requests in flight for the mailbox.
    Concurrency { retry_after: Duration },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(rate.requests);
        let per_second = capacity / rate.per.as_secs_f64().max(f64::MIN_POSITIVE);
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<(Target, bool), Bucket>,
    in_flight: HashMap<String, u32>,
    blocked_until: HashMap<Target, Instant>,
    violations: Vec<Violation>,
}

/// The limits of a running sandbox.
#[derive(Debug)]
pub struct Limits {
    spec: Mutex<LimitSpec>,
    state: Mutex<State>,
}

/// A request's place in the mailbox's concurrency count, given back when dropped.
pub struct InFlight<'a> {
    limits: &'a Limits,
    mailbox: Option<String>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(mailbox) = self.mailbox.take()
            && let Ok(mut state) = self.limits.state.lock()
            && let Some(n) = state.in_flight.get_mut(&mailbox)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.in_flight.remove(&mailbox);
            }
        }
    }
}

impl Limits {
    pub fn new(spec: LimitSpec) -> Self {
        Limits {
            spec: Mutex::new(spec),
            state: Mutex::new(State::default()),
        }
    }

    pub fn spec(&self) -> LimitSpec {
        self.spec
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| LimitSpec::off())
    }

    /// Replaces the limits; counts start afresh.
    pub fn set_spec(&self, spec: LimitSpec) {
        if let Ok(mut s) = self.spec.lock() {
            *s = spec;
        }
        if let Ok(mut state) = self.state.lock() {
            state.buckets.clear();
        }
    }

    /// Records a violation if `target` (or the whole Graph app) was told to wait and the
    /// time is not up yet.
    pub fn check_retry_after(
        &self,
        emulator: Emulator,
        target: &Target,
        method: &str,
        path: &str,
        at: jiff::Timestamp,
    ) {
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut targets = vec![target.clone()];
        if matches!(target, Target::Mailbox(_)) {
            targets.push(Target::GraphApp);
        }
        for t in targets {
            if let Some(until) = state.blocked_until.get(&t).copied()
                && until > now
            {
                state.violations.push(Violation {
                    at,
                    emulator,
                    target: t,
                    method: method.to_string(),
                    path: path.to_string(),
                    early_ms: until.duration_since(now).as_millis() as u64,
                });
            }
        }
    }

    /// Remembers that `target` was told to wait `retry_after`.
    pub fn told_to_wait(&self, target: &Target, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        if let Ok(mut state) = self.state.lock() {
            let entry = state.blocked_until.entry(target.clone()).or_insert(until);
            if *entry < until {
                *entry = until;
            }
        }
    }

    /// Admits a request for `target`, or says why not. The returned guard holds the
    /// request's place in its mailbox's concurrency count until it is dropped.
    pub fn admit(&self, target: &Target) -> Result<InFlight<'_>, Refusal> {
        let spec = self.spec();
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return Ok(InFlight {
                limits: self,
                mailbox: None,
            });
        };
        let mailbox = match target {
            Target::Mailbox(m) => Some(m.clone()),
            _ => None,
        };
        if let (Some(m), Some(max)) = (&mailbox, spec.graph_mailbox_concurrency)
            && state.in_flight.get(m).copied().unwrap_or(0) >= max
        {
            return Err(Refusal::Concurrency {
                retry_after: spec.concurrency_retry_after,
            });
        }
        let own_rate = match target {
            Target::Mailbox(_) => spec.graph_mailbox,
            Target::GraphApp => None,
            Target::SuperOffice => spec.superoffice,
        };
        let app_rate = match target {
            Target::Mailbox(_) | Target::GraphApp => spec.graph_app,
            Target::SuperOffice => None,
        };
        // Take from both buckets or from neither.
        let mut checks = Vec::new();
        if let Some(rate) = own_rate {
            checks.push(((target.clone(), false), rate));
        }
        if let Some(rate) = app_rate {
            checks.push(((Target::GraphApp, true), rate));
        }
        let mut taken = Vec::new();
        for (key, rate) in checks {
            let bucket = state.buckets.entry(key.clone()).or_insert(Bucket {
                tokens: f64::from(rate.requests),
                at: now,
            });
            match bucket.take(rate, now) {
                Ok(()) => taken.push(key),
                Err(wait) => {
                    for key in taken {
                        if let Some(b) = state.buckets.get_mut(&key) {
                            b.tokens += 1.0;
                        }
                    }
                    return Err(Refusal::Rate { retry_after: wait });
                }
            }
        }
        if let Some(m) = &mailbox {
            *state.in_flight.entry(m.clone()).or_insert(0) += 1;
        }
        Ok(InFlight {
            limits: self,
            mailbox,
        })
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.state
            .lock()
            .map(|s| s.violations.clone())
            .unwrap_or_default()
    }

    pub fn clear_violations(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.violations.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(requests: u32, per_ms: u64, concurrency: Option<u32>) -> LimitSpec {
        LimitSpec {
            graph_mailbox: Some(Rate {
                requests,
                per: Duration::from_millis(per_ms),
            }),
            graph_mailbox_concurrency: concurrency,
            ..LimitSpec::off()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_mailbox_gets_its_quota_then_429_with_the_time_to_wait() {
        let limits = Limits::new(spec(3, 3000, None));
        let mailbox = Target::Mailbox("m1".into());
        for _ in 0..3 {
            drop(limits.admit(&mailbox).unwrap());
        }
        match limits.admit(&mailbox) {
            Err(Refusal::Rate { retry_after }) => {
                assert_eq!(retry_after.as_millis(), 1000)
            }
            _ => panic!("expected a rate refusal"),
        }
        // Another mailbox is not affected.
        drop(limits.admit(&Target::Mailbox("m2".into())).unwrap());
        tokio::time::advance(Duration::from_millis(1000)).await;
        drop(limits.admit(&mailbox).unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_fifth_concurrent_request_of_a_mailbox_is_refused() {
        let limits = Limits::new(spec(100, 1000, Some(4)));
        let mailbox = Target::Mailbox("m1".into());
        let held: Vec<_> = (0..4).map(|_| limits.admit(&mailbox).unwrap()).collect();
        assert!(matches!(
            limits.admit(&mailbox),
            Err(Refusal::Concurrency { .. })
        ));
        drop(held);
        drop(limits.admit(&mailbox).unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_before_retry_after_runs_out_are_violations() {
        let limits = Limits::new(LimitSpec::off());
        let mailbox = Target::Mailbox("m1".into());
        let at = jiff::Timestamp::now();
        limits.told_to_wait(&mailbox, Duration::from_millis(2500));
        tokio::time::advance(Duration::from_millis(2000)).await;
        limits.check_retry_after(Emulator::Graph, &mailbox, "GET", "/x", at);
        tokio::time::advance(Duration::from_millis(600)).await;
        limits.check_retry_after(Emulator::Graph, &mailbox, "GET", "/x", at);
        let violations = limits.violations();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].early_ms, 500);
    }

    #[test]
    fn limit_settings_parse() {
        assert_eq!("real".parse::<LimitSpec>().unwrap(), LimitSpec::real());
        assert_eq!("off".parse::<LimitSpec>().unwrap(), LimitSpec::off());
        let scaled: LimitSpec = "scaled:100".parse().unwrap();
        assert_eq!(scaled.graph_mailbox.unwrap().requests, 100);
        assert_eq!(scaled.graph_app.unwrap().requests, 1300);
        assert_eq!(scaled.superoffice.unwrap().requests, 1);
        assert!("scaled:0.5".parse::<LimitSpec>().is_err());
        assert!("fast".parse::<LimitSpec>().is_err());
    }
}
