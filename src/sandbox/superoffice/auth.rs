//! Authentication: the environment host's system-user exchange (a signed system user token
//! for a JWT carrying a ticket), the tenant host's `SOTicket` + `SO-AppToken` and Basic
//! credentials, and the tenant status document.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

use super::time::plus_seconds;

/// How far the timestamp of a signed system user token may be from the sandbox clock. The
/// docs give no figure; tokens are signed right before use and carry minutes only.
pub const SIGNED_TOKEN_TOLERANCE_SECS: i64 = 5 * 60;

/// Lifetime of the JWT the exchange returns (its carrier role ends when the ticket is read;
/// the docs' id_token example spans five minutes).
pub const JWT_LIFETIME_SECS: i64 = 5 * 60;

/// The issuer SuperOffice's system-user client library validates.
pub const JWT_ISSUER: &str = "SuperOffice AS";

const JWT_KEY_PEM: &str = include_str!("jwt-signing-key.pem");
const JWT_KEY_ID: &str = "crmsync-sandbox-superid-1";

fn jwt_key() -> Option<&'static RsaPrivateKey> {
    static KEY: OnceLock<Option<RsaPrivateKey>> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::from_pkcs8_pem(JWT_KEY_PEM).ok())
        .as_ref()
}

/// The tenant's credentials as the emulator checks them.
pub struct TenantCredentials {
    pub context_identifier: String,
    pub client_secret: String,
    pub system_user_token: String,
    /// The partner application's public key (derived from the scenario's private key).
    pub partner_key: Option<VerifyingKey<Sha256>>,
    pub basic_username: String,
    pub basic_password: String,
    pub ticket_lifetime_secs: i64,
    /// The database serial (the JWT's audience is `spn:{serial}`).
    pub serial: String,
}

impl TenantCredentials {
    pub fn of(tenant: &crate::sandbox::scenario::SuperOfficeTenant) -> Self {
        let partner_key = RsaPrivateKey::from_pkcs8_pem(&tenant.private_key_pem)
            .ok()
            .map(|k| VerifyingKey::<Sha256>::new(k.to_public_key()));
        let serial: u64 = tenant
            .context_identifier
            .bytes()
            .fold(1_801_550_193, |acc, b| {
                acc.wrapping_mul(31).wrapping_add(u64::from(b)) % 9_000_000_000
            });
        TenantCredentials {
            context_identifier: tenant.context_identifier.clone(),
            client_secret: tenant.client_secret.clone(),
            system_user_token: tenant.system_user_token.clone(),
            partner_key,
            basic_username: tenant.basic_username.clone(),
            basic_password: tenant.basic_password.clone(),
            ticket_lifetime_secs: i64::try_from(tenant.ticket_lifetime_secs).unwrap_or(i64::MAX),
            serial: (1_000_000_000 + serial).to_string(),
        }
    }
}

/// Issued tickets and when each was last used (the expiry slides from there).
#[derive(Default)]
pub struct Tickets {
    last_used: HashMap<String, Timestamp>,
    pub issued: u64,
}

impl Tickets {
    pub fn issue(&mut self, ctx: &str, now: Timestamp, rng: &mut ChaCha8Rng) -> String {
        // The shape of a real one: "7T:" + base64 of UTF-16LE "{32 hex};{number};{ctx}".
        let hex: String = (0..16)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect();
        let number = rng.random_range(1_000_000_000u64..4_000_000_000);
        let text = format!("{hex};{number};{ctx}");
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let ticket = format!("7T:{}", STANDARD.encode(utf16));
        self.last_used.insert(ticket.clone(), now);
        self.issued += 1;
        ticket
    }

    /// Uses a ticket: valid when used within `lifetime` of its last use, which it renews.
    pub fn touch(&mut self, ticket: &str, now: Timestamp, lifetime_secs: i64) -> bool {
        match self.last_used.get_mut(ticket) {
            Some(last) if plus_seconds(*last, lifetime_secs) >= now => {
                if now > *last {
                    *last = now;
                }
                true
            }
            Some(_) => {
                self.last_used.remove(ticket);
                false
            }
            None => false,
        }
    }

    pub fn active(&self, now: Timestamp, lifetime_secs: i64) -> usize {
        self.last_used
            .values()
            .filter(|last| plus_seconds(**last, lifetime_secs) >= now)
            .count()
    }

    pub fn expire_all(&mut self) -> usize {
        let n = self.last_used.len();
        self.last_used.clear();
        n
    }
}

/// Why an exchange was refused: the message goes to `ErrorMessage`.
pub fn check_signed_token(
    credentials: &TenantCredentials,
    signed: &str,
    now: Timestamp,
) -> Result<(), String> {
    // "{token}.{yyyyMMddHHmm}.{base64 signature}"; the token itself may contain dots and
    // spaces, base64 has neither, so split from the right.
    let mut parts = signed.rsplitn(3, '.');
    let (Some(signature), Some(stamp), Some(token)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("SignedSystemToken is not in the form token.timestamp.signature".into());
    };
    if token != credentials.system_user_token {
        return Err("Unknown system user token for this tenant".into());
    }
    let signed_at = parse_stamp(stamp)
        .ok_or("The timestamp of SignedSystemToken is not a UTC yyyyMMddHHmm time")?;
    let skew = now.as_second() - signed_at.as_second();
    if skew.abs() > SIGNED_TOKEN_TOLERANCE_SECS + 59 {
        return Err(format!(
            "SignedSystemToken timestamp {stamp} is too far from the current time; sign the token right before the request"
        ));
    }
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| "The signature of SignedSystemToken is not base64")?;
    let signature =
        Signature::try_from(signature.as_slice()).map_err(|_| "Malformed signature".to_string())?;
    let key = credentials
        .partner_key
        .as_ref()
        .ok_or("The tenant has no partner key configured")?;
    key.verify(format!("{token}.{stamp}").as_bytes(), &signature)
        .map_err(|_| {
            "The signature of SignedSystemToken does not verify with the application's public key"
                .to_string()
        })
}

fn parse_stamp(stamp: &str) -> Option<Timestamp> {
    if stamp.len() != 12 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| stamp[r].parse::<i16>().ok();
    let dt = jiff::civil::DateTime::new(
        n(0..4)?,
        n(4..6)? as i8,
        n(6..8)? as i8,
        n(8..10)? as i8,
        n(10..12)? as i8,
        0,
        0,
    )
    .ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The JWT the exchange returns, RS256-signed with the sandbox's SuperID key.
pub fn issue_jwt(
    credentials: &TenantCredentials,
    ticket: &str,
    tenant_url: &str,
    associate_id: u32,
    now: Timestamp,
) -> Option<String> {
    let key = jwt_key()?;
    let base = tenant_url.trim_end_matches('/');
    let claims = json!({
        "sub": credentials.system_user_token,
        "http://schemes.superoffice.net/identity/ticket": ticket,
        "http://schemes.superoffice.net/identity/ctx": credentials.context_identifier,
        "http://schemes.superoffice.net/identity/serial": credentials.serial,
        "http://schemes.superoffice.net/identity/netserver_url": format!("{base}/Remote/Services88/"),
        "http://schemes.superoffice.net/identity/webapi_url": format!("{base}/api/"),
        "http://schemes.superoffice.net/identity/system_token": credentials.system_user_token,
        "http://schemes.superoffice.net/identity/associateid": associate_id.to_string(),
        "http://schemes.superoffice.net/identity/is_administrator": "False",
        "http://schemes.superoffice.net/identity/identityprovider": "central-superid",
        "iat": now.as_second().to_string(),
        "nbf": now.as_second() - 60,
        "exp": now.as_second() + JWT_LIFETIME_SECS,
        "iss": JWT_ISSUER,
        "aud": format!("spn:{}", credentials.serial),
    });
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": JWT_KEY_ID});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signer = SigningKey::<Sha256>::new(key.clone());
    let signature = signer.sign(signing_input.as_bytes());
    Some(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

/// The JWT key's public half as a JSON Web Key Set (`/login/.well-known/jwks`).
pub fn jwks() -> Value {
    let keys: Vec<Value> = jwt_key()
        .map(|k| {
            let public = RsaPublicKey::from(k);
            vec![json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": JWT_KEY_ID,
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            })]
        })
        .unwrap_or_default();
    json!({ "keys": keys })
}

/// What an `Authorization` header offers.
pub enum Offered<'a> {
    Ticket(&'a str),
    Basic { user: String, password: String },
    Bearer,
    Nothing,
    Malformed,
}

pub fn offered(authorization: Option<&str>) -> Offered<'_> {
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Offered::Nothing;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("SOTicket") && !rest.is_empty() {
        Offered::Ticket(rest)
    } else if scheme.eq_ignore_ascii_case("Basic") {
        // The OpenAPI file: an unencoded ticket may also be passed with the Basic scheme.
        if rest.starts_with("7T:") {
            return Offered::Ticket(rest);
        }
        let Ok(decoded) = STANDARD.decode(rest) else {
            return Offered::Malformed;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return Offered::Malformed;
        };
        match text.split_once(':') {
            Some((user, password)) => Offered::Basic {
                user: user.to_string(),
                password: password.to_string(),
            },
            None => Offered::Malformed,
        }
    } else if scheme.eq_ignore_ascii_case("Bearer") {
        Offered::Bearer
    } else {
        Offered::Malformed
    }
}

/// `TenantState` names with `IsRunning`.
pub const STATES: &[(&str, bool)] = &[
    ("Unknown", false),
    ("Provisioning", false),
    ("Running", true),
    ("Deleted", false),
    ("Suspended", false),
    ("OnlineMaintenance", true),
    ("OfflineMaintenance", false),
    ("ProvisioningFailed", false),
    ("Deleting", false),
    ("DeleteFailed", false),
    ("MigrationPending", false),
];

pub fn state_is_running(state: &str) -> bool {
    STATES
        .iter()
        .any(|(name, running)| *name == state && *running)
}

pub fn canonical_state(name: &str) -> Option<&'static str> {
    STATES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(n, _)| *n)
}
