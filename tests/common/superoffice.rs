//! Helpers the SuperOffice emulator's tests share: a sandbox with
//! a system-user ticket, signing as the partner application does, and requests.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crmsync::sandbox::scenario::SANDBOX_PARTNER_PRIVATE_KEY_PEM;
use crmsync::sandbox::{Sandbox, SandboxOptions, Scenario};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};

/// Signs `"{token}.{yyyyMMddHHmm}"` as SuperOffice's samples do (RSA-SHA256, PKCS#1 v1.5).
pub fn sign(token: &str, at: jiff::Timestamp) -> String {
    let stamp = at.strftime("%Y%m%d%H%M").to_string();
    let key = RsaPrivateKey::from_pkcs8_pem(SANDBOX_PARTNER_PRIVATE_KEY_PEM).expect("sandbox key");
    let data = format!("{token}.{stamp}");
    let signature = SigningKey::<Sha256>::new(key).sign(data.as_bytes());
    format!("{data}.{}", STANDARD.encode(signature.to_bytes()))
}

/// The claims of a JWT (not verified).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

pub const TICKET_CLAIM: &str = "http://schemes.superoffice.net/identity/ticket";

/// A running sandbox with a ticket for its SuperOffice tenant.
pub struct So {
    pub sandbox: Sandbox,
    pub client: reqwest::Client,
    pub ticket: String,
    pub app_token: String,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl So {
    pub async fn start() -> So {
        So::with(Scenario::small(jiff::Timestamp::now())).await
    }

    pub async fn with(scenario: Scenario) -> So {
        let sandbox = Sandbox::start(SandboxOptions::local(scenario))
            .await
            .expect("sandbox starts");
        let client = reqwest::Client::new();
        let credentials = sandbox.credentials();
        let mut so = So {
            sandbox,
            client,
            ticket: String::new(),
            app_token: credentials.superoffice_client_secret.clone(),
        };
        so.ticket = so.authenticate().await;
        so
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.sandbox.state().clock.now()
    }

    /// The system-user exchange; returns the ticket.
    pub async fn authenticate(&self) -> String {
        let c = self.sandbox.credentials();
        let answer = self
            .exchange(json!({
                "SignedSystemToken": sign(&c.superoffice_system_user_token, self.now()),
                "ApplicationToken": c.superoffice_client_secret,
                "ContextIdentifier": c.superoffice_context_identifier,
                "ReturnTokenType": "JWT",
            }))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["IsSuccessful"], true, "{}", answer.body);
        let jwt = answer.body["Token"].as_str().expect("a JWT");
        claims(jwt)[TICKET_CLAIM]
            .as_str()
            .expect("the ticket claim")
            .to_string()
    }

    pub async fn exchange(&self, body: Value) -> Answer {
        let url = format!(
            "{}Login/api/PartnerSystemUser/Authenticate",
            self.sandbox.urls().superoffice
        );
        answer(
            self.client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("answer"),
        )
        .await
    }

    /// `{tenant}/api/v1/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/{}",
            self.sandbox
                .urls()
                .superoffice_tenant
                .as_str()
                .trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// A request with the ticket, the app token and `SO-TimeZone: UTC, includeTZOffset`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Authorization", format!("SOTicket {}", self.ticket))
            .header("SO-AppToken", &self.app_token)
            .header("SO-TimeZone", "UTC, includeTZOffset")
            .header("Accept", "application/json")
    }

    pub async fn get(&self, path: &str) -> Answer {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> Answer {
        send(self.request(method, path).json(body)).await
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let url = format!("{}/superoffice{path}", self.sandbox.urls().control);
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    /// The rows of an OData list.
    pub async fn rows(&self, path: &str) -> Vec<Value> {
        let answer = self.get(path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        answer.body["value"].as_array().cloned().unwrap_or_default()
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    answer(request.send().await.expect("the emulator answers")).await
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    }
}

/// Asserts SuperOffice's error shape (`error-response.json`).
pub fn assert_error(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["Error"], true, "{}", answer.body);
    assert!(answer.body["ErrorType"].is_string(), "{}", answer.body);
    assert!(answer.body["ErrorMessage"].is_string(), "{}", answer.body);
}

/// The ids in the rows' `PrimaryKey`s.
pub fn keys(rows: &[Value]) -> Vec<u32> {
    rows.iter()
        .map(|r| {
            r["PrimaryKey"]
                .as_str()
                .and_then(|k| k.parse().ok())
                .expect("PrimaryKey is a string of digits")
        })
        .collect()
}

#[test]
fn signing_produces_three_parts() {
    let signed = sign("App-abc.def", jiff::Timestamp::UNIX_EPOCH);
    let parts: Vec<&str> = signed.rsplitn(3, '.').collect();
    assert_eq!(parts[1], "197001010000");
    assert_eq!(parts[2], "App-abc.def");
}

/// Settings for the online system-user flow against the sandbox's environment host.
pub fn system_user_settings(
    state: &crmsync::sandbox::SandboxState,
) -> crmsync::settings::SuperOfficeSettings {
    use crmsync::settings::{CallBudget, Secret, SuperOfficeAuth, SuperOfficeSettings};
    let c = state.credentials();
    SuperOfficeSettings {
        base_url: state.urls.superoffice.clone(),
        auth: SuperOfficeAuth::SystemUser {
            context_identifier: c.superoffice_context_identifier,
            client_secret: Secret::new(c.superoffice_client_secret),
            private_key: Secret::new(c.superoffice_private_key_pem),
            system_user_token: Secret::new(c.superoffice_system_user_token),
        },
        budget: CallBudget::default(),
    }
}

/// Settings for onsite Basic authentication against the sandbox's tenant host.
pub fn basic_settings(
    state: &crmsync::sandbox::SandboxState,
) -> crmsync::settings::SuperOfficeSettings {
    use crmsync::settings::{CallBudget, Secret, SuperOfficeAuth, SuperOfficeSettings};
    let c = state.credentials();
    SuperOfficeSettings {
        base_url: state.urls.superoffice_tenant.clone(),
        auth: SuperOfficeAuth::Basic {
            username: c.superoffice_username,
            password: Secret::new(c.superoffice_password),
        },
        budget: CallBudget::default(),
    }
}

/// Client options whose clock (for a ticket's idle time) is the sandbox's, which tests move.
pub fn client_options(
    state: &std::sync::Arc<crmsync::sandbox::SandboxState>,
) -> crmsync::connector::superoffice::SuperOfficeOptions {
    let state = state.clone();
    crmsync::connector::superoffice::SuperOfficeOptions {
        clock: std::sync::Arc::new(move || state.clock.now()),
        ..Default::default()
    }
}
