//! OAuth 2.0 client credentials against the Microsoft identity platform (v2.0 token
//! endpoint): one cached token per mail system, renewed after 80 % of its lifetime (tokens
//! live 60 to 90 minutes: `expires_in` says how long), renewed at once after a 401, and one
//! renewal shared by every caller that needs it at the same moment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::connector::http::{Credentials, describe};
use crate::connector::{ConnectorError, Service};
use crate::settings::Secret;

struct Token {
    header: HeaderValue,
    renew_at: Instant,
}

/// The tokens of one app registration in one tenant.
pub struct GraphTokens {
    client: reqwest::Client,
    token_url: Url,
    client_id: String,
    client_secret: Secret,
    scope: String,
    token: Mutex<Option<Token>>,
    fetched: AtomicU64,
}

impl std::fmt::Debug for GraphTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphTokens")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: u64,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The national clouds' Graph hosts are their own resources; anything else (the public cloud,
/// a proxy, the sandbox) stands for the public Graph.
const CLOUD_SUFFIXES: &[&str] = &[".microsoft.com", ".microsoft.us", ".chinacloudapi.cn"];

/// `https://graph.microsoft.com/.default` for the public cloud, the national clouds' own
/// resource (`https://graph.microsoft.us/.default`, ...) for theirs.
pub fn scope_for(graph_base: &Url) -> String {
    let host = graph_base
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if graph_base.scheme() == "https" && CLOUD_SUFFIXES.iter().any(|s| host.ends_with(s)) {
        format!("https://{host}/.default")
    } else {
        "https://graph.microsoft.com/.default".to_string()
    }
}

impl GraphTokens {
    pub fn new(
        client: reqwest::Client,
        authority: &Url,
        tenant_id: &str,
        client_id: &str,
        client_secret: Secret,
        graph_base: &Url,
    ) -> Result<GraphTokens, ConnectorError> {
        let base = authority.as_str().trim_end_matches('/');
        let token_url =
            Url::parse(&format!("{base}/{tenant_id}/oauth2/v2.0/token")).map_err(|e| {
                ConnectorError::Service {
                    service: Service::Graph,
                    what: format!("the token URL for tenant {tenant_id:?} is not valid: {e}"),
                }
            })?;
        Ok(GraphTokens {
            client,
            token_url,
            client_id: client_id.to_string(),
            client_secret,
            scope: scope_for(graph_base),
            token: Mutex::new(None),
            fetched: AtomicU64::new(0),
        })
    }

    /// Tokens fetched so far (for metrics and tests).
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    async fn fetch(&self) -> Result<Token, ConnectorError> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
            ("client_secret", self.client_secret.expose()),
            ("grant_type", "client_credentials"),
        ];
        let transient = |what: String| ConnectorError::Transient {
            service: Service::Graph,
            what,
            retry_after: None,
        };
        let started = Instant::now();
        let response = self
            .client
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| transient(format!("token request failed: {}", describe(&e))))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transient(format!("token answer broke off: {}", describe(&e))))?;
        if status.is_success() {
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| ConnectorError::Service {
                    service: Service::Graph,
                    what: format!("the token endpoint answered something that is not a token: {e}"),
                })?;
            if let Some(kind) = &parsed.token_type
                && !kind.eq_ignore_ascii_case("bearer")
            {
                return Err(ConnectorError::Service {
                    service: Service::Graph,
                    what: format!(
                        "the token endpoint gave a {kind:?} token; only bearer tokens are used"
                    ),
                });
            }
            let mut header = HeaderValue::from_str(&format!("Bearer {}", parsed.access_token))
                .map_err(|_| ConnectorError::Service {
                    service: Service::Graph,
                    what: "the access token is not a valid header value".to_string(),
                })?;
            header.set_sensitive(true);
            self.fetched.fetch_add(1, Ordering::Relaxed);
            let lifetime = Duration::from_secs(parsed.expires_in);
            tracing::debug!(expires_in = parsed.expires_in, "Graph access token fetched");
            return Ok(Token {
                header,
                renew_at: started + lifetime.mul_f64(0.8),
            });
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(transient(format!(
                "token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        let what = match serde_json::from_slice::<TokenError>(&body) {
            // The description's first line names the AADSTS code and the cause; the rest is
            // trace ids.
            Ok(e) => format!(
                "the identity platform refused the client credentials ({}): {}",
                e.error,
                e.error_description.lines().next().unwrap_or_default()
            ),
            Err(_) => format!("the token endpoint answered HTTP {}", status.as_u16()),
        };
        Err(ConnectorError::Service {
            service: Service::Graph,
            what,
        })
    }
}

impl Credentials for GraphTokens {
    async fn authorize(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ConnectorError> {
        // Held across the fetch: concurrent callers wait for the one renewal.
        let mut token = self.token.lock().await;
        let fresh = token.as_ref().is_some_and(|t| Instant::now() < t.renew_at);
        if !fresh {
            *token = Some(self.fetch().await?);
        }
        match token.as_ref() {
            Some(t) => Ok(vec![(AUTHORIZATION, t.header.clone())]),
            None => Err(ConnectorError::Service {
                service: Service::Graph,
                what: "no access token".to_string(),
            }),
        }
    }

    fn refused(&self) {
        if let Ok(mut token) = self.token.try_lock() {
            *token = None;
        } else {
            // Someone is renewing right now; the token they get is the new one.
        }
    }
}

#[cfg(test)]
mod tests;
