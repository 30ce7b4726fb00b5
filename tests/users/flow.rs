//! The panel's whole path against the sandbox's `small` scenario: load, auto-link (every
//! reason), link by hand, pending (not synced), save, options, disable/enable, rank moves,
//! list, remove.

use crmsync::history::Handoff;
use crmsync::registry::handoff_path;
use serde_json::Value;

use super::{Env, rank, seed};

fn logins(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|r| r["login"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn reason_of<'a>(result: &'a Value, login: &str) -> &'a str {
    result["unmatched"]
        .as_array()
        .expect("unmatched")
        .iter()
        .find(|r| r["login"] == login)
        .and_then(|r| r["reason"].as_str())
        .unwrap_or_else(|| panic!("{login} is not unmatched: {result}"))
}

#[test]
fn the_panel_from_load_to_remove() {
    let env = Env::with_sandbox();

    // Linking chooses from the loaded list: refused before it is loaded.
    let message = env.fails(&["auto-link"], 64);
    assert!(message.contains("users load-external"), "{message}");

    let loaded = env.json(&["load-external", "--json"]);
    assert_eq!(loaded["mailboxes"], 6, "{loaded}");
    assert_eq!(loaded["mail_systems"][0]["name"], "sandbox");
    let summary = env.ok(&["load-external"]);
    assert!(
        summary.starts_with("loaded 6 mailboxes from 1 mail system"),
        "{summary}"
    );

    // First auto-link: four matches (DINA by a proxy address), EVA has no e-mail.
    let first = env.json(&["auto-link", "--json"]);
    assert_eq!(
        logins(&first["staged"]),
        ["ANNA", "BO", "CARL", "DINA"],
        "{first}"
    );
    let dina = &first["staged"][3];
    assert_eq!(dina["by_proxy"], true);
    assert_eq!(dina["mailbox"], "dina.ek@contoso.example");
    assert_eq!(reason_of(&first, "EVA"), "no_email");

    // Second run: the default skips what is staged; named associates say why.
    let table = env.ok(&["auto-link"]);
    assert!(
        table.contains("4 associates already linked or staged"),
        "{table}"
    );
    assert!(
        table.contains("no e-mail address on the associate's person card"),
        "{table}"
    );
    let second = env.json(&["auto-link", "ANNA", "104", "EVA", "--json"]);
    assert!(second["staged"].as_array().unwrap().is_empty(), "{second}");
    assert_eq!(reason_of(&second, "ANNA"), "associate_linked");
    assert_eq!(reason_of(&second, "DINA"), "associate_linked");

    // A mailbox that is taken: ANNA's mailbox goes to EVA by hand, then ANNA cannot have it.
    env.ok(&["discard", "ANNA"]);
    env.ok(&["link", "EVA", "anna.berg@contoso.example"]);
    let third = env.json(&["auto-link", "ANNA", "--json"]);
    assert_eq!(reason_of(&third, "ANNA"), "mailbox_linked");
    env.ok(&["discard", "eva"]);
    let fourth = env.json(&["auto-link", "ANNA", "--json"]);
    assert_eq!(logins(&fourth["staged"]), ["ANNA"]);

    // By hand: the room mailbox (no associate of its own) to EVA, named by its id.
    let external: Value = serde_json::from_slice(
        &std::fs::read(env.state_dir().join("external-users.json")).unwrap(),
    )
    .unwrap();
    let room_id = external["mail_systems"]["sandbox"]["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mail"] == "room.oslo@contoso.example")
        .and_then(|m| m["id"].as_str())
        .expect("the room mailbox is loaded")
        .to_string();
    env.ok(&["link", "eva", &room_id]);

    // Pending: five links, none of them in the registry (nothing staged syncs).
    let pending = env.json(&["pending", "--json"]);
    assert_eq!(pending["links"].as_array().unwrap().len(), 5);
    assert!(env.registry().users.is_empty());
    let list = env.json(&["list", "--json"]);
    assert!(
        list["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["state"] == "pending" && u["id"].is_null())
    );

    // Save on rank 2 with contacts off; every user gets a fresh id.
    let saved = env.ok(&["save", "--rank", "2", "--contact", "off"]);
    assert!(saved.contains("saved 5 sync users on rank 2"), "{saved}");
    let registry = env.registry();
    assert_eq!(registry.users.len(), 5);
    assert!(
        registry
            .users
            .iter()
            .all(|u| u.rank == rank(2) && u.diary && !u.contact)
    );
    let mut ids: Vec<_> = registry.users.iter().map(|u| u.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert!(
        env.json(&["pending", "--json"])["links"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let eva = env.user("EVA");
    assert_eq!(eva.mailbox, "room.oslo@contoso.example");
    assert_eq!(eva.mailbox_id.as_deref(), Some(room_id.as_str()));
    assert_eq!(eva.name.as_deref(), Some("Eva Fors"));

    // Options, by login, mailbox address, associate id and sync user id.
    env.ok(&["set", "anna", "--task", "off"]);
    env.ok(&["set", "bo.lind@contoso.example", "103", "--contact", "on"]);
    let anna = env.user("ANNA");
    assert!(anna.diary && !anna.task && !anna.contact);
    assert!(env.user("BO").contact && env.user("CARL").contact);
    env.ok(&["disable", anna.id.as_str()]);
    assert!(env.user("ANNA").is_disabled());
    assert_eq!(
        env.user("ANNA").id,
        anna.id,
        "options keep the id (and the history)"
    );
    let enabled = env.ok(&["enable", "ANNA"]);
    assert!(
        enabled.contains("enabled: diary on, task on, contact on"),
        "{enabled}"
    );

    // Rank move with rank 2's daemon stopped: the command hands the history over.
    let carl = env.user("CARL");
    let before = {
        let history = env.history(2);
        seed(&history, &carl.id, 4);
        env.flush(&history);
        history.user(&carl.id).unwrap().checksum().unwrap()
    };
    let moved = env.ok(&["set", "CARL", "--rank", "3"]);
    assert!(
        moved.contains("history handed over by this command"),
        "{moved}"
    );
    let carl = env.user("CARL");
    assert_eq!((carl.rank, carl.moved_from), (rank(3), Some(rank(2))));
    let handoff = Handoff::read(&handoff_path(&env.state_dir(), &carl.id)).expect("hand-over");
    assert_eq!(handoff.checksum, before);
    assert!(!env.history(2).has_user(&carl.id), "the old tree is gone");

    // --fresh: nothing carried, and the output says how the new rank copes.
    let fresh = env.ok(&["set", "DINA", "--rank", "3", "--fresh"]);
    assert!(
        fresh.contains("rebuilds the pairs from the stamps"),
        "{fresh}"
    );
    assert_eq!(env.user("DINA").moved_from, None);

    // List: the table and JSON, with a failure the rank's status file reports.
    std::fs::create_dir_all(env.rank_dir(3)).unwrap();
    std::fs::write(
        env.rank_dir(3).join("status.json"),
        format!(
            r#"{{"rank": 3, "users": [{{"id": "{}", "state": "failed", "detail": "mailbox not found"}}]}}"#,
            env.user("DINA").id
        ),
    )
    .unwrap();
    env.ok(&["disable", "BO"]);
    let table = env.ok(&["list"]);
    let line = |login: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!("{login} (")))
            .unwrap_or_else(|| panic!("{login} in\n{table}"))
            .to_string()
    };
    assert!(
        line("DINA").ends_with("failed: mailbox not found"),
        "{table}"
    );
    assert!(line("BO").ends_with("disabled"), "{table}");
    assert!(line("ANNA").ends_with("active"), "{table}");
    assert!(table.contains("5 sync users, 0 staged"), "{table}");
    let rank3 = env.json(&["list", "--rank", "3", "--json"]);
    let users = rank3["users"].as_array().unwrap();
    assert_eq!(logins(&rank3["users"]), ["CARL", "DINA"]);
    assert_eq!(users[0]["moved_from"], 2);
    assert_eq!(users[1]["state"], "failed");
    assert_eq!(users[1]["reason"], "mailbox not found");

    // Remove with no daemon: the command deletes exactly that history.
    let eva = env.user("EVA");
    {
        let history = env.history(2);
        seed(&history, &eva.id, 3);
        env.flush(&history);
    }
    let removed = env.ok(&["remove", "EVA", "--yes"]);
    assert!(
        removed.contains("history deleted by this command"),
        "{removed}"
    );
    let registry = env.registry();
    assert!(registry.users.iter().all(|u| u.id != eva.id));
    assert!(registry.tombstones.is_empty(), "{:?}", registry.tombstones);
    assert!(!env.history(2).has_user(&eva.id));
}
