//! The loaded mailbox list, `STATE_DIR/external-users.json`: what `users load-external` read
//! from each mail system, with the time it was read. Linking chooses from it.
//!
//! ```json
//! {
//!   "format": 1,
//!   "mail_systems": {
//!     "contoso": {
//!       "loaded": "2026-11-22T10:00:00Z",
//!       "source": "https://graph.microsoft.com/v1.0",
//!       "mailboxes": [
//!         {"id": "6f0c…", "display_name": "Anna Berg", "user_principal_name": "anna.berg@contoso.example",
//!          "mail": "anna.berg@contoso.example", "smtp_addresses": ["anna.berg@contoso.example"]}
//!       ]
//!     }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The format this build reads and writes.
pub const EXTERNAL_FORMAT: u32 = 1;
/// The file's name inside the state directory.
pub const EXTERNAL_FILE: &str = "external-users.json";

/// A mailbox as Load External Users read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mailbox {
    /// The mail system's id for it (Graph user id).
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    /// Every SMTP address (primary and proxy), lower case.
    #[serde(default)]
    pub smtp_addresses: Vec<String>,
}

impl Mailbox {
    /// The primary SMTP address, as the registry names the mailbox: `mail`, else the first
    /// SMTP address. `None`: the directory user has no mailbox address and cannot be linked.
    pub fn address(&self) -> Option<String> {
        self.mail
            .as_deref()
            .map(str::trim)
            .filter(|m| m.contains('@'))
            .or_else(|| self.smtp_addresses.first().map(|s| s.trim()))
            .filter(|m| m.contains('@'))
            .map(str::to_string)
    }

    /// Whether `address` (compared without case) is this mailbox's `mail` or one of its SMTP
    /// addresses.
    pub fn has_address(&self, address: &str) -> bool {
        let wanted = address.trim().to_lowercase();
        self.mail
            .as_deref()
            .is_some_and(|m| m.trim().to_lowercase() == wanted)
            || self
                .smtp_addresses
                .iter()
                .any(|a| a.trim().to_lowercase() == wanted)
    }

    /// Whether `address` is the primary address (rather than only a proxy address).
    pub fn is_primary(&self, address: &str) -> bool {
        self.address()
            .is_some_and(|a| a.to_lowercase() == address.trim().to_lowercase())
    }
}

/// One mail system's mailboxes and when they were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadedMailSystem {
    pub loaded: jiff::Timestamp,
    /// Where they were read from (the mail system's base URL).
    pub source: String,
    pub mailboxes: Vec<Mailbox>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalUsers {
    pub format: u32,
    pub mail_systems: BTreeMap<String, LoadedMailSystem>,
}

/// A mailbox with the mail system it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundMailbox<'a> {
    pub mail_system: &'a str,
    pub mailbox: &'a Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("cannot read the loaded mailbox list {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}:{line}:{column}: {message} (the file is not touched until this is fixed; delete it \
         and run `crmsync users load-external` to read the mailboxes again)",
        path.display()
    )]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Default for ExternalUsers {
    fn default() -> Self {
        ExternalUsers {
            format: EXTERNAL_FORMAT,
            mail_systems: BTreeMap::new(),
        }
    }
}

impl ExternalUsers {
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(EXTERNAL_FILE)
    }

    /// Reads the list; `None` when external users were never loaded.
    pub fn read(path: &Path) -> Result<Option<Self>, ExternalError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ExternalError::Unreadable {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ExternalError> {
        let invalid = |line: usize, column: usize, message: String| ExternalError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        // The format is checked first, so that a newer file is named as such rather than
        // as a file with unknown fields.
        #[derive(Deserialize)]
        struct Format {
            format: Option<u32>,
        }
        let format: Format =
            serde_json::from_str(text).map_err(|e| invalid(e.line(), e.column(), e.to_string()))?;
        match format.format {
            Some(EXTERNAL_FORMAT) => {}
            Some(n) => {
                return Err(invalid(
                    1,
                    1,
                    format!("format {n} is not known to this crmsync (it reads {EXTERNAL_FORMAT})"),
                ));
            }
            None => {
                return Err(invalid(
                    1,
                    1,
                    format!("no \"format\"; expected \"format\": {EXTERNAL_FORMAT}"),
                ));
            }
        }
        serde_json::from_str(text).map_err(|e| invalid(e.line(), e.column(), e.to_string()))
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    pub fn total(&self) -> usize {
        self.mail_systems.values().map(|m| m.mailboxes.len()).sum()
    }

    /// Every mailbox of every loaded mail system.
    pub fn all(&self) -> impl Iterator<Item = FoundMailbox<'_>> {
        self.mail_systems.iter().flat_map(|(name, loaded)| {
            loaded.mailboxes.iter().map(move |mailbox| FoundMailbox {
                mail_system: name,
                mailbox,
            })
        })
    }

    /// Mailboxes that have `address` as `mail` or an SMTP address.
    pub fn with_address(&self, address: &str) -> Vec<FoundMailbox<'_>> {
        self.all()
            .filter(|f| f.mailbox.has_address(address))
            .collect()
    }

    /// Mailboxes named by `query`: an address, or the mail system's id, in `mail_system`
    /// if given.
    pub fn find(&self, query: &str, mail_system: Option<&str>) -> Vec<FoundMailbox<'_>> {
        let query = query.trim();
        self.all()
            .filter(|f| mail_system.is_none_or(|m| m == f.mail_system))
            .filter(|f| f.mailbox.has_address(query) || f.mailbox.id.eq_ignore_ascii_case(query))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ExternalUsers {
        let mut e = ExternalUsers::default();
        e.mail_systems.insert(
            "contoso".into(),
            LoadedMailSystem {
                loaded: "2026-11-22T10:00:00Z".parse().unwrap(),
                source: "https://graph.example/v1.0".into(),
                mailboxes: vec![Mailbox {
                    id: "M1".into(),
                    display_name: "Dina Ek".into(),
                    user_principal_name: "dina.ek@contoso.example".into(),
                    mail: Some("Dina.Ek@contoso.example".into()),
                    smtp_addresses: vec![
                        "dina.ek@contoso.example".into(),
                        "dina@contoso.example".into(),
                    ],
                }],
            },
        );
        e
    }

    #[test]
    fn the_written_form_reads_back_the_same() {
        let e = sample();
        let path = Path::new("/s/external-users.json");
        assert_eq!(ExternalUsers::parse(&e.to_json(), path).unwrap(), e);
    }

    #[test]
    fn addresses_match_without_case_and_by_proxy() {
        let e = sample();
        assert_eq!(e.with_address("DINA@contoso.example").len(), 1);
        assert_eq!(e.find("dina.ek@CONTOSO.example", None).len(), 1);
        assert_eq!(e.find("m1", Some("contoso")).len(), 1);
        assert!(e.find("m1", Some("fabrikam")).is_empty());
        let m = e.all().next().unwrap().mailbox;
        assert!(m.is_primary("dina.ek@contoso.example"));
        assert!(!m.is_primary("dina@contoso.example"));
    }

    #[test]
    fn errors_name_line_and_column() {
        let path = Path::new("/s/external-users.json");
        let text = sample().to_json().replace("\"source\"", "\"sauce\"");
        match ExternalUsers::parse(&text, path) {
            Err(ExternalError::Invalid { line, message, .. }) => {
                assert!(line > 1, "{line}");
                assert!(message.contains("sauce"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let newer = sample().to_json().replace("\"format\": 1", "\"format\": 2");
        assert!(
            ExternalUsers::parse(&newer, path)
                .unwrap_err()
                .to_string()
                .contains("format 2")
        );
        assert!(ExternalUsers::parse("{", path).is_err());
    }
}
