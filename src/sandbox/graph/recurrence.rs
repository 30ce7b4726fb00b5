//! Graph's `patternedRecurrence`: its validation as Graph documents it (the properties each
//! pattern and range type requires), its JSON as Graph shows it (every pattern property,
//! zero or default when unused, as in `event-recurring.json`), and the dates it produces.
//!
//! The expansion here is the emulator's own and deliberately plain: it walks the series
//! from its first day (day by day for daily and weekly patterns, month by month for the
//! others) and asks whether each candidate is on the pattern. It shares nothing with
//! crmsync's `connector::recurrence`, so a mistake in one shows against the other.

use jiff::civil::{Date, Weekday};
use serde_json::{Value, json};

use super::error::GraphError;
use super::wire::{self, Obj, Zone};

pub const PATTERN_TYPES: &[&str] = &[
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
];
const RANGE_TYPES: &[&str] = &["endDate", "noEnd", "numbered"];
const DAYS: &[&str] = &[
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const INDEXES: &[&str] = &["first", "second", "third", "fourth", "last"];
/// The walk's bound: no series of a mailbox is walked past this many candidates.
const MAX_STEPS: usize = 200_000;

fn invalid(detail: &str) -> GraphError {
    GraphError::bad_request(
        "ErrorPropertyValidationFailure",
        format!("At least one property failed validation. Recurrence: {detail}"),
    )
}

/// A series' recurrence as the emulator stores it.
#[derive(Debug, Clone)]
pub struct Recur {
    pub kind: &'static str,
    pub interval: i64,
    pub days: Vec<&'static str>,
    pub first_day_of_week: &'static str,
    pub index: &'static str,
    pub month: i8,
    pub day_of_month: i8,
    pub range_kind: &'static str,
    pub start: Date,
    pub end: Option<Date>,
    pub count: i64,
    /// The zone the range's dates and the occurrences' wall times are in.
    pub zone: Zone,
}

fn weekday(name: &str) -> Weekday {
    match name {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        _ => Weekday::Sunday,
    }
}

fn date_of(obj: &Obj<'_>, key: &str) -> Result<Option<Date>, GraphError> {
    match obj.string(key)? {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse::<Date>()
            .map(Some)
            .map_err(|_| GraphError::body_read(format!("Cannot convert '{text}' to Edm.Date."))),
    }
}

impl Recur {
    /// Parses a `recurrence` body; `event_zone` is the event's start zone (the default
    /// `recurrenceTimeZone`).
    pub fn parse(obj: &Obj<'_>, event_zone: &Zone) -> Result<Recur, GraphError> {
        obj.known(&["pattern", "range"])?;
        let pattern = obj
            .object("pattern", "recurrencePattern")?
            .ok_or_else(|| invalid("a pattern is required."))?;
        let range = obj
            .object("range", "recurrenceRange")?
            .ok_or_else(|| invalid("a range is required."))?;
        pattern.known(&[
            "type",
            "interval",
            "month",
            "dayOfMonth",
            "daysOfWeek",
            "firstDayOfWeek",
            "index",
        ])?;
        range.known(&[
            "type",
            "startDate",
            "endDate",
            "numberOfOccurrences",
            "recurrenceTimeZone",
        ])?;
        let kind = pattern
            .member("type", PATTERN_TYPES)?
            .ok_or_else(|| invalid("the pattern's type is required."))?;
        let interval = pattern
            .int("interval", 0, 99)?
            .filter(|i| *i >= 1)
            .ok_or_else(|| invalid("the pattern's interval is required and must be 1 to 99."))?;
        let days = match pattern.strings("daysOfWeek")? {
            Some(names) => names
                .iter()
                .map(|n| {
                    DAYS.iter()
                        .find(|d| d.eq_ignore_ascii_case(n))
                        .copied()
                        .ok_or_else(|| invalid(&format!("'{n}' is not a day of the week.")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let needs_days = matches!(kind, "weekly" | "relativeMonthly" | "relativeYearly");
        if needs_days && days.is_empty() {
            return Err(invalid(&format!("a {kind} pattern needs daysOfWeek.")));
        }
        // Graph shows unused numbers as 0; a client echoing them back is not refused.
        let month = pattern.int("month", 0, 12)?.unwrap_or(0) as i8;
        let day_of_month = pattern.int("dayOfMonth", 0, 31)?.unwrap_or(0) as i8;
        if kind.ends_with("Yearly") && month == 0 {
            return Err(invalid(&format!("a {kind} pattern needs a month.")));
        }
        if kind.starts_with("absolute") && day_of_month == 0 {
            return Err(invalid(&format!("an {kind} pattern needs a dayOfMonth.")));
        }
        if kind == "absoluteYearly"
            && Date::new(2000, month, 1).is_ok_and(|d| day_of_month > d.days_in_month())
        {
            return Err(invalid("the dayOfMonth does not exist in that month."));
        }
        let range_kind = range
            .member("type", RANGE_TYPES)?
            .ok_or_else(|| invalid("the range's type is required."))?;
        let start =
            date_of(&range, "startDate")?.ok_or_else(|| invalid("the range needs a startDate."))?;
        let end = date_of(&range, "endDate")?.filter(|d| *d > Date::new(1, 1, 1).unwrap_or(*d));
        let count = range.int("numberOfOccurrences", 0, 999_999)?.unwrap_or(0);
        match range_kind {
            "endDate" if end.is_none() => {
                return Err(invalid("an endDate range needs an endDate."));
            }
            "endDate" if end.is_some_and(|e| e < start) => {
                return Err(invalid("the endDate is before the startDate."));
            }
            "numbered" if count < 1 => {
                return Err(invalid(
                    "a numbered range needs numberOfOccurrences above 0.",
                ));
            }
            _ => {}
        }
        let zone = match range.string("recurrenceTimeZone")? {
            Some(name) if !name.trim().is_empty() => wire::zone(&name)
                .ok_or_else(|| invalid(&format!("'{name}' is not a time zone.")))?,
            _ => event_zone.clone(),
        };
        Ok(Recur {
            kind,
            interval,
            days,
            first_day_of_week: pattern.member("firstDayOfWeek", DAYS)?.unwrap_or("sunday"),
            index: pattern.member("index", INDEXES)?.unwrap_or("first"),
            month,
            day_of_month,
            range_kind,
            start,
            end: if range_kind == "endDate" { end } else { None },
            count: if range_kind == "numbered" { count } else { 0 },
            zone,
        })
    }

    /// The `patternedRecurrence` JSON, every property present.
    pub fn render(&self) -> Value {
        json!({
            "pattern": {
                "type": self.kind,
                "interval": self.interval,
                "month": self.month,
                "dayOfMonth": self.day_of_month,
                "daysOfWeek": self.days,
                "firstDayOfWeek": self.first_day_of_week,
                "index": self.index,
            },
            "range": {
                "type": self.range_kind,
                "startDate": self.start.to_string(),
                // Outlook's "no date" is the first day of year 1.
                "endDate": self.end.map(|d| d.to_string()).unwrap_or_else(|| "0001-01-01".into()),
                "recurrenceTimeZone": self.zone.name,
                "numberOfOccurrences": self.count,
            }
        })
    }

    /// Whether `date` is on the pattern (ignoring the range's end).
    fn on_pattern(&self, date: Date) -> bool {
        if date < self.start {
            return false;
        }
        let days_from_start = i64::from(self.start.until(date).map(|s| s.get_days()).unwrap_or(0));
        let months_from_start = (i64::from(date.year()) - i64::from(self.start.year())) * 12
            + i64::from(date.month())
            - i64::from(self.start.month());
        let years_from_start = i64::from(date.year()) - i64::from(self.start.year());
        let every = |n: i64| n % self.interval == 0;
        let has_day = self.days.iter().any(|d| weekday(d) == date.weekday());
        let clamped = self.day_of_month.min(date.days_in_month());
        match self.kind {
            "daily" => every(days_from_start),
            "weekly" => {
                let fdow = weekday(self.first_day_of_week);
                let week_of = |d: Date| {
                    let back = i64::from(d.weekday().to_sunday_zero_offset())
                        - i64::from(fdow.to_sunday_zero_offset());
                    let back = back.rem_euclid(7);
                    d.checked_sub(jiff::Span::new().days(back)).unwrap_or(d)
                };
                let weeks = i64::from(
                    week_of(self.start)
                        .until(week_of(date))
                        .map(|s| s.get_days())
                        .unwrap_or(0),
                ) / 7;
                has_day && every(weeks)
            }
            "absoluteMonthly" => date.day() == clamped && every(months_from_start),
            "absoluteYearly" => {
                date.month() == self.month && date.day() == clamped && every(years_from_start)
            }
            "relativeMonthly" => self.is_relative_day(date) && every(months_from_start),
            _ => {
                date.month() == self.month && self.is_relative_day(date) && every(years_from_start)
            }
        }
    }

    /// Whether `date` is the `index`-th day of its month among `days`.
    fn is_relative_day(&self, date: Date) -> bool {
        let matches = |d: Date| self.days.iter().any(|n| weekday(n) == d.weekday());
        if !matches(date) {
            return false;
        }
        let before = (1..date.day())
            .filter_map(|n| Date::new(date.year(), date.month(), n).ok())
            .filter(|d| matches(*d))
            .count();
        let after = (date.day() + 1..=date.days_in_month())
            .filter_map(|n| Date::new(date.year(), date.month(), n).ok())
            .filter(|d| matches(*d))
            .count();
        match self.index {
            "first" => before == 0,
            "second" => before == 1,
            "third" => before == 2,
            "fourth" => before == 3,
            _ => after == 0,
        }
    }

    /// The candidates to test after `date`: the next day, or for monthly and yearly
    /// patterns the next day that can be on them (month days, then the next month).
    fn next_candidate(&self, date: Date) -> Option<Date> {
        let monthly_ish = !matches!(self.kind, "daily" | "weekly");
        if monthly_ish && self.kind.starts_with("absolute") {
            let first_of_next = date.last_of_month().tomorrow().ok()?;
            let clamped = self.day_of_month.min(first_of_next.days_in_month());
            return Date::new(first_of_next.year(), first_of_next.month(), clamped).ok();
        }
        date.tomorrow().ok()
    }

    /// The series' dates from `from` to `to` (inclusive), walked from the first one.
    pub fn dates(&self, from: Date, to: Date) -> Vec<Date> {
        let mut out = Vec::new();
        let mut seen = 0i64;
        let mut candidate = if self.kind.starts_with("absolute") {
            let clamped = self.day_of_month.min(self.start.days_in_month());
            Date::new(self.start.year(), self.start.month(), clamped).unwrap_or(self.start)
        } else {
            self.start
        };
        for _ in 0..MAX_STEPS {
            if candidate > to || self.end.is_some_and(|e| candidate > e) {
                break;
            }
            if self.range_kind == "numbered" && seen >= self.count {
                break;
            }
            if self.on_pattern(candidate) {
                seen += 1;
                if candidate >= from {
                    out.push(candidate);
                }
            }
            match self.next_candidate(candidate) {
                Some(next) => candidate = next,
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::Map;

    fn parse(v: Value) -> Result<Recur, GraphError> {
        let map: Map<String, Value> = serde_json::from_value(v).unwrap();
        Recur::parse(&Obj::new(&map, "patternedRecurrence"), &Zone::utc())
    }

    #[test]
    fn each_pattern_type_requires_what_graph_documents() {
        let range = json!({"type": "noEnd", "startDate": "2024-01-01"});
        let refused = [
            json!({"type": "weekly", "interval": 1}),
            json!({"type": "absoluteMonthly", "interval": 1}),
            json!({"type": "relativeMonthly", "interval": 1}),
            json!({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 3}),
            json!({"type": "relativeYearly", "interval": 1, "month": 2}),
            json!({"type": "daily"}),
            json!({"type": "daily", "interval": 0}),
            json!({"type": "hourly", "interval": 1}),
            json!({"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 30}),
        ];
        for pattern in refused {
            assert!(
                parse(json!({"pattern": pattern, "range": range})).is_err(),
                "{pattern}"
            );
        }
        let pattern = json!({"type": "daily", "interval": 1});
        for range in [
            json!({"type": "endDate", "startDate": "2024-01-01"}),
            json!({"type": "numbered", "startDate": "2024-01-01"}),
            json!({"type": "noEnd"}),
            json!({"type": "noEnd", "startDate": "2024-01-01", "recurrenceTimeZone": "Mars"}),
            json!({"type": "endDate", "startDate": "2024-01-02", "endDate": "2024-01-01"}),
        ] {
            assert!(
                parse(json!({"pattern": pattern, "range": range})).is_err(),
                "{range}"
            );
        }
    }

    #[test]
    fn the_walk_clamps_day_31_and_counts_numbered_ranges() {
        let r = parse(json!({
            "pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
            "range": {"type": "numbered", "startDate": "2024-01-31", "numberOfOccurrences": 4}
        }))
        .unwrap();
        assert_eq!(
            r.dates(date(2024, 1, 1), date(2025, 1, 1)),
            [
                date(2024, 1, 31),
                date(2024, 2, 29),
                date(2024, 3, 31),
                date(2024, 4, 30)
            ]
        );
        let weekly = parse(json!({
            "pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["Monday", "Wednesday"]},
            "range": {"type": "endDate", "startDate": "2024-01-03", "endDate": "2024-01-17"}
        }))
        .unwrap();
        assert_eq!(
            weekly.dates(date(2024, 1, 1), date(2024, 2, 1)),
            [date(2024, 1, 3), date(2024, 1, 15), date(2024, 1, 17)]
        );
    }
}
