//! The units of work a rank daemon runs: a sync pass for one (user, kind), the purge of a
//! removed user's history, and the two halves of a rank move (hand the history over, take it
//! in). The scheduler starts them; each ends at a safe point.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::pass::{self, PassError, PassReport, PassSpec, Prefetched};
use super::round::{self, KindRound, Member};
use crate::connector::ConnectorError;
use crate::connector::graph::{GraphClient, GraphOptions};
use crate::connector::http::HttpObserver;
use crate::connector::model::Window;
use crate::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crate::engine::{DeleteGuard, GuardTripped, Policy};
use crate::history::{Handoff, History, HistoryError};
use crate::registry::{self, Kind, Rank, SyncUser, SyncUserId};
use crate::settings::{Settings, SuperOfficeAuth, SuperOfficeSettings};

/// What a unit of work ended with.
#[derive(Debug)]
pub enum Outcome {
    Pass {
        /// From the start of the pass (after its wait for a permit) to its end.
        elapsed: Duration,
        end: PassEnd,
    },
    /// What a round read, per kind.
    Round(Vec<(Kind, KindRound)>),
    Purged {
        existed: bool,
    },
    /// The history was handed to the new rank (`true`) or, the user starting afresh there,
    /// dropped (`false`).
    HandedOver(bool),
    TakenOver,
    /// A purge, hand-over or take-over failed; tried again at the next tick.
    Again(String),
    Cancelled,
}

/// How a pass ended.
#[derive(Debug)]
pub enum PassEnd {
    Synced {
        report: Box<PassReport>,
        /// The user's pairs of the kind after the pass.
        pairs: Option<u64>,
    },
    /// The delete guard stopped the pass.
    Paused(GuardTripped),
    /// A transient error: the user backs off; `after` is what the service asked for.
    Retry {
        reason: String,
        class: &'static str,
        after: Option<Duration>,
    },
    /// The user cannot be synced until something changes.
    Failed(String),
}

/// What a pass is asked to do.
#[derive(Debug)]
pub struct PassJob {
    pub user: SyncUser,
    pub kind: Kind,
    pub check_crm_ids: bool,
    /// Resumed with `--allow-deletes`: the guard lets this pass through.
    pub allow_deletes: bool,
    pub prefetched: Prefetched,
}

/// The clients of the configured services.
pub struct Connectors {
    pub crm: Option<SuperOfficeClient>,
    pub mailboxes: BTreeMap<String, GraphClient>,
    /// The CRM tenant as stamps name it.
    pub tenant: String,
}

/// How stamps name a SuperOffice installation: the context identifier online, the web
/// application's host (and port) onsite.
pub fn tenant_of(settings: &SuperOfficeSettings) -> String {
    match &settings.auth {
        SuperOfficeAuth::SystemUser {
            context_identifier, ..
        } => context_identifier.clone(),
        SuperOfficeAuth::Basic { .. } => {
            let host = settings.base_url.host_str().unwrap_or("superoffice");
            match settings.base_url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            }
        }
    }
}

impl Connectors {
    /// The clients of `settings`; `observer` hears their HTTP traffic (for metrics and status).
    pub fn build(
        settings: &Settings,
        observer: Option<Arc<dyn HttpObserver>>,
    ) -> Result<Connectors, ConnectorError> {
        let crm = settings
            .superoffice
            .as_ref()
            .map(|so| {
                let options = SuperOfficeOptions {
                    observer: observer.clone(),
                    ..SuperOfficeOptions::default()
                };
                SuperOfficeClient::new(so, options)
            })
            .transpose()?;
        let mut mailboxes = BTreeMap::new();
        for (name, ms) in &settings.mail_systems {
            let options = GraphOptions {
                task_list_name: settings.sync.task_list.clone(),
                contact_folder_name: settings.sync.contact_folder.clone(),
                observer: observer.clone(),
                ..GraphOptions::default()
            };
            mailboxes.insert(name.clone(), GraphClient::new(ms, options)?);
        }
        Ok(Connectors {
            tenant: settings
                .superoffice
                .as_ref()
                .map(tenant_of)
                .unwrap_or_default(),
            crm,
            mailboxes,
        })
    }

    pub fn prune(&self) {
        for client in self.mailboxes.values() {
            client.prune();
        }
    }
}

/// What every unit needs: read-only, cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub connectors: Arc<Connectors>,
    pub history: History,
    pub state_dir: PathBuf,
    pub rank: Rank,
}

impl Context {
    /// Why this user cannot be synced with the current settings, if it cannot.
    fn configuration_problem(&self, user: &SyncUser) -> Option<String> {
        if !self.connectors.mailboxes.contains_key(&user.mail_system) {
            return Some(format!(
                "mail system {:?} is not configured: add [mail_systems.{}] to the configuration",
                user.mail_system, user.mail_system
            ));
        }
        if self.connectors.crm.is_none() {
            return Some("SuperOffice is not configured: add a [superoffice] section".to_string());
        }
        None
    }

    fn policy(&self, allow_mass_delete: bool) -> Policy {
        let sync = &self.settings.sync;
        Policy {
            conflict: sync.conflict_policy,
            delete_wins: sync.delete_wins,
            guard: DeleteGuard {
                max_share: sync.delete_guard_share,
                min_deletes: sync.delete_guard_min,
            },
            allow_mass_delete,
        }
    }

    pub fn window(&self, now: jiff::Timestamp) -> Window {
        let day = jiff::SignedDuration::from_hours(24);
        let sync = &self.settings.sync;
        Window {
            start: now - day * i32::try_from(sync.window_past_days).unwrap_or(i32::MAX),
            end: now + day * i32::try_from(sync.window_future_days).unwrap_or(i32::MAX),
        }
    }
}

/// The rank-wide reads of a tick, for the `members` of each kind; abandoned (it only reads)
/// when the daemon stops.
pub async fn round(
    context: Context,
    members: BTreeMap<Kind, Vec<Member>>,
    stop: CancellationToken,
) -> Outcome {
    let window = context.window(jiff::Timestamp::now());
    let reads = futures::future::join_all(members.into_iter().map(|(kind, members)| {
        let (context, window) = (&context, &window);
        async move { (kind, round::read(context, kind, members, window).await) }
    }));
    tokio::select! {
        biased;
        _ = stop.cancelled() => Outcome::Cancelled,
        rounds = reads => Outcome::Round(rounds),
    }
}

/// One pass for (user, kind). It waits for a parallelism permit, gives up if the daemon is
/// stopping before it starts, and otherwise runs to its end (the pass itself commits at safe
/// points only).
pub async fn pass(
    context: Context,
    job: PassJob,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
) -> Outcome {
    let _permit = tokio::select! {
        biased;
        _ = stop.cancelled() => return Outcome::Cancelled,
        permit = permits.acquire_owned() => match permit {
            Ok(permit) => permit,
            Err(_) => return Outcome::Cancelled,
        },
    };
    let started = tokio::time::Instant::now();
    let end = run_pass(&context, job).await;
    Outcome::Pass {
        elapsed: started.elapsed(),
        end,
    }
}

async fn run_pass(context: &Context, job: PassJob) -> PassEnd {
    let PassJob {
        user,
        kind,
        check_crm_ids,
        allow_deletes,
        prefetched,
    } = job;
    if let Some(problem) = context.configuration_problem(&user) {
        return PassEnd::Failed(problem);
    }
    let (Some(crm), Some(mailbox)) = (
        context.connectors.crm.as_ref(),
        context.connectors.mailboxes.get(&user.mail_system),
    ) else {
        return PassEnd::Failed("the services are not configured".into());
    };
    let history = match context.history.user(&user.id) {
        Ok(h) => h,
        Err(e) => return retry(e.to_string(), "history", None),
    };
    let now = jiff::Timestamp::now();
    let spec = PassSpec {
        user: &user,
        kind,
        window: context.window(now),
        tenant: &context.connectors.tenant,
        policy: context.policy(allow_deletes),
        now,
        check_crm_ids,
    };
    match pass::run(mailbox, crm, &history, &spec, prefetched).await {
        Ok(report) => match report.guard {
            Some(guard) => PassEnd::Paused(guard),
            None => PassEnd::Synced {
                pairs: history.pair_count(kind).ok(),
                report: Box::new(report),
            },
        },
        Err(PassError::Connector(ConnectorError::User { what, .. })) => PassEnd::Failed(what),
        // The service as a whole refuses (credentials, tenant): not this user's fault, and it
        // mends without a registry change, so the user backs off rather than fails.
        Err(PassError::Connector(e @ ConnectorError::Service { .. })) => {
            retry(e.to_string(), "service", None)
        }
        Err(PassError::Connector(ConnectorError::Transient {
            service,
            what,
            retry_after,
        })) => retry(format!("{service}: {what}"), "transient", retry_after),
        Err(PassError::History(e @ HistoryError::Unreadable { .. })) => {
            // Never taken for empty, never a pass that fails for ever: set aside, and the
            // next pass rebuilds the pairs from the stamps.
            match context.history.set_aside_user(&user.id, now) {
                Ok(kept) => {
                    tracing::warn!(user = %user.id, %kind, error = %e, kept_as = %kept, "history unreadable: set aside; the next pass rebuilds it from the stamps");
                    retry(format!("{e} (kept as {kept})"), "history", None)
                }
                Err(aside) => retry(
                    format!("{e}; setting it aside failed: {aside}"),
                    "history",
                    None,
                ),
            }
        }
        Err(e @ PassError::History(_)) => retry(e.to_string(), "history", None),
        Err(e) => retry(e.to_string(), "transient", None),
    }
}

fn retry(reason: String, class: &'static str, after: Option<Duration>) -> PassEnd {
    PassEnd::Retry {
        reason,
        class,
        after,
    }
}

/// Deletes a removed user's history and leaves the note the removing command waits for.
pub async fn purge(context: Context, user: SyncUserId) -> Outcome {
    let history = context.history.clone();
    let id = user.clone();
    let existed = match tokio::task::spawn_blocking(move || history.drop_user(&id)).await {
        Ok(Ok(existed)) => existed,
        Ok(Err(e)) => return Outcome::Again(e.to_string()),
        Err(e) => return Outcome::Again(format!("history purge task failed: {e}")),
    };
    if let Err(e) = context.history.flush().await {
        return Outcome::Again(e.to_string());
    }
    // A hand-over file of the user would be its history too.
    let _ = std::fs::remove_file(registry::handoff_path(&context.state_dir, &user));
    let note = registry::dropped_path(&context.state_dir, context.rank, &user);
    let written = note
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::write(&note, jiff::Timestamp::now().to_string()));
    if let Err(e) = written {
        tracing::warn!(user = %user, error = %e, "history deleted, but the note for the removing command could not be written");
    }
    Outcome::Purged { existed }
}

/// A user moved to another rank: its history goes to `STATE_DIR/handoff/` (or nowhere, when
/// the move started the user afresh: a hand-over file nobody takes in would be a stale
/// history waiting to be imported) and leaves this rank's database. Started only when no pass
/// of the user is running.
pub async fn hand_over(context: Context, user: SyncUserId, hand_over: bool) -> Outcome {
    if !hand_over {
        return match context.history.drop_user(&user) {
            Ok(_) => match context.history.flush().await {
                Ok(_) => Outcome::HandedOver(false),
                Err(e) => Outcome::Again(e.to_string()),
            },
            Err(e) => Outcome::Again(e.to_string()),
        };
    }
    let handoff = match context.history.export_user(&user) {
        Ok(h) => h,
        Err(e) => return Outcome::Again(e.to_string()),
    };
    let path = registry::handoff_path(&context.state_dir, &user);
    let written = path
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .map_err(|e| e.to_string())
        .and_then(|_| handoff.write(&path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return Outcome::Again(e);
    }
    if let Err(e) = context.history.drop_user(&user) {
        return Outcome::Again(e.to_string());
    }
    if let Err(e) = context.history.flush().await {
        return Outcome::Again(e.to_string());
    }
    Outcome::HandedOver(true)
}

/// A user moved here: its history is taken in from `STATE_DIR/handoff/` before its first pass.
pub async fn take_over(context: Context, user: SyncUserId) -> Outcome {
    let path = registry::handoff_path(&context.state_dir, &user);
    let handoff = match Handoff::read(&path) {
        Ok(h) => h,
        Err(e) => return Outcome::Again(e.to_string()),
    };
    if let Err(e) = context.history.import_user(&handoff).await {
        return Outcome::Again(e.to_string());
    }
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(user = %user, error = %e, "history taken over; its hand-over file could not be removed");
    }
    Outcome::TakenOver
}
