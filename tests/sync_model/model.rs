//! The model: the items the user made during the case, each with every edit and delete the
//! user made of it, on which side, in order. It does not simulate the engine; it says what
//! the end state must be.
//!
//! The oracle, under the policy the world runs (`newest`, a change beats a delete): user edits
//! are a minute apart and every write crmsync makes copies a user edit it read earlier, so
//! - an item whose last event is an edit must end with that edit's content: on both sides
//!   when it is inside the window, at least on the edited side when the edit moved it out;
//! - an item whose last event is a delete may be gone from both sides, or (a change on the
//!   other side that the delete had not seen yet beats it) back on both sides with the content
//!   of one of its earlier edits; never with anything else, never on one side only inside the
//!   window.

use std::fmt;

use crmsync::connector::model::{When, Window};
use proptest::sample::Index;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Crm,
    Mailbox,
}

/// What the user controls of an item: every edit writes both, so the last edit decides all
/// of it (the title carries the item's key and a revision).
#[derive(Clone, PartialEq, Eq)]
pub struct Content {
    pub title: String,
    pub when: When,
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.when {
            When::Timed { start, end } => write!(f, "{:?} {start}..{end}", self.title),
            When::AllDay { start, end } => write!(f, "{:?} all day {start}..{end}", self.title),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    Edit(Side, Content),
    // Read only by the model's dump when a case fails: which side the user deleted on.
    #[allow(dead_code)]
    Delete(Side),
}

#[derive(Debug, Clone)]
pub struct Logical {
    pub key: String,
    pub revision: u32,
    pub events: Vec<Event>,
}

/// What must be true of one logical item at the end.
#[derive(Debug)]
pub enum Expected {
    /// On both sides with this content (inside the window).
    Both(Content),
    /// At least on this side with this content (the last edit moved it out of the window).
    On(Side, Content),
    /// Gone from both sides, or back on both with one of these contents.
    GoneOrOneOf(Vec<Content>),
}

#[derive(Debug)]
pub struct Model {
    /// The day the case started (UTC): op dates count from it.
    pub first_day: jiff::civil::Date,
    pub items: Vec<Logical>,
    pub series: Vec<super::series::SeriesLogical>,
}

impl Model {
    pub fn new(now: jiff::Timestamp) -> Model {
        Model {
            first_day: now.to_zoned(jiff::tz::TimeZone::UTC).date(),
            items: Vec::new(),
            series: Vec::new(),
        }
    }

    /// The key in a title the model made ("Model-3 r2" -> "Model-3"); `None` for other items.
    pub fn key_of(title: &str) -> Option<&str> {
        let key = title.split(' ').next()?;
        key.starts_with("Model-").then_some(key)
    }

    fn title(key: &str, revision: u32) -> String {
        format!("{key} r{revision}")
    }

    /// A new item made by the user on `side`.
    pub fn create(&mut self, side: Side, when: When) -> Content {
        let key = format!("Model-{}", self.items.len());
        let content = Content {
            title: Self::title(&key, 0),
            when,
        };
        self.items.push(Logical {
            key,
            revision: 0,
            events: vec![Event::Edit(side, content.clone())],
        });
        content
    }

    pub fn pick(&self, index: &Index) -> Option<usize> {
        (!self.items.is_empty()).then(|| index.index(self.items.len()))
    }

    /// An item whose last edit left the window (for moving it back in).
    pub fn pick_outside(&self, index: &Index, window: &Window) -> Option<usize> {
        let outside: Vec<usize> = (0..self.items.len())
            .filter(|i| {
                self.items[*i]
                    .last_content()
                    .is_some_and(|c| !c.when.overlaps(window))
            })
            .collect();
        (!outside.is_empty()).then(|| outside[index.index(outside.len())])
    }

    /// The content the next edit of item `index` writes: the next revision, at `when`.
    pub fn next_content(&self, index: usize, when: When) -> (String, Content) {
        let item = &self.items[index];
        (
            item.key.clone(),
            Content {
                title: Self::title(&item.key, item.revision + 1),
                when,
            },
        )
    }

    pub fn edited(&mut self, index: usize, side: Side, content: Content) {
        let item = &mut self.items[index];
        item.revision += 1;
        item.events.push(Event::Edit(side, content));
    }

    pub fn deleted(&mut self, index: usize, side: Side) {
        self.items[index].events.push(Event::Delete(side));
    }
}

impl Logical {
    fn last_content(&self) -> Option<&Content> {
        self.events.iter().rev().find_map(|e| match e {
            Event::Edit(_, c) => Some(c),
            Event::Delete(_) => None,
        })
    }

    pub fn expected(&self, window: &Window) -> Expected {
        match self.events.last() {
            Some(Event::Edit(side, content)) => {
                if content.when.overlaps(window) {
                    Expected::Both(content.clone())
                } else {
                    Expected::On(*side, content.clone())
                }
            }
            _ => Expected::GoneOrOneOf(
                self.events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Edit(_, c) => Some(c.clone()),
                        Event::Delete(_) => None,
                    })
                    .collect(),
            ),
        }
    }
}
