//! Personal contacts and contact folders.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::error::GraphError;
use super::events_json::physical_address;
use super::extprops::{self, ExtProps};
use super::store::{Collection, Item, Mailbox};
use super::tokens::IdKind;
use super::wire::{self, Obj};
use crate::sandbox::scenario::ContactSeed;

const STRINGS: &[&str] = &[
    "assistantName",
    "businessHomePage",
    "companyName",
    "department",
    "displayName",
    "fileAs",
    "generation",
    "givenName",
    "initials",
    "jobTitle",
    "manager",
    "middleName",
    "mobilePhone",
    "nickName",
    "officeLocation",
    "personalNotes",
    "profession",
    "spouseName",
    "surname",
    "title",
    "yomiCompanyName",
    "yomiGivenName",
    "yomiSurname",
];
const STRING_LISTS: &[&str] = &[
    "businessPhones",
    "homePhones",
    "imAddresses",
    "children",
    "categories",
];
const ADDRESSES: &[&str] = &["homeAddress", "businessAddress", "otherAddress"];
const OTHER_WRITABLE: &[&str] = &[
    "emailAddresses",
    "birthday",
    "singleValueExtendedProperties",
    "multiValueExtendedProperties",
    "extensions",
    "photo",
];
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "parentFolderId",
];

/// The properties `$select` and `$filter` know.
pub const PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "parentFolderId",
    "birthday",
    "fileAs",
    "displayName",
    "givenName",
    "initials",
    "middleName",
    "nickName",
    "surname",
    "title",
    "yomiGivenName",
    "yomiSurname",
    "yomiCompanyName",
    "generation",
    "imAddresses",
    "jobTitle",
    "companyName",
    "department",
    "officeLocation",
    "profession",
    "businessHomePage",
    "assistantName",
    "manager",
    "homePhones",
    "mobilePhone",
    "businessPhones",
    "spouseName",
    "personalNotes",
    "children",
    "emailAddresses",
    "homeAddress",
    "businessAddress",
    "otherAddress",
    "singleValueExtendedProperties",
];

pub struct ContactFolder {
    pub id: String,
    pub parent_id: String,
    pub display_name: String,
    pub contacts: Collection<Contact>,
}

impl ContactFolder {
    /// The mailbox's default Contacts folder.
    pub fn seed_default(mailbox: &mut Mailbox) {
        let id = mailbox.new_id(IdKind::Folder);
        let parent_id = mailbox.root_folder_id.clone();
        mailbox.folders.push(ContactFolder {
            id,
            parent_id,
            display_name: "Contacts".to_string(),
            contacts: Collection::default(),
        });
    }

    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "parentFolderId": self.parent_id,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub seq: u64,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub change_key: String,
    pub folder_id: String,
    /// The properties set, in their JSON form.
    pub fields: Map<String, Value>,
    pub extended: ExtProps,
}

impl Item for Contact {
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

impl Contact {
    fn blank(folder_id: &str, now: Timestamp) -> Contact {
        Contact {
            id: String::new(),
            seq: 0,
            created: now,
            modified: now,
            change_key: String::new(),
            folder_id: folder_id.to_string(),
            fields: Map::new(),
            extended: Vec::new(),
        }
    }

    /// A contact of the scenario, in the default Contacts folder.
    pub fn seed(mailbox: &mut Mailbox, seed: &ContactSeed, now: Timestamp) {
        let folder = mailbox.default_folder_id();
        let mut contact = Contact::blank(&folder, now);
        let f = &mut contact.fields;
        f.insert("givenName".into(), json!(seed.given_name));
        f.insert("surname".into(), json!(seed.surname));
        f.insert(
            "emailAddresses".into(),
            Value::Array(
                seed.email_addresses
                    .iter()
                    .map(|a| json!({"name": a, "address": a}))
                    .collect(),
            ),
        );
        f.insert("businessPhones".into(), json!(seed.business_phones));
        for (key, value) in [
            ("mobilePhone", &seed.mobile_phone),
            ("companyName", &seed.company_name),
            ("jobTitle", &seed.job_title),
        ] {
            if let Some(v) = value {
                f.insert(key.into(), json!(v));
            }
        }
        let _ = Contact::commit(mailbox, contact, now, true);
    }

    /// Stores a new or changed contact as the mailbox's next change.
    pub fn commit(
        mailbox: &mut Mailbox,
        mut contact: Contact,
        now: Timestamp,
        new: bool,
    ) -> Result<Contact, GraphError> {
        if new {
            contact.id = mailbox.new_id(IdKind::Contact);
            contact.created = now;
        }
        let seq = mailbox.next_seq();
        contact.modified = now;
        contact.change_key = mailbox.change_key(seq);
        contact.seq = seq;
        let folder = mailbox
            .folder_mut(&contact.folder_id)
            .ok_or_else(GraphError::item_not_found)?;
        folder.contacts.put(contact.clone(), seq);
        Ok(contact)
    }

    pub fn create(
        mailbox: &mut Mailbox,
        folder_id: &str,
        body: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<Contact, GraphError> {
        let mut contact = Contact::blank(folder_id, now);
        contact.apply(&Obj::new(body, "contact"))?;
        Contact::commit(mailbox, contact, now, true)
    }

    pub fn update(
        mailbox: &mut Mailbox,
        folder_id: &str,
        id: &str,
        body: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<Contact, GraphError> {
        let folder = mailbox
            .folder(folder_id)
            .ok_or_else(GraphError::item_not_found)?;
        let mut contact = folder
            .contacts
            .get(id)
            .cloned()
            .ok_or_else(GraphError::item_not_found)?;
        contact.apply(&Obj::new(body, "contact"))?;
        Contact::commit(mailbox, contact, now, false)
    }

    fn apply(&mut self, obj: &Obj<'_>) -> Result<(), GraphError> {
        obj.known(&[STRINGS, STRING_LISTS, ADDRESSES, OTHER_WRITABLE, READ_ONLY].concat())?;
        for unsupported in ["multiValueExtendedProperties", "extensions"] {
            if obj.array(unsupported)?.is_some_and(|a| !a.is_empty()) {
                return Err(GraphError::new(
                    axum::http::StatusCode::NOT_IMPLEMENTED,
                    "notSupported",
                    format!("The sandbox does not emulate '{unsupported}' on contacts."),
                ));
            }
        }
        for key in STRINGS {
            if obj.has(key) {
                match obj.string(key)? {
                    Some(v) => self.fields.insert((*key).into(), json!(v)),
                    None => self.fields.remove(*key),
                };
            }
        }
        for key in STRING_LISTS {
            if let Some(v) = obj.strings(key)? {
                self.fields.insert((*key).into(), json!(v));
            }
        }
        for key in ADDRESSES {
            if obj.has(key) {
                let value = match obj.object(key, "physicalAddress")? {
                    Some(address) => physical_address(&address)?,
                    None => json!({}),
                };
                self.fields.insert((*key).into(), value);
            }
        }
        if let Some(items) = obj.objects("emailAddresses", "emailAddress")? {
            let mut addresses = Vec::new();
            for item in items {
                item.known(&["name", "address"])?;
                let address = item.string("address")?.unwrap_or_default();
                let name = item.string("name")?.unwrap_or_else(|| address.clone());
                addresses.push(json!({"name": name, "address": address}));
            }
            self.fields
                .insert("emailAddresses".into(), Value::Array(addresses));
        }
        if obj.has("birthday") {
            match obj.string("birthday")? {
                None => {
                    self.fields.remove("birthday");
                }
                Some(text) => {
                    let ts = wire::parse_instant(&text).ok_or_else(|| {
                        GraphError::body_read(format!(
                            "Cannot convert the literal '{text}' to the expected type 'Edm.DateTimeOffset'."
                        ))
                    })?;
                    self.fields
                        .insert("birthday".into(), json!(wire::utc_secs(ts)));
                }
            }
        }
        extprops::apply(&mut self.extended, obj)
    }

    /// The display name Outlook shows: the one set, else made from the name parts.
    fn display_name(&self) -> String {
        if let Some(Value::String(name)) = self.fields.get("displayName") {
            return name.clone();
        }
        ["givenName", "middleName", "surname"]
            .iter()
            .filter_map(|k| self.fields.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The documented property set (`contact.json`): unset strings null, lists empty,
    /// addresses `{}`, `fileAs` and `personalNotes` empty strings.
    pub fn render(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert(
            "@odata.etag".into(),
            json!(format!("W/\"{}\"", self.change_key)),
        );
        out.insert("id".into(), json!(self.id));
        out.insert(
            "createdDateTime".into(),
            json!(wire::utc_secs(self.created)),
        );
        out.insert(
            "lastModifiedDateTime".into(),
            json!(wire::utc_secs(self.modified)),
        );
        out.insert("changeKey".into(), json!(self.change_key));
        out.insert("parentFolderId".into(), json!(self.folder_id));
        out.insert(
            "birthday".into(),
            self.fields.get("birthday").cloned().unwrap_or(Value::Null),
        );
        for key in STRINGS {
            let default = if matches!(*key, "fileAs" | "personalNotes") {
                json!("")
            } else {
                Value::Null
            };
            out.insert(
                (*key).into(),
                self.fields.get(*key).cloned().unwrap_or(default),
            );
        }
        out.insert("displayName".into(), json!(self.display_name()));
        for key in STRING_LISTS.iter().chain(["emailAddresses"].iter()) {
            out.insert(
                (*key).into(),
                self.fields.get(*key).cloned().unwrap_or(json!([])),
            );
        }
        for key in ADDRESSES {
            out.insert(
                (*key).into(),
                self.fields.get(*key).cloned().unwrap_or(json!({})),
            );
        }
        out
    }

    pub fn filter_json(&self, full: bool) -> Value {
        let mut map = if full { self.render() } else { Map::new() };
        map.insert(
            "singleValueExtendedProperties".into(),
            extprops::json(&self.extended),
        );
        Value::Object(map)
    }
}
