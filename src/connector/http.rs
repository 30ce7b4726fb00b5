//! One HTTP exchange with a service, done right: wait for the limits, authenticate, send with
//! timeouts, and on failure do what the service documents: renew credentials once after a
//! 401, wait out `Retry-After` (pausing every caller for that key), back off with jitter after
//! 5xx and broken connections, but retry a request that is not idempotent only when the
//! caller says it is safe.
//!
//! Nothing here logs headers or bodies: they carry tokens, tickets and personal data.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use super::{ConnectorError, Service};
use crate::limits::{Backoff, Limiter, LimiterObserver};

/// Timeouts of every request (DESIGN: connect, read and total are all set).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            total: Duration::from_secs(120),
        }
    }
}

/// Whether a request may be sent again after a failure that may have reached the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, PUT, DELETE, and creates the service de-duplicates (an event with a
    /// `transactionId`).
    Safe,
    /// A create the service would repeat: the caller looks it up (by stamp) before trying
    /// again, so a failure that may have reached the service is returned at once.
    Unsafe,
}

/// A request, ready to be sent any number of times.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    /// The limiter key: the mailbox, or the service for a service-wide limit.
    pub key: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A JSON or form body with its content type.
    pub body: Option<(Bytes, &'static str)>,
    pub retry: Retry,
}

impl Request {
    pub fn new(method: Method, url: Url, key: impl Into<String>) -> Self {
        let retry = if method == Method::POST || method == Method::PATCH {
            Retry::Unsafe
        } else {
            Retry::Safe
        };
        Request {
            method,
            url,
            key: key.into(),
            headers: Vec::new(),
            body: None,
            retry,
        }
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some((
            Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
            "application/json",
        ));
        self
    }

    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }
}

/// The answer, body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// How a client proves who it is. Implementations cache their token or ticket, share one
/// renewal among concurrent callers, and never show it in `Debug`.
pub trait Credentials: Send + Sync {
    /// The headers that authenticate a request (renewing what is about to expire).
    fn authorize(
        &self,
    ) -> impl Future<Output = Result<Vec<(HeaderName, HeaderValue)>, ConnectorError>> + Send;

    /// The service refused what `authorize` gave (401): forget it, so that the next
    /// `authorize` fetches a new one.
    fn refused(&self);
}

/// `Retry-After`: delta-seconds (fractional ones too, as Graph sends them) or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Told about the HTTP traffic of a client, for metrics: every answer's status, and what the
/// limits cost callers. Implementations must be cheap and must not block: they are called on
/// the request path. A client without an observer pays one `Option` check per report.
pub trait HttpObserver: Send + Sync {
    /// An attempt got an answer with `status`, or none (`None`: timeout, broken connection).
    /// Every attempt reports, retries included; so does every item of a Graph `$batch`.
    fn response(&self, service: Service, status: Option<u16>);
    /// A caller waited `wait` for a `Retry-After` pause or a client-side quota.
    fn waited(&self, service: Service, wait: Duration);
    /// `delta` callers began (+1) or ended (-1) waiting for admission in the limiter.
    fn queue(&self, service: Service, delta: i64);
}

// So that the options that carry an observer can keep deriving `Debug`.
impl std::fmt::Debug for dyn HttpObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpObserver")
    }
}

/// Feeds a limiter's waits to an [`HttpObserver`] under the limiter's service.
struct LimiterFeed {
    observer: Arc<dyn HttpObserver>,
    service: Service,
}

impl LimiterObserver for LimiterFeed {
    fn waited(&self, wait: Duration) {
        self.observer.waited(self.service, wait);
    }

    fn queue(&self, delta: i64) {
        self.observer.queue(self.service, delta);
    }
}

/// A limiter for `service` that reports to `observer`, if there is one.
pub fn observed_limiter(
    limiter: Limiter,
    service: Service,
    observer: Option<&Arc<dyn HttpObserver>>,
) -> Limiter {
    match observer {
        Some(observer) => limiter.with_observer(Arc::new(LimiterFeed {
            observer: observer.clone(),
            service,
        })),
        None => limiter,
    }
}

static AGENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names this process in the `User-Agent` of every request it sends from now on (a rank
/// daemon adds its rank, so that a service's logs tell the ranks apart). The first call wins.
pub fn identify_as(detail: &str) {
    let _ = AGENT.set(format!("crmsync/{} ({detail})", env!("CARGO_PKG_VERSION")));
}

fn user_agent() -> String {
    AGENT
        .get()
        .cloned()
        .unwrap_or_else(|| concat!("crmsync/", env!("CARGO_PKG_VERSION")).to_string())
}

/// A client for one service.
pub struct Http {
    client: reqwest::Client,
    service: Service,
    limiter: Arc<Limiter>,
    backoff: Backoff,
    /// How many throttled answers one request waits out before it gives up.
    throttle_retries: u32,
    /// The longest `Retry-After` waited inside a request; a longer one ends the request with
    /// [`ConnectorError::Transient`] and its `retry_after`, for the scheduler to honour.
    max_inline_wait: Duration,
    observer: Option<Arc<dyn HttpObserver>>,
}

impl Http {
    pub fn new(
        service: Service,
        limiter: Arc<Limiter>,
        timeouts: Timeouts,
    ) -> Result<Http, ConnectorError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .timeout(timeouts.total)
            .user_agent(user_agent())
            .build()
            .map_err(|e| ConnectorError::Service {
                service,
                what: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(Http {
            client,
            service,
            limiter,
            backoff: Backoff::default(),
            throttle_retries: 10,
            max_inline_wait: Duration::from_secs(300),
            observer: None,
        })
    }

    /// Reports the status of every attempt to `observer`. The limiter reports on its own:
    /// see [`observed_limiter`].
    pub fn with_observer(mut self, observer: Option<Arc<dyn HttpObserver>>) -> Self {
        self.observer = observer;
        self
    }

    /// Reports an answer that did not come through [`Http::send`] (an item of a `$batch`).
    pub fn observe(&self, status: Option<u16>) {
        if let Some(observer) = &self.observer {
            observer.response(self.service, status);
        }
    }

    /// Shorter back-off and waits, for tests.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn service(&self) -> Service {
        self.service
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// The plain client, for endpoints outside the limits (the token endpoint).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn transient(&self, what: String, retry_after: Option<Duration>) -> ConnectorError {
        ConnectorError::Transient {
            service: self.service,
            what,
            retry_after,
        }
    }

    async fn attempt(
        &self,
        request: &Request,
        auth: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Response, reqwest::Error> {
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone());
        for (name, value) in auth.into_iter().chain(request.headers.iter().cloned()) {
            builder = builder.header(name, value);
        }
        if let Some((body, content_type)) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(body.clone());
        }
        let response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Sends `request` until it has an answer worth returning: any status but 401 (after one
    /// renewal), 429, and the 5xx that are retried. The caller interprets the status.
    pub async fn send(
        &self,
        request: &Request,
        credentials: &impl Credentials,
    ) -> Result<Response, ConnectorError> {
        self.send_within(request, credentials, false).await
    }

    /// [`Http::send`] for a request that is counted against no key's quota or slots, only
    /// the global quota (a `$batch` envelope, whose items the caller has acquired with
    /// [`Limiter::acquire_many`]; a directory read). Pauses for `request.key` still hold.
    pub async fn send_global(
        &self,
        request: &Request,
        credentials: &impl Credentials,
    ) -> Result<Response, ConnectorError> {
        self.send_within(request, credentials, true).await
    }

    async fn send_within(
        &self,
        request: &Request,
        credentials: &impl Credentials,
        global_only: bool,
    ) -> Result<Response, ConnectorError> {
        let mut failures = 0u32;
        let mut throttled = 0u32;
        let mut renewed = false;
        let path = request.url.path().to_string();
        loop {
            let auth = credentials.authorize().await?;
            let permit = if global_only {
                self.limiter.acquire_global(&request.key).await
            } else {
                self.limiter.acquire(&request.key).await
            };
            let started = tokio::time::Instant::now();
            let outcome = self.attempt(request, auth).await;
            drop(permit);
            self.observe(outcome.as_ref().ok().map(|r| r.status.as_u16()));
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let response = match outcome {
                Ok(response) => response,
                Err(e) => {
                    // Without the URL: its query may carry delta or skip tokens.
                    let e = e.without_url();
                    tracing::debug!(service = %self.service, method = %request.method, path, elapsed_ms, error = %e, "request failed");
                    let what = describe(&e);
                    if request.retry == Retry::Unsafe {
                        // It may have been carried out: only the caller can tell.
                        return Err(self.transient(what, None));
                    }
                    match self.backoff.delay(failures) {
                        Some(delay) => {
                            failures += 1;
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        None => return Err(self.transient(what, None)),
                    }
                }
            };
            let status = response.status;
            tracing::debug!(service = %self.service, method = %request.method, path, status = status.as_u16(), elapsed_ms, "request");
            let retry_after = response
                .headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
            match status {
                StatusCode::UNAUTHORIZED if !renewed => {
                    renewed = true;
                    credentials.refused();
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(ConnectorError::Service {
                        service: self.service,
                        what: "the credentials were refused twice (HTTP 401); check the client secret or system user, and the application's consent".to_string(),
                    });
                }
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    if retry_after.is_some() || status == StatusCode::TOO_MANY_REQUESTS =>
                {
                    // Not carried out: safe to send again whatever the method.
                    let wait = retry_after
                        .or_else(|| self.backoff.delay(throttled.min(self.backoff.retries - 1)))
                        .unwrap_or(Duration::from_secs(1));
                    self.limiter.pause(&request.key, wait);
                    throttled += 1;
                    if throttled > self.throttle_retries || wait > self.max_inline_wait {
                        return Err(self.transient(
                            format!("throttled (HTTP {})", status.as_u16()),
                            Some(wait),
                        ));
                    }
                }
                s if s.is_server_error() => {
                    let what = format!("HTTP {}", s.as_u16());
                    if request.retry == Retry::Unsafe {
                        return Err(self.transient(what, retry_after));
                    }
                    match self.backoff.delay(failures) {
                        Some(delay) => {
                            failures += 1;
                            tokio::time::sleep(retry_after.unwrap_or(delay).max(delay)).await;
                        }
                        None => return Err(self.transient(what, retry_after)),
                    }
                }
                _ => return Ok(response),
            }
        }
    }
}

/// What failed, in words, without the URL (it may carry tokens in its query).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the answer broke off".to_string()
    } else {
        "the connection failed".to_string()
    }
}

#[cfg(test)]
mod tests;
