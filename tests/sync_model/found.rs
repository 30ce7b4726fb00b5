//! Shrunk cases of bugs the model test found, kept as regression tests with what each was,
//! and the one limitation left (`#[ignore]`d, run by name with `-- --ignored`).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::model::Side;
use super::ops::{Op, Slot, Tally};
use super::{case, runtime};

/// A diary item made in Outlook; the pass creates it in SuperOffice and crashes before it
/// sees the answer; the user edits the new CRM appointment (renames or moves it) before the
/// next pass. The next pass looked the create up by title and dates only, did not find it,
/// and created the item again: twice in the CRM, and so in the mailbox. Fixed: the lookup
/// takes the unpaired item crmsync's own API user registered since the intent
/// (`CrmConnector::created_since`), and only one CRM create is ever in doubt.
#[test]
fn a_crm_create_lost_in_a_crash_and_edited_is_not_made_twice() {
    let slot = at_seven(0);
    let ops = [
        Op::Create(Side::Mailbox, slot),
        Op::CrashPass(1),
        Op::Update(Side::Crm, any_index(), slot),
    ];
    run(&ops);
}

/// One case, with no steering: it must end in sync with nothing lost.
fn run(ops: &[Op]) {
    if let Err(problems) = runtime().block_on(case(ops, &mut Tally::default(), false)) {
        panic!("{problems}");
    }
}

/// An hour from 07:00 on the case's day `day`.
fn at_seven(day: i16) -> Slot {
    Slot {
        all_day: false,
        day,
        hour: 7,
        length: 1,
    }
}

/// An index (proptest has no constructor for one): with one item, any index picks it.
fn any_index() -> Index {
    index_of(0, 1)
}

/// An index that picks item `item` of `size`.
fn index_of(item: usize, size: usize) -> Index {
    let mut runner = TestRunner::deterministic();
    loop {
        let index = any::<Index>()
            .new_tree(&mut runner)
            .expect("an index")
            .current();
        if index.index(size) == item {
            return index;
        }
    }
}

/// A diary item made in SuperOffice and synced; the user's history is lost and the user
/// deletes the CRM appointment (in either order) before the next pass. (The same happens
/// without history loss when a crash cut a pass off after it created the CRM item and stamped
/// the mailbox event, and the user deletes the CRM item before the next pass:
/// `[Create(Mailbox), CrashPass(2), Delete(Crm, 0)]`.) That pass finds the stamped mailbox copy, reads
/// the CRM item it names, found it gone, and left the copy alone: the mailbox kept an item the
/// CRM did not have, for good. Fixed: with no pair to tell whether the copy changed since, a
/// change beats the delete and the item is created in the CRM again (`delete-wins` deletes
/// the copy; `engine::decide::stamped_but_deleted`).
#[test]
fn a_crm_delete_while_history_is_lost_reaches_the_mailbox() {
    let slot = at_seven(0);
    let ops = [
        Op::Create(Side::Crm, slot),
        Op::Pass(false),
        Op::LoseHistory,
        Op::Delete(Side::Crm, any_index()),
    ];
    run(&ops);
}

/// A diary item made in SuperOffice and synced; the user's history is lost; the user moves
/// the Outlook copy out of the window. The next pass reads the mailbox in full (inside the
/// window: the moved event is not in it), finds the CRM item unpaired and creates it in the
/// mailbox; the create, safe to repeat, found the stamped event and answered with it, and the
/// pass paired the two as equal: the CRM kept the old date, the mailbox the new one. Fixed: a
/// create that meets a changed copy settles the two as a link, by the policy.
#[test]
fn a_move_out_of_the_window_while_history_is_lost_reaches_the_crm() {
    let ops = [
        Op::Create(Side::Crm, at_seven(0)),
        Op::Pass(false),
        Op::LoseHistory,
        Op::MoveOut(Side::Mailbox, any_index(), at_seven(-42)),
    ];
    run(&ops);
}

/// As above, with the item made in Outlook: the CRM item is crmsync's, so Graph's
/// `transactionId` does not find the moved event and the create made a second copy. Fixed:
/// before creating an item crmsync itself registered in the CRM, the pass looks its stamp up.
#[test]
fn a_move_out_of_the_window_while_history_is_lost_is_not_made_twice() {
    let ops = [
        Op::Create(Side::Mailbox, at_seven(0)),
        Op::Pass(false),
        Op::LoseHistory,
        Op::MoveOut(Side::Mailbox, any_index(), at_seven(-42)),
    ];
    run(&ops);
}

/// The limitation left. A diary item made in Outlook; the pass creates it in SuperOffice and
/// crashes before it stamps the Outlook item; the history is lost (and with it the intent that
/// names the create); the user edits the CRM item before the next pass. Nothing ties the two
/// any more: no stamp, no intent, and the content differs, so each side gets the other's item
/// and the user sees it twice. Pairing them on a guess could overwrite a different item the
/// user made meanwhile, which is worse. A fix needs a marker written to the Outlook item before
/// the CRM create (a pending stamp), at one more Graph request per item made in Outlook.
/// The generated cases do not lose history while a create may be in flight.
#[test]
#[ignore = "known limitation: history lost right after a crash between a CRM create and its stamp, then an edit"]
fn a_crm_create_cut_off_by_a_crash_then_history_loss_then_an_edit_is_made_twice() {
    let slot = at_seven(0);
    let ops = [
        Op::Create(Side::Mailbox, slot),
        Op::CrashPass(1),
        Op::LoseHistory,
        Op::Update(Side::Crm, any_index(), slot),
    ];
    run(&ops);
}

/// Two diary items made in Outlook; the pass creates the first in SuperOffice and crashes; the
/// user edits the Outlook item, then its new CRM copy. The next pass found the create and
/// stamped the Outlook item before its conflict policy looked: the stamp write made the
/// Outlook edit look like the newest, and the user's last edit (in the CRM) was lost. Fixed:
/// when both copies changed since, the two are settled before the stamp is written.
#[test]
fn both_copies_of_a_create_cut_off_by_a_crash_edited_keep_the_last_edit() {
    let slot = at_seven(0);
    let ops = [
        Op::Create(Side::Mailbox, slot),
        Op::Create(Side::Mailbox, slot),
        Op::CrashPass(1),
        Op::BothUpdate(index_of(1, 2), false, slot, slot),
    ];
    run(&ops);
}

/// A diary item made in Outlook; the pass creates it in SuperOffice (which fills in a task
/// type) and crashes; the user edits the Outlook item. The next pass let the Outlook edit win
/// and wrote it to the CRM, which kept its task type, but did not show that task type in
/// Outlook: the two differed for good. Fixed: after any write from the mailbox to the CRM,
/// what the CRM filled in is written back to the mailbox (`show_filled_in`).
#[test]
fn a_create_cut_off_by_a_crash_then_edited_in_outlook_ends_equal() {
    let slot = at_seven(0);
    let ops = [
        Op::Create(Side::Mailbox, slot),
        Op::CrashPass(1),
        Op::Update(Side::Mailbox, any_index(), slot),
    ];
    run(&ops);
}

/// A two-occurrence series made in SuperOffice and synced; the user then moves and retitles
/// each occurrence alone in SuperOffice (the second one twice). No row holds the series
/// itself any more.
#[test]
fn a_crm_series_whose_every_row_was_edited_alone_keeps_every_edit() {
    use super::series::{OccurrenceEdit, SeriesSlot};
    let ops = [
        Op::CreateSeries(
            Side::Crm,
            SeriesSlot {
                day: 0,
                hour: 7,
                count: Some(2),
            },
        ),
        Op::Pass(false),
        Op::EditOccurrence(Side::Crm, any_index(), 0, OccurrenceEdit::Move(1)),
        Op::EditOccurrence(Side::Crm, any_index(), 1, OccurrenceEdit::Move(1)),
        Op::EditOccurrence(Side::Crm, any_index(), 1, OccurrenceEdit::Move(3)),
    ];
    run(&ops);
}

/// A series made in Outlook, synced, then its first occurrence cancelled in Outlook, while a
/// single CRM appointment (moved in) stands at the same time as that occurrence.
#[test]
fn a_cancelled_first_occurrence_reaches_the_crm_beside_a_single_item_at_its_time() {
    use super::series::SeriesSlot;
    let ops = [
        Op::MoveIn(
            Side::Crm,
            any_index(),
            Slot {
                all_day: false,
                day: 0,
                hour: 11,
                length: 1,
            },
        ),
        Op::CreateSeries(
            Side::Mailbox,
            SeriesSlot {
                day: 0,
                hour: 12,
                count: None,
            },
        ),
        Op::Pass(true),
        Op::EditOccurrence(
            Side::Mailbox,
            any_index(),
            0,
            super::series::OccurrenceEdit::Cancel,
        ),
    ];
    run(&ops);
}
