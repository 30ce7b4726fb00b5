//! OData list queries (`$select`, `$filter`, `$orderby`, `$top`, `$skip`) against archive
//! providers: query strings built compactly, long associate lists split so that no URL
//! outgrows what the server takes, and paging with `$top`/`$skip` in primary-key order.
//!
//! Paging relies on NetServer's page cache: a query with `$skip > 0` reuses the primary keys
//! its `$skip=0` page found, if that ran less than 60 seconds before. All pages are therefore
//! read back to back (items are fetched only afterwards), and a listing whose pages drifted
//! more than [`PAGE_GAP_LIMIT`] apart (a long `Retry-After`) starts again from `$skip=0`, so
//! that a page is never read against a fresh key list it does not belong to.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::{Call, Ctx, SuperOfficeClient, refusal};
use crate::connector::ConnectorError;

/// NetServer's page cache lives 60 s after the last call; stay well inside it.
pub const PAGE_GAP_LIMIT: Duration = Duration::from_secs(45);
/// No URL is cut below this (every HTTP server takes 2 KiB).
pub const MIN_URL_LEN: usize = 2048;

/// Characters kept as they are in a query string (RFC 3986 allows them there); the rest is
/// percent-encoded. Keeping `,` `(` `)` short makes long associate lists fit.
fn keep(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '_' | '~' | '$' | ',' | '(' | ')' | ':' | '/' | '!' | '*' | '@'
        )
}

pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if keep(c) {
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

/// A quoted string literal for `$filter` (a quote is doubled).
pub fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One list query; `associates` adds `{column} associateIsOneOf (...)`, split into chunks.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Below `api/v1/`: `Appointment`, `Person`, `Contact`, `Archive/InternalUsers`, ...
    pub path: String,
    pub select: String,
    pub filter: Vec<String>,
    pub orderby: String,
    pub entities: Option<String>,
    pub associates: Option<(String, Vec<u32>)>,
    /// Page size (`$top`); `None` for one answer with every row.
    pub top: Option<usize>,
    /// Only the first page (a probe for the newest row).
    pub one_page: bool,
}

/// The rows of one chunk's listing; `first_page` was read with the same pass as the query's
/// primary keys (a bound on the server's clock when the listing started).
#[derive(Debug, Default)]
pub struct Listing {
    pub first_page: Vec<Value>,
    pub rows: Vec<Value>,
    /// The server's time when the first page was answered (see [`super::ServerClock`]).
    pub server_time: Option<jiff::Timestamp>,
}

enum Attempt {
    Done(Listing),
    TooLong,
}

impl ListQuery {
    pub fn new(path: &str, select: &str, orderby: &str) -> ListQuery {
        ListQuery {
            path: path.to_string(),
            select: select.to_string(),
            filter: Vec::new(),
            orderby: orderby.to_string(),
            entities: None,
            associates: None,
            top: None,
            one_page: false,
        }
    }

    pub fn filter(mut self, term: impl Into<String>) -> Self {
        self.filter.push(term.into());
        self
    }

    pub fn associates(mut self, column: &str, ids: &[u32]) -> Self {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.associates = Some((column.to_string(), ids));
        self
    }

    pub fn top(mut self, top: usize) -> Self {
        self.top = Some(top);
        self
    }

    pub fn entities(mut self, entities: &str) -> Self {
        self.entities = Some(entities.to_string());
        self
    }

    /// The query string for one chunk and page.
    pub fn query_string(&self, chunk: Option<&[u32]>, skip: usize) -> String {
        let mut terms = Vec::new();
        if let (Some((column, _)), Some(ids)) = (&self.associates, chunk) {
            let list: Vec<String> = ids.iter().map(u32::to_string).collect();
            terms.push(format!("{column} associateIsOneOf ({})", list.join(",")));
        }
        terms.extend(self.filter.iter().cloned());
        let mut parts = vec![format!("$select={}", encode(&self.select))];
        if !terms.is_empty() {
            parts.push(format!("$filter={}", encode(&terms.join(" and "))));
        }
        if !self.orderby.is_empty() {
            parts.push(format!("$orderby={}", encode(&self.orderby)));
        }
        if let Some(entities) = &self.entities {
            parts.push(format!("$entities={}", encode(entities)));
        }
        if let Some(top) = self.top {
            parts.push(format!("$top={top}"));
            parts.push(format!("$skip={skip}"));
        }
        parts.join("&")
    }

    /// Splits the associates so that each chunk's URL stays within `max_len` (the base URL
    /// is `base_len` long). An empty list is one empty chunk: the query matches nothing and
    /// is not sent.
    pub fn chunks(&self, base_len: usize, max_len: usize) -> Vec<Vec<u32>> {
        let Some((_, ids)) = &self.associates else {
            return vec![Vec::new()];
        };
        // The URL without ids, with room for a long `$skip`.
        let fixed = base_len + self.path.len() + 1 + self.query_string(Some(&[]), 0).len() + 12;
        let room = max_len.saturating_sub(fixed).max(64);
        let mut chunks = Vec::new();
        let mut current = Vec::new();
        let mut used = 0;
        for id in ids {
            let cost = id.to_string().len() + 1;
            if !current.is_empty() && used + cost > room {
                chunks.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push(*id);
            used += cost;
        }
        chunks.push(current);
        chunks
    }
}

impl SuperOfficeClient {
    /// Runs `query` for every chunk of its associates, in order, each through all its pages.
    pub(super) async fn list(&self, query: &ListQuery) -> Result<Vec<Listing>, ConnectorError> {
        if matches!(&query.associates, Some((_, ids)) if ids.is_empty()) {
            return Ok(Vec::new());
        }
        loop {
            let (base, _) = self.api_base().await?;
            let max_len = self.max_url_len.load(Ordering::Relaxed);
            let mut listings = Vec::new();
            let mut too_long = false;
            for chunk in query.chunks(base.as_str().len(), max_len) {
                let chunk = query.associates.as_ref().map(|_| chunk.as_slice());
                match self.list_chunk(query, chunk).await? {
                    Attempt::Done(listing) => listings.push(listing),
                    Attempt::TooLong => {
                        too_long = true;
                        break;
                    }
                }
            }
            if !too_long {
                return Ok(listings);
            }
            let smaller = (max_len / 2).max(MIN_URL_LEN);
            if smaller == max_len {
                return Err(ConnectorError::Service {
                    service: crate::connector::Service::SuperOffice,
                    what: format!("the tenant refuses list queries of {max_len} characters"),
                });
            }
            tracing::warn!(
                max_len,
                smaller,
                "SuperOffice refused a long query; splitting associate lists further"
            );
            self.max_url_len.store(smaller, Ordering::Relaxed);
        }
    }

    async fn list_chunk(
        &self,
        query: &ListQuery,
        chunk: Option<&[u32]>,
    ) -> Result<Attempt, ConnectorError> {
        let mut restarts = 0;
        'listing: loop {
            let mut listing = Listing::default();
            let mut skip = 0;
            let mut last_answer: Option<tokio::time::Instant> = None;
            loop {
                if let Some(at) = last_answer
                    && at.elapsed() > PAGE_GAP_LIMIT
                    && restarts < 3
                {
                    restarts += 1;
                    tracing::debug!(path = %query.path, "SuperOffice listing paused too long between pages; starting again");
                    continue 'listing;
                }
                let call =
                    Call::new(Method::GET, &query.path).query(query.query_string(chunk, skip));
                let asked_at = (self.options.clock)();
                let response = self.call(&call).await?;
                if skip == 0 {
                    listing.server_time = match self.options.server_clock {
                        super::ServerClock::DateHeader => response
                            .headers
                            .get(reqwest::header::DATE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| httpdate::parse_http_date(v).ok())
                            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                            .and_then(|d| jiff::Timestamp::from_second(d.as_secs() as i64).ok()),
                        super::ServerClock::Local => Some(asked_at),
                    };
                }
                let status = response.status.as_u16();
                let json: Option<Value> = response.json().ok();
                let refused_as_long =
                    status == 414 || (matches!(status, 400 | 404) && json.is_none());
                if refused_as_long && url_len(&call, &self.api_base().await?.0) > MIN_URL_LEN {
                    // IIS refuses an over-long query string with 414 or 404.15 (HTML).
                    return Ok(Attempt::TooLong);
                }
                if !response.status.is_success() {
                    return Err(refusal(&response, Ctx::Query));
                }
                let rows = json
                    .as_ref()
                    .and_then(|v| v.get("value"))
                    .and_then(Value::as_array)
                    .cloned()
                    .ok_or_else(|| ConnectorError::Service {
                        service: crate::connector::Service::SuperOffice,
                        what: format!("the {} list answered without rows", query.path),
                    })?;
                last_answer = Some(tokio::time::Instant::now());
                let count = rows.len();
                if skip == 0 {
                    listing.first_page = rows.clone();
                }
                listing.rows.extend(rows);
                match query.top {
                    Some(top) if count >= top && top > 0 && !query.one_page => skip += count,
                    _ => return Ok(Attempt::Done(listing)),
                }
            }
        }
    }
}

/// The length of the URL `call` is sent with.
fn url_len(call: &Call, base: &url::Url) -> usize {
    base.as_str().len() + call.path.len() + 1 + call.query.as_deref().map(str::len).unwrap_or(0)
}

/// A cell as a number (SuperOffice shows ids as numbers, `PrimaryKey` as a string).
pub fn number(row: &Value, column: &str) -> Option<u64> {
    match row.get(column)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn id(row: &Value, column: &str) -> Option<u32> {
    number(row, column).and_then(|n| u32::try_from(n).ok())
}

pub fn instant(row: &Value, column: &str) -> Option<jiff::Timestamp> {
    row.get(column)
        .and_then(Value::as_str)
        .and_then(super::time::parse_instant)
}

pub fn text<'v>(row: &'v Value, column: &str) -> &'v str {
    row.get(column).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_keep_lists_short_and_encode_the_rest() {
        let q = ListQuery::new("Appointment", "appointmentId,updatedDate", "appointmentId")
            .filter("updatedDate afterTime '2026-11-22T09:14:07'")
            .associates("associateId", &[102, 101, 102])
            .top(200);
        assert_eq!(
            q.query_string(Some(&[101, 102]), 400),
            "$select=appointmentId,updatedDate&$filter=associateId%20associateIsOneOf%20(101,102)%20and%20updatedDate%20afterTime%20%272026-11-22T09:14:07%27&$orderby=appointmentId&$top=200&$skip=400"
        );
        assert_eq!(encode("a+b&c=d#e"), "a%2Bb%26c%3Dd%23e");
        assert_eq!(quoted("O'Neil"), "'O''Neil'");
    }

    #[test]
    fn associate_lists_are_split_to_fit_the_url() {
        let ids: Vec<u32> = (100_000..101_000).collect();
        let q = ListQuery::new("Appointment", "appointmentId", "appointmentId")
            .associates("associateId", &ids)
            .top(500);
        let base = "https://online2.superoffice.com/Cust12345/api/v1/".len();
        let one = q.chunks(base, 8192);
        assert_eq!(one.len(), 1, "1,000 six-digit ids fit 8 KiB");
        let split = q.chunks(base, 2048);
        assert!(split.len() > 1);
        assert_eq!(split.concat(), ids, "every id once, in order");
        for chunk in &split {
            let url = base + "Appointment?".len() + q.query_string(Some(chunk), 100_000).len();
            assert!(url <= 2048, "{url}");
        }
        let none = ListQuery::new("Appointment", "appointmentId", "appointmentId");
        assert_eq!(none.chunks(base, 2048), vec![Vec::<u32>::new()]);
    }
}
