//! `JSZ` (JetStream state per server) and `HEALTHZ`.

use jetstream::models::{ClusterInfo, ConsumerInfo, PeerInfo, StreamConfig, StreamState};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::timestamp;

/// What `JSZ` returns: one server's JetStream usage and, when asked for, the accounts,
/// streams and consumers it holds a replica of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamInfo {
    /// The answering server's id.
    pub server_id: String,
    /// JetStream is off on this server.
    pub disabled: bool,
    /// Memory store bytes in use.
    pub memory: u64,
    /// File store bytes in use.
    pub storage: u64,
    /// Accounts with JetStream.
    pub accounts: u64,
    /// Raft groups (streams, consumers and the meta group) on this server.
    pub ha_assets: u64,
    /// Streams this server holds a replica of.
    pub streams: u64,
    /// Consumers this server holds a replica of.
    pub consumers: u64,
    /// Messages stored on this server.
    pub messages: u64,
    /// Bytes stored on this server.
    pub bytes: u64,
    /// The meta group as this server sees it.
    pub meta_cluster: Option<MetaCluster>,
    /// Per-account details (with `accounts` or `streams` in the options).
    pub account_details: Vec<AccountDetail>,
}

/// The JetStream meta group (the cluster-wide Raft group that owns stream and consumer
/// assignments).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaCluster {
    /// The cluster name.
    pub name: Option<String>,
    /// The leader's server name; empty while there is none.
    pub leader: Option<String>,
    /// The other peers (only the leader lists them in `STATSZ` and `VARZ`).
    pub replicas: Vec<PeerInfo>,
    /// The known size of the group.
    pub cluster_size: u64,
    /// Votes needed for a quorum.
    pub quorum_needed: u64,
    /// Raft entries not yet applied.
    pub pending: u64,
}

impl MetaCluster {
    /// The leader's name, `None` while there is none.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref().filter(|l| !l.is_empty())
    }
}

/// One account in `JSZ`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountDetail {
    /// The account name (its name tag when it has one).
    pub name: String,
    /// The account id.
    pub id: String,
    /// Memory store bytes in use.
    pub memory: u64,
    /// File store bytes in use.
    pub storage: u64,
    /// Streams this server holds for the account.
    pub stream_detail: Vec<StreamDetail>,
}

/// One stream replica in `JSZ`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamDetail {
    /// The stream name.
    pub name: String,
    /// When it was created.
    #[serde(with = "timestamp")]
    pub created: Option<OffsetDateTime>,
    /// Leader and replicas as this server sees them.
    pub cluster: Option<ClusterInfo>,
    /// The configuration (with `config` in the options).
    pub config: Option<StreamConfig>,
    /// Messages, bytes, sequences, consumer count.
    pub state: StreamState,
    /// The consumers (with `consumer` in the options).
    pub consumer_detail: Vec<ConsumerInfo>,
}

/// What `HEALTHZ` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthStatus {
    /// `ok`, `unavailable` or `na`.
    pub status: String,
    /// An HTTP-like code; 200 when healthy.
    pub status_code: u16,
    /// The first problem.
    pub error: Option<String>,
    /// Every problem (with `details`).
    pub errors: Vec<HealthzError>,
}

impl HealthStatus {
    /// The server says it is healthy.
    pub fn is_ok(&self) -> bool {
        self.status == "ok" && (self.status_code == 0 || self.status_code == 200)
    }
}

/// One problem `HEALTHZ` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthzError {
    /// The kind (`CONNECTION`, `JETSTREAM`, `STREAM`, `CONSUMER`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The account concerned.
    pub account: Option<String>,
    /// The stream concerned.
    pub stream: Option<String>,
    /// The consumer concerned.
    pub consumer: Option<String>,
    /// What is wrong.
    pub error: Option<String>,
}
