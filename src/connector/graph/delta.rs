//! Change feeds: `calendarView/delta` in the window, To Do `tasks/delta` in the dedicated
//! list (with `$expand=linkedResources`, so tasks bring their stamps), and
//! `contactFolders/{id}/contacts/delta` in the dedicated folder. A round follows
//! `@odata.nextLink` to the `@odata.deltaLink` (the cursor). Event and contact deltas carry
//! no extended properties, so the stamps of the items a round reports are read afterwards:
//! one listing of the window or folder with the properties expanded when the round is full
//! or long, else `$batch` GETs of the items, 20 per round trip.

use std::collections::{HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::batch::BatchItem;
use super::folders::Container;
use super::wire::{self, Op};
use super::{GraphClient, map, series, series_io};
use crate::connector::http::Retry;
use crate::connector::model::{Change, Changes, Cursor, Kind, MailboxItemId, Window};
use crate::connector::{ConnectorError, MailboxRef, Service};

/// Upserts up to this many get their stamps by `$batch` GETs (one round trip); more, by a
/// listing with the properties expanded (a page per `LISTING_PAGE` items).
const BATCH_STAMPS_UP_TO: usize = 20;
const LISTING_PAGE: u32 = 500;

fn resync() -> ConnectorError {
    ConnectorError::ResyncNeeded {
        service: Service::Graph,
    }
}

/// The `Prefer` header of `kind`'s reads.
pub fn prefer(kind: Kind, page_size: Option<u32>) -> String {
    wire::prefer(kind == Kind::Diary, page_size)
}

/// The first request of a full round.
pub async fn initial_path(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    window: &Window,
) -> Result<String, ConnectorError> {
    let user = GraphClient::mailbox_path(mailbox);
    Ok(match kind {
        Kind::Diary => format!(
            "{user}/calendarView/delta?{}",
            wire::query(&[
                ("startDateTime", &window.start.to_string()),
                ("endDateTime", &window.end.to_string()),
            ])
        ),
        Kind::Task => {
            let list = client
                .container(Container::TaskList, mailbox, true)
                .await?
                .ok_or_else(|| wire::malformed("no To Do list"))?;
            format!(
                "{user}/todo/lists/{}/tasks/delta?$expand=linkedResources",
                wire::segment(&list)
            )
        }
        Kind::Contact => {
            let folder = client
                .container(Container::ContactFolder, mailbox, true)
                .await?
                .ok_or_else(|| wire::malformed("no contact folder"))?;
            format!(
                "{user}/contactFolders/{}/contacts/delta",
                wire::segment(&folder)
            )
        }
    })
}

/// The UTC days a window covers, as a diary cursor records them.
fn window_days(window: &Window) -> String {
    let day = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    format!("{}/{}", day(window.start), day(window.end))
}

const WINDOW_TAG: &str = "window:";

/// A diary cursor: the delta link and the days of the window it was made for. Graph's
/// `calendarView/delta` keeps to the window its round began with, so items (and occurrences
/// of a series) that a moving window reaches would never be reported on it: once the window
/// has moved to another day, the next round starts over on the new window (a full round; what
/// it does not list is not thereby deleted).
pub fn tag_cursor(window: &Window, link: &Cursor) -> Cursor {
    with_days(&window_days(window), link)
}

/// A delta link under window days read from another cursor ([`split_cursor`]).
pub fn with_days(days: &str, link: &Cursor) -> Cursor {
    Cursor(format!("{WINDOW_TAG}{days} {}", link.0))
}

/// The delta link of a cursor, and the window days it was made for (diary cursors).
pub fn split_cursor(cursor: &Cursor) -> (&str, Option<&str>) {
    match cursor
        .0
        .strip_prefix(WINDOW_TAG)
        .and_then(|rest| rest.split_once(' '))
    {
        Some((days, link)) => (link, Some(days)),
        None => (&cursor.0, None),
    }
}

pub async fn changes(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    cursor: Option<&Cursor>,
    window: &Window,
) -> Result<Changes<MailboxItemId>, ConnectorError> {
    let days = window_days(window);
    let cursor = cursor.filter(|c| kind != Kind::Diary || split_cursor(c).1 == Some(days.as_str()));
    let (path, full) = match cursor {
        // A cursor that is not a link to this Graph cannot be continued: start over.
        Some(c) => (
            client.relative(split_cursor(c).0).map_err(|_| resync())?,
            false,
        ),
        None => (initial_path(client, mailbox, kind, window).await?, true),
    };
    let page = page(client, mailbox, kind, &path).await?;
    let mut changes = round(client, mailbox, kind, page, full, Some(window)).await?;
    if kind == Kind::Diary {
        changes.cursor = tag_cursor(window, &changes.cursor);
    }
    Ok(changes)
}

/// One page of a delta round (a path below the base).
async fn page(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    path: &str,
) -> Result<Value, ConnectorError> {
    let prefer = prefer(kind, Some(client.options.delta_page_size));
    let request = client.request(Method::GET, mailbox, path, &prefer)?;
    let response = client.send(&request).await?;
    if response.status.is_success() {
        return response
            .json::<Value>()
            .map_err(|e| wire::malformed(format!("a delta page: {e}")));
    }
    Err(delta_error(
        client,
        mailbox,
        kind,
        response.status,
        &response.body,
    ))
}

/// A failed delta request: an expired token is a resync; a list or folder the user deleted
/// is forgotten (the next full round makes it again) and is a resync too.
pub fn delta_error(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    status: StatusCode,
    body: &[u8],
) -> ConnectorError {
    let error = wire::classify(status, body, Op::Delta, kind.as_str());
    if status == StatusCode::NOT_FOUND
        && let (ConnectorError::Item { .. }, Some(container)) = (&error, Container::of(kind))
    {
        client.forget(container, mailbox);
        return resync();
    }
    error
}

/// The rest of a round from its first page: the pages, then the stamps of what it reports.
pub async fn round(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    first: Value,
    full: bool,
    window: Option<&Window>,
) -> Result<Changes<MailboxItemId>, ConnectorError> {
    // Graph may list an item more than once in a round: the last entry wins.
    let mut order: Vec<String> = Vec::new();
    let mut latest: HashMap<String, Value> = HashMap::new();
    let mut page = first;
    let mut pages = 0u32;
    let cursor = loop {
        let values = page
            .get_mut("value")
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
            .ok_or_else(|| wire::malformed("a delta page without value"))?;
        for value in values {
            let Some(id) = value.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if latest.insert(id.clone(), value).is_none() {
                order.push(id);
            }
        }
        if let Some(delta) = page.get("@odata.deltaLink").and_then(Value::as_str) {
            break Cursor(delta.to_string());
        }
        let next = page
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .ok_or_else(|| wire::malformed("a delta page with neither next nor delta link"))?;
        pages += 1;
        if pages > 100_000 {
            return Err(wire::malformed("a delta round that does not end"));
        }
        let path = client.relative(next)?;
        page = self::page(client, mailbox, kind, &path).await?;
    };
    // Recurring series: grouped by master, each read whole (master and instances over the
    // series window) and reported as one item under the master's id.
    let members = if kind == Kind::Diary {
        series_members(&order, &latest)?
    } else {
        HashMap::new()
    };
    let mut masters: Vec<String> = Vec::new();
    for id in &order {
        if let Some(m) = members.get(id)
            && !masters.contains(m)
        {
            masters.push(m.clone());
        }
    }
    let mut series_reads = series_io::read_many(client, mailbox, &masters).await?;
    let upserts: Vec<String> = order
        .iter()
        .filter(|id| {
            !members.contains_key(*id)
                && latest.get(*id).is_some_and(|v| v.get("@removed").is_none())
        })
        .cloned()
        .collect();
    let mut gone: HashSet<String> = HashSet::new();
    if kind != Kind::Task && !upserts.is_empty() {
        let props = stamps(client, mailbox, kind, &upserts, full, window).await?;
        for id in &upserts {
            match props.get(id) {
                Some(Some(p)) => {
                    if let Some(v) = latest.get_mut(id) {
                        v["singleValueExtendedProperties"] = p.clone();
                    }
                }
                Some(None) => {}
                // Deleted since the page was read: the next round reports it.
                None => {
                    gone.insert(id.clone());
                }
            }
        }
    }
    let mut changes = Vec::with_capacity(order.len());
    let mut reported: HashSet<String> = HashSet::new();
    for id in order {
        let Some(value) = latest.remove(&id) else {
            continue;
        };
        if value.get("@removed").is_some() {
            // A series read whole in this round is not removed. The removal of an
            // occurrence (a cancellation) names an id that is never paired: the series
            // itself is reported whole in the same round (its master changed).
            if !series_reads.contains_key(&id) && !reported.contains(&id) {
                changes.push(Change::Removed(MailboxItemId(id)));
            }
        } else if let Some(master) = members.get(&id) {
            if reported.insert(master.clone())
                && let Some(observed) = series_reads.remove(master)
            {
                changes.push(Change::Upsert(Box::new(observed)));
            }
        } else if gone.contains(&id) {
            continue;
        } else if let Some(observed) = map::observed(kind, &value) {
            changes.push(Change::Upsert(Box::new(observed)));
        } else {
            // Nothing the engine could act on; it stays as it is until it changes again.
            tracing::warn!(mailbox = mailbox.key(), kind = kind.as_str(), item = %id, "skipped an item that cannot be read");
        }
    }
    Ok(Changes {
        changes,
        cursor,
        full,
    })
}

/// The live items of a round that belong to a recurring series (its master, occurrences and
/// exceptions), each with its master's id ([`series::group`]).
fn series_members(
    order: &[String],
    latest: &HashMap<String, Value>,
) -> Result<HashMap<String, String>, ConnectorError> {
    let live: Vec<Value> = order
        .iter()
        .filter_map(|id| latest.get(id))
        .filter(|v| v.get("@removed").is_none())
        .cloned()
        .collect();
    let groups =
        series::group(live).map_err(|e| wire::malformed(format!("a delta round's series: {e}")))?;
    let mut members = HashMap::new();
    for group in groups.series {
        let master = group.master_id.clone();
        for id in group
            .occurrences
            .iter()
            .map(|o| o.id.clone())
            .chain(
                group
                    .exceptions
                    .iter()
                    .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_string)),
            )
            .chain(std::iter::once(master.clone()))
        {
            members.insert(id, master.clone());
        }
    }
    Ok(members)
}

/// The extended properties of `ids`: `Some(Some(props))` found with props, `Some(None)`
/// found without, absent: gone.
async fn stamps(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    ids: &[String],
    full: bool,
    window: Option<&Window>,
) -> Result<HashMap<String, Option<Value>>, ConnectorError> {
    let mut found: HashMap<String, Option<Value>> = HashMap::new();
    let listing = full || ids.len() > BATCH_STAMPS_UP_TO;
    if listing && let Some(path) = listing_path(client, mailbox, kind, window).await? {
        let wanted: HashSet<&String> = ids.iter().collect();
        let mut path = path;
        for _ in 0..100_000 {
            let page = client
                .get_json(mailbox, &path, &prefer(kind, None), Op::Read, kind.as_str())
                .await?;
            for v in page["value"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(id) = v["id"].as_str().map(str::to_string)
                    && wanted.contains(&id)
                {
                    found.insert(id, v.get("singleValueExtendedProperties").cloned());
                }
            }
            match page["@odata.nextLink"].as_str() {
                Some(next) => path = client.relative(next)?,
                None => break,
            }
        }
    }
    // What the listing did not cover (or all of them): one GET each, 20 per `$batch`.
    let rest: Vec<&String> = ids.iter().filter(|id| !found.contains_key(*id)).collect();
    if rest.is_empty() {
        return Ok(found);
    }
    let items: Vec<BatchItem> = rest
        .iter()
        .map(|id| BatchItem {
            mailbox: mailbox.clone(),
            method: Method::GET,
            url: item_path(mailbox, kind, id, true),
            prefer: Some(prefer(kind, None)),
            body: None,
            retry: Retry::Safe,
            if_match: None,
        })
        .collect();
    let replies = client.batch(items).await;
    for (id, reply) in rest.into_iter().zip(replies) {
        let reply = reply?;
        if reply.status.is_success() {
            found.insert(
                id.clone(),
                reply.body.get("singleValueExtendedProperties").cloned(),
            );
        } else if reply.status != StatusCode::NOT_FOUND {
            let (code, message) = wire::error_of_value(&reply.body);
            return Err(wire::classify_parts(
                reply.status,
                &code,
                &message,
                Op::Read,
                id,
            ));
        }
    }
    Ok(found)
}

/// A listing of every item of the window (events) or folder (contacts), ids and crmsync's
/// properties only.
async fn listing_path(
    client: &GraphClient,
    mailbox: &MailboxRef,
    kind: Kind,
    window: Option<&Window>,
) -> Result<Option<String>, ConnectorError> {
    let user = GraphClient::mailbox_path(mailbox);
    let top = LISTING_PAGE.to_string();
    let expand = map::expand_properties();
    Ok(match (kind, window) {
        (Kind::Diary, Some(w)) => Some(format!(
            "{user}/calendarView?{}",
            wire::query(&[
                ("startDateTime", &w.start.to_string()),
                ("endDateTime", &w.end.to_string()),
                ("$select", "id"),
                ("$expand", &expand),
                ("$top", &top),
            ])
        )),
        (Kind::Contact, _) => client
            .container(Container::ContactFolder, mailbox, false)
            .await?
            .map(|folder| {
                format!(
                    "{user}/contactFolders/{}/contacts?{}",
                    wire::segment(&folder),
                    wire::query(&[("$select", "id"), ("$expand", &expand), ("$top", &top)])
                )
            }),
        _ => None,
    })
}

/// The path of one event or contact (`with_props`: only its id and crmsync's properties).
pub fn item_path(mailbox: &MailboxRef, kind: Kind, id: &str, with_props: bool) -> String {
    let collection = match kind {
        Kind::Contact => "contacts",
        _ => "events",
    };
    let mut path = format!(
        "{}/{collection}/{}",
        GraphClient::mailbox_path(mailbox),
        wire::segment(id)
    );
    if with_props {
        path.push('?');
        path.push_str(&wire::query(&[
            ("$select", "id"),
            ("$expand", &map::expand_properties()),
        ]));
    }
    path
}
