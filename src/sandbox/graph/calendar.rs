//! Calendar endpoints: events (CRUD, list with `$filter`, `$select`, `$expand`), calendarView
//! and its delta, a series' instances. An id may name a stored event (a single instance or a
//! series master) or an instance of a series (`series.rs`).

use axum::http::header::LOCATION;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::api::{Ctx, check_id, paged};
use super::body::BodyType;
use super::delta::{self, DeltaKind};
use super::error::{Answer, GraphError, Reply};
use super::events::Event;
use super::events_json::PROPERTIES;
use super::extprops;
use super::filter;
use super::query::{Expand, apply_select};
use super::series::{self, Instance};
use super::store::{Change, Mailbox};
use super::wire;

/// Outlook's page size for event listings, and the most `$top` gives.
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 1000;

fn body_type(ctx: &Ctx<'_>) -> BodyType {
    if ctx.prefer.text_body {
        BodyType::Text
    } else {
        BodyType::Html
    }
}

fn check_expand(expands: &[Expand]) -> Result<(), GraphError> {
    for x in expands {
        if !x.name.eq_ignore_ascii_case("singleValueExtendedProperties") {
            return Err(GraphError::unknown_property(&x.name, "event"));
        }
        if x.filter.is_none() {
            return Err(GraphError::invalid_query(
                "singleValueExtendedProperties can only be expanded with a $filter on id.",
            ));
        }
    }
    Ok(())
}

/// What a calendar answer lists: a stored event, or an instance of a series.
pub enum Row<'a> {
    Stored(&'a Event),
    Instance(Box<Instance>),
}

impl Row<'_> {
    fn event(&self) -> &Event {
        match self {
            Row::Stored(e) => e,
            Row::Instance(i) => &i.event,
        }
    }

    fn start(&self) -> Timestamp {
        self.event().view_span().0
    }

    fn filter_json(&self, mb: &Mailbox, full: bool) -> Value {
        let mut value = self.event().filter_json(&mb.user, full);
        if let (Row::Instance(i), Value::Object(map)) = (self, &mut value) {
            i.mark(map);
        }
        value
    }
}

/// A row as an answer shows it.
fn row_json(
    mb: &Mailbox,
    row: &Row<'_>,
    ctx: &Ctx<'_>,
    select: Option<&[&'static str]>,
    expands: &[Expand],
    with_type: bool,
) -> Result<Value, GraphError> {
    let event = row.event();
    let mut map = event.render(&mb.user, &ctx.prefer.zone(), body_type(ctx));
    if let Row::Instance(i) = row {
        i.mark(&mut map);
    }
    apply_select(&mut map, select, &["id"]);
    for x in expands {
        if let Some(props) = extprops::expand(&event.extended, x.filter.as_ref())? {
            map.insert("singleValueExtendedProperties".into(), props);
        }
    }
    if with_type {
        map.insert("@odata.type".into(), "#microsoft.graph.event".into());
    }
    Ok(Value::Object(map))
}

/// An event as an answer shows it.
fn event_json(
    mb: &Mailbox,
    event: &Event,
    ctx: &Ctx<'_>,
    select: Option<&[&'static str]>,
    expands: &[Expand],
    with_type: bool,
) -> Result<Value, GraphError> {
    row_json(mb, &Row::Stored(event), ctx, select, expands, with_type)
}

/// The row an id names: a stored event, or a live instance of a series.
fn row_of<'a>(mb: &'a Mailbox, id: &str) -> Result<Row<'a>, GraphError> {
    if let Some(event) = mb.events.get(id) {
        return Ok(Row::Stored(event));
    }
    let (master, original_start) = series::lookup(mb, id).ok_or_else(GraphError::item_not_found)?;
    let slot = master
        .shape()
        .and_then(|shape| shape.slot_at(original_start))
        .ok_or_else(GraphError::item_not_found)?;
    Ok(Row::Instance(Box::new(master.instance(&slot))))
}

fn context_for(ctx: &Ctx<'_>, mb: &Mailbox, collection: &str, select: Option<&[&str]>) -> String {
    let select = select
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default();
    ctx.metadata(&format!("users('{}')/{collection}{select}", mb.user.id))
}

/// GET the primary calendar.
pub fn calendar(mb: &Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&["$select"])?;
    Ok(Reply::ok(json!({
        "@odata.context": context_for(ctx, mb, "calendar/$entity", None),
        "id": mb.calendar_id,
        "name": "Calendar",
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": true,
        "changeKey": mb.change_key(0),
        "canShare": true,
        "canViewPrivateItems": true,
        "canEdit": true,
        "isRemovable": false,
        "isTallyingResponses": true,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "owner": {"name": mb.user.display_name, "address": mb.user.address()},
    })))
}

pub fn list(mb: &Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&[
        "$top", "$skip", "$select", "$filter", "$expand", "$count", "$orderby",
    ])?;
    if ctx.query.get("$orderby").is_some() || ctx.query.get("$count").is_some() {
        return Err(GraphError::invalid_query(
            "The sandbox does not emulate $orderby or $count on events.",
        ));
    }
    let select = ctx.query.select(PROPERTIES, "event")?;
    let expands = ctx.query.expand()?;
    check_expand(&expands)?;
    let filter = ctx.query.filter()?;
    let items = filter::matching(
        mb.events.iter(),
        filter.as_ref(),
        PROPERTIES,
        "event",
        |e, full| e.filter_json(&mb.user, full),
    )?;
    let context = context_for(ctx, mb, "events", select.as_deref());
    let reply = paged(ctx, &items, DEFAULT_TOP, MAX_TOP, context, |e| {
        event_json(mb, e, ctx, select.as_deref(), &expands, false)
    })?;
    Ok(ctx.applied(reply, true, None))
}

pub fn get(mb: &Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    ctx.query.allow(&["$select", "$expand"])?;
    check_id(id)?;
    let select = ctx.query.select(PROPERTIES, "event")?;
    let expands = ctx.query.expand()?;
    check_expand(&expands)?;
    let row = row_of(mb, id)?;
    let mut body = row_json(mb, &row, ctx, select.as_deref(), &expands, false)?;
    body["@odata.context"] = context_for(ctx, mb, "events/$entity", None).into();
    Ok(ctx.applied(Reply::ok(body), true, None))
}

fn entity_reply(mb: &Mailbox, ctx: &Ctx<'_>, event: &Event, created: bool) -> Answer {
    let mut body = event_json(mb, event, ctx, None, &[], false)?;
    body["@odata.context"] = context_for(ctx, mb, "events/$entity", None).into();
    let reply = if created {
        Reply::created(body).with_header(
            LOCATION,
            format!(
                "{}/users('{}')/events('{}')",
                ctx.base,
                mb.user.id,
                wire::percent_encode(&event.id)
            ),
        )
    } else {
        Reply::ok(body)
    };
    Ok(ctx.applied(reply, true, None))
}

/// POST: creates, or (same `transactionId`) answers the event made before, also with 201.
pub fn create(mb: &mut Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&[])?;
    let body = ctx.json_body()?;
    let (event, _created) = Event::create(mb, &body, ctx.now)?;
    entity_reply(mb, ctx, &event, true)
}

/// PATCH: an event, or an instance of a series (which becomes an exception).
pub fn update(mb: &mut Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    ctx.query.allow(&[])?;
    check_id(id)?;
    if let Some(current) = mb.events.get(id) {
        ctx.if_match(&current.change_key)?;
        let body = ctx.json_body()?;
        let event = Event::update(mb, id, &body, ctx.now)?;
        return entity_reply(mb, ctx, &event, false);
    }
    let (master_id, original_start, version) = instance_target(mb, id)?;
    ctx.if_match(&version)?;
    let body = ctx.json_body()?;
    let instance = series::update_instance(mb, &master_id, original_start, &body, ctx.now)?;
    let mut body = row_json(
        mb,
        &Row::Instance(Box::new(instance)),
        ctx,
        None,
        &[],
        false,
    )?;
    body["@odata.context"] = context_for(ctx, mb, "events/$entity", None).into();
    Ok(ctx.applied(Reply::ok(body), true, None))
}

/// DELETE: an event (a master takes its series along), or one instance (cancelled).
pub fn delete(mb: &mut Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    check_id(id)?;
    if let Some(current) = mb.events.get(id) {
        ctx.if_match(&current.change_key)?;
        Event::delete(mb, id)?;
        return Ok(Reply::no_content());
    }
    let (master_id, original_start, version) = instance_target(mb, id)?;
    ctx.if_match(&version)?;
    series::delete_instance(mb, &master_id, original_start, ctx.now)?;
    Ok(Reply::no_content())
}

/// The master, original start and version (the master's) of a live instance.
fn instance_target(mb: &Mailbox, id: &str) -> Result<(String, Timestamp, String), GraphError> {
    match row_of(mb, id)? {
        Row::Instance(i) => Ok((
            i.master_id.clone(),
            i.original_start,
            i.master_change_key.clone(),
        )),
        Row::Stored(e) => Ok((e.id.clone(), e.view_span().0, e.change_key.clone())),
    }
}

fn window_param(ctx: &Ctx<'_>, name: &str) -> Result<Timestamp, GraphError> {
    let missing = || {
        GraphError::bad_request(
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        )
    };
    let text = ctx
        .query
        .get(name)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(missing)?;
    wire::parse_instant(text).ok_or_else(|| {
        GraphError::bad_request(
            "ErrorInvalidParameter",
            format!("The value '{text}' of parameter '{name}' is invalid."),
        )
    })
}

fn window(ctx: &Ctx<'_>) -> Result<(Timestamp, Timestamp), GraphError> {
    let start = window_param(ctx, "startDateTime")?;
    let end = window_param(ctx, "endDateTime")?;
    if end <= start {
        return Err(GraphError::bad_request(
            "ErrorInvalidParameter",
            "The parameter 'EndDateTime' must be later than 'StartDateTime'.",
        ));
    }
    Ok((start, end))
}

/// GET calendarView: the events of a window, by start time.
pub fn view(mb: &Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query
        .allow(&["$top", "$skip", "$select", "$filter", "$expand"])?;
    let (start, end) = window(ctx)?;
    let select = ctx.query.select(PROPERTIES, "event")?;
    let expands = ctx.query.expand()?;
    check_expand(&expands)?;
    let filter = ctx.query.filter()?;
    // Single instances, and the occurrences and exceptions of series; never a master.
    let mut rows = Vec::new();
    for event in mb.events.iter() {
        if event.series.is_some() {
            rows.extend(
                event
                    .instances(start, end)
                    .into_iter()
                    .map(|i| Row::Instance(Box::new(i))),
            );
        } else if event.in_window(start, end) {
            rows.push(Row::Stored(event));
        }
    }
    let mut items = filter::matching(
        rows.iter(),
        filter.as_ref(),
        PROPERTIES,
        "event",
        |row, full| row.filter_json(mb, full),
    )?;
    items.sort_by_key(|row| row.start());
    let context = context_for(ctx, mb, "calendarView", select.as_deref());
    let reply = paged(ctx, &items, DEFAULT_TOP, MAX_TOP, context, |row| {
        row_json(mb, row, ctx, select.as_deref(), &expands, false)
    })?;
    Ok(ctx.applied(reply, true, None))
}

/// GET a series' instances (occurrences and exceptions) in a window; none for a single
/// instance.
pub fn instances(mb: &Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    ctx.query
        .allow(&["startDateTime", "endDateTime", "$top", "$skip", "$select"])?;
    check_id(id)?;
    let (start, end) = window(ctx)?;
    let select = ctx.query.select(PROPERTIES, "event")?;
    let event = mb.events.get(id).ok_or_else(GraphError::item_not_found)?;
    let rows: Vec<Row<'_>> = event
        .instances(start, end)
        .into_iter()
        .map(|i| Row::Instance(Box::new(i)))
        .collect();
    let context = context_for(
        ctx,
        mb,
        &format!("events('{}')/instances", wire::percent_encode(id)),
        select.as_deref(),
    );
    let reply = paged(ctx, &rows, DEFAULT_TOP, MAX_TOP, context, |row| {
        row_json(mb, row, ctx, select.as_deref(), &[], false)
    })?;
    Ok(ctx.applied(reply, true, None))
}

/// GET calendarView/delta.
pub fn delta(mb: &Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&["$skiptoken", "$deltatoken"]).map_err(|_| {
        GraphError::bad_request(
            "ErrorInvalidUrlQuery",
            "The following parameters are not supported with change tracking over the 'CalendarView' resource: '$orderby, $filter, $select, $expand, $search, $top'.",
        )
    })?;
    let link_base = ctx.link_base();
    let state = delta::round(
        ctx,
        DeltaKind::CalendarView,
        &mb.calendar_id,
        mb,
        mb.events.floor(),
        |state| {
            let (start, end) = window(ctx)?;
            state.window = Some((start.as_millisecond(), end.as_millisecond()));
            Ok(())
        },
    )?;
    let (start, end) = state
        .window
        .and_then(|(s, e)| {
            Some((
                Timestamp::from_millisecond(s).ok()?,
                Timestamp::from_millisecond(e).ok()?,
            ))
        })
        .ok_or_else(|| {
            GraphError::bad_request("syncStateInvalid", "The delta token has no window.")
        })?;
    let size = delta::page_size(&ctx.prefer);
    let (value, next) = delta::page_grouped(&mb.events, &state, size, |change| {
        delta_entries(mb, ctx, &state, (start, end), change)
    })?;
    let body = delta::body(
        &state,
        next,
        value,
        ctx.codec,
        &link_base,
        &ctx.metadata("Collection(event)"),
    );
    let page = ctx.prefer.max_page_size.map(|_| size);
    Ok(ctx.applied(Reply::ok(body), true, page))
}

const EVENT_TYPE: &str = "#microsoft.graph.event";

/// What delta lists for one change of the calendar's log. A single event: itself, or its
/// removal once it is out of the window. A series: its master when the master's own time is
/// in the window, its instances in the window (occurrences only with their times, as Outlook
/// sends them), and the removal of instances that changes since the last round took away.
fn delta_entries(
    mb: &Mailbox,
    ctx: &Ctx<'_>,
    state: &delta::DeltaState,
    (start, end): (Timestamp, Timestamp),
    change: Change<'_, Event>,
) -> Result<Vec<Value>, GraphError> {
    let removed = |id: &str| delta::removed(EVENT_TYPE, id);
    let initial = state.initial;
    match change {
        Change::Live(event) if event.series.is_none() => {
            if event.in_window(start, end) {
                Ok(vec![event_json(mb, event, ctx, None, &[], true)?])
            } else if initial {
                Ok(Vec::new())
            } else {
                Ok(vec![removed(&event.id)])
            }
        }
        Change::Live(master) => {
            let mut out = Vec::new();
            let master_shown = master.in_window(start, end);
            if master_shown {
                out.push(event_json(mb, master, ctx, None, &[], true)?);
            }
            let instances = master.instances(start, end);
            let live: std::collections::BTreeSet<Timestamp> =
                instances.iter().map(|i| i.original_start).collect();
            let nothing_live = instances.is_empty();
            for instance in instances {
                let exception = instance.exception;
                let mut value =
                    row_json(mb, &Row::Instance(Box::new(instance)), ctx, None, &[], true)?;
                if !exception && let Value::Object(map) = &mut value {
                    map.retain(|k, _| {
                        matches!(
                            k.as_str(),
                            "@odata.type"
                                | "@odata.etag"
                                | "id"
                                | "seriesMasterId"
                                | "type"
                                | "start"
                                | "end"
                        )
                    });
                }
                out.push(value);
            }
            if !initial {
                if let Some(series) = &master.series {
                    for gone in series::gone_since(&series.earlier, state.since, start, end, &live)
                    {
                        out.push(removed(&super::tokens::occurrence_id(&master.id, gone)));
                    }
                }
                if nothing_live && !master_shown {
                    out.push(removed(&master.id));
                }
            }
            Ok(out)
        }
        Change::Removed(_) if initial => Ok(Vec::new()),
        Change::Removed(id) => {
            let mut out = Vec::new();
            if let Some(shapes) = mb.removed_series.get(id) {
                let none = std::collections::BTreeSet::new();
                for gone in series::gone_since(shapes, state.since, start, end, &none) {
                    out.push(removed(&super::tokens::occurrence_id(id, gone)));
                }
            }
            out.push(removed(id));
            Ok(out)
        }
    }
}
