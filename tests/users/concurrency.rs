//! Concurrent `crmsync users set` processes never lose each other's updates.

use std::process::Stdio;

use super::Env;
use super::common::{registry, stderr};

#[test]
fn twenty_concurrent_sets_on_twenty_users_lose_nothing() {
    let env = Env::offline();
    let users: Vec<(String, u32, String, u16)> = (0..20)
        .map(|i| {
            (
                format!("u{i}"),
                100 + i,
                format!("user{i}@contoso.example"),
                1,
            )
        })
        .collect();
    let spec: Vec<(&str, u32, &str, u16)> = users
        .iter()
        .map(|(id, a, m, r)| (id.as_str(), *a, m.as_str(), *r))
        .collect();
    env.dir.write_registry(&registry(&spec, &[]));

    // Each process changes its own user: diary off for all, rank 2 for the even ones, task
    // off for the odd ones.
    let children: Vec<_> = (0..20)
        .map(|i| {
            let id = format!("u{i}");
            let mut args = vec![
                "users",
                "--lock-timeout",
                "10m",
                "set",
                &id,
                "--diary",
                "off",
            ];
            if i % 2 == 0 {
                args.extend(["--rank", "2"]);
            } else {
                args.extend(["--task", "off"]);
            }
            let child = env
                .dir
                .command(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start crmsync");
            (i, child)
        })
        .collect();
    for (i, child) in children {
        let out = child.wait_with_output().expect("crmsync ends");
        assert_eq!(out.status.code(), Some(0), "u{i}: {}", stderr(&out));
    }

    let registry = env.registry();
    assert_eq!(registry.users.len(), 20);
    for i in 0..20 {
        let u = registry
            .users
            .iter()
            .find(|u| u.id.as_str() == format!("u{i}"))
            .unwrap_or_else(|| panic!("u{i} is gone"));
        assert!(!u.diary, "u{i}: diary");
        assert!(u.contact, "u{i}: contact untouched");
        if i % 2 == 0 {
            assert_eq!(u.rank.get(), 2, "u{i}: rank");
            assert!(u.task, "u{i}: task");
        } else {
            assert_eq!(u.rank.get(), 1, "u{i}: rank");
            assert!(!u.task, "u{i}: task");
        }
    }
}

#[test]
fn a_command_that_cannot_have_the_lock_in_time_exits_75_and_writes_nothing() {
    let env = Env::offline();
    env.dir
        .write_registry(&registry(&[("u1", 101, "anna@contoso.example", 1)], &[]));
    let store = crmsync::registry::store::Store::new(&env.state_dir());
    let held = store
        .lock(std::time::Duration::from_secs(60))
        .expect("the lock");
    let before = env.snapshot();
    let message = env.fails(
        &["--lock-timeout", "200ms", "set", "u1", "--diary", "off"],
        75,
    );
    assert!(message.contains("users.lock"), "{message}");
    assert!(message.contains("try again"), "{message}");
    assert_eq!(env.snapshot(), before);
    drop(held);
    env.ok(&["set", "u1", "--diary", "off"]);
    assert!(!env.registry().users[0].diary);
}
