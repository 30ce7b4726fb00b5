//! Settings: built-in defaults, then the configuration file, then `CRMSYNC__SECTION__KEY`
//! environment variables, validated into typed [`Settings`].
//!
//! Every key is documented in `config/crmsync.toml`. Unknown keys, wrong types and invalid
//! values are errors naming the key and where it was set (file and line, or variable).
//! Secrets come from files or `$CREDENTIALS_DIRECTORY`, never from the configuration text.

mod origin;
mod reader;
mod schema;
mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeTable;
use url::Url;

pub use origin::{ENV_PREFIX, Origin};
pub use reader::{Effective, Problem};
pub use secret::{REDACTED, Secret};

use crate::metrics::MetricsError;
use crate::registry::Rank;

/// Where the daemon looks when `--config` is not given. Missing is fine: defaults apply.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/crmsync/crmsync.toml";

#[derive(Debug, Clone)]
pub struct Settings {
    pub daemon: DaemonSettings,
    pub log: LogSettings,
    pub sync: SyncSettings,
    pub history: HistorySettings,
    pub metrics: MetricsSettings,
    pub superoffice: Option<SuperOfficeSettings>,
    pub mail_systems: BTreeMap<String, MailSystemSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    pub state_dir: PathBuf,
    pub shutdown_deadline: Duration,
    pub registry_poll_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `crmsync=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    pub interval: Duration,
    pub max_parallel_users: NonZeroU32,
    pub default_rank: Rank,
    /// The options `crmsync users save` gives new sync users.
    pub default_diary: bool,
    pub default_task: bool,
    pub default_contact: bool,
    /// Diary items from this many days before today...
    pub window_past_days: u32,
    /// ...to this many days after.
    pub window_future_days: u32,
    pub conflict_policy: crate::engine::ConflictPolicy,
    pub delete_wins: bool,
    pub delete_guard_share: f64,
    pub delete_guard_min: u64,
    /// How often each (user, kind) compares its pairs with the CRM's current ids.
    pub crm_check_interval: Duration,
    /// The longest wait between the retries of a user that keeps failing with transient
    /// errors (the first retry waits one interval, each next one twice as long).
    pub retry_max: Duration,
    /// The To Do list tasks go to, and the contact folder contacts go to.
    pub task_list: String,
    pub contact_folder: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySettings {
    pub cache_capacity_bytes: u64,
    pub flush_interval: Duration,
}

/// `[metrics]`: the Prometheus endpoint of each rank daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// The base address: rank N listens on its port plus N; port 0 lets every rank pick a
    /// free port.
    pub listen: SocketAddr,
}

impl MetricsSettings {
    /// The address rank `rank` serves its metrics on: the base port plus the rank (port 0
    /// stays 0, for a free port per rank). One base port serves every rank of a host
    /// without further configuration.
    pub fn address_for(&self, rank: Rank) -> Result<SocketAddr, MetricsError> {
        let base = self.listen.port();
        if base == 0 {
            return Ok(self.listen);
        }
        let port = base
            .checked_add(rank.get())
            .ok_or(MetricsError::PortOverflow {
                base: self.listen,
                rank,
            })?;
        let mut addr = self.listen;
        addr.set_port(port);
        Ok(addr)
    }
}

#[derive(Debug, Clone)]
pub struct SuperOfficeSettings {
    pub base_url: Url,
    pub auth: SuperOfficeAuth,
    pub budget: CallBudget,
}

/// The tenant's request budget and how many rank daemons share it. SuperOffice limits the
/// tenant, not a client: every rank daemon (of every host) that uses the tenant draws on the
/// same budget, so each takes an equal share of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    /// `[superoffice] calls_per_second`: the tenant's whole budget.
    pub calls_per_second: NonZeroU32,
    /// `[superoffice] shared_by_ranks`: the rank daemons that draw on it.
    pub shared_by_ranks: NonZeroU32,
}

impl Default for CallBudget {
    /// SuperOffice's documented "no more than 10 API calls per second", for one daemon.
    fn default() -> Self {
        CallBudget {
            calls_per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            shared_by_ranks: NonZeroU32::MIN,
        }
    }
}

#[derive(Debug, Clone)]
pub enum SuperOfficeAuth {
    /// Onsite installations: HTTP Basic with a user name and password.
    Basic { username: String, password: Secret },
    /// SuperOffice Online: the system-user flow of a server-to-server application.
    SystemUser {
        context_identifier: String,
        client_secret: Secret,
        private_key: Secret,
        system_user_token: Secret,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSystemKind {
    Graph,
}

#[derive(Debug, Clone)]
pub struct MailSystemSettings {
    pub name: String,
    pub kind: MailSystemKind,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub base_url: Url,
    pub authority_url: Url,
}

/// What to load: the file (explicit or default) and the environment to read overrides and
/// `CREDENTIALS_DIRECTORY` from. Tests pass their own environment instead of mutating the
/// process's.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The file named with `--config`: it must exist.
    pub config_path: Option<PathBuf>,
    /// The file read when none is named: it may be absent.
    pub default_path: PathBuf,
    pub env: Vec<(String, String)>,
}

impl LoadOptions {
    pub fn from_process(config_path: Option<PathBuf>) -> Self {
        LoadOptions {
            config_path,
            default_path: PathBuf::from(DEFAULT_CONFIG_PATH),
            env: std::env::vars().collect(),
        }
    }

    /// The file that is read: the named one, or the default location.
    pub fn file(&self) -> &Path {
        self.config_path.as_deref().unwrap_or(&self.default_path)
    }
}

/// Validated settings plus the effective configuration, key by key, for `config check`.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub effective: Vec<Effective>,
    /// The file that was read, if any (a missing default file is not read).
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "configuration file {} does not exist (named with --config); create it or leave out --config",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot read configuration file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not valid TOML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}", ProblemList(problems))]
    Invalid { problems: Vec<Problem> },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the configuration has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Loads and validates the settings.
pub fn load(options: &LoadOptions) -> Result<Loaded, SettingsError> {
    let path = options.file().to_path_buf();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.config_path.is_none() => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SettingsError::Missing { path });
        }
        Err(source) => return Err(SettingsError::Unreadable { path, source }),
    };

    let mut sources = origin::SourceMap::new();
    if let Some(text) = &text {
        let table = DeTable::parse(text).map_err(|e| {
            let (line, column) =
                crate::text::line_and_column(text, e.span().map_or(0, |s| s.start));
            SettingsError::Syntax {
                path: path.clone(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        sources.add_file(&path, text, table.get_ref());
    }

    let overrides: BTreeMap<String, String> = options
        .env
        .iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .cloned()
        .collect();
    sources.add_env(overrides.iter());
    let credentials_dir = options
        .env
        .iter()
        .find(|(name, value)| name == "CREDENTIALS_DIRECTORY" && !value.is_empty())
        .map(|(_, value)| PathBuf::from(value));

    let mut reader = reader::Reader::new(&sources, credentials_dir);
    for (name, _) in &options.env {
        if name.starts_with("CRMSYNC") && !name.starts_with(ENV_PREFIX) {
            reader.problem(
                name,
                format!(
                    "this environment variable is not read: settings are overridden with \
                     {ENV_PREFIX}SECTION__KEY (two underscores after CRMSYNC)"
                ),
            );
        }
    }

    let mut builder = config::Config::builder();
    if let Some(text) = &text {
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
    }
    let layered = builder
        .add_source(
            config::Environment::with_prefix("CRMSYNC")
                .separator("__")
                .source(Some(overrides.into_iter().collect())),
        )
        .build()
        .map_err(|e| SettingsError::Invalid {
            problems: vec![Problem {
                key: String::new(),
                origin: Origin::Default,
                message: e.to_string(),
            }],
        })?;

    let settings = schema::read(layered, &mut reader);
    if !reader.problems.is_empty() || settings.is_none() {
        let mut problems = reader.problems;
        // In the order an operator reads them: variables, then the file top to bottom.
        problems.sort_by_key(|p| match &p.origin {
            Origin::Env { .. } => (0, 0),
            Origin::File { line, .. } => (1, *line),
            Origin::Default => (2, 0),
        });
        return Err(SettingsError::Invalid { problems });
    }
    let settings = settings.ok_or(SettingsError::Invalid {
        problems: Vec::new(),
    })?;
    Ok(Loaded {
        settings,
        effective: reader.effective,
        file: text.map(|_| path),
    })
}

impl Loaded {
    /// The effective configuration as commented TOML, secrets redacted.
    pub fn render(&self) -> String {
        let mut out = String::from("# crmsync effective configuration\n");
        out.push_str(&format!(
            "# read from: built-in defaults, {}, environment ({ENV_PREFIX}*)\n",
            match &self.file {
                Some(path) => path.display().to_string(),
                None => "no file".to_string(),
            }
        ));
        let mut sections: BTreeMap<&str, Vec<&Effective>> = BTreeMap::new();
        for entry in &self.effective {
            let section = entry.key.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
            sections.entry(section).or_default().push(entry);
        }
        for (section, entries) in sections {
            out.push_str(&format!("\n[{section}]\n"));
            let width = entries
                .iter()
                .map(|e| leaf(&e.key).len() + 3 + e.value.len())
                .max()
                .unwrap_or(0);
            for e in entries {
                let assignment = format!("{} = {}", leaf(&e.key), e.value);
                out.push_str(&format!("{assignment:<width$}  # {}\n", e.origin));
            }
        }
        out
    }
}

fn leaf(key: &str) -> &str {
    key.rsplit_once('.').map(|(_, k)| k).unwrap_or(key)
}

#[cfg(test)]
mod tests;
