//! What to ask for: the kinds of `$SYS` requests and their options, serialized as the request
//! body the server reads (`server/events.go`'s `*EventOptions`). Empty options send `{}`.

use serde::{Serialize, Serializer};

/// A kind of per-server monitoring request: `$SYS.REQ.SERVER.PING.<KIND>` (every server
/// answers) or `$SYS.REQ.SERVER.<id>.<KIND>` (one server answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// General information and statistics ([`Varz`](crate::models::Varz)).
    Varz,
    /// Client connections ([`Connz`](crate::models::Connz)).
    Connz,
    /// Routes ([`Routez`](crate::models::Routez)).
    Routez,
    /// Gateways ([`Gatewayz`](crate::models::Gatewayz)).
    Gatewayz,
    /// Leaf nodes ([`Leafz`](crate::models::Leafz)).
    Leafz,
    /// Subscriptions ([`Subsz`](crate::models::Subsz)).
    Subsz,
    /// JetStream ([`JetStreamInfo`](crate::models::JetStreamInfo)).
    Jsz,
    /// Health ([`HealthStatus`](crate::models::HealthStatus)).
    Healthz,
    /// Accounts ([`Accountz`](crate::models::Accountz)).
    Accountz,
    /// Statistics ([`ServerStats`](crate::models::ServerStats)). The server spells this kind
    /// `STATSZ` (the account-level one is `STATZ`).
    Statsz,
}

impl ServerKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [ServerKind; 10] = [
        ServerKind::Varz,
        ServerKind::Connz,
        ServerKind::Routez,
        ServerKind::Gatewayz,
        ServerKind::Leafz,
        ServerKind::Subsz,
        ServerKind::Jsz,
        ServerKind::Healthz,
        ServerKind::Accountz,
        ServerKind::Statsz,
    ];

    /// The subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Varz => "VARZ",
            ServerKind::Connz => "CONNZ",
            ServerKind::Routez => "ROUTEZ",
            ServerKind::Gatewayz => "GATEWAYZ",
            ServerKind::Leafz => "LEAFZ",
            ServerKind::Subsz => "SUBSZ",
            ServerKind::Jsz => "JSZ",
            ServerKind::Healthz => "HEALTHZ",
            ServerKind::Accountz => "ACCOUNTZ",
            ServerKind::Statsz => "STATSZ",
        }
    }
}

/// A kind of per-account request: `$SYS.REQ.ACCOUNT.<account>.<KIND>`, answered by every
/// server that knows the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// The account's subscriptions.
    Subsz,
    /// The account's connections.
    Connz,
    /// The account's leaf nodes.
    Leafz,
    /// The account's JetStream usage.
    Jsz,
    /// The account's details (imports, exports, limits).
    Info,
    /// The account's statistics; servers without connections in it stay silent.
    Statz,
}

impl AccountKind {
    /// The subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Subsz => "SUBSZ",
            AccountKind::Connz => "CONNZ",
            AccountKind::Leafz => "LEAFZ",
            AccountKind::Jsz => "JSZ",
            AccountKind::Info => "INFO",
            AccountKind::Statz => "STATZ",
        }
    }
}

/// Restricts which servers answer a request (every option that is set must match; names,
/// hosts and clusters match as substrings unless `exact_match`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerFilter {
    /// Server name.
    #[serde(rename = "server_name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Cluster name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Match the above exactly instead of as substrings.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exact_match: bool,
    /// Tags the server must all have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// JetStream domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// Options without anything but the server filter (VARZ, STATSZ, ROUTEZ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NoOptions {
    /// Which servers answer.
    #[serde(flatten)]
    pub filter: ServerFilter,
}

/// How `CONNZ` orders connections. Only [`ConnSort::Cid`] and [`ConnSort::Start`] are
/// ascending; every other order is descending (largest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConnSort {
    /// Connection id.
    #[serde(rename = "cid")]
    Cid,
    /// Connect time.
    #[serde(rename = "start")]
    Start,
    /// Subscriptions.
    #[serde(rename = "subs")]
    Subs,
    /// Bytes waiting to be written to the client.
    #[serde(rename = "pending")]
    Pending,
    /// Messages sent to the client.
    #[serde(rename = "msgs_to")]
    MsgsTo,
    /// Messages received from the client.
    #[serde(rename = "msgs_from")]
    MsgsFrom,
    /// Bytes sent to the client.
    #[serde(rename = "bytes_to")]
    BytesTo,
    /// Bytes received from the client.
    #[serde(rename = "bytes_from")]
    BytesFrom,
    /// Last activity.
    #[serde(rename = "last")]
    Last,
    /// Idle time.
    #[serde(rename = "idle")]
    Idle,
    /// Uptime.
    #[serde(rename = "uptime")]
    Uptime,
    /// Round-trip time.
    #[serde(rename = "rtt")]
    Rtt,
}

/// Which connections `CONNZ` lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnState {
    /// Open connections.
    #[default]
    Open,
    /// Recently closed connections the server remembers.
    Closed,
    /// Both.
    All,
}

impl Serialize for ConnState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The server reads the state as a number.
        s.serialize_u8(match self {
            ConnState::Open => 0,
            ConnState::Closed => 1,
            ConnState::All => 2,
        })
    }
}

/// `CONNZ` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnzOptions {
    /// The order (the server's default is by cid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<ConnSort>,
    /// Include user and account (needed for the `user` and `account` filters).
    #[serde(rename = "auth", skip_serializing_if = "std::ops::Not::not")]
    pub auth: bool,
    /// Include the subscribed subjects.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub subscriptions: bool,
    /// Page offset.
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// Page size (the server's default is 1024).
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
    /// Only this connection id.
    #[serde(skip_serializing_if = "is_zero")]
    pub cid: u64,
    /// Open, closed or all.
    pub state: ConnState,
    /// Only this user (with `auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only this account (with `auth`).
    #[serde(rename = "acc", skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Only connections subscribed to this subject (with `auth`, and an account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    /// Which servers answer.
    #[serde(flatten)]
    pub filter: ServerFilter,
}

/// `JSZ` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JszOptions {
    /// Only this account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Include per-account details.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub accounts: bool,
    /// Include streams.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub streams: bool,
    /// Include consumers (with `streams`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub consumer: bool,
    /// Include stream configurations.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub config: bool,
    /// Only the meta leader answers.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub leader_only: bool,
    /// Only stream leaders report their streams.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream_leader_only: bool,
    /// Account page offset.
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// Account page size.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
    /// Which servers answer.
    #[serde(flatten)]
    pub filter: ServerFilter,
}

/// `HEALTHZ` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthzOptions {
    /// Only check that JetStream is enabled.
    #[serde(rename = "js-enabled-only", skip_serializing_if = "std::ops::Not::not")]
    pub js_enabled_only: bool,
    /// Only check the server's JetStream, not its streams.
    #[serde(rename = "js-server-only", skip_serializing_if = "std::ops::Not::not")]
    pub js_server_only: bool,
    /// Only check the meta group.
    #[serde(rename = "js-meta-only", skip_serializing_if = "std::ops::Not::not")]
    pub js_meta_only: bool,
    /// Only this account's assets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Only this stream (with `account`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Only this consumer (with `stream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// List every problem, not only the first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub details: bool,
    /// Which servers answer.
    #[serde(flatten)]
    pub filter: ServerFilter,
}

/// `SUBSZ` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubszOptions {
    /// Page offset.
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// Page size.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
    /// Include the subscriptions.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub subscriptions: bool,
    /// Only this account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Only subscriptions a message on this literal subject would reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Which servers answer.
    #[serde(flatten)]
    pub filter: ServerFilter,
}

/// `ACCOUNTZ` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountzOptions {
    /// Details of this account instead of the list of names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Which servers answer.
    #[serde(flatten)]
    pub filter: ServerFilter,
}

/// `LEAFZ` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LeafzOptions {
    /// Include the leaf nodes' subscriptions.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub subscriptions: bool,
    /// Only this account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Which servers answer.
    #[serde(flatten)]
    pub filter: ServerFilter,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connz_options_use_the_servers_names() {
        let body = serde_json::to_value(ConnzOptions {
            sort: Some(ConnSort::BytesTo),
            auth: true,
            limit: 5,
            account: Some("APP".into()),
            state: ConnState::All,
            filter: ServerFilter {
                name: Some("n1".into()),
                ..ServerFilter::default()
            },
            ..ConnzOptions::default()
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"sort":"bytes_to","auth":true,"limit":5,"acc":"APP","state":2,
                               "server_name":"n1"})
        );
    }

    #[test]
    fn empty_options_are_an_empty_object() {
        assert_eq!(serde_json::to_string(&NoOptions::default()).unwrap(), "{}");
        assert_eq!(serde_json::to_string(&JszOptions::default()).unwrap(), "{}");
    }
}
