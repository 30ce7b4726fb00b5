//! Staged links, `STATE_DIR/pending.toml`: what `users auto-link` and `users link` propose and
//! `users save` turns into sync users. Daemons never read it, so nothing staged ever syncs.
//!
//! ```toml
//! version = 1
//!
//! [[links]]
//! associate_id = 101
//! login = "ANNA"
//! name = "Anna Berg"
//! mailbox = "anna.berg@contoso.example"
//! mailbox_id = "6f0c…"
//! mail_system = "contoso"
//! source = "auto-link"        # or "link"
//! matched = "anna.berg@contoso.example"   # auto-link: the address that matched
//! staged = "2026-11-22T10:00:00Z"
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::text::line_of;

/// The format this build reads and writes.
pub const PENDING_VERSION: u32 = 1;
/// The file's name inside the state directory.
pub const PENDING_FILE: &str = "pending.toml";

/// How a link was staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkSource {
    /// Matched by e-mail address (`users auto-link`).
    AutoLink,
    /// Chosen by hand (`users link`).
    Link,
}

impl fmt::Display for LinkSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkSource::AutoLink => "auto-link",
            LinkSource::Link => "link",
        })
    }
}

/// One staged link: an associate and a mailbox of a loaded mail system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingLink {
    pub associate_id: u32,
    pub login: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The mailbox's primary SMTP address.
    pub mailbox: String,
    /// The mailbox's id in the mail system (Graph user id).
    pub mailbox_id: String,
    pub mail_system: String,
    pub source: LinkSource,
    /// For auto-link: the address on the person card that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    pub staged: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Pending {
    pub version: u32,
    pub links: Vec<PendingLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPending {
    version: Option<Spanned<u32>>,
    #[serde(default)]
    links: Vec<Spanned<PendingLink>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    #[error("cannot read the staged links {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}:{line}: {message} (the staged links are not touched until this is fixed; \
         correct the file, or delete it to drop every staged link)",
        path.display()
    )]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Pending {
    pub fn empty() -> Self {
        Pending {
            version: PENDING_VERSION,
            links: Vec::new(),
        }
    }

    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(PENDING_FILE)
    }

    /// Reads the staged links; a missing file means none.
    pub fn read(path: &Path) -> Result<Self, PendingError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(source) => Err(PendingError::Unreadable {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses and validates; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PendingError> {
        let invalid = |offset: usize, message: String| PendingError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawPending = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map(|s| s.start).unwrap_or(0),
                e.message().to_string(),
            )
        })?;
        let version = raw.version.ok_or_else(|| {
            invalid(
                0,
                format!("no `version`; expected version = {PENDING_VERSION}"),
            )
        })?;
        if *version.get_ref() != PENDING_VERSION {
            return Err(invalid(
                version.span().start,
                format!(
                    "version {} is not known to this crmsync (it reads version {PENDING_VERSION})",
                    version.get_ref()
                ),
            ));
        }
        let mut associates: HashMap<u32, usize> = HashMap::new();
        let mut mailboxes: HashMap<String, usize> = HashMap::new();
        for link in &raw.links {
            let at = link.span().start;
            let l = link.get_ref();
            if let Some(prev) = associates.insert(l.associate_id, at) {
                return Err(invalid(
                    at,
                    format!(
                        "associate {} is staged twice (also on line {})",
                        l.associate_id,
                        line_of(text, prev)
                    ),
                ));
            }
            let mailbox = l.mailbox.trim().to_lowercase();
            if !mailbox.contains('@') {
                return Err(invalid(
                    at,
                    format!("mailbox {:?} is not an e-mail address", l.mailbox),
                ));
            }
            if let Some(prev) = mailboxes.insert(mailbox, at) {
                return Err(invalid(
                    at,
                    format!(
                        "mailbox {} is staged twice (also on line {})",
                        l.mailbox,
                        line_of(text, prev)
                    ),
                ));
            }
            if l.mail_system.trim().is_empty() {
                return Err(invalid(at, "empty mail_system".to_string()));
            }
        }
        Ok(Pending {
            version: *version.get_ref(),
            links: raw.links.into_iter().map(Spanned::into_inner).collect(),
        })
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# crmsync staged links: written by `crmsync users auto-link` and `users link`, turned\n\
             # into sync users by `crmsync users save`. Nothing here syncs.\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
version = 1

[[links]]
associate_id = 101
login = "ANNA"
name = "Anna Berg"
mailbox = "anna.berg@contoso.example"
mailbox_id = "m1"
mail_system = "contoso"
source = "auto-link"
matched = "anna.berg@contoso.example"
staged = "2026-11-22T10:00:00Z"

[[links]]
associate_id = 105
login = "EVA"
mailbox = "room.oslo@contoso.example"
mailbox_id = "m6"
mail_system = "contoso"
source = "link"
staged = "2026-11-22T10:01:00Z"
"#;

    fn parse(text: &str) -> Result<Pending, PendingError> {
        Pending::parse(text, Path::new("/state/pending.toml"))
    }

    #[test]
    fn the_written_form_reads_back_the_same() {
        let pending = parse(TWO).unwrap();
        assert_eq!(pending.links.len(), 2);
        assert_eq!(pending.links[1].source, LinkSource::Link);
        assert_eq!(parse(&pending.to_toml()).unwrap(), pending);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = TWO.replace("associate_id = 105", "associate_id = 101");
        match parse(&bad) {
            Err(PendingError::Invalid { line, message, .. }) => {
                assert_eq!(line, 15);
                assert!(message.contains("also on line 4"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match parse(&TWO.replace("source = \"link\"", "source = \"magic\"")) {
            Err(PendingError::Invalid { line, .. }) => assert_eq!(line, 21),
            other => panic!("{other:?}"),
        }
        assert!(parse(&TWO.replace("version = 1", "version = 9")).is_err());
        assert!(parse("[[links]]\n").is_err());
    }
}
