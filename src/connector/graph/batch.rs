//! JSON batching: up to 20 requests per `POST /$batch`. Each item counts against its
//! mailbox's limits on its own (the caller's slots and quota are taken for every item before
//! the batch goes out, keys in a fixed order so that two batches never wait on each other);
//! the envelope goes through the global quota only. An item answered 429 pauses its mailbox
//! for its own `Retry-After` and goes again in a later batch, alone of its batch; other item
//! failures are the caller's to class, as for a direct request.
//!
//! The idle poll ([`GraphClient::poll`]) sends the delta links of up to 20 (mailbox, kind)
//! pairs per batch: a pair whose first page says "nothing new" is done in that one round
//! trip; only pairs with changes or more pages are followed up with their own requests.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::delta;
use super::wire::{self, Op};
use super::{APP_KEY, GraphClient};
use crate::connector::http::{Request, Retry, parse_retry_after};
use crate::connector::model::{Changes, Cursor, Kind, MailboxItemId};
use crate::connector::{ConnectorError, MailboxRef, Service};

/// Graph's limit of requests per batch.
pub const MAX_BATCH: usize = 20;
/// Batches of one call in flight at once.
const PARALLEL_BATCHES: usize = 4;
/// Throttled answers one item waits out before it gives up.
const ITEM_THROTTLE_RETRIES: u32 = 10;

/// A (mailbox, kind) pair with its stored cursor, for [`GraphClient::poll`].
pub type PollPair = (MailboxRef, Kind, Cursor);

/// One request inside a batch.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Whose limits the item counts against.
    pub mailbox: MailboxRef,
    pub method: Method,
    /// Relative to the base: `/users/...`.
    pub url: String,
    pub prefer: Option<String>,
    pub body: Option<Value>,
    /// Whether the item may be sent again after a failure that may have reached Graph.
    pub retry: Retry,
    pub if_match: Option<String>,
}

/// An item's answer.
#[derive(Debug, Clone)]
pub struct BatchReply {
    pub status: StatusCode,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// A copy of an error, for every item of a batch that failed as a whole.
fn copy(e: &ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Transient {
            service,
            what,
            retry_after,
        } => ConnectorError::Transient {
            service: *service,
            what: what.clone(),
            retry_after: *retry_after,
        },
        ConnectorError::Item {
            service,
            item,
            what,
        } => ConnectorError::Item {
            service: *service,
            item: item.clone(),
            what: what.clone(),
        },
        ConnectorError::User { service, what } => ConnectorError::User {
            service: *service,
            what: what.clone(),
        },
        ConnectorError::Service { service, what } => ConnectorError::Service {
            service: *service,
            what: what.clone(),
        },
        ConnectorError::Conflict { service, item } => ConnectorError::Conflict {
            service: *service,
            item: item.clone(),
        },
        ConnectorError::ResyncNeeded { service } => {
            ConnectorError::ResyncNeeded { service: *service }
        }
    }
}

fn transient(what: impl Into<String>, retry_after: Option<Duration>) -> ConnectorError {
    ConnectorError::Transient {
        service: Service::Graph,
        what: what.into(),
        retry_after,
    }
}

fn item_json(id: usize, item: &BatchItem) -> Value {
    let mut headers = Map::new();
    if let Some(p) = &item.prefer {
        headers.insert("Prefer".into(), json!(p));
    }
    if let Some(m) = &item.if_match {
        headers.insert("If-Match".into(), json!(m));
    }
    let mut out = json!({"id": id.to_string(), "method": item.method.as_str(), "url": item.url});
    if let Some(body) = &item.body {
        headers.insert("Content-Type".into(), json!("application/json"));
        out["body"] = body.clone();
    }
    if !headers.is_empty() {
        out["headers"] = Value::Object(headers);
    }
    out
}

fn reply_of(value: &Value) -> Option<BatchReply> {
    let status = StatusCode::from_u16(u16::try_from(value.get("status")?.as_u64()?).ok()?).ok()?;
    let headers = value
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Some(BatchReply {
        status,
        headers,
        body: value.get("body").cloned().unwrap_or(Value::Null),
    })
}

impl GraphClient {
    /// Sends `items` in batches of 20 and answers each item, in order. Items answered 429
    /// (or 503 with `Retry-After`) are sent again after their mailbox's pause; 5xx and lost
    /// items again with back-off when they are [`Retry::Safe`]. Any other status is the
    /// item's answer.
    pub async fn batch(&self, items: Vec<BatchItem>) -> Vec<Result<BatchReply, ConnectorError>> {
        let chunks: Vec<Vec<(usize, BatchItem)>> = items
            .into_iter()
            .enumerate()
            .collect::<Vec<_>>()
            .chunks(MAX_BATCH)
            .map(<[_]>::to_vec)
            .collect();
        let n: usize = chunks.iter().map(Vec::len).sum();
        let mut results: Vec<Option<Result<BatchReply, ConnectorError>>> =
            (0..n).map(|_| None).collect();
        let done: Vec<Vec<(usize, Result<BatchReply, ConnectorError>)>> =
            futures::stream::iter(chunks)
                .map(|chunk| self.run_chunk(chunk))
                .buffer_unordered(PARALLEL_BATCHES)
                .collect()
                .await;
        for (i, r) in done.into_iter().flatten() {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(transient("a batch item got no answer", None))))
            .collect()
    }

    /// One chunk of at most 20 items, until each has its answer.
    async fn run_chunk(
        &self,
        chunk: Vec<(usize, BatchItem)>,
    ) -> Vec<(usize, Result<BatchReply, ConnectorError>)> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut pending: Vec<(usize, BatchItem, u32, u32)> =
            chunk.into_iter().map(|(i, item)| (i, item, 0, 0)).collect();
        while !pending.is_empty() {
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            for (_, item, _, _) in &pending {
                *counts.entry(item.mailbox.key().to_string()).or_default() += 1;
            }
            // Keys in order: two batches never hold part of what the other waits for.
            let mut permits = Vec::with_capacity(counts.len());
            for (key, count) in &counts {
                permits.push(self.http.limiter().acquire_many(key, *count).await);
            }
            let body = json!({"requests": pending.iter().map(|(i, item, _, _)| item_json(*i, item)).collect::<Vec<_>>()});
            let retry = if pending
                .iter()
                .all(|(_, item, _, _)| item.retry == Retry::Safe)
            {
                Retry::Safe
            } else {
                Retry::Unsafe
            };
            let sent = match self.url("/$batch") {
                Ok(url) => {
                    let request = Request::new(Method::POST, url, APP_KEY)
                        .json(&body)
                        .retry(retry);
                    self.http.send_global(&request, &self.tokens).await
                }
                Err(e) => Err(e),
            };
            drop(permits);
            let answer = match sent {
                Ok(r) if r.status.is_success() => r
                    .json::<Value>()
                    .map_err(|e| wire::malformed(format!("a batch answer: {e}"))),
                Ok(r) => {
                    let (code, message) = wire::error_of(&r.body);
                    Err(transient(
                        format!(
                            "the batch was refused: HTTP {} {code} {message}",
                            r.status.as_u16()
                        ),
                        None,
                    ))
                }
                Err(e) => Err(e),
            };
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    out.extend(pending.drain(..).map(|(i, _, _, _)| (i, Err(copy(&e)))));
                    break;
                }
            };
            let mut replies: HashMap<String, BatchReply> = HashMap::new();
            for r in answer["responses"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let (Some(id), Some(reply)) = (r["id"].as_str(), reply_of(r)) {
                    // The envelope was counted as the one round trip; each item is counted
                    // too, as Graph counts it against the quotas and may throttle it alone (a
                    // 429 inside a batch is a throttle like any other).
                    self.http.observe(Some(reply.status.as_u16()));
                    replies.insert(id.to_string(), reply);
                }
            }
            let mut again = Vec::new();
            let mut back_off = Duration::ZERO;
            for (i, item, mut throttled, mut failures) in pending.drain(..) {
                let reply = replies.remove(&i.to_string());
                let status = reply.as_ref().map(|r| r.status);
                let retry_after = reply.as_ref().and_then(|r| {
                    r.headers
                        .get("retry-after")
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
                });
                match (reply, status) {
                    (Some(_), Some(s))
                        if s == StatusCode::TOO_MANY_REQUESTS
                            || (s == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some()) =>
                    {
                        // Not carried out: safe to send again, after this mailbox's pause.
                        let wait = retry_after
                            .or_else(|| {
                                self.options.backoff.delay(
                                    throttled.min(self.options.backoff.retries.saturating_sub(1)),
                                )
                            })
                            .unwrap_or(Duration::from_secs(1));
                        self.http.limiter().pause(item.mailbox.key(), wait);
                        tracing::debug!(
                            mailbox = item.mailbox.key(),
                            wait_ms = wait.as_millis() as u64,
                            "batch item throttled"
                        );
                        throttled += 1;
                        if throttled > ITEM_THROTTLE_RETRIES {
                            out.push((i, Err(transient("throttled (HTTP 429)", Some(wait)))));
                        } else {
                            again.push((i, item, throttled, failures));
                        }
                    }
                    (reply, _) if reply.as_ref().is_none_or(|r| r.status.is_server_error()) => {
                        let what = match &reply {
                            Some(r) => format!("HTTP {}", r.status.as_u16()),
                            None => "the batch answer left the item out".to_string(),
                        };
                        match (item.retry, self.options.backoff.delay(failures)) {
                            (Retry::Safe, Some(delay)) => {
                                failures += 1;
                                back_off = back_off.max(delay);
                                again.push((i, item, throttled, failures));
                            }
                            _ => out.push((i, Err(transient(what, retry_after)))),
                        }
                    }
                    (Some(reply), _) => out.push((i, Ok(reply))),
                    (None, _) => out.push((i, Err(transient("no answer", None)))),
                }
            }
            pending = again;
            if !pending.is_empty() && !back_off.is_zero() {
                tokio::time::sleep(back_off).await;
            }
        }
        out
    }

    /// The idle poll: the next page of each pair's delta link, 20 pairs per round trip. A
    /// pair with nothing new costs its share of one batch; a pair with changes or more pages
    /// is followed up with its own requests (the rest of its round, then its stamps). Each
    /// pair gets its own answer: its changes and new cursor, or its error
    /// ([`ConnectorError::ResyncNeeded`] for an expired token).
    pub async fn poll(
        &self,
        pairs: &[PollPair],
    ) -> Vec<Result<Changes<MailboxItemId>, ConnectorError>> {
        let mut results: Vec<Option<Result<Changes<MailboxItemId>, ConnectorError>>> =
            (0..pairs.len()).map(|_| None).collect();
        let mut items = Vec::new();
        let mut sent = Vec::new();
        for (i, (mailbox, kind, cursor)) in pairs.iter().enumerate() {
            match self.relative(delta::split_cursor(cursor).0) {
                Ok(url) => {
                    sent.push(i);
                    items.push(BatchItem {
                        mailbox: mailbox.clone(),
                        method: Method::GET,
                        url,
                        prefer: Some(delta::prefer(*kind, Some(self.options.delta_page_size))),
                        body: None,
                        retry: Retry::Safe,
                        if_match: None,
                    });
                }
                // Not a link to this Graph: only a full round can go on.
                Err(_) => {
                    results[i] = Some(Err(ConnectorError::ResyncNeeded {
                        service: Service::Graph,
                    }))
                }
            }
        }
        let replies = self.batch(items).await;
        let mut follow = Vec::new();
        for (i, reply) in sent.into_iter().zip(replies) {
            let (mailbox, kind, _) = &pairs[i];
            results[i] = match reply {
                Err(e) => Some(Err(e)),
                Ok(r) if !r.status.is_success() => {
                    let body = serde_json::to_vec(&r.body).unwrap_or_default();
                    Some(Err(delta::delta_error(
                        self, mailbox, *kind, r.status, &body,
                    )))
                }
                Ok(r) => {
                    let idle = r.body["value"].as_array().is_some_and(Vec::is_empty);
                    match r.body["@odata.deltaLink"].as_str() {
                        Some(link) if idle => Some(Ok(Changes {
                            changes: Vec::new(),
                            cursor: retag(&pairs[i].2, Cursor(link.to_string())),
                            full: false,
                        })),
                        _ => {
                            follow.push((i, r.body));
                            None
                        }
                    }
                }
            };
        }
        let followed: Vec<(usize, Result<Changes<MailboxItemId>, ConnectorError>)> =
            futures::stream::iter(follow)
                .map(|(i, page)| async move {
                    let (mailbox, kind, _) = &pairs[i];
                    (
                        i,
                        delta::round(self, mailbox, *kind, page, false, None).await,
                    )
                })
                .buffer_unordered(PARALLEL_BATCHES * 4)
                .collect()
                .await;
        for (i, r) in followed {
            results[i] = Some(r.map(|mut changes| {
                changes.cursor = retag(&pairs[i].2, changes.cursor);
                changes
            }));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(transient("the poll left a pair out", None))))
            .collect()
    }
}

/// A new delta link under the window days the polled cursor had (the poll does not move a
/// window; the next full pass does).
fn retag(polled: &Cursor, link: Cursor) -> Cursor {
    match delta::split_cursor(polled).1 {
        Some(days) => delta::with_days(days, &link),
        None => link,
    }
}

/// A batch reply that is not a success, classed like a direct request's answer.
pub fn reply_error(reply: &BatchReply, op: Op, item: &str) -> ConnectorError {
    let (code, message) = wire::error_of_value(&reply.body);
    wire::classify_parts(reply.status, &code, &message, op, item)
}
