//! One name per set of zones that keep the same time. Outlook names zones the Windows way and
//! reads them back as the CLDR "golden" zone of each Windows zone ("W. Europe Standard Time"
//! is Europe/Berlin), while SuperOffice names Norway Europe/Oslo: the same series in the same
//! clock time, under two names. Comparing what both sides hold goes by [`zone_class`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::windows_zones::WINDOWS_TO_IANA;

/// Offsets (seconds) at noon UTC on every day of 2024 to 2032: two zones with the same
/// offsets then change their clocks on the same days (an hour apart at most, which no series
/// occurrence can tell) and are taken as one.
fn signature(zone: &TimeZone) -> Vec<i32> {
    const DAY: i64 = 86_400;
    let Ok(first) = "2024-01-01T12:00:00Z".parse::<Timestamp>() else {
        return Vec::new();
    };
    (0..(9 * 365 + 2))
        .filter_map(|day| Timestamp::from_second(first.as_second() + day * DAY).ok())
        .map(|at| zone.to_offset(at).seconds())
        .collect()
}

fn golden() -> &'static Vec<(&'static str, Vec<i32>)> {
    static GOLDEN: OnceLock<Vec<(&'static str, Vec<i32>)>> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        let mut zones: Vec<&'static str> = WINDOWS_TO_IANA.iter().map(|(_, iana)| *iana).collect();
        zones.sort_unstable();
        zones.dedup();
        zones
            .into_iter()
            .filter_map(|name| Some((name, signature(&TimeZone::get(name).ok()?))))
            .collect()
    })
}

/// The name of the class of `name`: the first CLDR golden zone (by name) that keeps the same
/// time as it, or `name` itself when none does or it is no zone jiff knows.
pub fn zone_class(name: &str) -> String {
    static SEEN: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(class) = seen.lock().ok().and_then(|s| s.get(name).cloned()) {
        return class;
    }
    let class = match TimeZone::get(name) {
        Ok(zone) => {
            let own = signature(&zone);
            golden()
                .iter()
                .find(|(_, s)| *s == own)
                .map_or_else(|| name.to_string(), |(golden, _)| golden.to_string())
        }
        Err(_) => name.to_string(),
    };
    if let Ok(mut s) = seen.lock() {
        s.insert(name.to_string(), class.clone());
    }
    class
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_that_keep_the_same_time_share_a_class() {
        assert_eq!(zone_class("Europe/Oslo"), zone_class("Europe/Berlin"));
        assert_eq!(zone_class("Europe/Stockholm"), zone_class("Europe/Berlin"));
        assert_eq!(
            zone_class("America/Toronto"),
            zone_class("America/New_York")
        );
        assert_ne!(zone_class("Europe/London"), zone_class("Europe/Berlin"));
        assert_ne!(zone_class("America/Phoenix"), zone_class("America/Denver"));
        assert_eq!(zone_class("Not/AZone"), "Not/AZone");
        // Stable: asked twice, the same answer.
        assert_eq!(zone_class("Europe/Oslo"), zone_class("Europe/Oslo"));
    }
}
