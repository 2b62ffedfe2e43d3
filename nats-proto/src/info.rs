//! The server's INFO: sent first on every connection and again whenever the cluster changes.

use serde::{Deserialize, Serialize};

/// The JSON body of an INFO op. Every field is optional and unknown fields are ignored, so a
/// newer server never breaks an older client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    /// The server's unique id.
    pub server_id: String,
    /// The server's configured name.
    pub server_name: String,
    /// Server version, e.g. `2.15.1`.
    pub version: String,
    /// Go version the server was built with.
    pub go: String,
    /// Host the server listens on.
    pub host: String,
    /// Port the server listens on.
    pub port: u16,
    /// Whether the server supports headers (HPUB/HMSG).
    pub headers: bool,
    /// Largest payload (headers included) the server accepts.
    pub max_payload: usize,
    /// Protocol version.
    pub proto: i32,
    /// This connection's id on the server.
    pub client_id: u64,
    /// Whether the server requires authentication.
    pub auth_required: bool,
    /// Whether the server requires TLS.
    pub tls_required: bool,
    /// Whether the server verifies client certificates.
    pub tls_verify: bool,
    /// Whether the server offers TLS without requiring it.
    pub tls_available: bool,
    /// Client URLs of the other servers in the cluster.
    pub connect_urls: Vec<String>,
    /// Websocket URLs of the other servers in the cluster.
    pub ws_connect_urls: Vec<String>,
    /// Lame-duck mode: the server is about to shut down; clients should move.
    pub ldm: bool,
    /// Git commit of the server build.
    pub git_commit: String,
    /// Whether JetStream is enabled.
    pub jetstream: bool,
    /// The client's IP as the server sees it.
    pub client_ip: String,
    /// Nonce to sign for NKey/JWT authentication.
    pub nonce: Option<String>,
    /// Cluster name.
    pub cluster: Option<String>,
    /// JetStream domain.
    pub domain: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored() {
        let info: ServerInfo = serde_json::from_str(
            r#"{"server_id":"S1","port":4222,"max_payload":1048576,"headers":true,
                "connect_urls":["127.0.0.1:4223"],"some_future_field":{"x":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(info.server_id, "S1");
        assert_eq!(info.max_payload, 1 << 20);
        assert_eq!(info.connect_urls, ["127.0.0.1:4223"]);
        assert!(!info.ldm);
    }
}
