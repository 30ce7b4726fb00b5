//! The emulated API's front: the handler every `/v1.0` request reaches (after the sandbox's
//! middleware), authentication, and the routing of paths to resources. Outlook and OData
//! match path segments case-insensitively (the docs' own links write `contactfolders`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::error::{Answer, GraphError, Reply, RequestIds, respond};
use super::query::{Prefer, Query};
use super::store::Tenant;
use super::tokens::Codec;
use super::wire;
use super::{GraphStore, batch, calendar, contacts_api, todo_api, users};
use crate::sandbox::SandboxState;

/// Graph refuses larger request bodies.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// One request, as the resource handlers see it.
pub struct Ctx<'a> {
    pub method: Method,
    /// The path relative to `/v1.0`, as sent (still percent-encoded).
    pub raw_path: &'a str,
    pub query: Query,
    pub prefer: Prefer,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: Timestamp,
    /// The Graph base URL links are made from (`http://127.0.0.1:PORT/v1.0`).
    pub base: &'a str,
    pub codec: &'a Codec,
    /// Changes when the tenant is replaced; tokens from before are gone.
    pub epoch: u64,
}

impl Ctx<'_> {
    /// The request's URL without its query (for next and delta links).
    pub fn link_base(&self) -> String {
        format!("{}{}", self.base, self.raw_path)
    }

    pub fn metadata(&self, fragment: &str) -> String {
        format!("{}/$metadata#{fragment}", self.base)
    }

    /// The JSON object a POST or PATCH sends (with `Content-Type: application/json`, which
    /// Graph requires).
    pub fn json_body(&self) -> Result<Map<String, Value>, GraphError> {
        let json = self
            .headers
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
        if !json {
            return Err(GraphError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "The body must be sent with Content-Type: application/json.",
            ));
        }
        wire::parse_object(self.body)
    }

    /// `If-Match` against the item's `@odata.etag` (`*` matches anything).
    pub fn if_match(&self, change_key: &str) -> Result<(), GraphError> {
        let Some(wanted) = self.headers.get("If-Match").and_then(|v| v.to_str().ok()) else {
            return Ok(());
        };
        let current = format!("W/\"{change_key}\"");
        let matches = wanted
            .split(',')
            .map(str::trim)
            .any(|w| w == "*" || w == current || w.trim_matches('"') == change_key);
        if matches {
            Ok(())
        } else {
            Err(GraphError::new(
                StatusCode::PRECONDITION_FAILED,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
            ))
        }
    }

    /// `Preference-Applied` for an answer that showed times (and maybe paged).
    pub fn applied(&self, reply: Reply, times: bool, page: Option<usize>) -> Reply {
        match self.prefer.applied(times, page) {
            Some(v) => {
                reply.with_header(axum::http::HeaderName::from_static("preference-applied"), v)
            }
            None => reply,
        }
    }
}

/// A page of a listing: `$top` (default `default_top`, at most `max_top`) and `$skip`, with
/// an `@odata.nextLink` (`$skip`, as Outlook pages) when more follow.
pub fn paged<T>(
    ctx: &Ctx<'_>,
    items: &[T],
    default_top: usize,
    max_top: usize,
    context: String,
    render: impl Fn(&T) -> Result<Value, GraphError>,
) -> Answer {
    // `Prefer: odata.maxpagesize` sets the page size when `$top` does not.
    let default_top = ctx.prefer.max_page_size.unwrap_or(default_top).min(max_top);
    let top = ctx.query.top(default_top, max_top, false)?;
    let skip = ctx.query.skip()?;
    let value = items
        .iter()
        .skip(skip)
        .take(top)
        .map(render)
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({ "@odata.context": context });
    // `$top=0` asks for nothing: no next page (a link to the same empty page would loop).
    if top > 0 && skip.saturating_add(top) < items.len() {
        let next = ctx.query.rewrite(
            &["$skip", "$top"],
            &[
                ("$top", top.to_string()),
                ("$skip", (skip + top).to_string()),
            ],
        );
        body["@odata.nextLink"] = json!(format!("{}?{next}", ctx.link_base()));
    }
    body["value"] = Value::Array(value);
    Ok(Reply::ok(body))
}

/// Path segments, percent-decoded.
pub fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(wire::percent_decode)
        .collect()
}

/// The handler behind `/v1.0`.
pub async fn handle(State(state): State<Arc<SandboxState>>, request: Request) -> Response {
    let now = state.clock.now();
    let (parts, body) = request.into_parts();
    let ids = RequestIds::of(&parts.headers);
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let e = GraphError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The request body is too large (the limit is 4 MB) or could not be read.",
            );
            return respond(Err(e), &ids, now);
        }
    };
    if let Err(e) = state.graph.authenticate(&parts.headers, now) {
        return respond(Err(e), &ids, now);
    }
    let base = state.urls.graph.as_str().trim_end_matches('/').to_string();
    let path = parts.uri.path().to_string();
    if segments(&path)
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("$batch"))
    {
        return batch::run(&state, &parts, &bytes, now, &ids).await;
    }
    let answer = state.graph.answer(
        parts.method.clone(),
        &path,
        parts.uri.query(),
        &parts.headers,
        &bytes,
        now,
        &base,
    );
    respond(answer, &ids, now)
}

impl GraphStore {
    /// Answers one request (path relative to `/v1.0`): the API after authentication, and the
    /// control API acting as a user.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        now: Timestamp,
        base: &str,
    ) -> Answer {
        let ctx = Ctx {
            method,
            raw_path: path,
            query: Query::parse(query),
            prefer: Prefer::of(headers),
            headers,
            body,
            now,
            base,
            codec: &self.codec,
            epoch: self.epoch(),
        };
        let tenant = self.tenant();
        route(&tenant, &ctx)
    }
}

fn route(tenant: &Tenant, ctx: &Ctx<'_>) -> Answer {
    let segs = segments(ctx.raw_path);
    let Some(first) = segs.first() else {
        return Err(GraphError::invalid_query(
            "Invalid request: no resource was named.",
        ));
    };
    match first.to_ascii_lowercase().as_str() {
        "me" => Err(GraphError::bad_request(
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        )),
        "$batch" => Err(GraphError::method_not_allowed(false)),
        "users" => match segs.get(1) {
            None => match ctx.method {
                Method::GET => users::list(tenant, ctx),
                _ => Err(GraphError::method_not_allowed(true)),
            },
            Some(user) => {
                let index = tenant.resolve(user);
                if segs.len() == 2 {
                    return match (ctx.method.clone(), index) {
                        (Method::GET, Some(i)) => users::get(tenant, i, ctx),
                        (Method::GET, None) => Err(GraphError::directory_not_found(user)),
                        _ => Err(GraphError::method_not_allowed(true)),
                    };
                }
                let Some(i) = index else {
                    return Err(GraphError::invalid_user(user));
                };
                mailbox_route(tenant, i, ctx, &segs[2..])
            }
        },
        _ => Err(GraphError::segment(first)),
    }
}

/// The resources of one mailbox: `/users/{id}/...`.
fn mailbox_route(tenant: &Tenant, index: usize, ctx: &Ctx<'_>, rest: &[String]) -> Answer {
    let Some(mut mailbox) = tenant.mailbox(index) else {
        return Err(GraphError::invalid_user(""));
    };
    let mb = &mut *mailbox;
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let m = &ctx.method;
    let nope = || Err(GraphError::method_not_allowed(false));
    match l.as_slice() {
        ["events"] | ["calendar", "events"] => match *m {
            Method::GET => calendar::list(mb, ctx),
            Method::POST => calendar::create(mb, ctx),
            _ => nope(),
        },
        ["events", _] | ["calendar", "events", _] => {
            let id = &rest[rest.len() - 1];
            match *m {
                Method::GET => calendar::get(mb, ctx, id),
                Method::PATCH => calendar::update(mb, ctx, id),
                Method::DELETE => calendar::delete(mb, ctx, id),
                _ => nope(),
            }
        }
        ["events", _, "instances"] | ["calendar", "events", _, "instances"] => match *m {
            Method::GET => calendar::instances(mb, ctx, &rest[rest.len() - 2]),
            _ => nope(),
        },
        ["calendar"] => match *m {
            Method::GET => calendar::calendar(mb, ctx),
            _ => nope(),
        },
        ["calendarview"] | ["calendar", "calendarview"] => match *m {
            Method::GET => calendar::view(mb, ctx),
            _ => nope(),
        },
        ["calendarview", "delta"] | ["calendar", "calendarview", "delta"] => match *m {
            Method::GET => calendar::delta(mb, ctx),
            _ => nope(),
        },
        ["todo", "lists", ..] => todo_api::route(mb, ctx, &rest[2..], &l[2..]),
        ["contactfolders", ..] | ["contacts", ..] => contacts_api::route(mb, ctx, rest, &l),
        [] => Err(GraphError::segment("users")),
        [first, ..] if !matches!(*first, "todo" | "calendar") => Err(GraphError::segment(&rest[0])),
        _ => Err(GraphError::segment(
            rest.last().map(String::as_str).unwrap_or(""),
        )),
    }
}

/// Checks an item id's shape (`ErrorInvalidIdMalformed` before `ErrorItemNotFound`).
pub fn check_id(id: &str) -> Result<(), GraphError> {
    if super::tokens::well_formed(id) {
        Ok(())
    } else {
        Err(GraphError::malformed_id())
    }
}
