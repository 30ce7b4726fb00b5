//! The emulated tenant's data: users, and per mailbox its calendar, To Do lists and contact
//! folders. Every write in a mailbox takes the next number of the mailbox's change sequence;
//! each collection keeps a change log ordered by that number (the item's latest change, or
//! the tombstone of a deleted item), which is what delta queries page through.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::contacts::{Contact, ContactFolder};
use super::events::Event;
use super::series::Shape;
use super::todo::{Task, TodoList};
use super::tokens::{self, IdKind};
use crate::sandbox::scenario::{GraphTenant, MailboxSeed};

/// Tombstones a collection keeps; older ones are dropped and delta tokens from before them
/// get `410 Gone` (Exchange's delta token cache is bounded too).
pub const MAX_TOMBSTONES: usize = 2000;

/// An item of a collection that delta queries track.
pub trait Item {
    fn id(&self) -> &str;
    /// The sequence number of the item's latest change.
    fn seq(&self) -> u64;
    fn set_seq(&mut self, seq: u64);
}

enum Slot {
    /// A live item (by its ordinal).
    Live(u64),
    /// A deleted item's id.
    Removed(String),
}

/// What changed at one point of a collection's change log.
pub enum Change<'a, T> {
    Live(&'a T),
    Removed(&'a str),
}

/// Items in creation order, with their change log.
pub struct Collection<T> {
    items: BTreeMap<u64, T>,
    index: HashMap<String, u64>,
    next_ordinal: u64,
    log: BTreeMap<u64, Slot>,
    tombstones: VecDeque<u64>,
    /// Changes at or below this sequence number are no longer known (tombstones dropped).
    floor: u64,
}

impl<T: Item> Default for Collection<T> {
    fn default() -> Self {
        Collection {
            items: BTreeMap::new(),
            index: HashMap::new(),
            next_ordinal: 0,
            log: BTreeMap::new(),
            tombstones: VecDeque::new(),
            floor: 0,
        }
    }
}

impl<T: Item> Collection<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).and_then(|ord| self.items.get(ord))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Inserts a new item or replaces the one with its id, as the change `seq`.
    pub fn put(&mut self, mut item: T, seq: u64) {
        item.set_seq(seq);
        let ordinal = match self.index.get(item.id()).copied() {
            Some(ordinal) => {
                if let Some(old) = self.items.get(&ordinal) {
                    self.log.remove(&old.seq());
                }
                ordinal
            }
            None => {
                let ordinal = self.next_ordinal;
                self.next_ordinal += 1;
                self.index.insert(item.id().to_string(), ordinal);
                ordinal
            }
        };
        self.items.insert(ordinal, item);
        self.log.insert(seq, Slot::Live(ordinal));
    }

    /// Deletes an item, leaving a tombstone at `seq`.
    pub fn remove(&mut self, id: &str, seq: u64) -> Option<T> {
        let ordinal = self.index.remove(id)?;
        let item = self.items.remove(&ordinal)?;
        self.log.remove(&item.seq());
        self.log.insert(seq, Slot::Removed(id.to_string()));
        self.tombstones.push_back(seq);
        while self.tombstones.len() > MAX_TOMBSTONES {
            if let Some(oldest) = self.tombstones.pop_front() {
                self.log.remove(&oldest);
                self.floor = self.floor.max(oldest);
            }
        }
        Some(item)
    }

    /// Live items in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.values()
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// The log's entries with sequence numbers in `(after, upto]`, oldest first.
    pub fn changes(&self, after: u64, upto: u64) -> impl Iterator<Item = (u64, Change<'_, T>)> {
        let range = if after < upto {
            self.log.range(after + 1..=upto)
        } else {
            self.log.range(0..0)
        };
        range.filter_map(|(seq, slot)| match slot {
            Slot::Live(ordinal) => self.items.get(ordinal).map(|i| (*seq, Change::Live(i))),
            Slot::Removed(id) => Some((*seq, Change::Removed(id.as_str()))),
        })
    }
}

/// A user of the directory (and owner of a mailbox).
#[derive(Debug, Clone)]
pub struct UserInfo {
    pub id: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub proxy_addresses: Vec<String>,
    pub time_zone: String,
}

impl UserInfo {
    fn of(seed: &MailboxSeed) -> UserInfo {
        let mut words = seed.display_name.splitn(2, ' ');
        let given_name = words.next().filter(|w| !w.is_empty()).map(str::to_string);
        let surname = words.next().map(str::to_string);
        UserInfo {
            id: seed.id.clone(),
            display_name: seed.display_name.clone(),
            given_name,
            surname,
            user_principal_name: seed.user_principal_name.clone(),
            mail: seed.mail.clone(),
            proxy_addresses: seed.proxy_addresses.clone(),
            time_zone: seed.time_zone.clone(),
        }
    }

    /// The address Outlook shows as the owner's (organizer of their events).
    pub fn address(&self) -> &str {
        self.mail.as_deref().unwrap_or(&self.user_principal_name)
    }
}

/// One mailbox: the user's calendar, To Do lists and contact folders.
pub struct Mailbox {
    pub user: UserInfo,
    pub rng: ChaCha8Rng,
    seq: u64,
    /// Bumped when the mailbox's delta tokens are expired.
    pub generation: u32,
    key_prefix: [u8; 8],
    pub calendar_id: String,
    pub events: Collection<Event>,
    /// transactionId -> event id, for live events.
    pub transactions: HashMap<String, String>,
    /// The last shapes of deleted series masters, for delta's removals (oldest first out).
    pub removed_series: HashMap<String, VecDeque<(u64, Shape)>>,
    removed_series_order: VecDeque<String>,
    pub lists: Vec<TodoList>,
    pub root_folder_id: String,
    /// The first is the default Contacts folder.
    pub folders: Vec<ContactFolder>,
}

impl Mailbox {
    fn new(seed: &MailboxSeed, rng_seed: u64, now: jiff::Timestamp) -> Mailbox {
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let key_prefix: [u8; 8] = rng.random();
        let calendar_id = tokens::outlook_id(&mut rng, &seed.id, IdKind::Folder);
        let root_folder_id = tokens::outlook_id(&mut rng, &seed.id, IdKind::Folder);
        let mut mailbox = Mailbox {
            user: UserInfo::of(seed),
            rng,
            seq: 0,
            generation: 0,
            key_prefix,
            calendar_id,
            events: Collection::default(),
            transactions: HashMap::new(),
            removed_series: HashMap::new(),
            removed_series_order: VecDeque::new(),
            lists: Vec::new(),
            root_folder_id,
            folders: Vec::new(),
        };
        TodoList::seed_defaults(&mut mailbox);
        ContactFolder::seed_default(&mut mailbox);
        for event in &seed.events {
            Event::seed(&mut mailbox, event, now);
        }
        for task in &seed.tasks {
            Task::seed(&mut mailbox, task, now);
        }
        for contact in &seed.contacts {
            Contact::seed(&mut mailbox, contact, now);
        }
        mailbox
    }

    /// The sequence number for the next write.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Keeps a deleted series' shapes while its tombstone may still be reported.
    pub fn remember_removed_series(&mut self, id: &str, shapes: VecDeque<(u64, Shape)>) {
        self.removed_series.insert(id.to_string(), shapes);
        self.removed_series_order.push_back(id.to_string());
        while self.removed_series_order.len() > MAX_TOMBSTONES {
            if let Some(oldest) = self.removed_series_order.pop_front() {
                self.removed_series.remove(&oldest);
            }
        }
    }

    /// The latest sequence number used.
    pub fn current_seq(&self) -> u64 {
        self.seq
    }

    pub fn change_key(&self, seq: u64) -> String {
        tokens::change_key(&self.key_prefix, seq)
    }

    pub fn new_id(&mut self, kind: IdKind) -> String {
        tokens::outlook_id(&mut self.rng, &self.user.id, kind)
    }

    pub fn new_guid(&mut self) -> String {
        tokens::guid(&mut self.rng)
    }

    pub fn list(&self, id: &str) -> Option<&TodoList> {
        self.lists.iter().find(|l| l.id == id)
    }

    pub fn list_mut(&mut self, id: &str) -> Option<&mut TodoList> {
        self.lists.iter_mut().find(|l| l.id == id)
    }

    pub fn folder(&self, id: &str) -> Option<&ContactFolder> {
        self.folders.iter().find(|f| f.id == id)
    }

    pub fn folder_mut(&mut self, id: &str) -> Option<&mut ContactFolder> {
        self.folders.iter_mut().find(|f| f.id == id)
    }

    pub fn default_folder_id(&self) -> String {
        self.folders
            .first()
            .map(|f| f.id.clone())
            .unwrap_or_default()
    }

    pub fn default_list_id(&self) -> Option<String> {
        self.lists
            .iter()
            .find(|l| l.wellknown == "defaultList")
            .map(|l| l.id.clone())
    }

    /// The folder holding a contact, searched in every folder.
    pub fn folder_of_contact(&self, contact_id: &str) -> Option<String> {
        self.folders
            .iter()
            .find(|f| f.contacts.contains(contact_id))
            .map(|f| f.id.clone())
    }
}

/// The tenant: app registration, directory, mailboxes.
pub struct Tenant {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime_secs: u64,
    pub users: Vec<UserInfo>,
    index: HashMap<String, usize>,
    mailboxes: Vec<Mutex<Mailbox>>,
}

impl Tenant {
    pub fn build(seed: &GraphTenant, now: jiff::Timestamp, rng_seed: u64) -> Tenant {
        let mut index = HashMap::new();
        let mut users = Vec::with_capacity(seed.mailboxes.len());
        let mut mailboxes = Vec::with_capacity(seed.mailboxes.len());
        for (i, m) in seed.mailboxes.iter().enumerate() {
            for key in [Some(&m.id), Some(&m.user_principal_name), m.mail.as_ref()]
                .into_iter()
                .flatten()
            {
                index.entry(key.to_lowercase()).or_insert(i);
            }
            users.push(UserInfo::of(m));
            // Each mailbox has its own generator, so its ids do not depend on the others'.
            let mailbox_seed = rng_seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(i as u64 + 1);
            mailboxes.push(Mutex::new(Mailbox::new(m, mailbox_seed, now)));
        }
        Tenant {
            tenant_id: seed.tenant_id.clone(),
            client_id: seed.client_id.clone(),
            client_secret: seed.client_secret.clone(),
            token_lifetime_secs: seed.token_lifetime_secs,
            users,
            index,
            mailboxes,
        }
    }

    /// The mailbox (directory position) an id, UPN or address names.
    pub fn resolve(&self, key: &str) -> Option<usize> {
        self.index.get(&key.to_lowercase()).copied()
    }

    pub fn len(&self) -> usize {
        self.mailboxes.len()
    }

    /// Locks one mailbox (never held across an await).
    pub fn mailbox(&self, i: usize) -> Option<MutexGuard<'_, Mailbox>> {
        self.mailboxes
            .get(i)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing {
        id: String,
        seq: u64,
    }

    impl Item for Thing {
        fn id(&self) -> &str {
            &self.id
        }
        fn seq(&self) -> u64 {
            self.seq
        }
        fn set_seq(&mut self, seq: u64) {
            self.seq = seq;
        }
    }

    fn thing(id: &str) -> Thing {
        Thing {
            id: id.into(),
            seq: 0,
        }
    }

    fn log(c: &Collection<Thing>, after: u64, upto: u64) -> Vec<String> {
        c.changes(after, upto)
            .map(|(seq, ch)| match ch {
                Change::Live(t) => format!("{seq}:{}", t.id),
                Change::Removed(id) => format!("{seq}:-{id}"),
            })
            .collect()
    }

    #[test]
    fn each_item_appears_once_in_the_log_at_its_latest_change() {
        let mut c = Collection::default();
        c.put(thing("a"), 1);
        c.put(thing("b"), 2);
        c.put(thing("a"), 3);
        c.remove("b", 4);
        assert_eq!(log(&c, 0, 10), vec!["3:a", "4:-b"]);
        assert_eq!(log(&c, 3, 10), vec!["4:-b"]);
        assert_eq!(log(&c, 4, 4), Vec::<String>::new());
        assert_eq!(c.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn old_tombstones_are_dropped_and_raise_the_floor() {
        let mut c = Collection::default();
        let mut seq = 0;
        for i in 0..(MAX_TOMBSTONES + 5) {
            seq += 1;
            c.put(thing(&i.to_string()), seq);
            seq += 1;
            c.remove(&i.to_string(), seq);
        }
        assert!(c.floor() > 0);
        assert_eq!(c.changes(0, seq).count(), MAX_TOMBSTONES);
    }
}
