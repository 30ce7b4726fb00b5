use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::connector::model::{ContactItem, DiaryItem, Links, ShowAs, Version, When};

const TENANT: &str = "Cust12345";

fn t0() -> Timestamp {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn window() -> Window {
    Window {
        start: t0() - SignedDuration::from_hours(24 * 30),
        end: t0() + SignedDuration::from_hours(24 * 120),
    }
}

fn diary(subject: &str, inside: bool) -> Item {
    let start = if inside {
        t0() + SignedDuration::from_hours(24)
    } else {
        t0() + SignedDuration::from_hours(24 * 200)
    };
    Item::Diary(DiaryItem {
        subject: subject.to_string(),
        body: String::new(),
        when: When::Timed {
            start,
            end: start + SignedDuration::from_hours(1),
        },
        location: String::new(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: None,
        task_type: None,
        organized_by_other: false,
        series: None,
    })
}

fn observed<Id>(id: Id, version: &str, item: Item, modified: Timestamp) -> Observed<Id> {
    Observed {
        id,
        version: Version(version.to_string()),
        modified,
        item,
        stamp: None,
        links: Links::default(),
    }
}

fn pair_of(item: &Item) -> Pair {
    Pair {
        crm_id: CrmId(1),
        mailbox_id: MailboxItemId("m1".into()),
        crm_version: Version("c1".into()),
        mailbox_version: Version("m1".into()),
        crm_hash: item.content_hash(),
        mailbox_hash: item.content_hash(),
        origin: Side::Crm,
        span: span_of(item),
        stamped: true,
        mailbox_read_only: false,
    }
}

fn names(plan: &Plan) -> String {
    let mut names: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::CreateInMailbox { .. } => "CreateInMailbox",
            Action::CreateInCrm { .. } => "CreateInCrm",
            Action::UpdateMailbox { .. } => "UpdateMailbox",
            Action::UpdateCrm { .. } => "UpdateCrm",
            Action::UpdateBoth { .. } => "UpdateBoth",
            Action::DeleteInMailbox { .. } => "DeleteInMailbox",
            Action::DeleteInCrm { .. } => "DeleteInCrm",
            Action::RestoreInMailbox { .. } => "RestoreInMailbox",
            Action::Link { .. } => "Link",
            Action::SetStamp { .. } => "SetStamp",
            Action::Record { .. } => "Record",
            Action::Forget { .. } => "Forget",
        })
        .collect();
    names.sort();
    names.join(",")
}

/// What one side did, in the table: Created, Updated, uNchanged (reported again at the same
/// version), Deleted, or Absent (not reported).
fn seen_crm(code: char, paired: bool, inside: bool) -> Vec<CrmSeen> {
    let item = |subject: &str| diary(subject, inside);
    match code {
        'C' | 'U' => vec![CrmSeen::Present(Box::new(observed(
            CrmId(1),
            "c2",
            item("changed in the CRM"),
            t0(),
        )))],
        'N' if paired => vec![CrmSeen::Present(Box::new(observed(
            CrmId(1),
            "c1",
            diary("original", true),
            t0(),
        )))],
        'N' => vec![CrmSeen::Present(Box::new(observed(
            CrmId(1),
            "c1",
            item("only in the CRM"),
            t0(),
        )))],
        'D' => vec![CrmSeen::Deleted(CrmId(1))],
        _ => vec![],
    }
}

fn seen_mailbox(code: char, paired: bool, inside: bool) -> Vec<MailboxSeen> {
    let id = MailboxItemId("m1".into());
    let later = t0() + SignedDuration::from_hours(1);
    match code {
        'C' | 'U' => vec![MailboxSeen::Present(Box::new(observed(
            id,
            "m2",
            diary("changed in the mailbox", inside),
            later,
        )))],
        'N' if paired => vec![MailboxSeen::Present(Box::new(observed(
            id,
            "m1",
            diary("original", true),
            later,
        )))],
        'N' => vec![MailboxSeen::Present(Box::new(observed(
            id,
            "m1",
            diary("only in the mailbox", inside),
            later,
        )))],
        'D' => vec![MailboxSeen::Deleted(id)],
        _ => vec![],
    }
}

fn run(
    crm: &[CrmSeen],
    mailbox: &[MailboxSeen],
    pairs: &[Pair],
    kind: Kind,
    policy: &Policy,
) -> Plan {
    let window = window();
    plan(&Input {
        kind,
        window: &window,
        tenant: TENANT,
        policy,
        crm,
        mailbox,
        pairs,
        pair_count: pairs.len() as u64 + 100,
    })
}

/// The decision table: every combination of what each side did, paired or not, inside or
/// outside the window. With both sides changed, the mailbox's change is the later one.
#[test]
fn the_decision_table() {
    #[rustfmt::skip]
    let table: &[(char, char, bool, bool, &str)] = &[
        // crm, mailbox, paired, inside the window, expected actions
        ('C', 'C', true, true, "UpdateCrm"),
        ('C', 'U', true, true, "UpdateCrm"),
        ('C', 'N', true, true, "UpdateMailbox"),
        ('C', 'D', true, true, "CreateInMailbox"),
        ('C', 'A', true, true, "UpdateMailbox"),
        ('U', 'C', true, true, "UpdateCrm"),
        ('U', 'U', true, true, "UpdateCrm"),
        ('U', 'N', true, true, "UpdateMailbox"),
        ('U', 'D', true, true, "CreateInMailbox"),
        ('U', 'A', true, true, "UpdateMailbox"),
        ('N', 'C', true, true, "UpdateCrm"),
        ('N', 'U', true, true, "UpdateCrm"),
        ('N', 'N', true, true, ""),
        ('N', 'D', true, true, "DeleteInCrm"),
        ('N', 'A', true, true, ""),
        ('D', 'C', true, true, "CreateInCrm"),
        ('D', 'U', true, true, "CreateInCrm"),
        ('D', 'N', true, true, "DeleteInMailbox"),
        ('D', 'D', true, true, "Forget"),
        ('D', 'A', true, true, "DeleteInMailbox"),
        ('A', 'C', true, true, "UpdateCrm"),
        ('A', 'U', true, true, "UpdateCrm"),
        ('A', 'N', true, true, ""),
        ('A', 'D', true, true, "DeleteInCrm"),
        ('A', 'A', true, true, ""),
        // Paired items outside the window: a change is still a change (the item moved), a
        // delete still a delete. Only an item that merely leaves the window is never deleted:
        // the engine is not told it was deleted, so it deletes nothing.
        ('C', 'C', true, false, "UpdateCrm"),
        ('C', 'U', true, false, "UpdateCrm"),
        ('C', 'N', true, false, "UpdateMailbox"),
        ('C', 'D', true, false, "CreateInMailbox"),
        ('C', 'A', true, false, "UpdateMailbox"),
        ('U', 'C', true, false, "UpdateCrm"),
        ('U', 'U', true, false, "UpdateCrm"),
        ('U', 'N', true, false, "UpdateMailbox"),
        ('U', 'D', true, false, "CreateInMailbox"),
        ('U', 'A', true, false, "UpdateMailbox"),
        ('N', 'C', true, false, "UpdateCrm"),
        ('N', 'U', true, false, "UpdateCrm"),
        ('N', 'N', true, false, ""),
        ('N', 'D', true, false, "DeleteInCrm"),
        ('N', 'A', true, false, ""),
        ('D', 'C', true, false, "CreateInCrm"),
        ('D', 'U', true, false, "CreateInCrm"),
        ('D', 'N', true, false, "DeleteInMailbox"),
        ('D', 'D', true, false, "Forget"),
        ('D', 'A', true, false, "DeleteInMailbox"),
        ('A', 'C', true, false, "UpdateCrm"),
        ('A', 'U', true, false, "UpdateCrm"),
        ('A', 'N', true, false, ""),
        ('A', 'D', true, false, "DeleteInCrm"),
        ('A', 'A', true, false, ""),
        // Never paired, inside the window: new on a side is created on the other.
        ('C', 'C', false, true, "CreateInCrm,CreateInMailbox"),
        ('C', 'U', false, true, "CreateInCrm,CreateInMailbox"),
        ('C', 'N', false, true, "CreateInCrm,CreateInMailbox"),
        ('C', 'D', false, true, "CreateInMailbox"),
        ('C', 'A', false, true, "CreateInMailbox"),
        ('U', 'C', false, true, "CreateInCrm,CreateInMailbox"),
        ('U', 'U', false, true, "CreateInCrm,CreateInMailbox"),
        ('U', 'N', false, true, "CreateInCrm,CreateInMailbox"),
        ('U', 'D', false, true, "CreateInMailbox"),
        ('U', 'A', false, true, "CreateInMailbox"),
        ('N', 'C', false, true, "CreateInCrm,CreateInMailbox"),
        ('N', 'U', false, true, "CreateInCrm,CreateInMailbox"),
        ('N', 'N', false, true, "CreateInCrm,CreateInMailbox"),
        ('N', 'D', false, true, "CreateInMailbox"),
        ('N', 'A', false, true, "CreateInMailbox"),
        ('D', 'C', false, true, "CreateInCrm"),
        ('D', 'U', false, true, "CreateInCrm"),
        ('D', 'N', false, true, "CreateInCrm"),
        ('D', 'D', false, true, ""),
        ('D', 'A', false, true, ""),
        ('A', 'C', false, true, "CreateInCrm"),
        ('A', 'U', false, true, "CreateInCrm"),
        ('A', 'N', false, true, "CreateInCrm"),
        ('A', 'D', false, true, ""),
        ('A', 'A', false, true, ""),
        // Never paired, outside the window: nothing is created, nothing deleted.
        ('C', 'C', false, false, ""),
        ('C', 'U', false, false, ""),
        ('C', 'N', false, false, ""),
        ('C', 'D', false, false, ""),
        ('C', 'A', false, false, ""),
        ('U', 'C', false, false, ""),
        ('U', 'U', false, false, ""),
        ('U', 'N', false, false, ""),
        ('U', 'D', false, false, ""),
        ('U', 'A', false, false, ""),
        ('N', 'C', false, false, ""),
        ('N', 'U', false, false, ""),
        ('N', 'N', false, false, ""),
        ('N', 'D', false, false, ""),
        ('N', 'A', false, false, ""),
        ('D', 'C', false, false, ""),
        ('D', 'U', false, false, ""),
        ('D', 'N', false, false, ""),
        ('D', 'D', false, false, ""),
        ('D', 'A', false, false, ""),
        ('A', 'C', false, false, ""),
        ('A', 'U', false, false, ""),
        ('A', 'N', false, false, ""),
        ('A', 'D', false, false, ""),
        ('A', 'A', false, false, ""),
    ];
    assert_eq!(table.len(), 100);
    let policy = Policy::default();
    let original = diary("original", true);
    let mut failures = Vec::new();
    for (c, m, paired, inside, expected) in table {
        let pairs = if *paired {
            vec![pair_of(&original)]
        } else {
            vec![]
        };
        let plan = run(
            &seen_crm(*c, *paired, *inside),
            &seen_mailbox(*m, *paired, *inside),
            &pairs,
            Kind::Diary,
            &policy,
        );
        let got = names(&plan);
        if got != *expected {
            failures.push(format!(
                "crm {c}, mailbox {m}, paired {paired}, inside {inside}: expected {expected:?}, got {got:?}"
            ));
        }
        assert!(plan.guard.is_none());
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn our_own_writes_coming_back_are_echoes() {
    let item = diary("original", true);
    let pair = pair_of(&item);
    // The version we stored: nothing at all.
    let same_version = [MailboxSeen::Present(Box::new(observed(
        MailboxItemId("m1".into()),
        "m1",
        item.clone(),
        t0(),
    )))];
    assert_eq!(
        names(&run(
            &[],
            &same_version,
            std::slice::from_ref(&pair),
            Kind::Diary,
            &Policy::default()
        )),
        ""
    );
    // A new version with the same content: bookkeeping only.
    let new_version = [MailboxSeen::Present(Box::new(observed(
        MailboxItemId("m1".into()),
        "m9",
        item.clone(),
        t0(),
    )))];
    let plan = run(
        &[],
        &new_version,
        std::slice::from_ref(&pair),
        Kind::Diary,
        &Policy::default(),
    );
    assert_eq!(names(&plan), "Record");
    let Action::Record { pair: recorded } = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(recorded.mailbox_version, Version("m9".into()));

    // A side that cannot hold everything reads back differently: its own hash is what counts.
    let mut lossy = pair.clone();
    let read_back = diary("original (as the mailbox holds it)", true);
    lossy.mailbox_hash = read_back.content_hash();
    let seen = [MailboxSeen::Present(Box::new(observed(
        MailboxItemId("m1".into()),
        "m5",
        read_back,
        t0(),
    )))];
    assert_eq!(
        names(&run(&[], &seen, &[lossy], Kind::Diary, &Policy::default())),
        "Record"
    );
}

fn both_changed(crm_minute: i64, mailbox_minute: i64, policy: &Policy) -> Plan {
    let pair = pair_of(&diary("original", true));
    let crm = [CrmSeen::Present(Box::new(observed(
        CrmId(1),
        "c2",
        diary("crm", true),
        t0() + SignedDuration::from_mins(crm_minute),
    )))];
    let mailbox = [MailboxSeen::Present(Box::new(observed(
        MailboxItemId("m1".into()),
        "m2",
        diary("mailbox", true),
        t0() + SignedDuration::from_mins(mailbox_minute),
    )))];
    run(&crm, &mailbox, &[pair], Kind::Diary, policy)
}

#[test]
fn conflicts_follow_the_policy_and_are_reported() {
    let newest = Policy::default();
    let plan = both_changed(5, 1, &newest);
    assert_eq!(names(&plan), "UpdateMailbox");
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].winner, Side::Crm);
    assert_eq!(names(&both_changed(1, 5, &newest)), "UpdateCrm");
    let tie = both_changed(3, 3, &newest);
    assert_eq!(names(&tie), "UpdateMailbox", "a tie goes to the CRM");
    assert!(tie.conflicts[0].reason.contains("same time"));

    let crm = Policy {
        conflict: ConflictPolicy::Crm,
        ..Policy::default()
    };
    assert_eq!(names(&both_changed(1, 5, &crm)), "UpdateMailbox");
    let exchange = Policy {
        conflict: ConflictPolicy::Exchange,
        ..Policy::default()
    };
    assert_eq!(names(&both_changed(5, 1, &exchange)), "UpdateCrm");

    // Both changed to the same content: no conflict.
    let pair = pair_of(&diary("original", true));
    let same = diary("same edit", true);
    let plan = run(
        &[CrmSeen::Present(Box::new(observed(
            CrmId(1),
            "c2",
            same.clone(),
            t0(),
        )))],
        &[MailboxSeen::Present(Box::new(observed(
            MailboxItemId("m1".into()),
            "m2",
            same,
            t0(),
        )))],
        &[pair],
        Kind::Diary,
        &newest,
    );
    assert_eq!(names(&plan), "Record");
    assert!(plan.conflicts.is_empty());
}

/// A weekly series starting at `diary`'s time; `edit` changes its occurrences.
fn series(subject: &str, edit: impl FnOnce(&mut crate::connector::model::Series)) -> Item {
    use crate::connector::model::Series;
    use crate::connector::recurrence::{DayOfWeek, Pattern, Range, RangeEnd, Recurrence};
    let Item::Diary(mut d) = diary(subject, true) else {
        unreachable!("diary() makes diary items")
    };
    let When::Timed { start, .. } = d.when else {
        unreachable!("diary() makes timed items")
    };
    let zone = jiff::tz::TimeZone::get("Europe/Oslo").unwrap();
    let mut s = Series {
        recurrence: Recurrence {
            pattern: Pattern::Weekly {
                interval: 1,
                days: vec![DayOfWeek::of(start.to_zoned(zone.clone()).weekday())],
                first_day_of_week: DayOfWeek::Sunday,
            },
            range: Range {
                start: start.to_zoned(zone).date(),
                end: RangeEnd::Never,
            },
            time_zone: "Europe/Oslo".into(),
        },
        exceptions: Default::default(),
        cancelled: Default::default(),
    };
    edit(&mut s);
    d.series = Some(Box::new(s));
    Item::Diary(d)
}

#[test]
fn a_series_changed_on_both_sides_keeps_both_sides_occurrence_edits() {
    let week = SignedDuration::from_hours(24 * 7);
    let first = t0() + SignedDuration::from_hours(24);
    let pair = pair_of(&series("Team", |_| {}));
    let crm_item = series("Team", |s| {
        s.cancelled.insert(first + week);
    });
    let mailbox_item = series("Team (renamed)", |s| {
        s.cancelled.insert(first + week * 2);
    });
    let crm = [CrmSeen::Present(Box::new(observed(
        CrmId(1),
        "c2",
        crm_item,
        t0(),
    )))];
    let mailbox = [MailboxSeen::Present(Box::new(observed(
        MailboxItemId("m1".into()),
        "m2",
        mailbox_item,
        t0() + SignedDuration::from_mins(5),
    )))];
    let plan = run(&crm, &mailbox, &[pair], Kind::Diary, &Policy::default());
    assert_eq!(names(&plan), "UpdateBoth");
    assert_eq!(plan.conflicts.len(), 1, "still reported as a conflict");
    let Action::UpdateBoth { item, .. } = &plan.actions[0] else {
        unreachable!("checked above")
    };
    let Item::Diary(d) = item.as_ref() else {
        panic!("a diary item")
    };
    assert_eq!(d.subject, "Team (renamed)", "the later side's content");
    let cancelled: Vec<Timestamp> = d
        .series
        .as_ref()
        .unwrap()
        .cancelled
        .iter()
        .copied()
        .collect();
    assert_eq!(cancelled, [first + week, first + week * 2]);

    // When the winner already holds the loser's edits, only the loser is written.
    let pair = pair_of(&series("Team", |_| {}));
    let both = series("Team (renamed)", |s| {
        s.cancelled.insert(first + week);
    });
    let plan = run(
        &[CrmSeen::Present(Box::new(observed(
            CrmId(1),
            "c2",
            series("Team", |s| {
                s.cancelled.insert(first + week);
            }),
            t0(),
        )))],
        &[MailboxSeen::Present(Box::new(observed(
            MailboxItemId("m1".into()),
            "m2",
            both,
            t0() + SignedDuration::from_mins(5),
        )))],
        &[pair],
        Kind::Diary,
        &Policy::default(),
    );
    assert_eq!(names(&plan), "UpdateCrm");
}

#[test]
fn a_series_linked_again_after_lost_history_keeps_both_sides_occurrence_edits() {
    let week = SignedDuration::from_hours(24 * 7);
    let first = t0() + SignedDuration::from_hours(24);
    let crm = CrmSeen::Present(Box::new(observed(
        CrmId(7),
        "c",
        series("Team", |s| {
            s.cancelled.insert(first + week);
        }),
        t0(),
    )));
    let mut copy = observed(
        MailboxItemId("m1".into()),
        "m",
        series("Team", |s| {
            s.cancelled.insert(first + week * 3);
        }),
        t0() + SignedDuration::from_mins(1),
    );
    copy.stamp = Some(stamp_for(TENANT, Kind::Diary, CrmId(7)));
    let plan = run(
        &[crm],
        &[MailboxSeen::Present(Box::new(copy))],
        &[],
        Kind::Diary,
        &Policy::default(),
    );
    assert_eq!(names(&plan), "Link");
    let Action::Link {
        then: AfterLink::UpdateBoth(item),
        ..
    } = &plan.actions[0]
    else {
        panic!("a merge written to both sides: {plan:#?}");
    };
    let Item::Diary(d) = item.as_ref() else {
        panic!("a diary item")
    };
    let cancelled: Vec<Timestamp> = d
        .series
        .as_ref()
        .unwrap()
        .cancelled
        .iter()
        .copied()
        .collect();
    assert_eq!(cancelled, [first + week, first + week * 3]);
}

#[test]
fn a_series_and_a_single_item_at_its_first_occurrence_are_not_matched() {
    let single = diary("Team", true);
    let weekly = series("Team", |_| {});
    assert_ne!(Fingerprint::of(&single), Fingerprint::of(&weekly));
    assert!(in_window(&weekly, &window()));
}

#[test]
fn delete_wins_when_asked() {
    let policy = Policy {
        delete_wins: true,
        ..Policy::default()
    };
    let original = diary("original", true);
    let plan = run(
        &seen_crm('D', true, true),
        &seen_mailbox('U', true, true),
        &[pair_of(&original)],
        Kind::Diary,
        &policy,
    );
    assert_eq!(names(&plan), "DeleteInMailbox");
    let plan = run(
        &seen_crm('U', true, true),
        &seen_mailbox('D', true, true),
        &[pair_of(&original)],
        Kind::Diary,
        &policy,
    );
    assert_eq!(names(&plan), "DeleteInCrm");
}

fn contact(given: &str) -> Item {
    Item::Contact(ContactItem {
        given_name: given.to_string(),
        surname: "Berg".to_string(),
        emails: vec![format!("{}@example.com", given.to_lowercase())],
        business_phones: vec![],
        mobile_phone: None,
        company: Some("Customer AS".into()),
        job_title: None,
    })
}

#[test]
fn contacts_flow_from_the_crm_only() {
    let policy = Policy::default();
    let original = contact("Anna");
    let ours = pair_of(&original);
    let users_own = Pair {
        origin: Side::Mailbox,
        ..pair_of(&original)
    };
    let mailbox_edit = [MailboxSeen::Present(Box::new(observed(
        MailboxItemId("m1".into()),
        "m2",
        contact("Anne"),
        t0(),
    )))];
    let mailbox_delete = [MailboxSeen::Deleted(MailboxItemId("m1".into()))];
    let crm_delete = [CrmSeen::Deleted(CrmId(1))];
    let out_of_scope = [CrmSeen::OutOfScope(CrmId(1))];

    let plan = run(
        &[],
        &mailbox_edit,
        std::slice::from_ref(&ours),
        Kind::Contact,
        &policy,
    );
    assert_eq!(
        names(&plan),
        "Record",
        "an edit in Outlook does not reach the CRM"
    );
    assert_eq!(plan.notes.len(), 1);
    assert_eq!(
        names(&run(
            &[],
            &mailbox_delete,
            std::slice::from_ref(&ours),
            Kind::Contact,
            &policy
        )),
        "RestoreInMailbox"
    );
    assert_eq!(
        names(&run(
            &crm_delete,
            &[],
            std::slice::from_ref(&ours),
            Kind::Contact,
            &policy
        )),
        "DeleteInMailbox"
    );
    assert_eq!(
        names(&run(
            &crm_delete,
            &[],
            std::slice::from_ref(&users_own),
            Kind::Contact,
            &policy
        )),
        "Forget"
    );
    assert_eq!(
        names(&run(
            &out_of_scope,
            &[],
            std::slice::from_ref(&ours),
            Kind::Contact,
            &policy
        )),
        "DeleteInMailbox"
    );
    assert_eq!(
        names(&run(
            &out_of_scope,
            &[],
            &[users_own],
            Kind::Contact,
            &policy
        )),
        "Forget"
    );
    let both = run(
        &[CrmSeen::Present(Box::new(observed(
            CrmId(1),
            "c2",
            contact("Annie"),
            t0(),
        )))],
        &[MailboxSeen::Present(Box::new(observed(
            MailboxItemId("m1".into()),
            "m2",
            contact("Anne"),
            t0() + SignedDuration::from_hours(1),
        )))],
        &[ours],
        Kind::Contact,
        &policy,
    );
    assert_eq!(
        names(&both),
        "UpdateMailbox",
        "the CRM wins even when the mailbox edit is later"
    );

    // A contact that only exists in the mailbox stays there and never reaches the CRM.
    let users_contact = [MailboxSeen::Present(Box::new(observed(
        MailboxItemId("m7".into()),
        "v",
        contact("Private"),
        t0(),
    )))];
    assert_eq!(
        names(&run(&[], &users_contact, &[], Kind::Contact, &policy)),
        ""
    );
}

#[test]
fn never_paired_items_are_matched_by_stamp_then_fingerprint_before_anything_is_created() {
    let policy = Policy::default();
    let item = diary("Review", true);
    let crm = |id: u32, item: &Item| {
        CrmSeen::Present(Box::new(observed(CrmId(id), "c", item.clone(), t0())))
    };
    let mailbox = |id: &str, item: &Item, stamp: Option<Stamp>| {
        let mut o = observed(MailboxItemId(id.into()), "m", item.clone(), t0());
        o.stamp = stamp;
        MailboxSeen::Present(Box::new(o))
    };

    // Lost history: the stamp pairs them; no create.
    let stamped = mailbox("m1", &item, Some(stamp_for(TENANT, Kind::Diary, CrmId(7))));
    let plan = run(&[crm(7, &item)], &[stamped], &[], Kind::Diary, &policy);
    assert_eq!(names(&plan), "Link");
    assert!(matches!(
        &plan.actions[0],
        Action::Link {
            stamp: false,
            then: AfterLink::Nothing,
            ..
        }
    ));

    // Stamped for a CRM item that was not read: left alone, not created again.
    let orphan = mailbox("m2", &item, Some(stamp_for(TENANT, Kind::Diary, CrmId(8))));
    let plan = run(&[], &[orphan], &[], Kind::Diary, &policy);
    assert_eq!(names(&plan), "");
    assert_eq!(plan.notes.len(), 1);

    // Another tenant's stamp: not ours to touch.
    let foreign = mailbox(
        "m3",
        &item,
        Some(stamp_for("Cust99999", Kind::Diary, CrmId(7))),
    );
    assert_eq!(names(&run(&[], &[foreign], &[], Kind::Diary, &policy)), "");

    // Same subject and time, no stamp: paired by fingerprint and stamped.
    let plan = run(
        &[crm(7, &item)],
        &[mailbox("m4", &item, None)],
        &[],
        Kind::Diary,
        &policy,
    );
    assert_eq!(names(&plan), "Link");
    assert!(matches!(
        &plan.actions[0],
        Action::Link {
            stamp: true,
            origin: Side::Mailbox,
            ..
        }
    ));

    // Two equal CRM items and one mailbox item: one link, one create; never two links.
    let plan = run(
        &[crm(7, &item), crm(8, &item)],
        &[mailbox("m4", &item, None)],
        &[],
        Kind::Diary,
        &policy,
    );
    assert_eq!(names(&plan), "CreateInMailbox,Link");

    // A stamped mailbox item next to the paired one for the same CRM item: left alone.
    let paired = pair_of(&item);
    let duplicate = mailbox("m9", &item, Some(stamp_for(TENANT, Kind::Diary, CrmId(1))));
    let plan = run(&[], &[duplicate], &[paired], Kind::Diary, &policy);
    assert_eq!(names(&plan), "");
    assert!(plan.notes[0].why.contains("second mailbox item"));
}

#[test]
fn a_stamped_copy_without_a_pair_whose_crm_item_was_deleted_is_kept_unless_delete_wins() {
    let item = diary("Review", true);
    let stamped = |item: &Item, kind: Kind| {
        let mut o = observed(MailboxItemId("m1".into()), "m", item.clone(), t0());
        o.stamp = Some(stamp_for(TENANT, kind, CrmId(8)));
        MailboxSeen::Present(Box::new(o))
    };
    let deleted = [CrmSeen::Deleted(CrmId(8))];

    // No history says whether the copy changed since: a change beats a delete.
    let plan = run(
        &deleted,
        &[stamped(&item, Kind::Diary)],
        &[],
        Kind::Diary,
        &Policy::default(),
    );
    assert_eq!(names(&plan), "CreateInCrm");
    assert!(plan.notes[0].why.contains("created in the CRM again"));

    let delete_wins = Policy {
        delete_wins: true,
        ..Policy::default()
    };
    let plan = run(
        &deleted,
        &[stamped(&item, Kind::Diary)],
        &[],
        Kind::Diary,
        &delete_wins,
    );
    assert_eq!(names(&plan), "DeleteInMailbox");
    assert!(matches!(
        &plan.actions[0],
        Action::DeleteInMailbox { pair } if pair.mailbox_id.0 == "m1" && pair.crm_id == CrmId(8)
    ));

    // A meeting someone else organised is not ours to recreate or delete.
    let Item::Diary(mut meeting) = item.clone() else {
        unreachable!()
    };
    meeting.organized_by_other = true;
    let plan = run(
        &deleted,
        &[stamped(&Item::Diary(meeting), Kind::Diary)],
        &[],
        Kind::Diary,
        &Policy::default(),
    );
    assert_eq!(names(&plan), "");
    assert!(plan.notes[0].why.contains("left alone"));

    // A contact's stamp may sit on the user's own contact (linked by fingerprint): left alone.
    let contact = contact("Ada");
    let plan = run(
        &deleted,
        &[stamped(&contact, Kind::Contact)],
        &[],
        Kind::Contact,
        &delete_wins,
    );
    assert_eq!(names(&plan), "");
}

#[test]
fn meetings_organised_by_others_are_never_rewritten() {
    let policy = Policy::default();
    let original = diary("Board meeting", true);
    let pair = Pair {
        mailbox_read_only: true,
        ..pair_of(&original)
    };
    let crm_change = [CrmSeen::Present(Box::new(observed(
        CrmId(1),
        "c2",
        diary("edited in the CRM", true),
        t0(),
    )))];
    let plan = run(
        &crm_change,
        &[],
        std::slice::from_ref(&pair),
        Kind::Diary,
        &policy,
    );
    assert_eq!(names(&plan), "Record");
    assert_eq!(
        names(&run(
            &[CrmSeen::Deleted(CrmId(1))],
            &[],
            std::slice::from_ref(&pair),
            Kind::Diary,
            &policy
        )),
        "Forget"
    );
    let mut meeting = diary("moved by the organiser", true);
    if let Item::Diary(d) = &mut meeting {
        d.organized_by_other = true;
    }
    let both = run(
        &crm_change,
        &[MailboxSeen::Present(Box::new(observed(
            MailboxItemId("m1".into()),
            "m2",
            meeting,
            t0(),
        )))],
        &[pair],
        Kind::Diary,
        &policy,
    );
    assert_eq!(names(&both), "UpdateCrm", "the organiser's version wins");
}

#[test]
fn an_item_that_leaves_the_users_scope_is_not_deleted() {
    let original = diary("original", true);
    let plan = run(
        &[CrmSeen::OutOfScope(CrmId(1))],
        &[],
        &[pair_of(&original)],
        Kind::Diary,
        &Policy::default(),
    );
    assert_eq!(names(&plan), "Forget");
}

#[test]
fn the_delete_guard_stops_a_pass_that_deletes_too_much() {
    let item = diary("x", true);
    let pairs: Vec<Pair> = (1..=20)
        .map(|i| Pair {
            crm_id: CrmId(i),
            mailbox_id: MailboxItemId(format!("m{i}")),
            ..pair_of(&item)
        })
        .collect();
    let deletes =
        |n: u32| -> Vec<CrmSeen> { (1..=n).map(|i| CrmSeen::Deleted(CrmId(i))).collect() };
    let window = window();
    let plan_for = |n: u32, policy: &Policy| {
        let crm = deletes(n);
        plan(&Input {
            kind: Kind::Diary,
            window: &window,
            tenant: TENANT,
            policy,
            crm: &crm,
            mailbox: &[],
            pairs: &pairs,
            pair_count: 20,
        })
    };
    let default = Policy::default();
    // 10 of 20: not more than half.
    assert_eq!(plan_for(10, &default).deletes(), 10);
    // 11 of 20: more than half and more than 10.
    let stopped = plan_for(11, &default);
    assert!(stopped.actions.is_empty());
    assert_eq!(
        stopped.guard,
        Some(GuardTripped {
            deletes: 11,
            pairs: 20
        })
    );
    let resumed = Policy {
        allow_mass_delete: true,
        ..default
    };
    assert_eq!(plan_for(11, &resumed).deletes(), 11);
}

#[test]
fn plans_are_deterministic() {
    let item = diary("x", true);
    let crm: Vec<CrmSeen> = (1..50)
        .map(|i| {
            CrmSeen::Present(Box::new(observed(
                CrmId(i),
                "c",
                diary(&format!("crm {i}"), true),
                t0(),
            )))
        })
        .collect();
    let mailbox: Vec<MailboxSeen> = (1..50)
        .map(|i| {
            MailboxSeen::Present(Box::new(observed(
                MailboxItemId(format!("m{i}")),
                "m",
                diary(&format!("mb {i}"), true),
                t0(),
            )))
        })
        .collect();
    let pairs = vec![pair_of(&item)];
    let a = run(&crm, &mailbox, &pairs, Kind::Diary, &Policy::default());
    let b = run(&crm, &mailbox, &pairs, Kind::Diary, &Policy::default());
    assert_eq!(a, b);
}
