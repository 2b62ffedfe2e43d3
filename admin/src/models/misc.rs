//! `SUBSZ`, `GATEWAYZ`, `LEAFZ` and `ACCOUNTZ`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What `SUBSZ` returns: the subscription table's statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subsz {
    /// The answering server's id.
    pub server_id: String,
    /// Subscriptions.
    pub num_subscriptions: u64,
    /// Cached subject matches.
    pub num_cache: u64,
    /// Subscriptions inserted since start.
    pub num_inserts: u64,
    /// Subscriptions removed since start.
    pub num_removes: u64,
    /// Subject matches since start.
    pub num_matches: u64,
    /// The match cache's hit rate.
    pub cache_hit_rate: f64,
    /// The largest fan-out of one message.
    pub max_fanout: u64,
    /// The average fan-out.
    pub avg_fanout: f64,
    /// Subscriptions matching the filter (before paging).
    pub total: u64,
    /// The subscriptions (with `subscriptions` in the options), kept as the server sent them.
    pub subscriptions_list: Vec<serde_json::Value>,
}

/// What `GATEWAYZ` returns (super-cluster links). The per-gateway details are kept as the
/// server sent them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gatewayz {
    /// The answering server's id.
    pub server_id: String,
    /// This server's gateway (cluster) name, when gateways are configured.
    pub name: Option<String>,
    /// Outbound gateway connections by remote name.
    pub outbound_gateways: BTreeMap<String, serde_json::Value>,
    /// Inbound gateway connections by remote name.
    pub inbound_gateways: BTreeMap<String, serde_json::Value>,
}

/// What `LEAFZ` returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Leafz {
    /// The answering server's id.
    pub server_id: String,
    /// Leaf node connections.
    pub leafnodes: u64,
    /// Each leaf node connection.
    pub leafs: Vec<LeafInfo>,
}

/// One leaf node connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafInfo {
    /// The remote server's name.
    pub name: String,
    /// The local account it is bound to.
    pub account: String,
    /// The remote IP.
    pub ip: String,
    /// The remote port.
    pub port: u16,
    /// Round-trip time as Go duration text.
    pub rtt: Option<String>,
    /// Messages received.
    pub in_msgs: i64,
    /// Messages sent.
    pub out_msgs: i64,
    /// Subscriptions.
    pub subscriptions: u64,
}

/// What `ACCOUNTZ` returns: the accounts a server knows, or one account's details.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Accountz {
    /// The answering server's id.
    pub server_id: String,
    /// The system account's name.
    pub system_account: Option<String>,
    /// The account names (without `account` in the options).
    pub accounts: Vec<String>,
    /// One account's details (with `account`).
    pub account_detail: Option<AccountInfo>,
}

/// One account's details.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountInfo {
    /// The account name.
    pub account_name: String,
    /// It is the system account.
    pub is_system: bool,
    /// JetStream is enabled for it.
    pub jetstream_enabled: bool,
    /// Client connections in it on this server.
    pub client_connections: u64,
    /// Leaf node connections in it on this server.
    pub leafnode_connections: u64,
    /// Subscriptions in it on this server.
    pub subscriptions: u64,
}
