//! `STATSZ`: the periodic server statistics, on request.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::envelope::ServerIdentity;
use super::timestamp;
use super::varz::{JetStreamVarz, SlowConsumersStats};

/// A `STATSZ` answer: unlike the other kinds it carries its data under `statsz`, not `data`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Statsz {
    /// The answering server.
    pub server: ServerIdentity,
    /// Its statistics.
    pub statsz: ServerStats,
}

/// A server's statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerStats {
    /// When the server started.
    #[serde(with = "timestamp")]
    pub start: Option<OffsetDateTime>,
    /// Resident memory in bytes.
    pub mem: i64,
    /// Cores.
    pub cores: u32,
    /// CPU use in percent.
    pub cpu: f64,
    /// Client connections now.
    pub connections: u64,
    /// Client connections since start.
    pub total_connections: u64,
    /// Accounts with activity.
    pub active_accounts: u64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// Everything sent.
    pub sent: DataStats,
    /// Everything received.
    pub received: DataStats,
    /// Slow consumers since start.
    pub slow_consumers: i64,
    /// Slow consumers by kind, when any.
    pub slow_consumer_stats: Option<SlowConsumersStats>,
    /// One entry per route connection, naming the peer.
    pub routes: Vec<RouteStat>,
    /// Servers this one knows in the system account (itself included).
    pub active_servers: u64,
    /// JetStream state; the meta leader lists the meta group's peers.
    pub jetstream: Option<JetStreamVarz>,
}

/// Messages and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataStats {
    /// Messages.
    pub msgs: i64,
    /// Bytes.
    pub bytes: i64,
}

/// One route connection in `STATSZ`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteStat {
    /// The route's connection id.
    pub rid: u64,
    /// The peer's server name.
    pub name: Option<String>,
    /// Bytes waiting to be written.
    pub pending: u64,
}
