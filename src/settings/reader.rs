//! Typed reading of raw configuration values. Every read records the effective value and
//! its origin (for `config check`) or a problem naming the key and its origin; reading
//! goes on after a problem so that one run reports all of them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Value, ValueKind};
use url::Url;

use super::origin::{Origin, SourceMap};
use super::secret::{self, REDACTED, Secret, SecretSource};

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            Origin::Default => write!(f, "{}: {}", self.key, self.message),
            _ => write!(f, "{}: {}: {}", self.origin, self.key, self.message),
        }
    }
}

/// One line of the effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub key: String,
    /// A TOML literal; secrets are `"<redacted>"`.
    pub value: String,
    /// Where it came from, in words.
    pub origin: String,
}

pub struct Reader<'a> {
    sources: &'a SourceMap,
    credentials_dir: Option<PathBuf>,
    pub problems: Vec<Problem>,
    pub effective: Vec<Effective>,
    /// Every key the schema asked for, valid or not: the known keys.
    pub known: Vec<String>,
}

fn describe(kind: &ValueKind) -> String {
    match kind {
        ValueKind::Nil => "nothing".into(),
        ValueKind::Boolean(b) => format!("boolean {b}"),
        ValueKind::I64(i) => format!("integer {i}"),
        ValueKind::I128(i) => format!("integer {i}"),
        ValueKind::U64(i) => format!("integer {i}"),
        ValueKind::U128(i) => format!("integer {i}"),
        ValueKind::Float(x) => format!("number {x}"),
        ValueKind::String(s) => format!("string {s:?}"),
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "an array".into(),
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl<'a> Reader<'a> {
    pub fn new(sources: &'a SourceMap, credentials_dir: Option<PathBuf>) -> Self {
        Reader {
            sources,
            credentials_dir,
            problems: Vec::new(),
            effective: Vec::new(),
            known: Vec::new(),
        }
    }

    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            origin: self.sources.origin(key),
            message: message.into(),
        });
    }

    fn record(&mut self, key: &str, value: String, origin: String) {
        self.effective.push(Effective {
            key: key.to_string(),
            value,
            origin,
        });
    }

    fn record_configured(&mut self, key: &str, literal: String) {
        let origin = self.sources.origin(key).to_string();
        self.record(key, literal, origin);
    }

    /// A string value (numbers and booleans from the environment arrive as strings too).
    fn text(&mut self, key: &str, value: Value) -> Option<String> {
        match value.kind {
            ValueKind::String(s) => Some(s),
            other => {
                self.problem(
                    key,
                    format!("expected a string, found {}", describe(&other)),
                );
                None
            }
        }
    }

    pub fn optional_string(&mut self, key: &str, value: Option<Value>) -> Option<String> {
        self.known.push(key.to_string());
        let s = self.text(key, value?)?;
        if s.trim().is_empty() {
            self.problem(key, "must not be empty");
            return None;
        }
        self.record_configured(key, toml_string(&s));
        Some(s)
    }

    pub fn required_string(&mut self, key: &str, value: Option<Value>) -> Option<String> {
        if value.is_none() {
            self.known.push(key.to_string());
            self.problem(key, "is required");
            return None;
        }
        self.optional_string(key, value)
    }

    pub fn string(&mut self, key: &str, value: Option<Value>, default: &str) -> String {
        self.known.push(key.to_string());
        match value {
            None => {
                self.record(key, toml_string(default), Origin::Default.to_string());
                default.to_string()
            }
            Some(v) => self
                .optional_string(key, Some(v))
                .unwrap_or_else(|| default.to_string()),
        }
    }

    pub fn choice(
        &mut self,
        key: &str,
        value: Option<Value>,
        default: &'static str,
        allowed: &[&'static str],
    ) -> &'static str {
        self.known.push(key.to_string());
        let Some(v) = value else {
            self.record(key, toml_string(default), Origin::Default.to_string());
            return default;
        };
        let Some(s) = self.text(key, v) else {
            return default;
        };
        match allowed.iter().find(|a| **a == s) {
            Some(found) => {
                self.record_configured(key, toml_string(found));
                found
            }
            None => {
                let list = allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.problem(key, format!("{s:?} is not one of {list}"));
                default
            }
        }
    }

    /// A duration with a unit, such as `"90s"`, `"1m 30s"` or `"500ms"`, at least `minimum`.
    pub fn duration(
        &mut self,
        key: &str,
        value: Option<Value>,
        default: &str,
        minimum: Duration,
    ) -> Duration {
        self.known.push(key.to_string());
        let fallback = humantime::parse_duration(default).unwrap_or(minimum);
        let Some(v) = value else {
            self.record(key, toml_string(default), Origin::Default.to_string());
            return fallback;
        };
        let text = match v.kind {
            ValueKind::String(s) => s,
            other => {
                self.problem(
                    key,
                    format!(
                        "expected a duration with a unit such as \"90s\", found {}",
                        describe(&other)
                    ),
                );
                return fallback;
            }
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d >= minimum => {
                self.record_configured(key, toml_string(&text));
                d
            }
            Ok(_) => {
                self.problem(
                    key,
                    format!(
                        "{text:?} is too short: the minimum is {}",
                        humantime::format_duration(minimum)
                    ),
                );
                fallback
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("{text:?} is not a duration ({e}); write it with a unit, such as \"90s\", \"5m\" or \"500ms\""),
                );
                fallback
            }
        }
    }

    /// `true` or `false` (also as text, from the environment).
    pub fn boolean(&mut self, key: &str, value: Option<Value>, default: bool) -> bool {
        self.known.push(key.to_string());
        let Some(v) = value else {
            self.record(key, default.to_string(), Origin::Default.to_string());
            return default;
        };
        let parsed = match &v.kind {
            ValueKind::Boolean(b) => Some(*b),
            ValueKind::String(s) => match s.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some(b) => {
                self.record_configured(key, b.to_string());
                b
            }
            None => {
                self.problem(
                    key,
                    format!("expected true or false, found {}", describe(&v.kind)),
                );
                default
            }
        }
    }

    /// A number from 0 to 1.
    pub fn fraction(&mut self, key: &str, value: Option<Value>, default: f64) -> f64 {
        self.known.push(key.to_string());
        let Some(v) = value else {
            self.record(key, default.to_string(), Origin::Default.to_string());
            return default;
        };
        let parsed = match &v.kind {
            ValueKind::Float(x) => Some(*x),
            ValueKind::I64(i) => Some(*i as f64),
            ValueKind::U64(i) => Some(*i as f64),
            ValueKind::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(x) if (0.0..=1.0).contains(&x) => {
                self.record_configured(key, x.to_string());
                x
            }
            _ => {
                self.problem(
                    key,
                    format!("expected a number from 0 to 1, found {}", describe(&v.kind)),
                );
                default
            }
        }
    }

    /// An unsigned integer within `range`.
    pub fn uint(
        &mut self,
        key: &str,
        value: Option<Value>,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        self.known.push(key.to_string());
        let Some(v) = value else {
            self.record(key, default.to_string(), Origin::Default.to_string());
            return default;
        };
        let parsed = match &v.kind {
            ValueKind::I64(i) => u64::try_from(*i).ok(),
            ValueKind::I128(i) => u64::try_from(*i).ok(),
            ValueKind::U64(i) => Some(*i),
            ValueKind::U128(i) => u64::try_from(*i).ok(),
            ValueKind::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if range.contains(&n) => {
                self.record_configured(key, n.to_string());
                n
            }
            Some(n) => {
                self.problem(
                    key,
                    format!(
                        "{n} is out of range: it must be from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
            None => {
                self.problem(
                    key,
                    format!(
                        "expected a whole number from {} to {}, found {}",
                        range.start(),
                        range.end(),
                        describe(&v.kind)
                    ),
                );
                default
            }
        }
    }

    /// An `http` or `https` URL.
    pub fn url(&mut self, key: &str, value: Option<Value>, default: Option<&str>) -> Option<Url> {
        self.known.push(key.to_string());
        let (text, configured) = match value {
            Some(v) => (self.text(key, v)?, true),
            None => match default {
                Some(d) => (d.to_string(), false),
                None => {
                    self.problem(key, "is required");
                    return None;
                }
            },
        };
        match Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if configured {
                    self.record_configured(key, toml_string(url.as_str()));
                } else {
                    self.record(key, toml_string(url.as_str()), Origin::Default.to_string());
                }
                Some(url)
            }
            Ok(url) => {
                self.problem(
                    key,
                    format!(
                        "{text:?} is not an http(s) URL with a host (scheme {:?})",
                        url.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.problem(key, format!("{text:?} is not a valid URL: {e}"));
                None
            }
        }
    }

    /// A socket address: an IP address (IPv6 in brackets) and a port, such as
    /// `"127.0.0.1:9100"` or `"[::1]:9100"`. Host names are refused: a listener binds to an
    /// address, and a name could resolve to several.
    pub fn socket_addr(&mut self, key: &str, value: Option<Value>, default: &str) -> SocketAddr {
        self.known.push(key.to_string());
        let fallback = default
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        let Some(v) = value else {
            self.record(key, toml_string(default), Origin::Default.to_string());
            return fallback;
        };
        let Some(text) = self.text(key, v) else {
            return fallback;
        };
        match text.trim().parse::<SocketAddr>() {
            Ok(addr) => {
                self.record_configured(key, toml_string(&addr.to_string()));
                addr
            }
            Err(_) => {
                self.problem(
                    key,
                    format!(
                        "{text:?} is not a socket address: write an IP address and a port, such as \"127.0.0.1:9100\" or \"[::1]:9100\" (not a host name)"
                    ),
                );
                fallback
            }
        }
    }

    /// An absolute path.
    pub fn absolute_path(&mut self, key: &str, value: Option<Value>, default: &str) -> PathBuf {
        self.known.push(key.to_string());
        let Some(v) = value else {
            self.record(key, toml_string(default), Origin::Default.to_string());
            return PathBuf::from(default);
        };
        let Some(text) = self.text(key, v) else {
            return PathBuf::from(default);
        };
        let path = PathBuf::from(&text);
        if !path.is_absolute() {
            self.problem(
                key,
                format!("{text:?} is not an absolute path; write the full path"),
            );
            return PathBuf::from(default);
        }
        self.record_configured(key, toml_string(&text));
        path
    }

    /// A secret named `key`: read from the file at `{key}_file`, or else from credential
    /// `{key}_credential` (default `default_credential`) in `$CREDENTIALS_DIRECTORY`.
    pub fn secret(
        &mut self,
        key: &str,
        file: Option<Value>,
        credential: Option<Value>,
        default_credential: &str,
    ) -> Option<Secret> {
        self.known
            .extend([format!("{key}_file"), format!("{key}_credential")]);
        let file_key = format!("{key}_file");
        let credential_key = format!("{key}_credential");
        let file = match file {
            Some(v) => Some(self.text(&file_key, v)?),
            None => None,
        };
        let credential_name = match credential {
            Some(v) => {
                let name = self.optional_string(&credential_key, Some(v))?;
                if name.contains('/') {
                    self.problem(&credential_key, "a credential name must not contain '/'");
                    return None;
                }
                name
            }
            None => default_credential.to_string(),
        };
        let source = if let Some(path) = file {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                self.problem(
                    &file_key,
                    format!("{} is not an absolute path", path.display()),
                );
                return None;
            }
            self.record_configured(&file_key, toml_string(&path.display().to_string()));
            SecretSource::File(path)
        } else {
            let found = self
                .credentials_dir
                .as_deref()
                .and_then(|dir| secret::find_credential(dir, &credential_name));
            match found {
                Some(path) => SecretSource::Credential {
                    name: credential_name,
                    path,
                },
                None => {
                    let where_looked = match &self.credentials_dir {
                        Some(dir) => format!(
                            "$CREDENTIALS_DIRECTORY ({}) has no file {credential_name:?}",
                            dir.display()
                        ),
                        None => "$CREDENTIALS_DIRECTORY is not set".to_string(),
                    };
                    self.problem(
                        key,
                        format!(
                            "no secret: set {file_key} to a file that holds it, or pass credential \
                             {credential_name:?} with systemd LoadCredential= ({where_looked})"
                        ),
                    );
                    return None;
                }
            }
        };
        let path: &Path = match &source {
            SecretSource::File(p) => p,
            SecretSource::Credential { path, .. } => path,
        };
        match secret::read_secret_file(path) {
            Ok(value) => {
                self.record(key, toml_string(REDACTED), format!("read from {source}"));
                Some(value)
            }
            Err(e) => {
                let at = match source {
                    SecretSource::File(_) => file_key,
                    SecretSource::Credential { .. } => key.to_string(),
                };
                self.problem(&at, e.to_string());
                None
            }
        }
    }
}
