//! Have both sides converged? Reads the emulators' state directly (no client, no request in
//! the sandbox's log): per linked user and kind, every CRM item must have exactly one mailbox
//! copy stamped with its id, with the same title, start and completion; every mailbox item of
//! the synced collections (the calendar, the dedicated To Do list and contact folder) must be
//! such a copy; and no side may hold the same item twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::edits::Expectation;
use super::flow::World;
use crate::connector::model::Stamp;
use crate::registry::Kind;
use crate::sandbox::superoffice::{AppointmentType, Completed, Span};

/// A sync user as the panel saved it.
#[derive(Debug, Clone, Serialize)]
pub struct Linked {
    pub login: String,
    pub associate_id: u32,
    pub mailbox: String,
    pub mailbox_id: String,
    pub rank: u16,
}

/// What is compared of an item: its title (subject, name), when it starts (diary items) and
/// whether it is done (to-dos).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Facts {
    pub title: String,
    pub when: String,
    pub done: bool,
}

impl std::fmt::Display for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.title)?;
        if self.when.contains('@') {
            write!(f, " <{}>", self.when)?;
        } else if !self.when.is_empty() {
            write!(f, " at {}", self.when)?;
        }
        if self.done {
            write!(f, " (done)")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct CrmItem {
    pub kind: Kind,
    pub id: u32,
    pub facts: Facts,
}

#[derive(Debug, Clone)]
pub struct MailboxItem {
    pub kind: Kind,
    pub id: String,
    /// The CRM id named by crmsync's stamp.
    pub stamp: Option<u32>,
    pub facts: Facts,
}

/// One user's items on both sides.
#[derive(Debug, Clone, Default)]
pub struct UserItems {
    pub crm: Vec<CrmItem>,
    pub mailbox: Vec<MailboxItem>,
}

impl UserItems {
    pub fn crm_item(&self, kind: Kind, id: u32) -> Option<&CrmItem> {
        self.crm.iter().find(|c| c.kind == kind && c.id == id)
    }

    /// The mailbox copies of a CRM item.
    pub fn copies(&self, kind: Kind, id: u32) -> impl Iterator<Item = &MailboxItem> {
        self.mailbox
            .iter()
            .filter(move |m| m.kind == kind && m.stamp == Some(id))
    }

    /// CRM items of `kind` that have exactly one mailbox copy, with that copy, by CRM id.
    pub fn pairs(&self, kind: Kind) -> Vec<(&CrmItem, &MailboxItem)> {
        let mut pairs: Vec<(&CrmItem, &MailboxItem)> = self
            .crm
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| {
                let mut copies = self.copies(kind, c.id);
                match (copies.next(), copies.next()) {
                    (Some(m), None) => Some((c, m)),
                    _ => None,
                }
            })
            .collect();
        pairs.sort_by_key(|(c, _)| c.id);
        pairs
    }
}

/// Something that is not (yet) as it should be.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub user: String,
    pub kind: Option<Kind>,
    pub what: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{} {kind}: {}", self.user, self.what),
            None => write!(f, "{}: {}", self.user, self.what),
        }
    }
}

/// Both sides compared.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub items: Vec<UserItems>,
    pub differences: Vec<Difference>,
    /// Items held twice (or more): each extra copy once.
    pub duplicates: Vec<Difference>,
    /// Per kind: items in the CRM, items in the mailboxes.
    pub counts: BTreeMap<Kind, (u64, u64)>,
    in_step: usize,
}

impl Comparison {
    pub fn converged(&self) -> bool {
        self.differences.is_empty() && self.duplicates.is_empty()
    }

    pub fn users_in_step(&self) -> usize {
        self.in_step
    }
}

/// Reads and compares every user's items; `expectations` are the edits' outcomes that must
/// also hold.
pub fn compare(world: &World, users: &[Linked], expectations: &[Expectation]) -> Comparison {
    let mut comparison = Comparison::default();
    for (index, user) in users.iter().enumerate() {
        let items = read_user(world, user);
        let before = comparison.differences.len() + comparison.duplicates.len();
        for kind in Kind::ALL {
            let crm = items.crm.iter().filter(|c| c.kind == kind).count() as u64;
            let mailbox = items.mailbox.iter().filter(|m| m.kind == kind).count() as u64;
            let count = comparison.counts.entry(kind).or_default();
            count.0 += crm;
            count.1 += mailbox;
            compare_kind(user, kind, &items, &mut comparison);
        }
        for e in expectations.iter().filter(|e| e.user == index) {
            if let Some(what) = e.unmet(&items) {
                comparison.differences.push(Difference {
                    user: user.login.clone(),
                    kind: Some(e.kind),
                    what,
                });
            }
        }
        if comparison.differences.len() + comparison.duplicates.len() == before {
            comparison.in_step += 1;
        }
        comparison.items.push(items);
    }
    comparison
}

fn compare_kind(user: &Linked, kind: Kind, items: &UserItems, out: &mut Comparison) {
    let differ = |what: String| Difference {
        user: user.login.clone(),
        kind: Some(kind),
        what,
    };
    let crm: Vec<&CrmItem> = items.crm.iter().filter(|c| c.kind == kind).collect();
    let mailbox: Vec<&MailboxItem> = items.mailbox.iter().filter(|m| m.kind == kind).collect();
    let crm_ids: HashSet<u32> = crm.iter().map(|c| c.id).collect();
    let mut extra: HashSet<&str> = HashSet::new();

    for c in &crm {
        let copies: Vec<&&MailboxItem> = mailbox.iter().filter(|m| m.stamp == Some(c.id)).collect();
        match copies.as_slice() {
            [] => out.differences.push(differ(format!(
                "CRM item {} {} has no copy in the mailbox",
                c.id, c.facts
            ))),
            [m] if m.facts != c.facts => out.differences.push(differ(format!(
                "CRM item {} is {} but its mailbox copy is {}",
                c.id, c.facts, m.facts
            ))),
            [_] => {}
            [_, more @ ..] => {
                for m in more {
                    extra.insert(&m.id);
                    out.duplicates.push(differ(format!(
                        "CRM item {} {} is in the mailbox {} times",
                        c.id,
                        c.facts,
                        copies.len()
                    )));
                }
            }
        }
    }
    for m in &mailbox {
        match m.stamp {
            None => out.differences.push(differ(format!(
                "mailbox item {} is not in the CRM (not stamped yet)",
                m.facts
            ))),
            Some(id) if !crm_ids.contains(&id) => out.differences.push(differ(format!(
                "mailbox item {} is a copy of CRM item {id}, which the CRM no longer has",
                m.facts
            ))),
            Some(_) => {}
        }
    }
    // The same item twice on one side, whatever the stamps say.
    let mut seen: HashMap<&Facts, usize> = HashMap::new();
    for m in &mailbox {
        *seen.entry(&m.facts).or_default() += 1;
        if seen[&m.facts] > 1 && !extra.contains(m.id.as_str()) {
            out.duplicates.push(differ(format!(
                "the mailbox holds {} more than once",
                m.facts
            )));
        }
    }
    let mut seen: HashMap<&Facts, usize> = HashMap::new();
    for c in &crm {
        *seen.entry(&c.facts).or_default() += 1;
        if seen[&c.facts] > 1 {
            out.duplicates.push(differ(format!(
                "the CRM holds {} more than once (CRM item {})",
                c.facts, c.id
            )));
        }
    }
}

/// Reads one user's items from both emulators.
pub fn read_user(world: &World, user: &Linked) -> UserItems {
    let mut items = UserItems::default();
    let state = world.sandbox.state();
    if let Some(found) = state.superoffice.associate_items(user.associate_id) {
        for (a, todo) in &found.appointments {
            let d = &a.data;
            let (kind, facts) = if *todo {
                (
                    Kind::Task,
                    Facts {
                        title: d.title.clone(),
                        when: String::new(),
                        done: d.completed == Completed::Completed,
                    },
                )
            } else if d.kind == AppointmentType::InDiary {
                let when = match d.span {
                    Span::Timed { start, .. } => start.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                    Span::AllDay { start, .. } => start.to_string(),
                };
                (
                    Kind::Diary,
                    Facts {
                        title: d.title.clone(),
                        when,
                        done: false,
                    },
                )
            } else {
                continue;
            };
            items.crm.push(CrmItem {
                kind,
                id: a.id,
                facts,
            });
        }
        for p in &found.persons {
            items.crm.push(CrmItem {
                kind: Kind::Contact,
                id: p.id,
                facts: contact_facts(
                    &p.first_name,
                    &p.last_name,
                    p.emails.first().map_or("", String::as_str),
                ),
            });
        }
    }
    if let Some(dump) = state.graph.mailbox_state(&user.mailbox_id) {
        read_mailbox(world, &dump, &mut items);
    }
    items
}

/// A contact's name, and its primary address in `when` (two persons may share a name).
fn contact_facts(given: &str, surname: &str, email: &str) -> Facts {
    Facts {
        title: format!("{given} {surname}").trim().to_string(),
        when: email.to_ascii_lowercase(),
        done: false,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// The CRM id in crmsync's stamp among `values`, if one is of this tenant and kind.
fn stamp_in<'a>(values: impl Iterator<Item = &'a str>, tenant: &str, kind: Kind) -> Option<u32> {
    values
        .filter_map(Stamp::decode)
        .find(|s| s.tenant == tenant && s.kind == kind)
        .map(|s| s.crm_id.0)
}

fn extended_values(item: &Value) -> impl Iterator<Item = &str> {
    item["singleValueExtendedProperties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["value"].as_str())
}

fn read_mailbox(world: &World, dump: &Value, items: &mut UserItems) {
    let tenant = world.tenant.as_str();
    for e in dump["calendar"]["events"].as_array().into_iter().flatten() {
        let start = text(&e["start"], "dateTime");
        let when = if e["isAllDay"].as_bool().unwrap_or(false) {
            start.get(..10).unwrap_or(start)
        } else {
            start.get(..19).unwrap_or(start)
        };
        items.mailbox.push(MailboxItem {
            kind: Kind::Diary,
            id: text(e, "id").to_string(),
            stamp: stamp_in(extended_values(e), tenant, Kind::Diary),
            facts: Facts {
                title: text(e, "subject").to_string(),
                when: when.to_string(),
                done: false,
            },
        });
    }
    let lists = dump["todoLists"].as_array().into_iter().flatten();
    for list in lists.filter(|l| text(l, "displayName") == world.task_list) {
        for t in list["tasks"].as_array().into_iter().flatten() {
            let linked = t["linkedResources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["externalId"].as_str());
            items.mailbox.push(MailboxItem {
                kind: Kind::Task,
                id: text(t, "id").to_string(),
                stamp: stamp_in(linked, tenant, Kind::Task),
                facts: Facts {
                    title: text(t, "title").to_string(),
                    when: String::new(),
                    done: text(t, "status") == "completed",
                },
            });
        }
    }
    let folders = dump["contactFolders"].as_array().into_iter().flatten();
    for folder in folders.filter(|f| text(f, "displayName") == world.contact_folder) {
        for c in folder["contacts"].as_array().into_iter().flatten() {
            items.mailbox.push(MailboxItem {
                kind: Kind::Contact,
                id: text(c, "id").to_string(),
                stamp: stamp_in(extended_values(c), tenant, Kind::Contact),
                facts: contact_facts(
                    text(c, "givenName"),
                    text(c, "surname"),
                    c["emailAddresses"][0]["address"]
                        .as_str()
                        .unwrap_or_default(),
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(title: &str) -> Facts {
        Facts {
            title: title.into(),
            when: "2026-11-23T09:00:00".into(),
            done: false,
        }
    }

    fn crm(id: u32, title: &str) -> CrmItem {
        CrmItem {
            kind: Kind::Diary,
            id,
            facts: facts(title),
        }
    }

    fn copy(id: &str, stamp: Option<u32>, title: &str) -> MailboxItem {
        MailboxItem {
            kind: Kind::Diary,
            id: id.into(),
            stamp,
            facts: facts(title),
        }
    }

    fn user() -> Linked {
        Linked {
            login: "U00001".into(),
            associate_id: 100_001,
            mailbox: "user00001@tenant.example".into(),
            mailbox_id: "m1".into(),
            rank: 1,
        }
    }

    fn check(items: &UserItems) -> Comparison {
        let mut out = Comparison::default();
        compare_kind(&user(), Kind::Diary, items, &mut out);
        out
    }

    #[test]
    fn items_in_step_on_both_sides_have_converged() {
        let items = UserItems {
            crm: vec![crm(1, "Review"), crm(2, "Demo")],
            mailbox: vec![copy("a", Some(1), "Review"), copy("b", Some(2), "Demo")],
        };
        let out = check(&items);
        assert!(out.converged(), "{out:?}");
        assert_eq!(items.pairs(Kind::Diary).len(), 2);
    }

    #[test]
    fn every_way_of_differing_is_named_with_user_kind_and_item() {
        let items = UserItems {
            crm: vec![crm(1, "Review"), crm(2, "Demo"), crm(3, "Lunch")],
            mailbox: vec![
                copy("a", Some(1), "Review (renamed)"),
                copy("b", Some(2), "Demo"),
                copy("c", Some(2), "Demo"),
                copy("d", None, "Training"),
                copy("e", Some(9), "Gone"),
            ],
        };
        let out = check(&items);
        let text: Vec<String> = out.differences.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("U00001 diary: CRM item 1 is \"Review\"")
                    && t.contains("mailbox copy is \"Review (renamed)\"")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("CRM item 3 \"Lunch\"")
                    && t.contains("has no copy in the mailbox")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("\"Training\"") && t.contains("not stamped")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("CRM item 9, which the CRM no longer has")),
            "{text:#?}"
        );
        // One extra copy of item 2: one duplicate, counted once although it is held twice
        // by stamp and by content.
        assert_eq!(out.duplicates.len(), 1, "{:#?}", out.duplicates);
        assert!(out.duplicates[0].what.contains("2 times"));
        assert!(!out.converged());
    }

    #[test]
    fn the_same_item_twice_in_the_crm_is_a_duplicate() {
        let items = UserItems {
            crm: vec![crm(1, "Review"), crm(2, "Review")],
            mailbox: vec![copy("a", Some(1), "Review"), copy("b", Some(2), "Review")],
        };
        let out = check(&items);
        assert_eq!(out.duplicates.len(), 2, "{:#?}", out.duplicates);
    }
}
