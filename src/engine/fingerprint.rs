//! Fingerprints: what makes two items that were never paired "the same item" when history
//! is lost and no stamp says so. Deliberately narrow: the fields a user sees first.

use crate::connector::model::{Item, When};

/// Equal fingerprints, same item (for matching unpaired items before creating anything).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

fn normalize(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Fingerprint {
    pub fn of(item: &Item) -> Fingerprint {
        Fingerprint(match item {
            Item::Diary(d) => {
                let when = match &d.when {
                    When::Timed { start, end } => {
                        format!("{}..{}", start.as_second(), end.as_second())
                    }
                    When::AllDay { start, end } => format!("{start}..{end}"),
                };
                // A series and a single item at its first occurrence are not the same item.
                let series = if d.series.is_some() { "series|" } else { "" };
                format!("diary|{series}{}|{when}", normalize(&d.subject))
            }
            Item::Task(t) => format!(
                "task|{}|{}",
                normalize(&t.title),
                t.due.map(|d| d.to_string()).unwrap_or_default()
            ),
            Item::Contact(c) => format!(
                "contact|{}|{}|{}",
                normalize(&c.given_name),
                normalize(&c.surname),
                c.emails
                    .first()
                    .map(|e| e.trim().to_lowercase())
                    .unwrap_or_default()
            ),
        })
    }
}
