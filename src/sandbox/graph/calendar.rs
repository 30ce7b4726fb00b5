//! Calendar endpoints: events (CRUD, list with `$filter`, `$select`, `$expand`), calendarView
//! and its delta.

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

/// An event as an answer shows it.
fn event_json(
    mb: &Mailbox,
    event: &Event,
    ctx: &Ctx<'_>,
    select: Option<&[&'static str]>,
    expands: &[Expand],
    with_type: bool,
) -> Result<Value, GraphError> {
    let mut map = event.render(&mb.user, &ctx.prefer.zone(), body_type(ctx));
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
    let event = mb.events.get(id).ok_or_else(GraphError::item_not_found)?;
    let mut body = event_json(mb, event, ctx, select.as_deref(), &expands, false)?;
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

pub fn update(mb: &mut Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    ctx.query.allow(&[])?;
    check_id(id)?;
    let current = mb.events.get(id).ok_or_else(GraphError::item_not_found)?;
    ctx.if_match(&current.change_key)?;
    let body = ctx.json_body()?;
    let event = Event::update(mb, id, &body, ctx.now)?;
    entity_reply(mb, ctx, &event, false)
}

pub fn delete(mb: &mut Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    check_id(id)?;
    let current = mb.events.get(id).ok_or_else(GraphError::item_not_found)?;
    ctx.if_match(&current.change_key)?;
    Event::delete(mb, id)?;
    Ok(Reply::no_content())
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
    let mut items = filter::matching(
        mb.events.iter().filter(|e| e.in_window(start, end)),
        filter.as_ref(),
        PROPERTIES,
        "event",
        |e, full| e.filter_json(&mb.user, full),
    )?;
    items.sort_by_key(|e| e.view_span().0);
    let context = context_for(ctx, mb, "calendarView", select.as_deref());
    let reply = paged(ctx, &items, DEFAULT_TOP, MAX_TOP, context, |e| {
        event_json(mb, e, ctx, select.as_deref(), &expands, false)
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
    let (entries, next) = delta::page(&mb.events, &state, size, |e| e.in_window(start, end));
    let value = entries
        .into_iter()
        .map(|entry| match entry {
            Change::Live(event) => event_json(mb, event, ctx, None, &[], true),
            Change::Removed(id) => Ok(delta::removed("#microsoft.graph.event", id)),
        })
        .collect::<Result<Vec<_>, _>>()?;
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
