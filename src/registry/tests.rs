use super::*;

const TWO_RANKS: &str = r#"
version = 1

[[users]]
id = "u1"
associate_id = 11
login = "ANNA"
mailbox = "anna@contoso.com"
mail_system = "contoso"
rank = 1
diary = true
task = true
contact = false
created = "2026-11-01T10:00:00Z"

[[users]]
id = "u2"
associate_id = 12
mailbox = "bo@contoso.com"
mail_system = "contoso"
rank = 2
diary = false
task = false
contact = false
created = "2026-11-01T10:00:00Z"

[[tombstones]]
id = "u0"
rank = 1
removed = "2026-11-02T10:00:00Z"
"#;

fn parse(text: &str) -> Result<Registry, RegistryError> {
    Registry::parse(text, Path::new("/state/users.toml"))
}

fn line_and_message(text: &str) -> (usize, String) {
    match parse(text) {
        Err(RegistryError::Invalid { line, message, .. }) => (line, message),
        other => panic!("expected an invalid registry, got {other:?}"),
    }
}

#[test]
fn a_rank_sees_only_its_users_and_tombstones() {
    let registry = parse(TWO_RANKS).unwrap();
    let one = registry.rank_view(Rank::new(1).unwrap());
    assert_eq!(one.users.len(), 1);
    assert_eq!(one.users[0].id.as_str(), "u1");
    assert_eq!(
        one.users[0].enabled_kinds().collect::<Vec<_>>(),
        vec![Kind::Diary, Kind::Task]
    );
    assert_eq!(one.tombstones.len(), 1);

    let two = registry.rank_view(Rank::new(2).unwrap());
    assert_eq!(two.users.len(), 1);
    assert!(two.users[0].is_disabled());
    assert_eq!(two.active_users().count(), 0);
    assert!(two.tombstones.is_empty());

    assert!(registry.rank_view(Rank::new(3).unwrap()).users.is_empty());
}

#[test]
fn the_written_form_reads_back_the_same() {
    let registry = parse(TWO_RANKS).unwrap();
    let text = registry.to_toml();
    assert_eq!(parse(&text).unwrap(), registry);
}

#[test]
fn a_missing_file_is_an_empty_registry() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::read(&Registry::path_in(dir.path())).unwrap();
    assert_eq!(registry, Registry::empty());
}

#[test]
fn syntax_errors_name_the_line() {
    let text = TWO_RANKS.replace("rank = 2\n", "rank = 2\ndiary = \n");
    let (line, message) = line_and_message(&text);
    assert_eq!(line, 22, "{message}");
}

#[test]
fn out_of_range_ranks_are_refused() {
    let text = TWO_RANKS.replace("rank = 2", "rank = 1000");
    let (line, message) = line_and_message(&text);
    assert_eq!(line, 21);
    assert!(message.contains("1 to 999"), "{message}");
}

#[test]
fn unknown_keys_are_refused() {
    let text = TWO_RANKS.replace("login = \"ANNA\"", "logon = \"ANNA\"");
    let (line, message) = line_and_message(&text);
    assert_eq!(line, 7);
    assert!(message.contains("logon"), "{message}");
}

#[test]
fn duplicate_links_are_refused_with_both_lines() {
    let text = TWO_RANKS.replace("associate_id = 12", "associate_id = 11");
    let (line, message) = line_and_message(&text);
    assert_eq!(line, 16, "the line of the second entry");
    assert!(
        message.contains("associate 11 is linked twice (also on line 4)"),
        "{message}"
    );

    let text = TWO_RANKS.replace("bo@contoso.com", "ANNA@contoso.com");
    let (_, message) = line_and_message(&text);
    assert!(message.contains("linked twice"), "{message}");

    let text = TWO_RANKS.replace("id = \"u2\"", "id = \"u1\"");
    let (_, message) = line_and_message(&text);
    assert!(message.contains("used twice"), "{message}");

    let text = TWO_RANKS.replace("id = \"u0\"", "id = \"u2\"");
    let (_, message) = line_and_message(&text);
    assert!(message.contains("both active"), "{message}");
}

#[test]
fn versions_are_checked() {
    let (_, message) = line_and_message(&TWO_RANKS.replace("version = 1", "version = 2"));
    assert!(message.contains("newer crmsync"), "{message}");
    let (_, message) = line_and_message(&TWO_RANKS.replace("version = 1", ""));
    assert!(message.contains("no `version`"), "{message}");
}

#[test]
fn ids_are_restricted_and_fresh() {
    assert!(SyncUserId::parse("0193a1b2-x_Y").is_some());
    assert!(SyncUserId::parse("").is_none());
    assert!(SyncUserId::parse("a/b").is_none());
    assert!(SyncUserId::parse("__sled__default").is_some());
    let (a, b) = (SyncUserId::generate(), SyncUserId::generate());
    assert_ne!(a, b);
    assert!(SyncUserId::parse(a.as_str()).is_some());
    let text = TWO_RANKS.replace("id = \"u1\"", "id = \"u 1\"");
    assert!(parse(&text).is_err());
}
