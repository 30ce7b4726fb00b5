//! Save Users Options and Server Rank (`set`), `disable`, `enable`, and `list`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::links::prune_saved;
use super::moves::Plan;
use super::output::{Table, Tone, colour_on_stdout, count, when};
use super::ranks::{self, Ranks};
use super::{Ctx, KindArgs, UsersError};
use crate::registry::{Rank, SyncUser, resolve};

fn label(u: &SyncUser) -> String {
    format!(
        "{} ({}) <-> {}",
        u.login.as_deref().unwrap_or("?"),
        u.associate_id,
        u.mailbox
    )
}

fn kinds_text(u: &SyncUser) -> String {
    if u.is_disabled() {
        return "every kind off, history kept".into();
    }
    let on = |b: bool| if b { "on" } else { "off" };
    format!(
        "diary {}, task {}, contact {}",
        on(u.diary),
        on(u.task),
        on(u.contact)
    )
}

pub async fn set(
    ctx: &Ctx<'_>,
    queries: &[String],
    kinds: KindArgs,
    rank: Option<Rank>,
    fresh: bool,
) -> anyhow::Result<()> {
    if kinds.is_empty() && rank.is_none() {
        return Err(UsersError::Usage(
            "nothing to change: give --diary, --task or --contact on|off, or --rank N".into(),
        )
        .into());
    }
    let state_dir = ctx.store.state_dir().to_path_buf();
    let lock = ctx.lock()?;
    let mut registry = ctx.store.registry()?;
    let pending = ctx.store.pending()?;
    let original = registry.clone();
    let swept = ranks::sweep(&state_dir, &mut registry);
    let chosen = resolve::saved_users(&registry, &pending, queries)?;

    let mut ranks = Ranks::new(ctx.settings);
    let mut plan = Plan::default();
    let mut notes: Vec<Vec<String>> = Vec::new();
    let mut change = || -> anyhow::Result<()> {
        for &i in &chosen {
            let mut user = registry.users[i].clone();
            let mut lines = Vec::new();
            if let Some(s) = kinds.diary {
                user.diary = s.on();
            }
            if let Some(s) = kinds.task {
                user.task = s.on();
            }
            if let Some(s) = kinds.contact {
                user.contact = s.on();
            }
            if let Some(to) = rank.filter(|to| *to != user.rank) {
                let (moved_from, said) = plan.one(&mut ranks, &state_dir, &user, to, fresh)?;
                (user.rank, user.moved_from) = (to, moved_from);
                lines = said;
            }
            registry.users[i] = user;
            notes.push(lines);
        }
        if registry != original {
            ranks::write(&lock, &registry, &swept)?;
        }
        Ok(())
    };
    if let Err(e) = change() {
        plan.undo();
        return Err(e.context("nothing was changed"));
    }
    for path in &plan.abandoned {
        let _ = std::fs::remove_file(path);
    }
    for (from, id) in &plan.drops {
        ranks.drop_user(*from, id).await.map_err(|e| {
            e.context(format!(
                "the registry is changed, but the old history of {id} in rank {from} is still there"
            ))
        })?;
    }
    drop(ranks);
    drop(lock);

    let mut out = std::io::stdout().lock();
    for (&i, lines) in chosen.iter().zip(&notes) {
        let u = &registry.users[i];
        writeln!(out, "{}: {}, rank {}", label(u), kinds_text(u), u.rank)?;
        for line in lines {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

/// Sets the kinds of the named users with `change`; prints each.
fn change_kinds(
    ctx: &Ctx<'_>,
    queries: &[String],
    change: impl Fn(&mut SyncUser) -> Result<&'static str, UsersError>,
) -> anyhow::Result<()> {
    let lock = ctx.lock()?;
    let mut registry = ctx.store.registry()?;
    let pending = ctx.store.pending()?;
    let original = registry.clone();
    let swept = ranks::sweep(ctx.store.state_dir(), &mut registry);
    let chosen = resolve::saved_users(&registry, &pending, queries)?;
    let mut done = Vec::new();
    for &i in &chosen {
        done.push(change(&mut registry.users[i])?);
    }
    if registry != original {
        ranks::write(&lock, &registry, &swept)?;
    }
    drop(lock);
    for (&i, what) in chosen.iter().zip(done) {
        let u = &registry.users[i];
        println!("{}: {what}: {}", label(u), kinds_text(u));
    }
    Ok(())
}

pub fn disable(ctx: &Ctx<'_>, queries: &[String]) -> anyhow::Result<()> {
    change_kinds(ctx, queries, |u| {
        if u.is_disabled() {
            return Ok("already disabled");
        }
        (u.diary, u.task, u.contact) = (false, false, false);
        Ok("disabled")
    })
}

pub fn enable(ctx: &Ctx<'_>, queries: &[String]) -> anyhow::Result<()> {
    let sync = &ctx.settings.sync;
    let defaults = (sync.default_diary, sync.default_task, sync.default_contact);
    if defaults == (false, false, false) {
        return Err(UsersError::Config(
            "`users enable` switches on the kinds of [sync] default_diary, default_task and \
             default_contact, but all three are false; use `crmsync users set USER --diary on` \
             (or --task, --contact) instead"
                .into(),
        )
        .into());
    }
    change_kinds(ctx, queries, |u| {
        if !u.is_disabled() {
            return Ok("already enabled");
        }
        (u.diary, u.task, u.contact) = defaults;
        Ok("enabled")
    })
}

/// Asks the users' daemons to try them again: a new resume request in each registry entry.
pub fn resume(ctx: &Ctx<'_>, queries: &[String], allow_deletes: bool) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    change_kinds(ctx, queries, |u| {
        let generation = u.resume.as_ref().map_or(0, |r| r.generation) + 1;
        u.resume = Some(crate::registry::Resume {
            generation,
            allow_deletes,
            at: now,
        });
        Ok(if allow_deletes {
            "resumed; its next pass of each kind may delete what was deleted on the other side"
        } else {
            "resumed"
        })
    })
}

/// A rank's status file as far as `list` reads it (`STATE_DIR/rank-N/status.json`, written
/// by the daemon): `{"users": [{"id": "...", "state": "failed", "detail": "..."}]}`.
#[derive(Deserialize)]
struct StatusFile {
    #[serde(default)]
    users: Vec<StatusUser>,
}

#[derive(Deserialize)]
struct StatusUser {
    id: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// The users of a rank its daemon holds back (failed, paused, backing off), with the state
/// and the reason; an absent or unreadable file is no news.
fn failures(state_dir: &Path, rank: Rank) -> BTreeMap<String, (&'static str, String)> {
    let path = state_dir.join(rank.dir_name()).join("status.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return BTreeMap::new();
    };
    match serde_json::from_str::<StatusFile>(&text) {
        Ok(status) => status
            .users
            .into_iter()
            .filter_map(|u| {
                let state = match u.state.as_deref() {
                    Some("failed") => "failed",
                    Some("paused") => "paused",
                    Some("backing_off") => "backing off",
                    _ => return None,
                };
                Some((u.id, (state, u.detail.unwrap_or_default())))
            })
            .collect(),
        Err(e) => {
            eprintln!(
                "crmsync: {} cannot be read ({e}); states are shown without it",
                path.display()
            );
            BTreeMap::new()
        }
    }
}

#[derive(Serialize)]
struct Row {
    id: Option<String>,
    associate_id: u32,
    login: Option<String>,
    name: Option<String>,
    mailbox: String,
    mail_system: String,
    diary: Option<bool>,
    task: Option<bool>,
    contact: Option<bool>,
    rank: Option<Rank>,
    moved_from: Option<Rank>,
    state: &'static str,
    reason: Option<String>,
    since: jiff::Timestamp,
}

pub fn list(ctx: &Ctx<'_>, only: Option<Rank>, json: bool) -> anyhow::Result<()> {
    let state_dir = ctx.store.state_dir();
    let registry = ctx.store.registry()?;
    let mut pending = ctx.store.pending()?;
    prune_saved(&mut pending, &registry);
    let mut failed: BTreeMap<Rank, BTreeMap<String, (&'static str, String)>> = BTreeMap::new();
    let mut rows = Vec::new();
    for u in registry
        .users
        .iter()
        .filter(|u| only.is_none_or(|r| r == u.rank))
    {
        let reason = failed
            .entry(u.rank)
            .or_insert_with(|| failures(state_dir, u.rank))
            .get(u.id.as_str())
            .cloned();
        let (state, reason) = match (reason, u.is_disabled()) {
            (_, true) => ("disabled", None),
            (Some((held, why)), false) => (held, Some(why)),
            (None, false) => ("active", None),
        };
        rows.push(Row {
            id: Some(u.id.to_string()),
            associate_id: u.associate_id,
            login: u.login.clone(),
            name: u.name.clone(),
            mailbox: u.mailbox.clone(),
            mail_system: u.mail_system.clone(),
            diary: Some(u.diary),
            task: Some(u.task),
            contact: Some(u.contact),
            rank: Some(u.rank),
            moved_from: u.moved_from,
            state,
            reason,
            since: u.created,
        });
    }
    if only.is_none() {
        for l in &pending.links {
            rows.push(Row {
                id: None,
                associate_id: l.associate_id,
                login: Some(l.login.clone()),
                name: (!l.name.is_empty()).then(|| l.name.clone()),
                mailbox: l.mailbox.clone(),
                mail_system: l.mail_system.clone(),
                diary: None,
                task: None,
                contact: None,
                rank: None,
                moved_from: None,
                state: "pending",
                reason: None,
                since: l.staged,
            });
        }
    }
    let tombstones: Vec<_> = registry
        .tombstones
        .iter()
        .filter(|t| only.is_none_or(|r| r == t.rank))
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let doc = serde_json::json!({ "users": rows, "removing": tombstones });
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no sync users and no staged links")?;
    } else {
        let mut table = Table::new(&[
            "ID",
            "ASSOCIATE",
            "NAME",
            "MAILBOX",
            "MAIL SYSTEM",
            "DIARY",
            "TASK",
            "CONTACT",
            "RANK",
            "STATE",
        ]);
        let flag = |b: Option<bool>| match b {
            Some(true) => "on",
            Some(false) => "off",
            None => "-",
        };
        for r in &rows {
            let tone = match r.state {
                "active" => Tone::Good,
                "pending" => Tone::Warn,
                "failed" => Tone::Bad,
                _ => Tone::Dim,
            };
            let state = match &r.reason {
                Some(reason) => format!("{}: {reason}", r.state),
                None => r.state.to_string(),
            };
            let cell = |s: String| (s, Tone::Plain);
            table.row(vec![
                cell(r.id.clone().unwrap_or_else(|| "-".into())),
                cell(format!(
                    "{} ({})",
                    r.login.as_deref().unwrap_or("?"),
                    r.associate_id
                )),
                cell(r.name.clone().unwrap_or_default()),
                cell(r.mailbox.clone()),
                cell(r.mail_system.clone()),
                cell(flag(r.diary).into()),
                cell(flag(r.task).into()),
                cell(flag(r.contact).into()),
                cell(r.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into())),
                (state, tone),
            ]);
        }
        write!(out, "{}", table.render(colour_on_stdout()))?;
        let saved = rows.iter().filter(|r| r.id.is_some()).count();
        writeln!(
            out,
            "{}, {} staged",
            count(saved, "sync user", "sync users"),
            rows.len() - saved
        )?;
    }
    for t in tombstones {
        writeln!(
            out,
            "removed {} (rank {}) at {}: its history is not yet confirmed deleted",
            t.id,
            t.rank,
            when(t.removed)
        )?;
    }
    Ok(())
}
