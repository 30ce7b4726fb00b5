//! Acting as a user in Outlook, and looking into mailboxes: the control API under
//! `/_sandbox/graph` and the same as Rust methods for in-process tests. A user's edits go
//! through the same code as the API's (so they bump change keys and show in delta), but are
//! not logged as requests and not limited.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::error::{GraphError, RequestIds, respond};
use super::extprops;
use super::store::Mailbox;
use super::wire::{self, Zone};
use super::{AppState, GraphStore};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(info))
        .route("/tokens", get(tokens))
        .route("/mailboxes", get(mailboxes))
        .route("/mailboxes/{mailbox}", get(mailbox))
        .route("/mailboxes/{mailbox}/expire-delta-tokens", post(expire))
        .route("/expire-delta-tokens", post(expire_all))
        .route("/users/{*rest}", any(act))
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("no mailbox {what}") })),
    )
        .into_response()
}

async fn info(State(state): State<AppState>) -> Json<Value> {
    let tenant = state.graph.tenant();
    Json(json!({
        "mailboxes": tenant.len(),
        "tokens_issued": state.graph.tokens_issued(),
        "tokens_active": state.graph.tokens_active(state.clock.now()),
    }))
}

async fn tokens(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "issued": state.graph.tokens_issued(),
        "active": state.graph.tokens_active(state.clock.now()),
    }))
}

async fn mailboxes(State(state): State<AppState>) -> Json<Value> {
    let tenant = state.graph.tenant();
    Json(Value::Array(
        tenant
            .users
            .iter()
            .map(|u| {
                json!({
                    "id": u.id,
                    "displayName": u.display_name,
                    "userPrincipalName": u.user_principal_name,
                    "mail": u.mail,
                })
            })
            .collect(),
    ))
}

async fn mailbox(State(state): State<AppState>, Path(mailbox): Path<String>) -> Response {
    match state.graph.mailbox_state(&mailbox) {
        Some(dump) => Json(dump).into_response(),
        None => not_found(&mailbox),
    }
}

async fn expire(State(state): State<AppState>, Path(mailbox): Path<String>) -> Response {
    match state.graph.expire_delta_tokens(&mailbox) {
        Some(generation) => {
            Json(json!({ "mailbox": mailbox, "generation": generation })).into_response()
        }
        None => not_found(&mailbox),
    }
}

async fn expire_all(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "mailboxes": state.graph.expire_all_delta_tokens() }))
}

/// Any `/users/...` request of the Graph API, done as the mailbox's user.
async fn act(State(state): State<AppState>, request: Request) -> Response {
    let now = state.clock.now();
    let (parts, body) = request.into_parts();
    let ids = RequestIds::of(&parts.headers);
    let Ok(body) = axum::body::to_bytes(body, super::api::MAX_BODY).await else {
        return respond(Err(GraphError::unreadable_body("the body")), &ids, now);
    };
    let base = state.urls.graph.as_str().trim_end_matches('/').to_string();
    let answer = state.graph.answer(
        parts.method.clone(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
        now,
        &base,
    );
    respond(answer, &ids, now)
}

fn dump(mb: &Mailbox) -> Value {
    let utc = Zone::utc();
    let events: Vec<Value> = mb
        .events
        .iter()
        .map(|e| {
            let mut map = e.render(&mb.user, &utc, super::body::BodyType::Html);
            map.insert(
                "singleValueExtendedProperties".into(),
                extprops::json(&e.extended),
            );
            Value::Object(map)
        })
        .collect();
    let lists: Vec<Value> = mb
        .lists
        .iter()
        .map(|l| {
            let mut list = l.render();
            list["tasks"] = Value::Array(
                l.tasks
                    .iter()
                    .map(|t| Value::Object(t.render(true)))
                    .collect(),
            );
            list
        })
        .collect();
    let folders: Vec<Value> = mb
        .folders
        .iter()
        .map(|f| {
            let mut folder = f.render();
            folder["contacts"] = Value::Array(
                f.contacts
                    .iter()
                    .map(|c| {
                        let mut map = c.render();
                        map.insert(
                            "singleValueExtendedProperties".into(),
                            extprops::json(&c.extended),
                        );
                        Value::Object(map)
                    })
                    .collect(),
            );
            folder
        })
        .collect();
    json!({
        "user": {
            "id": mb.user.id,
            "displayName": mb.user.display_name,
            "userPrincipalName": mb.user.user_principal_name,
            "mail": mb.user.mail,
            "proxyAddresses": mb.user.proxy_addresses,
            "timeZone": mb.user.time_zone,
        },
        "changeSequence": mb.current_seq(),
        "deltaTokenGeneration": mb.generation,
        "calendar": { "id": mb.calendar_id, "events": events },
        "transactionIds": mb.transactions,
        "todoLists": lists,
        "contactFolders": folders,
    })
}

impl GraphStore {
    fn with_mailbox<T>(&self, mailbox: &str, f: impl FnOnce(&mut Mailbox) -> T) -> Option<T> {
        let tenant = self.tenant();
        let index = tenant.resolve(mailbox)?;
        let mut guard = tenant.mailbox(index)?;
        Some(f(&mut guard))
    }

    /// A mailbox's whole state as JSON (events in UTC, with extended properties, tasks with
    /// linked resources, contacts by folder).
    pub fn mailbox_state(&self, mailbox: &str) -> Option<Value> {
        self.with_mailbox(mailbox, |mb| dump(mb))
    }

    /// Expires every delta (and paging) token of the mailbox: their next use gets 410
    /// `syncStateNotFound`. The new generation, or `None` for an unknown mailbox.
    pub fn expire_delta_tokens(&self, mailbox: &str) -> Option<u32> {
        self.with_mailbox(mailbox, |mb| {
            mb.generation = mb.generation.wrapping_add(1);
            mb.generation
        })
    }

    /// Expires the delta tokens of every mailbox; returns how many mailboxes there are.
    pub fn expire_all_delta_tokens(&self) -> usize {
        let tenant = self.tenant();
        for i in 0..tenant.len() {
            if let Some(mut mb) = tenant.mailbox(i) {
                mb.generation = mb.generation.wrapping_add(1);
            }
        }
        tenant.len()
    }

    /// The id of the mailbox's default To Do list ("Tasks").
    pub fn default_task_list(&self, mailbox: &str) -> Option<String> {
        self.with_mailbox(mailbox, |mb| mb.default_list_id())
            .flatten()
    }

    /// The id of the mailbox's default Contacts folder.
    pub fn default_contact_folder(&self, mailbox: &str) -> Option<String> {
        self.with_mailbox(mailbox, |mb| mb.default_folder_id())
    }

    /// Does what a user does in Outlook: `method` on a Graph path (`/users/{id}/events`...)
    /// with an optional JSON body, without a token, a log entry or a limit. The answer's
    /// body, if any.
    pub fn act(
        &self,
        now: Timestamp,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, GraphError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "Content-Type",
            axum::http::HeaderValue::from_static("application/json"),
        );
        let reply = self.answer(method, path, query, &headers, &bytes, now, "")?;
        Ok(reply.body.map(|mut b| {
            if let Some(map) = b.as_object_mut() {
                map.remove("@odata.context");
            }
            b
        }))
    }

    fn user_path(&self, mailbox: &str, rest: &str) -> Result<String, GraphError> {
        let id = self
            .resolve_mailbox(mailbox)
            .ok_or_else(|| GraphError::invalid_user(mailbox))?;
        Ok(format!("/users/{}/{rest}", wire::percent_encode(&id)))
    }

    fn required(answer: Result<Option<Value>, GraphError>) -> Result<Value, GraphError> {
        answer.map(|b| b.unwrap_or(Value::Null))
    }

    /// Creates an event as the user (a Graph event body).
    pub fn user_create_event(
        &self,
        now: Timestamp,
        mailbox: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let path = self.user_path(mailbox, "events")?;
        Self::required(self.act(now, Method::POST, &path, Some(body)))
    }

    /// Changes an event as the user (a Graph PATCH body).
    pub fn user_update_event(
        &self,
        now: Timestamp,
        mailbox: &str,
        id: &str,
        patch: &Value,
    ) -> Result<Value, GraphError> {
        let path = self.user_path(mailbox, &format!("events/{}", wire::percent_encode(id)))?;
        Self::required(self.act(now, Method::PATCH, &path, Some(patch)))
    }

    pub fn user_delete_event(
        &self,
        now: Timestamp,
        mailbox: &str,
        id: &str,
    ) -> Result<(), GraphError> {
        let path = self.user_path(mailbox, &format!("events/{}", wire::percent_encode(id)))?;
        self.act(now, Method::DELETE, &path, None).map(|_| ())
    }

    pub fn user_create_task(
        &self,
        now: Timestamp,
        mailbox: &str,
        list: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let path = self.user_path(
            mailbox,
            &format!("todo/lists/{}/tasks", wire::percent_encode(list)),
        )?;
        Self::required(self.act(now, Method::POST, &path, Some(body)))
    }

    pub fn user_update_task(
        &self,
        now: Timestamp,
        mailbox: &str,
        list: &str,
        id: &str,
        patch: &Value,
    ) -> Result<Value, GraphError> {
        let path = self.user_path(
            mailbox,
            &format!(
                "todo/lists/{}/tasks/{}",
                wire::percent_encode(list),
                wire::percent_encode(id)
            ),
        )?;
        Self::required(self.act(now, Method::PATCH, &path, Some(patch)))
    }

    pub fn user_delete_task(
        &self,
        now: Timestamp,
        mailbox: &str,
        list: &str,
        id: &str,
    ) -> Result<(), GraphError> {
        let path = self.user_path(
            mailbox,
            &format!(
                "todo/lists/{}/tasks/{}",
                wire::percent_encode(list),
                wire::percent_encode(id)
            ),
        )?;
        self.act(now, Method::DELETE, &path, None).map(|_| ())
    }

    /// Creates a contact as the user, in `folder` (the default Contacts folder when `None`).
    pub fn user_create_contact(
        &self,
        now: Timestamp,
        mailbox: &str,
        folder: Option<&str>,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let rest = match folder {
            Some(f) => format!("contactFolders/{}/contacts", wire::percent_encode(f)),
            None => "contacts".to_string(),
        };
        let path = self.user_path(mailbox, &rest)?;
        Self::required(self.act(now, Method::POST, &path, Some(body)))
    }

    pub fn user_update_contact(
        &self,
        now: Timestamp,
        mailbox: &str,
        id: &str,
        patch: &Value,
    ) -> Result<Value, GraphError> {
        let path = self.user_path(mailbox, &format!("contacts/{}", wire::percent_encode(id)))?;
        Self::required(self.act(now, Method::PATCH, &path, Some(patch)))
    }

    pub fn user_delete_contact(
        &self,
        now: Timestamp,
        mailbox: &str,
        id: &str,
    ) -> Result<(), GraphError> {
        let path = self.user_path(mailbox, &format!("contacts/{}", wire::percent_encode(id)))?;
        self.act(now, Method::DELETE, &path, None).map(|_| ())
    }
}
