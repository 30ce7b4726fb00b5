//! The end state, read from both sides through crmsync's own clients (every item the user
//! has, inside the window or not), and the properties checked against it and the model.

use std::collections::BTreeMap;

use crmsync::connector::model::{CrmId, Item, Kind, MailboxItemId, Observed, Window};
use crmsync::connector::{CrmConnector, MailboxConnector};

use super::model::{Content, Expected, Model, Side};
use super::world::World;

pub struct EndState {
    pub window: Window,
    pub crm: BTreeMap<CrmId, Observed<CrmId>>,
    pub mailbox: Vec<Observed<MailboxItemId>>,
}

fn content(item: &Item) -> Option<Content> {
    match item {
        Item::Diary(d) => Some(Content {
            title: d.subject.clone(),
            when: d.when.clone(),
        }),
        _ => None,
    }
}

fn title(item: &Item) -> &str {
    match item {
        Item::Diary(d) => &d.subject,
        _ => "",
    }
}

impl EndState {
    pub async fn read(world: &World) -> EndState {
        let state = world.sandbox.state();
        let appointments = state
            .superoffice
            .associate_items(world.user.associate_id)
            .expect("ANNA's items")
            .appointments;
        let mut crm = BTreeMap::new();
        let mut ids = std::collections::BTreeSet::new();
        for (a, todo) in appointments {
            if !todo {
                // A row of a series is read as its series.
                ids.insert(match a.occurrence {
                    Some(o) => CrmId::series(o.rule_id),
                    None => CrmId(a.id),
                });
            }
        }
        for id in ids {
            if let Some(o) = world.crm.get(Kind::Diary, id).await.expect("a CRM read") {
                crm.insert(o.id, o);
            }
        }
        let mut mailbox = Vec::new();
        for (id, _) in world.event_ids() {
            if let Some(o) = world
                .graph
                .get(&world.mailbox(), Kind::Diary, &MailboxItemId(id))
                .await
                .expect("a mailbox read")
            {
                mailbox.push(o);
            }
        }
        EndState {
            window: world.window(),
            crm,
            mailbox,
        }
    }

    fn in_window(&self, item: &Item) -> bool {
        matches!(item, Item::Diary(d) if d.overlaps(&self.window))
    }

    fn with_key(&self, side: Side, key: &str) -> Vec<Content> {
        let items: Vec<&Item> = match side {
            Side::Crm => self.crm.values().map(|o| &o.item).collect(),
            Side::Mailbox => self.mailbox.iter().map(|o| &o.item).collect(),
        };
        items
            .into_iter()
            .filter(|i| Model::key_of(title(i)) == Some(key))
            .filter_map(content)
            .collect()
    }

    /// (1) Both sides hold the same items inside the window, item for item, every mapped field
    /// equal; (2) no CRM item has two mailbox copies, and no mailbox item in the window is
    /// left unstamped (unsynced).
    pub fn converged(&self, tenant: &str, problems: &mut Vec<String>) {
        let mut by_stamp: BTreeMap<CrmId, Vec<&Observed<MailboxItemId>>> = BTreeMap::new();
        for m in &self.mailbox {
            match &m.stamp {
                Some(s) if s.tenant == tenant && s.kind == Kind::Diary => {
                    by_stamp.entry(s.crm_id).or_default().push(m)
                }
                _ if self.in_window(&m.item) => problems.push(format!(
                    "mailbox event {} {:?} is in the window but not synced (no stamp)",
                    m.id,
                    title(&m.item)
                )),
                _ => {}
            }
        }
        for (id, copies) in &by_stamp {
            if copies.len() > 1 {
                problems.push(format!(
                    "CRM item {id} has {} mailbox copies: {:?}",
                    copies.len(),
                    copies.iter().map(|c| title(&c.item)).collect::<Vec<_>>()
                ));
            }
            let in_window = copies.iter().any(|c| self.in_window(&c.item));
            match self.crm.get(id) {
                None if in_window => problems.push(format!(
                    "mailbox copy of CRM item {id} {:?} is in the window, the CRM item is gone",
                    title(&copies[0].item)
                )),
                Some(crm) if in_window || self.in_window(&crm.item) => {
                    for copy in copies {
                        if copy.item.shared_form() != crm.item.shared_form() {
                            problems.push(format!(
                                "CRM item {id} and its mailbox copy {} differ:\n  CRM     {:?}\n  mailbox {:?}",
                                copy.id, crm.item, copy.item
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        for (id, crm) in &self.crm {
            if self.in_window(&crm.item) && !by_stamp.contains_key(id) {
                problems.push(format!(
                    "CRM item {id} {:?} is in the window but not in the mailbox",
                    title(&crm.item)
                ));
            }
        }
    }

    /// (2) No item the user made is twice on a side; (3) nothing the user made or changed is
    /// lost, except what a delete took (see the model's oracle).
    pub fn as_modelled(&self, model: &Model, problems: &mut Vec<String>) {
        for item in &model.items {
            let crm = self.with_key(Side::Crm, &item.key);
            let mailbox = self.with_key(Side::Mailbox, &item.key);
            for (side, found) in [("CRM", &crm), ("mailbox", &mailbox)] {
                if found.len() > 1 {
                    problems.push(format!(
                        "{} is {} times in the {side}: {found:?}",
                        item.key,
                        found.len()
                    ));
                }
            }
            let on = |side: Side| match side {
                Side::Crm => &crm,
                Side::Mailbox => &mailbox,
            };
            match item.expected(&self.window) {
                Expected::Both(content) => {
                    for side in [Side::Crm, Side::Mailbox] {
                        if !on(side).contains(&content) {
                            problems.push(format!(
                                "{}: the user's last edit {content:?} is lost on the {side:?} side, which has {:?}",
                                item.key,
                                on(side)
                            ));
                        }
                    }
                }
                Expected::On(side, content) => {
                    if !on(side).contains(&content) {
                        problems.push(format!(
                            "{}: the user's last edit {content:?} (out of the window) is lost on the {side:?} side, which has {:?}",
                            item.key,
                            on(side)
                        ));
                    }
                }
                Expected::GoneOrOneOf(earlier) => {
                    for found in crm.iter().chain(mailbox.iter()) {
                        if !earlier.contains(found) {
                            problems.push(format!(
                                "{}: deleted by the user, and back with content it never had: {found:?}",
                                item.key
                            ));
                        }
                    }
                    let inside = |c: &[Content]| c.iter().any(|c| c.when.overlaps(&self.window));
                    if inside(&crm) != inside(&mailbox) {
                        problems.push(format!(
                            "{}: deleted by the user, and in the window on one side only: CRM {crm:?}, mailbox {mailbox:?}",
                            item.key
                        ));
                    }
                }
            }
        }
    }
}

/// Every property of the end state; the problems found, empty when all hold.
pub async fn check(world: &World, model: &Model) -> Vec<String> {
    let end = EndState::read(world).await;
    let mut problems = Vec::new();
    end.converged(&world.tenant, &mut problems);
    end.as_modelled(model, &mut problems);
    let crm: Vec<&Item> = end.crm.values().map(|o| &o.item).collect();
    let mailbox: Vec<&Item> = end.mailbox.iter().map(|o| &o.item).collect();
    super::series::check(&model.series, &crm, &mailbox, &end.window, &mut problems);
    problems
}
