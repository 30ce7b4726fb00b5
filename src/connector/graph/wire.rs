//! Graph on the wire: URLs (paths and query strings encoded as Graph documents them), the
//! `Prefer` headers, Graph's time shapes, and its error bodies turned into
//! [`ConnectorError`]s.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use reqwest::StatusCode;
use serde_json::Value;

use crate::connector::{ConnectorError, Service};

/// One path segment (an id, an address), percent-encoded: ids may hold `/`, `+` or `=`.
pub fn segment(text: &str) -> String {
    encode(text, b"-_.~=")
}

/// One query value (a `$filter`, a date-time): spaces, colons, slashes and braces encoded, as
/// the docs ask for extended-property filters, and quotes (which URL parsers encode anyway);
/// `$`, `,`, `(`, `)` kept readable.
pub fn query_value(text: &str) -> String {
    encode(text, b"-_.~$,()")
}

fn encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `name=value&...`, values encoded with [`query_value`].
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", query_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A string literal inside an OData `$filter` (quotes doubled).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What crmsync prefers of every mailbox request: ids that survive moves, times in UTC.
pub const PREFER_IDS_UTC: &str = "IdType=\"ImmutableId\", outlook.timezone=\"UTC\"";

/// The same, plus bodies as plain text (events: Outlook hands out HTML otherwise).
pub const PREFER_IDS_UTC_TEXT: &str =
    "IdType=\"ImmutableId\", outlook.timezone=\"UTC\", outlook.body-content-type=\"text\"";

/// The `Prefer` header of a request: ids and UTC always, text bodies for events, and the page
/// size of a delta query.
pub fn prefer(text_body: bool, page_size: Option<u32>) -> String {
    let base = if text_body {
        PREFER_IDS_UTC_TEXT
    } else {
        PREFER_IDS_UTC
    };
    match page_size {
        Some(n) => format!("{base}, odata.maxpagesize={n}"),
        None => base.to_string(),
    }
}

/// `2026-06-01T12:00:00.0000000`: Graph's `dateTime`, to 100 ns.
pub fn date_time(ts: Timestamp) -> String {
    let civil = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        civil.year(),
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second(),
        civil.subsec_nanosecond() / 100
    )
}

/// Midnight of `date`, as Graph's `dateTime`.
pub fn midnight(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}T00:00:00.0000000",
        date.year(),
        date.month(),
        date.day()
    )
}

/// `{"dateTime": ..., "timeZone": "UTC"}`.
pub fn utc(ts: Timestamp) -> Value {
    serde_json::json!({"dateTime": date_time(ts), "timeZone": "UTC"})
}

fn is_utc_name(name: &str) -> bool {
    [
        "UTC",
        "Etc/UTC",
        "Coordinated Universal Time",
        "tzone://Microsoft/Utc",
        "GMT",
        "Z",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name.trim()))
}

/// A `dateTimeTimeZone` as a civil date-time and its zone (`None`: not one we can read).
fn civil(value: &Value) -> Option<(DateTime, Option<jiff::tz::TimeZone>)> {
    let text = value.get("dateTime")?.as_str()?;
    let zone = value
        .get("timeZone")
        .and_then(Value::as_str)
        .unwrap_or("UTC");
    if let Ok(ts) = text.parse::<Timestamp>() {
        // An explicit offset wins over the zone name.
        return Some((ts.to_zoned(jiff::tz::TimeZone::UTC).datetime(), None));
    }
    let civil = text.parse::<DateTime>().ok()?;
    if is_utc_name(zone) {
        return Some((civil, None));
    }
    // crmsync asks for UTC; a service that ignored that still names an IANA zone or UTC.
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    Some((civil, Some(tz)))
}

/// A `dateTimeTimeZone` as an instant.
pub fn instant(value: &Value) -> Option<Timestamp> {
    let (civil, zone) = civil(value)?;
    let zone = zone.unwrap_or(jiff::tz::TimeZone::UTC);
    civil.to_zoned(zone).ok().map(|z| z.timestamp())
}

/// The date a midnight-ish `dateTimeTimeZone` stands for: its date when it is at midnight;
/// otherwise the date whose midnight in some zone it is (a client that stored the date as
/// midnight in the user's zone, read in UTC). From 11:00 on it is the next day's midnight
/// east of UTC, before that the same day's midnight west of it: right for UTC-10 to UTC+13.
pub fn whole_date(value: &Value) -> Option<Date> {
    let (civil, zone) = civil(value)?;
    let civil = match zone {
        Some(tz) => civil
            .to_zoned(tz)
            .ok()?
            .with_time_zone(jiff::tz::TimeZone::UTC)
            .datetime(),
        None => civil,
    };
    if civil.time() == Time::midnight() || civil.hour() < 11 {
        Some(civil.date())
    } else {
        civil.date().tomorrow().ok()
    }
}

/// A Graph error body's `code` and `message` (empty when it has none).
pub fn error_of(body: &[u8]) -> (String, String) {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    error_of_value(&value)
}

pub fn error_of_value(value: &Value) -> (String, String) {
    let error = &value["error"];
    let code = error["code"].as_str().unwrap_or_default().to_string();
    let message = error["message"].as_str().unwrap_or_default();
    // The first sentence names the cause; the rest can be long.
    let message: String = message.chars().take(300).collect();
    (code, message)
}

/// What a request was for, to class its failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A read of the mailbox's collections (delta, listings, lookups).
    Read,
    /// A read of a delta or skip link.
    Delta,
    /// A write of one item.
    Write,
}

/// Codes that mean the mailbox itself is out of reach for this app.
const MAILBOX_GONE: &[&str] = &[
    "ErrorMailboxNotFound",
    "MailboxNotEnabledForRESTAPI",
    "MailboxNotSupportedForRESTAPI",
    "ErrorInvalidUser",
    "ErrorNonExistentMailbox",
    "Request_ResourceNotFound",
    "ResourceNotFound",
    "UserNotFound",
];

/// Whether a code says the delta token is no longer good.
pub fn is_resync(code: &str) -> bool {
    ["syncStateNotFound", "resyncRequired", "syncStateInvalid"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(code))
}

/// A status and error body that is not a success, as a [`ConnectorError`]. `item` names the
/// item (or the collection) in the error.
pub fn classify(status: StatusCode, body: &[u8], op: Op, item: &str) -> ConnectorError {
    let (code, message) = error_of(body);
    classify_parts(status, &code, &message, op, item)
}

pub fn classify_parts(
    status: StatusCode,
    code: &str,
    message: &str,
    op: Op,
    item: &str,
) -> ConnectorError {
    let service = Service::Graph;
    let what = if code.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else if message.is_empty() {
        format!("HTTP {} {code}", status.as_u16())
    } else {
        format!("HTTP {} {code}: {message}", status.as_u16())
    };
    if op == Op::Delta && (status == StatusCode::GONE || is_resync(code)) {
        return ConnectorError::ResyncNeeded { service };
    }
    if MAILBOX_GONE.iter().any(|c| c.eq_ignore_ascii_case(code))
        || (status == StatusCode::NOT_FOUND && message.to_ascii_lowercase().contains("user"))
    {
        return ConnectorError::User {
            service,
            what: format!("the mailbox cannot be reached ({what})"),
        };
    }
    match status {
        StatusCode::FORBIDDEN => ConnectorError::User {
            service,
            what: format!(
                "access to the mailbox was denied; check the application's permissions and admin consent ({what})"
            ),
        },
        StatusCode::PRECONDITION_FAILED => ConnectorError::Conflict {
            service,
            item: item.to_string(),
        },
        StatusCode::UNAUTHORIZED => ConnectorError::Service { service, what },
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            ConnectorError::Transient {
                service,
                what,
                retry_after: None,
            }
        }
        // A read the service refuses is a problem of this user's data or of crmsync, not of
        // the whole service: the user stops, the others go on.
        _ if op != Op::Write && status != StatusCode::NOT_FOUND => {
            ConnectorError::User { service, what }
        }
        _ => ConnectorError::Item {
            service,
            item: item.to_string(),
            what,
        },
    }
}

/// A malformed answer (not the JSON Graph documents).
pub fn malformed(what: impl Into<String>) -> ConnectorError {
    ConnectorError::Transient {
        service: Service::Graph,
        what: format!(
            "an answer that is not what Graph documents: {}",
            what.into()
        ),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segments_and_queries_are_encoded() {
        assert_eq!(segment("AAMk/a+b=="), "AAMk%2Fa%2Bb==");
        assert_eq!(segment("anna@contoso.example"), "anna%40contoso.example");
        assert_eq!(
            query(&[(
                "$filter",
                "singleValueExtendedProperties/Any(ep: ep/id eq 'String {x} Name y')"
            )]),
            "$filter=singleValueExtendedProperties%2FAny(ep%3A%20ep%2Fid%20eq%20%27String%20%7Bx%7D%20Name%20y%27)"
        );
        assert_eq!(literal("O'Brien"), "'O''Brien'");
    }

    #[test]
    fn times_are_written_to_100_ns_and_read_back() {
        let ts: Timestamp = "2026-03-29T01:30:00.1234567Z".parse().unwrap();
        assert_eq!(date_time(ts), "2026-03-29T01:30:00.1234567");
        assert_eq!(instant(&utc(ts)), Some(ts));
        let oslo = json!({"dateTime": "2026-06-01T10:00:00.0000000", "timeZone": "Europe/Oslo"});
        assert_eq!(
            instant(&oslo),
            Some("2026-06-01T08:00:00Z".parse().unwrap())
        );
        let with_offset = json!({"dateTime": "2026-06-01T10:00:00+02:00", "timeZone": "UTC"});
        assert_eq!(
            instant(&with_offset),
            Some("2026-06-01T08:00:00Z".parse().unwrap())
        );
        assert_eq!(instant(&json!({"dateTime": "soon"})), None);
    }

    #[test]
    fn whole_dates_survive_a_zone_shift() {
        let d = |s: &str| json!({"dateTime": s, "timeZone": "UTC"});
        let date = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(
            whole_date(&d("2026-03-10T00:00:00.0000000")),
            Some(date("2026-03-10"))
        );
        // Midnight in Oslo (UTC+1) and in New York (UTC-4), read in UTC.
        assert_eq!(
            whole_date(&d("2026-03-09T23:00:00.0000000")),
            Some(date("2026-03-10"))
        );
        assert_eq!(
            whole_date(&d("2026-03-10T04:00:00.0000000")),
            Some(date("2026-03-10"))
        );
        // Auckland in summer (UTC+13) and Honolulu (UTC-10).
        assert_eq!(
            whole_date(&d("2026-03-09T11:00:00.0000000")),
            Some(date("2026-03-10"))
        );
        assert_eq!(
            whole_date(&d("2026-03-10T10:00:00.0000000")),
            Some(date("2026-03-10"))
        );
    }

    #[test]
    fn errors_are_classed() {
        let c = |status: u16, code: &str, op| {
            classify_parts(StatusCode::from_u16(status).unwrap(), code, "", op, "x")
        };
        assert!(matches!(
            c(410, "", Op::Delta),
            ConnectorError::ResyncNeeded { .. }
        ));
        assert!(matches!(
            c(400, "SyncStateNotFound", Op::Delta),
            ConnectorError::ResyncNeeded { .. }
        ));
        assert!(matches!(
            c(400, "RESYNCREQUIRED", Op::Delta),
            ConnectorError::ResyncNeeded { .. }
        ));
        assert!(matches!(
            c(404, "ErrorMailboxNotFound", Op::Read),
            ConnectorError::User { .. }
        ));
        assert!(matches!(
            c(404, "MailboxNotEnabledForRESTAPI", Op::Write),
            ConnectorError::User { .. }
        ));
        assert!(matches!(
            c(403, "ErrorAccessDenied", Op::Read),
            ConnectorError::User { .. }
        ));
        assert!(matches!(
            c(400, "RequestBodyRead", Op::Write),
            ConnectorError::Item { .. }
        ));
        assert!(matches!(
            c(412, "ErrorIrresolvableConflict", Op::Write),
            ConnectorError::Conflict { .. }
        ));
        assert!(matches!(
            c(503, "serviceNotAvailable", Op::Read),
            ConnectorError::Transient { .. }
        ));
        assert!(matches!(
            c(404, "ErrorItemNotFound", Op::Write),
            ConnectorError::Item { .. }
        ));
    }
}
