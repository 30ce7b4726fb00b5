//! Authentication with SuperOffice. Onsite: HTTP Basic. Online: the system-user flow of a
//! server-to-server application: the system user token, signed with the application's RSA
//! key as `{token}.{yyyyMMddHHmm UTC}` (RSA-SHA256, PKCS#1 v1.5, base64), is exchanged at
//! `Login/api/PartnerSystemUser/Authenticate` for a JWT whose claim
//! `http://schemes.superoffice.net/identity/ticket` is the ticket. Requests then carry
//! `Authorization: SOTicket {ticket}` and `SO-AppToken: {client secret}`.
//!
//! A ticket lives 6 hours after its last use (sliding): it is renewed after a 401, or when it
//! has not been used for nearly that long. Concurrent callers wait for one renewal. Nothing
//! here shows a secret, the key, the token or a ticket in `Debug`, logs or errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use url::Url;

use super::Clock;
use crate::connector::http::{Credentials, describe};
use crate::connector::{ConnectorError, Service};
use crate::settings::Secret;

pub const TICKET_CLAIM: &str = "http://schemes.superoffice.net/identity/ticket";
const CTX_CLAIM: &str = "http://schemes.superoffice.net/identity/ctx";
/// The system user's own associate: what the CRM records as the creator of crmsync's creates.
const ASSOCIATE_CLAIM: &str = "http://schemes.superoffice.net/identity/associateid";
/// The issuer SuperOffice's own system-user client checks.
const ISSUER: &str = "SuperOffice AS";

/// Renew a ticket unused for this long: SuperOffice lets it lapse after 6 hours unused.
pub const TICKET_IDLE_RENEWAL: jiff::SignedDuration =
    jiff::SignedDuration::from_secs(6 * 3600 - 10 * 60);

fn service(what: impl Into<String>) -> ConnectorError {
    ConnectorError::Service {
        service: Service::SuperOffice,
        what: what.into(),
    }
}

fn transient(what: impl Into<String>) -> ConnectorError {
    ConnectorError::Transient {
        service: Service::SuperOffice,
        what: what.into(),
        retry_after: None,
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, ConnectorError> {
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| service("a credential is not a valid header value"))?;
    header.set_sensitive(true);
    Ok(header)
}

/// How requests to the tenant authenticate.
pub enum Auth {
    Basic(HeaderValue),
    SystemUser(Box<SystemUser>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic(_) => f.write_str("Auth::Basic(<redacted>)"),
            Auth::SystemUser(s) => f
                .debug_struct("Auth::SystemUser")
                .field("context_identifier", &s.context_identifier)
                .finish_non_exhaustive(),
        }
    }
}

impl Auth {
    pub fn basic(username: &str, password: &Secret) -> Result<Auth, ConnectorError> {
        let encoded = STANDARD.encode(format!("{username}:{}", password.expose()));
        Ok(Auth::Basic(sensitive(&format!("Basic {encoded}"))?))
    }

    /// The headers for one request, and the ticket generation they carry (0 for Basic).
    pub async fn authorize(&self) -> Result<(Vec<(HeaderName, HeaderValue)>, u64), ConnectorError> {
        match self {
            Auth::Basic(header) => Ok((vec![(AUTHORIZATION, header.clone())], 0)),
            Auth::SystemUser(s) => s.authorize().await,
        }
    }

    /// The ticket of `generation` was refused (401).
    pub fn refused(&self, generation: u64) {
        if let Auth::SystemUser(s) = self {
            s.refused(generation);
        }
    }

    /// The associate crmsync acts as, once known: the system user's, read from its ticket's
    /// token. `None` for Basic sign-in (onsite), where no answer names it up front.
    pub async fn own_associate(&self) -> Option<u32> {
        match self {
            Auth::Basic(_) => None,
            Auth::SystemUser(s) => {
                if s.associate.load(Ordering::SeqCst) == 0 {
                    // Signing in reads it; a failure here shows again on the next call.
                    let _ = s.authorize().await;
                }
                Some(s.associate.load(Ordering::SeqCst)).filter(|id| *id != 0)
            }
        }
    }

    /// Tickets obtained so far (0 for Basic).
    pub fn tickets_issued(&self) -> u64 {
        match self {
            Auth::Basic(_) => 0,
            Auth::SystemUser(s) => s.issued.load(Ordering::Relaxed),
        }
    }
}

/// The credentials of one request: it remembers which ticket it sent, so that a 401 drops
/// that ticket only, never one a concurrent caller has just renewed.
pub struct Attempt<'a> {
    auth: &'a Auth,
    generation: AtomicU64,
}

impl<'a> Attempt<'a> {
    pub fn new(auth: &'a Auth) -> Self {
        Attempt {
            auth,
            generation: AtomicU64::new(0),
        }
    }
}

impl Credentials for Attempt<'_> {
    async fn authorize(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ConnectorError> {
        let (headers, generation) = self.auth.authorize().await?;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(headers)
    }

    fn refused(&self) {
        self.auth.refused(self.generation.load(Ordering::SeqCst));
    }
}

/// Published signing keys: (`kid`, key).
type Keys = Vec<(Option<String>, RsaPublicKey)>;

struct Ticket {
    authorization: HeaderValue,
    app_token: HeaderValue,
    last_used: jiff::Timestamp,
    generation: u64,
}

/// The system-user flow of one application in one tenant.
pub struct SystemUser {
    client: reqwest::Client,
    authenticate_url: Url,
    jwks_url: Url,
    pub(super) context_identifier: String,
    client_secret: Secret,
    system_user_token: Secret,
    signer: SigningKey<Sha256>,
    clock: Clock,
    ticket: Mutex<Option<Ticket>>,
    /// The newest generation a 401 refused.
    refused: AtomicU64,
    generations: AtomicU64,
    issued: AtomicU64,
    /// The system user's associate id from the newest token (0 until one is read).
    associate: AtomicU32,
    /// SuperID's signing keys, read once.
    jwks: Mutex<Option<(tokio::time::Instant, Arc<Keys>)>>,
}

/// Reads the application's RSA private key: PEM, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`), or the .NET `<RSAKeyValue>` XML that SuperOffice's developer
/// portal hands out.
pub fn read_private_key(text: &str) -> Result<RsaPrivateKey, ConnectorError> {
    let text = text.trim();
    let refused = || {
        service(
            "the SuperOffice private key cannot be read: use an RSA key in PEM (PKCS#8 or PKCS#1) or RSAKeyValue XML",
        )
    };
    if text.starts_with("<RSAKeyValue>") {
        return read_xml_key(text).ok_or_else(refused);
    }
    RsaPrivateKey::from_pkcs8_pem(text)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
        .map_err(|_| refused())
}

fn read_xml_key(text: &str) -> Option<RsaPrivateKey> {
    let field = |name: &str| -> Option<BigUint> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&close)?;
        let bytes = STANDARD.decode(text[start..end].trim()).ok()?;
        Some(BigUint::from_bytes_be(&bytes))
    };
    let key = RsaPrivateKey::from_components(
        field("Modulus")?,
        field("Exponent")?,
        field("D")?,
        vec![field("P")?, field("Q")?],
    )
    .ok()?;
    key.validate().ok()?;
    Some(key)
}

/// `{token}.{yyyyMMddHHmm}.{base64 RSA-SHA256 signature}`, as SuperOffice's samples sign it.
pub fn sign_system_user_token(
    signer: &SigningKey<Sha256>,
    token: &str,
    now: jiff::Timestamp,
) -> String {
    let stamp = now.strftime("%Y%m%d%H%M").to_string();
    let data = format!("{token}.{stamp}");
    let signature = signer.sign(data.as_bytes());
    format!("{data}.{}", STANDARD.encode(signature.to_bytes()))
}

impl SystemUser {
    pub fn new(
        client: reqwest::Client,
        environment: &Url,
        context_identifier: &str,
        client_secret: Secret,
        private_key: &Secret,
        system_user_token: Secret,
        clock: Clock,
    ) -> Result<SystemUser, ConnectorError> {
        let key = read_private_key(private_key.expose())?;
        let join = |path: &str| {
            environment
                .join(path)
                .map_err(|e| service(format!("the SuperOffice base URL cannot be used: {e}")))
        };
        Ok(SystemUser {
            client,
            authenticate_url: join("Login/api/PartnerSystemUser/Authenticate")?,
            jwks_url: join("login/.well-known/jwks")?,
            context_identifier: context_identifier.to_string(),
            client_secret,
            system_user_token,
            signer: SigningKey::<Sha256>::new(key),
            clock,
            ticket: Mutex::new(None),
            refused: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            associate: AtomicU32::new(0),
            jwks: Mutex::new(None),
        })
    }

    async fn authorize(&self) -> Result<(Vec<(HeaderName, HeaderValue)>, u64), ConnectorError> {
        // Held across the exchange: concurrent callers wait for the one renewal.
        let mut ticket = self.ticket.lock().await;
        let now = (self.clock)();
        let refused = self.refused.load(Ordering::SeqCst);
        let usable = ticket.as_ref().is_some_and(|t| {
            t.generation > refused && now.duration_since(t.last_used) < TICKET_IDLE_RENEWAL
        });
        if !usable {
            if let Some(old) = ticket.as_ref() {
                tracing::debug!(
                    generation = old.generation,
                    "renewing the SuperOffice ticket"
                );
            }
            *ticket = Some(self.exchange().await?);
        }
        let t = ticket
            .as_mut()
            .ok_or_else(|| service("no SuperOffice ticket"))?;
        // The ticket's 6 hours slide from its last use: this one.
        t.last_used = now;
        Ok((
            vec![
                (AUTHORIZATION, t.authorization.clone()),
                (HeaderName::from_static("so-apptoken"), t.app_token.clone()),
            ],
            t.generation,
        ))
    }

    fn refused(&self, generation: u64) {
        self.refused.fetch_max(generation, Ordering::SeqCst);
    }

    /// Removes every secret this client knows from a text the service sent back.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in [self.client_secret.expose(), self.system_user_token.expose()] {
            if !secret.is_empty() {
                out = out.replace(secret, crate::settings::REDACTED);
            }
        }
        out.chars().take(300).collect()
    }

    async fn exchange(&self) -> Result<Ticket, ConnectorError> {
        let signed = sign_system_user_token(
            &self.signer,
            self.system_user_token.expose(),
            (self.clock)(),
        );
        let body = json!({
            "SignedSystemToken": signed,
            "ApplicationToken": self.client_secret.expose(),
            "ContextIdentifier": self.context_identifier,
            "ReturnTokenType": "JWT",
        });
        let response = self
            .client
            .post(self.authenticate_url.clone())
            .header(ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                transient(format!(
                    "system user authentication failed: {}",
                    describe(&e)
                ))
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            transient(format!(
                "system user authentication broke off: {}",
                describe(&e)
            ))
        })?;
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(transient(format!(
                "system user authentication answered HTTP {}",
                status.as_u16()
            )));
        }
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = answer
            .get("ErrorMessage")
            .and_then(Value::as_str)
            .map(|m| self.redact(m))
            .unwrap_or_default();
        if !status.is_success() || answer.get("IsSuccessful") != Some(&Value::Bool(true)) {
            return Err(service(format!(
                "SuperOffice refused the system user (HTTP {}): {}",
                status.as_u16(),
                if message.is_empty() {
                    "no reason given"
                } else {
                    &message
                }
            )));
        }
        let jwt = answer
            .get("Token")
            .and_then(Value::as_str)
            .ok_or_else(|| service("the system user authentication returned no token"))?;
        let (ticket, associate) = self.ticket_from(jwt).await?;
        if let Some(associate) = associate {
            self.associate.store(associate, Ordering::SeqCst);
        }
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        self.issued.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(generation, "SuperOffice system user ticket obtained");
        Ok(Ticket {
            authorization: sensitive(&format!("SOTicket {ticket}"))?,
            app_token: sensitive(self.client_secret.expose())?,
            last_used: (self.clock)(),
            generation,
        })
    }

    /// Checks the JWT and reads the ticket from it, and the system user's associate id when
    /// the token names it.
    async fn ticket_from(&self, jwt: &str) -> Result<(String, Option<u32>), ConnectorError> {
        let malformed = || service("the system user token returned is not a readable JWT");
        let mut parts = jwt.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let decode = |part: &str| -> Result<Value, ConnectorError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| malformed())?;
            serde_json::from_slice(&bytes).map_err(|_| malformed())
        };
        let header = decode(header)?;
        let claims = decode(payload)?;
        self.verify(
            &header,
            &format!("{}.{}", jwt_head(jwt), jwt_body(jwt)),
            signature,
        )
        .await?;
        if let Some(iss) = claims.get("iss").and_then(Value::as_str)
            && iss != ISSUER
        {
            return Err(service(format!(
                "the system user token was issued by {iss:?}, not {ISSUER:?}"
            )));
        }
        if let Some(ctx) = claims.get(CTX_CLAIM).and_then(Value::as_str)
            && !ctx.eq_ignore_ascii_case(&self.context_identifier)
        {
            return Err(service(format!(
                "the system user token is for tenant {ctx}, not {}",
                self.context_identifier
            )));
        }
        let associate = claims
            .get(ASSOCIATE_CLAIM)
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<u32>().ok());
        let ticket = claims
            .get(TICKET_CLAIM)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| service("the system user token carries no ticket claim"))?;
        Ok((ticket, associate))
    }

    /// Verifies the JWT's RS256 signature with SuperID's published key (the JWKS of the
    /// environment). A signature that does not verify is refused. A JWKS that cannot be read,
    /// or that has no key for the token's `kid`, is logged and the token accepted: the answer
    /// came over the TLS connection to SuperOffice, and refusing would stop every sync.
    async fn verify(
        &self,
        header: &Value,
        input: &str,
        signature: &str,
    ) -> Result<(), ConnectorError> {
        let kid = header.get("kid").and_then(Value::as_str);
        let keys = match self.keys(kid).await {
            Some(keys) => keys,
            None => {
                tracing::warn!(
                    "SuperID's signing keys cannot be read; the ticket's JWT is not verified"
                );
                return Ok(());
            }
        };
        let key = keys
            .iter()
            .find(|(k, _)| kid.is_none() || k.as_deref() == kid)
            .map(|(_, key)| key.clone());
        let Some(key) = key else {
            tracing::warn!(
                kid,
                "no published SuperID key for the ticket's JWT; it is not verified"
            );
            return Ok(());
        };
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(service("the system user token is not signed with RS256"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(signature.trim_end_matches('='))
            .map_err(|_| service("the system user token's signature is not base64url"))?;
        let signature = Signature::try_from(bytes.as_slice())
            .map_err(|_| service("the system user token's signature is malformed"))?;
        VerifyingKey::<Sha256>::new(key)
            .verify(input.as_bytes(), &signature)
            .map_err(|_| service("the system user token's signature does not verify with SuperID's published key"))
    }

    /// The published keys, read again (at most every 10 minutes) when `kid` is not among them:
    /// SuperID may have rotated its key.
    async fn keys(&self, kid: Option<&str>) -> Option<Arc<Keys>> {
        let mut cached = self.jwks.lock().await;
        if let Some((at, keys)) = cached.as_ref() {
            let known = kid.is_none_or(|kid| keys.iter().any(|(k, _)| k.as_deref() == Some(kid)));
            if known || at.elapsed() < std::time::Duration::from_secs(600) {
                return Some(keys.clone());
            }
        }
        let response = self
            .client
            .get(self.jwks_url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let set: Value = response.json().await.ok()?;
        let keys: Keys = set
            .get("keys")?
            .as_array()?
            .iter()
            .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
            .filter_map(|k| {
                let number = |name: &str| {
                    let text = k.get(name)?.as_str()?;
                    URL_SAFE_NO_PAD
                        .decode(text.trim_end_matches('='))
                        .ok()
                        .map(|b| BigUint::from_bytes_be(&b))
                };
                let key = RsaPublicKey::new(number("n")?, number("e")?).ok()?;
                let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
                Some((kid, key))
            })
            .collect();
        let keys = Arc::new(keys);
        *cached = Some((tokio::time::Instant::now(), keys.clone()));
        Some(keys)
    }
}

fn jwt_head(jwt: &str) -> &str {
    jwt.split('.').next().unwrap_or_default()
}

fn jwt_body(jwt: &str) -> &str {
    jwt.split('.').nth(1).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};

    fn key() -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_pem(crate::sandbox::scenario::SANDBOX_PARTNER_PRIVATE_KEY_PEM)
            .unwrap()
    }

    #[test]
    fn keys_are_read_in_every_documented_form() {
        let key = key();
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert_eq!(read_private_key(&pkcs8).unwrap(), key);
        assert_eq!(read_private_key(&pkcs1).unwrap(), key);
        let b64 = |n: &BigUint| STANDARD.encode(n.to_bytes_be());
        let primes = key.primes();
        let xml = format!(
            "<RSAKeyValue><Modulus>{}</Modulus><Exponent>{}</Exponent><P>{}</P><Q>{}</Q><D>{}</D></RSAKeyValue>",
            b64(key.n()),
            b64(key.e()),
            b64(&primes[0]),
            b64(&primes[1]),
            b64(key.d())
        );
        assert_eq!(read_private_key(&xml).unwrap(), key);
        let refused =
            read_private_key("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----")
                .unwrap_err()
                .to_string();
        assert!(!refused.contains("not a key"), "{refused}");
    }

    #[test]
    fn the_signed_token_is_what_superoffice_verifies() {
        let key = key();
        let signer = SigningKey::<Sha256>::new(key.clone());
        let at: jiff::Timestamp = "2026-11-22T10:15:42Z".parse().unwrap();
        let signed = sign_system_user_token(&signer, "SysUser.Token with.dots", at);
        let mut parts = signed.rsplitn(3, '.');
        let signature = parts.next().unwrap();
        assert_eq!(parts.next(), Some("202611221015"));
        assert_eq!(parts.next(), Some("SysUser.Token with.dots"));
        let signature =
            Signature::try_from(STANDARD.decode(signature).unwrap().as_slice()).unwrap();
        VerifyingKey::<Sha256>::new(key.to_public_key())
            .verify(b"SysUser.Token with.dots.202611221015", &signature)
            .unwrap();
    }
}
