//! What a rank daemon tells operators: the HTTP traffic of its connectors (to the metrics and
//! to the status file) and the status file itself, written off the scheduler loop at most
//! once per second and once more, last, at exit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::status::{RankStatus, ThrottleStatus};
use crate::connector::Service;
use crate::connector::http::HttpObserver;
use crate::metrics::Metrics;

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    throttled: AtomicU64,
    waited_micros: AtomicU64,
}

/// The connectors' observer: feeds the metrics and keeps the sums the status file shows.
#[derive(Debug)]
pub struct Traffic {
    metrics: Metrics,
    graph: Counters,
    superoffice: Counters,
}

impl Traffic {
    pub fn new(metrics: Metrics) -> Arc<Traffic> {
        Arc::new(Traffic {
            metrics,
            graph: Counters::default(),
            superoffice: Counters::default(),
        })
    }

    fn counters(&self, service: Service) -> &Counters {
        match service {
            Service::Graph => &self.graph,
            Service::SuperOffice => &self.superoffice,
        }
    }

    /// Per service: answers, throttling answers and the time waited for them.
    pub fn throttle(&self) -> Vec<ThrottleStatus> {
        [Service::Graph, Service::SuperOffice]
            .into_iter()
            .map(|service| {
                let c = self.counters(service);
                ThrottleStatus {
                    service: service.as_str().to_string(),
                    requests: c.requests.load(Ordering::Relaxed),
                    throttled: c.throttled.load(Ordering::Relaxed),
                    waited_secs: c.waited_micros.load(Ordering::Relaxed) as f64 / 1e6,
                }
            })
            .collect()
    }
}

impl HttpObserver for Traffic {
    fn response(&self, service: Service, status: Option<u16>) {
        let c = self.counters(service);
        c.requests.fetch_add(1, Ordering::Relaxed);
        if matches!(status, Some(429 | 503)) {
            c.throttled.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.response(service, status);
    }

    fn waited(&self, service: Service, wait: Duration) {
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.counters(service)
            .waited_micros
            .fetch_add(micros, Ordering::Relaxed);
        self.metrics.waited(service, wait);
    }

    fn queue(&self, service: Service, delta: i64) {
        self.metrics.queue(service, delta);
    }
}

/// Writes the status file without blocking the scheduler loop: a new snapshot waits while
/// the previous one is still being written, and only the newest waiting one is written.
pub struct StatusWriter {
    state_dir: PathBuf,
    running: Option<JoinHandle<()>>,
    waiting: Option<RankStatus>,
}

impl StatusWriter {
    pub fn new(state_dir: PathBuf) -> StatusWriter {
        StatusWriter {
            state_dir,
            running: None,
            waiting: None,
        }
    }

    /// Queues `status`; written by the next [`StatusWriter::pump`].
    pub fn offer(&mut self, status: RankStatus) {
        self.waiting = Some(status);
    }

    /// Starts writing the waiting snapshot if no write is running.
    pub fn pump(&mut self) {
        if self.running.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if let Some(status) = self.waiting.take() {
            let dir = self.state_dir.clone();
            self.running = Some(tokio::task::spawn_blocking(move || {
                if let Err(e) = status.write(&dir) {
                    tracing::warn!(error = %e, "status not written");
                }
            }));
        }
    }

    /// Writes `status` now, after any write still running (at exit).
    pub async fn write_last(&mut self, status: RankStatus) {
        if let Some(task) = self.running.take() {
            let _ = task.await;
        }
        self.waiting = None;
        let dir = self.state_dir.clone();
        match tokio::task::spawn_blocking(move || status.write(&dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "final status not written"),
            Err(e) => tracing::warn!(error = %e, "final status not written"),
        }
    }
}
