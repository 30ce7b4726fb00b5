//! Shrunk cases of bugs the model test found and that are not fixed yet, kept as regression
//! tests to run by name (`cargo test --test sync_model -- --ignored`).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::model::Side;
use super::ops::{Op, Slot, Tally};
use super::{case, runtime};

/// A diary item made in Outlook; the pass creates it in SuperOffice and crashes before it
/// sees the answer; the user edits the new CRM appointment (renames or moves it) before the
/// next pass. The next pass looks the create up by title and dates
/// (`CrmConnector::find_created`: the CRM holds no stamp), does not find it, and creates the
/// item again: the CRM has it twice, and so the mailbox too. A fix needs a way to find
/// crmsync's own create that a user's edit does not change (the registration time and the
/// API user as creator, or a marker field).
#[test]
#[ignore = "known bug: a CRM create lost in a crash and edited before the next pass is made twice"]
fn a_crm_create_lost_in_a_crash_and_edited_is_not_made_twice() {
    let slot = Slot {
        all_day: false,
        day: 0,
        hour: 7,
        length: 1,
    };
    let ops = [
        Op::Create(Side::Mailbox, slot),
        Op::CrashPass(1),
        Op::Update(Side::Crm, any_index(), slot),
    ];
    let outcome = runtime().block_on(case(&ops, &mut Tally::default(), false));
    if let Err(problems) = outcome {
        panic!("{problems}");
    }
}

/// An index (proptest has no constructor for one): with one item, any index picks it.
fn any_index() -> Index {
    any::<Index>()
        .new_tree(&mut TestRunner::deterministic())
        .expect("an index")
        .current()
}

/// A diary item made in SuperOffice and synced; the user's history is lost and the user
/// deletes the CRM appointment (in either order) before the next pass. (The same happens
/// without history loss when a crash cut a pass off after it created the CRM item and stamped
/// the mailbox event, and the user deletes the CRM item before the next pass:
/// `[Create(Mailbox), CrashPass(2), Delete(Crm, 0)]`.) That pass finds the stamped mailbox copy, reads
/// the CRM item it names, finds it gone, and leaves the copy alone ("stamped, but its CRM
/// item was not read or no longer exists", `engine/decide.rs`): the mailbox keeps an item the
/// CRM does not have, for good. Deciding it needs a rule (delete the copy, or recreate the
/// CRM item as a change beats a delete); the engine has none yet.
#[test]
#[ignore = "known bug: a CRM delete while history is lost leaves the mailbox copy behind"]
fn a_crm_delete_while_history_is_lost_reaches_the_mailbox() {
    let slot = Slot {
        all_day: false,
        day: 0,
        hour: 7,
        length: 1,
    };
    let ops = [
        Op::Create(Side::Crm, slot),
        Op::Pass(false),
        Op::LoseHistory,
        Op::Delete(Side::Crm, any_index()),
    ];
    let outcome = runtime().block_on(case(&ops, &mut Tally::default(), false));
    if let Err(problems) = outcome {
        panic!("{problems}");
    }
}

/// A diary item made in SuperOffice and synced; the user's history is lost; the user moves
/// the Outlook copy out of the window. The next pass reads the mailbox in full (inside the
/// window: the moved event is not in it), finds the CRM item unpaired and creates it in the
/// mailbox; the create, safe to repeat, finds the stamped event and answers with it, and the
/// pass pairs the two as equal. The CRM keeps the old date, the mailbox the new one, for good.
#[test]
#[ignore = "known bug: a mailbox item moved out of the window while history is lost stays different from its CRM item"]
fn a_move_out_of_the_window_while_history_is_lost_reaches_the_crm() {
    let ops = [
        Op::Create(
            Side::Crm,
            Slot {
                all_day: false,
                day: 0,
                hour: 7,
                length: 1,
            },
        ),
        Op::Pass(false),
        Op::LoseHistory,
        Op::MoveOut(
            Side::Mailbox,
            any_index(),
            Slot {
                all_day: false,
                day: -42,
                hour: 7,
                length: 1,
            },
        ),
    ];
    let outcome = runtime().block_on(case(&ops, &mut Tally::default(), false));
    if let Err(problems) = outcome {
        panic!("{problems}");
    }
}
