//! Writes and lookups of single items: creates that are never made twice (events carry a
//! `transactionId` and may simply be sent again; tasks and contacts are looked up by stamp
//! before a create and again after a failure that may have reached Graph), deletes, stamps
//! written back, and the lookup by stamp. Updates are in `update.rs`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::delta::{self, item_path};
use super::folders::Container;
use super::wire::{self, Op};
use super::{GraphClient, is_not_found, json_of, map, maybe_done, series_io};
use crate::connector::http::{Response, Retry};
use crate::connector::model::{Item, Kind, MailboxItemId, Observed, Stamp, Version};
use crate::connector::{ConnectorError, Deleted, MailboxRef, Service, Written};

/// One write of a run for one mailbox ([`GraphClient::write_batch`]).
#[derive(Debug, Clone)]
pub enum Write {
    Create {
        item: Item,
        stamp: Stamp,
    },
    /// `expected`: the version the item must still have ([`super::update::update`]).
    Update {
        id: MailboxItemId,
        item: Item,
        expected: Option<Version>,
    },
    Delete {
        kind: Kind,
        id: MailboxItemId,
    },
    SetStamp {
        kind: Kind,
        id: MailboxItemId,
        stamp: Stamp,
    },
}

/// What one write of a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Written(Box<Written<MailboxItemId>>),
    Deleted(Deleted),
}

/// The `transactionId` of the event for `stamp` in `mailbox`: the same on every attempt and
/// in every process (so Graph answers a repeated create with the event the first one made,
/// even when crmsync's history of the first was lost), different for every mailbox and CRM
/// item. 32 hex digits of SHA-256 over the mailbox address and the stamp.
pub fn transaction_id(mailbox: &MailboxRef, stamp: &Stamp) -> String {
    let mut hash = Sha256::new();
    hash.update(mailbox.address.to_ascii_lowercase().as_bytes());
    hash.update(b"\n");
    hash.update(stamp.encode().as_bytes());
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("crmsync-{hex}")
}

pub(super) fn item_error(what: impl Into<String>, item: &str) -> ConnectorError {
    ConnectorError::Item {
        service: Service::Graph,
        item: item.to_string(),
        what: what.into(),
    }
}

/// What a write answered: id, version, modification time.
pub fn written(value: &Value, kind: Kind) -> Result<Written<MailboxItemId>, ConnectorError> {
    let meta = map::meta(value, kind == Kind::Task)
        .ok_or_else(|| wire::malformed("a written item without id, version or time"))?;
    Ok(Written {
        id: meta.id,
        version: meta.version,
        modified: meta.modified,
        item: map::observed(kind, value).map(|o| o.item),
    })
}

pub(super) fn response_json(response: &Response, item: &str) -> Result<Value, ConnectorError> {
    json_of(response, Op::Write, item)
}

impl GraphClient {
    /// The dedicated list or folder, or an item error when the user deleted it.
    pub(super) async fn required(
        &self,
        container: Container,
        mailbox: &MailboxRef,
    ) -> Result<String, ConnectorError> {
        self.container(container, mailbox, false)
            .await?
            .ok_or_else(|| item_error("its list or folder no longer exists", "container"))
    }

    pub(super) fn task_path(mailbox: &MailboxRef, list: &str, id: Option<&str>) -> String {
        let mut path = format!(
            "{}/todo/lists/{}/tasks",
            Self::mailbox_path(mailbox),
            wire::segment(list)
        );
        if let Some(id) = id {
            path.push('/');
            path.push_str(&wire::segment(id));
        }
        path
    }

    pub(super) fn crm_link(&self, stamp: &Stamp) -> Option<String> {
        self.options.crm_link.as_ref().map(|t| {
            t.replace("{tenant}", &stamp.tenant)
                .replace("{kind}", stamp.kind.as_str())
                .replace("{id}", &stamp.crm_id.to_string())
        })
    }

    /// Every task of the list with its linked resources (tasks cannot be filtered by them),
    /// 100 per page.
    async fn scan_tasks(
        &self,
        mailbox: &MailboxRef,
        list: &str,
        mut each: impl FnMut(&Value),
    ) -> Result<(), ConnectorError> {
        let mut path = format!(
            "{}?$expand=linkedResources&$top=100",
            Self::task_path(mailbox, list, None)
        );
        for _ in 0..100_000 {
            let page = self
                .get_json(mailbox, &path, wire::PREFER_IDS_UTC, Op::Read, "tasks")
                .await?;
            for task in page["value"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                each(task);
            }
            match page["@odata.nextLink"].as_str() {
                Some(next) => path = self.relative(next)?,
                None => return Ok(()),
            }
        }
        Err(wire::malformed("the task listing does not end"))
    }

    /// The task carrying `stamp` in the list.
    async fn find_task(
        &self,
        mailbox: &MailboxRef,
        list: &str,
        stamp: &Stamp,
    ) -> Result<Option<Value>, ConnectorError> {
        let mut found: Option<Value> = None;
        self.scan_tasks(mailbox, list, |task| {
            if map::task_has_stamp(task, stamp) {
                found = pick(found.take(), task.clone());
            }
        })
        .await?;
        Ok(found)
    }

    /// The stamps of every task in the list.
    pub(super) async fn task_stamps(
        &self,
        mailbox: &MailboxRef,
        list: &str,
    ) -> Result<std::collections::HashSet<Stamp>, ConnectorError> {
        let mut stamps = std::collections::HashSet::new();
        self.scan_tasks(mailbox, list, |task| {
            if let Some(s) = map::task_stamp_of(task) {
                stamps.insert(s);
            }
        })
        .await?;
        Ok(stamps)
    }

    /// The event or contact carrying `stamp` (the documented extended-property filter).
    async fn find_stamped(
        &self,
        mailbox: &MailboxRef,
        kind: Kind,
        stamp: &Stamp,
    ) -> Result<Option<Value>, ConnectorError> {
        let collection = match kind {
            Kind::Contact => match self
                .container(Container::ContactFolder, mailbox, false)
                .await?
            {
                Some(folder) => format!("contactFolders/{}/contacts", wire::segment(&folder)),
                None => return Ok(None),
            },
            _ => "events".to_string(),
        };
        let path = format!(
            "{}/{collection}?{}",
            Self::mailbox_path(mailbox),
            wire::query(&[
                ("$filter", &map::stamp_filter(stamp)),
                ("$expand", &map::expand_properties()),
            ])
        );
        let page = self
            .get_json(
                mailbox,
                &path,
                &delta::prefer(kind, None),
                Op::Read,
                kind.as_str(),
            )
            .await?;
        let mut found = None;
        for v in page["value"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            found = pick(found, v.clone());
        }
        Ok(found)
    }

    async fn find_value(
        &self,
        mailbox: &MailboxRef,
        stamp: &Stamp,
    ) -> Result<Option<Value>, ConnectorError> {
        match stamp.kind {
            Kind::Task => match self.container(Container::TaskList, mailbox, false).await? {
                Some(list) => self.find_task(mailbox, &list, stamp).await,
                None => Ok(None),
            },
            kind => self.find_stamped(mailbox, kind, stamp).await,
        }
    }
}

/// Of two items with one stamp (there should never be two), the one with the smaller id:
/// the same choice every time.
fn pick(found: Option<Value>, candidate: Value) -> Option<Value> {
    match found {
        Some(f) if f["id"].as_str() <= candidate["id"].as_str() => {
            tracing::warn!("two mailbox items carry one stamp; using the first by id");
            Some(f)
        }
        Some(_) => {
            tracing::warn!("two mailbox items carry one stamp; using the first by id");
            Some(candidate)
        }
        None => Some(candidate),
    }
}

pub async fn find_by_stamp(
    client: &GraphClient,
    mailbox: &MailboxRef,
    stamp: &Stamp,
) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
    match client.find_value(mailbox, stamp).await? {
        // A series is found by its master (an instance that carries the stamp too leads to
        // its master).
        Some(v) if stamp.kind == Kind::Diary && series_io::is_master(&v) => {
            series_io::read(client, mailbox, &v).await
        }
        Some(v) if stamp.kind == Kind::Diary && series_io::master_of_instance(&v).is_some() => {
            let master = series_io::master_of_instance(&v).unwrap_or_default();
            series_io::read_id(client, mailbox, master).await
        }
        Some(v) => map::observed(stamp.kind, &v)
            .map(Some)
            .ok_or_else(|| wire::malformed("an item that cannot be read")),
        None => Ok(None),
    }
}

pub async fn create(
    client: &GraphClient,
    mailbox: &MailboxRef,
    item: &Item,
    stamp: &Stamp,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    let user = GraphClient::mailbox_path(mailbox);
    match item {
        Item::Diary(d) if d.series.is_some() => {
            let series = d
                .series
                .as_deref()
                .ok_or_else(|| wire::malformed("no series"))?;
            series_io::create(client, mailbox, d, series, stamp).await
        }
        Item::Diary(d) => {
            let body = map::event_create(d, stamp, &transaction_id(mailbox, stamp));
            // Graph answers a repeated transactionId with the event the first POST made:
            // sending it again after any failure is safe.
            let response = client
                .write(
                    Method::POST,
                    mailbox,
                    &format!("{user}/events"),
                    &delta::prefer(Kind::Diary, None),
                    Some(&body),
                    Retry::Safe,
                    None,
                )
                .await?;
            let answer = response_json(&response, "event")?;
            let mut written = written(&answer, Kind::Diary)?;
            // A POST's answer does not expand extended properties, where the task type lives:
            // the event holds the one sent (an event met by its `transactionId` holds the one
            // its first POST sent, which only crmsync writes).
            if answer.get("singleValueExtendedProperties").is_none()
                && let Some(Item::Diary(held)) = written.item.as_mut()
            {
                held.task_type.clone_from(&d.task_type);
            }
            Ok(written)
        }
        Item::Task(t) => {
            let list = client
                .container(Container::TaskList, mailbox, true)
                .await?
                .ok_or_else(|| wire::malformed("no To Do list"))?;
            let body = map::task_create(
                t,
                map::linked_resource(stamp, client.crm_link(stamp).as_deref()),
            );
            let path = GraphClient::task_path(mailbox, &list, None);
            create_once(client, mailbox, stamp, Kind::Task, &path, &body).await
        }
        Item::Contact(c) => {
            let folder = client
                .container(Container::ContactFolder, mailbox, true)
                .await?
                .ok_or_else(|| wire::malformed("no contact folder"))?;
            let body = map::contact_create(c, stamp);
            let path = format!("{user}/contactFolders/{}/contacts", wire::segment(&folder));
            create_once(client, mailbox, stamp, Kind::Contact, &path, &body).await
        }
    }
}

/// A create Graph does not de-duplicate: looked up by stamp first, and after any failure
/// that may have reached Graph looked up again before it is sent again.
async fn create_once(
    client: &GraphClient,
    mailbox: &MailboxRef,
    stamp: &Stamp,
    kind: Kind,
    path: &str,
    body: &Value,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    let retries = client.options.backoff.retries;
    let mut last = None;
    for attempt in 0..=retries {
        if let Some(existing) = client.find_value(mailbox, stamp).await? {
            return written(&existing, kind);
        }
        if attempt > 0
            && let Some(delay) = client.options.backoff.delay(attempt - 1)
        {
            tokio::time::sleep(delay).await;
        }
        let sent = client
            .write(
                Method::POST,
                mailbox,
                path,
                wire::PREFER_IDS_UTC,
                Some(body),
                Retry::Unsafe,
                None,
            )
            .await;
        match sent {
            Ok(r) if r.status.is_success() => {
                return written(&response_json(&r, kind.as_str())?, kind);
            }
            Ok(r) if r.status.is_server_error() => {
                last = Some(wire::classify(r.status, &r.body, Op::Write, kind.as_str()));
            }
            Ok(r) => return Err(wire::classify(r.status, &r.body, Op::Write, kind.as_str())),
            Err(e) if maybe_done(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    if let Some(existing) = client.find_value(mailbox, stamp).await? {
        return written(&existing, kind);
    }
    Err(last.unwrap_or_else(|| wire::malformed("the create did not finish")))
}

pub async fn delete(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    id: &MailboxItemId,
) -> Result<Deleted, ConnectorError> {
    let path = match kind {
        Kind::Task => match client
            .container(Container::TaskList, mailbox, false)
            .await?
        {
            Some(list) => GraphClient::task_path(mailbox, &list, Some(&id.0)),
            // The list went with the task.
            None => return Ok(Deleted::AlreadyGone),
        },
        kind => item_path(mailbox, kind, &id.0, false),
    };
    let response = client
        .write(
            Method::DELETE,
            mailbox,
            &path,
            wire::PREFER_IDS_UTC,
            None,
            Retry::Safe,
            None,
        )
        .await?;
    if response.status.is_success() {
        return Ok(Deleted::Deleted);
    }
    let error = wire::classify(response.status, &response.body, Op::Write, &id.0);
    match error {
        ConnectorError::Item { .. } if is_not_found(response.status) => Ok(Deleted::AlreadyGone),
        e => Err(e),
    }
}

pub async fn set_stamp(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    id: &MailboxItemId,
    stamp: &Stamp,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    if kind != Kind::Task {
        let path = item_path(mailbox, kind, &id.0, false);
        let body = json!({"singleValueExtendedProperties": [{"id": map::STAMP_PROPERTY, "value": stamp.encode()}]});
        let response = client
            .write(
                Method::PATCH,
                mailbox,
                &path,
                &delta::prefer(kind, None),
                Some(&body),
                Retry::Safe,
                None,
            )
            .await?;
        let event = response_json(&response, &id.0)?;
        // A series' version covers its occurrences too: the answer is the series read whole,
        // or the next update, guarded by it, would take the stamp for someone's change.
        if kind == Kind::Diary
            && super::series_io::is_master(&event)
            && let Some(series) = super::series_io::read_id(client, mailbox, &id.0).await?
        {
            return Ok(super::series_io::written(series));
        }
        return written(&event, kind);
    }
    let list = client.required(Container::TaskList, mailbox).await?;
    let task_path = GraphClient::task_path(mailbox, &list, Some(&id.0));
    let read = format!("{task_path}?$expand=linkedResources");
    let linked = map::linked_resource(stamp, client.crm_link(stamp).as_deref());
    let retries = client.options.backoff.retries;
    for attempt in 0..=retries {
        let task = client
            .get_json(mailbox, &read, wire::PREFER_IDS_UTC, Op::Write, &id.0)
            .await?;
        if map::task_has_stamp(&task, stamp) {
            return written(&task, Kind::Task);
        }
        if attempt > 0
            && let Some(delay) = client.options.backoff.delay(attempt - 1)
        {
            tokio::time::sleep(delay).await;
        }
        // A linked resource is not de-duplicated: read the task again after a failure.
        let sent = client
            .write(
                Method::POST,
                mailbox,
                &format!("{task_path}/linkedResources"),
                wire::PREFER_IDS_UTC,
                Some(&linked),
                Retry::Unsafe,
                None,
            )
            .await;
        match sent {
            Ok(r) if r.status.is_success() || r.status == StatusCode::CONFLICT => {}
            Ok(r) if r.status.is_server_error() => {}
            Ok(r) => return Err(wire::classify(r.status, &r.body, Op::Write, &id.0)),
            Err(e) if maybe_done(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let task = client
        .get_json(mailbox, &read, wire::PREFER_IDS_UTC, Op::Write, &id.0)
        .await?;
    if map::task_has_stamp(&task, stamp) {
        return written(&task, Kind::Task);
    }
    Err(ConnectorError::Transient {
        service: Service::Graph,
        what: "the stamp could not be written onto the task".to_string(),
        retry_after: None,
    })
}

/// One item as it is now (with its stamp), or `None` when it no longer exists.
pub async fn get(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    id: &MailboxItemId,
) -> Result<Option<Observed<MailboxItemId>>, ConnectorError> {
    let path = match kind {
        Kind::Task => match client
            .container(Container::TaskList, mailbox, false)
            .await?
        {
            Some(list) => format!(
                "{}?$expand=linkedResources",
                GraphClient::task_path(mailbox, &list, Some(&id.0))
            ),
            // The list is gone, and its tasks with it.
            None => return Ok(None),
        },
        kind => format!(
            "{}?{}",
            item_path(mailbox, kind, &id.0, false),
            wire::query(&[("$expand", &map::expand_properties())])
        ),
    };
    let request = client.request(Method::GET, mailbox, &path, &delta::prefer(kind, None))?;
    let response = client.send(&request).await?;
    if is_not_found(response.status) {
        return Ok(None);
    }
    let value = json_of(&response, Op::Read, &id.0)?;
    if kind == Kind::Diary && series_io::is_master(&value) {
        return series_io::read(client, mailbox, &value).await;
    }
    if kind == Kind::Diary && series_io::master_of_instance(&value).is_some() {
        // Occurrences are never items of their own (they are never paired).
        return Err(item_error(
            "an occurrence of a recurring series is read as part of its series, by the series' id",
            &id.0,
        ));
    }
    map::observed(kind, &value)
        .map(Some)
        .ok_or_else(|| wire::malformed("an item that cannot be read"))
}
