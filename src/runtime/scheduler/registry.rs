//! The scheduler's side of the registry and the settings: what a registry change or a
//! SIGHUP means for the users of this rank.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{Reloader, Scheduler};
use crate::registry::{Registry, SyncUserId};
use crate::runtime::registry_watch::{Change, RegistryWatch};
use crate::runtime::work::Connectors;

impl Scheduler {
    /// Takes the rank's part of `registry`: who arrived by a move (and waits for its history),
    /// who left by one (and is handed over, or dropped when the new rank starts it fresh).
    pub(super) fn take_view(&mut self, registry: &Registry) {
        let new = registry.rank_view(self.rank);
        let was_here: BTreeSet<&SyncUserId> = self.view.users.iter().map(|u| &u.id).collect();
        for user in &registry.users {
            // Moved away while running, or while this daemon was stopped (its tree is here).
            if user.rank != self.rank
                && (was_here.contains(&user.id) || self.history.has_user(&user.id))
            {
                let hand_over = user.moved_from == Some(self.rank);
                self.leaving.insert(user.id.clone(), hand_over);
            }
        }
        for user in &new.users {
            if let Some(from) = user.moved_from
                && from != self.rank
                && !self.history.has_user(&user.id)
            {
                self.arriving.entry(user.id.clone()).or_insert(from);
            }
        }
        self.arriving
            .retain(|id, _| new.users.iter().any(|u| &u.id == id));
        self.view = new;
    }

    pub(super) fn reload(&mut self, watch: &mut RegistryWatch, reloader: &Reloader) -> bool {
        self.notifier.reloading();
        tracing::info!("SIGHUP: reloading settings and registry");
        let mut timers_changed = false;
        match crate::settings::load(&reloader.load) {
            Ok(loaded) => {
                let new = loaded.settings;
                if new.daemon.state_dir != self.settings.daemon.state_dir
                    || new.history != self.settings.history
                    || new.log.format != self.settings.log.format
                {
                    tracing::warn!(
                        "daemon.state_dir, [history] and log.format changed on disk but apply only after a restart"
                    );
                }
                if let Some(logging) = &reloader.logging
                    && let Err(e) = logging.set_level(&new.log.level)
                {
                    tracing::error!(error = %e, "log level not changed");
                }
                timers_changed = new.sync.interval != self.settings.sync.interval
                    || new.daemon.registry_poll_interval
                        != self.settings.daemon.registry_poll_interval;
                if new.sync.max_parallel_users != self.settings.sync.max_parallel_users {
                    // Work already waiting keeps the old semaphore; new work uses the new one.
                    self.permits =
                        Arc::new(Semaphore::new(new.sync.max_parallel_users.get() as usize));
                }
                if new.superoffice.is_some() != self.settings.superoffice.is_some()
                    || format!("{:?}", new.superoffice)
                        != format!("{:?}", self.settings.superoffice)
                    || format!("{:?}", new.mail_systems)
                        != format!("{:?}", self.settings.mail_systems)
                    || new.sync != self.settings.sync
                {
                    match Connectors::build(&new, Some(self.traffic.clone())) {
                        Ok(c) => self.connectors = Arc::new(c),
                        Err(e) => {
                            tracing::error!(error = %e, "the new connector settings cannot be used; the running connectors stay")
                        }
                    }
                }
                self.settings = Arc::new(new);
                // A configuration change may mend users that failed on it.
                self.health.release_failed();
                tracing::info!("settings reloaded");
            }
            Err(e) => tracing::error!("settings not reloaded; the running ones stay in force: {e}"),
        }
        if let Some(change) = watch.check(true) {
            self.apply(change, watch);
        }
        self.notifier.ready(&self.status_line());
        timers_changed
    }

    pub(super) fn apply(&mut self, change: Change, watch: &RegistryWatch) {
        let registry = match change {
            Change::Valid(registry) => registry,
            Change::Invalid(e) => {
                tracing::error!(
                    "registry refused, the last good one ({} users on this rank) stays in force: {e}",
                    self.view.users.len()
                );
                return;
            }
            Change::Vanished => {
                tracing::error!(
                    path = %watch.path().display(),
                    "the registry file is gone; the last good one ({} users on this rank) stays in force",
                    self.view.users.len()
                );
                return;
            }
        };
        let new = registry.rank_view(self.rank);
        let moves_away = self.view.users.iter().any(|u| {
            registry
                .users
                .iter()
                .any(|r| r.id == u.id && r.rank != self.rank)
        });
        if new == self.view && !moves_away {
            tracing::debug!("registry changed, this rank's users did not");
            return;
        }
        let before: BTreeMap<_, _> = self.view.users.iter().map(|u| (&u.id, u)).collect();
        let after: BTreeMap<_, _> = new.users.iter().map(|u| (&u.id, u)).collect();
        let added: BTreeSet<SyncUserId> = after
            .keys()
            .filter(|id| !before.contains_key(*id))
            .map(|id| (*id).clone())
            .collect();
        let removed = before.keys().filter(|id| !after.contains_key(*id)).count();
        let changed = after
            .iter()
            .filter(|(id, u)| before.get(*id).is_some_and(|b| b != *u))
            .count();
        tracing::info!(
            users = new.users.len(),
            added = added.len(),
            removed,
            changed,
            tombstones = new.tombstones.len(),
            "registry reloaded"
        );
        // A changed entry (options, mailbox) takes effect now, and is a reason to try its
        // failed or paused user again; so is a resume.
        let mut freed: BTreeSet<SyncUserId> = after
            .iter()
            .filter(|(id, u)| before.get(*id).is_some_and(|b| b != *u))
            .map(|(id, _)| (*id).clone())
            .collect();
        for id in &freed {
            self.health.release(id);
        }
        for user in &new.users {
            let Some(resume) = &user.resume else { continue };
            if self.resumes.get(&user.id) == Some(&resume.generation) {
                continue;
            }
            self.resumes.insert(user.id.clone(), resume.generation);
            self.health.release(&user.id);
            if resume.allow_deletes {
                for kind in user.enabled_kinds() {
                    self.allow_deletes.insert((user.id.clone(), kind));
                }
            }
            tracing::info!(user = %user.id, allow_deletes = resume.allow_deletes, "resumed by an operator");
            freed.insert(user.id.clone());
        }
        self.health.retain(&after.keys().copied().collect());
        self.take_view(&registry);
        self.dirty = true;
        self.notifier.status(&self.status_line());
        // New, changed and freed users and removals take effect now, not at the next tick.
        freed.extend(added);
        self.schedule(Some(&freed));
    }
}
