//! The registry is parsed by every rank daemon on every change of `users.toml`, and a rank's
//! view is taken from it; with 1,000 users per rank and a dozen ranks that is the hot path
//! of a registry change.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use crmsync::registry::{Rank, Registry};

fn registry_text(users: u32, ranks: u16) -> String {
    let mut text = String::from("version = 1\n");
    for i in 0..users {
        let rank = (i % u32::from(ranks)) + 1;
        text.push_str(&format!(
            "\n[[users]]\nid = \"0193a1b2c3d4e5f6a7b8c9d0{i:08x}\"\nassociate_id = {}\nlogin = \"USER{i}\"\n\
             mailbox = \"user{i}@contoso.com\"\nmailbox_id = \"{i:08x}-0000-0000-0000-000000000000\"\n\
             mail_system = \"contoso\"\nrank = {rank}\ndiary = true\ntask = true\ncontact = {}\n\
             created = \"2026-11-01T10:00:00Z\"\n",
            1000 + i,
            i % 2 == 0
        ));
    }
    text
}

fn bench_registry(c: &mut Criterion) {
    let path = Path::new("users.toml");
    for users in [100u32, 1_000, 10_000] {
        let text = registry_text(users, 10);
        c.bench_function(&format!("registry parse, {users} users"), |b| {
            b.iter(|| Registry::parse(black_box(&text), path).expect("valid registry"))
        });
    }
    let registry = Registry::parse(&registry_text(10_000, 10), path).expect("valid registry");
    let rank = Rank::new(3).expect("rank");
    c.bench_function("rank view, 10000 users in 10 ranks", |b| {
        b.iter(|| black_box(&registry).rank_view(rank))
    });
}

criterion_group!(benches, bench_registry);
criterion_main!(benches);
