//! Stream configuration, state and info.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{nanos, timestamp};
use crate::error::ApiError;

/// How a stream decides when messages may go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPolicy {
    /// Keep messages until a limit (count, bytes, age) removes them.
    #[default]
    Limits,
    /// Keep a message while some consumer has not acknowledged it.
    Interest,
    /// A work queue: a message goes once any consumer has acknowledged it.
    #[serde(rename = "workqueue")]
    WorkQueue,
}

/// What a full stream does with a new message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscardPolicy {
    /// Remove old messages to make room.
    #[default]
    Old,
    /// Refuse the new message.
    New,
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// On disk.
    #[default]
    File,
    /// In memory.
    Memory,
}

/// On-disk compression of a file stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// S2 compression.
    S2,
}

/// Cluster placement hints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// The cluster to place the stream in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Server tags the placement must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A stream in another account or domain, for mirrors and sources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct External {
    /// The API prefix to reach it (`$JS.<domain>.API`).
    #[serde(rename = "api")]
    pub api_prefix: String,
    /// The delivery prefix.
    #[serde(rename = "deliver", skip_serializing_if = "String::is_empty")]
    pub deliver_prefix: String,
}

/// A subject transform (`src` -> `dest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectTransform {
    /// The source filter.
    pub src: String,
    /// The destination template.
    pub dest: String,
}

/// Republishing of stored messages to another subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RePublish {
    /// Which stored subjects to republish.
    pub src: String,
    /// Where to republish them.
    pub dest: String,
    /// Republish only the headers.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub headers_only: bool,
}

/// The source of a mirror or of a sourced stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSource {
    /// The origin stream.
    pub name: String,
    /// Start at this sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_seq: Option<u64>,
    /// Start at this time.
    #[serde(with = "timestamp", skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<OffsetDateTime>,
    /// Only messages on this subject.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Subject transforms applied while sourcing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_transforms: Vec<SubjectTransform>,
    /// The origin is in another account or domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
}

/// Defaults and limits for the consumers of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerLimits {
    /// Default and upper limit of consumers' `inactive_threshold`.
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub inactive_threshold: Duration,
    /// Default and upper limit of consumers' `max_ack_pending`.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A stream's configuration (`$JS.API.STREAM.CREATE`/`UPDATE`).
///
/// Limits use `-1` for "unlimited" and `max_age` uses zero, as the server does.
///
/// ```
/// use std::time::Duration;
/// use jetstream::{StorageType, StreamConfig};
/// let config = StreamConfig {
///     name: "ORDERS".into(),
///     subjects: vec!["orders.>".into()],
///     max_age: Duration::from_secs(24 * 3600),
///     storage: StorageType::Memory,
///     ..StreamConfig::default()
/// };
/// let json = serde_json::to_value(&config).unwrap();
/// assert_eq!(json["max_age"], 86_400_000_000_000i64);
/// assert_eq!(json["max_msgs"], -1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    /// The stream's name: no `.`, `*`, `>` or whitespace.
    pub name: String,
    /// A description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The subjects stored (wildcards allowed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// When messages may be removed.
    pub retention: RetentionPolicy,
    /// Most consumers; -1 (the default here) for the server's default.
    ///
    /// nats-server 2.15 caps the consumers of a stream at its `jetstream.limits.
    /// default_max_consumers`, **1000** unless configured, when this is -1 or 0: -1 does not
    /// mean "unlimited" there. A stream that may need more (a queue per consumer, an AMQP
    /// exchange with many queues) must set an explicit value, e.g. with
    /// [`with_max_consumers`](StreamConfig::with_max_consumers). Past the limit, creating a
    /// consumer fails with [`ErrorCode::MAXIMUM_CONSUMERS_LIMIT`](crate::ErrorCode::MAXIMUM_CONSUMERS_LIMIT).
    pub max_consumers: i64,
    /// Most messages; -1 for no limit.
    pub max_msgs: i64,
    /// Most bytes; -1 for no limit.
    pub max_bytes: i64,
    /// Oldest message age; zero for no limit.
    #[serde(with = "nanos")]
    pub max_age: Duration,
    /// Most messages per subject; -1 for no limit.
    pub max_msgs_per_subject: i64,
    /// Largest message; -1 for no limit.
    pub max_msg_size: i32,
    /// What to do when full.
    pub discard: DiscardPolicy,
    /// Where messages are kept.
    pub storage: StorageType,
    /// Replicas in a cluster (1 to 5).
    pub num_replicas: usize,
    /// Do not acknowledge publishes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_ack: bool,
    /// The window in which `Nats-Msg-Id` deduplicates; zero for the server default (2 min).
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub duplicate_window: Duration,
    /// Placement in a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// This stream mirrors another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    /// This stream sources others.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,
    /// On-disk compression.
    pub compression: Compression,
    /// The first sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    /// A transform applied to subjects on the way in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransform>,
    /// Republish stored messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    /// Serve `$JS.API.DIRECT.GET` from every replica.
    pub allow_direct: bool,
    /// Serve direct gets of the origin from this mirror.
    pub mirror_direct: bool,
    /// With `discard: new`, apply it per subject.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub discard_new_per_subject: bool,
    /// No more messages, deletes or purges (cannot be undone).
    pub sealed: bool,
    /// Messages cannot be deleted.
    pub deny_delete: bool,
    /// The stream cannot be purged.
    pub deny_purge: bool,
    /// Allow the `Nats-Rollup` header.
    #[serde(rename = "allow_rollup_hdrs")]
    pub allow_rollup: bool,
    /// Defaults and limits for consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_limits: Option<ConsumerLimits>,
    /// Allow per-message TTLs (`Nats-TTL`, see
    /// [`PublishOptions::ttl`](crate::PublishOptions::ttl)); server 2.11+. Once on, it cannot
    /// be turned off. Without it a publish with a TTL fails with
    /// [`ErrorCode::MESSAGE_TTL_DISABLED`](crate::ErrorCode::MESSAGE_TTL_DISABLED).
    pub allow_msg_ttl: bool,
    /// Leave a delete marker (no payload) for this long when a subject's last message is
    /// removed by `max_age` or its TTL; server 2.11+. Zero: no markers.
    ///
    /// Beware: the server raises every shorter per-message TTL on such a stream to this value
    /// (a message published with a 2 s TTL is stored with this TTL), and it turns on
    /// `allow_rollup_hdrs`. Do not set it on streams that use short TTLs as expiry.
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub subject_delete_marker_ttl: Duration,
    /// User metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Fields this crate does not model, kept as sent so an update does not drop them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            name: String::new(),
            description: None,
            subjects: Vec::new(),
            retention: RetentionPolicy::Limits,
            max_consumers: -1,
            max_msgs: -1,
            max_bytes: -1,
            max_age: Duration::ZERO,
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            discard: DiscardPolicy::Old,
            storage: StorageType::File,
            num_replicas: 1,
            no_ack: false,
            duplicate_window: Duration::ZERO,
            placement: None,
            mirror: None,
            sources: Vec::new(),
            compression: Compression::None,
            first_seq: None,
            subject_transform: None,
            republish: None,
            allow_direct: false,
            mirror_direct: false,
            discard_new_per_subject: false,
            sealed: false,
            deny_delete: false,
            deny_purge: false,
            allow_rollup: false,
            consumer_limits: None,
            allow_msg_ttl: false,
            subject_delete_marker_ttl: Duration::ZERO,
            metadata: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

impl StreamConfig {
    /// A configuration with a name and subjects, everything else default.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        subjects: impl IntoIterator<Item = S>,
    ) -> Self {
        StreamConfig {
            name: name.into(),
            subjects: subjects.into_iter().map(Into::into).collect(),
            ..StreamConfig::default()
        }
    }

    /// Sets an explicit consumer limit (see [`max_consumers`](StreamConfig::max_consumers):
    /// on 2.15 a stream without one stops at 1000 consumers).
    ///
    /// ```
    /// let config = jetstream::StreamConfig::new("EXCHANGE", ["ex.>"]).with_max_consumers(100_000);
    /// assert_eq!(config.max_consumers, 100_000);
    /// ```
    pub fn with_max_consumers(mut self, max: u32) -> Self {
        self.max_consumers = i64::from(max);
        self
    }
}

/// What a stream holds right now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// The first sequence still stored.
    pub first_seq: u64,
    /// When the first message was stored.
    #[serde(rename = "first_ts", with = "timestamp")]
    pub first_time: Option<OffsetDateTime>,
    /// The last sequence assigned.
    pub last_seq: u64,
    /// When the last message was stored.
    #[serde(rename = "last_ts", with = "timestamp")]
    pub last_time: Option<OffsetDateTime>,
    /// Distinct subjects stored.
    pub num_subjects: u64,
    /// Messages per subject, when asked for with a subjects filter.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub subjects: HashMap<String, u64>,
    /// Deleted messages inside `first_seq..=last_seq`.
    pub num_deleted: u64,
    /// Their sequences, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<u64>,
    /// Consumers of the stream.
    #[serde(rename = "consumer_count")]
    pub consumers: usize,
}

/// One member of a replica group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    /// The server name.
    pub name: String,
    /// Caught up with the leader.
    pub current: bool,
    /// Not seen recently.
    pub offline: bool,
    /// Since last seen.
    #[serde(with = "nanos")]
    pub active: Duration,
    /// Operations behind the leader.
    pub lag: u64,
}

/// Where a stream or consumer lives in a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    /// The cluster's name.
    pub name: Option<String>,
    /// The current leader's server name.
    pub leader: Option<String>,
    /// The other replicas.
    pub replicas: Vec<PeerInfo>,
}

/// State of a mirror or source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceInfo {
    /// The origin stream.
    pub name: String,
    /// Messages behind.
    pub lag: u64,
    /// Since last contact.
    #[serde(with = "nanos")]
    pub active: Duration,
    /// The last error, if any.
    pub error: Option<ApiError>,
}

/// A stream's configuration and state (`$JS.API.STREAM.INFO`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfo {
    /// The configuration (with the server's defaults filled in).
    pub config: StreamConfig,
    /// When the stream was created.
    #[serde(with = "timestamp")]
    pub created: Option<OffsetDateTime>,
    /// What it holds.
    pub state: StreamState,
    /// Its place in the cluster.
    pub cluster: Option<ClusterInfo>,
    /// Mirror state.
    pub mirror: Option<SourceInfo>,
    /// Sources' state.
    pub sources: Vec<SourceInfo>,
    /// Server time of this answer.
    #[serde(rename = "ts", with = "timestamp")]
    pub timestamp: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_roundtrip() {
        let c: StreamConfig = serde_json::from_str(
            r#"{"name":"S","subjects":["a.>"],"retention":"workqueue","max_age":5000000000,
                "future_knob":{"x":1},"storage":"memory"}"#,
        )
        .unwrap();
        assert_eq!(c.retention, RetentionPolicy::WorkQueue);
        assert_eq!(c.max_age, Duration::from_secs(5));
        assert_eq!(c.max_msgs, -1);
        assert_eq!(c.storage, StorageType::Memory);
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["future_knob"]["x"], 1);
    }

    #[test]
    fn info_tolerates_sparse_replies() {
        let i: StreamInfo = serde_json::from_str(
            r#"{"config":{"name":"S"},"created":"2024-01-02T03:04:05.6Z",
                "state":{"messages":3,"first_ts":"0001-01-01T00:00:00Z","consumer_count":2}}"#,
        )
        .unwrap();
        assert_eq!(i.state.messages, 3);
        assert_eq!(i.state.consumers, 2);
        assert!(i.state.first_time.is_none());
        assert!(i.created.is_some());
    }
}
