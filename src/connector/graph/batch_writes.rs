//! A run of writes for one mailbox in `$batch` requests: the reads a write needs first (the
//! item as it is, for PATCHes that keep the user's fields; the stamps of tasks and contacts
//! about to be created) in one pass of batches, then the writes in another. Creates of tasks
//! and contacts whose batch item failed in a way that may have reached Graph go through the
//! single create, which looks the stamp up again before it sends anything.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::batch::{BatchItem, BatchReply, reply_error};
use super::delta::{self, item_path};
use super::folders::Container;
use super::wire::{self, Op};
use super::writes::{self, Write, WriteOutcome, transaction_id, written};
use super::{GraphClient, map, update};
use crate::connector::http::Retry;
use crate::connector::model::{Item, Kind, Stamp};
use crate::connector::{ConnectorError, Deleted, MailboxRef, Service};

/// What the second pass does for one write.
enum Plan {
    /// Answered already.
    Done(Result<WriteOutcome, ConnectorError>),
    /// A batch item; `fallback`: a failed task or contact create that goes the single way.
    Send {
        item: BatchItem,
        kind: Kind,
        fallback: bool,
    },
    /// Not batched (a stamp on a task): the single call.
    Single,
}

fn get(mailbox: &MailboxRef, url: String, kind: Kind) -> BatchItem {
    BatchItem {
        mailbox: mailbox.clone(),
        method: Method::GET,
        url,
        prefer: Some(delta::prefer(kind, None)),
        body: None,
        retry: Retry::Safe,
        if_match: None,
    }
}

fn send(
    mailbox: &MailboxRef,
    method: Method,
    url: String,
    kind: Kind,
    body: Option<Value>,
    retry: Retry,
) -> BatchItem {
    BatchItem {
        mailbox: mailbox.clone(),
        method,
        url,
        prefer: Some(delta::prefer(kind, None)),
        body,
        retry,
        if_match: None,
    }
}

impl GraphClient {
    /// Applies a run of writes to one mailbox with as few round trips as the batches allow;
    /// each write gets its own answer, as the single calls of [`MailboxConnector`] give it.
    ///
    /// [`MailboxConnector`]: crate::connector::MailboxConnector
    pub async fn write_batch(
        &self,
        mailbox: &MailboxRef,
        writes: &[Write],
    ) -> Vec<Result<WriteOutcome, ConnectorError>> {
        let list = if writes.iter().any(|w| write_kind(w) == Kind::Task) {
            self.container(
                Container::TaskList,
                mailbox,
                writes.iter().any(|w| {
                    matches!(
                        w,
                        Write::Create {
                            item: Item::Task(_),
                            ..
                        }
                    )
                }),
            )
            .await
        } else {
            Ok(None)
        };
        let folder = if writes.iter().any(|w| {
            matches!(
                w,
                Write::Create {
                    item: Item::Contact(_),
                    ..
                }
            )
        }) {
            self.container(Container::ContactFolder, mailbox, true)
                .await
        } else {
            Ok(None)
        };
        let (list, folder) = match (list, folder) {
            (Ok(l), Ok(f)) => (l, f),
            (Err(e), _) | (_, Err(e)) => {
                let what = e.to_string();
                return writes
                    .iter()
                    .map(|_| Err(wire::malformed(format!("the list or folder: {what}"))))
                    .collect();
            }
        };

        // First pass: what the writes need to know.
        let task_stamps: HashSet<Stamp> = match &list {
            Some(l)
                if writes.iter().any(|w| {
                    matches!(
                        w,
                        Write::Create {
                            item: Item::Task(_),
                            ..
                        }
                    )
                }) =>
            {
                match self.task_stamps(mailbox, l).await {
                    Ok(s) => s,
                    Err(e) => {
                        let what = e.to_string();
                        return writes
                            .iter()
                            .map(|_| Err(wire::malformed(what.clone())))
                            .collect();
                    }
                }
            }
            _ => HashSet::new(),
        };
        let mut reads = Vec::new();
        let mut read_of = vec![None; writes.len()];
        for (i, w) in writes.iter().enumerate() {
            let read = match w {
                Write::Update {
                    id,
                    item: Item::Diary(_),
                    ..
                } => Some(get(
                    mailbox,
                    format!(
                        "{}?{}",
                        item_path(mailbox, Kind::Diary, &id.0, false),
                        wire::query(&[("$expand", &map::expand_properties())])
                    ),
                    Kind::Diary,
                )),
                Write::Update {
                    id,
                    item: Item::Task(_),
                    ..
                } => list.as_ref().map(|l| {
                    get(
                        mailbox,
                        GraphClient::task_path(mailbox, l, Some(&id.0)),
                        Kind::Task,
                    )
                }),
                Write::Create {
                    item: Item::Contact(_),
                    stamp,
                } => folder.as_ref().map(|f| {
                    get(
                        mailbox,
                        format!(
                            "{}/contactFolders/{}/contacts?{}",
                            GraphClient::mailbox_path(mailbox),
                            wire::segment(f),
                            wire::query(&[
                                ("$filter", &map::stamp_filter(stamp)),
                                ("$expand", &map::expand_properties())
                            ])
                        ),
                        Kind::Contact,
                    )
                }),
                _ => None,
            };
            if let Some(r) = read {
                read_of[i] = Some(reads.len());
                reads.push(r);
            }
        }
        let mut read_replies: Vec<Option<Result<BatchReply, ConnectorError>>> =
            self.batch(reads).await.into_iter().map(Some).collect();

        // Second pass: the writes.
        let user = GraphClient::mailbox_path(mailbox);
        let mut plans = Vec::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            let read = read_of[i].and_then(|r| read_replies.get_mut(r).and_then(Option::take));
            plans.push(self.plan(
                mailbox,
                &user,
                w,
                read,
                list.as_deref(),
                folder.as_deref(),
                &task_stamps,
            ));
        }
        let mut items = Vec::new();
        let mut sent_as = vec![None; plans.len()];
        for (i, p) in plans.iter_mut().enumerate() {
            if let Plan::Send { item, .. } = p {
                sent_as[i] = Some(items.len());
                items.push(item.clone());
            }
        }
        let mut replies: Vec<Option<Result<BatchReply, ConnectorError>>> =
            self.batch(items).await.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(writes.len());
        for (i, (w, plan)) in writes.iter().zip(plans).enumerate() {
            let reply = sent_as[i].and_then(|s| replies.get_mut(s).and_then(Option::take));
            let result = match plan {
                Plan::Done(r) => r,
                Plan::Single => self.single(mailbox, w).await,
                Plan::Send { kind, fallback, .. } => match reply {
                    Some(Ok(r)) if r.status.is_success() || r.status == StatusCode::NO_CONTENT => {
                        if matches!(w, Write::Delete { .. }) {
                            Ok(WriteOutcome::Deleted(Deleted::Deleted))
                        } else {
                            written(&r.body, kind).map(|w| WriteOutcome::Written(Box::new(w)))
                        }
                    }
                    Some(Ok(r))
                        if matches!(w, Write::Delete { .. })
                            && r.status == StatusCode::NOT_FOUND =>
                    {
                        match reply_error(&r, Op::Write, "item") {
                            ConnectorError::Item { .. } => {
                                Ok(WriteOutcome::Deleted(Deleted::AlreadyGone))
                            }
                            e => Err(e),
                        }
                    }
                    // Changed since `expected`, or by this very PATCH sent twice: the
                    // single update reads the item and tells the two apart.
                    Some(Ok(r))
                        if matches!(w, Write::Update { .. })
                            && r.status == StatusCode::PRECONDITION_FAILED =>
                    {
                        self.single(mailbox, w).await
                    }
                    Some(Ok(r)) if fallback && r.status.is_server_error() => {
                        self.single(mailbox, w).await
                    }
                    Some(Ok(r)) => Err(reply_error(&r, Op::Write, kind.as_str())),
                    Some(Err(ConnectorError::Transient { .. })) if fallback => {
                        self.single(mailbox, w).await
                    }
                    Some(Err(e)) => Err(e),
                    None => self.single(mailbox, w).await,
                },
            };
            out.push(result);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        mailbox: &MailboxRef,
        user: &str,
        w: &Write,
        read: Option<Result<BatchReply, ConnectorError>>,
        list: Option<&str>,
        folder: Option<&str>,
        task_stamps: &HashSet<Stamp>,
    ) -> Plan {
        // A series is several requests in order (master, then occurrences): the single way.
        if let Write::Create {
            item: Item::Diary(d),
            ..
        }
        | Write::Update {
            item: Item::Diary(d),
            ..
        } = w
            && d.series.is_some()
        {
            return Plan::Single;
        }
        match w {
            Write::Create {
                item: Item::Diary(d),
                stamp,
            } => Plan::Send {
                item: send(
                    mailbox,
                    Method::POST,
                    format!("{user}/events"),
                    Kind::Diary,
                    Some(map::event_create(d, stamp, &transaction_id(mailbox, stamp))),
                    Retry::Safe,
                ),
                kind: Kind::Diary,
                fallback: false,
            },
            Write::Create {
                item: Item::Task(t),
                stamp,
            } => match list {
                // Made already (a run sent again): the single call finds and answers it.
                Some(_) if task_stamps.contains(stamp) => Plan::Single,
                Some(l) => Plan::Send {
                    item: send(
                        mailbox,
                        Method::POST,
                        GraphClient::task_path(mailbox, l, None),
                        Kind::Task,
                        Some(map::task_create(
                            t,
                            map::linked_resource(stamp, self.crm_link(stamp).as_deref()),
                        )),
                        Retry::Unsafe,
                    ),
                    kind: Kind::Task,
                    fallback: true,
                },
                None => Plan::Single,
            },
            Write::Create {
                item: Item::Contact(c),
                stamp,
            } => match (folder, read) {
                (Some(f), Some(Ok(r)))
                    if r.status.is_success()
                        && r.body["value"].as_array().is_some_and(Vec::is_empty) =>
                {
                    Plan::Send {
                        item: send(
                            mailbox,
                            Method::POST,
                            format!("{user}/contactFolders/{}/contacts", wire::segment(f)),
                            Kind::Contact,
                            Some(map::contact_create(c, stamp)),
                            Retry::Unsafe,
                        ),
                        kind: Kind::Contact,
                        fallback: true,
                    }
                }
                _ => Plan::Single,
            },
            Write::Update { id, item, expected } => {
                let kind = item.kind();
                let path = match (kind, list) {
                    (Kind::Task, Some(l)) => GraphClient::task_path(mailbox, l, Some(&id.0)),
                    (Kind::Task, None) => return Plan::Single,
                    (k, _) => item_path(mailbox, k, &id.0, false),
                };
                let patch = match (item, read) {
                    (Item::Contact(c), _) => Some(Value::Object(map::contact_fields(c))),
                    (_, Some(Ok(r))) if r.status.is_success() => {
                        let patch = match item {
                            Item::Diary(d) if r.body["isOrganizer"].as_bool() != Some(false) => {
                                map::event_patch(&r.body, d)
                            }
                            Item::Task(t) => map::task_patch(&r.body, t),
                            _ => return Plan::Single,
                        };
                        match patch {
                            Some(_) if update::moved_on(&r.body, kind, expected.as_ref()) => {
                                return Plan::Done(Err(ConnectorError::Conflict {
                                    service: Service::Graph,
                                    item: id.0.clone(),
                                }));
                            }
                            Some(p) => Some(p),
                            None => {
                                return Plan::Done(
                                    written(&r.body, kind)
                                        .map(|w| WriteOutcome::Written(Box::new(w))),
                                );
                            }
                        }
                    }
                    (_, Some(Ok(r))) => return Plan::Done(Err(reply_error(&r, Op::Write, &id.0))),
                    (_, Some(Err(e))) => return Plan::Done(Err(e)),
                    _ => return Plan::Single,
                };
                let mut item = send(mailbox, Method::PATCH, path, kind, patch, Retry::Safe);
                item.if_match = expected.as_ref().and_then(update::if_match);
                Plan::Send {
                    item,
                    kind,
                    fallback: false,
                }
            }
            Write::Delete { kind, id } => {
                let path = match (kind, list) {
                    (Kind::Task, Some(l)) => GraphClient::task_path(mailbox, l, Some(&id.0)),
                    (Kind::Task, None) => return Plan::Single,
                    (k, _) => item_path(mailbox, *k, &id.0, false),
                };
                Plan::Send {
                    item: send(mailbox, Method::DELETE, path, *kind, None, Retry::Safe),
                    kind: *kind,
                    fallback: false,
                }
            }
            Write::SetStamp { kind, id, stamp } if *kind != Kind::Task => Plan::Send {
                item: send(
                    mailbox,
                    Method::PATCH,
                    item_path(mailbox, *kind, &id.0, false),
                    *kind,
                    Some(
                        json!({"singleValueExtendedProperties": [{"id": map::STAMP_PROPERTY, "value": stamp.encode()}]}),
                    ),
                    Retry::Safe,
                ),
                kind: *kind,
                fallback: false,
            },
            Write::SetStamp { .. } => Plan::Single,
        }
    }

    /// One write the single way.
    async fn single(
        &self,
        mailbox: &MailboxRef,
        w: &Write,
    ) -> Result<WriteOutcome, ConnectorError> {
        match w {
            Write::Create { item, stamp } => writes::create(self, mailbox, item, stamp)
                .await
                .map(|w| WriteOutcome::Written(Box::new(w))),
            Write::Update { id, item, expected } => {
                update::update(self, mailbox, id, item, expected.as_ref())
                    .await
                    .map(|w| WriteOutcome::Written(Box::new(w)))
            }
            Write::Delete { kind, id } => writes::delete(self, mailbox, *kind, id)
                .await
                .map(WriteOutcome::Deleted),
            Write::SetStamp { kind, id, stamp } => {
                writes::set_stamp(self, mailbox, *kind, id, stamp)
                    .await
                    .map(|w| WriteOutcome::Written(Box::new(w)))
            }
        }
    }
}

fn write_kind(w: &Write) -> Kind {
    match w {
        Write::Create { item, .. } | Write::Update { item, .. } => item.kind(),
        Write::Delete { kind, .. } | Write::SetStamp { kind, .. } => *kind,
    }
}
