//! Hand-over of one user's history between ranks (`STATE_DIR/handoff/`): the old rank exports
//! the tree into a file, the new rank imports it before its first pass for the user. The file
//! carries a checksum, and an import never overwrites history that is already there.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::user::{Entries, Intent, checksum_of};
use super::{History, HistoryError};
use crate::registry::SyncUserId;

const FORMAT: u32 = 1;

/// One user's history, in transit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub format: u32,
    pub user: SyncUserId,
    pub entries: Entries,
    /// Of `entries`, as [`super::UserHistory::checksum`] computes it.
    pub checksum: String,
}

impl Handoff {
    /// Writes the hand-over file atomically (temporary file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<(), HistoryError> {
        let failed = |what: String| HistoryError::Handoff {
            path: path.to_path_buf(),
            what,
        };
        let bytes = postcard::to_stdvec(self).map_err(|e| failed(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| failed(e.to_string()))?;
        file.write_all(&bytes).map_err(|e| failed(e.to_string()))?;
        file.sync_all().map_err(|e| failed(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| failed(e.to_string()))?;
        if let Some(dir) = path.parent()
            && let Ok(dir) = std::fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Reads and checks a hand-over file.
    pub fn read(path: &Path) -> Result<Handoff, HistoryError> {
        let failed = |what: String| HistoryError::Handoff {
            path: path.to_path_buf(),
            what,
        };
        let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        let handoff: Handoff = postcard::from_bytes(&bytes)
            .map_err(|e| failed(format!("not a hand-over file: {e}")))?;
        if handoff.format != FORMAT {
            return Err(failed(format!(
                "format {} is not known to this crmsync (it reads {FORMAT})",
                handoff.format
            )));
        }
        if checksum_of(&handoff.entries) != handoff.checksum {
            return Err(failed(
                "the checksum does not match: the file is damaged".into(),
            ));
        }
        Ok(handoff)
    }
}

impl History {
    /// One user's whole history, for hand-over to another rank.
    pub fn export_user(&self, user: &SyncUserId) -> Result<Handoff, HistoryError> {
        let entries = self.user(user)?.entries()?;
        Ok(Handoff {
            format: FORMAT,
            user: user.clone(),
            checksum: checksum_of(&entries),
            entries,
        })
    }

    /// Takes in a handed-over history. Refused if the user already has history here. Open
    /// intents get new ids from this database, so they cannot collide with its own.
    pub async fn import_user(&self, handoff: &Handoff) -> Result<(), HistoryError> {
        let target = self.user(&handoff.user)?;
        if !target.tree.is_empty() {
            return Err(HistoryError::ImportOverExisting {
                user: handoff.user.clone(),
            });
        }
        let mut batch = sled::Batch::default();
        for (key, value) in &handoff.entries {
            if key.first() == Some(&b'i') {
                let mut intent: Intent =
                    postcard::from_bytes(value).map_err(|e| HistoryError::Unreadable {
                        what: "a handed-over intent".into(),
                        cause: e.to_string(),
                    })?;
                intent.id = self.db.generate_id().map_err(|e| self.storage(e))?;
                let mut new_key = key[..2].to_vec();
                new_key.extend_from_slice(&intent.id.to_be_bytes());
                let encoded = postcard::to_stdvec(&intent)
                    .map_err(|e| HistoryError::Encoding(e.to_string()))?;
                batch.insert(new_key, encoded);
            } else {
                batch.insert(key.as_slice(), value.as_slice());
            }
        }
        target
            .tree
            .apply_batch(batch)
            .map_err(|e| self.storage(e))?;
        super::flush_tree(target.tree.clone())
            .await
            .map_err(|e| self.storage(e))?;
        Ok(())
    }
}
