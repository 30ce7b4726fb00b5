//! The identity platform's token endpoint (client credentials with a shared secret) and the
//! bearer token check of every Graph request. Tokens expire by the sandbox clock.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jiff::{Timestamp, ToSpan};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::GraphStore;
use super::error::GraphError;
use super::tokens;
use crate::sandbox::SandboxState;

/// The scopes a client-credentials request may ask for: Graph's `.default`.
const GRAPH_RESOURCES: &[&str] = &[
    "https://graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
];

struct Issued {
    tenant_id: String,
    client_id: String,
    expires: Timestamp,
}

/// The access tokens handed out (they outlive scenario reloads, but only match the tenant
/// and app they were issued for).
pub struct TokenStore {
    tokens: HashMap<String, Issued>,
    issued: u64,
    rng: ChaCha8Rng,
}

impl TokenStore {
    pub fn new(seed: u64) -> Self {
        TokenStore {
            tokens: HashMap::new(),
            issued: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x70_6b_65_6e),
        }
    }
}

/// An error of the token endpoint, in the identity platform's shape.
struct AadError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

impl AadError {
    fn new(status: StatusCode, error: &'static str, code: u32, message: impl Into<String>) -> Self {
        AadError {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    fn missing(parameter: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    fn body(&self, now: Timestamp) -> Value {
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "Cache-Control",
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert("Pragma", HeaderValue::from_static("no-cache"));
    response
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub async fn token_endpoint(
    State(state): State<Arc<SandboxState>>,
    Path(tenant): Path<String>,
    request: Request,
) -> Response {
    let now = state.clock.now();
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let answer = if method != Method::POST {
        Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
            ),
        ))
    } else {
        let is_form = headers
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        // A body the endpoint cannot read has none of the parameters.
        let form: HashMap<String, String> = if is_form {
            url::form_urlencoded::parse(&body).into_owned().collect()
        } else {
            HashMap::new()
        };
        state.graph.issue_token(&tenant, &form, &headers, now)
    };
    let response = match answer {
        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Err(e) => (e.status, axum::Json(e.body(now))).into_response(),
    };
    no_store(response)
}

/// Anything else under the authority.
pub async fn not_found(State(state): State<Arc<SandboxState>>) -> Response {
    let e = AadError::new(
        StatusCode::NOT_FOUND,
        "invalid_request",
        900561,
        "The sandbox's identity platform only serves /{tenant}/oauth2/v2.0/token.",
    );
    (e.status, axum::Json(e.body(state.clock.now()))).into_response()
}

/// Client id and secret from `Authorization: Basic` (RFC 6749, which the platform accepts).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("Authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

fn check_scope(scope: &str) -> Result<(), AadError> {
    for item in scope.split_whitespace() {
        let Some(resource) = item.strip_suffix("/.default") else {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {item} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        };
        if !GRAPH_RESOURCES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(resource.trim_end_matches('/')))
        {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70011,
                format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope {item} is not valid."
                ),
            ));
        }
    }
    Ok(())
}

impl GraphStore {
    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.lock().map(|t| t.issued).unwrap_or(0)
    }

    /// Tokens that are still valid at `now`.
    pub fn tokens_active(&self, now: Timestamp) -> usize {
        self.tokens
            .lock()
            .map(|t| t.tokens.values().filter(|i| i.expires > now).count())
            .unwrap_or(0)
    }

    fn issue_token(
        &self,
        tenant_segment: &str,
        form: &HashMap<String, String>,
        headers: &HeaderMap,
        now: Timestamp,
    ) -> Result<Value, AadError> {
        let tenant = self.tenant();
        if !tenant.tenant_id.eq_ignore_ascii_case(tenant_segment) {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                format!(
                    "Tenant '{tenant_segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                ),
            ));
        }
        let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let grant = param("grant_type").ok_or_else(|| AadError::missing("grant_type"))?;
        if grant != "client_credentials" {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant}'."),
            ));
        }
        let basic = basic_credentials(headers);
        let client_id = param("client_id")
            .map(str::to_string)
            .or_else(|| basic.as_ref().map(|b| b.0.clone()))
            .ok_or_else(|| AadError::missing("client_id"))?;
        let scope = param("scope").ok_or_else(|| AadError::missing("scope"))?;
        check_scope(scope)?;
        if !tenant.client_id.eq_ignore_ascii_case(&client_id) {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant_segment}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
                ),
            ));
        }
        let secret = param("client_secret")
            .map(str::to_string)
            .or_else(|| basic.map(|b| b.1))
            .filter(|s| !s.is_empty());
        let Some(secret) = secret else {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        };
        if secret != tenant.client_secret {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            ));
        }
        let lifetime = tenant.token_lifetime_secs.clamp(1, 24 * 3600);
        let expires = now
            .checked_add((lifetime as i64).seconds())
            .unwrap_or(Timestamp::MAX);
        let mut store = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let header =
            tokens::b64url(br#"{"typ":"JWT","alg":"RS256","x5t":"sandbox","kid":"sandbox"}"#);
        let payload = json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{}/", tenant.tenant_id),
            "iat": now.as_second(),
            "nbf": now.as_second(),
            "exp": expires.as_second(),
            "appid": tenant.client_id,
            "idtyp": "app",
            "roles": ["Calendars.ReadWrite", "Contacts.ReadWrite", "Tasks.ReadWrite.All", "User.Read.All"],
            "tid": tenant.tenant_id,
            "uti": tokens::random_b64(&mut store.rng, 16),
            "ver": "1.0",
        });
        let signature = tokens::random_b64(&mut store.rng, 64);
        let access_token = format!(
            "{header}.{}.{signature}",
            tokens::b64url(payload.to_string().as_bytes())
        );
        if store.tokens.len() > 1024 {
            store.tokens.retain(|_, t| t.expires > now);
        }
        store.tokens.insert(
            access_token.clone(),
            Issued {
                tenant_id: tenant.tenant_id.clone(),
                client_id: tenant.client_id.clone(),
                expires,
            },
        );
        store.issued += 1;
        Ok(json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }))
    }

    /// The bearer token check of every API request: 401 `InvalidAuthenticationToken`.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        now: Timestamp,
    ) -> Result<(), GraphError> {
        let fail = |message: &str| {
            GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).with_header(
                axum::http::header::WWW_AUTHENTICATE,
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            )
        };
        let Some(value) = headers.get("Authorization") else {
            return Err(fail("Access token is empty."));
        };
        let value = value.to_str().unwrap_or_default().trim();
        let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(fail("Access token is empty."));
        };
        if !token.contains('.') {
            return Err(fail(
                "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or JWE Compact Serialization Format. (JWS): 'EncodedHeader.EndcodedPayload.EncodedSignature'. (JWE): 'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'.",
            ));
        }
        let tenant = self.tenant();
        let store = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match store.tokens.get(token) {
            Some(t) if t.tenant_id != tenant.tenant_id || t.client_id != tenant.client_id => {
                Err(fail("Access token validation failure. Invalid audience."))
            }
            Some(t) if t.expires <= now => {
                Err(fail("Lifetime validation failed, the token is expired."))
            }
            Some(_) => Ok(()),
            None => Err(fail("Access token validation failure.")),
        }
    }
}
