//! Linking: which associate goes with which mailbox. One mailbox per associate and one
//! associate per mailbox, across saved users and staged links. Pure: the callers read the
//! CRM and the files; this decides.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::external::{ExternalUsers, FoundMailbox};
use super::pending::{LinkSource, Pending, PendingLink};
use super::{Registry, SyncUser};

/// An associate as linking sees it (read from the CRM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Associate {
    pub id: u32,
    pub login: String,
    pub name: String,
    /// The primary e-mail on the associate's own person card.
    pub email: Option<String>,
    pub active: bool,
}

impl fmt::Display for Associate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.login, self.id)
    }
}

/// Who holds an associate or a mailbox already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Holder {
    /// A saved sync user.
    Saved {
        id: String,
        associate: String,
        mailbox: String,
    },
    /// A staged link.
    Staged { associate: String, mailbox: String },
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Saved {
                id,
                associate,
                mailbox,
            } => write!(f, "linked as sync user {id} ({associate} <-> {mailbox})"),
            Holder::Staged { associate, mailbox } => {
                write!(f, "staged ({associate} <-> {mailbox})")
            }
        }
    }
}

fn associate_label(id: u32, login: Option<&str>) -> String {
    match login {
        Some(login) if !login.is_empty() => format!("{login} ({id})"),
        _ => id.to_string(),
    }
}

fn saved_holder(u: &SyncUser) -> Holder {
    Holder::Saved {
        id: u.id.to_string(),
        associate: associate_label(u.associate_id, u.login.as_deref()),
        mailbox: u.mailbox.clone(),
    }
}

fn staged_holder(l: &PendingLink) -> Holder {
    Holder::Staged {
        associate: associate_label(l.associate_id, Some(&l.login)),
        mailbox: l.mailbox.clone(),
    }
}

/// What is linked already, saved or staged.
pub struct Taken<'a> {
    registry: &'a Registry,
    pending: &'a Pending,
}

impl<'a> Taken<'a> {
    pub fn new(registry: &'a Registry, pending: &'a Pending) -> Self {
        Taken { registry, pending }
    }

    pub fn associate(&self, id: u32) -> Option<Holder> {
        self.registry
            .users
            .iter()
            .find(|u| u.associate_id == id)
            .map(saved_holder)
            .or_else(|| {
                self.pending
                    .links
                    .iter()
                    .find(|l| l.associate_id == id)
                    .map(staged_holder)
            })
    }

    /// By the mailbox's primary address, or by its id in the same mail system.
    pub fn mailbox(&self, found: &FoundMailbox<'_>) -> Option<Holder> {
        let address = found.mailbox.address().unwrap_or_default().to_lowercase();
        let id = found.mailbox.id.as_str();
        let same = |mailbox: &str, mailbox_id: Option<&str>, system: &str| {
            mailbox.trim().to_lowercase() == address
                || (system == found.mail_system && mailbox_id.is_some_and(|m| m == id))
        };
        self.registry
            .users
            .iter()
            .find(|u| same(&u.mailbox, u.mailbox_id.as_deref(), &u.mail_system))
            .map(saved_holder)
            .or_else(|| {
                self.pending
                    .links
                    .iter()
                    .find(|l| same(&l.mailbox, Some(&l.mailbox_id), &l.mail_system))
                    .map(staged_holder)
            })
    }
}

/// Why a link cannot be made (`users link`), or why auto-link left an associate out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unmatched {
    #[error("no e-mail address on the associate's person card")]
    NoEmail,
    #[error("no loaded mailbox has the address {email}")]
    NoMailbox { email: String },
    #[error("more than one: {}", candidates.join("; "))]
    Ambiguous { candidates: Vec<String> },
    #[error("the associate is already {holder}")]
    AssociateLinked { holder: Holder },
    #[error("the mailbox {mailbox} is already {holder}")]
    MailboxLinked { mailbox: String, holder: Holder },
    #[error("the associate is retired in SuperOffice")]
    AssociateInactive,
    #[error("the directory user {mailbox} has no mailbox address")]
    NoAddress { mailbox: String },
}

impl Unmatched {
    /// A short code for tables and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Unmatched::NoEmail => "no_email",
            Unmatched::NoMailbox { .. } => "no_mailbox",
            Unmatched::Ambiguous { .. } => "ambiguous",
            Unmatched::AssociateLinked { .. } => "associate_linked",
            Unmatched::MailboxLinked { .. } => "mailbox_linked",
            Unmatched::AssociateInactive => "associate_inactive",
            Unmatched::NoAddress { .. } => "no_address",
        }
    }
}

fn describe(found: &FoundMailbox<'_>) -> String {
    format!(
        "{} in {} ({})",
        found.mailbox.address().unwrap_or_default(),
        found.mail_system,
        found.mailbox.id
    )
}

/// The staged form of `associate` linked to `found`, if nothing is in the way.
pub fn check_link(
    associate: &Associate,
    found: &FoundMailbox<'_>,
    taken: &Taken<'_>,
) -> Result<String, Unmatched> {
    if !associate.active {
        return Err(Unmatched::AssociateInactive);
    }
    if let Some(holder) = taken.associate(associate.id) {
        return Err(Unmatched::AssociateLinked { holder });
    }
    let address = found
        .mailbox
        .address()
        .ok_or_else(|| Unmatched::NoAddress {
            mailbox: found.mailbox.user_principal_name.clone(),
        })?;
    if let Some(holder) = taken.mailbox(found) {
        return Err(Unmatched::MailboxLinked {
            mailbox: address,
            holder,
        });
    }
    Ok(address)
}

pub fn staged_link(
    associate: &Associate,
    found: &FoundMailbox<'_>,
    address: String,
    source: LinkSource,
    now: jiff::Timestamp,
) -> PendingLink {
    PendingLink {
        associate_id: associate.id,
        login: associate.login.clone(),
        name: associate.name.clone(),
        mailbox: address,
        mailbox_id: found.mailbox.id.clone(),
        mail_system: found.mail_system.to_string(),
        source,
        matched: match source {
            LinkSource::AutoLink => associate.email.clone(),
            LinkSource::Link => None,
        },
        staged: now,
    }
}

/// An associate auto-link matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matched {
    pub associate: Associate,
    pub link: PendingLink,
    /// True when the address matched only a proxy address, not the primary one.
    pub by_proxy: bool,
}

/// What auto-link found for the associates it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AutoLinked {
    pub matched: Vec<Matched>,
    pub unmatched: Vec<(Associate, Unmatched)>,
}

/// Matches each associate's person-card e-mail, without case, with a mailbox's `mail` or
/// SMTP proxy addresses. Two associates of this run that match the same mailbox are both
/// left out as ambiguous: choosing one would be a guess.
pub fn auto_link(
    associates: &[Associate],
    external: &ExternalUsers,
    taken: &Taken<'_>,
    now: jiff::Timestamp,
) -> AutoLinked {
    let mut out = AutoLinked::default();
    let mut tentative: Vec<(Associate, FoundMailbox<'_>, String)> = Vec::new();
    for associate in associates {
        let unmatched = |why| (associate.clone(), why);
        if !associate.active {
            out.unmatched.push(unmatched(Unmatched::AssociateInactive));
            continue;
        }
        if let Some(holder) = taken.associate(associate.id) {
            out.unmatched
                .push(unmatched(Unmatched::AssociateLinked { holder }));
            continue;
        }
        let Some(email) = associate
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            out.unmatched.push(unmatched(Unmatched::NoEmail));
            continue;
        };
        let found = external.with_address(email);
        match found.as_slice() {
            [] => out.unmatched.push(unmatched(Unmatched::NoMailbox {
                email: email.to_string(),
            })),
            [one] => match check_link(associate, one, taken) {
                Ok(address) => tentative.push((associate.clone(), *one, address)),
                Err(why) => out.unmatched.push(unmatched(why)),
            },
            many => out.unmatched.push(unmatched(Unmatched::Ambiguous {
                candidates: many.iter().map(describe).collect(),
            })),
        }
    }
    let mut per_mailbox: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (associate, found, _) in &tentative {
        per_mailbox
            .entry((found.mail_system.to_string(), found.mailbox.id.clone()))
            .or_default()
            .push(associate.to_string());
    }
    for (associate, found, address) in tentative {
        let key = (found.mail_system.to_string(), found.mailbox.id.clone());
        let rivals = per_mailbox.get(&key).map(Vec::as_slice).unwrap_or_default();
        if rivals.len() > 1 {
            let candidates = vec![format!(
                "associates {} all have the address of {}",
                rivals.join(", "),
                describe(&found)
            )];
            out.unmatched
                .push((associate, Unmatched::Ambiguous { candidates }));
            continue;
        }
        let email = associate.email.clone().unwrap_or_default();
        let by_proxy = !found.mailbox.is_primary(&email);
        let link = staged_link(&associate, &found, address, LinkSource::AutoLink, now);
        out.matched.push(Matched {
            associate,
            link,
            by_proxy,
        });
    }
    out.unmatched.sort_by(|a, b| a.0.login.cmp(&b.0.login));
    out
}

#[cfg(test)]
mod tests;
