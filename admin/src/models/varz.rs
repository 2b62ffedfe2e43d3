//! `VARZ`: a server's configuration and general statistics.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::jsz::MetaCluster;
use super::timestamp;

/// What `VARZ` returns: one server's identity, limits, load and counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Varz {
    /// The server's unique id.
    pub server_id: String,
    /// The server's name.
    pub server_name: String,
    /// The server version.
    pub version: String,
    /// The host it listens on.
    pub host: String,
    /// The client port.
    pub port: u16,
    /// When the server started.
    #[serde(with = "timestamp")]
    pub start: Option<OffsetDateTime>,
    /// Uptime as Go duration text.
    pub uptime: String,
    /// Resident memory in bytes.
    pub mem: i64,
    /// Cores available to the process.
    pub cores: u32,
    /// CPU use in percent (of one core).
    pub cpu: f64,
    /// Client connections now.
    pub connections: u64,
    /// Client connections since start.
    pub total_connections: u64,
    /// Route connections (several per peer since 2.10: a pool plus per-account routes).
    pub routes: u64,
    /// Leaf node connections.
    pub leafnodes: u64,
    /// Messages received (clients, routes, gateways, leaf nodes).
    pub in_msgs: i64,
    /// Messages sent.
    pub out_msgs: i64,
    /// Bytes received.
    pub in_bytes: i64,
    /// Bytes sent.
    pub out_bytes: i64,
    /// Clients disconnected as slow consumers since start.
    pub slow_consumers: i64,
    /// Slow consumers by connection kind.
    pub slow_consumer_stats: Option<SlowConsumersStats>,
    /// Active subscriptions.
    pub subscriptions: u64,
    /// Largest accepted payload.
    pub max_payload: u64,
    /// Client URLs it advertises.
    pub connect_urls: Vec<String>,
    /// Cluster settings.
    pub cluster: ClusterVarz,
    /// JetStream state.
    pub jetstream: JetStreamVarz,
    /// The system account's name.
    pub system_account: Option<String>,
    /// Configured tags.
    pub tags: Vec<String>,
}

/// Slow consumers counted by the kind of connection that was slow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlowConsumersStats {
    /// Client connections.
    pub clients: u64,
    /// Route connections.
    pub routes: u64,
    /// Gateway connections.
    pub gateways: u64,
    /// Leaf node connections.
    pub leafs: u64,
}

/// The `cluster` section of `VARZ`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterVarz {
    /// The cluster name.
    pub name: Option<String>,
    /// The route listen address.
    pub addr: Option<String>,
    /// The route port.
    pub cluster_port: u16,
    /// Configured route URLs.
    pub urls: Vec<String>,
}

/// The `jetstream` section of `VARZ` (and of `STATSZ`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamVarz {
    /// The meta group as this server sees it; only the meta leader lists the peers.
    pub meta: Option<MetaCluster>,
    /// The JetStream configuration and usage, kept as the server sent them.
    pub config: Option<serde_json::Value>,
    /// Usage counters, kept as the server sent them.
    pub stats: Option<serde_json::Value>,
}
