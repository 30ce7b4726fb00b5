//! Bad input gets a clear message and a non-zero exit, and nothing is written: every file of
//! the state directory keeps its bytes.

use super::Env;

/// ANNA and BO saved, CARL staged.
fn set_up() -> Env {
    let env = Env::with_sandbox();
    env.ok(&["load-external"]);
    env.ok(&["auto-link", "ANNA", "BO"]);
    env.ok(&["save", "--rank", "1"]);
    env.ok(&["auto-link", "CARL"]);
    env
}

/// Runs `args`, expects `code` and a message containing `says`, and that nothing changed.
fn refused(env: &Env, args: &[&str], code: i32, says: &str) {
    let before = env.snapshot();
    let message = env.fails(args, code);
    assert!(
        message.contains(says),
        "users {args:?}: expected {says:?} in:\n{message}"
    );
    assert_eq!(env.snapshot(), before, "users {args:?} wrote something");
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let env = set_up();
    // Unknown users, also among known ones: none of them is changed.
    refused(
        &env,
        &["set", "nobody", "--diary", "off"],
        64,
        "no sync user matches \"nobody\"",
    );
    refused(
        &env,
        &["set", "ANNA", "BO", "nobody", "--diary", "off"],
        64,
        "no sync user matches",
    );
    refused(
        &env,
        &["remove", "nobody", "--yes"],
        64,
        "no sync user matches",
    );
    refused(&env, &["set", "CARL", "--task", "off"], 64, "only staged");
    refused(&env, &["set", "ANNA"], 64, "nothing to change");
    // Duplicate links, either way, saved or staged.
    refused(
        &env,
        &["link", "EVA", "anna.berg@contoso.example"],
        64,
        "is already linked as sync user",
    );
    refused(
        &env,
        &["link", "ANNA", "room.oslo@contoso.example"],
        64,
        "the associate is already linked",
    );
    refused(
        &env,
        &["link", "EVA", "CARL.DAHL@contoso.example"],
        64,
        "is already staged",
    );
    // Not in the loaded list; an associate SuperOffice does not have.
    refused(
        &env,
        &["link", "EVA", "nobody@contoso.example"],
        64,
        "no loaded mailbox has the address or id",
    );
    refused(
        &env,
        &["link", "NOBODY", "room.oslo@contoso.example"],
        64,
        "no associate",
    );
    refused(
        &env,
        &["load-external", "--mail-system", "nope"],
        64,
        "no mail system \"nope\"",
    );
    refused(&env, &["discard", "EVA"], 64, "no staged link matches");
    // Invalid ranks.
    refused(&env, &["save", "--rank", "1000"], 64, "not a rank");
    refused(&env, &["set", "ANNA", "--rank", "0"], 64, "not a rank");
    refused(&env, &["list", "--rank", "x"], 64, "not a rank");
    refused(&env, &["set", "ANNA", "--fresh"], 64, "--rank");
    // Not on a terminal, removal needs --yes.
    refused(&env, &["remove", "ANNA"], 64, "--yes");
}

#[test]
fn corrupt_files_are_never_overwritten() {
    let env = set_up();
    let state = env.state_dir();

    let registry = std::fs::read(state.join("users.toml")).unwrap();
    std::fs::write(
        state.join("users.toml"),
        "version = 1\n\n[[users]]\nid = \"x\"\nassociate_id = \"oops\"\n",
    )
    .unwrap();
    for args in [
        &["set", "ANNA", "--diary", "off"][..],
        &["save"],
        &["remove", "ANNA", "--yes"],
        &["link", "EVA", "room.oslo@contoso.example"],
        &["auto-link"],
        &["discard"],
        &["list"],
    ] {
        refused(&env, args, 78, "users.toml:5");
    }
    std::fs::write(state.join("users.toml"), "version = 2\n").unwrap();
    refused(&env, &["disable", "ANNA"], 78, "newer crmsync");
    std::fs::write(state.join("users.toml"), &registry).unwrap();

    let pending = std::fs::read(state.join("pending.toml")).unwrap();
    std::fs::write(
        state.join("pending.toml"),
        "version = 1\n[[links]]\nlogin = 7\n",
    )
    .unwrap();
    for args in [
        &["save"][..],
        &["discard"],
        &["pending"],
        &["auto-link", "EVA"],
        &["link", "EVA", "room.oslo@contoso.example"],
    ] {
        refused(&env, args, 78, "pending.toml:3");
    }
    std::fs::write(state.join("pending.toml"), &pending).unwrap();

    std::fs::write(
        state.join("external-users.json"),
        "{\"format\": 1,\n \"mail_systems\": [}\n",
    )
    .unwrap();
    refused(&env, &["load-external"], 78, "external-users.json:2");
    refused(
        &env,
        &["link", "EVA", "room.oslo@contoso.example"],
        78,
        "external-users.json:2",
    );

    // With the files restored, the same commands work again.
    std::fs::remove_file(state.join("external-users.json")).unwrap();
    env.ok(&["load-external"]);
    env.ok(&["link", "EVA", "room.oslo@contoso.example"]);
    env.ok(&["save"]);
    assert_eq!(env.registry().users.len(), 4);
}
