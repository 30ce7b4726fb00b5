//! One sync user's history: its own sled tree, holding per kind the pairs (CRM id <-> mailbox
//! id with the versions seen on each side and a content hash) with a reverse index, the change
//! cursors, the intents of creates in flight, and pair counters.
//!
//! Keys are laid out so that a commit never scans: every key a commit touches is computed
//! from the ids it carries.
//!
//! | key | value |
//! |---|---|
//! | `p` kind `c` CRM id (u32 BE) | [`Pair`] |
//! | `p` kind `m` SHA-256(mailbox id)[..16] | CRM id (u32 BE) |
//! | `c` kind `c` / `m` | the CRM / mailbox [`Cursor`] |
//! | `i` kind intent id (u64 BE) | [`Intent`] |
//! | `n` kind | number of pairs (u64 BE) |
//! | `t` kind | when a cursor of the kind was last committed (Unix seconds, i64 BE) |

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::HistoryError;
use crate::connector::model::{
    ContentHash, CrmId, Cursor, Item, Kind, MailboxItemId, Stamp, Version,
};
use crate::registry::SyncUserId;

/// Which side an item started on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Crm,
    Mailbox,
}

/// A CRM item and its mailbox counterpart, as of the last pass that touched them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub crm_id: CrmId,
    pub mailbox_id: MailboxItemId,
    pub crm_version: Version,
    pub mailbox_version: Version,
    /// The CRM item's content as last seen or written (the neutral item's hash).
    pub crm_hash: ContentHash,
    /// The mailbox item's content as last seen or written. It differs from `crm_hash` only
    /// where one side cannot hold what the other can (a lossy mapping).
    pub mailbox_hash: ContentHash,
    pub origin: Side,
    /// The item's span as last synced, in Unix seconds (all-day items from UTC midnight),
    /// to tell an item that left the sync window from one that was deleted.
    pub span: Option<(i64, i64)>,
    /// The mailbox item carries the stamp naming `crm_id`.
    pub stamped: bool,
    /// The mailbox item is a meeting someone else organised: read, never rewritten.
    pub mailbox_read_only: bool,
}

/// A create in flight: recorded (and flushed) before the create is sent, removed in the commit
/// that records the pair it made. One left over after a crash is resolved by looking the item
/// up, never by creating it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub id: u64,
    pub kind: Kind,
    /// Where the item is being created.
    pub target: Side,
    /// The item it copies: a CRM id when creating in the mailbox...
    pub from_crm: Option<CrmId>,
    /// ...or a mailbox id when creating in the CRM.
    pub from_mailbox: Option<MailboxItemId>,
    /// The stamp the new mailbox item carries (creates in the mailbox).
    pub stamp: Option<Stamp>,
    /// The content being written, to find a CRM item made by a create whose answer was lost.
    pub item: Item,
    /// When the create was started, Unix seconds (given by the caller: no clock here).
    pub started: i64,
}

/// Everything one step of a pass changes, written in one transaction: pairs, resolved intents
/// and the cursors that cover them (DESIGN invariant 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    pub put: Vec<Pair>,
    pub remove: Vec<CrmId>,
    pub resolved_intents: Vec<u64>,
    pub crm_cursor: Option<Cursor>,
    pub mailbox_cursor: Option<Cursor>,
    /// When the pass that commits cursors ran (Unix seconds; given, not read from a clock).
    pub at: Option<i64>,
}

/// The cursors of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursors {
    pub crm: Option<Cursor>,
    pub mailbox: Option<Cursor>,
}

/// A summary for `crmsync history stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindStats {
    pub pairs: u64,
    pub intents: u64,
    pub crm_cursor: bool,
    pub mailbox_cursor: bool,
    /// When a cursor was last committed (Unix seconds).
    pub cursor_committed: Option<i64>,
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Diary => 1,
        Kind::Task => 2,
        Kind::Contact => 3,
    }
}

fn pair_key(kind: Kind, crm: CrmId) -> [u8; 7] {
    let id = crm.0.to_be_bytes();
    [b'p', kind_byte(kind), b'c', id[0], id[1], id[2], id[3]]
}

#[cfg(test)]
pub(super) fn pair_key_for_tests(kind: Kind, crm: CrmId) -> [u8; 7] {
    pair_key(kind, crm)
}

fn reverse_key(kind: Kind, mailbox: &MailboxItemId) -> [u8; 19] {
    let digest = Sha256::digest(mailbox.0.as_bytes());
    let mut key = [0u8; 19];
    key[0] = b'p';
    key[1] = kind_byte(kind);
    key[2] = b'm';
    key[3..].copy_from_slice(&digest[..16]);
    key
}

fn cursor_key(kind: Kind, side: Side) -> [u8; 3] {
    [
        b'c',
        kind_byte(kind),
        match side {
            Side::Crm => b'c',
            Side::Mailbox => b'm',
        },
    ]
}

fn intent_key(kind: Kind, id: u64) -> Vec<u8> {
    let mut key = vec![b'i', kind_byte(kind)];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn count_key(kind: Kind) -> [u8; 2] {
    [b'n', kind_byte(kind)]
}

fn time_key(kind: Kind) -> [u8; 2] {
    [b't', kind_byte(kind)]
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, HistoryError> {
    postcard::to_stdvec(value).map_err(|e| HistoryError::Encoding(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, HistoryError> {
    postcard::from_bytes(bytes).map_err(|e| HistoryError::Unreadable {
        what: what.to_string(),
        cause: e.to_string(),
    })
}

fn crm_id_of(bytes: &[u8]) -> Option<CrmId> {
    let array: [u8; 4] = bytes.try_into().ok()?;
    Some(CrmId(u32::from_be_bytes(array)))
}

fn count_of(bytes: Option<sled::IVec>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// A tree's keys and values, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A user's history tree.
#[derive(Debug, Clone)]
pub struct UserHistory {
    pub(super) user: SyncUserId,
    pub(super) tree: sled::Tree,
    pub(super) db: sled::Db,
}

type TxResult<T> = Result<T, ConflictableTransactionError<HistoryError>>;

fn abort(e: HistoryError) -> ConflictableTransactionError<HistoryError> {
    ConflictableTransactionError::Abort(e)
}

fn tx_get_pair(tx: &TransactionalTree, kind: Kind, crm: CrmId) -> TxResult<Option<Pair>> {
    match tx.get(pair_key(kind, crm))? {
        Some(bytes) => Ok(Some(decode(&bytes, "a pair").map_err(abort)?)),
        None => Ok(None),
    }
}

fn tx_add_count(tx: &TransactionalTree, kind: Kind, delta: i64) -> TxResult<()> {
    let now = count_of(tx.get(count_key(kind))?);
    let next = now.saturating_add_signed(delta);
    tx.insert(&count_key(kind), &next.to_be_bytes())?;
    Ok(())
}

/// Removes the pair of `crm` and its reverse entry, if it exists.
fn tx_remove_pair(tx: &TransactionalTree, kind: Kind, crm: CrmId) -> TxResult<()> {
    if let Some(old) = tx_get_pair(tx, kind, crm)? {
        tx.remove(&pair_key(kind, crm))?;
        let reverse = reverse_key(kind, &old.mailbox_id);
        // Only our own reverse entry: another pair may have taken the mailbox id since.
        if tx.get(reverse)?.and_then(|v| crm_id_of(&v)) == Some(crm) {
            tx.remove(&reverse)?;
        }
        tx_add_count(tx, kind, -1)?;
    }
    Ok(())
}

impl UserHistory {
    pub fn user(&self) -> &SyncUserId {
        &self.user
    }

    fn storage(&self, source: sled::Error) -> HistoryError {
        HistoryError::User {
            user: self.user.clone(),
            source,
        }
    }

    pub fn pair_by_crm(&self, kind: Kind, crm: CrmId) -> Result<Option<Pair>, HistoryError> {
        match self
            .tree
            .get(pair_key(kind, crm))
            .map_err(|e| self.storage(e))?
        {
            Some(bytes) => Ok(Some(decode(&bytes, "a pair")?)),
            None => Ok(None),
        }
    }

    pub fn pair_by_mailbox(
        &self,
        kind: Kind,
        mailbox: &MailboxItemId,
    ) -> Result<Option<Pair>, HistoryError> {
        let Some(crm) = self
            .tree
            .get(reverse_key(kind, mailbox))
            .map_err(|e| self.storage(e))?
            .and_then(|v| crm_id_of(&v))
        else {
            return Ok(None);
        };
        // The reverse index is keyed by a hash of the id: check that it is this one.
        Ok(self
            .pair_by_crm(kind, crm)?
            .filter(|pair| &pair.mailbox_id == mailbox))
    }

    /// Every pair of `kind` (a scan: for full rounds and statistics, never in a commit).
    pub fn pairs(&self, kind: Kind) -> Result<Vec<Pair>, HistoryError> {
        self.tree
            .scan_prefix([b'p', kind_byte(kind), b'c'])
            .map(|entry| {
                let (_, value) = entry.map_err(|e| self.storage(e))?;
                decode(&value, "a pair")
            })
            .collect()
    }

    /// The number of pairs of `kind`, without a scan.
    pub fn pair_count(&self, kind: Kind) -> Result<u64, HistoryError> {
        Ok(count_of(
            self.tree
                .get(count_key(kind))
                .map_err(|e| self.storage(e))?,
        ))
    }

    pub fn cursors(&self, kind: Kind) -> Result<Cursors, HistoryError> {
        let read = |side| -> Result<Option<Cursor>, HistoryError> {
            match self
                .tree
                .get(cursor_key(kind, side))
                .map_err(|e| self.storage(e))?
            {
                Some(bytes) => Ok(Some(decode(&bytes, "a cursor")?)),
                None => Ok(None),
            }
        };
        Ok(Cursors {
            crm: read(Side::Crm)?,
            mailbox: read(Side::Mailbox)?,
        })
    }

    /// Forgets the cursors of `kind`, so that its next pass is a full round (for example
    /// after the mailbox said its delta token expired).
    pub fn clear_cursors(&self, kind: Kind) -> Result<(), HistoryError> {
        for side in [Side::Crm, Side::Mailbox] {
            self.tree
                .remove(cursor_key(kind, side))
                .map_err(|e| self.storage(e))?;
        }
        Ok(())
    }

    /// Records an intent and makes it durable before the create it announces is sent
    /// (DESIGN invariant 3). Returns it with its id.
    pub async fn record_intent(&self, mut intent: Intent) -> Result<Intent, HistoryError> {
        intent.id = self.db.generate_id().map_err(|e| self.storage(e))?;
        self.tree
            .insert(intent_key(intent.kind, intent.id), encode(&intent)?)
            .map_err(|e| self.storage(e))?;
        super::flush_tree(self.tree.clone())
            .await
            .map_err(|e| self.storage(e))?;
        Ok(intent)
    }

    /// The intents of `kind` still open: creates that may or may not have happened.
    pub fn intents(&self, kind: Kind) -> Result<Vec<Intent>, HistoryError> {
        self.tree
            .scan_prefix([b'i', kind_byte(kind)])
            .map(|entry| {
                let (_, value) = entry.map_err(|e| self.storage(e))?;
                decode(&value, "an intent")
            })
            .collect()
    }

    /// Writes `commit` for `kind` in one transaction. Applying the same commit twice leaves the
    /// same state as applying it once.
    pub fn commit(&self, kind: Kind, commit: &Commit) -> Result<(), HistoryError> {
        let encoded: Vec<(Pair, Vec<u8>)> = commit
            .put
            .iter()
            .map(|p| Ok((p.clone(), encode(p)?)))
            .collect::<Result<_, HistoryError>>()?;
        let crm_cursor = commit.crm_cursor.as_ref().map(encode).transpose()?;
        let mailbox_cursor = commit.mailbox_cursor.as_ref().map(encode).transpose()?;
        let result = self.tree.transaction(|tx| {
            for crm in &commit.remove {
                tx_remove_pair(tx, kind, *crm)?;
            }
            for (pair, bytes) in &encoded {
                let key = pair_key(kind, pair.crm_id);
                match tx_get_pair(tx, kind, pair.crm_id)? {
                    Some(old) if old.mailbox_id != pair.mailbox_id => {
                        let reverse = reverse_key(kind, &old.mailbox_id);
                        if tx.get(reverse)?.and_then(|v| crm_id_of(&v)) == Some(pair.crm_id) {
                            tx.remove(&reverse)?;
                        }
                    }
                    Some(_) => {}
                    None => tx_add_count(tx, kind, 1)?,
                }
                // A mailbox item belongs to one pair: a stale pair that still claims it goes.
                let reverse = reverse_key(kind, &pair.mailbox_id);
                if let Some(other) = tx.get(reverse)?.and_then(|v| crm_id_of(&v))
                    && other != pair.crm_id
                {
                    tx_remove_pair(tx, kind, other)?;
                }
                tx.insert(&key, bytes.as_slice())?;
                tx.insert(&reverse, &pair.crm_id.0.to_be_bytes())?;
            }
            for id in &commit.resolved_intents {
                tx.remove(intent_key(kind, *id))?;
            }
            if let Some(cursor) = &crm_cursor {
                tx.insert(&cursor_key(kind, Side::Crm), cursor.as_slice())?;
            }
            if let Some(cursor) = &mailbox_cursor {
                tx.insert(&cursor_key(kind, Side::Mailbox), cursor.as_slice())?;
            }
            if let (Some(at), true) = (commit.at, crm_cursor.is_some() || mailbox_cursor.is_some())
            {
                tx.insert(&time_key(kind), &at.to_be_bytes())?;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(self.storage(e)),
        }
    }

    /// Statistics of one kind.
    pub fn stats(&self, kind: Kind) -> Result<KindStats, HistoryError> {
        let cursors = self.cursors(kind)?;
        let committed = self
            .tree
            .get(time_key(kind))
            .map_err(|e| self.storage(e))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(i64::from_be_bytes);
        Ok(KindStats {
            pairs: self.pair_count(kind)?,
            intents: self.intents(kind)?.len() as u64,
            crm_cursor: cursors.crm.is_some(),
            mailbox_cursor: cursors.mailbox.is_some(),
            cursor_committed: committed,
        })
    }

    /// Every key and value of the tree, in key order.
    pub fn entries(&self) -> Result<Entries, HistoryError> {
        self.tree
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(|e| self.storage(e))?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// A checksum over every key and value in order: equal checksums, equal trees.
    pub fn checksum(&self) -> Result<String, HistoryError> {
        Ok(checksum_of(&self.entries()?))
    }
}

pub(super) fn checksum_of(entries: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in entries {
        hasher.update((k.len() as u64).to_be_bytes());
        hasher.update(k);
        hasher.update((v.len() as u64).to_be_bytes());
        hasher.update(v);
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}
