//! SuperOffice Online moves tenants between API hosts: the tenant's API base is read from the
//! environment's status document (`GET {environment}/api/state/{ctx}`: `Api`, `State`,
//! `IsRunning`, `ValidUntil`), kept until `ValidUntil`, and read again after a
//! `421 Misdirected Request` ("Wrong subdomain used to access tenant") or when the tenant
//! looks unavailable. A tenant that is not running stops the client with a
//! [`ConnectorError::Service`] naming its state.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::ACCEPT;
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use super::{Clock, time};
use crate::connector::http::describe;
use crate::connector::{ConnectorError, Service};

/// How long a status document without a readable `ValidUntil` is trusted.
const DEFAULT_VALIDITY: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

#[derive(Clone)]
struct Resolved {
    /// `{Api}/v1/`.
    api: Url,
    valid_until: jiff::Timestamp,
    generation: u64,
}

/// The status of one online tenant.
pub struct TenantStatus {
    client: reqwest::Client,
    state_url: Url,
    context_identifier: String,
    clock: Clock,
    current: Mutex<Option<Resolved>>,
    /// The newest generation found misdirected.
    stale: AtomicU64,
    generations: AtomicU64,
}

fn service(what: String) -> ConnectorError {
    ConnectorError::Service {
        service: Service::SuperOffice,
        what,
    }
}

fn transient(what: String) -> ConnectorError {
    ConnectorError::Transient {
        service: Service::SuperOffice,
        what,
        retry_after: None,
    }
}

impl TenantStatus {
    pub fn new(
        client: reqwest::Client,
        environment: &Url,
        context_identifier: &str,
        clock: Clock,
    ) -> Result<TenantStatus, ConnectorError> {
        let state_url = environment
            .join(&format!("api/state/{context_identifier}"))
            .map_err(|e| service(format!("the SuperOffice base URL cannot be used: {e}")))?;
        Ok(TenantStatus {
            client,
            state_url,
            context_identifier: context_identifier.to_string(),
            clock,
            current: Mutex::new(None),
            stale: AtomicU64::new(0),
            generations: AtomicU64::new(0),
        })
    }

    /// The tenant's REST base (`.../api/v1/`) and the generation of the answer it came from.
    pub async fn api_base(&self) -> Result<(Url, u64), ConnectorError> {
        let mut current = self.current.lock().await;
        let now = (self.clock)();
        let stale = self.stale.load(Ordering::SeqCst);
        let usable = current
            .as_ref()
            .is_some_and(|r| r.generation > stale && now < r.valid_until);
        if !usable {
            *current = Some(self.resolve().await?);
        }
        current
            .as_ref()
            .map(|r| (r.api.clone(), r.generation))
            .ok_or_else(|| service("the tenant's API address is unknown".into()))
    }

    /// The answer of `generation` was wrong (421): read the status again before the next call.
    pub fn misdirected(&self, generation: u64) {
        self.stale.fetch_max(generation, Ordering::SeqCst);
    }

    /// Reads the status now; a tenant that is not running is an error naming its state.
    pub async fn check(&self) -> Result<(), ConnectorError> {
        let resolved = self.resolve().await?;
        *self.current.lock().await = Some(resolved);
        Ok(())
    }

    async fn resolve(&self) -> Result<Resolved, ConnectorError> {
        let response = self
            .client
            .get(self.state_url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transient(format!("tenant status request failed: {}", describe(&e))))?;
        let status = response.status();
        if !status.is_success() {
            let what = format!("the tenant status answered HTTP {}", status.as_u16());
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                transient(what)
            } else {
                service(what)
            });
        }
        let doc: Value = response
            .json()
            .await
            .map_err(|e| transient(format!("the tenant status is unreadable: {}", describe(&e))))?;
        let state = doc
            .get("State")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string();
        let running = doc
            .get("IsRunning")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !running {
            return Err(service(format!(
                "the SuperOffice tenant {} is not running (state {state})",
                self.context_identifier
            )));
        }
        let api = doc
            .get("Api")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                service(format!(
                    "the status of tenant {} names no API address",
                    self.context_identifier
                ))
            })?;
        let api = Url::parse(&format!("{}/v1/", api.trim_end_matches('/')))
            .map_err(|e| service(format!("the tenant's API address is not a URL: {e}")))?;
        let now = (self.clock)();
        let valid_until = doc
            .get("ValidUntil")
            .and_then(Value::as_str)
            .and_then(time::parse_instant)
            .filter(|at| *at > now)
            .unwrap_or_else(|| now.checked_add(DEFAULT_VALIDITY).unwrap_or(now));
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::debug!(state, api = %api, %valid_until, "SuperOffice tenant status read");
        Ok(Resolved {
            api,
            valid_until,
            generation,
        })
    }

    /// Status documents read so far.
    pub fn resolutions(&self) -> u64 {
        self.generations.load(Ordering::Relaxed)
    }
}
