//! The envelope every `$SYS` monitoring answer comes in: which server answered, and either
//! the data or an error.

use serde::{Deserialize, Serialize};

/// The server that answered a `$SYS` request (its `ServerInfo` in the server's terms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerIdentity {
    /// The server name (`server_name`; the id when none is configured).
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// The server's unique id (what `$SYS.REQ.SERVER.<id>.*` addresses).
    pub id: String,
    /// The cluster name, if clustered.
    pub cluster: Option<String>,
    /// The JetStream domain, if any.
    pub domain: Option<String>,
    /// The server version.
    #[serde(rename = "ver")]
    pub version: String,
    /// Configured tags.
    pub tags: Vec<String>,
    /// JetStream enabled on this server.
    pub jetstream: bool,
}

/// An error a server returned instead of data (bad options, unknown account, no such client).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiErrorBody {
    /// An HTTP-like status: 400 for a bad request, 500 when the server failed to answer.
    pub code: u16,
    /// The server's text.
    pub description: String,
}

/// `{"server": ..., "data": ..., "error": ...}` as the server sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, bound = "T: Deserialize<'de>")]
pub(crate) struct ApiResponse<T> {
    pub(crate) server: ServerIdentity,
    pub(crate) data: Option<T>,
    pub(crate) error: Option<ApiErrorBody>,
}

impl<T> Default for ApiResponse<T> {
    fn default() -> Self {
        ApiResponse {
            server: ServerIdentity::default(),
            data: None,
            error: None,
        }
    }
}
