//! The Microsoft Graph client (Exchange Online mailboxes): client-credentials tokens
//! ([`auth`]), the limits of the `limits` module around every request, calendar events,
//! Microsoft To Do tasks in a dedicated list and contacts in a dedicated folder, delta
//! queries, JSON batching (stamp reads, write runs, idle polls of many mailboxes), all behind
//! [`MailboxConnector`]. docs/connectors/graph.md documents the choices.

pub mod auth;
mod batch;
mod batch_writes;
mod delta;
mod folders;
pub mod map;
pub mod patterned;
pub mod series;
mod series_io;
pub mod series_write;
mod update;
mod users;
pub mod wire;
mod writes;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

pub use batch::{BatchItem, BatchReply, PollPair};
pub use writes::{Write, WriteOutcome, transaction_id};

use self::auth::GraphTokens;
use self::wire::Op;
use super::http::{Http, HttpObserver, Request, Response, Retry, Timeouts, observed_limiter};
use super::model::{Changes, Cursor, Item, Kind, MailboxItemId, Observed, Stamp, Version, Window};
use super::{
    ConnectorError, Deleted, ExternalMailbox, MailboxConnector, MailboxRef, Service, Written,
};
use crate::limits::{Backoff, Limiter, LimiterSettings, LimiterStats, RateLimit};
use crate::settings::MailSystemSettings;

/// How the client behaves; [`GraphOptions::default`] holds the documented limits.
#[derive(Debug, Clone)]
pub struct GraphOptions {
    pub limits: LimiterSettings,
    pub timeouts: Timeouts,
    pub backoff: Backoff,
    /// The To Do list tasks go to (found by name, created once).
    pub task_list_name: String,
    /// The contact folder (in the default Contacts folder) contacts go to.
    pub contact_folder_name: String,
    /// `Prefer: odata.maxpagesize` on delta queries.
    pub delta_page_size: u32,
    /// A link from a To Do task back to its CRM item: `{tenant}`, `{kind}` and `{id}` are
    /// replaced (e.g. `https://online.superoffice.com/{tenant}/default.aspx?appointment_id={id}`).
    /// `None`: the linked resource carries no `webUrl`.
    pub crm_link: Option<String>,
    /// Told about every answer and limiter wait, for metrics.
    pub observer: Option<Arc<dyn HttpObserver>>,
}

/// The documented Graph limits: per mailbox 10,000 requests per 10 minutes (a burst of a
/// tenth of it), 4 in flight; per app 130,000 per 10 seconds (the same burst share).
pub fn default_limits() -> LimiterSettings {
    let rate = |requests: u32, secs: u64| RateLimit {
        requests: NonZeroU32::new(requests).unwrap_or(NonZeroU32::MIN),
        per: Duration::from_secs(secs),
        burst: NonZeroU32::new(requests / 10).unwrap_or(NonZeroU32::MIN),
    };
    LimiterSettings {
        per_key: Some(rate(10_000, 600)),
        concurrency_per_key: Some(4),
        global: Some(rate(130_000, 10)),
    }
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            limits: default_limits(),
            timeouts: Timeouts::default(),
            backoff: Backoff::default(),
            task_list_name: "SuperOffice".to_string(),
            contact_folder_name: "SuperOffice".to_string(),
            delta_page_size: 200,
            crm_link: None,
            observer: None,
        }
    }
}

/// The limiter key of requests that belong to no mailbox (`/users`, `$batch` envelopes).
const APP_KEY: &str = "graph:app";

/// A Graph client for one mail system (one app registration in one tenant).
pub struct GraphClient {
    http: Http,
    tokens: GraphTokens,
    /// The Graph base URL without a trailing slash (`https://graph.microsoft.com/v1.0`).
    base: String,
    /// Its origin and path, to check and strip the links Graph hands out.
    base_url: Url,
    options: GraphOptions,
    /// Dedicated To Do list and contact folder ids, per mailbox key.
    lists: Mutex<HashMap<String, String>>,
    folders: Mutex<HashMap<String, String>>,
    /// One creator of a dedicated list or folder per mailbox at a time.
    ensuring: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The window recurring series are read and written in: the last diary `changes`
    /// window, or [`GraphClient::set_series_window`]'s.
    series_window: Mutex<Option<Window>>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.base)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

fn service_error(what: String) -> ConnectorError {
    ConnectorError::Service {
        service: Service::Graph,
        what,
    }
}

impl GraphClient {
    pub fn new(
        settings: &MailSystemSettings,
        options: GraphOptions,
    ) -> Result<GraphClient, ConnectorError> {
        let limiter = Arc::new(observed_limiter(
            Limiter::new(options.limits),
            Service::Graph,
            options.observer.as_ref(),
        ));
        let http = Http::new(Service::Graph, limiter, options.timeouts)?
            .with_backoff(options.backoff)
            .with_observer(options.observer.clone());
        let tokens = GraphTokens::new(
            http.client().clone(),
            &settings.authority_url,
            &settings.tenant_id,
            &settings.client_id,
            settings.client_secret.clone(),
            &settings.base_url,
        )?;
        let base = settings.base_url.as_str().trim_end_matches('/').to_string();
        let base_url = Url::parse(&format!("{base}/"))
            .map_err(|e| service_error(format!("the Graph base URL is not valid: {e}")))?;
        Ok(GraphClient {
            http,
            tokens,
            base,
            base_url,
            options,
            lists: Mutex::new(HashMap::new()),
            folders: Mutex::new(HashMap::new()),
            ensuring: Mutex::new(HashMap::new()),
            series_window: Mutex::new(None),
        })
    }

    /// Tokens fetched so far.
    pub fn tokens_fetched(&self) -> u64 {
        self.tokens.fetched()
    }

    pub fn limiter_stats(&self) -> LimiterStats {
        self.http.limiter().stats()
    }

    /// Drops the limiter state of idle mailboxes. The runtime calls it periodically (every
    /// minute is plenty); nothing here calls it on its own, so tests see the state they make.
    pub fn prune(&self) {
        self.http.limiter().prune();
        if let Ok(mut ensuring) = self.ensuring.lock() {
            ensuring.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
    }

    pub fn options(&self) -> &GraphOptions {
        &self.options
    }

    /// The absolute URL of a path below the base (`/users/...?...`).
    fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| service_error(format!("cannot form a Graph URL: {e}")))
    }

    /// A link Graph handed out (next, delta), checked to point at this Graph (the token goes
    /// with it) and made relative to the base (`/users/...`), for `$batch`.
    fn relative(&self, link: &str) -> Result<String, ConnectorError> {
        let url = Url::parse(link).map_err(|_| wire::malformed("a link that is not a URL"))?;
        let same_origin = url.scheme() == self.base_url.scheme()
            && url.host_str() == self.base_url.host_str()
            && url.port_or_known_default() == self.base_url.port_or_known_default();
        let base_path = self.base_url.path().trim_end_matches('/');
        let path = url.path();
        match path.strip_prefix(base_path) {
            Some(rest) if same_origin && rest.starts_with('/') => Ok(match url.query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_string(),
            }),
            _ => Err(wire::malformed(
                "a link to another host or API version than the configured Graph URL",
            )),
        }
    }

    fn mailbox_path(mailbox: &MailboxRef) -> String {
        format!("/users/{}", wire::segment(mailbox.key()))
    }

    /// A request for `mailbox` (its limiter key) to a path below the base.
    fn request(
        &self,
        method: Method,
        mailbox: &MailboxRef,
        path: &str,
        prefer: &str,
    ) -> Result<Request, ConnectorError> {
        let mut request = Request::new(method, self.url(path)?, mailbox.key());
        if let Ok(value) = HeaderValue::from_str(prefer) {
            request = request.header(HeaderName::from_static("prefer"), value);
        }
        Ok(request)
    }

    async fn send(&self, request: &Request) -> Result<Response, ConnectorError> {
        self.http.send(request, &self.tokens).await
    }

    /// A GET of a mailbox resource, as JSON; other statuses classed for `op`.
    async fn get_json(
        &self,
        mailbox: &MailboxRef,
        path: &str,
        prefer: &str,
        op: Op,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let request = self.request(Method::GET, mailbox, path, prefer)?;
        let response = self.send(&request).await?;
        json_of(&response, op, what)
    }

    /// A write (POST, PATCH, DELETE) with a JSON body.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        method: Method,
        mailbox: &MailboxRef,
        path: &str,
        prefer: &str,
        body: Option<&Value>,
        retry: Retry,
        if_match: Option<&str>,
    ) -> Result<Response, ConnectorError> {
        let mut request = self.request(method, mailbox, path, prefer)?.retry(retry);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(etag) = if_match.and_then(|e| HeaderValue::from_str(e).ok()) {
            request = request.header(reqwest::header::IF_MATCH, etag);
        }
        self.send(&request).await
    }
}

/// A 2xx answer's JSON; anything else classed for `op`.
fn json_of(response: &Response, op: Op, what: &str) -> Result<Value, ConnectorError> {
    if response.status.is_success() {
        response
            .json::<Value>()
            .map_err(|e| wire::malformed(format!("{what}: {e}")))
    } else {
        Err(wire::classify(response.status, &response.body, op, what))
    }
}

/// Whether a failure may have reached Graph and been carried out (a dropped answer, a 5xx
/// after a write was sent): then a create without `transactionId` is looked up again.
fn maybe_done(error: &ConnectorError) -> bool {
    matches!(error, ConnectorError::Transient { .. })
}

fn is_not_found(status: StatusCode) -> bool {
    status == StatusCode::NOT_FOUND
}

impl MailboxConnector for GraphClient {
    async fn mailboxes(&self) -> Result<Vec<ExternalMailbox>, ConnectorError> {
        users::mailboxes(self).await
    }

    async fn changes(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        cursor: Option<&Cursor>,
        window: &Window,
    ) -> Result<Changes<MailboxItemId>, ConnectorError> {
        if kind == Kind::Diary {
            self.set_series_window(*window);
        }
        delta::changes(self, mailbox, kind, cursor, window).await
    }

    async fn create(
        &self,
        mailbox: &MailboxRef,
        item: &Item,
        stamp: &Stamp,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        writes::create(self, mailbox, item, stamp).await
    }

    async fn update(
        &self,
        mailbox: &MailboxRef,
        id: &MailboxItemId,
        item: &Item,
        expected: Option<&Version>,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        update::update(self, mailbox, id, item, expected).await
    }

    async fn delete(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> Result<Deleted, ConnectorError> {
        writes::delete(self, mailbox, kind, id).await
    }

    async fn get(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
    ) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
        writes::get(self, mailbox, kind, id).await
    }

    async fn find_by_stamp(
        &self,
        mailbox: &MailboxRef,
        stamp: &Stamp,
    ) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
        writes::find_by_stamp(self, mailbox, stamp).await
    }

    async fn set_stamp(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        id: &MailboxItemId,
        stamp: &Stamp,
    ) -> Result<Written<MailboxItemId>, ConnectorError> {
        writes::set_stamp(self, mailbox, kind, id, stamp).await
    }
}
