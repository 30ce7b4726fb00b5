//! The SuperOffice client: the CRM side of crmsync, behind [`CrmConnector`]. It speaks the
//! REST API v1 of SuperOffice CRM Online (system-user tickets, tenant status) or onsite (Basic),
//! always with `SO-TimeZone: UTC, includeTZOffset`, within this daemon's share of the tenant's
//! quota (SuperOffice asks for no more than 10 API calls per second per tenant; [`tenant_share`])
//! and the back-off rules of [`Http`]. What it reads
//! and writes is documented field by field in `docs/connectors/superoffice.md`.

pub mod auth;
mod contacts;
pub mod cursor;
mod feed;
pub mod mapping;
pub mod query;
pub mod recurrence;
mod series;
mod series_rows;
mod share;
mod tenant;
pub mod time;
mod writes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::connector::http::{
    Http, HttpObserver, Request, Response, Retry, Timeouts, observed_limiter,
};
use crate::connector::model::{CrmId, Cursor, Item, Kind, Observed, Version, Window};
use crate::connector::{
    ConnectorError, CreatedSince, CrmAssociate, CrmConnector, Deleted, RankChanges, Service,
    Written,
};
use crate::limits::{Backoff, Limiter, LimiterSettings};
use crate::settings::{SuperOfficeAuth, SuperOfficeSettings};
pub use share::tenant_share;

use auth::{Attempt, Auth, SystemUser};
use tenant::TenantStatus;

/// The time the client reckons with (tickets unused for nearly 6 hours, `ValidUntil`).
/// Production uses the system clock; tests pass the sandbox's.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// The limiter key: SuperOffice is limited as a whole.
pub const LIMIT_KEY: &str = "superoffice";
pub const SO_TIMEZONE: &str = "UTC, includeTZOffset";

/// Where the change feed learns the server's time, which moves its watermark on when nothing
/// changes (the data alone never would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerClock {
    /// The answer's `Date` header: the server's own clock (every origin server sends it).
    DateHeader,
    /// The client's [`Clock`]: for the sandbox, whose `Date` header is real time while its
    /// data follows the sandbox clock.
    Local,
}

/// How the client behaves; the defaults are for production.
#[derive(Clone)]
pub struct SuperOfficeOptions {
    /// The client's quota. `None`: this daemon's share of the tenant's budget, from the
    /// settings' `[superoffice] calls_per_second` and `shared_by_ranks` ([`tenant_share`]).
    pub limits: Option<LimiterSettings>,
    pub timeouts: Timeouts,
    pub backoff: Backoff,
    /// `$top` of list queries.
    pub page_size: usize,
    /// The longest URL a list query is sent with; longer associate lists are split. Halved
    /// (down to 2 KiB) when the server refuses one as too long.
    pub max_url_len: usize,
    /// Items read at once after a listing (each is one request within the quota).
    pub fetch_concurrency: usize,
    pub clock: Clock,
    pub server_clock: ServerClock,
    /// Told about every answer and limiter wait, for metrics.
    pub observer: Option<Arc<dyn HttpObserver>>,
}

impl Default for SuperOfficeOptions {
    fn default() -> Self {
        SuperOfficeOptions {
            limits: None,
            timeouts: Timeouts::default(),
            backoff: Backoff::default(),
            page_size: 500,
            max_url_len: 8192,
            fetch_concurrency: 8,
            clock: Arc::new(jiff::Timestamp::now),
            server_clock: ServerClock::DateHeader,
            observer: None,
        }
    }
}

impl std::fmt::Debug for SuperOfficeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuperOfficeOptions")
            .field("limits", &self.limits)
            .field("page_size", &self.page_size)
            .field("max_url_len", &self.max_url_len)
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

/// One request to the tenant's REST API, relative to `api/v1/`.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    method: Method,
    path: String,
    query: Option<String>,
    body: Option<Value>,
    retry: Retry,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Call {
    pub(crate) fn new(method: Method, path: &str) -> Call {
        let retry = if method == Method::POST || method == Method::PATCH {
            Retry::Unsafe
        } else {
            Retry::Safe
        };
        Call {
            method,
            path: path.trim_start_matches('/').to_string(),
            query: None,
            body: None,
            retry,
            headers: Vec::new(),
        }
    }

    pub(crate) fn query(mut self, query: String) -> Self {
        self.query = Some(query);
        self
    }

    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

/// What a refused request was doing, for its error class.
#[derive(Debug, Clone)]
pub(crate) enum Ctx {
    /// A list query: a 400 means crmsync asked something the tenant does not understand.
    Query,
    /// Reading one item.
    Read(String),
    /// Writing one item: a 400 is that item's problem.
    Write(String),
}

/// SuperOffice's error body (`{"Error": true, "ErrorType": ..., "ErrorMessage": ...}`).
pub(crate) fn error_body(response: &Response) -> Option<(String, String)> {
    let v: Value = response.json().ok()?;
    let kind = v
        .get("ErrorType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = v
        .get("ErrorMessage")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() && message.is_empty() {
        return None;
    }
    Some((kind.to_string(), message.chars().take(300).collect()))
}

/// Maps a status that is not success into the class the caller acts on.
pub(crate) fn refusal(response: &Response, ctx: Ctx) -> ConnectorError {
    let status = response.status.as_u16();
    let detail = match error_body(response) {
        Some((kind, message)) if !kind.is_empty() => format!("HTTP {status} {kind}: {message}"),
        Some((_, message)) => format!("HTTP {status}: {message}"),
        None => format!("HTTP {status}"),
    };
    let so = Service::SuperOffice;
    match (response.status, &ctx) {
        (
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED,
            Ctx::Write(item) | Ctx::Read(item),
        ) => ConnectorError::Conflict {
            service: so,
            item: item.clone(),
        },
        (s, Ctx::Write(item) | Ctx::Read(item))
            if s.is_client_error()
                && s != StatusCode::UNAUTHORIZED
                && s != StatusCode::FORBIDDEN
                && s != StatusCode::MISDIRECTED_REQUEST
                && s != StatusCode::TOO_MANY_REQUESTS =>
        {
            ConnectorError::Item {
                service: so,
                item: item.clone(),
                what: format!("refused ({detail})"),
            }
        }
        (s, _) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            ConnectorError::Transient {
                service: so,
                what: detail,
                retry_after: None,
            }
        }
        (StatusCode::FORBIDDEN, _) => ConnectorError::Service {
            service: so,
            what: format!("access denied ({detail}); check the system user's or login's rights"),
        },
        _ => ConnectorError::Service {
            service: so,
            what: format!("the tenant refused a request ({detail})"),
        },
    }
}

/// The SuperOffice CRM client.
pub struct SuperOfficeClient {
    http: Http,
    auth: Auth,
    /// Online: the tenant's status document gives the API address.
    tenant: Option<TenantStatus>,
    /// Onsite: `{base}/api/v1/`.
    onsite_api: Option<Url>,
    name: String,
    options: SuperOfficeOptions,
    max_url_len: AtomicUsize,
    last_tenant_check: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    caches: writes::Caches,
    log_cache: feed::LogCache,
    /// The series window (contract 3): the last diary `changes` window, or one set.
    series_window: std::sync::Mutex<Option<Window>>,
    /// Row id -> recurrence rule, for the rows seen in series (a deleted row names only itself).
    row_rules: std::sync::Mutex<HashMap<u32, u32>>,
    /// Appointments this client created whose pair is committed, with the `UpdatedDate` the
    /// create gave them: the change feed does not read them back (`feed::OwnWrites`).
    own_writes: feed::OwnWrites,
}

impl std::fmt::Debug for SuperOfficeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuperOfficeClient")
            .field("tenant", &self.name)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl SuperOfficeClient {
    pub fn new(
        settings: &SuperOfficeSettings,
        options: SuperOfficeOptions,
    ) -> Result<SuperOfficeClient, ConnectorError> {
        let limits = options
            .limits
            .unwrap_or_else(|| tenant_share(settings.budget));
        let limiter = Arc::new(observed_limiter(
            Limiter::new(limits),
            Service::SuperOffice,
            options.observer.as_ref(),
        ));
        let http = Http::new(Service::SuperOffice, limiter, options.timeouts)?
            .with_backoff(options.backoff)
            .with_observer(options.observer.clone());
        let base = settings.base_url.clone();
        let (auth, tenant, onsite_api, name) = match &settings.auth {
            SuperOfficeAuth::Basic { username, password } => {
                let root = format!("{}/", base.as_str().trim_end_matches('/'));
                let api = Url::parse(&root)
                    .and_then(|u| u.join("api/v1/"))
                    .map_err(|e| ConnectorError::Service {
                        service: Service::SuperOffice,
                        what: format!("the SuperOffice base URL cannot be used: {e}"),
                    })?;
                let name = base.host_str().unwrap_or("superoffice").to_string();
                (Auth::basic(username, password)?, None, Some(api), name)
            }
            SuperOfficeAuth::SystemUser {
                context_identifier,
                client_secret,
                private_key,
                system_user_token,
            } => {
                let environment = Url::parse(&format!("{}/", base.as_str().trim_end_matches('/')))
                    .map_err(|e| ConnectorError::Service {
                        service: Service::SuperOffice,
                        what: format!("the SuperOffice base URL cannot be used: {e}"),
                    })?;
                let system_user = SystemUser::new(
                    http.client().clone(),
                    &environment,
                    context_identifier,
                    client_secret.clone(),
                    private_key,
                    system_user_token.clone(),
                    options.clock.clone(),
                )?;
                let tenant = TenantStatus::new(
                    http.client().clone(),
                    &environment,
                    context_identifier,
                    options.clock.clone(),
                )?;
                (
                    Auth::SystemUser(Box::new(system_user)),
                    Some(tenant),
                    None,
                    context_identifier.clone(),
                )
            }
        };
        Ok(SuperOfficeClient {
            http,
            auth,
            tenant,
            onsite_api,
            name,
            max_url_len: AtomicUsize::new(options.max_url_len.max(query::MIN_URL_LEN)),
            options,
            last_tenant_check: tokio::sync::Mutex::new(None),
            caches: writes::Caches::default(),
            log_cache: feed::LogCache::default(),
            series_window: std::sync::Mutex::new(None),
            row_rules: std::sync::Mutex::new(HashMap::new()),
            own_writes: feed::OwnWrites::default(),
        })
    }

    /// The tenant's name for stamps: the context identifier online, the host onsite.
    pub fn tenant_name(&self) -> &str {
        &self.name
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        self.http.limiter()
    }

    /// System-user tickets obtained so far (for metrics and tests).
    pub fn tickets_issued(&self) -> u64 {
        self.auth.tickets_issued()
    }

    /// Tenant status documents read so far (online only).
    pub fn tenant_resolutions(&self) -> u64 {
        self.tenant.as_ref().map(|t| t.resolutions()).unwrap_or(0)
    }

    /// The REST base (`.../api/v1/`) and, online, the status generation it came from.
    pub(crate) async fn api_base(&self) -> Result<(Url, u64), ConnectorError> {
        match (&self.tenant, &self.onsite_api) {
            (Some(tenant), _) => tenant.api_base().await,
            (None, Some(api)) => Ok((api.clone(), 0)),
            (None, None) => Err(ConnectorError::Service {
                service: Service::SuperOffice,
                what: "no API address".into(),
            }),
        }
    }

    /// After a failure that may mean the tenant is down: read its status (at most every
    /// 30 s); a tenant that is not running is the error to report.
    async fn tenant_check(&self) -> Result<(), ConnectorError> {
        let Some(tenant) = &self.tenant else {
            return Ok(());
        };
        let mut last = self.last_tenant_check.lock().await;
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(30)) {
            return Ok(());
        }
        *last = Some(tokio::time::Instant::now());
        match tenant.check().await {
            Err(e @ ConnectorError::Service { .. }) => Err(e),
            // Unreachable status: the original failure says more.
            _ => Ok(()),
        }
    }

    /// Sends one call: headers, limits, authentication, the documented retries, and once
    /// more against a freshly resolved API address after a 421.
    pub(crate) async fn call(&self, call: &Call) -> Result<Response, ConnectorError> {
        let mut redirected = false;
        loop {
            let (base, generation) = self.api_base().await?;
            let mut url = base.join(&call.path).map_err(|e| ConnectorError::Service {
                service: Service::SuperOffice,
                what: format!("cannot build the URL for {}: {e}", call.path),
            })?;
            url.set_query(call.query.as_deref());
            let mut request = Request::new(call.method.clone(), url, LIMIT_KEY)
                .retry(call.retry)
                .header(ACCEPT, HeaderValue::from_static("application/json"))
                .header(
                    HeaderName::from_static("so-timezone"),
                    HeaderValue::from_static(SO_TIMEZONE),
                );
            for (name, value) in &call.headers {
                request = request.header(name.clone(), value.clone());
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let attempt = Attempt::new(&self.auth);
            match self.http.send(&request, &attempt).await {
                Ok(response) if response.status == StatusCode::MISDIRECTED_REQUEST => {
                    if let Some(tenant) = &self.tenant
                        && !redirected
                    {
                        tracing::info!(
                            "SuperOffice answered 421 (wrong subdomain); reading the tenant status again"
                        );
                        tenant.misdirected(generation);
                        redirected = true;
                        continue;
                    }
                    return Ok(response);
                }
                Ok(response) if response.status == StatusCode::SERVICE_UNAVAILABLE => {
                    self.tenant_check().await?;
                    return Ok(response);
                }
                Err(e @ ConnectorError::Transient { .. }) => {
                    self.tenant_check().await?;
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    /// Sends `call` and reads a JSON answer; other statuses are refusals in `ctx`.
    pub(crate) async fn call_json(&self, call: &Call, ctx: Ctx) -> Result<Value, ConnectorError> {
        let response = self.call(call).await?;
        if !response.status.is_success() {
            return Err(refusal(&response, ctx));
        }
        response.json().map_err(|e| ConnectorError::Transient {
            service: Service::SuperOffice,
            what: format!("unreadable answer from {}: {e}", call.path),
            retry_after: None,
        })
    }
}

impl CrmConnector for SuperOfficeClient {
    async fn associates(&self) -> Result<Vec<CrmAssociate>, ConnectorError> {
        self.read_associates().await
    }

    fn create_committed(&self, id: CrmId, modified: jiff::Timestamp) {
        // A series is read by its rule, not by its rows: nothing to skip.
        if id.series_rule().is_none() {
            self.own_writes.remember(id.0, modified);
        }
    }

    async fn created_since(
        &self,
        associate: u32,
        item: &Item,
        since: jiff::Timestamp,
    ) -> Result<CreatedSince, ConnectorError> {
        SuperOfficeClient::created_since(self, associate, item, since).await
    }

    fn earliest_cursor(&self, kind: Kind, cursors: &[&Cursor]) -> Option<Cursor> {
        cursor::earliest(kind, cursors)
    }

    async fn changes(
        &self,
        associates: &[u32],
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> Result<RankChanges, ConnectorError> {
        match kind {
            Kind::Contact => self.contact_changes(associates, cursor).await,
            _ => {
                self.appointment_changes(associates, kind, cursor, window)
                    .await
            }
        }
    }

    async fn ids_in_window(
        &self,
        associates: &[u32],
        kind: Kind,
        window: &Window,
    ) -> Result<BTreeMap<u32, Vec<CrmId>>, ConnectorError> {
        match kind {
            Kind::Contact => self.contact_ids(associates).await,
            _ => self.appointment_ids(associates, kind, window).await,
        }
    }

    async fn persons(&self, ids: &[CrmId]) -> Result<Vec<Observed<CrmId>>, ConnectorError> {
        self.read_persons(ids).await
    }

    async fn get(&self, kind: Kind, id: CrmId) -> Result<Option<Observed<CrmId>>, ConnectorError> {
        match kind {
            Kind::Contact => Ok(self.read_person(id).await?.map(|(observed, _)| observed)),
            _ => match id.series_rule() {
                Some(rule) if kind == Kind::Diary => {
                    Ok(self.read_series(rule).await?.map(|s| s.observed))
                }
                Some(_) => Ok(None),
                // A row of a diary series is no item of its own.
                None => Ok(self.read_appointment(id).await?.and_then(|(observed, f)| {
                    let row_of_series =
                        kind == Kind::Diary && recurrence::rule_of(&f.entity).is_some();
                    (observed.item.kind() == kind && !row_of_series).then_some(observed)
                })),
            },
        }
    }

    async fn create(&self, associate: u32, item: &Item) -> Result<Written<CrmId>, ConnectorError> {
        self.create_item(associate, item).await
    }

    async fn update(
        &self,
        id: CrmId,
        item: &Item,
        expected: &Version,
    ) -> Result<Written<CrmId>, ConnectorError> {
        self.update_item(id, item, expected).await
    }

    async fn delete(
        &self,
        kind: Kind,
        id: CrmId,
        expected: Option<&Version>,
    ) -> Result<Deleted, ConnectorError> {
        self.delete_item(kind, id, expected).await
    }
}

/// Runs `f` over `ids` with at most `limit` at once, keeping the input order.
pub(crate) async fn fetch_all<T, F, Fut>(
    ids: Vec<u32>,
    limit: usize,
    f: F,
) -> Result<Vec<T>, ConnectorError>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, ConnectorError>>,
{
    use futures::StreamExt;
    let results: Vec<Result<Option<T>, ConnectorError>> =
        futures::stream::iter(ids.into_iter().map(f))
            .buffered(limit.max(1))
            .collect()
            .await;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        if let Some(v) = r? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Groups observed items by associate.
pub(crate) fn by_associate(
    items: Vec<(u32, Observed<CrmId>)>,
) -> BTreeMap<u32, Vec<Observed<CrmId>>> {
    let mut map: BTreeMap<u32, Vec<Observed<CrmId>>> = BTreeMap::new();
    for (associate, item) in items {
        map.entry(associate).or_default().push(item);
    }
    map
}
