//! The planner for a user with 10,000 pairs of which 1 % changed on each side: what every
//! pass of a large mailbox costs in CPU before any HTTP.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crmsync::connector::model::{
    CrmId, DiaryItem, Item, Kind, Links, MailboxItemId, Observed, ShowAs, Version, When, Window,
};
use crmsync::engine::{self, CrmSeen, Input, MailboxSeen, Policy};
use crmsync::history::{Pair, Side};
use jiff::{SignedDuration, Timestamp};

fn item(n: u32, start: Timestamp, edit: &str) -> Item {
    let start = start + SignedDuration::from_hours(i64::from(n % 2000));
    Item::Diary(DiaryItem {
        subject: format!("Meeting {n}{edit}"),
        body: "Agenda to follow.".into(),
        when: When::Timed {
            start,
            end: start + SignedDuration::from_hours(1),
        },
        location: "Oslo".into(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: Some(15),
        task_type: Some("Meeting".into()),
        organized_by_other: false,
        series: None,
    })
}

fn bench_plan(c: &mut Criterion) {
    let now: Timestamp = "2026-11-22T10:00:00Z".parse().expect("time");
    let window = Window {
        start: now - SignedDuration::from_hours(24 * 30),
        end: now + SignedDuration::from_hours(24 * 120),
    };
    let pairs: Vec<Pair> = (0..10_000u32)
        .map(|n| {
            let it = item(n, now, "");
            Pair {
                crm_id: CrmId(n),
                mailbox_id: MailboxItemId(format!("AAMkAD{n:0>140}")),
                crm_version: Version(format!("2026-11-01T10:00:{:02}Z", n % 60)),
                mailbox_version: Version(format!("EZ9r3czxY0m2jz8c45czkwAA{n:08}")),
                crm_hash: it.content_hash(),
                mailbox_hash: it.content_hash(),
                origin: Side::Crm,
                span: engine::span_of(&it),
                stamped: true,
                mailbox_read_only: false,
            }
        })
        .collect();
    // 1 %: 100 changed in the CRM, 100 others in the mailbox.
    let crm: Vec<CrmSeen> = (0..100u32)
        .map(|n| {
            CrmSeen::Present(Box::new(Observed {
                id: CrmId(n * 100),
                version: Version("new".into()),
                modified: now,
                item: item(n * 100, now, " (moved)"),
                stamp: None,
                links: Links::default(),
            }))
        })
        .collect();
    let mailbox: Vec<MailboxSeen> = (0..100u32)
        .map(|n| {
            let id = n * 100 + 50;
            MailboxSeen::Present(Box::new(Observed {
                id: MailboxItemId(format!("AAMkAD{id:0>140}")),
                version: Version("new".into()),
                modified: now,
                item: item(id, now, " (renamed)"),
                stamp: None,
                links: Links::default(),
            }))
        })
        .collect();
    // The executor hands the engine only the pairs the reports refer to.
    let touched: Vec<Pair> = pairs
        .iter()
        .filter(|p| p.crm_id.0 % 100 == 0 || p.crm_id.0 % 100 == 50)
        .cloned()
        .collect();
    let policy = Policy::default();
    let mut group = c.benchmark_group("planner");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("10,000 pairs, 1 % changed on each side", |b| {
        b.iter(|| {
            let plan = engine::plan(black_box(&Input {
                kind: Kind::Diary,
                window: &window,
                tenant: "Cust12345",
                policy: &policy,
                crm: &crm,
                mailbox: &mailbox,
                pairs: &touched,
                pair_count: pairs.len() as u64,
            }));
            assert_eq!(plan.actions.len(), 200);
            plan
        })
    });
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
