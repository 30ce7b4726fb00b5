//! The sandbox: emulators of Microsoft Graph (with the identity platform's token endpoint) and
//! the SuperOffice Web API, faithful to what the services document, for `crmsync demo`, the
//! tests and the benchmarks. Nobody here can reach a real tenant; a lax emulator would let
//! through the bugs a real one finds on day one, so fidelity is the point.
//!
//! One process serves three loopback listeners: Graph (API under `/v1.0`, the authority under
//! `/login`, the control API under `/_sandbox`), the SuperOffice environment host
//! (authentication, tenant status) and the SuperOffice tenant host (`/{ctx}/api/v1`). Every
//! emulated request passes one middleware that logs it, injects the faults asked for and
//! enforces the documented limits. Tests use it in-process ([`Sandbox::start`] on port 0, then
//! [`Sandbox::state`]); black-box tests and benchmarks run `crmsync sandbox`.

mod clock;
mod control;
mod faults;
pub mod graph;
mod limits;
mod log;
pub mod scenario;
pub mod superoffice;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use url::Url;

pub use clock::SandboxClock;
pub use faults::{ActiveFault, FaultKind, FaultRule, Faults};
pub use limits::{LimitSpec, Limits, Rate, Target, Violation};
pub use log::{LogQuery, LogSummary, LoggedRequest, RequestLog, SideSummary};
pub use scenario::Scenario;

/// Which emulator answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emulator {
    Graph,
    SuperOffice,
}

/// Where the emulators listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxUrls {
    /// Microsoft Graph v1.0 base URL (`[mail_systems.NAME] base_url`).
    pub graph: Url,
    /// The identity platform's authority (`authority_url`); tokens at `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority: Url,
    /// The SuperOffice environment host (`[superoffice] base_url` for system-user auth).
    pub superoffice: Url,
    /// The tenant's web application root on its API host (`base_url` for onsite Basic auth);
    /// the REST API is below it at `api/v1`.
    pub superoffice_tenant: Url,
    /// The control API.
    pub control: Url,
}

/// The credentials the emulated tenants accept (sandbox values, nothing real).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCredentials {
    pub graph_tenant_id: String,
    pub graph_client_id: String,
    pub graph_client_secret: String,
    pub superoffice_context_identifier: String,
    pub superoffice_client_secret: String,
    pub superoffice_system_user_token: String,
    pub superoffice_private_key_pem: String,
    pub superoffice_username: String,
    pub superoffice_password: String,
}

impl SandboxCredentials {
    fn of(scenario: &Scenario) -> Self {
        SandboxCredentials {
            graph_tenant_id: scenario.graph.tenant_id.clone(),
            graph_client_id: scenario.graph.client_id.clone(),
            graph_client_secret: scenario.graph.client_secret.clone(),
            superoffice_context_identifier: scenario.superoffice.context_identifier.clone(),
            superoffice_client_secret: scenario.superoffice.client_secret.clone(),
            superoffice_system_user_token: scenario.superoffice.system_user_token.clone(),
            superoffice_private_key_pem: scenario.superoffice.private_key_pem.clone(),
            superoffice_username: scenario.superoffice.basic_username.clone(),
            superoffice_password: scenario.superoffice.basic_password.clone(),
        }
    }
}

/// Everything the emulators share.
pub struct SandboxState {
    pub urls: SandboxUrls,
    pub clock: SandboxClock,
    pub limits: Limits,
    pub faults: Faults,
    pub log: RequestLog,
    pub graph: graph::GraphStore,
    pub superoffice: superoffice::SuperOfficeStore,
    scenario: RwLock<Scenario>,
    /// The Graph API router with the middleware, for `$batch` to dispatch its items through.
    graph_api: OnceLock<Router>,
}

/// Marks a request dispatched from inside a `$batch` (the batch's log sequence number).
#[derive(Debug, Clone, Copy)]
pub struct BatchParent(pub u64);

/// The log sequence number of the request being handled (set by the middleware), so that
/// `$batch` can mark its items with [`BatchParent`].
#[derive(Debug, Clone, Copy)]
pub struct LogSeq(pub u64);

impl SandboxState {
    pub fn scenario(&self) -> Scenario {
        self.scenario
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn credentials(&self) -> SandboxCredentials {
        SandboxCredentials::of(&self.scenario())
    }

    /// Replaces both tenants' data with `scenario`'s (the URLs stay).
    pub fn load_scenario(&self, scenario: Scenario) {
        let now = self.clock.now();
        self.graph.reset(&scenario.graph, now, scenario.seed);
        self.superoffice
            .reset(&scenario.superoffice, now, scenario.seed);
        if let Ok(mut s) = self.scenario.write() {
            *s = scenario;
        }
    }

    /// Runs one Graph API request (path relative to `/v1.0`) through the same middleware as a
    /// request from the network: it is logged, limited and may meet a fault. `$batch` uses it.
    pub async fn dispatch_graph(&self, request: Request) -> Response {
        match self.graph_api.get() {
            Some(router) => match router.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// The Graph listener's address; the SuperOffice listeners take the next two ports (or
    /// free ports, when the port is 0).
    pub listen: SocketAddr,
    pub scenario: Scenario,
    pub limits: LimitSpec,
}

impl SandboxOptions {
    /// Loopback, free ports, the given scenario, limits off.
    pub fn local(scenario: Scenario) -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            scenario,
            limits: LimitSpec::off(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sandbox listener address: {0}")]
    Address(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running sandbox. Dropping it stops the servers.
pub struct Sandbox {
    state: Arc<SandboxState>,
    stop: CancellationToken,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SandboxError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Listen { addr, source })
}

fn url(ip: IpAddr, port: u16, path: &str) -> Result<Url, SandboxError> {
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Url::parse(&format!("http://{host}:{port}{path}"))
        .map_err(|e| SandboxError::Address(e.to_string()))
}

impl Sandbox {
    pub async fn start(options: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let graph_listener = bind(options.listen).await?;
        let graph_addr = graph_listener
            .local_addr()
            .map_err(|e| SandboxError::Address(e.to_string()))?;
        let next = |offset: u16| {
            let port = if options.listen.port() == 0 {
                0
            } else {
                options.listen.port().saturating_add(offset)
            };
            SocketAddr::new(options.listen.ip(), port)
        };
        let environment_listener = bind(next(1)).await?;
        let tenant_listener = bind(next(2)).await?;
        let port = |l: &TcpListener| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| SandboxError::Address(e.to_string()))
        };
        let ip = graph_addr.ip();
        let context = options.scenario.superoffice.context_identifier.clone();
        let urls = SandboxUrls {
            graph: url(ip, graph_addr.port(), "/v1.0")?,
            authority: url(ip, graph_addr.port(), "/login")?,
            superoffice: url(ip, port(&environment_listener)?, "/")?,
            superoffice_tenant: url(ip, port(&tenant_listener)?, &format!("/{context}"))?,
            control: url(ip, graph_addr.port(), "/_sandbox")?,
        };

        let clock = SandboxClock::new();
        let now = clock.now();
        let scenario = options.scenario;
        let state = Arc::new(SandboxState {
            urls,
            limits: Limits::new(options.limits),
            faults: Faults::new(scenario.seed),
            log: RequestLog::default(),
            graph: graph::GraphStore::new(&scenario.graph, now, scenario.seed),
            superoffice: superoffice::SuperOfficeStore::new(
                &scenario.superoffice,
                now,
                scenario.seed,
            ),
            scenario: RwLock::new(scenario),
            graph_api: OnceLock::new(),
            clock,
        });

        let graph_api = graph::api_router()
            .layer(middleware::from_fn_with_state(
                (state.clone(), Emulator::Graph, true),
                emulate,
            ))
            .with_state(state.clone());
        let _ = state.graph_api.set(graph_api.clone());
        let graph_app = Router::new()
            .nest_service("/v1.0", graph_api)
            .nest(
                "/login",
                graph::identity_router().layer(middleware::from_fn_with_state(
                    (state.clone(), Emulator::Graph, false),
                    emulate,
                )),
            )
            .nest("/_sandbox", control::router())
            .with_state(state.clone());
        let environment_app = superoffice::environment_router()
            .layer(middleware::from_fn_with_state(
                (state.clone(), Emulator::SuperOffice, false),
                emulate,
            ))
            .with_state(state.clone());
        let tenant_app = superoffice::tenant_router()
            .layer(middleware::from_fn_with_state(
                (state.clone(), Emulator::SuperOffice, true),
                emulate,
            ))
            .with_state(state.clone());

        let stop = CancellationToken::new();
        let servers = [
            (graph_listener, graph_app),
            (environment_listener, environment_app),
            (tenant_listener, tenant_app),
        ]
        .into_iter()
        .map(|(listener, app)| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "sandbox server stopped");
                }
            })
        })
        .collect();
        Ok(Sandbox {
            state,
            stop,
            servers,
        })
    }

    pub fn state(&self) -> &Arc<SandboxState> {
        &self.state
    }

    pub fn urls(&self) -> &SandboxUrls {
        &self.state.urls
    }

    pub fn credentials(&self) -> SandboxCredentials {
        self.state.credentials()
    }

    /// Stops the servers and waits for them.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
    }

    /// Writes a crmsync configuration for this sandbox into `dir` (`crmsync.toml` and one file
    /// per secret), with the state directory `state_dir` and the mail system named `sandbox`.
    pub fn write_config(&self, dir: &Path, state_dir: &Path) -> Result<PathBuf, SandboxError> {
        use std::os::unix::fs::OpenOptionsExt;
        let credentials = self.credentials();
        let write = |name: &str, text: &str| -> Result<PathBuf, SandboxError> {
            let path = dir.join(name);
            let failed = |source| SandboxError::Write {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(failed)?;
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
            Ok(path)
        };
        let quoted = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let graph_secret = write("graph-client-secret", &credentials.graph_client_secret)?;
        let so_secret = write(
            "superoffice-client-secret",
            &credentials.superoffice_client_secret,
        )?;
        let so_key = write(
            "superoffice-private-key",
            &credentials.superoffice_private_key_pem,
        )?;
        let so_token = write(
            "superoffice-system-user-token",
            &credentials.superoffice_system_user_token,
        )?;
        let urls = self.urls();
        let text = format!(
            "# crmsync configuration for the sandbox at {control}\n\
             [daemon]\nstate_dir = {state_dir}\n\n\
             # A free port per rank (several sandboxes may run on one machine): each daemon logs\n\
             # it and `crmsync status` shows it.\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [superoffice]\nbase_url = \"{so}\"\nauth = \"system-user\"\ncontext_identifier = \"{ctx}\"\n\
             client_secret_file = {so_secret}\nprivate_key_file = {so_key}\nsystem_user_token_file = {so_token}\n\
             # The sandbox enforces the tenant's 10 calls per second: set this to the number of\n\
             # rank daemons started against it, so that together they stay within it.\n\
             #shared_by_ranks = 1\n\n\
             [mail_systems.sandbox]\nkind = \"graph\"\ntenant_id = \"{tenant}\"\nclient_id = \"{client}\"\n\
             client_secret_file = {graph_secret}\nbase_url = \"{graph}\"\nauthority_url = \"{authority}\"\n",
            state_dir = quoted(state_dir),
            so_secret = quoted(&so_secret),
            so_key = quoted(&so_key),
            so_token = quoted(&so_token),
            graph_secret = quoted(&graph_secret),
            control = urls.control,
            so = urls.superoffice,
            ctx = credentials.superoffice_context_identifier,
            tenant = credentials.graph_tenant_id,
            client = credentials.graph_client_id,
            graph = urls.graph,
            authority = urls.authority,
        );
        write("crmsync.toml", &text)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("1"))
}

/// `Retry-After` as the services send it: seconds, fractional when not whole; or an HTTP date.
pub fn retry_after_value(wait: Duration, as_http_date: bool, now: jiff::Timestamp) -> String {
    if as_http_date {
        // Whole seconds only: round up so that the client never retries early.
        let at = std::time::SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                (now.as_second().max(0) as u64)
                    + wait.as_secs()
                    + u64::from(wait.subsec_nanos() > 0)
                    + 1,
            );
        httpdate::fmt_http_date(at)
    } else if wait.subsec_millis() == 0 && wait.subsec_nanos() == 0 {
        wait.as_secs().to_string()
    } else {
        format!("{:.3}", (wait.as_secs_f64() * 1000.0).ceil() / 1000.0)
    }
}

fn throttled(emulator: Emulator, retry_after: String, concurrency: bool) -> Response {
    let mut response = match emulator {
        Emulator::Graph => graph::throttled(concurrency),
        Emulator::SuperOffice => superoffice::throttled(),
    };
    response
        .headers_mut()
        .insert("Retry-After", header(&retry_after));
    response
}

fn body_that_breaks(truncate: bool) -> Response {
    use futures::StreamExt;
    // With a truncated body the head and the first bytes go out before the connection breaks.
    let parts: Vec<bool> = if truncate {
        vec![true, false]
    } else {
        vec![false]
    };
    let chunks = futures::stream::iter(parts).then(|data| async move {
        if data {
            Ok(bytes::Bytes::from_static(b"{\"value\":[{\"id\":\""))
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::other("connection broken by the sandbox"))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    response
        .headers_mut()
        .insert("Content-Type", HeaderValue::from_static("application/json"));
    if truncate {
        response
            .headers_mut()
            .insert("Content-Length", HeaderValue::from_static("4096"));
    }
    response
}

/// The middleware of every emulated request: violation check, faults, limits, the request,
/// the log entry.
async fn emulate(
    State((state, emulator, limited)): State<(Arc<SandboxState>, Emulator, bool)>,
    mut request: Request,
    next: Next,
) -> Response {
    let seq = state.log.next_seq();
    request.extensions_mut().insert(LogSeq(seq));
    let started = Instant::now();
    let at = state.clock.now();
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| request.uri().clone());
    let path = path
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let batch = request.extensions().get::<BatchParent>().map(|b| b.0);
    let client = request
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let target = match emulator {
        Emulator::Graph => graph::target_of(&state, request.uri().path()),
        Emulator::SuperOffice => Target::SuperOffice,
    };
    let mailbox = match &target {
        Target::Mailbox(id) => Some(id.clone()),
        _ => None,
    };

    if limited {
        state
            .limits
            .check_retry_after(emulator, &target, &method, &path, at);
    }
    let fault = state.faults.pick(&faults::RequestInfo {
        emulator,
        mailbox: mailbox.as_deref(),
        method: &method,
        path: &path,
    });
    let fault_name = fault.as_ref().map(FaultKind::name);

    let response = match fault {
        Some(FaultKind::TooManyRequests {
            retry_after_secs,
            as_http_date,
        }) => {
            let wait = Duration::from_secs_f64(retry_after_secs.max(0.0));
            state.limits.told_to_wait(&target, wait);
            throttled(emulator, retry_after_value(wait, as_http_date, at), false)
        }
        Some(FaultKind::ServerError {
            status,
            retry_after_secs,
        }) => {
            let mut response = match emulator {
                Emulator::Graph => graph::server_error(status),
                Emulator::SuperOffice => superoffice::server_error(status),
            };
            if let Some(secs) = retry_after_secs {
                let wait = Duration::from_secs_f64(secs.max(0.0));
                state.limits.told_to_wait(&target, wait);
                response
                    .headers_mut()
                    .insert("Retry-After", header(&retry_after_value(wait, false, at)));
            }
            response
        }
        Some(FaultKind::Reset) => body_that_breaks(false),
        Some(FaultKind::Truncate) => body_that_breaks(true),
        Some(FaultKind::Slow { delay }) => {
            Admission {
                state: &state,
                emulator,
                limited,
                target: &target,
                at,
            }
            .run(request, next, delay)
            .await
        }
        None => {
            Admission {
                state: &state,
                emulator,
                limited,
                target: &target,
                at,
            }
            .run(request, next, Duration::ZERO)
            .await
        }
    };

    // The service's time is the sandbox's (clients read it from `Date`, as they would a real
    // service's).
    let mut response = response;
    let now = state.clock.now();
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(
        std::time::SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(now.as_second()).unwrap_or(0)),
    )) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, value);
    }

    state.log.push(LoggedRequest {
        seq,
        at,
        emulator,
        method,
        path,
        mailbox,
        status: response.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        fault: fault_name,
        batch,
        client,
    });
    response
}

/// A request on its way past the limits.
struct Admission<'a> {
    state: &'a SandboxState,
    emulator: Emulator,
    limited: bool,
    target: &'a Target,
    at: jiff::Timestamp,
}

impl Admission<'_> {
    /// Admits the request under the limits and runs it; a slow answer (an injected delay)
    /// holds its place in the mailbox's concurrency count while it waits, as a slow service
    /// would.
    async fn run(self, request: Request, next: Next, delay: Duration) -> Response {
        let Admission {
            state,
            emulator,
            limited,
            target,
            at,
        } = self;
        if !limited {
            tokio::time::sleep(delay).await;
            return next.run(request).await;
        }
        match state.limits.admit(target) {
            Ok(_in_flight) => {
                tokio::time::sleep(delay).await;
                next.run(request).await
            }
            Err(refusal) => {
                let (retry_after, concurrency) = match refusal {
                    limits::Refusal::Rate { retry_after } => (retry_after, false),
                    limits::Refusal::Concurrency { retry_after } => (retry_after, true),
                };
                state.limits.told_to_wait(target, retry_after);
                throttled(
                    emulator,
                    retry_after_value(retry_after, false, at),
                    concurrency,
                )
            }
        }
    }
}
