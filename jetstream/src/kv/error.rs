//! Errors of the key-value store.

use thiserror::Error;

use crate::error::{ErrorCode, JetStreamError};

/// Everything that can go wrong with a key-value bucket.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KvError {
    /// A bucket name must be non-empty and only `A-Z a-z 0-9 _ -`.
    #[error("invalid bucket name {bucket:?}: only A-Z, a-z, 0-9, '_' and '-' are allowed")]
    InvalidBucket {
        /// The name as given.
        bucket: String,
    },
    /// A key must be non-empty, only `A-Z a-z 0-9 - / _ = .`, and neither start nor end with
    /// `.` nor contain `..`; a watch pattern may also use `*` tokens and a final `>`.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More history per key than the server's KV convention allows (64).
    #[error("history {history} is larger than the maximum of 64")]
    HistoryTooLarge {
        /// The history asked for.
        history: u8,
    },
    /// No bucket of that name (no stream `KV_<bucket>`).
    #[error("bucket {bucket:?} not found")]
    BucketNotFound {
        /// The bucket.
        bucket: String,
    },
    /// The stream `KV_<bucket>` exists but is not shaped like a bucket.
    #[error("stream {stream:?} is not a key-value bucket: {reason}")]
    NotABucket {
        /// The stream.
        stream: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bucket of that name exists with another configuration.
    #[error("bucket {bucket:?} exists with another configuration: {description}")]
    BucketExists {
        /// The bucket.
        bucket: String,
        /// The server's text.
        description: String,
    },
    /// [`Store::create`](crate::kv::Store::create): the key has a value already.
    #[error("key {key:?} exists in bucket {bucket:?}")]
    KeyExists {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// A compare-and-set ([`Store::update`](crate::kv::Store::update), a delete or purge
    /// expecting a revision) found another revision: the server's "wrong last sequence"
    /// (10071, or 10164 on some replicated streams).
    #[error("key {key:?} in bucket {bucket:?} is not at revision {expected}{}", current.map(|c| format!(" (it is at {c})")).unwrap_or_default())]
    WrongRevision {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The revision expected.
        expected: u64,
        /// The key's current revision, when the server said (0: the key has none).
        current: Option<u64>,
    },
    /// The JetStream layer failed (request, timeout, other API errors).
    #[error(transparent)]
    JetStream(#[from] JetStreamError),
}

impl KvError {
    /// Whether waiting and trying again may succeed (see [`JetStreamError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, KvError::JetStream(e) if e.is_transient())
    }

    /// Whether this is a failed compare-and-set ([`KvError::WrongRevision`] or
    /// [`KvError::KeyExists`]): someone else wrote the key first.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            KvError::WrongRevision { .. } | KvError::KeyExists { .. }
        )
    }
}

/// Whether `e` is the server's "wrong last sequence" (a failed expectation).
pub(crate) fn is_wrong_last_sequence(e: &JetStreamError) -> bool {
    e.is_api(ErrorCode::STREAM_WRONG_LAST_SEQUENCE)
        || e.is_api(ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT)
}

/// The current sequence in "wrong last sequence: 5", when the server says it.
pub(crate) fn current_sequence(e: &JetStreamError) -> Option<u64> {
    let text = &e.api_error()?.description;
    let (_, tail) = text.rsplit_once(':')?;
    tail.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;

    #[test]
    fn wrong_sequence_text() {
        let e = JetStreamError::Api(ApiError {
            code: 400,
            err_code: ErrorCode::STREAM_WRONG_LAST_SEQUENCE,
            description: "wrong last sequence: 5".into(),
        });
        assert!(is_wrong_last_sequence(&e));
        assert_eq!(current_sequence(&e), Some(5));
        let e = JetStreamError::Api(ApiError {
            code: 400,
            err_code: ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT,
            description: "wrong last sequence".into(),
        });
        assert!(is_wrong_last_sequence(&e));
        assert_eq!(current_sequence(&e), None);
    }
}
