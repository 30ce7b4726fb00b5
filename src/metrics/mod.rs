//! Prometheus metrics of one rank daemon: passes, items, conflicts, errors, users by state,
//! the history's size, scheduler ticks, and the HTTP traffic of the connectors (fed through
//! [`HttpObserver`]). `server.rs` serves them on `GET /metrics`; `docs/metrics.md` lists every
//! series.
//!
//! Every series carries the constant label `rank`. Label values come only from fixed sets
//! (kinds, results, operations, sides, error classes, user states, service names, HTTP status
//! codes): never a mailbox, user, item or token, so that nothing personal or secret can leave
//! through a scrape. Methods that take a string map anything outside their set to `other`.

mod server;

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use server::{CONTENT_TYPE, serve};

use crate::connector::Service;
use crate::connector::http::HttpObserver;
use crate::registry::{Kind, Rank};

/// How a sync pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PassResult {
    /// Done: the cursors moved on.
    Ok,
    /// Ended by an error that a later pass may not meet (transient, service).
    Error,
    /// Stopped by the delete guard or by an operator, until resumed.
    Paused,
    /// The user cannot be synced until something changes (mailbox gone, consent withdrawn).
    Failed,
}

impl PassResult {
    pub const ALL: [PassResult; 4] = [
        PassResult::Ok,
        PassResult::Error,
        PassResult::Paused,
        PassResult::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PassResult::Ok => "ok",
            PassResult::Error => "error",
            PassResult::Paused => "paused",
            PassResult::Failed => "failed",
        }
    }
}

/// What a pass did to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Created,
    Updated,
    Deleted,
    /// Paired with an existing item of the other side (by stamp or fingerprint).
    Linked,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Created,
        Operation::Updated,
        Operation::Deleted,
        Operation::Linked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Created => "created",
            Operation::Updated => "updated",
            Operation::Deleted => "deleted",
            Operation::Linked => "linked",
        }
    }
}

/// The side an item was written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Crm,
    Mailbox,
}

impl Side {
    pub const ALL: [Side; 2] = [Side::Crm, Side::Mailbox];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Crm => "crm",
            Side::Mailbox => "mailbox",
        }
    }
}

/// The error classes of `crmsync_errors_total`; any other class is counted as `other`.
pub const ERROR_CLASSES: [&str; 6] = [
    "transient",
    "item",
    "user",
    "service",
    "history",
    "internal",
];

/// The user states of `crmsync_users`; any other state is counted as `other`.
pub const USER_STATES: [&str; 7] = [
    "ok",
    "syncing",
    "backing_off",
    "failed",
    "paused",
    "disabled",
    "waiting",
];

/// The label value for strings outside a fixed set.
pub const OTHER: &str = "other";

/// Upper bounds of the pass duration buckets, in seconds: from an idle pass (one request)
/// to a first full round of a large mailbox.
const PASS_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0, 300.0,
];

const SERVICES: [Service; 2] = [Service::Graph, Service::SuperOffice];

/// What cannot be set up to serve metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{}", bind_message(*addr, *rank, source))]
    Bind {
        addr: SocketAddr,
        rank: Rank,
        source: std::io::Error,
    },
    #[error(
        "[metrics] listen: the base port {} plus rank {rank} is above 65535; choose a base port of at most {}, or 0 for a free port per rank",
        base.port(),
        u16::MAX - Rank::MAX.get()
    )]
    PortOverflow { base: SocketAddr, rank: Rank },
}

impl MetricsError {
    /// The process exit code (DESIGN section 9): both are fixed in the configuration.
    pub fn exit_code(&self) -> u8 {
        crate::exit::CONFIG
    }
}

fn bind_message(addr: SocketAddr, rank: Rank, source: &std::io::Error) -> String {
    use std::io::ErrorKind;
    // The daemon binds the base port plus its rank: name both, for the operator to find the
    // setting that chose the port.
    let origin = match addr.port().checked_sub(rank.get()) {
        Some(base) if addr.port() != 0 => {
            format!(" (the [metrics] listen base port {base} plus rank {rank})")
        }
        _ => String::new(),
    };
    let what = match source.kind() {
        ErrorKind::AddrInUse => "the port is in use".to_string(),
        ErrorKind::PermissionDenied => {
            "this user may not listen there (ports below 1024 need privileges)".to_string()
        }
        ErrorKind::AddrNotAvailable => "the address is not one of this machine's".to_string(),
        _ => format!("cannot listen there ({source})"),
    };
    format!(
        "cannot serve metrics on {addr}{origin}: {what}; choose another base address in [metrics] listen, or disable metrics with [metrics] enabled = false"
    )
}

/// An HTTP status code, or `error` when no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Status {
    Code(u16),
    Error,
}

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        match self {
            Status::Code(code) => EncodeLabelValue::encode(code, encoder),
            Status::Error => EncodeLabelValue::encode(&"error", encoder),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PassLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ItemLabels {
    kind: &'static str,
    operation: &'static str,
    side: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    status: Status,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn pass_histogram() -> Histogram {
    Histogram::new(PASS_BUCKETS)
}

fn kind_labels(kind: Kind) -> KindLabels {
    KindLabels {
        kind: kind.as_str(),
    }
}

fn service_labels(service: Service) -> ServiceLabels {
    ServiceLabels {
        service: service.as_str(),
    }
}

fn known(value: &str, set: &[&'static str]) -> &'static str {
    set.iter().copied().find(|s| *s == value).unwrap_or(OTHER)
}

struct Inner {
    rank: Rank,
    registry: Registry,
    passes: Family<PassLabels, Counter>,
    pass_duration: HistogramFamily<KindLabels>,
    items: Family<ItemLabels, Counter>,
    conflicts: Family<KindLabels, Counter>,
    quarantined: Family<KindLabels, Counter>,
    errors: Family<ClassLabels, Counter>,
    users: Family<StateLabels, Gauge>,
    history_bytes: Gauge,
    ticks: Counter,
    http_requests: Family<RequestLabels, Counter>,
    http_throttled: Family<ServiceLabels, Counter>,
    throttle_wait: Family<ServiceLabels, Counter<f64, AtomicU64>>,
    queue_depth: Family<ServiceLabels, Gauge>,
}

/// The metrics of one rank daemon; cheap to clone (one registry behind an `Arc`).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("rank", &self.inner.rank)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(rank: Rank) -> Metrics {
        let labels = [(Cow::Borrowed("rank"), Cow::Owned(rank.to_string()))];
        let mut inner = Inner {
            rank,
            registry: Registry::with_labels(labels.into_iter()),
            passes: Family::default(),
            pass_duration: Family::new_with_constructor(pass_histogram),
            items: Family::default(),
            conflicts: Family::default(),
            quarantined: Family::default(),
            errors: Family::default(),
            users: Family::default(),
            history_bytes: Gauge::default(),
            ticks: Counter::default(),
            http_requests: Family::default(),
            http_throttled: Family::default(),
            throttle_wait: Family::default(),
            queue_depth: Family::default(),
        };
        let registry = &mut inner.registry;
        // The names are given without `_total` and unit suffixes: the OpenMetrics encoder
        // appends them (`crmsync_passes` becomes `crmsync_passes_total`).
        registry.register(
            "crmsync_passes",
            "Sync passes finished, by kind and result",
            inner.passes.clone(),
        );
        registry.register_with_unit(
            "crmsync_pass_duration",
            "Duration of sync passes, by kind",
            Unit::Seconds,
            inner.pass_duration.clone(),
        );
        registry.register(
            "crmsync_items",
            "Items written by sync passes, by kind, operation and the side written",
            inner.items.clone(),
        );
        registry.register(
            "crmsync_conflicts",
            "Items changed on both sides since the last pass, by kind",
            inner.conflicts.clone(),
        );
        registry.register(
            "crmsync_items_quarantined",
            "Items set aside after an error of their own, by kind",
            inner.quarantined.clone(),
        );
        registry.register(
            "crmsync_errors",
            "Errors, by class (transient, item, user, service, history, internal)",
            inner.errors.clone(),
        );
        registry.register(
            "crmsync_users",
            "Sync users of this rank, by state",
            inner.users.clone(),
        );
        registry.register_with_unit(
            "crmsync_history_size",
            "Size of the rank's history database on disk",
            Unit::Bytes,
            inner.history_bytes.clone(),
        );
        registry.register(
            "crmsync_ticks",
            "Scheduler ticks (each starts a pass per due user and kind)",
            inner.ticks.clone(),
        );
        registry.register(
            "crmsync_http_requests",
            "HTTP requests to a service, by the status of the answer (error: none came); the items of a Graph $batch count besides the batch",
            inner.http_requests.clone(),
        );
        registry.register(
            "crmsync_http_throttled",
            "Throttled answers (HTTP 429 and 503), by service",
            inner.http_throttled.clone(),
        );
        registry.register_with_unit(
            "crmsync_throttle_wait",
            "Time callers waited for Retry-After pauses and client-side quotas, by service",
            Unit::Seconds,
            inner.throttle_wait.clone(),
        );
        registry.register(
            "crmsync_limiter_queue_depth",
            "Requests waiting in the client-side limiter now, by service",
            inner.queue_depth.clone(),
        );
        // Every series of a fixed label set exists from the start at zero, so that `rate()`
        // and alerts see the first increment and a missing series means a missing daemon.
        for kind in Kind::ALL {
            for result in PassResult::ALL {
                let _ = inner.passes.get_or_create(&PassLabels {
                    kind: kind.as_str(),
                    result: result.as_str(),
                });
            }
            let _ = inner.pass_duration.get_or_create(&kind_labels(kind));
            for operation in Operation::ALL {
                for side in Side::ALL {
                    let _ = inner.items.get_or_create(&ItemLabels {
                        kind: kind.as_str(),
                        operation: operation.as_str(),
                        side: side.as_str(),
                    });
                }
            }
            let _ = inner.conflicts.get_or_create(&kind_labels(kind));
            let _ = inner.quarantined.get_or_create(&kind_labels(kind));
        }
        for class in ERROR_CLASSES {
            let _ = inner.errors.get_or_create(&ClassLabels { class });
        }
        for state in USER_STATES {
            let _ = inner.users.get_or_create(&StateLabels { state });
        }
        for service in SERVICES {
            let _ = inner.http_throttled.get_or_create(&service_labels(service));
            let _ = inner.throttle_wait.get_or_create(&service_labels(service));
            let _ = inner.queue_depth.get_or_create(&service_labels(service));
        }
        Metrics {
            inner: Arc::new(inner),
        }
    }

    pub fn rank(&self) -> Rank {
        self.inner.rank
    }

    /// A pass for `kind` ended with `result` after `duration`.
    pub fn pass_finished(&self, kind: Kind, result: PassResult, duration: Duration) {
        let inner = &self.inner;
        inner
            .passes
            .get_or_create(&PassLabels {
                kind: kind.as_str(),
                result: result.as_str(),
            })
            .inc();
        inner
            .pass_duration
            .get_or_create(&kind_labels(kind))
            .observe(duration.as_secs_f64());
    }

    /// `n` items of `kind` were `operation` on `side`.
    pub fn items(&self, kind: Kind, operation: Operation, side: Side, n: u64) {
        self.inner
            .items
            .get_or_create(&ItemLabels {
                kind: kind.as_str(),
                operation: operation.as_str(),
                side: side.as_str(),
            })
            .inc_by(n);
    }

    pub fn conflicts(&self, kind: Kind, n: u64) {
        self.inner
            .conflicts
            .get_or_create(&kind_labels(kind))
            .inc_by(n);
    }

    pub fn quarantined(&self, kind: Kind, n: u64) {
        self.inner
            .quarantined
            .get_or_create(&kind_labels(kind))
            .inc_by(n);
    }

    /// An error of `class` (one of [`ERROR_CLASSES`]; anything else counts as `other`).
    pub fn error(&self, class: &str) {
        let class = known(class, &ERROR_CLASSES);
        self.inner
            .errors
            .get_or_create(&ClassLabels { class })
            .inc();
    }

    /// The users of the rank by state: the counts given are the whole picture, so a state
    /// not given reads 0 afterwards. States outside [`USER_STATES`] are summed as `other`.
    pub fn set_users(&self, counts: &[(&str, u64)]) {
        let mut totals = [0u64; USER_STATES.len()];
        let mut other = None::<u64>;
        for (state, n) in counts {
            match USER_STATES.iter().position(|s| s == state) {
                Some(i) => totals[i] = totals[i].saturating_add(*n),
                None => other = Some(other.unwrap_or(0).saturating_add(*n)),
            }
        }
        for (state, n) in USER_STATES.iter().zip(totals) {
            self.inner
                .users
                .get_or_create(&StateLabels { state })
                .set(gauge_value(n));
        }
        let other_labels = StateLabels { state: OTHER };
        match other {
            Some(n) => {
                self.inner
                    .users
                    .get_or_create(&other_labels)
                    .set(gauge_value(n));
            }
            // Only there while something reports an unknown state.
            None => {
                self.inner.users.remove(&other_labels);
            }
        }
    }

    /// The history database's size on disk.
    pub fn set_history_bytes(&self, bytes: u64) {
        self.inner.history_bytes.set(gauge_value(bytes));
    }

    /// One scheduler tick.
    pub fn tick(&self) {
        self.inner.ticks.inc();
    }

    /// The metrics in the OpenMetrics text format (serve with [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a partial text,
        // which the scraper rejects rather than misreads.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl HttpObserver for Metrics {
    fn response(&self, service: Service, status: Option<u16>) {
        let inner = &self.inner;
        inner
            .http_requests
            .get_or_create(&RequestLabels {
                service: service.as_str(),
                status: status.map_or(Status::Error, Status::Code),
            })
            .inc();
        if matches!(status, Some(429 | 503)) {
            inner
                .http_throttled
                .get_or_create(&service_labels(service))
                .inc();
        }
    }

    fn waited(&self, service: Service, wait: Duration) {
        self.inner
            .throttle_wait
            .get_or_create(&service_labels(service))
            .inc_by(wait.as_secs_f64());
    }

    fn queue(&self, service: Service, delta: i64) {
        self.inner
            .queue_depth
            .get_or_create(&service_labels(service))
            .inc_by(delta);
    }
}

#[cfg(test)]
mod tests;
