//! Where each configuration value came from: a built-in default, a line of the
//! configuration file, or an environment variable. Errors and `config check`
//! name it so an operator knows what to edit.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::text::line_of;

/// Prefix of environment variables that override settings: `CRMSYNC__SECTION__KEY`.
pub const ENV_PREFIX: &str = "CRMSYNC__";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: usize },
    Env { var: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// Maps dotted keys (`sync.interval`) to the place that set them last.
#[derive(Debug, Default)]
pub struct SourceMap {
    file: Option<PathBuf>,
    file_lines: HashMap<String, usize>,
    env_vars: HashMap<String, String>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the line of every key of a parsed configuration file.
    pub fn add_file(&mut self, path: &Path, text: &str, table: &DeTable<'_>) {
        self.file = Some(path.to_path_buf());
        let mut lines = HashMap::new();
        collect_lines(text, "", table, &mut lines);
        self.file_lines = lines;
    }

    /// Records the override variables, keyed the way the `config` crate keys them
    /// (lower case, `__` becomes `.`).
    pub fn add_env<'a>(&mut self, vars: impl IntoIterator<Item = (&'a String, &'a String)>) {
        for (name, _) in vars {
            if let Some(key) = env_key(name) {
                self.env_vars.insert(key, name.clone());
            }
        }
    }

    /// The origin of `key`: environment variables win over the file, the file over defaults.
    /// A table key (`mail_systems.contoso`) set only through its children reports the first child.
    pub fn origin(&self, key: &str) -> Origin {
        if let Some(var) = self.env_vars.get(key) {
            return Origin::Env { var: var.clone() };
        }
        if let (Some(path), Some(line)) = (&self.file, self.file_lines.get(key)) {
            return Origin::File {
                path: path.clone(),
                line: *line,
            };
        }
        let prefix = format!("{key}.");
        if let Some((_, var)) = self
            .env_vars
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .min()
        {
            return Origin::Env { var: var.clone() };
        }
        if let (Some(path), Some(line)) = (
            &self.file,
            self.file_lines
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, line)| *line)
                .min(),
        ) {
            return Origin::File {
                path: path.clone(),
                line,
            };
        }
        Origin::Default
    }
}

/// `CRMSYNC__SYNC__INTERVAL` -> `sync.interval`, as the `config` crate maps it.
pub fn env_key(var: &str) -> Option<String> {
    let lower = var.to_lowercase();
    let rest = lower.strip_prefix(&ENV_PREFIX.to_lowercase())?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.replace("__", "."))
}

fn collect_lines(text: &str, prefix: &str, table: &DeTable<'_>, out: &mut HashMap<String, usize>) {
    for (key, value) in table.iter() {
        let dotted = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.insert(dotted.clone(), line_of(text, key.span().start));
        if let DeValue::Table(inner) = value.get_ref() {
            collect_lines(text, &dotted, inner, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys_follow_the_config_crate() {
        assert_eq!(
            env_key("CRMSYNC__SYNC__INTERVAL").as_deref(),
            Some("sync.interval")
        );
        assert_eq!(
            env_key("CRMSYNC__MAIL_SYSTEMS__CONTOSO__CLIENT_ID").as_deref(),
            Some("mail_systems.contoso.client_id")
        );
        assert_eq!(env_key("CRMSYNC_SYNC__INTERVAL"), None);
        assert_eq!(env_key("PATH"), None);
    }

    #[test]
    fn file_lines_name_nested_keys() {
        let text = "[daemon]\nstate_dir = \"/x\"\n\n[mail_systems.contoso]\nkind = \"graph\"\n";
        let table = DeTable::parse(text).unwrap();
        let mut map = SourceMap::new();
        map.add_file(Path::new("/etc/c.toml"), text, table.get_ref());
        assert_eq!(
            map.origin("daemon.state_dir"),
            Origin::File {
                path: "/etc/c.toml".into(),
                line: 2
            }
        );
        assert_eq!(
            map.origin("mail_systems.contoso.kind"),
            Origin::File {
                path: "/etc/c.toml".into(),
                line: 5
            }
        );
        assert_eq!(map.origin("sync.interval"), Origin::Default);
    }

    #[test]
    fn environment_wins_over_file() {
        let text = "[sync]\ninterval = \"5s\"\n";
        let table = DeTable::parse(text).unwrap();
        let mut map = SourceMap::new();
        map.add_file(Path::new("/c.toml"), text, table.get_ref());
        let vars = [("CRMSYNC__SYNC__INTERVAL".to_string(), "10s".to_string())];
        map.add_env(vars.iter().map(|(a, b)| (a, b)));
        assert_eq!(
            map.origin("sync.interval"),
            Origin::Env {
                var: "CRMSYNC__SYNC__INTERVAL".into()
            }
        );
    }
}
