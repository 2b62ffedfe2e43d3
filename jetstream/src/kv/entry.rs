//! One value of a key as stored: [`Entry`] and the [`Operation`] that wrote it.

use bytes::Bytes;
use nats_client::HeaderMap;
use time::OffsetDateTime;

/// Header naming a delete or purge marker (`DEL` / `PURGE`), as nats.go writes it.
pub const KV_OPERATION: &str = "KV-Operation";
/// [`KV_OPERATION`] value of a delete marker.
pub const KV_OPERATION_DELETE: &str = "DEL";
/// [`KV_OPERATION`] value of a purge marker.
pub const KV_OPERATION_PURGE: &str = "PURGE";
/// Header asking the stream to remove earlier messages (`sub`: of this subject).
pub const NATS_ROLLUP: &str = "Nats-Rollup";
/// Header of the markers the server itself writes when a subject's last message goes
/// (`subject_delete_marker_ttl`): `MaxAge`, `Purge` or `Remove`.
pub const NATS_MARKER_REASON: &str = "Nats-Marker-Reason";

/// What wrote a revision of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Operation {
    /// A value was put.
    #[default]
    Put,
    /// The key was deleted (a marker; earlier revisions stay in the history).
    Delete,
    /// The key was purged (a marker; earlier revisions were removed).
    Purge,
}

impl Operation {
    /// The operation a stored message's headers name: `KV-Operation`, else the server's
    /// `Nats-Marker-Reason` (`MaxAge`/`Purge` = purge, `Remove` = delete), else a put.
    ///
    /// ```
    /// use jetstream::kv::Operation;
    /// let mut h = nats_client::HeaderMap::new();
    /// h.insert("KV-Operation", "DEL");
    /// assert_eq!(Operation::from_headers(Some(&h)), Operation::Delete);
    /// assert_eq!(Operation::from_headers(None), Operation::Put);
    /// ```
    pub fn from_headers(headers: Option<&HeaderMap>) -> Operation {
        let Some(h) = headers else {
            return Operation::Put;
        };
        match h.get(KV_OPERATION).map(str::trim) {
            Some(KV_OPERATION_DELETE) => return Operation::Delete,
            Some(KV_OPERATION_PURGE) => return Operation::Purge,
            Some(_) => return Operation::Put,
            None => {}
        }
        match h.get(NATS_MARKER_REASON).map(str::trim) {
            Some("MaxAge" | "Purge") => Operation::Purge,
            Some("Remove") => Operation::Delete,
            _ => Operation::Put,
        }
    }

    /// Whether this revision removed the key (a delete or purge marker).
    pub fn is_removal(self) -> bool {
        self != Operation::Put
    }
}

/// One revision of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The value (empty for delete and purge markers, and for headers-only watches).
    pub value: Bytes,
    /// The revision: the stream sequence of this message, unique in the bucket.
    pub revision: u64,
    /// When it was written.
    pub created: Option<OffsetDateTime>,
    /// For entries from a watch: how many messages of the watch were still pending after
    /// this one (0 for [`Store::entry`](crate::kv::Store::entry)).
    pub delta: u64,
    /// What wrote it.
    pub operation: Operation,
}
