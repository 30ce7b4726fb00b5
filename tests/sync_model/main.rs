//! The model-based property test of the sync engine: random sequences of a user's edits on
//! both sides (create, update, delete, move out of and into the window, both sides of one
//! pair; weekly series made, single occurrences moved or cancelled, ends changed), sync passes, passes cut off by a crash between two side effects, lost and rolled-back
//! history, expired delta tokens, and 429s, 503s and resets from the sandbox. After the last
//! op the faults are cleared and passes run until one writes nothing; then both sides must
//! match item for item inside the window, nothing may be there twice, and nothing the user made
//! or changed may be lost except what a delete took (the oracle is in `model.rs`).
//!
//! Everything is real but the user: the in-process sandbox over loopback HTTP, crmsync's
//! Graph and SuperOffice clients, sled on disk, `runtime::pass::run`. Diary items only.
//!
//! Cases: `CRMSYNC_MODEL_CASES` (or `PROPTEST_CASES`), default [`CI_CASES`]. A failure prints
//! the shrunk op sequence and is kept in `tests/sync_model/proptest-regressions`, which is
//! replayed first on every run. The bugs it found are regression tests in `found.rs`, with the
//! one limitation left (`#[ignore]`d); the generated cases steer around that unless
//! `CRMSYNC_MODEL_KNOWN_BUGS=1`.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod found;
mod model;
mod ops;
mod oracle;
mod series;
mod world;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use model::{Model, Side};
use ops::{Op, Tally};
use world::World;

/// Cases per run in CI: what fits the CI's time on a loaded two-core machine (a case with
/// series takes about 1.3 s).
const CI_CASES: u32 = 64;
/// Ops per case: enough for an edit, a crash and a conflict to meet.
const MAX_OPS: usize = 12;
/// Only guards against a hang; a case takes about a second.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

fn cases() -> u32 {
    ["CRMSYNC_MODEL_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(CI_CASES)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// One case: the world synced once, the ops, then passes until quiet, then the properties.
async fn case(ops: &[Op], tally: &mut Tally, avoid_known_bugs: bool) -> Result<(), String> {
    let mut world = World::new().await;
    world.avoid_known_bugs &= avoid_known_bugs;
    world.settle(4).await?;
    let mut model = Model::new(world.now());
    for op in ops {
        world.apply(&mut model, tally, op).await;
    }
    world.sandbox.state().faults.clear();
    world.tick();
    world.settle(5).await?;
    let problems = oracle::check(&world, &model).await;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s):\n- {}\nmodel: {:#?}",
            problems.len(),
            problems.join("\n- "),
            model.items
        ))
    }
}

#[test]
fn random_edits_crashes_and_faults_end_in_sync_with_nothing_lost() {
    let rt = runtime();
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/sync_model/proptest-regressions",
        ))),
        source_file: Some(file!()),
        max_shrink_iters: 256,
        max_shrink_time: 300_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let totals = Mutex::new((Tally::default(), 0u64));
    let started = Instant::now();
    let result = runner.run(&vec(ops::op(), 1..=MAX_OPS), |ops| {
        let mut tally = Tally::default();
        let outcome = rt.block_on(async {
            tokio::time::timeout(CASE_TIMEOUT, case(&ops, &mut tally, true))
                .await
                .unwrap_or_else(|_| Err(format!("the case hung for {CASE_TIMEOUT:?}")))
        });
        if let Ok(mut t) = totals.lock() {
            t.0.add(&tally);
            t.1 += 1;
        }
        outcome.map_err(TestCaseError::fail)
    });
    let (tally, run) = totals.into_inner().unwrap_or_default();
    eprintln!(
        "sync model: {run} case(s) run in {:.1?}: {tally:?}",
        started.elapsed()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // The ops must have done something: a generator that only made skipped edits or passes
    // that never crashed would pass without testing anything. Only what happens in most
    // cases is required (rarer events, such as conflicts, are shown in the summary).
    if run >= 32 {
        assert!(tally.edits > run, "{tally:?}");
        assert!(tally.crashes > 0, "{tally:?}");
        assert!(tally.resyncs > 0, "{tally:?}");
        assert!(tally.history_losses > 0, "{tally:?}");
        assert!(tally.series_edits > run / 4, "{tally:?}");
    }
}

/// The oracle itself finds a lost edit, a duplicate and an unsynced item: a property that
/// cannot fail would make the test above worthless.
#[test]
fn the_oracle_finds_a_lost_edit_a_duplicate_and_an_unsynced_item() {
    runtime().block_on(async {
        let mut world = World::new().await;
        world.settle(4).await.expect("settles");
        let mut model = Model::new(world.now());
        let slot = ops::Slot {
            all_day: false,
            day: 3,
            hour: 9,
            length: 1,
        };
        for _ in 0..3 {
            world
                .apply(
                    &mut model,
                    &mut Tally::default(),
                    &Op::Create(Side::Crm, slot),
                )
                .await;
        }
        world.settle(4).await.expect("settles");
        assert_eq!(oracle::check(&world, &model).await, Vec::<String>::new());

        // Model-0: the model says the user changed it; nobody did. Model-1: a second copy
        // in the CRM. Model-2: deleted in the mailbox behind the model's back.
        let (_, lost) = model.next_content(0, slot.when(&model));
        model.edited(0, Side::Mailbox, lost);
        let state = world.sandbox.state();
        let id = world.crm_ids_of("Model-1")[0];
        let copy = state.superoffice.appointment(id).expect("Model-1").data;
        state
            .superoffice
            .user_create_appointment(
                crmsync::sandbox::superoffice::UserAppointment {
                    associate_id: copy.associate_id,
                    todo: false,
                    task: None,
                    title: copy.title,
                    description: String::new(),
                    location: String::new(),
                    when: crmsync::sandbox::scenario::When::Timed {
                        start: "2030-01-01T09:00:00Z".parse().expect("a time"),
                        end: "2030-01-01T10:00:00Z".parse().expect("a time"),
                        time_zone: "UTC".into(),
                    },
                    private: false,
                    free: None,
                    alarm_minutes: None,
                    completed: false,
                    person_id: None,
                    company_id: None,
                },
                world.now(),
            )
            .expect("a second Model-1");
        let event = world.event_ids_of("Model-2")[0].clone();
        state
            .graph
            .user_delete_event(world.now(), &world.mailbox_id(), &event)
            .expect("deleted");

        let problems = oracle::check(&world, &model).await.join("\n");
        for expected in [
            "Model-0: the user's last edit",
            "Model-1 is 2 times in the CRM",
            "is in the window but not in the mailbox",
            "Model-2: the user's last edit",
        ] {
            assert!(problems.contains(expected), "{expected:?} in:\n{problems}");
        }
    });
}
