//! A round of edits as users make them, while the daemons run: through the emulators' user
//! interfaces (not logged as API requests, not rate-limited), on a user of each rank. A rename
//! on each side, the same item renamed on both sides (a conflict), a delete on each side and a
//! new item on each side. Each edit says what must hold once crmsync has caught up.

use serde::Serialize;
use serde_json::json;

use super::DemoError;
use super::converge::{Comparison, Linked, UserItems};
use super::flow::World;
use crate::registry::Kind;
use crate::sandbox::scenario::When;
use crate::sandbox::superoffice::{AppointmentChange, UserAppointment};

/// What must hold after an edit, read on the CRM side (convergence makes the mailbox agree).
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    /// Index of the user in the linked users.
    #[serde(skip)]
    pub user: usize,
    pub kind: Kind,
    pub check: Check,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "expect")]
pub enum Check {
    /// The CRM item has this title.
    Title { crm_id: u32, title: String },
    /// The CRM item is gone.
    Gone { crm_id: u32 },
    /// The CRM item exists.
    Present { crm_id: u32 },
    /// Some CRM item has this title.
    Titled { title: String },
}

impl Expectation {
    /// What is not as expected, if anything.
    pub fn unmet(&self, items: &UserItems) -> Option<String> {
        let kind = self.kind;
        match &self.check {
            Check::Title { crm_id, title } => match items.crm_item(kind, *crm_id) {
                Some(c) if &c.facts.title == title => None,
                Some(c) => Some(format!(
                    "CRM item {crm_id} should be titled {title:?}, but is {}",
                    c.facts
                )),
                None => Some(format!(
                    "CRM item {crm_id} should be titled {title:?}, but is gone"
                )),
            },
            Check::Gone { crm_id } => items.crm_item(kind, *crm_id).map(|c| {
                format!(
                    "CRM item {crm_id} {} should be deleted, but is still there",
                    c.facts
                )
            }),
            Check::Present { crm_id } => items
                .crm_item(kind, *crm_id)
                .is_none()
                .then(|| format!("CRM item {crm_id} should exist, but is gone")),
            Check::Titled { title } => (!items
                .crm
                .iter()
                .any(|c| c.kind == kind && &c.facts.title == title))
            .then(|| format!("no CRM item is titled {title:?}")),
        }
    }
}

/// One edit, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Edit {
    /// Where it was made: "SuperOffice", "Outlook" or "both sides".
    pub side: &'static str,
    pub user: String,
    pub rank: u16,
    /// What was done, for people.
    pub what: String,
    /// What crmsync must make of it, for people.
    pub outcome: String,
    pub expect: Expectation,
}

/// The rank's first user: `(index, user)`.
fn first_of(users: &[Linked], rank: u16) -> Option<(usize, &Linked)> {
    users.iter().enumerate().find(|(_, u)| u.rank == rank)
}

fn refused(e: impl std::fmt::Debug) -> DemoError {
    DemoError::Edit(format!("{e:?}"))
}

/// Makes the round of edits; what each must lead to.
pub fn apply(
    world: &World,
    users: &[Linked],
    converged: &Comparison,
) -> Result<Vec<Edit>, DemoError> {
    let state = world.sandbox.state();
    let clock = &state.clock;
    let mut edits = Vec::new();
    let (Some((a, anna)), Some((b, bo))) = (first_of(users, 1), first_of(users, 2)) else {
        return Ok(edits);
    };
    let (Some(a_items), Some(b_items)) = (converged.items.get(a), converged.items.get(b)) else {
        return Ok(edits);
    };
    let a_diary = a_items.pairs(Kind::Diary);
    let a_tasks = a_items.pairs(Kind::Task);
    let b_diary = b_items.pairs(Kind::Diary);
    let edit = |side, user: &Linked, index, kind, what: String, outcome: String, check| Edit {
        side,
        user: user.login.clone(),
        rank: user.rank,
        what,
        outcome,
        expect: Expectation {
            user: index,
            kind,
            check,
        },
    };

    // A rename in SuperOffice travels to Outlook.
    if let Some((crm, _)) = a_diary.first() {
        let title = format!("{} - moved to room 4", crm.facts.title);
        let change = AppointmentChange {
            title: Some(title.clone()),
            ..AppointmentChange::default()
        };
        state
            .superoffice
            .user_update_appointment(crm.id, change, clock.now())
            .map_err(refused)?;
        edits.push(edit(
            "SuperOffice",
            anna,
            a,
            Kind::Diary,
            format!("renamed appointment {:?} to {title:?}", crm.facts.title),
            "the Outlook event has the new subject".into(),
            Check::Title {
                crm_id: crm.id,
                title,
            },
        ));
    }

    // The same item renamed on both sides before crmsync's next pass: a conflict. Outlook's
    // edit comes two (sandbox) seconds later, so with the policy `newest` it wins.
    if let Some((crm, mailbox)) = a_diary.get(1) {
        let in_crm = format!("{} (SuperOffice's version)", crm.facts.title);
        let in_outlook = format!("{} (Outlook's version)", crm.facts.title);
        let change = AppointmentChange {
            title: Some(in_crm),
            ..AppointmentChange::default()
        };
        state
            .superoffice
            .user_update_appointment(crm.id, change, clock.now())
            .map_err(refused)?;
        clock.advance(std::time::Duration::from_secs(2));
        state
            .graph
            .user_update_event(
                clock.now(),
                &anna.mailbox_id,
                &mailbox.id,
                &json!({ "subject": in_outlook }),
            )
            .map_err(refused)?;
        edits.push(edit(
            "both sides",
            anna,
            a,
            Kind::Diary,
            format!(
                "renamed {:?} in SuperOffice, then 2 s later in Outlook",
                crm.facts.title
            ),
            format!(
                "a conflict; policy newest: the later edit wins, so both sides say {in_outlook:?}"
            ),
            Check::Title {
                crm_id: crm.id,
                title: in_outlook,
            },
        ));
    }

    // A to-do deleted in SuperOffice goes from Microsoft To Do.
    if let Some((crm, _)) = a_tasks.first() {
        state
            .superoffice
            .user_delete_appointment(crm.id, clock.now())
            .map_err(refused)?;
        edits.push(edit(
            "SuperOffice",
            anna,
            a,
            Kind::Task,
            format!("deleted to-do {:?}", crm.facts.title),
            "the Microsoft To Do task is deleted".into(),
            Check::Gone { crm_id: crm.id },
        ));
    }

    // A new appointment in SuperOffice appears in Outlook.
    let now = clock.now();
    let tomorrow = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap_or_else(|_| now.to_zoned(jiff::tz::TimeZone::UTC).date());
    let at = |date: jiff::civil::Date, hour: i8| {
        date.at(hour, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(now)
    };
    let title = "Kick-off with Fabrikam (new in SuperOffice)".to_string();
    let created = state
        .superoffice
        .user_create_appointment(
            UserAppointment {
                associate_id: anna.associate_id,
                todo: false,
                task: None,
                title: title.clone(),
                description: "Entered in SuperOffice during the crmsync demo.".into(),
                location: "Oslo office".into(),
                when: When::Timed {
                    start: at(tomorrow, 10),
                    end: at(tomorrow, 11),
                    time_zone: "UTC".into(),
                },
                private: false,
                free: None,
                alarm_minutes: Some(15),
                completed: false,
                person_id: None,
                company_id: None,
            },
            now,
        )
        .map_err(refused)?;
    edits.push(edit(
        "SuperOffice",
        anna,
        a,
        Kind::Diary,
        format!("new appointment {title:?}"),
        "it appears in Outlook".into(),
        Check::Present { crm_id: created.id },
    ));

    // A rename in Outlook travels to SuperOffice.
    if let Some((crm, mailbox)) = b_diary.first() {
        let subject = format!("{} - agenda changed", mailbox.facts.title);
        state
            .graph
            .user_update_event(
                clock.now(),
                &bo.mailbox_id,
                &mailbox.id,
                &json!({ "subject": subject }),
            )
            .map_err(refused)?;
        edits.push(edit(
            "Outlook",
            bo,
            b,
            Kind::Diary,
            format!("renamed event {:?} to {subject:?}", mailbox.facts.title),
            "the SuperOffice appointment has the new title".into(),
            Check::Title {
                crm_id: crm.id,
                title: subject,
            },
        ));
    }

    // An event deleted in Outlook goes from SuperOffice.
    if let Some((crm, mailbox)) = b_diary.get(1) {
        state
            .graph
            .user_delete_event(clock.now(), &bo.mailbox_id, &mailbox.id)
            .map_err(refused)?;
        edits.push(edit(
            "Outlook",
            bo,
            b,
            Kind::Diary,
            format!("deleted event {:?}", mailbox.facts.title),
            "the SuperOffice appointment is deleted".into(),
            Check::Gone { crm_id: crm.id },
        ));
    }

    // A new event in Outlook appears in SuperOffice.
    let day = tomorrow.tomorrow().unwrap_or(tomorrow);
    let subject = "Call with Northwind (new in Outlook)".to_string();
    let dt = |hour: i8| format!("{day}T{hour:02}:00:00");
    state
        .graph
        .user_create_event(
            clock.now(),
            &bo.mailbox_id,
            &json!({
                "subject": subject,
                "body": {"contentType": "text", "content": "Entered in Outlook during the crmsync demo."},
                "start": {"dateTime": dt(14), "timeZone": "UTC"},
                "end": {"dateTime": dt(15), "timeZone": "UTC"},
            }),
        )
        .map_err(refused)?;
    edits.push(edit(
        "Outlook",
        bo,
        b,
        Kind::Diary,
        format!("new event {subject:?}"),
        "it appears in SuperOffice".into(),
        Check::Titled { title: subject },
    ));
    Ok(edits)
}
