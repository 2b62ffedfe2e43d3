//! `ROUTEZ`: a server's route connections to its cluster peers.

use serde::{Deserialize, Serialize};

/// What `ROUTEZ` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Routez {
    /// The answering server's id.
    pub server_id: String,
    /// The answering server's name.
    pub server_name: String,
    /// Route connections (a pool per peer since 2.10, plus per-account routes).
    pub num_routes: u64,
    /// Each route connection.
    pub routes: Vec<RouteInfo>,
}

impl Routez {
    /// The distinct peers this server has a route to, by name, sorted.
    pub fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self
            .routes
            .iter()
            .map(|r| r.remote_name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        peers.sort();
        peers.dedup();
        peers
    }
}

/// One route connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    /// The route's connection id.
    pub rid: u64,
    /// The peer's server id.
    pub remote_id: String,
    /// The peer's server name.
    pub remote_name: String,
    /// This server dialled the peer.
    pub did_solicit: bool,
    /// The peer's IP.
    pub ip: String,
    /// The peer's port.
    pub port: u16,
    /// Round-trip time as Go duration text.
    pub rtt: Option<String>,
    /// Bytes waiting to be written to the peer.
    pub pending_size: u64,
    /// Messages received over the route.
    pub in_msgs: i64,
    /// Messages sent over the route.
    pub out_msgs: i64,
    /// The account of a per-account route.
    pub account: Option<String>,
}
