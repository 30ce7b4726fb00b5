//! Dates and times as SuperOffice writes and reads them. crmsync always sends
//! `SO-TimeZone: UTC, includeTZOffset`, so answers carry offsets; the docs show three forms
//! (`Z`, `+hh:mm`, `-hhmm`) and all are accepted, as is a bare value (read as UTC, the zone
//! asked for). Values sent are bare UTC times: with that header SuperOffice reads them in UTC,
//! and they are the form of SuperOffice's own samples.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};

/// A date-time from an answer: the wall-clock value as written, and its offset if it had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoDateTime {
    pub civil: DateTime,
    pub offset: Option<Offset>,
}

impl SoDateTime {
    /// The instant: with its offset, or in UTC (what `SO-TimeZone: UTC` asks for) without one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        let offset = self.offset.unwrap_or(Offset::UTC);
        offset.to_timestamp(self.civil).ok()
    }

    /// `0001-01-01T00:00:00`, SuperOffice's "no date".
    pub fn is_empty_date(&self) -> bool {
        self.civil.year() <= 1
    }
}

/// Reads `2026-12-10T09:00:00`, with optional fractions and an optional offset (`Z`,
/// `+01:00`, `-0500`, `+01`); a date alone is midnight.
pub fn parse(text: &str) -> Option<SoDateTime> {
    let text = text.trim();
    let (body, offset) = split_offset(text)?;
    let civil = if body.len() == 10 {
        body.parse::<Date>()
            .ok()?
            .to_datetime(jiff::civil::Time::midnight())
    } else {
        // Both separators are seen in the wild.
        body.replacen(' ', "T", 1).parse::<DateTime>().ok()?
    };
    Some(SoDateTime { civil, offset })
}

/// Parses a date-time into an instant (see [`parse`]).
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    parse(text)?.timestamp()
}

fn split_offset(text: &str) -> Option<(&str, Option<Offset>)> {
    if let Some(body) = text.strip_suffix(['Z', 'z']) {
        return Some((body, Some(Offset::UTC)));
    }
    // An offset sign can only come after the time's start (the date has '-' too).
    let time_start = text.find(['T', ' ']).map(|i| i + 1);
    let Some(time_start) = time_start else {
        return Some((text, None));
    };
    let Some(sign_at) = text[time_start..].find(['+', '-']).map(|i| i + time_start) else {
        return Some((text, None));
    };
    let sign: i32 = if text.as_bytes()[sign_at] == b'-' {
        -1
    } else {
        1
    };
    let digits: String = text[sign_at + 1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits.get(0..2)?.parse().ok()?;
    let minutes: i32 = digits.get(2..4).map(str::parse).unwrap_or(Ok(0)).ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let seconds = sign * (hours * 3600 + minutes * 60);
    let offset = Offset::from_seconds(seconds).ok()?;
    Some((&text[..sign_at], Some(offset)))
}

/// A UTC instant as SuperOffice takes it with `SO-TimeZone: UTC`: `2026-12-10T09:00:00`.
pub fn format_utc(at: Timestamp) -> String {
    at.to_zoned(TimeZone::UTC)
        .datetime()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Midnight of a floating date: `2026-12-05T00:00:00` (all-day items are never converted).
pub fn format_midnight(date: Date) -> String {
    format!("{}T00:00:00", date.strftime("%Y-%m-%d"))
}

/// A filter literal for a UTC column or, under `SO-TimeZone: UTC`, a planned one: whole
/// seconds, rounded down so that a bound never skips the second it is in.
pub fn literal(at: Timestamp) -> String {
    format_utc(floor_second(at))
}

pub fn floor_second(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// `If-Unmodified-Since` for a version: HTTP dates have whole seconds, so a version with a
/// fraction is rounded up (rounding down would make every write fail its precondition).
pub fn http_date_at_or_after(at: Timestamp) -> String {
    let mut secs = at.as_second();
    if at.subsec_nanosecond() > 0 {
        secs += 1;
    }
    let secs = u64::try_from(secs).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// .NET `TimeSpan` text (`"00:15:00"`, `"1.02:00:00"`, `"-00:05:00"`) in whole minutes.
pub fn parse_timespan_minutes(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.starts_with('-') {
        return None;
    }
    let (days, clock) = match text.split_once('.') {
        Some((d, c)) if c.contains(':') && !d.contains(':') => (d.parse::<u32>().ok()?, c),
        _ => (0, text),
    };
    let mut parts = clock.split(':');
    let hours: u32 = parts.next()?.parse().ok()?;
    let minutes: u32 = parts.next()?.parse().ok()?;
    // Seconds (and fractions) are below what a reminder holds.
    if let Some(seconds) = parts.next() {
        seconds.split('.').next()?.parse::<u32>().ok()?;
    }
    if parts.next().is_some() || minutes > 59 {
        return None;
    }
    days.checked_mul(1440)?
        .checked_add(hours.checked_mul(60)?)?
        .checked_add(minutes)
}

pub fn format_timespan(minutes: u32) -> String {
    let (d, h, m) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    if d > 0 {
        format!("{d}.{h:02}:{m:02}:00")
    } else {
        format!("{h:02}:{m:02}:00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_documented_offset_forms_and_bare_values_parse() {
        let at: Timestamp = "2018-12-24T12:34:45Z".parse().unwrap();
        for text in [
            "2018-12-24T12:34:45Z",
            "2018-12-24T13:34:45+01:00",
            "2018-12-24T07:34:45-0500",
            "2018-12-24T07:34:45-05",
            "2018-12-24T12:34:45",
            "2018-12-24 12:34:45",
            "2018-12-24T12:34:45.0000000Z",
        ] {
            assert_eq!(parse_instant(text), Some(at), "{text}");
        }
        assert_eq!(
            parse_instant("2010-12-22T03:24:51.6618476+01:00"),
            Some("2010-12-22T02:24:51.6618476Z".parse().unwrap())
        );
        assert_eq!(
            parse("2026-12-05T00:00:00+05:00").unwrap().civil.date(),
            Date::new(2026, 12, 5).unwrap(),
            "the wall-clock date stays as written"
        );
        assert!(parse("0001-01-01T00:00:00").unwrap().is_empty_date());
        for bad in [
            "",
            "yesterday",
            "2018-12-24T07:34:45+5",
            "2018-12-24T07:34:45+25:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn literals_and_precondition_dates() {
        let at: Timestamp = "2026-11-22T09:14:07.9Z".parse().unwrap();
        assert_eq!(literal(at), "2026-11-22T09:14:07");
        assert_eq!(http_date_at_or_after(at), "Sun, 22 Nov 2026 09:14:08 GMT");
        let whole: Timestamp = "2026-11-22T09:14:07Z".parse().unwrap();
        assert_eq!(
            http_date_at_or_after(whole),
            "Sun, 22 Nov 2026 09:14:07 GMT"
        );
    }

    #[test]
    fn time_spans_round_trip() {
        for minutes in [0, 5, 15, 59, 60, 1439, 1440, 2 * 1440 + 75] {
            assert_eq!(
                parse_timespan_minutes(&format_timespan(minutes)),
                Some(minutes)
            );
        }
        assert_eq!(parse_timespan_minutes("00:15:00.0000000"), Some(15));
        assert_eq!(parse_timespan_minutes("perferendis"), None);
        assert_eq!(parse_timespan_minutes("-00:05:00"), None);
    }
}
