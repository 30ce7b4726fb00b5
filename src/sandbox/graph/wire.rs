//! How Graph writes and reads values: timestamps, `dateTimeTimeZone`, time zone names (IANA
//! and Windows), item bodies, and typed access to JSON request bodies with OData's errors.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use super::error::GraphError;

/// Graph's "not set" time (`responseStatus.time` of an organizer).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `2017-04-15T03:00:51.2453720Z`: what Graph writes for created/modified times of events
/// and tasks.
pub fn utc7(ts: Timestamp) -> String {
    let dt = TimeZone::UTC.to_datetime(ts);
    format!("{}Z", civil7(dt))
}

/// `2017-09-04T15:54:02Z`: contacts' created/modified times (whole seconds, as the sample).
pub fn utc_secs(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2017-04-15T11:00:00.0000000`: the `dateTime` of a `dateTimeTimeZone`.
pub fn civil7(dt: DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 100
    )
}

pub fn date7(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}T00:00:00.0000000",
        date.year(),
        date.month(),
        date.day()
    )
}

/// Windows time zone names Exchange uses, with their IANA equivalents (CLDR's primary
/// zone). The first entry for an IANA zone is also the name given to seeded events.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("UTC", "UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("Romance Standard Time", "Europe/Paris"),
    ("FLE Standard Time", "Europe/Kyiv"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("India Standard Time", "Asia/Kolkata"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time", "America/Denver"),
    ("Central Standard Time", "America/Chicago"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("Eastern Standard Time", "America/New_York"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Argentina Standard Time", "America/Buenos_Aires"),
    ("Pacific SA Standard Time", "America/Santiago"),
];

/// IANA zones whose Windows name is not their table entry's (the seeded mailboxes' zones).
const IANA_TO_WINDOWS: &[(&str, &str)] = &[
    ("Europe/Oslo", "W. Europe Standard Time"),
    ("Europe/Stockholm", "W. Europe Standard Time"),
    ("Europe/Copenhagen", "Romance Standard Time"),
    ("Europe/Amsterdam", "W. Europe Standard Time"),
    ("Europe/Vienna", "W. Europe Standard Time"),
    ("Europe/Rome", "W. Europe Standard Time"),
    ("Europe/Zurich", "W. Europe Standard Time"),
    ("Europe/Helsinki", "FLE Standard Time"),
    ("Europe/Prague", "Central Europe Standard Time"),
    ("Europe/Madrid", "Romance Standard Time"),
    ("Europe/Brussels", "Romance Standard Time"),
    ("Etc/UTC", "UTC"),
];

/// A time zone as a request names it.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The name as given (echoed back in `timeZone` and `originalStartTimeZone`).
    pub name: String,
    pub tz: TimeZone,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_string(),
            tz: TimeZone::UTC,
        }
    }
}

/// A Windows or IANA time zone name (Windows names case-insensitively, as Exchange does).
pub fn zone(name: &str) -> Option<Zone> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return None;
    }
    let iana = WINDOWS_ZONES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(trimmed))
        .map(|(_, iana)| *iana)
        .unwrap_or(trimmed);
    let tz = if iana.eq_ignore_ascii_case("utc") {
        TimeZone::UTC
    } else {
        TimeZone::get(iana).ok()?
    };
    Some(Zone {
        name: trimmed.to_string(),
        tz,
    })
}

/// The Windows name Outlook would store for an IANA zone, when known.
pub fn windows_name(iana: &str) -> Option<&'static str> {
    IANA_TO_WINDOWS
        .iter()
        .map(|(i, w)| (*i, *w))
        .chain(WINDOWS_ZONES.iter().map(|(w, i)| (*i, *w)))
        .find(|(i, _)| i.eq_ignore_ascii_case(iana))
        .map(|(_, w)| w)
}

/// A `dateTime` value: civil time with up to 7 fractional digits, optionally followed by `Z`
/// or an offset (then it is an instant).
pub fn parse_date_time(text: &str) -> Option<(DateTime, Option<Timestamp>)> {
    let text = text.trim();
    if let Ok(dt) = text.parse::<DateTime>() {
        return Some((dt, None));
    }
    let ts = text.parse::<Timestamp>().ok()?;
    Some((TimeZone::UTC.to_datetime(ts), Some(ts)))
}

/// A query parameter's instant (`startDateTime`): with an offset as given, else UTC; a date
/// alone is its midnight (UTC).
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    if let Ok(date) = text.trim().parse::<Date>() {
        return date
            .to_datetime(jiff::civil::Time::midnight())
            .to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    let (dt, instant) = parse_date_time(text)?;
    match instant {
        Some(ts) => Some(ts),
        None => dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp()),
    }
}

/// A parsed `dateTimeTimeZone`.
#[derive(Debug, Clone)]
pub struct DtTz {
    /// The wall time in `zone`.
    pub civil: DateTime,
    pub zone: Zone,
    pub instant: Timestamp,
}

/// `{"dateTime": ..., "timeZone": ...}` as a request sends it.
pub fn parse_dttz(value: &Value, property: &str) -> Result<DtTz, GraphError> {
    let Some(obj) = value.as_object() else {
        return Err(GraphError::body_read(format!(
            "Cannot convert a value of JSON type {} to the expected type 'microsoft.graph.dateTimeTimeZone' for property '{property}'.",
            json_kind(value)
        )));
    };
    let input = Obj::new(obj, "dateTimeTimeZone");
    input.known(&["dateTime", "timeZone"])?;
    let text = input.string("dateTime")?.unwrap_or_default();
    let zone_name = input.string("timeZone")?.unwrap_or_default();
    let zone = zone(&zone_name).ok_or_else(|| {
        GraphError::bad_request(
            "TimeZoneNotSupportedException",
            format!(
                "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{zone_name}'."
            ),
        )
    })?;
    let (civil, instant) = parse_date_time(&text).ok_or_else(|| {
        GraphError::bad_request(
            "ErrorInvalidRequest",
            format!("Cannot convert the literal '{text}' to the expected type 'Edm.DateTime' of '{property}.dateTime'."),
        )
    })?;
    let (civil, instant) = match instant {
        Some(ts) => (zone.tz.to_datetime(ts), ts),
        None => {
            let ts = civil
                .to_zoned(zone.tz.clone())
                .map(|z| z.timestamp())
                .map_err(|_| {
                    GraphError::bad_request(
                        "ErrorInvalidRequest",
                        format!("'{text}' is not a valid time in '{zone_name}'."),
                    )
                })?;
            (civil, ts)
        }
    };
    Ok(DtTz {
        civil,
        zone,
        instant,
    })
}

/// `{"dateTime", "timeZone"}` for an instant shown in `zone`.
pub fn dttz_json(instant: Timestamp, zone: &Zone) -> Value {
    serde_json::json!({
        "dateTime": civil7(zone.tz.to_datetime(instant)),
        "timeZone": zone.name,
    })
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "Boolean",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

/// Parses a request body that must be a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GraphError::unreadable_body("an empty body"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(GraphError::unreadable_body(format!(
            "a JSON {} where an object was expected",
            json_kind(&other)
        ))),
        Err(e) => Err(GraphError::unreadable_body(format!("the body: {e}"))),
    }
}

/// Typed, OData-checked access to a JSON object of a request body.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    entity: &'static str,
}

impl<'a> Obj<'a> {
    pub fn new(map: &'a Map<String, Value>, entity: &'static str) -> Self {
        Obj { map, entity }
    }

    /// Refuses properties the type does not have (annotations like `@odata.type` pass).
    pub fn known(&self, properties: &[&str]) -> Result<(), GraphError> {
        for key in self.map.keys() {
            if key.starts_with('@') || key.contains("@odata.") || properties.contains(&key.as_str())
            {
                continue;
            }
            return Err(GraphError::body_read(format!(
                "The property '{key}' does not exist on type 'microsoft.graph.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                self.entity
            )));
        }
        Ok(())
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn wrong_type(&self, key: &str, expected: &str, v: &Value) -> GraphError {
        GraphError::body_read(format!(
            "Cannot convert a value of JSON type {} to the expected type '{expected}' for property '{key}' of 'microsoft.graph.{}'.",
            json_kind(v),
            self.entity
        ))
    }

    fn null_not_allowed(&self, key: &str, expected: &str) -> GraphError {
        GraphError::body_read(format!(
            "A null value was found for the property named '{key}', which has the expected type '{expected}[Nullable=False]'. The expected type '{expected}[Nullable=False]' does not allow null values."
        ))
    }

    /// A nullable string (`None` when absent or null).
    pub fn string(&self, key: &str) -> Result<Option<String>, GraphError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong_type(key, "Edm.String", v)),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, GraphError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Null) => Err(self.null_not_allowed(key, "Edm.Boolean")),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(key, "Edm.Boolean", v)),
        }
    }

    pub fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, GraphError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Null) => Err(self.null_not_allowed(key, "Edm.Int32")),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
                _ => Err(GraphError::body_read(format!(
                    "The value '{n}' of property '{key}' is out of range ({min} to {max})."
                ))),
            },
            Some(v) => Err(self.wrong_type(key, "Edm.Int32", v)),
        }
    }

    /// A collection of strings; null counts as empty.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, GraphError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Vec::new())),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(self.wrong_type(key, "Collection(Edm.String)", v)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong_type(key, "Collection(Edm.String)", v)),
        }
    }

    /// An enum member, case-insensitive on input; the canonical (lower camel) name out.
    pub fn member(
        &self,
        key: &str,
        members: &[&'static str],
    ) -> Result<Option<&'static str>, GraphError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Null) => Err(self.null_not_allowed(key, "Edm.Enum")),
            Some(Value::String(s)) => members
                .iter()
                .find(|m| m.eq_ignore_ascii_case(s))
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    GraphError::body_read(format!(
                        "Requested value '{s}' was not found. Property '{key}' takes one of: {}.",
                        members.join(", ")
                    ))
                }),
            Some(v) => Err(self.wrong_type(key, "Edm.Enum", v)),
        }
    }

    pub fn object(&self, key: &str, entity: &'static str) -> Result<Option<Obj<'a>>, GraphError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj::new(map, entity))),
            Some(v) => Err(self.wrong_type(key, &format!("microsoft.graph.{entity}"), v)),
        }
    }

    pub fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, GraphError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(v) => Err(self.wrong_type(key, "Collection", v)),
        }
    }

    /// Each element of an array as an object.
    pub fn objects(
        &self,
        key: &str,
        entity: &'static str,
    ) -> Result<Option<Vec<Obj<'a>>>, GraphError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                Value::Object(map) => Ok(Obj::new(map, entity)),
                v => Err(self.wrong_type(key, &format!("microsoft.graph.{entity}"), v)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Percent-decodes a path segment (`+` stays `+`, unlike in a query).
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a path segment or query value (unreserved characters stay).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
