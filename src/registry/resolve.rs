//! Naming things on the command line. USER: a sync user's id, its associate's id or login
//! name, or its mailbox address. ASSOCIATE: an associate id or login name. MAILBOX: an
//! address or the mail system's id. Nothing found, or more than one, is an error that lists
//! what was found.

use super::external::{ExternalUsers, FoundMailbox};
use super::link::Associate;
use super::pending::{Pending, PendingLink};
use super::{Registry, SyncUser};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "no sync user matches {query:?} (give a sync user id, an associate id or login name, \
         or a mailbox address); `crmsync users list` shows them"
    )]
    NoUser { query: String },
    #[error("{query:?} matches more than one {what}: {}; name one by {by}", candidates.join("; "))]
    Ambiguous {
        query: String,
        what: &'static str,
        by: &'static str,
        candidates: Vec<String>,
    },
    #[error(
        "{query:?} is only staged ({link}), not saved: save it with `crmsync users save` first, \
         or drop it with `crmsync users discard {query}`"
    )]
    OnlyStaged { query: String, link: String },
    #[error("no staged link matches {query:?}; `crmsync users pending` shows them")]
    NotStaged { query: String },
    #[error(
        "no associate in SuperOffice has the id or login name {query:?}; check the spelling \
         (logins are matched without case)"
    )]
    NoAssociate { query: String },
    #[error(
        "no loaded mailbox has the address or id {query:?}{}; if it is new, run `crmsync users \
         load-external` again",
        in_system.as_ref().map(|s| format!(" in mail system {s}")).unwrap_or_default()
    )]
    NoMailbox {
        query: String,
        in_system: Option<String>,
    },
}

fn describe_user(u: &SyncUser) -> String {
    format!(
        "sync user {} ({} <-> {}, rank {})",
        u.id,
        match &u.login {
            Some(login) => format!("{login} ({})", u.associate_id),
            None => u.associate_id.to_string(),
        },
        u.mailbox,
        u.rank
    )
}

fn describe_link(l: &PendingLink) -> String {
    format!("{} ({}) <-> {}", l.login, l.associate_id, l.mailbox)
}

fn same(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Whether `query` names this user in one of the four ways.
pub fn names_user(u: &SyncUser, query: &str) -> bool {
    let query = query.trim();
    u.id.as_str() == query
        || u.associate_id.to_string() == query
        || u.login.as_deref().is_some_and(|l| same(l, query))
        || same(&u.mailbox, query)
}

/// Whether `query` names this staged link (associate id or login, or mailbox address).
pub fn names_link(l: &PendingLink, query: &str) -> bool {
    let query = query.trim();
    l.associate_id.to_string() == query || same(&l.login, query) || same(&l.mailbox, query)
}

/// The index in `registry.users` of the saved user `query` names.
pub fn saved_user(
    registry: &Registry,
    pending: &Pending,
    query: &str,
) -> Result<usize, ResolveError> {
    let found: Vec<usize> = (0..registry.users.len())
        .filter(|&i| names_user(&registry.users[i], query))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => match pending.links.iter().find(|l| names_link(l, query)) {
            Some(link) => Err(ResolveError::OnlyStaged {
                query: query.to_string(),
                link: describe_link(link),
            }),
            None => Err(ResolveError::NoUser {
                query: query.to_string(),
            }),
        },
        many => Err(ResolveError::Ambiguous {
            query: query.to_string(),
            what: "sync user",
            by: "its sync user id",
            candidates: many
                .iter()
                .map(|&i| describe_user(&registry.users[i]))
                .collect(),
        }),
    }
}

/// The saved users `queries` name, each once, in the order first named.
pub fn saved_users(
    registry: &Registry,
    pending: &Pending,
    queries: &[String],
) -> Result<Vec<usize>, ResolveError> {
    let mut out = Vec::new();
    for query in queries {
        let i = saved_user(registry, pending, query)?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// The index in `pending.links` of the staged link `query` names.
pub fn staged(pending: &Pending, query: &str) -> Result<usize, ResolveError> {
    let found: Vec<usize> = (0..pending.links.len())
        .filter(|&i| names_link(&pending.links[i], query))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(ResolveError::NotStaged {
            query: query.to_string(),
        }),
        many => Err(ResolveError::Ambiguous {
            query: query.to_string(),
            what: "staged link",
            by: "its associate id",
            candidates: many
                .iter()
                .map(|&i| describe_link(&pending.links[i]))
                .collect(),
        }),
    }
}

/// The associate `query` names: its id, or its login name without case.
pub fn associate<'a>(
    associates: &'a [Associate],
    query: &str,
) -> Result<&'a Associate, ResolveError> {
    let query = query.trim();
    if let Some(a) = associates.iter().find(|a| a.id.to_string() == query) {
        return Ok(a);
    }
    let found: Vec<&Associate> = associates
        .iter()
        .filter(|a| same(&a.login, query))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(ResolveError::NoAssociate {
            query: query.to_string(),
        }),
        many => Err(ResolveError::Ambiguous {
            query: query.to_string(),
            what: "associate",
            by: "its associate id",
            candidates: many
                .iter()
                .map(|a| format!("{} ({}, {})", a.login, a.id, a.name))
                .collect(),
        }),
    }
}

/// The loaded mailbox `query` names (address or id), in `mail_system` if given.
pub fn mailbox<'a>(
    external: &'a ExternalUsers,
    query: &str,
    mail_system: Option<&str>,
) -> Result<FoundMailbox<'a>, ResolveError> {
    let found = external.find(query, mail_system);
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(ResolveError::NoMailbox {
            query: query.to_string(),
            in_system: mail_system.map(str::to_string),
        }),
        many => Err(ResolveError::Ambiguous {
            query: query.to_string(),
            what: "mailbox",
            by: "its id, or add --mail-system NAME",
            candidates: many
                .iter()
                .map(|f| {
                    format!(
                        "{} in {} ({})",
                        f.mailbox.address().unwrap_or_default(),
                        f.mail_system,
                        f.mailbox.id
                    )
                })
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Rank, SyncUserId};

    fn user(id: &str, associate_id: u32, login: &str, mailbox: &str) -> SyncUser {
        SyncUser {
            id: SyncUserId::parse(id).unwrap(),
            associate_id,
            login: Some(login.into()),
            name: None,
            mailbox: mailbox.into(),
            mailbox_id: None,
            mail_system: "contoso".into(),
            rank: Rank::MIN,
            diary: true,
            task: true,
            contact: true,
            created: jiff::Timestamp::UNIX_EPOCH,
            moved_from: None,
            resume: None,
        }
    }

    #[test]
    fn users_are_named_four_ways_and_ambiguity_lists_the_candidates() {
        let mut registry = Registry::empty();
        registry
            .users
            .push(user("u1", 101, "ANNA", "anna@contoso.example"));
        // A login that is another user's associate id: "102" names two users.
        registry
            .users
            .push(user("u2", 102, "BO", "bo@contoso.example"));
        registry
            .users
            .push(user("u3", 103, "102", "carl@contoso.example"));
        let pending = Pending::empty();
        for q in ["u1", "101", "anna", "ANNA@contoso.example "] {
            assert_eq!(saved_user(&registry, &pending, q), Ok(0), "{q}");
        }
        match saved_user(&registry, &pending, "102") {
            Err(ResolveError::Ambiguous { candidates, .. }) => {
                assert_eq!(candidates.len(), 2);
                assert!(candidates[0].contains("sync user u2"), "{candidates:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            saved_user(&registry, &pending, "nobody"),
            Err(ResolveError::NoUser { .. })
        ));
        assert_eq!(
            saved_users(&registry, &pending, &["u1".into(), "anna".into()]),
            Ok(vec![0])
        );
    }

    #[test]
    fn a_staged_link_is_not_a_saved_user() {
        let registry = Registry::empty();
        let mut pending = Pending::empty();
        pending.links.push(PendingLink {
            associate_id: 105,
            login: "EVA".into(),
            name: String::new(),
            mailbox: "room@contoso.example".into(),
            mailbox_id: "m6".into(),
            mail_system: "contoso".into(),
            source: crate::registry::pending::LinkSource::Link,
            matched: None,
            staged: jiff::Timestamp::UNIX_EPOCH,
        });
        let e = saved_user(&registry, &pending, "eva").unwrap_err();
        assert!(e.to_string().contains("users save"), "{e}");
        assert_eq!(staged(&pending, "room@contoso.example"), Ok(0));
    }
}
