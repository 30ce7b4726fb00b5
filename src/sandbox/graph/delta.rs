//! Delta queries over a collection's change log. A round fixes its upper bound (the
//! mailbox's latest change) when it starts, so its pages are stable: a change made while a
//! client pages gets a later sequence number and shows in the next round. The state tokens
//! carry the collection, the window, the round's bounds, the position reached and the
//! mailbox's token generation; they are opaque to clients.

use axum::http::StatusCode;
use axum::http::header::LOCATION;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::Ctx;
use super::error::GraphError;
use super::query::{Prefer, Query};
use super::store::{Change, Collection, Item, Mailbox};
use super::tokens::Codec;

/// Outlook's page size for delta queries when the client states none, and the most it gives.
pub const DEFAULT_PAGE: usize = 10;
pub const MAX_PAGE: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeltaKind {
    CalendarView,
    Tasks,
    Contacts,
}

/// What a `$skiptoken` or `$deltatoken` stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaState {
    #[serde(rename = "k")]
    pub kind: DeltaKind,
    #[serde(rename = "c")]
    pub collection: String,
    #[serde(rename = "m")]
    pub mailbox: String,
    #[serde(rename = "e")]
    pub epoch: u64,
    #[serde(rename = "g")]
    pub generation: u32,
    /// calendarView's window, in milliseconds since the epoch.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub window: Option<(i64, i64)>,
    /// Changes after this sequence number belong to the round.
    #[serde(rename = "s")]
    pub since: u64,
    /// The round's upper bound (skip tokens only).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<u64>,
    /// The last sequence number handed out in this round.
    #[serde(rename = "p")]
    pub position: u64,
    /// The first round: only live items in scope, no removals.
    #[serde(rename = "i")]
    pub initial: bool,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    #[serde(rename = "xe", default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<String>,
}

impl DeltaState {
    /// The first round of a new synchronization.
    pub fn initial(
        kind: DeltaKind,
        collection: &str,
        mailbox: &str,
        epoch: u64,
        generation: u32,
    ) -> Self {
        DeltaState {
            kind,
            collection: collection.to_string(),
            mailbox: mailbox.to_string(),
            epoch,
            generation,
            window: None,
            since: 0,
            upper: None,
            position: 0,
            initial: true,
            select: None,
            expand: None,
        }
    }

    /// The URL that starts over (`410 Gone`'s `Location`): the initial query with an empty
    /// `$deltatoken`.
    pub fn restart_url(&self, link_base: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some((start, end)) = self.window {
            for (name, ms) in [("startDateTime", start), ("endDateTime", end)] {
                if let Ok(ts) = jiff::Timestamp::from_millisecond(ms) {
                    q.append_pair(name, &ts.to_string());
                }
            }
        }
        if let Some(select) = &self.select {
            q.append_pair("$select", select);
        }
        if let Some(expand) = &self.expand {
            q.append_pair("$expand", expand);
        }
        q.append_pair("$deltatoken", "");
        format!("{link_base}?{}", q.finish().replace("%24", "$"))
    }
}

/// The expired-token answer: 410 with `Location` and `syncStateNotFound` (no body is
/// documented; this is the error shape with the documented code and text).
pub fn gone(state: &DeltaState, link_base: &str) -> GraphError {
    GraphError::new(
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
    .with_header(LOCATION, state.restart_url(link_base))
}

fn invalid_token() -> GraphError {
    GraphError::bad_request(
        "syncStateInvalid",
        "The sync state is invalid: the $skiptoken or $deltatoken was not issued for this request.",
    )
}

/// The state to continue from, when the request carries a token (`None` for a first round).
fn continued(
    query: &Query,
    codec: &Codec,
    kind: DeltaKind,
    collection: &str,
    mailbox: &str,
) -> Result<Option<(DeltaState, bool)>, GraphError> {
    let (token, is_skip) = match (query.get("$skiptoken"), query.get("$deltatoken")) {
        (Some(t), _) if !t.is_empty() => (t, true),
        (_, Some(t)) if !t.is_empty() => (t, false),
        _ => return Ok(None),
    };
    let state: DeltaState = codec.decode(token).ok_or_else(invalid_token)?;
    let fits = state.kind == kind
        && state.collection == collection
        && state.mailbox == mailbox
        && (state.upper.is_some() == is_skip);
    if !fits {
        return Err(invalid_token());
    }
    Ok(Some((state, is_skip)))
}

/// Checks a continued state against the mailbox and fixes the round's bounds.
fn start_round(
    mut state: DeltaState,
    is_skip: bool,
    epoch: u64,
    generation: u32,
    current_seq: u64,
    floor: u64,
    link_base: &str,
) -> Result<DeltaState, GraphError> {
    if state.epoch != epoch || state.generation != generation {
        return Err(gone(&state, link_base));
    }
    if !is_skip {
        // A new round: everything since the last one, up to now.
        state.position = state.since;
        state.upper = Some(current_seq);
        state.initial = false;
    }
    // Removals before the floor are forgotten: the client would miss them.
    if !state.initial && state.position < floor {
        return Err(gone(&state, link_base));
    }
    Ok(state)
}

/// The state of this request's round: continued from its token, or a first round (up to
/// the mailbox's latest change) that `first` sets up (window, `$select`, ...).
pub fn round(
    ctx: &Ctx<'_>,
    kind: DeltaKind,
    collection: &str,
    mb: &Mailbox,
    floor: u64,
    first: impl FnOnce(&mut DeltaState) -> Result<(), GraphError>,
) -> Result<DeltaState, GraphError> {
    match continued(&ctx.query, ctx.codec, kind, collection, &mb.user.id)? {
        Some((state, is_skip)) => start_round(
            state,
            is_skip,
            ctx.epoch,
            mb.generation,
            mb.current_seq(),
            floor,
            &ctx.link_base(),
        ),
        None => {
            let mut state =
                DeltaState::initial(kind, collection, &mb.user.id, ctx.epoch, mb.generation);
            state.upper = Some(mb.current_seq());
            first(&mut state)?;
            Ok(state)
        }
    }
}

/// The page size a request asks for with `Prefer: odata.maxpagesize` (and whether it did).
pub fn page_size(prefer: &Prefer) -> usize {
    prefer.max_page_size.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE)
}

/// One page of a round: the entries, and the position to continue from (`None` when the
/// round is done).
pub fn page<'a, T: Item>(
    collection: &'a Collection<T>,
    state: &DeltaState,
    size: usize,
    in_scope: impl Fn(&T) -> bool,
) -> (Vec<Change<'a, T>>, Option<u64>) {
    let initial = state.initial;
    let grouped = page_grouped(collection, state, size, |change| {
        Ok::<_, std::convert::Infallible>(match change {
            Change::Live(item) if in_scope(item) => vec![Change::Live(item)],
            // Out of scope (outside the window): unknown to a first round, a removal after.
            Change::Live(item) if !initial => vec![Change::Removed(item.id())],
            Change::Removed(id) if !initial => vec![Change::Removed(id)],
            _ => Vec::new(),
        })
    });
    match grouped {
        Ok(page) => page,
        Err(never) => match never {},
    }
}

/// One page of a round where each change of the log stands for a group of entries (a
/// series and its instances), which a page never splits: a page ends before a group that
/// would overflow it, and holds a larger group alone.
pub fn page_grouped<'a, T: Item, V, E>(
    collection: &'a Collection<T>,
    state: &DeltaState,
    size: usize,
    mut group: impl FnMut(Change<'a, T>) -> Result<Vec<V>, E>,
) -> Result<(Vec<V>, Option<u64>), E> {
    let upper = state.upper.unwrap_or(state.position);
    let mut out = Vec::new();
    let mut position = state.position;
    for (seq, change) in collection.changes(state.position, upper) {
        let entries = group(change)?;
        if !entries.is_empty() {
            if !out.is_empty() && out.len() + entries.len() > size.max(1) {
                return Ok((out, Some(position)));
            }
            out.extend(entries);
        }
        position = seq;
    }
    Ok((out, None))
}

/// The page's body: `value`, and `@odata.nextLink` or `@odata.deltaLink`.
pub fn body(
    state: &DeltaState,
    next: Option<u64>,
    value: Vec<Value>,
    codec: &Codec,
    link_base: &str,
    context: &str,
) -> Value {
    let mut body = json!({ "@odata.context": context });
    match next {
        Some(position) => {
            let mut next_state = state.clone();
            next_state.position = position;
            body["@odata.nextLink"] = json!(format!(
                "{link_base}?$skiptoken={}",
                codec.encode(&next_state)
            ));
        }
        None => {
            let mut delta = state.clone();
            let upper = state.upper.unwrap_or(state.position);
            delta.since = upper;
            delta.position = upper;
            delta.upper = None;
            delta.initial = false;
            body["@odata.deltaLink"] =
                json!(format!("{link_base}?$deltatoken={}", codec.encode(&delta)));
        }
    }
    body["value"] = Value::Array(value);
    body
}

/// A removed item as delta lists it.
pub fn removed(odata_type: &str, id: &str) -> Value {
    json!({
        "@odata.type": odata_type,
        "id": id,
        "@removed": { "reason": "deleted" },
    })
}
