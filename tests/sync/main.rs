//! End-to-end sync passes through the real connectors against the sandbox, with real history
//! on disk: initial sync, updates, deletes and conflicts both ways, per kind; all-day items and
//! daylight-saving changes; lost history and rank hand-over without duplicates.

#[path = "../common/mod.rs"]
mod common;

mod edits;
mod history_loss;
mod kinds;
mod races;
mod series;

use std::collections::BTreeMap;
use std::time::Duration;

use crmsync::connector::graph::{GraphClient, GraphOptions};
use crmsync::connector::model::{CrmId, Item, Kind, MailboxItemId, Observed, Window};
use crmsync::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crmsync::connector::{CrmConnector, MailboxConnector, MailboxRef};
use crmsync::engine::Policy;
use crmsync::history::{History, HistoryOptions};
use crmsync::limits::Backoff;
use crmsync::registry::{SyncUser, SyncUserId};
use crmsync::runtime::pass::{self, PassReport, PassSpec};
use crmsync::sandbox::{Sandbox, SandboxOptions, Scenario};
use crmsync::settings::{MailSystemKind, MailSystemSettings, Secret};

/// A sandbox, both clients, a rank's history on disk and one sync user (ANNA of the small
/// scenario, associate 101, linked to her mailbox).
pub struct World {
    pub sandbox: Sandbox,
    pub graph: GraphClient,
    pub crm: SuperOfficeClient,
    pub dir: tempfile::TempDir,
    pub history: History,
    pub user: SyncUser,
    pub tenant: String,
    pub policy: Policy,
    /// Passes run the CRM id safety net.
    pub check_crm_ids: bool,
}

pub fn history_options() -> HistoryOptions {
    HistoryOptions {
        cache_capacity_bytes: 8 << 20,
        flush_interval: Duration::from_millis(100),
    }
}

fn backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
        retries: 4,
    }
}

impl World {
    pub async fn new() -> World {
        World::with_scenario(Scenario::small(jiff::Timestamp::now())).await
    }

    pub async fn with_scenario(scenario: Scenario) -> World {
        let sandbox = Sandbox::start(SandboxOptions::local(scenario))
            .await
            .expect("the sandbox starts");
        let state = sandbox.state();
        let c = sandbox.credentials();
        let graph = GraphClient::new(
            &MailSystemSettings {
                name: "sandbox".into(),
                kind: MailSystemKind::Graph,
                tenant_id: c.graph_tenant_id.clone(),
                client_id: c.graph_client_id.clone(),
                client_secret: Secret::new(c.graph_client_secret.clone()),
                base_url: sandbox.urls().graph.clone(),
                authority_url: sandbox.urls().authority.clone(),
            },
            GraphOptions {
                backoff: backoff(),
                delta_page_size: 5,
                ..GraphOptions::default()
            },
        )
        .expect("a Graph client");
        let crm = SuperOfficeClient::new(
            &common::superoffice::system_user_settings(state),
            SuperOfficeOptions {
                backoff: backoff(),
                page_size: 7,
                ..common::superoffice::client_options(state)
            },
        )
        .expect("a SuperOffice client");
        let user = common::scenario::anna(state, true, true, true);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let history = History::open(dir.path(), &history_options())
            .expect("history")
            .history;
        World {
            tenant: state.scenario().superoffice.context_identifier.clone(),
            sandbox,
            graph,
            crm,
            dir,
            history,
            user,
            policy: Policy::default(),
            check_crm_ids: true,
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.sandbox.state().clock.now()
    }

    pub fn window(&self) -> Window {
        let now = self.now();
        Window {
            start: now - jiff::SignedDuration::from_hours(24 * 30),
            end: now + jiff::SignedDuration::from_hours(24 * 120),
        }
    }

    pub fn mailbox(&self) -> MailboxRef {
        MailboxRef {
            address: self.user.mailbox.clone(),
            id: self.user.mailbox_id.clone(),
        }
    }

    /// One pass for `kind`.
    pub async fn pass(&self, kind: Kind) -> PassReport {
        self.try_pass(kind)
            .await
            .unwrap_or_else(|e| panic!("{kind} pass failed: {e}"))
    }

    /// One pass for `kind`, which may fail.
    pub async fn try_pass(&self, kind: Kind) -> Result<PassReport, pass::PassError> {
        let spec = PassSpec {
            user: &self.user,
            kind,
            window: self.window(),
            tenant: &self.tenant,
            policy: self.policy,
            now: self.now(),
            check_crm_ids: self.check_crm_ids,
        };
        let history = self
            .history
            .user(&self.user.id)
            .expect("the user's history");
        pass::run(
            &self.graph,
            &self.crm,
            &history,
            &spec,
            pass::Prefetched::default(),
        )
        .await
    }

    /// Passes until one writes nothing (at most `limit`); the reports.
    pub async fn settle(&self, kind: Kind) -> Vec<PassReport> {
        let mut reports = Vec::new();
        for _ in 0..4 {
            let report = self.pass(kind).await;
            let quiet = report.writes() == 0 && report.linked == 0;
            reports.push(report);
            if quiet {
                return reports;
            }
        }
        panic!("{kind} did not settle in 4 passes: {reports:#?}");
    }

    /// Every CRM item of the user's kind inside the window, as it is now.
    pub async fn crm_items(&self, kind: Kind) -> BTreeMap<CrmId, Observed<CrmId>> {
        let ids = self
            .crm
            .ids_in_window(&[self.user.associate_id], kind, &self.window())
            .await
            .expect("CRM ids");
        let mut items = BTreeMap::new();
        for id in ids
            .get(&self.user.associate_id)
            .cloned()
            .unwrap_or_default()
        {
            let item = if kind == Kind::Contact {
                self.crm.persons(&[id]).await.expect("persons").pop()
            } else {
                self.crm.get(kind, id).await.expect("a CRM item")
            };
            if let Some(item) = item {
                items.insert(id, item);
            }
        }
        items
    }

    /// Every mailbox item of the kind (the window's events, the dedicated list or folder).
    pub async fn mailbox_items(&self, kind: Kind) -> Vec<Observed<MailboxItemId>> {
        let changes = self
            .graph
            .changes(&self.mailbox(), kind, None, &self.window())
            .await
            .expect("a full mailbox round");
        changes
            .changes
            .into_iter()
            .filter_map(|c| match c {
                crmsync::connector::model::Change::Upsert(o) => Some(*o),
                crmsync::connector::model::Change::Removed(_) => None,
            })
            .collect()
    }

    /// Both sides hold the same items, each CRM item exactly once in the mailbox (by stamp),
    /// every mailbox item of diary and task kinds stamped (no orphan, no duplicate).
    pub async fn assert_converged(&self, kind: Kind) {
        let crm = self.crm_items(kind).await;
        let mailbox = self.mailbox_items(kind).await;
        let mut by_stamp: BTreeMap<CrmId, Vec<&Observed<MailboxItemId>>> = BTreeMap::new();
        for item in &mailbox {
            match &item.stamp {
                Some(s) if s.tenant == self.tenant && s.kind == kind => {
                    by_stamp.entry(s.crm_id).or_default().push(item)
                }
                _ if kind == Kind::Contact => {}
                _ => panic!("{kind}: an unstamped mailbox item was not synced: {item:#?}"),
            }
        }
        for (id, copies) in &by_stamp {
            assert_eq!(
                copies.len(),
                1,
                "{kind}: CRM item {id} is in the mailbox {} times",
                copies.len()
            );
        }
        for (id, crm_item) in &crm {
            let Some(copies) = by_stamp.get(id) else {
                panic!("{kind}: CRM item {id} is not in the mailbox: {crm_item:#?}");
            };
            assert_eq!(
                comparable(&copies[0].item),
                comparable(&crm_item.item),
                "{kind}: CRM item {id} and its mailbox copy differ"
            );
        }
        for id in by_stamp.keys() {
            // A stamped copy of an item the CRM no longer has in the window would be a leftover.
            assert!(
                crm.contains_key(id) || self.crm.get(kind, *id).await.expect("get").is_some(),
                "{kind}: the mailbox holds a copy of CRM item {id}, which is gone"
            );
        }
    }
}

/// What both sides hold of an item (see `Item::shared_form`).
pub fn comparable(item: &Item) -> Item {
    item.shared_form()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_sync_converges_both_ways_for_every_kind_and_a_second_pass_writes_nothing() {
    let world = World::new().await;
    for kind in [Kind::Diary, Kind::Task, Kind::Contact] {
        let reports = world.settle(kind).await;
        let first = &reports[0];
        assert!(first.created_in_mailbox > 0, "{kind}: {first:#?}");
        // The mailbox's own tasks live in other lists (only the dedicated list syncs), and its
        // contacts never flow to the CRM: only diary items go both ways from the start.
        if kind == Kind::Diary {
            assert!(first.created_in_crm > 0, "{kind}: {first:#?}");
        }
        assert!(first.quarantined.is_empty(), "{kind}: {first:#?}");
        assert_eq!(
            reports.len(),
            2,
            "{kind}: one pass does the work: {reports:#?}"
        );
        world.assert_converged(kind).await;
    }
}
