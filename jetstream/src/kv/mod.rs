//! A key-value store on JetStream, interoperable with the buckets of nats.go, nats-py and
//! the `nats` CLI.
//!
//! A bucket `b` is the stream `KV_b` on the subjects `$KV.b.>`; key `k` is the subject
//! `$KV.b.k`, and its history is the stream's messages on that subject (`max_msgs_per_subject`
//! = history). A revision is a stream sequence. A delete writes an empty message with
//! `KV-Operation: DEL`; a purge writes `KV-Operation: PURGE` with `Nats-Rollup: sub`, which
//! makes the stream drop the key's earlier revisions. Reads go through direct get
//! (`allow_direct`), so any replica answers. Compare-and-set is the publish expectation
//! `Nats-Expected-Last-Subject-Sequence`. Watches run on an [ordered
//! consumer](crate::OrderedMessages).
//!
//! What to know (and where this differs from nats.go):
//! - Reads ([`Store::get`], [`Store::entry`]) are direct gets, answered by any replica: on a
//!   replicated bucket a read may miss the latest acknowledged write. A compare-and-set built
//!   on a stale read fails ([`KvError::WrongRevision`]); it never overwrites.
//!   [`Store::read_from_leader`] reads through the stream leader instead.
//! - A watch whose consumer had to be re-created resumes after the last revision it delivered;
//!   revisions the bucket's `history` already dropped cannot be replayed (with history 1, a
//!   key changed twice while the watch was blind shows only its latest value).
//! - [`WatchEvent::CaughtUp`] comes exactly once in every watch, also for `updates_only`
//!   (nats.go sends its `nil` marker only when there are initial values to wait for).
//! - Not here yet: mirrored and sourced buckets, per-key TTLs on create, and
//!   the migration nats.go's `CreateKeyValue` does for pre-2.7 buckets (`discard: old`).
//!
//! ```no_run
//! # async fn demo(js: jetstream::Context) -> Result<(), jetstream::kv::KvError> {
//! use futures::StreamExt;
//! use jetstream::kv::{Config, WatchEvent};
//!
//! let kv = js.create_key_value(Config::new("topology")).await?;
//! let rev = kv.create("q.orders", "{}").await?;
//! kv.update("q.orders", r#"{"durable":true}"#, rev).await?;
//!
//! let mut watch = kv.watch("q.>").await?;
//! while let Some(event) = watch.next().await {
//!     match event? {
//!         WatchEvent::Entry(e) => println!("{} = {:?} ({:?})", e.key, e.value, e.operation),
//!         WatchEvent::CaughtUp => println!("initial values done; live updates follow"),
//!     }
//! }
//! # Ok(()) }
//! ```

mod bucket;
mod entry;
mod error;
mod watch;

use std::collections::BTreeMap;
use std::time::Duration;

pub use bucket::{Keys, Status, Store};
pub use entry::{
    Entry, KV_OPERATION, KV_OPERATION_DELETE, KV_OPERATION_PURGE, NATS_MARKER_REASON, NATS_ROLLUP,
    Operation,
};
pub use error::KvError;
pub use watch::{Watch, WatchEvent, WatchOptions};

use crate::context::Context;
use crate::error::ErrorCode;
use crate::models::{
    Compression, DiscardPolicy, Placement, RePublish, StorageType, StreamConfig, StreamInfo,
};

/// The most history a bucket may keep per key (the KV convention).
pub const MAX_HISTORY: u8 = 64;

/// A bucket's configuration ([`Context::create_key_value`]).
///
/// ```
/// use std::time::Duration;
/// use jetstream::kv::Config;
/// let config = Config {
///     history: 5,
///     max_age: Duration::from_secs(3600),
///     num_replicas: 3,
///     ..Config::new("topology")
/// };
/// let stream = config.stream_config().unwrap();
/// assert_eq!(stream.name, "KV_topology");
/// assert_eq!(stream.subjects, ["$KV.topology.>"]);
/// assert_eq!(stream.max_msgs_per_subject, 5);
/// assert!(stream.allow_rollup && stream.allow_direct && stream.deny_delete);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// The bucket's name: `A-Z a-z 0-9 _ -`.
    pub bucket: String,
    /// A description.
    pub description: Option<String>,
    /// Revisions kept per key, 1 to 64 (0 means 1).
    pub history: u8,
    /// How long a value is kept (zero: forever).
    pub max_age: Duration,
    /// Most bytes in the bucket (0 or -1: no limit).
    pub max_bytes: i64,
    /// Largest value (0 or -1: no limit).
    pub max_value_size: i32,
    /// Where values are kept.
    pub storage: StorageType,
    /// Replicas in a cluster (0 means 1).
    pub num_replicas: usize,
    /// Placement in a cluster.
    pub placement: Option<Placement>,
    /// Republish writes to another subject.
    pub republish: Option<RePublish>,
    /// Compress on disk (S2).
    pub compression: bool,
    /// Most consumers (watches) at once; 0 or -1 leave it to the server, which 2.15 caps at
    /// 1000 by default (`jetstream.limits.default_max_consumers`). Every watching process
    /// holds one consumer, so a bucket watched by more processes needs an explicit value.
    /// (nats.go sends -1; a nats.go `CreateKeyValue` of the same bucket then sees another
    /// configuration. Binding with `KeyValue` works either way.)
    pub max_consumers: i64,
    /// Keep a marker for this long when a value ages out (`subject_delete_marker_ttl`; turns
    /// on `allow_msg_ttl`). Zero: no markers.
    pub limit_marker_ttl: Duration,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Config {
    /// A bucket with one revision per key, file storage, one replica, no limits.
    pub fn new(bucket: impl Into<String>) -> Config {
        Config {
            bucket: bucket.into(),
            ..Config::default()
        }
    }

    /// The stream configuration behind the bucket, with nats.go's conventions.
    pub fn stream_config(&self) -> Result<StreamConfig, KvError> {
        check_bucket(&self.bucket)?;
        if self.history > MAX_HISTORY {
            return Err(KvError::HistoryTooLarge {
                history: self.history,
            });
        }
        let unlimited = |n: i64| if n == 0 { -1 } else { n };
        // The server's default duplicate window is 2 min, but never longer than max_age.
        let mut duplicate_window = Duration::from_secs(120);
        if !self.max_age.is_zero() && self.max_age < duplicate_window {
            duplicate_window = self.max_age;
        }
        Ok(StreamConfig {
            name: stream_name(&self.bucket),
            description: self.description.clone(),
            subjects: vec![format!("$KV.{}.>", self.bucket)],
            max_consumers: unlimited(self.max_consumers),
            max_msgs: -1,
            max_bytes: unlimited(self.max_bytes),
            max_age: self.max_age,
            max_msgs_per_subject: i64::from(self.history.max(1)),
            max_msg_size: if self.max_value_size == 0 {
                -1
            } else {
                self.max_value_size
            },
            discard: DiscardPolicy::New,
            storage: self.storage,
            num_replicas: self.num_replicas.max(1),
            duplicate_window,
            placement: self.placement.clone(),
            republish: self.republish.clone(),
            compression: if self.compression {
                Compression::S2
            } else {
                Compression::None
            },
            allow_direct: true,
            deny_delete: true,
            allow_rollup: true,
            allow_msg_ttl: !self.limit_marker_ttl.is_zero(),
            subject_delete_marker_ttl: self.limit_marker_ttl,
            metadata: self.metadata.clone(),
            ..StreamConfig::default()
        })
    }
}

/// The stream behind bucket `bucket`.
pub(crate) fn stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// Checks a bucket name: `^[a-zA-Z0-9_-]+$`.
pub(crate) fn check_bucket(bucket: &str) -> Result<(), KvError> {
    let ok = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(KvError::InvalidBucket {
            bucket: bucket.to_owned(),
        })
    }
}

/// Checks a key (`pattern`: a watch filter, which may hold `*` tokens and end with `>`).
pub(crate) fn check_key(key: &str, pattern: bool) -> Result<(), KvError> {
    let fail = |reason| {
        Err(KvError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return fail("empty");
    }
    if key.starts_with('.') || key.ends_with('.') || key.contains("..") {
        return fail("starts or ends with '.' or has an empty token");
    }
    let body = match key.strip_suffix('>') {
        Some(rest) if pattern => rest,
        _ => key,
    };
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.')
            || (pattern && b == b'*')
    };
    if !body.bytes().all(allowed) {
        return fail(if pattern {
            "only A-Z a-z 0-9 - / _ = . and '*' tokens, '>' last"
        } else {
            "only A-Z a-z 0-9 - / _ = . are allowed"
        });
    }
    if pattern
        && key
            .split('.')
            .any(|t| (t.contains('*') && t != "*") || (t.contains('>') && t != ">"))
    {
        return fail("a wildcard must be a whole token");
    }
    Ok(())
}

impl Context {
    /// Creates a bucket (the stream `KV_<bucket>`). Creating a bucket that exists with the
    /// same configuration succeeds; with another it fails with [`KvError::BucketExists`].
    pub async fn create_key_value(&self, config: Config) -> Result<Store, KvError> {
        let stream = config.stream_config()?;
        match self.create_stream(stream).await {
            Ok(s) => Store::from_info(self.clone(), s.cached_info()),
            Err(e) if e.is_api(ErrorCode::STREAM_NAME_EXISTS) => Err(KvError::BucketExists {
                bucket: config.bucket,
                description: e
                    .api_error()
                    .map(|a| a.description.clone())
                    .unwrap_or_default(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a bucket, or updates its configuration when it exists.
    pub async fn create_or_update_key_value(&self, config: Config) -> Result<Store, KvError> {
        let stream = config.stream_config()?;
        let s = self.create_or_update_stream(stream).await?;
        Store::from_info(self.clone(), s.cached_info())
    }

    /// Binds to an existing bucket (one stream info request). A missing bucket is
    /// [`KvError::BucketNotFound`].
    pub async fn key_value(&self, bucket: &str) -> Result<Store, KvError> {
        check_bucket(bucket)?;
        match self.stream_info(&stream_name(bucket)).await {
            Ok(info) => Store::from_info(self.clone(), &info),
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => Err(KvError::BucketNotFound {
                bucket: bucket.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a bucket and every key in it.
    pub async fn delete_key_value(&self, bucket: &str) -> Result<(), KvError> {
        check_bucket(bucket)?;
        match self.delete_stream(&stream_name(bucket)).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => Err(KvError::BucketNotFound {
                bucket: bucket.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The names of every bucket.
    pub async fn key_value_names(&self) -> Result<Vec<String>, KvError> {
        let names = self.stream_names(Some("$KV.*.>")).await?;
        Ok(names
            .into_iter()
            .filter_map(|n| n.strip_prefix("KV_").map(str::to_owned))
            .collect())
    }
}

/// Checks that a stream is shaped like a bucket.
pub(crate) fn check_shape(info: &StreamInfo) -> Result<(), KvError> {
    if info.config.max_msgs_per_subject < 1 {
        return Err(KvError::NotABucket {
            stream: info.config.name.clone(),
            reason: "max_msgs_per_subject is not set",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in ["a", "a.b", "A-b_c/d=e.0", "x.y.z"] {
            assert!(check_key(good, false).is_ok(), "{good}");
        }
        for bad in ["", ".a", "a.", "a..b", "a b", "a*", "a.>", "ü", "a\r\n"] {
            assert!(check_key(bad, false).is_err(), "{bad:?}");
        }
        for good in [">", "a.*", "a.>", "*.b.>", "a"] {
            assert!(check_key(good, true).is_ok(), "{good}");
        }
        for bad in ["a*", "a.>.b", "a.b>", "", "a..*"] {
            assert!(check_key(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buckets() {
        assert!(check_bucket("topo-1_x").is_ok());
        for bad in ["", "a.b", "a b", "a*", "KV/x"] {
            assert!(check_bucket(bad).is_err(), "{bad:?}");
        }
        let c = Config {
            history: 65,
            ..Config::new("b")
        };
        assert!(matches!(
            c.stream_config(),
            Err(KvError::HistoryTooLarge { history: 65 })
        ));
    }

    #[test]
    fn stream_conventions() {
        let s = Config {
            max_age: Duration::from_secs(30),
            ..Config::new("b")
        }
        .stream_config()
        .unwrap();
        assert_eq!(s.max_msgs_per_subject, 1);
        assert_eq!(s.discard, DiscardPolicy::New);
        assert_eq!(s.duplicate_window, Duration::from_secs(30));
        assert_eq!((s.max_bytes, s.max_msg_size, s.max_msgs), (-1, -1, -1));
        assert!(!s.allow_msg_ttl);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["allow_rollup_hdrs"], true);
        assert_eq!(v["deny_delete"], true);
        assert_eq!(v["allow_direct"], true);
        assert_eq!(v["discard"], "new");
    }
}
