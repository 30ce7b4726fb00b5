//! The dedicated To Do list and contact folder of a mailbox (default name `SuperOffice`):
//! found by name (after a restart too), created once, never twice. One caller per mailbox
//! looks or creates at a time; a create that may have reached Graph, or a 409 (another
//! client made the folder), is followed by looking again.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::wire::{self, Op};
use super::{GraphClient, json_of, maybe_done};
use crate::connector::http::Retry;
use crate::connector::model::Kind;
use crate::connector::{ConnectorError, MailboxRef};

/// Which dedicated container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    TaskList,
    ContactFolder,
}

impl Container {
    pub fn of(kind: Kind) -> Option<Container> {
        match kind {
            Kind::Task => Some(Container::TaskList),
            Kind::Contact => Some(Container::ContactFolder),
            Kind::Diary => None,
        }
    }

    fn collection(self) -> &'static str {
        match self {
            Container::TaskList => "todo/lists",
            Container::ContactFolder => "contactFolders",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Container::TaskList => "the To Do list",
            Container::ContactFolder => "the contact folder",
        }
    }
}

impl GraphClient {
    fn cache(
        &self,
        container: Container,
    ) -> &std::sync::Mutex<std::collections::HashMap<String, String>> {
        match container {
            Container::TaskList => &self.lists,
            Container::ContactFolder => &self.folders,
        }
    }

    fn cached(&self, container: Container, mailbox: &MailboxRef) -> Option<String> {
        self.cache(container)
            .lock()
            .ok()
            .and_then(|c| c.get(mailbox.key()).cloned())
    }

    fn remember(&self, container: Container, mailbox: &MailboxRef, id: &str) {
        if let Ok(mut c) = self.cache(container).lock() {
            c.insert(mailbox.key().to_string(), id.to_string());
        }
    }

    /// Forgets a container that Graph says is gone (the user deleted it).
    pub(super) fn forget(&self, container: Container, mailbox: &MailboxRef) {
        if let Ok(mut c) = self.cache(container).lock() {
            c.remove(mailbox.key());
        }
    }

    fn ensure_lock(
        &self,
        container: Container,
        mailbox: &MailboxRef,
    ) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{}\u{0}{:?}", mailbox.key(), container);
        match self.ensuring.lock() {
            Ok(mut locks) => locks.entry(key).or_default().clone(),
            // A poisoned map still serialises nothing wrongly: each caller gets its own lock,
            // and the create below looks again before it makes a second container.
            Err(_) => Arc::default(),
        }
    }

    /// The id of the dedicated container; `create`: made when missing (else `None`).
    pub(super) async fn container(
        &self,
        container: Container,
        mailbox: &MailboxRef,
        create: bool,
    ) -> Result<Option<String>, ConnectorError> {
        if let Some(id) = self.cached(container, mailbox) {
            return Ok(Some(id));
        }
        let lock = self.ensure_lock(container, mailbox);
        let _held = lock.lock().await;
        if let Some(id) = self.cached(container, mailbox) {
            return Ok(Some(id));
        }
        if let Some(id) = self.find_container(container, mailbox).await? {
            self.remember(container, mailbox, &id);
            return Ok(Some(id));
        }
        if !create {
            return Ok(None);
        }
        let name = self.container_name(container);
        let path = format!("{}/{}", Self::mailbox_path(mailbox), container.collection());
        let body = json!({ "displayName": name });
        let mut last = None;
        for attempt in 0..=self.options.backoff.retries {
            if attempt > 0 {
                if let Some(id) = self.find_container(container, mailbox).await? {
                    self.remember(container, mailbox, &id);
                    return Ok(Some(id));
                }
                if let Some(delay) = self.options.backoff.delay(attempt - 1) {
                    tokio::time::sleep(delay).await;
                }
            }
            let sent = self
                .write(
                    Method::POST,
                    mailbox,
                    &path,
                    wire::PREFER_IDS_UTC,
                    Some(&body),
                    Retry::Unsafe,
                    None,
                )
                .await;
            match sent {
                Ok(r) if r.status.is_success() => {
                    let made = json_of(&r, Op::Write, container.label())?;
                    let id = made["id"]
                        .as_str()
                        .ok_or_else(|| wire::malformed("a created container without id"))?;
                    tracing::info!(
                        mailbox = mailbox.key(),
                        container = container.label(),
                        "created the dedicated container"
                    );
                    self.remember(container, mailbox, id);
                    return Ok(Some(id.to_string()));
                }
                // Another client made it meanwhile (contact folder names are unique).
                Ok(r) if r.status == StatusCode::CONFLICT => {
                    last = Some(wire::classify(
                        r.status,
                        &r.body,
                        Op::Write,
                        container.label(),
                    ));
                }
                Ok(r) => {
                    return Err(wire::classify(
                        r.status,
                        &r.body,
                        Op::Write,
                        container.label(),
                    ));
                }
                Err(e) if maybe_done(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        if let Some(id) = self.find_container(container, mailbox).await? {
            self.remember(container, mailbox, &id);
            return Ok(Some(id));
        }
        Err(last.unwrap_or_else(|| wire::malformed("the container could not be made")))
    }

    fn container_name(&self, container: Container) -> &str {
        match container {
            Container::TaskList => &self.options.task_list_name,
            Container::ContactFolder => &self.options.contact_folder_name,
        }
    }

    /// Looks the container up by name. Of several with the name (To Do allows that), the one
    /// with the smallest id: the same one every time, in every process.
    async fn find_container(
        &self,
        container: Container,
        mailbox: &MailboxRef,
    ) -> Result<Option<String>, ConnectorError> {
        let name = self.container_name(container).to_string();
        let mut path = format!(
            "{}/{}?$top=100",
            Self::mailbox_path(mailbox),
            container.collection()
        );
        let mut found: Option<String> = None;
        for _ in 0..1_000 {
            let page = self
                .get_json(
                    mailbox,
                    &path,
                    wire::PREFER_IDS_UTC,
                    Op::Read,
                    container.label(),
                )
                .await?;
            for entry in page["value"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let matches = entry["displayName"]
                    .as_str()
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(name.trim()));
                if let (true, Some(id)) = (matches, entry["id"].as_str())
                    && found.as_deref().is_none_or(|f| id < f)
                {
                    found = Some(id.to_string());
                }
            }
            match page["@odata.nextLink"].as_str() {
                Some(next) => path = self.relative(next)?,
                None => return Ok(found),
            }
        }
        Err(wire::malformed("the container listing does not end"))
    }
}
