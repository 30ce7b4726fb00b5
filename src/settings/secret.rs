//! Secrets: read from a file named by a `*_file` key or from the systemd credential
//! directory, never from the configuration text, and never printed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A secret value. `Debug` and `Display` print `<redacted>`; only [`Secret::expose`]
/// gives the value, for the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

pub const REDACTED: &str = "<redacted>";

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where a secret was read from (shown by `config check`; a path is not secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Credential { name: String, path: PathBuf },
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Credential { name, path } => {
                write!(f, "credential {name} ({})", path.display())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is empty")]
    Empty { path: PathBuf },
    #[error("{path} is not UTF-8 text")]
    NotText { path: PathBuf },
}

/// Reads a secret file. A trailing line break (as editors write it) is not part of the secret.
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    let bytes = std::fs::read(path).map_err(|source| SecretError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText {
        path: path.to_path_buf(),
    })?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(SecretError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Secret::new(trimmed))
}

/// Finds credential `name` in `$CREDENTIALS_DIRECTORY`: as `name` (one `LoadCredential=name:PATH`
/// line) or as `crmsync_name` (the whole directory loaded with `LoadCredential=crmsync:DIR`).
pub fn find_credential(directory: &Path, name: &str) -> Option<PathBuf> {
    [name.to_string(), format!("crmsync_{name}")]
        .into_iter()
        .map(|candidate| directory.join(candidate))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(<redacted>)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn file_secrets_lose_the_final_line_break_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, " a b \n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap().expose(), " a b ");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_secret_file(&path),
            Err(SecretError::Empty { .. })
        ));
    }

    #[test]
    fn credentials_are_found_in_both_layouts() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_credential(dir.path(), "x"), None);
        std::fs::write(dir.path().join("crmsync_x"), "v").unwrap();
        assert_eq!(
            find_credential(dir.path(), "x"),
            Some(dir.path().join("crmsync_x"))
        );
        std::fs::write(dir.path().join("x"), "v").unwrap();
        assert_eq!(find_credential(dir.path(), "x"), Some(dir.path().join("x")));
    }
}
