use super::*;
use crate::registry::external::{LoadedMailSystem, Mailbox};
use crate::registry::{Rank, SyncUserId};

fn now() -> jiff::Timestamp {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn associate(id: u32, login: &str, email: Option<&str>) -> Associate {
    Associate {
        id,
        login: login.into(),
        name: format!("{login} Name"),
        email: email.map(str::to_string),
        active: true,
    }
}

fn mailbox(id: &str, mail: &str, proxies: &[&str]) -> Mailbox {
    let mut smtp = vec![mail.to_lowercase()];
    smtp.extend(proxies.iter().map(|p| p.to_lowercase()));
    Mailbox {
        id: id.into(),
        display_name: id.into(),
        user_principal_name: mail.into(),
        mail: Some(mail.into()),
        smtp_addresses: smtp,
    }
}

fn external(mailboxes: Vec<Mailbox>) -> ExternalUsers {
    let mut e = ExternalUsers::default();
    e.mail_systems.insert(
        "contoso".into(),
        LoadedMailSystem {
            loaded: now(),
            source: "https://graph.example/v1.0".into(),
            mailboxes,
        },
    );
    e
}

fn saved(associate_id: u32, mailbox: &str) -> SyncUser {
    SyncUser {
        id: SyncUserId::generate(),
        associate_id,
        login: Some(format!("A{associate_id}")),
        name: None,
        mailbox: mailbox.into(),
        mailbox_id: None,
        mail_system: "contoso".into(),
        rank: Rank::MIN,
        diary: true,
        task: true,
        contact: true,
        created: now(),
        moved_from: None,
        resume: None,
    }
}

fn reasons(result: &AutoLinked) -> Vec<(String, &'static str)> {
    result
        .unmatched
        .iter()
        .map(|(a, why)| (a.login.clone(), why.code()))
        .collect()
}

#[test]
fn every_reason_is_given() {
    let ext = external(vec![
        mailbox("m1", "Anna@contoso.example", &[]),
        mailbox("m2", "dina.ek@contoso.example", &["dina@contoso.example"]),
        mailbox("m3", "shared@contoso.example", &[]),
        mailbox("m4", "other@contoso.example", &["shared@contoso.example"]),
        mailbox("m5", "taken@contoso.example", &[]),
    ]);
    let mut registry = Registry::empty();
    registry.users.push(saved(9, "taken@contoso.example"));
    registry.users.push(saved(8, "elsewhere@contoso.example"));
    let pending = Pending::empty();
    let taken = Taken::new(&registry, &pending);
    let mut retired = associate(7, "OLD", Some("old@contoso.example"));
    retired.active = false;
    let result = auto_link(
        &[
            associate(1, "ANNA", Some("anna@CONTOSO.example")),
            associate(2, "DINA", Some("dina@contoso.example")),
            associate(3, "EVA", None),
            associate(4, "NOONE", Some("noone@contoso.example")),
            associate(5, "SHARED", Some("shared@contoso.example")),
            associate(6, "TAKER", Some("taken@contoso.example")),
            associate(8, "LINKED", Some("elsewhere@contoso.example")),
            retired,
        ],
        &ext,
        &taken,
        now(),
    );
    let matched: Vec<(&str, &str, bool)> = result
        .matched
        .iter()
        .map(|m| {
            (
                m.associate.login.as_str(),
                m.link.mailbox_id.as_str(),
                m.by_proxy,
            )
        })
        .collect();
    assert_eq!(matched, vec![("ANNA", "m1", false), ("DINA", "m2", true)]);
    assert_eq!(result.matched[1].link.mailbox, "dina.ek@contoso.example");
    assert_eq!(
        result.matched[1].link.matched.as_deref(),
        Some("dina@contoso.example")
    );
    assert_eq!(
        reasons(&result),
        vec![
            ("EVA".to_string(), "no_email"),
            ("LINKED".to_string(), "associate_linked"),
            ("NOONE".to_string(), "no_mailbox"),
            ("OLD".to_string(), "associate_inactive"),
            ("SHARED".to_string(), "ambiguous"),
            ("TAKER".to_string(), "mailbox_linked"),
        ]
    );
}

#[test]
fn two_associates_with_one_address_are_both_left_out() {
    let ext = external(vec![mailbox("m1", "team@contoso.example", &[])]);
    let (registry, pending) = (Registry::empty(), Pending::empty());
    let result = auto_link(
        &[
            associate(1, "A", Some("team@contoso.example")),
            associate(2, "B", Some("Team@contoso.example")),
        ],
        &ext,
        &Taken::new(&registry, &pending),
        now(),
    );
    assert!(result.matched.is_empty());
    assert_eq!(
        reasons(&result),
        vec![
            ("A".to_string(), "ambiguous"),
            ("B".to_string(), "ambiguous")
        ]
    );
}

#[test]
fn staged_links_count_as_taken() {
    let ext = external(vec![
        mailbox("m1", "anna@contoso.example", &[]),
        mailbox("m2", "bo@contoso.example", &[]),
    ]);
    let registry = Registry::empty();
    let mut pending = Pending::empty();
    let taken = Taken::new(&registry, &pending);
    let found = ext.find("m1", None)[0];
    let anna = associate(1, "ANNA", None);
    let address = check_link(&anna, &found, &taken).unwrap();
    pending
        .links
        .push(staged_link(&anna, &found, address, LinkSource::Link, now()));
    let taken = Taken::new(&registry, &pending);
    let bo = associate(2, "BO", None);
    match check_link(&bo, &found, &taken) {
        Err(Unmatched::MailboxLinked { holder, .. }) => {
            assert!(matches!(holder, Holder::Staged { .. }));
        }
        other => panic!("{other:?}"),
    }
    let other = ext.find("bo@contoso.example", None)[0];
    assert_eq!(
        check_link(&anna, &other, &taken).unwrap_err().code(),
        "associate_linked"
    );
    assert!(check_link(&bo, &other, &taken).is_ok());
}
