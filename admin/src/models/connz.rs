//! `CONNZ`: a server's client connections.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::timestamp;

/// What `CONNZ` returns: one page of one server's connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connz {
    /// The answering server's id.
    pub server_id: String,
    /// Connections in this page.
    pub num_connections: u64,
    /// Connections on this server in the requested state, before the account, user and
    /// subject filters and before paging.
    pub total: u64,
    /// The page offset.
    pub offset: u64,
    /// The page size.
    pub limit: u64,
    /// This page.
    pub connections: Vec<ConnInfo>,
}

/// One client connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnInfo {
    /// The connection id, unique on its server (what `KICK` takes).
    pub cid: u64,
    /// The kind (`Client`, ...).
    pub kind: Option<String>,
    /// The type (`nats`, `mqtt`, `websocket`, ...).
    #[serde(rename = "type")]
    pub conn_type: Option<String>,
    /// The client's IP.
    pub ip: String,
    /// The client's port.
    pub port: u16,
    /// When it connected.
    #[serde(with = "timestamp")]
    pub start: Option<OffsetDateTime>,
    /// When it last sent or received.
    #[serde(with = "timestamp")]
    pub last_activity: Option<OffsetDateTime>,
    /// Why it was closed (closed connections only).
    pub reason: Option<String>,
    /// Round-trip time as Go duration text.
    pub rtt: Option<String>,
    /// Uptime as Go duration text.
    pub uptime: String,
    /// Idle time as Go duration text.
    pub idle: String,
    /// Bytes waiting to be written to the client.
    pub pending_bytes: u64,
    /// Messages received from the client.
    pub in_msgs: i64,
    /// Messages sent to the client.
    pub out_msgs: i64,
    /// Bytes received from the client.
    pub in_bytes: i64,
    /// Bytes sent to the client.
    pub out_bytes: i64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// The connection name the client gave in CONNECT.
    pub name: Option<String>,
    /// The client library's language.
    pub lang: Option<String>,
    /// The client library's version.
    pub version: Option<String>,
    /// The negotiated TLS version.
    pub tls_version: Option<String>,
    /// The authenticated user (asked for with `auth`).
    pub authorized_user: Option<String>,
    /// The account (asked for with `auth`).
    pub account: Option<String>,
    /// Subscribed subjects (asked for with `subscriptions`).
    pub subscriptions_list: Vec<String>,
}
