//! Date-times as the Web API shows and reads them: the tenant's base time zone, `SO-TimeZone`
//! (a zone code or id, optionally with `includeTZOffset`), UTC columns (created and updated
//! dates) and the literals of OData filters.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The tenant's base time zone: data without a zone is stored in it (docs: "base time zone").
pub const BASE_ZONE: &str = "Europe/Oslo";

/// SuperOffice's country-based zone codes (`GET /api/v1/timezone`) that the sandbox knows,
/// with their numeric ids, mapped to IANA zones.
const ZONES: &[(&str, u32, &str)] = &[
    ("UTC", 1, "UTC"),
    ("AU-ACT", 36, "Australia/Canberra"),
    ("BD", 50, "Asia/Dhaka"),
    ("CA-QC", 114, "America/Toronto"),
    ("DK", 140, "Europe/Copenhagen"),
    ("FR", 156, "Europe/Paris"),
    ("DE", 160, "Europe/Berlin"),
    ("GB", 186, "Europe/London"),
    ("NL", 330, "Europe/Amsterdam"),
    ("NO", 261, "Europe/Oslo"),
    ("SE", 384, "Europe/Stockholm"),
    ("US-CA", 425, "America/Los_Angeles"),
    ("US-HI", 433, "Pacific/Honolulu"),
    ("US-NY", 460, "America/New_York"),
];

/// The zone of a `PreferredTZLocation` id; 0 is the tenant's base zone.
pub fn zone_by_id(id: u32) -> Option<TimeZone> {
    if id == 0 {
        return Some(base_zone());
    }
    let (_, _, iana) = ZONES.iter().find(|(_, zid, _)| *zid == id)?;
    TimeZone::get(iana).ok()
}

/// How a request wants date-times: in which zone, and whether with an offset.
#[derive(Debug, Clone)]
pub struct TzMode {
    pub zone: TimeZone,
    pub include_offset: bool,
}

impl TzMode {
    /// No `SO-TimeZone`: the base zone, without offsets.
    pub fn base() -> TzMode {
        TzMode {
            zone: base_zone(),
            include_offset: false,
        }
    }

    /// UTC with offsets: what crmsync sends, and what the control API shows.
    pub fn utc_with_offset() -> TzMode {
        TzMode {
            zone: TimeZone::UTC,
            include_offset: true,
        }
    }

    /// Reads the `SO-TimeZone` header: `NO`, `261`, `UTC, includeTZOffset`, ...
    pub fn from_header(value: Option<&str>) -> Result<TzMode, String> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(TzMode::base());
        };
        let mut parts = value.split(',').map(str::trim);
        let code = parts.next().unwrap_or_default();
        let mut include_offset = false;
        for flag in parts {
            if flag.eq_ignore_ascii_case("includeTZOffset") {
                include_offset = true;
            } else {
                return Err(format!("SO-TimeZone: unknown option {flag:?}"));
            }
        }
        let iana = ZONES
            .iter()
            .find(|(name, id, _)| name.eq_ignore_ascii_case(code) || code == id.to_string())
            .map(|(_, _, iana)| *iana)
            .ok_or_else(|| format!("SO-TimeZone: unknown time zone {code:?}"))?;
        let zone = TimeZone::get(iana).map_err(|e| format!("SO-TimeZone {code:?}: {e}"))?;
        Ok(TzMode {
            zone,
            include_offset,
        })
    }

    /// A planned date-time (start, end, ...) in the request's zone.
    pub fn local(&self, at: Timestamp) -> String {
        let zoned = at.to_zoned(self.zone.clone());
        let text = zoned.datetime().strftime("%Y-%m-%dT%H:%M:%S").to_string();
        if self.include_offset {
            format!("{text}{}", offset_text(zoned.offset().seconds()))
        } else {
            text
        }
    }

    /// A floating date at midnight (all-day events), never shifted by a zone.
    pub fn floating(&self, date: Date) -> String {
        let text = format!("{}T00:00:00", date.strftime("%Y-%m-%d"));
        if self.include_offset {
            // The offset the requested zone has at that midnight, so that the value reads as
            // midnight in the zone the client asked for.
            let offset = date
                .at(0, 0, 0, 0)
                .to_zoned(self.zone.clone())
                .map(|z| z.offset().seconds())
                .unwrap_or(0);
            format!("{text}{}", offset_text(offset))
        } else {
            text
        }
    }

    /// A UTC column (created, updated): never converted; tagged as UTC with `includeTZOffset`.
    pub fn utc(&self, at: Timestamp) -> String {
        let text = at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
        if self.include_offset {
            format!("{text}Z")
        } else {
            text
        }
    }

    /// Reads a date-time a client sent for a planned time: with an offset it is exact,
    /// without one it is in the request's zone.
    pub fn parse_local(&self, text: &str) -> Result<Timestamp, String> {
        parse_in(text, &self.zone)
    }

    /// Midnight of `date` in the request's zone.
    pub fn midnight(&self, date: Date) -> Timestamp {
        date.at(0, 0, 0, 0)
            .to_zoned(self.zone.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The calendar date `at` falls on in the request's zone.
    pub fn date_of(&self, at: Timestamp) -> Date {
        at.to_zoned(self.zone.clone()).date()
    }
}

pub fn base_zone() -> TimeZone {
    TimeZone::get(BASE_ZONE).unwrap_or(TimeZone::UTC)
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

/// Whole seconds: the database keeps dates to the second (the captured Person sample shows
/// `"2022-07-14T14:44:54"`).
pub fn whole_seconds(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

pub fn plus_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(seconds))
        .unwrap_or(at)
}

/// A parsed literal: a date alone, or a date-time (exact when it carried an offset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Literal {
    Date(Date),
    Local(DateTime),
    Exact(Timestamp),
}

/// Parses the date forms the docs use: `2020-05-28`, `2021-1-1`, `2020-05-28T15:00:00`,
/// `2020-05-28 15:00`, with optional fractions and `Z` or `+hh:mm`/`+hhmm`.
pub fn parse_literal(text: &str) -> Result<Literal, String> {
    let bad = || format!("{text:?} is not a date or date-time");
    let text = text.trim();
    let (date_part, rest) = match text.find(['T', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut fields = date_part.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    let number = |s: &str, max_len: usize| -> Result<i64, String> {
        if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let date = Date::new(
        number(y, 4)? as i16,
        number(m, 2)? as i8,
        number(d, 2)? as i8,
    )
    .map_err(|_| bad())?;
    let Some(rest) = rest else {
        return Ok(Literal::Date(date));
    };
    // Split off the zone designator.
    let (clock, zone) = if let Some(stripped) = rest.strip_suffix(['Z', 'z']) {
        (stripped, Some(0))
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (clock, offset) = rest.split_at(i);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 {
            return Err(bad());
        }
        let hours = number(&digits[..2], 2)?;
        let minutes = number(&digits[2..], 2)?;
        if hours > 14 || minutes > 59 {
            return Err(bad());
        }
        (clock, Some(sign * (hours * 3600 + minutes * 60)))
    } else {
        (rest, None)
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let mut parts = hms.split(':');
    let hour = number(parts.next().unwrap_or_default(), 2)?;
    let minute = number(parts.next().unwrap_or_default(), 2)?;
    let second = match parts.next() {
        Some(s) => number(s, 2)?,
        None => 0,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    let nanos = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<i32>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
        None => 0,
    };
    let datetime = DateTime::new(
        date.year(),
        date.month(),
        date.day(),
        hour as i8,
        minute as i8,
        second as i8,
        nanos,
    )
    .map_err(|_| bad())?;
    match zone {
        None => Ok(Literal::Local(datetime)),
        Some(offset) => {
            let offset = jiff::tz::Offset::from_seconds(offset as i32).map_err(|_| bad())?;
            let at = offset.to_timestamp(datetime).map_err(|_| bad())?;
            Ok(Literal::Exact(at))
        }
    }
}

/// A literal as an instant: a zone-less value is read in `zone`, a date is its midnight.
pub fn parse_in(text: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    match parse_literal(text)? {
        Literal::Exact(at) => Ok(at),
        Literal::Local(dt) => dt
            .to_zoned(zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| format!("{text:?}: {e}")),
        Literal::Date(d) => d
            .at(0, 0, 0, 0)
            .to_zoned(zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| format!("{text:?}: {e}")),
    }
}

/// .NET TimeSpan text (`"00:15:00"`, `"1.02:00:00"`) as minutes.
pub fn parse_timespan_minutes(text: &str) -> Result<u32, String> {
    let bad = || format!("{text:?} is not a time span (hh:mm:ss)");
    let (days, clock) = match text.split_once('.') {
        Some((d, c)) if c.contains(':') => (d.parse::<u32>().map_err(|_| bad())?, c),
        _ => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(bad());
    }
    let mut values = [0u32; 3];
    for (i, p) in parts.iter().enumerate() {
        let p = p.split('.').next().unwrap_or(p);
        values[i] = p.parse::<u32>().map_err(|_| bad())?;
    }
    if values[1] > 59 || values[2] > 59 || values[0] > 23 && days > 0 {
        return Err(bad());
    }
    Ok(days * 24 * 60 + values[0] * 60 + values[1])
}

pub fn timespan(minutes: u32) -> String {
    let (d, h, m) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    if d > 0 {
        format!("{d}.{h:02}:{m:02}:00")
    } else {
        format!("{h:02}:{m:02}:00")
    }
}

/// An HTTP date (`Last-Modified`).
pub fn http_date(at: Timestamp) -> String {
    let secs = u64::try_from(at.as_second()).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

pub fn parse_http_date(text: &str) -> Option<Timestamp> {
    let at = httpdate::parse_http_date(text).ok()?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Timestamp::from_second(i64::try_from(secs).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_in_the_documented_forms_parse() {
        assert!(matches!(
            parse_literal("2021-1-1"),
            Ok(Literal::Date(d)) if d == Date::new(2021, 1, 1).unwrap()
        ));
        assert!(matches!(
            parse_literal("2020-05-28T15:00:01"),
            Ok(Literal::Local(_))
        ));
        let utc: Timestamp = "2018-12-24T12:34:45Z".parse().unwrap();
        assert_eq!(
            parse_literal("2018-12-24T07:34:45-0500"),
            Ok(Literal::Exact(utc))
        );
        assert_eq!(
            parse_literal("2018-12-24T07:34:45.000-05:00"),
            Ok(Literal::Exact(utc))
        );
        for bad in [
            "",
            "2020-13-01",
            "yesterday",
            "2020-05-28T25:00",
            "2020-05-28T10:00+99",
        ] {
            assert!(parse_literal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_time_zone_header_converts_and_tags() {
        let at: Timestamp = "2018-12-24T12:34:45Z".parse().unwrap();
        let ny = TzMode::from_header(Some("US-NY, includeTZOffset")).unwrap();
        assert_eq!(ny.local(at), "2018-12-24T07:34:45-05:00");
        assert_eq!(ny.utc(at), "2018-12-24T12:34:45Z");
        let base = TzMode::from_header(None).unwrap();
        assert_eq!(base.local(at), "2018-12-24T13:34:45");
        assert_eq!(base.utc(at), "2018-12-24T12:34:45");
        assert_eq!(
            TzMode::from_header(Some("261")).unwrap().local(at),
            "2018-12-24T13:34:45"
        );
        assert!(TzMode::from_header(Some("Mars")).is_err());
        assert_eq!(parse_timespan_minutes("00:15:00"), Ok(15));
        assert_eq!(timespan(15), "00:15:00");
    }
}
