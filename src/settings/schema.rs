//! The configuration schema: raw sections as they arrive from the layered sources, and their
//! reading into [`Settings`]. Defaults here match `config/crmsync.toml` (a test checks).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use config::{ConfigError, Value};
use serde::Deserialize;

use super::reader::Reader;
use super::{
    CallBudget, DaemonSettings, HistorySettings, LogFormat, LogSettings, MailSystemKind,
    MailSystemSettings, MetricsSettings, Settings, SuperOfficeAuth, SuperOfficeSettings,
    SyncSettings,
};
use crate::engine::ConflictPolicy;
use crate::registry::Rank;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/crmsync";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9100";

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSettings {
    daemon: RawDaemon,
    log: RawLog,
    sync: RawSync,
    history: RawHistory,
    metrics: RawMetrics,
    superoffice: Option<RawSuperOffice>,
    mail_systems: BTreeMap<String, RawMailSystem>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawDaemon {
    state_dir: Option<Value>,
    shutdown_deadline: Option<Value>,
    registry_poll_interval: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLog {
    format: Option<Value>,
    level: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSync {
    interval: Option<Value>,
    max_parallel_users: Option<Value>,
    default_rank: Option<Value>,
    default_diary: Option<Value>,
    default_task: Option<Value>,
    default_contact: Option<Value>,
    window_past_days: Option<Value>,
    window_future_days: Option<Value>,
    conflict_policy: Option<Value>,
    delete_wins: Option<Value>,
    delete_guard_share: Option<Value>,
    delete_guard_min: Option<Value>,
    crm_check_interval: Option<Value>,
    retry_max: Option<Value>,
    task_list: Option<Value>,
    contact_folder: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawHistory {
    cache_capacity_mib: Option<Value>,
    flush_interval: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMetrics {
    enabled: Option<Value>,
    listen: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSuperOffice {
    base_url: Option<Value>,
    auth: Option<Value>,
    username: Option<Value>,
    password_file: Option<Value>,
    password_credential: Option<Value>,
    context_identifier: Option<Value>,
    client_secret_file: Option<Value>,
    client_secret_credential: Option<Value>,
    private_key_file: Option<Value>,
    private_key_credential: Option<Value>,
    system_user_token_file: Option<Value>,
    system_user_token_credential: Option<Value>,
    calls_per_second: Option<Value>,
    shared_by_ranks: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMailSystem {
    kind: Option<Value>,
    tenant_id: Option<Value>,
    client_id: Option<Value>,
    client_secret_file: Option<Value>,
    client_secret_credential: Option<Value>,
    base_url: Option<Value>,
    authority_url: Option<Value>,
}

/// Keys that hold a secret: writing them in the configuration text is refused with a hint.
const SECRET_KEYS: &[&str] = &[
    "password",
    "client_secret",
    "private_key",
    "system_user_token",
];

fn dotted(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    let join = |parent: &Path<'_>, leaf: String| {
        let parent = dotted(parent);
        if parent.is_empty() {
            leaf
        } else {
            format!("{parent}.{leaf}")
        }
    };
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join(parent, index.to_string()),
        Path::Map { parent, key } => join(parent, key.clone()),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => dotted(parent),
    }
}

fn unknown_key_message(key: &str, known: &[String]) -> String {
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    if SECRET_KEYS.contains(&leaf) {
        return format!(
            "secrets are not accepted in the configuration: put it in a file readable only by crmsync \
             and set {leaf}_file, or pass it as a systemd credential (see {leaf}_credential)"
        );
    }
    let suggestion = known
        .iter()
        .filter_map(|k| k.rsplit_once('.'))
        .filter(|(s, _)| *s == section)
        .map(|(_, k)| (edit_distance(k, leaf), k))
        .filter(|(d, _)| *d <= 2)
        .min();
    match suggestion {
        Some((_, k)) => format!("unknown key; did you mean {section}.{k}?"),
        None => "unknown key (every key is documented in config/crmsync.toml; check the spelling and the section)"
            .to_string(),
    }
}

/// Levenshtein distance, for suggesting the key a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn error_key(e: &ConfigError) -> String {
    match e {
        ConfigError::Type { key: Some(k), .. } | ConfigError::At { key: Some(k), .. } => k.clone(),
        _ => String::new(),
    }
}

pub(super) fn read(layered: config::Config, r: &mut Reader<'_>) -> Option<Settings> {
    let mut unknown = Vec::new();
    let raw: RawSettings =
        match serde_ignored::deserialize(layered, |path| unknown.push(dotted(&path))) {
            Ok(raw) => raw,
            Err(e) => {
                r.problem(&error_key(&e), e.to_string());
                return None;
            }
        };

    let daemon = DaemonSettings {
        state_dir: r.absolute_path("daemon.state_dir", raw.daemon.state_dir, DEFAULT_STATE_DIR),
        shutdown_deadline: r.duration(
            "daemon.shutdown_deadline",
            raw.daemon.shutdown_deadline,
            "20s",
            Duration::from_millis(100),
        ),
        registry_poll_interval: r.duration(
            "daemon.registry_poll_interval",
            raw.daemon.registry_poll_interval,
            "1s",
            Duration::from_millis(50),
        ),
    };

    let format = match r.choice("log.format", raw.log.format, "text", &["text", "json"]) {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let level = r.string("log.level", raw.log.level, "info");
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&level) {
        r.problem(
            "log.level",
            format!("{level:?} is not a log filter ({e}); use a level such as \"info\" or directives such as \"crmsync=debug,info\""),
        );
    }
    let log = LogSettings { format, level };

    let sync = SyncSettings {
        interval: r.duration(
            "sync.interval",
            raw.sync.interval,
            "60s",
            Duration::from_secs(1),
        ),
        max_parallel_users: NonZeroU32::new(r.uint(
            "sync.max_parallel_users",
            raw.sync.max_parallel_users,
            64,
            1..=10_000,
        ) as u32)
        .unwrap_or(NonZeroU32::MIN),
        default_rank: Rank::new(r.uint(
            "sync.default_rank",
            raw.sync.default_rank,
            1,
            u64::from(Rank::MIN.get())..=u64::from(Rank::MAX.get()),
        ) as u16)
        .unwrap_or(Rank::MIN),
        default_diary: r.boolean("sync.default_diary", raw.sync.default_diary, true),
        default_task: r.boolean("sync.default_task", raw.sync.default_task, true),
        default_contact: r.boolean("sync.default_contact", raw.sync.default_contact, true),
        window_past_days: r.uint(
            "sync.window_past_days",
            raw.sync.window_past_days,
            30,
            0..=3650,
        ) as u32,
        window_future_days: r.uint(
            "sync.window_future_days",
            raw.sync.window_future_days,
            120,
            1..=3650,
        ) as u32,
        conflict_policy: match r.choice(
            "sync.conflict_policy",
            raw.sync.conflict_policy,
            "newest",
            &["newest", "crm", "exchange"],
        ) {
            "crm" => ConflictPolicy::Crm,
            "exchange" => ConflictPolicy::Exchange,
            _ => ConflictPolicy::Newest,
        },
        delete_wins: r.boolean("sync.delete_wins", raw.sync.delete_wins, false),
        delete_guard_share: r.fraction("sync.delete_guard_share", raw.sync.delete_guard_share, 0.5),
        delete_guard_min: r.uint(
            "sync.delete_guard_min",
            raw.sync.delete_guard_min,
            10,
            0..=1_000_000,
        ),
        crm_check_interval: r.duration(
            "sync.crm_check_interval",
            raw.sync.crm_check_interval,
            "1h",
            Duration::from_secs(60),
        ),
        retry_max: r.duration(
            "sync.retry_max",
            raw.sync.retry_max,
            "15m",
            Duration::from_secs(1),
        ),
        task_list: r.string("sync.task_list", raw.sync.task_list, "SuperOffice"),
        contact_folder: r.string(
            "sync.contact_folder",
            raw.sync.contact_folder,
            "SuperOffice",
        ),
    };

    let history = HistorySettings {
        cache_capacity_bytes: r.uint(
            "history.cache_capacity_mib",
            raw.history.cache_capacity_mib,
            64,
            1..=65_536,
        ) * 1024
            * 1024,
        flush_interval: r.duration(
            "history.flush_interval",
            raw.history.flush_interval,
            "500ms",
            Duration::from_millis(10),
        ),
    };

    let metrics = MetricsSettings {
        enabled: r.boolean("metrics.enabled", raw.metrics.enabled, true),
        listen: r.socket_addr("metrics.listen", raw.metrics.listen, DEFAULT_METRICS_LISTEN),
    };

    let superoffice = raw.superoffice.and_then(|so| read_superoffice(so, r));

    let mut mail_systems = BTreeMap::new();
    for (name, ms) in raw.mail_systems {
        if let Some(settings) = read_mail_system(&name, ms, r) {
            mail_systems.insert(name, settings);
        }
    }

    // After the known keys are read, so that a misspelt key can be matched with them.
    for key in unknown {
        let message = unknown_key_message(&key, &r.known);
        r.problem(&key, message);
    }

    Some(Settings {
        daemon,
        log,
        sync,
        history,
        metrics,
        superoffice,
        mail_systems,
    })
}

/// Flags keys that the chosen SuperOffice authentication does not use.
fn not_used_with(r: &mut Reader<'_>, auth: &str, keys: &[(&str, &Option<Value>)]) {
    for (key, value) in keys {
        if value.is_some() {
            r.problem(
                &format!("superoffice.{key}"),
                format!("is not used with auth = \"{auth}\"; remove it or change superoffice.auth"),
            );
        }
    }
}

fn read_superoffice(so: RawSuperOffice, r: &mut Reader<'_>) -> Option<SuperOfficeSettings> {
    let base_url = r.url("superoffice.base_url", so.base_url, None);
    let auth = r.choice(
        "superoffice.auth",
        so.auth,
        "system-user",
        &["system-user", "basic"],
    );
    // Read before the authentication, whose missing keys end the section early.
    let budget = CallBudget {
        calls_per_second: NonZeroU32::new(r.uint(
            "superoffice.calls_per_second",
            so.calls_per_second,
            10,
            1..=1000,
        ) as u32)
        .unwrap_or(NonZeroU32::MIN),
        shared_by_ranks: NonZeroU32::new(r.uint(
            "superoffice.shared_by_ranks",
            so.shared_by_ranks,
            1,
            1..=999,
        ) as u32)
        .unwrap_or(NonZeroU32::MIN),
    };
    let auth = if auth == "basic" {
        not_used_with(
            r,
            auth,
            &[
                ("context_identifier", &so.context_identifier),
                ("client_secret_file", &so.client_secret_file),
                ("client_secret_credential", &so.client_secret_credential),
                ("private_key_file", &so.private_key_file),
                ("private_key_credential", &so.private_key_credential),
                ("system_user_token_file", &so.system_user_token_file),
                (
                    "system_user_token_credential",
                    &so.system_user_token_credential,
                ),
            ],
        );
        let username = r.required_string("superoffice.username", so.username);
        let password = r.secret(
            "superoffice.password",
            so.password_file,
            so.password_credential,
            "superoffice-password",
        );
        SuperOfficeAuth::Basic {
            username: username?,
            password: password?,
        }
    } else {
        not_used_with(
            r,
            auth,
            &[
                ("username", &so.username),
                ("password_file", &so.password_file),
                ("password_credential", &so.password_credential),
            ],
        );
        let context_identifier =
            r.required_string("superoffice.context_identifier", so.context_identifier);
        if let Some(ctx) = &context_identifier {
            let digits = ctx.strip_prefix("Cust").unwrap_or("");
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                r.problem(
                    "superoffice.context_identifier",
                    format!(
                        "{ctx:?} is not a SuperOffice context identifier such as \"Cust12345\""
                    ),
                );
            }
        }
        let client_secret = r.secret(
            "superoffice.client_secret",
            so.client_secret_file,
            so.client_secret_credential,
            "superoffice-client-secret",
        );
        let private_key = r.secret(
            "superoffice.private_key",
            so.private_key_file,
            so.private_key_credential,
            "superoffice-private-key",
        );
        let system_user_token = r.secret(
            "superoffice.system_user_token",
            so.system_user_token_file,
            so.system_user_token_credential,
            "superoffice-system-user-token",
        );
        SuperOfficeAuth::SystemUser {
            context_identifier: context_identifier?,
            client_secret: client_secret?,
            private_key: private_key?,
            system_user_token: system_user_token?,
        }
    };
    Some(SuperOfficeSettings {
        base_url: base_url?,
        auth,
        budget,
    })
}

/// Mail system names appear in keys, credential names and environment variables.
fn valid_mail_system_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 63
        && !name.contains("__")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn read_mail_system(
    name: &str,
    ms: RawMailSystem,
    r: &mut Reader<'_>,
) -> Option<MailSystemSettings> {
    let prefix = format!("mail_systems.{name}");
    if !valid_mail_system_name(name) {
        r.problem(
            &prefix,
            format!("{name:?} is not a valid mail system name: use lower-case letters, digits, '-' and '_'"),
        );
        return None;
    }
    let key = |leaf: &str| format!("{prefix}.{leaf}");
    r.choice(&key("kind"), ms.kind, "graph", &["graph"]);
    let tenant_id = r.required_string(&key("tenant_id"), ms.tenant_id);
    let client_id = r.required_string(&key("client_id"), ms.client_id);
    let client_secret = r.secret(
        &key("client_secret"),
        ms.client_secret_file,
        ms.client_secret_credential,
        &format!("graph-{name}-client-secret"),
    );
    let base_url = r.url(&key("base_url"), ms.base_url, Some(DEFAULT_GRAPH_URL));
    let authority_url = r.url(
        &key("authority_url"),
        ms.authority_url,
        Some(DEFAULT_AUTHORITY_URL),
    );
    Some(MailSystemSettings {
        name: name.to_string(),
        kind: MailSystemKind::Graph,
        tenant_id: tenant_id?,
        client_id: client_id?,
        client_secret: client_secret?,
        base_url: base_url?,
        authority_url: authority_url?,
    })
}
