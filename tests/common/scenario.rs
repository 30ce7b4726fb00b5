//! Sync users of the sandbox's scenarios, for the tests that run passes in-process.

use crmsync::registry::{Rank, SyncUser, SyncUserId};
use crmsync::sandbox::SandboxState;

/// ANNA of the scenario, linked to its first mailbox, with the kinds given, under a new id.
pub fn anna(state: &SandboxState, diary: bool, task: bool, contact: bool) -> SyncUser {
    let scenario = state.scenario();
    let anna = scenario
        .superoffice
        .associates
        .iter()
        .find(|a| a.login == "ANNA")
        .expect("ANNA")
        .clone();
    let mailbox = scenario.graph.mailboxes[0].clone();
    SyncUser {
        id: SyncUserId::generate(),
        associate_id: anna.id,
        login: Some(anna.login.clone()),
        name: None,
        mailbox: mailbox
            .mail
            .clone()
            .unwrap_or(mailbox.user_principal_name.clone()),
        mailbox_id: Some(mailbox.id.clone()),
        mail_system: "sandbox".into(),
        rank: Rank::MIN,
        diary,
        task,
        contact,
        created: jiff::Timestamp::now(),
        moved_from: None,
        resume: None,
    }
}
