//! JSON batching (`POST /$batch`): up to 20 requests, each dispatched through the sandbox's
//! middleware on its own (logged, limited, able to get its own 429), `dependsOn` ordering
//! with 424 for the dependants of a failed request, the rest up to four at a time (as Graph
//! sends them to the Outlook service).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::error::{GraphError, Reply, RequestIds, respond};
use crate::sandbox::{BatchParent, LogSeq, SandboxState};

/// Graph's limit of requests in one batch.
pub const MAX_REQUESTS: usize = 20;
/// Requests of one batch in flight at once.
const PARALLEL: usize = 4;

struct Item {
    id: String,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    depends_on: Vec<usize>,
    level: usize,
}

fn malformed(message: impl Into<String>) -> GraphError {
    GraphError::bad_request("BadRequest", message)
}

fn body_bytes(body: &Value, content_type: &str) -> Vec<u8> {
    match body {
        // A string is a base64 body unless it is sent as JSON.
        Value::String(s) if !content_type.to_ascii_lowercase().contains("json") => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(s))
                .unwrap_or_else(|_| s.as_bytes().to_vec())
        }
        v => serde_json::to_vec(v).unwrap_or_default(),
    }
}

fn parse(body: &[u8]) -> Result<Vec<Item>, GraphError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("Invalid batch payload format: {e}")))?;
    let requests = value
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            malformed("Invalid batch payload format: the body needs a 'requests' array.")
        })?;
    if requests.is_empty() {
        return Err(malformed(
            "Invalid batch payload format: the batch has no requests.",
        ));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(malformed(format!(
            "Invalid batch payload format: the batch has {} requests; the limit is {MAX_REQUESTS}.",
            requests.len()
        )));
    }
    let mut items: Vec<Item> = Vec::with_capacity(requests.len());
    let mut positions: HashMap<String, usize> = HashMap::new();
    for request in requests {
        let Some(obj) = request.as_object() else {
            return Err(malformed(
                "Invalid batch payload format: each request must be an object.",
            ));
        };
        let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
        let id = text("id")
            .filter(|i| !i.is_empty())
            .ok_or_else(|| malformed("A request in the batch has no 'id'."))?;
        if positions.contains_key(&id) {
            return Err(malformed(format!(
                "Batch request contains duplicate id '{id}'."
            )));
        }
        let method = text("method")
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or_else(|| malformed(format!("Request '{id}' has no valid 'method'.")))?;
        let url = text("url")
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| malformed(format!("Request '{id}' has no 'url'.")))?;
        if url.contains("://") || url.trim_start_matches('/').starts_with("v1.0/") {
            return Err(malformed(format!(
                "Request '{id}': the url must be relative to the version, like '/users'."
            )));
        }
        let mut headers = Vec::new();
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (name, value) in h {
                    let Some(value) = value.as_str() else {
                        return Err(malformed(format!(
                            "Request '{id}': header '{name}' is not a string."
                        )));
                    };
                    headers.push((name.clone(), value.to_string()));
                }
            }
            Some(_) => {
                return Err(malformed(format!(
                    "Request '{id}': 'headers' must be an object."
                )));
            }
        }
        let content_type = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| v.clone());
        let body = match obj.get("body") {
            None | Some(Value::Null) => None,
            Some(body) => {
                let Some(content_type) = &content_type else {
                    return Err(malformed(format!(
                        "Request '{id}' has a body but no Content-Type header."
                    )));
                };
                Some(body_bytes(body, content_type))
            }
        };
        let mut depends_on = Vec::new();
        match obj.get("dependsOn") {
            None | Some(Value::Null) => {}
            Some(Value::Array(deps)) => {
                for dep in deps {
                    let position = dep.as_str().and_then(|d| positions.get(d)).copied().ok_or_else(|| {
                        malformed(format!(
                            "Request '{id}' depends on {dep}, which is not an earlier request of the batch."
                        ))
                    })?;
                    depends_on.push(position);
                }
            }
            Some(_) => {
                return Err(malformed(format!(
                    "Request '{id}': 'dependsOn' must be an array."
                )));
            }
        }
        let level = depends_on
            .iter()
            .map(|d| items[*d].level + 1)
            .max()
            .unwrap_or(0);
        positions.insert(id.clone(), items.len());
        items.push(Item {
            id,
            method,
            url,
            headers,
            body,
            depends_on,
            level,
        });
    }
    Ok(items)
}

/// How Graph writes a header name in a batch response.
fn header_name(name: &str) -> String {
    match name {
        "odata-version" => "OData-Version".into(),
        "request-id" | "client-request-id" => name.into(),
        "www-authenticate" => "WWW-Authenticate".into(),
        _ => name
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

fn error_item(id: &str, error: &GraphError, ids: &RequestIds, now: Timestamp) -> Value {
    json!({
        "id": id,
        "status": error.status.as_u16(),
        "headers": {"Content-Type": "application/json"},
        "body": error.body(ids, now),
    })
}

/// Batch urls may hold what a URL may not (the docs' own sample has spaces in `$filter`).
fn escape_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        if c.is_ascii_graphic()
            && !matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
        {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

async fn run_item(
    state: &Arc<SandboxState>,
    item: &Item,
    outer: (Option<&HeaderValue>, Option<&HeaderValue>),
    parent: u64,
) -> Value {
    let (auth, agent) = outer;
    let path = format!("/{}", escape_url(item.url.trim_start_matches('/')));
    let now = state.clock.now();
    let ids = RequestIds::of(&Default::default());
    let (Ok(uri), Ok(original)) = (path.parse::<Uri>(), format!("/v1.0{path}").parse::<Uri>())
    else {
        return error_item(
            &item.id,
            &malformed(format!("Invalid url '{}'.", item.url)),
            &ids,
            now,
        );
    };
    if uri
        .path()
        .trim_start_matches('/')
        .to_ascii_lowercase()
        .starts_with("$batch")
    {
        return error_item(
            &item.id,
            &malformed("A batch cannot contain a batch."),
            &ids,
            now,
        );
    }
    let mut builder = Request::builder().method(item.method.clone()).uri(uri);
    // The batch's own token authenticates every item.
    for (name, value) in item
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("Authorization"))
    {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(auth) = auth {
        builder = builder.header("Authorization", auth.clone());
    }
    // And its client is every item's client (the request log names it).
    if let Some(agent) = agent
        && !item
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("User-Agent"))
    {
        builder = builder.header("User-Agent", agent.clone());
    }
    let body = item
        .body
        .clone()
        .map(Body::from)
        .unwrap_or_else(Body::empty);
    let mut request = match builder.body(body) {
        Ok(r) => r,
        Err(e) => {
            return error_item(
                &item.id,
                &malformed(format!("Invalid request: {e}")),
                &ids,
                now,
            );
        }
    };
    request.extensions_mut().insert(BatchParent(parent));
    request.extensions_mut().insert(OriginalUri(original));
    let response = state.dispatch_graph(request).await;
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            headers.insert(header_name(name.as_str()), json!(v));
        }
    }
    let bytes = match axum::body::to_bytes(response.into_body(), super::api::MAX_BODY * 4).await {
        Ok(b) => b,
        Err(_) => {
            let e = GraphError::new(
                StatusCode::BAD_GATEWAY,
                "generalException",
                "The request's response broke off before it was complete.",
            );
            return error_item(&item.id, &e, &ids, now);
        }
    };
    let mut out = json!({ "id": item.id, "status": status, "headers": headers });
    if !bytes.is_empty() {
        out["body"] = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!(base64::engine::general_purpose::STANDARD.encode(&bytes)));
    }
    out
}

/// `POST /$batch` (already authenticated).
pub async fn run(
    state: &Arc<SandboxState>,
    parts: &Parts,
    body: &[u8],
    now: Timestamp,
    ids: &RequestIds,
) -> Response {
    if parts.method != Method::POST {
        return respond(Err(GraphError::method_not_allowed(false)), ids, now);
    }
    let items = match parse(body) {
        Ok(items) => items,
        Err(e) => return respond(Err(e), ids, now),
    };
    let parent = parts.extensions.get::<LogSeq>().map(|s| s.0).unwrap_or(0);
    let auth = parts.headers.get("Authorization");
    let agent = parts.headers.get("User-Agent");
    let mut results: Vec<Option<Value>> = vec![None; items.len()];
    let mut failed: HashSet<usize> = HashSet::new();
    let levels = items.iter().map(|i| i.level).max().unwrap_or(0);
    let items = &items;
    for level in 0..=levels {
        let mut runnable = Vec::new();
        for (i, item) in items.iter().enumerate().filter(|(_, i)| i.level == level) {
            if let Some(dep) = item.depends_on.iter().find(|d| failed.contains(d)) {
                let e = GraphError::new(
                    StatusCode::FAILED_DEPENDENCY,
                    "FailedDependency",
                    format!(
                        "The request depends on request '{}', which failed.",
                        items[*dep].id
                    ),
                );
                results[i] = Some(error_item(&item.id, &e, ids, state.clock.now()));
                failed.insert(i);
            } else {
                runnable.push(i);
            }
        }
        let done: Vec<(usize, Value)> = futures::stream::iter(runnable)
            .map(|i| async move { (i, run_item(state, &items[i], (auth, agent), parent).await) })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for (i, value) in done {
            if value["status"].as_u64().is_none_or(|s| s >= 400) {
                failed.insert(i);
            }
            results[i] = Some(value);
        }
    }
    let responses: Vec<Value> = results.into_iter().flatten().collect();
    respond(Ok(Reply::ok(json!({ "responses": responses }))), ids, now)
}
