//! Updates of single items, guarded by the version the engine decided on: a PATCH of the
//! mapped fields that differ, sent with `If-Match` so that an Outlook edit made after the
//! engine read the item is not overwritten but answered 412, a [`ConnectorError::Conflict`]
//! that leaves both versions for the next pass to decide by policy.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::delta::{self, item_path};
use super::folders::Container;
use super::wire::{self, Op};
use super::writes::{item_error, response_json, written};
use super::{GraphClient, map, series_io};
use crate::connector::http::Retry;
use crate::connector::model::{Item, Kind, MailboxItemId, Version};
use crate::connector::{ConnectorError, MailboxRef, Service, Written};

/// The `If-Match` value that names `version`. To Do's versions are their `@odata.etag`
/// already; events' and contacts' are change keys, which Graph's etag wraps as
/// `W/"<changeKey>"` (the reference samples). An empty version is one never read: no guard.
pub(super) fn if_match(version: &Version) -> Option<String> {
    let v = version.0.as_str();
    if v.is_empty() {
        None
    } else if v.starts_with("W/\"") || v.starts_with('"') {
        Some(v.to_string())
    } else {
        Some(format!("W/\"{v}\""))
    }
}

fn conflict(id: &MailboxItemId) -> ConnectorError {
    ConnectorError::Conflict {
        service: Service::Graph,
        item: id.0.clone(),
    }
}

/// Whether `current` is no longer at `expected`: someone changed it after the engine read it.
pub(super) fn moved_on(current: &Value, kind: Kind, expected: Option<&Version>) -> bool {
    match expected {
        Some(expected) if !expected.0.is_empty() => {
            map::meta(current, kind == Kind::Task).is_some_and(|now| now.version != *expected)
        }
        _ => false,
    }
}

/// Where the item lives and how it is asked for.
async fn locate(
    client: &GraphClient,
    mailbox: &MailboxRef,
    id: &MailboxItemId,
    item: &Item,
) -> Result<(Kind, String, String), ConnectorError> {
    Ok(match item {
        Item::Diary(_) => (
            Kind::Diary,
            item_path(mailbox, Kind::Diary, &id.0, false),
            delta::prefer(Kind::Diary, None),
        ),
        Item::Task(_) => {
            let list = client.required(Container::TaskList, mailbox).await?;
            (
                Kind::Task,
                GraphClient::task_path(mailbox, &list, Some(&id.0)),
                delta::prefer(Kind::Task, None),
            )
        }
        Item::Contact(_) => (
            Kind::Contact,
            item_path(mailbox, Kind::Contact, &id.0, false),
            delta::prefer(Kind::Contact, None),
        ),
    })
}

/// The PATCH that makes `current` hold `item`, `None` when it holds it already. Contacts
/// are crmsync's (one way from the CRM): all mapped fields are written, unless the item
/// already reads as `item`.
pub(super) fn patch_for(
    current: &Value,
    item: &Item,
    id: &MailboxItemId,
) -> Result<Option<Value>, ConnectorError> {
    Ok(match item {
        Item::Diary(d) => {
            if series_io::is_master(current) || series_io::master_of_instance(current).is_some() {
                return Err(item_error(
                    "a recurring series (or an occurrence of one) is not turned into a single \
                     event; the item is left as it is",
                    &id.0,
                ));
            }
            if current["isOrganizer"].as_bool() == Some(false) {
                return Err(item_error(
                    "a meeting organised by someone else is not rewritten",
                    &id.0,
                ));
            }
            map::event_patch(current, d)
        }
        Item::Task(t) => map::task_patch(current, t),
        Item::Contact(c) => {
            let holds = map::observed(Kind::Contact, current)
                .is_some_and(|o| o.item.content_hash() == item.content_hash());
            (!holds).then(|| Value::Object(map::contact_fields(c)))
        }
    })
}

/// Writes `item` over the mailbox item `id`. With `expected`, only over that version: an
/// item changed since (read first, or met by `If-Match` in the gap between the read and the
/// PATCH) is a [`ConnectorError::Conflict`] and is left as it is.
pub async fn update(
    client: &GraphClient,
    mailbox: &MailboxRef,
    id: &MailboxItemId,
    item: &Item,
    expected: Option<&Version>,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    if let Item::Diary(d) = item
        && let Some(series) = d.series.as_deref()
    {
        return series_io::update(client, mailbox, id, d, series, expected).await;
    }
    let (kind, path, prefer) = locate(client, mailbox, id, item).await?;
    let read_path = match kind {
        Kind::Diary | Kind::Contact => format!(
            "{path}?{}",
            wire::query(&[("$expand", &map::expand_properties())])
        ),
        Kind::Task => path.clone(),
    };
    let patch = match item {
        // A contact is written whole: no need to read it first (If-Match still guards it).
        Item::Contact(c) => Value::Object(map::contact_fields(c)),
        _ => {
            // The item as it is, to keep what the user set that crmsync does not map.
            let current = client
                .get_json(mailbox, &read_path, &prefer, Op::Write, &id.0)
                .await?;
            match patch_for(&current, item, id)? {
                // Holds it already (whoever wrote it): nothing is overwritten.
                None => return written(&current, kind),
                Some(_) if moved_on(&current, kind, expected) => return Err(conflict(id)),
                Some(p) => p,
            }
        }
    };
    let guard = expected.and_then(if_match);
    // The same PATCH twice gives the same item: safe to send again. A repeat whose first
    // attempt did arrive meets crmsync's own new change key (412), sorted out below.
    let response = client
        .write(
            Method::PATCH,
            mailbox,
            &path,
            &prefer,
            Some(&patch),
            Retry::Safe,
            guard.as_deref(),
        )
        .await?;
    if response.status == StatusCode::PRECONDITION_FAILED {
        return after_refusal(client, mailbox, id, item, kind, &read_path, &prefer).await;
    }
    written(&response_json(&response, &id.0)?, kind)
}

/// After a 412: the item changed since `expected`. If it already holds what was sent, the
/// change was this update's own (an attempt whose answer was lost): done. Otherwise someone
/// else changed it, and that is a conflict.
async fn after_refusal(
    client: &GraphClient,
    mailbox: &MailboxRef,
    id: &MailboxItemId,
    item: &Item,
    kind: Kind,
    read_path: &str,
    prefer: &str,
) -> Result<Written<MailboxItemId>, ConnectorError> {
    let current = client
        .get_json(mailbox, read_path, prefer, Op::Write, &id.0)
        .await?;
    match patch_for(&current, item, id)? {
        None => written(&current, kind),
        Some(_) => Err(conflict(id)),
    }
}
