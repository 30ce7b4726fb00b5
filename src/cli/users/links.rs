//! Load External Users, Auto Link, Link User, the staged links, Save Added Users, discard.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use super::output::{Spinner, Table, Tone, colour_on_stdout, count, when};
use super::{Ctx, KindArgs, UsersError, ranks};
use crate::connector::graph::{GraphClient, GraphOptions};
use crate::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crate::connector::{CrmConnector, ExternalMailbox, MailboxConnector};
use crate::registry::external::{LoadedMailSystem, Mailbox};
use crate::registry::link::{self, Associate, Taken, Unmatched};
use crate::registry::pending::{LinkSource, Pending, PendingLink};
use crate::registry::{Rank, Registry, SyncUser, SyncUserId, resolve};

fn mailbox_of(m: ExternalMailbox) -> Mailbox {
    Mailbox {
        id: m.id,
        display_name: m.display_name,
        user_principal_name: m.user_principal_name,
        mail: m.mail,
        smtp_addresses: m.smtp_addresses,
    }
}

/// Staged links that a save already turned into sync users (a save that stopped between
/// writing the registry and emptying `pending.toml`) are done, not pending.
pub fn prune_saved(pending: &mut Pending, registry: &Registry) {
    pending.links.retain(|l| {
        !registry
            .users
            .iter()
            .any(|u| u.associate_id == l.associate_id && u.mailbox.eq_ignore_ascii_case(&l.mailbox))
    });
}

fn not_loaded() -> UsersError {
    UsersError::Usage(
        "the external users were never loaded: run `crmsync users load-external` first \
         (linking chooses from that list)"
            .into(),
    )
}

pub async fn load_external(ctx: &Ctx<'_>, only: Option<&str>, json: bool) -> anyhow::Result<()> {
    let systems = &ctx.settings.mail_systems;
    if systems.is_empty() {
        return Err(UsersError::Config(
            "no mail system is configured: add a [mail_systems.NAME] section (see config/crmsync.toml)"
                .into(),
        )
        .into());
    }
    let chosen: Vec<_> = match only {
        Some(name) => vec![systems.get(name).ok_or_else(|| {
            UsersError::Usage(format!(
                "no mail system {name:?} in the configuration; configured: {}",
                systems.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?],
        None => systems.values().collect(),
    };
    // A file that would be refused later is refused before the mail systems are asked.
    ctx.store.external()?;
    ctx.store.registry()?;
    // Read the mailboxes without the lock: a large tenant takes a while.
    let mut loaded = BTreeMap::new();
    for ms in chosen {
        let client = GraphClient::new(ms, GraphOptions::default())
            .with_context(|| format!("mail system {}", ms.name))?;
        let spinner = Spinner::start(format!(
            "reading the mailboxes of {} from {}",
            ms.name, ms.base_url
        ));
        let mailboxes = client
            .mailboxes()
            .await
            .with_context(|| format!("reading the mailboxes of mail system {}", ms.name))?;
        drop(spinner);
        loaded.insert(
            ms.name.clone(),
            LoadedMailSystem {
                loaded: jiff::Timestamp::now(),
                source: ms.base_url.to_string(),
                mailboxes: mailboxes.into_iter().map(mailbox_of).collect(),
            },
        );
    }

    let lock = ctx.lock()?;
    // Read even when everything is replaced: a file that does not parse is never overwritten.
    let mut external = ctx.store.external()?.unwrap_or_default();
    let mut registry = ctx.store.registry()?;
    let swept = ranks::sweep(ctx.store.state_dir(), &mut registry);
    if only.is_none() {
        external.mail_systems.clear();
    }
    external.mail_systems.extend(loaded.clone());
    lock.write_external(&external)?;
    if !swept.is_empty() {
        ranks::write(&lock, &registry, &swept)?;
    }
    drop(lock);

    #[derive(Serialize)]
    struct System<'a> {
        name: &'a str,
        source: &'a str,
        mailboxes: usize,
        loaded: jiff::Timestamp,
    }
    let list: Vec<System<'_>> = loaded
        .iter()
        .map(|(name, l)| System {
            name,
            source: &l.source,
            mailboxes: l.mailboxes.len(),
            loaded: l.loaded,
        })
        .collect();
    let total: usize = list.iter().map(|s| s.mailboxes).sum();
    let file = ctx.store.external_path();
    let mut out = std::io::stdout().lock();
    if json {
        let summary = serde_json::json!({
            "file": file.display().to_string(),
            "mailboxes": total,
            "mail_systems": list,
        });
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    let parts: Vec<String> = list
        .iter()
        .map(|s| format!("{}: {} from {}", s.name, s.mailboxes, s.source))
        .collect();
    let at = list
        .iter()
        .map(|s| s.loaded)
        .max()
        .map(when)
        .unwrap_or_default();
    writeln!(
        out,
        "loaded {} from {} ({}) at {at} into {}",
        count(total, "mailbox", "mailboxes"),
        count(list.len(), "mail system", "mail systems"),
        parts.join("; "),
        file.display()
    )?;
    Ok(())
}

/// Every associate of the CRM, with the e-mail of its own person card.
async fn crm_associates(ctx: &Ctx<'_>) -> anyhow::Result<Vec<Associate>> {
    let so = ctx.settings.superoffice.as_ref().ok_or_else(|| {
        UsersError::Config(
            "linking reads the associates from SuperOffice, but the configuration has no \
             [superoffice] section"
                .into(),
        )
    })?;
    let client = SuperOfficeClient::new(so, SuperOfficeOptions::default())?;
    let spinner = Spinner::start("reading the associates from SuperOffice".into());
    let associates = client
        .associates()
        .await
        .context("reading the associates from SuperOffice")?;
    drop(spinner);
    Ok(associates
        .into_iter()
        .map(|a| Associate {
            id: a.id,
            login: a.login,
            name: a.full_name,
            email: a.email,
            active: a.active,
        })
        .collect())
}

#[derive(Serialize)]
struct StagedRow<'a> {
    associate_id: u32,
    login: &'a str,
    name: &'a str,
    email: Option<&'a str>,
    mailbox: &'a str,
    mailbox_id: &'a str,
    mail_system: &'a str,
    by_proxy: bool,
}

#[derive(Serialize)]
struct UnmatchedRow<'a> {
    associate_id: u32,
    login: &'a str,
    name: &'a str,
    email: Option<&'a str>,
    reason: &'static str,
    detail: String,
}

pub async fn auto_link(ctx: &Ctx<'_>, named: &[String], json: bool) -> anyhow::Result<()> {
    // Refuse before asking the CRM anything.
    ctx.store.external()?.ok_or_else(not_loaded)?;
    let associates = crm_associates(ctx).await?;

    let lock = ctx.lock()?;
    let external = ctx.store.external()?.ok_or_else(not_loaded)?;
    let mut registry = ctx.store.registry()?;
    let mut pending = ctx.store.pending()?;
    let swept = ranks::sweep(ctx.store.state_dir(), &mut registry);
    prune_saved(&mut pending, &registry);
    let taken = Taken::new(&registry, &pending);
    let (candidates, skipped) = if named.is_empty() {
        let (free, linked): (Vec<&Associate>, Vec<&Associate>) = associates
            .iter()
            .filter(|a| a.active)
            .partition(|a| taken.associate(a.id).is_none());
        (free.into_iter().cloned().collect(), linked.len())
    } else {
        let mut chosen: Vec<Associate> = Vec::new();
        for query in named {
            let a = resolve::associate(&associates, query)?;
            if !chosen.iter().any(|c| c.id == a.id) {
                chosen.push(a.clone());
            }
        }
        (chosen, 0)
    };
    let result = link::auto_link(&candidates, &external, &taken, jiff::Timestamp::now());
    pending
        .links
        .extend(result.matched.iter().map(|m| m.link.clone()));
    if !result.matched.is_empty() {
        lock.write_pending(&pending)?;
    }
    if !swept.is_empty() {
        ranks::write(&lock, &registry, &swept)?;
    }
    drop(lock);

    let staged: Vec<StagedRow<'_>> = result
        .matched
        .iter()
        .map(|m| StagedRow {
            associate_id: m.associate.id,
            login: &m.associate.login,
            name: &m.associate.name,
            email: m.associate.email.as_deref(),
            mailbox: &m.link.mailbox,
            mailbox_id: &m.link.mailbox_id,
            mail_system: &m.link.mail_system,
            by_proxy: m.by_proxy,
        })
        .collect();
    let unmatched: Vec<UnmatchedRow<'_>> = result
        .unmatched
        .iter()
        .map(|(a, why)| UnmatchedRow {
            associate_id: a.id,
            login: &a.login,
            name: &a.name,
            email: a.email.as_deref(),
            reason: why.code(),
            detail: why.to_string(),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let doc = serde_json::json!({
            "staged": staged,
            "unmatched": unmatched,
            "skipped_already_linked": skipped,
        });
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    let mut table = Table::new(&["ASSOCIATE", "NAME", "E-MAIL", "RESULT", "MAILBOX OR REASON"]);
    for s in &staged {
        let via = if s.by_proxy { ", by proxy address" } else { "" };
        table.row(vec![
            (format!("{} ({})", s.login, s.associate_id), Tone::Plain),
            (s.name.to_string(), Tone::Plain),
            (s.email.unwrap_or("-").to_string(), Tone::Plain),
            ("staged".into(), Tone::Good),
            (
                format!("{} ({}){via}", s.mailbox, s.mail_system),
                Tone::Plain,
            ),
        ]);
    }
    for u in &unmatched {
        table.row(vec![
            (format!("{} ({})", u.login, u.associate_id), Tone::Plain),
            (u.name.to_string(), Tone::Plain),
            (u.email.unwrap_or("-").to_string(), Tone::Plain),
            ("unmatched".into(), Tone::Warn),
            (u.detail.clone(), Tone::Plain),
        ]);
    }
    if !table.is_empty() {
        write!(out, "{}", table.render(colour_on_stdout()))?;
    }
    let mut summary = format!(
        "staged {}, {} unmatched",
        count(staged.len(), "link", "links"),
        unmatched.len()
    );
    if skipped > 0 {
        summary.push_str(&format!(
            "; {} already linked or staged (name them to see them)",
            count(skipped, "associate", "associates")
        ));
    }
    if !staged.is_empty() {
        summary.push_str("; nothing syncs until `crmsync users save`");
    }
    writeln!(out, "{summary}")?;
    Ok(())
}

pub async fn link(
    ctx: &Ctx<'_>,
    associate: &str,
    mailbox: &str,
    mail_system: Option<&str>,
) -> anyhow::Result<()> {
    // The mailbox is checked before the CRM is asked anything.
    let external = ctx.store.external()?.ok_or_else(not_loaded)?;
    resolve::mailbox(&external, mailbox, mail_system)?;
    let associates = crm_associates(ctx).await?;
    let chosen = resolve::associate(&associates, associate)?;

    let lock = ctx.lock()?;
    let external = ctx.store.external()?.ok_or_else(not_loaded)?;
    let mut registry = ctx.store.registry()?;
    let mut pending = ctx.store.pending()?;
    let swept = ranks::sweep(ctx.store.state_dir(), &mut registry);
    prune_saved(&mut pending, &registry);
    let found = resolve::mailbox(&external, mailbox, mail_system)?;
    let address = link::check_link(chosen, &found, &Taken::new(&registry, &pending))
        .map_err(|why| refused(chosen, mailbox, why))?;
    let staged = link::staged_link(
        chosen,
        &found,
        address,
        LinkSource::Link,
        jiff::Timestamp::now(),
    );
    pending.links.push(staged.clone());
    lock.write_pending(&pending)?;
    if !swept.is_empty() {
        ranks::write(&lock, &registry, &swept)?;
    }
    drop(lock);
    println!(
        "staged {} ({}, {}) <-> {} ({}); nothing syncs until `crmsync users save`",
        staged.login, staged.associate_id, staged.name, staged.mailbox, staged.mail_system
    );
    Ok(())
}

fn refused(associate: &Associate, mailbox: &str, why: Unmatched) -> UsersError {
    let hint = match &why {
        Unmatched::AssociateLinked { .. } | Unmatched::MailboxLinked { .. } => {
            "; one mailbox per associate and one associate per mailbox: remove or discard the other link first"
        }
        _ => "",
    };
    UsersError::Usage(format!(
        "cannot link {associate} to {mailbox}: {why}{hint}; nothing was staged"
    ))
}

fn pending_rows(pending: &Pending) -> Table {
    let mut table = Table::new(&[
        "ASSOCIATE",
        "NAME",
        "MAILBOX",
        "MAIL SYSTEM",
        "SOURCE",
        "STAGED",
    ]);
    for l in &pending.links {
        table.plain_row(vec![
            format!("{} ({})", l.login, l.associate_id),
            l.name.clone(),
            l.mailbox.clone(),
            l.mail_system.clone(),
            l.source.to_string(),
            when(l.staged),
        ]);
    }
    table
}

pub fn pending(ctx: &Ctx<'_>, json: bool) -> anyhow::Result<()> {
    let registry = ctx.store.registry()?;
    let mut pending = ctx.store.pending()?;
    prune_saved(&mut pending, &registry);
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::json!({ "links": pending.links }))?;
        return Ok(());
    }
    if pending.links.is_empty() {
        writeln!(out, "no staged links")?;
        return Ok(());
    }
    write!(out, "{}", pending_rows(&pending).render(colour_on_stdout()))?;
    writeln!(
        out,
        "{} staged; nothing staged syncs until `crmsync users save`",
        count(pending.links.len(), "link", "links")
    )?;
    Ok(())
}

pub fn discard(ctx: &Ctx<'_>, named: &[String]) -> anyhow::Result<()> {
    let lock = ctx.lock()?;
    let mut registry = ctx.store.registry()?;
    let mut pending = ctx.store.pending()?;
    let swept = ranks::sweep(ctx.store.state_dir(), &mut registry);
    prune_saved(&mut pending, &registry);
    let mut drop_idx = Vec::new();
    if named.is_empty() {
        drop_idx.extend(0..pending.links.len());
    } else {
        for query in named {
            let i = resolve::staged(&pending, query)?;
            if !drop_idx.contains(&i) {
                drop_idx.push(i);
            }
        }
    }
    let dropped: Vec<PendingLink> = drop_idx.iter().map(|&i| pending.links[i].clone()).collect();
    let mut i = 0;
    pending.links.retain(|_| {
        i += 1;
        !drop_idx.contains(&(i - 1))
    });
    lock.write_pending(&pending)?;
    if !swept.is_empty() {
        ranks::write(&lock, &registry, &swept)?;
    }
    drop(lock);
    for l in &dropped {
        println!(
            "discarded {} ({}) <-> {}",
            l.login, l.associate_id, l.mailbox
        );
    }
    println!(
        "discarded {}, {} still staged",
        count(dropped.len(), "staged link", "staged links"),
        pending.links.len()
    );
    Ok(())
}

pub fn save(ctx: &Ctx<'_>, rank: Option<Rank>, kinds: KindArgs) -> anyhow::Result<()> {
    let sync = &ctx.settings.sync;
    let rank = rank.unwrap_or(sync.default_rank);
    let on = |arg: Option<super::Switch>, default: bool| arg.map_or(default, super::Switch::on);
    let (diary, task, contact) = (
        on(kinds.diary, sync.default_diary),
        on(kinds.task, sync.default_task),
        on(kinds.contact, sync.default_contact),
    );

    let lock = ctx.lock()?;
    let mut registry = ctx.store.registry()?;
    let mut pending = ctx.store.pending()?;
    let swept = ranks::sweep(ctx.store.state_dir(), &mut registry);
    prune_saved(&mut pending, &registry);
    if pending.links.is_empty() {
        if !swept.is_empty() {
            ranks::write(&lock, &registry, &swept)?;
        }
        println!(
            "nothing staged to save; stage links with `crmsync users auto-link` or `users link`"
        );
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    let mut saved = Vec::new();
    for l in &pending.links {
        if !ctx.settings.mail_systems.contains_key(&l.mail_system) {
            return Err(UsersError::Config(format!(
                "the staged link {} ({}) <-> {} is in mail system {:?}, which is no longer \
                 configured; configure it again, or `crmsync users discard {}`; nothing was saved",
                l.login, l.associate_id, l.mailbox, l.mail_system, l.associate_id
            ))
            .into());
        }
        // Someone may have edited the registry by hand since the link was staged.
        if let Some(holder) = Taken::new(&registry, &Pending::empty()).associate(l.associate_id) {
            return Err(UsersError::Usage(format!(
                "cannot save {} ({}) <-> {}: the associate is already {holder}; \
                 nothing was saved",
                l.login, l.associate_id, l.mailbox
            ))
            .into());
        }
        if let Some(u) = registry
            .users
            .iter()
            .find(|u| u.mailbox.eq_ignore_ascii_case(&l.mailbox))
        {
            return Err(UsersError::Usage(format!(
                "cannot save {} ({}) <-> {}: the mailbox is already linked as sync user {}; \
                 nothing was saved",
                l.login, l.associate_id, l.mailbox, u.id
            ))
            .into());
        }
        let user = SyncUser {
            id: SyncUserId::generate(),
            associate_id: l.associate_id,
            login: Some(l.login.clone()),
            name: (!l.name.is_empty()).then(|| l.name.clone()),
            mailbox: l.mailbox.clone(),
            mailbox_id: Some(l.mailbox_id.clone()),
            mail_system: l.mail_system.clone(),
            rank,
            diary,
            task,
            contact,
            created: now,
            moved_from: None,
            resume: None,
        };
        registry.users.push(user.clone());
        saved.push(user);
    }
    // Registry first: if the second write fails, the links are saved and are pruned from
    // the staged list by the next command.
    ranks::write(&lock, &registry, &swept).map_err(|e| {
        e.context("nothing was saved (the registry would not accept the staged links)")
    })?;
    lock.write_pending(&Pending::empty())?;
    drop(lock);

    let mut table = Table::new(&["ID", "ASSOCIATE", "MAILBOX", "MAIL SYSTEM", "RANK"]);
    for u in &saved {
        table.plain_row(vec![
            u.id.to_string(),
            format!("{} ({})", u.login.as_deref().unwrap_or("?"), u.associate_id),
            u.mailbox.clone(),
            u.mail_system.clone(),
            u.rank.to_string(),
        ]);
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{}", table.render(colour_on_stdout()))?;
    let kinds: Vec<&str> = [("diary", diary), ("task", task), ("contact", contact)]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| *k)
        .collect();
    writeln!(
        out,
        "saved {} on rank {rank} ({}); rank {rank}'s daemon starts syncing them within seconds",
        count(saved.len(), "sync user", "sync users"),
        if kinds.is_empty() {
            "disabled: every kind off".to_string()
        } else {
            kinds.join(", ")
        }
    )?;
    Ok(())
}
