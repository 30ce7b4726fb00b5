//! Fault injection: per emulator, per mailbox, per path, by probability or for the next N
//! matching requests. Probabilities draw from a seeded generator, so a run can be repeated.

use std::sync::Mutex;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Emulator;

/// What an injected fault does to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// 429 with `Retry-After` (seconds, may be fractional; or an HTTP date).
    TooManyRequests {
        retry_after_secs: f64,
        #[serde(default)]
        as_http_date: bool,
    },
    /// A 5xx (500, 502, 503, 504), with `Retry-After` if given.
    ServerError {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<f64>,
    },
    /// The connection is closed before a response is complete.
    Reset,
    /// The response promises a body and stops in the middle of it.
    Truncate,
    /// The request is answered normally, after a delay.
    Slow {
        #[serde(with = "millis")]
        delay: Duration,
    },
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl FaultKind {
    pub fn name(&self) -> String {
        match self {
            FaultKind::TooManyRequests { .. } => "429".into(),
            FaultKind::ServerError { status, .. } => status.to_string(),
            FaultKind::Reset => "reset".into(),
            FaultKind::Truncate => "truncate".into(),
            FaultKind::Slow { delay } => format!("slow {}ms", delay.as_millis()),
        }
    }
}

/// Which requests a fault applies to, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Only this emulator's requests (both when absent).
    #[serde(default)]
    pub emulator: Option<Emulator>,
    /// Only requests for this mailbox (Graph user id or address).
    #[serde(default)]
    pub mailbox: Option<String>,
    /// Only requests whose path and query contain this.
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Only this method.
    #[serde(default)]
    pub method: Option<String>,
    /// For the next N matching requests (then the rule is gone)...
    #[serde(default)]
    pub next: Option<u32>,
    /// ...or for each matching request with this probability (0 to 1).
    #[serde(default)]
    pub probability: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveFault {
    pub id: u64,
    pub rule: FaultRule,
    /// How many requests it has answered.
    pub hits: u64,
}

/// What a request is, for matching.
pub struct RequestInfo<'a> {
    pub emulator: Emulator,
    pub mailbox: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
}

#[derive(Debug)]
pub struct Faults {
    state: Mutex<(Vec<ActiveFault>, u64, ChaCha8Rng)>,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            state: Mutex::new((Vec::new(), 0, ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    pub fn add(&self, rule: FaultRule) -> Result<u64, String> {
        match (rule.next, rule.probability) {
            (Some(0), _) => return Err("next must be at least 1".into()),
            (Some(_), Some(_)) | (None, None) => {
                return Err("give exactly one of next (a count) and probability".into());
            }
            (None, Some(p)) if !(0.0..=1.0).contains(&p) => {
                return Err(format!("probability {p} is not between 0 and 1"));
            }
            _ => {}
        }
        if let FaultKind::ServerError { status, .. } = rule.kind
            && !(500..=599).contains(&status)
        {
            return Err(format!("status {status} is not a 5xx"));
        }
        let mut state = self.state.lock().map_err(|_| "fault table poisoned")?;
        state.1 += 1;
        let id = state.1;
        state.0.push(ActiveFault { id, rule, hits: 0 });
        Ok(id)
    }

    pub fn remove(&self, id: u64) -> bool {
        self.state.lock().is_ok_and(|mut s| {
            let before = s.0.len();
            s.0.retain(|f| f.id != id);
            s.0.len() != before
        })
    }

    pub fn clear(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.0.clear();
        }
    }

    pub fn list(&self) -> Vec<ActiveFault> {
        self.state.lock().map(|s| s.0.clone()).unwrap_or_default()
    }

    /// The fault that answers this request, if any (the first matching rule that fires).
    pub fn pick(&self, request: &RequestInfo<'_>) -> Option<FaultKind> {
        let mut guard = self.state.lock().ok()?;
        let (faults, _, rng) = &mut *guard;
        let mut fired = None;
        for (i, fault) in faults.iter_mut().enumerate() {
            let rule = &fault.rule;
            let matches = rule.emulator.is_none_or(|e| e == request.emulator)
                && rule
                    .mailbox
                    .as_deref()
                    .is_none_or(|m| request.mailbox.is_some_and(|rm| rm.eq_ignore_ascii_case(m)))
                && rule
                    .path_contains
                    .as_deref()
                    .is_none_or(|p| request.path.contains(p))
                && rule
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(request.method));
            if !matches {
                continue;
            }
            let fires = match (rule.next, rule.probability) {
                (Some(_), _) => true,
                (None, Some(p)) => rng.random_bool(p),
                (None, None) => false,
            };
            if fires {
                fault.hits += 1;
                fired = Some((i, fault.rule.kind.clone()));
                break;
            }
        }
        let (i, kind) = fired?;
        if let Some(n) = faults[i].rule.next.as_mut() {
            *n -= 1;
            if *n == 0 {
                faults.remove(i);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(next: Option<u32>, probability: Option<f64>) -> FaultRule {
        FaultRule {
            kind: FaultKind::Reset,
            emulator: Some(Emulator::Graph),
            mailbox: Some("m1".into()),
            path_contains: Some("/events".into()),
            method: None,
            next,
            probability,
        }
    }

    fn request<'a>(mailbox: &'a str, path: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            emulator: Emulator::Graph,
            mailbox: Some(mailbox),
            method: "GET",
            path,
        }
    }

    #[test]
    fn a_counted_fault_answers_the_next_n_matching_requests_only() {
        let faults = Faults::new(1);
        faults.add(rule(Some(2), None)).unwrap();
        assert!(faults.pick(&request("m2", "/users/m2/events")).is_none());
        assert!(faults.pick(&request("m1", "/users/m1/todo")).is_none());
        assert!(faults.pick(&request("m1", "/users/m1/events")).is_some());
        assert!(faults.pick(&request("M1", "/users/m1/events")).is_some());
        assert!(faults.pick(&request("m1", "/users/m1/events")).is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn a_probable_fault_is_reproducible_from_the_seed() {
        let run = || {
            let faults = Faults::new(42);
            faults.add(rule(None, Some(0.3))).unwrap();
            (0..200)
                .map(|_| faults.pick(&request("m1", "/users/m1/events")).is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let hits = first.iter().filter(|h| **h).count();
        assert!((30..=90).contains(&hits), "{hits}");
    }

    #[test]
    fn bad_rules_are_refused() {
        let faults = Faults::new(1);
        assert!(faults.add(rule(None, None)).is_err());
        assert!(faults.add(rule(Some(1), Some(0.5))).is_err());
        assert!(faults.add(rule(None, Some(1.5))).is_err());
        assert!(faults.add(rule(Some(0), None)).is_err());
    }
}
