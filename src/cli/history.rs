//! `crmsync history stats`: what a stopped rank's history holds, per user and kind.

use std::io::Write;

use serde::Serialize;

use crate::history::{History, HistoryOptions, KindStats, LockError, RankLock};
use crate::registry::{Kind, Rank, Registry, SyncUser};
use crate::runtime::RunError;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The rank whose history to read (its daemon must be stopped).
    #[arg(long, value_name = "N")]
    pub rank: Rank,
    /// Only this user: sync user id, associate login, associate id or mailbox address.
    pub user: Option<String>,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct UserStats {
    user: String,
    associate: Option<String>,
    mailbox: Option<String>,
    in_registry: bool,
    kinds: Vec<(Kind, KindStats)>,
    checksum: String,
}

#[derive(Serialize)]
struct RankStats {
    rank: Rank,
    path: String,
    size_on_disk: u64,
    users: Vec<UserStats>,
}

fn matches(user: &SyncUser, wanted: &str) -> bool {
    user.id.as_str() == wanted
        || user.associate_id.to_string() == wanted
        || user.mailbox.eq_ignore_ascii_case(wanted)
        || user
            .login
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case(wanted))
}

pub fn stats(settings: &Settings, args: &StatsArgs) -> anyhow::Result<()> {
    let rank_dir = settings.daemon.state_dir.join(args.rank.dir_name());
    if !rank_dir.join(crate::history::HISTORY_DIR).exists() {
        anyhow::bail!(
            "rank {} has no history in {} (has its daemon ever run?)",
            args.rank,
            settings.daemon.state_dir.display()
        );
    }
    // Reading needs the rank to itself: sled is opened by one process at a time.
    let _lock = RankLock::acquire(&rank_dir).map_err(|e| match e {
        LockError::Held { holder, .. } => anyhow::Error::new(RunError::AlreadyRunning {
            rank: args.rank,
            dir: rank_dir.clone(),
            holder,
        })
        .context(
            "history stats reads a stopped rank: stop its daemon first, or see `crmsync status`",
        ),
        other => anyhow::Error::new(other),
    })?;
    let opened = History::open(
        &rank_dir,
        &HistoryOptions {
            cache_capacity_bytes: settings.history.cache_capacity_bytes,
            flush_interval: settings.history.flush_interval,
        },
    )?;
    if let Some(moved) = &opened.moved_aside {
        eprintln!(
            "crmsync: the history database was corrupt and was moved aside to {}",
            moved.to.display()
        );
    }
    let history = opened.history;
    let registry = Registry::read(&Registry::path_in(&settings.daemon.state_dir))?;
    let mut users = Vec::new();
    for id in history.user_ids() {
        let known = registry.users.iter().find(|u| u.id == id);
        if let Some(wanted) = &args.user
            && !(id.as_str() == wanted || known.is_some_and(|u| matches(u, wanted)))
        {
            continue;
        }
        let user = history.user(&id)?;
        let kinds = Kind::ALL
            .into_iter()
            .map(|k| Ok((k, user.stats(k)?)))
            .collect::<Result<Vec<_>, crate::history::HistoryError>>()?;
        users.push(UserStats {
            user: id.to_string(),
            associate: known.map(|u| match &u.login {
                Some(login) => format!("{login} ({})", u.associate_id),
                None => u.associate_id.to_string(),
            }),
            mailbox: known.map(|u| u.mailbox.clone()),
            in_registry: known.is_some(),
            kinds,
            checksum: user.checksum()?,
        });
    }
    if let Some(wanted) = &args.user
        && users.is_empty()
    {
        anyhow::bail!("no history for user {wanted:?} on rank {}", args.rank);
    }
    let stats = RankStats {
        rank: args.rank,
        path: history.path().display().to_string(),
        size_on_disk: history.size_on_disk()?,
        users,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "rank {}: {} ({} bytes on disk), {} user{} with history",
        stats.rank,
        stats.path,
        stats.size_on_disk,
        stats.users.len(),
        if stats.users.len() == 1 { "" } else { "s" }
    )?;
    if stats.users.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:<34} {:<20} {:<30} {:<8} {:>7} {:>7}  LAST CURSOR",
        "USER", "ASSOCIATE", "MAILBOX", "KIND", "PAIRS", "INTENTS"
    )?;
    for user in &stats.users {
        for (i, (kind, k)) in user.kinds.iter().enumerate() {
            let (id, associate, mailbox) = if i == 0 {
                (
                    user.user.as_str(),
                    user.associate.as_deref().unwrap_or("(not in registry)"),
                    user.mailbox.as_deref().unwrap_or(""),
                )
            } else {
                ("", "", "")
            };
            let last = k
                .cursor_committed
                .and_then(|s| jiff::Timestamp::from_second(s).ok())
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
                .unwrap_or_else(|| "-".to_string());
            writeln!(
                out,
                "{id:<34} {associate:<20} {mailbox:<30} {:<8} {:>7} {:>7}  {last}",
                kind.as_str(),
                k.pairs,
                k.intents
            )?;
        }
    }
    Ok(())
}
