//! The envelope every `$SYS` monitoring answer comes in: which server answered, and either
//! the data or an error.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::AdminError;

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

/// The `STATSZ` envelope: data under `statsz` instead of `data`.
#[derive(Deserialize)]
#[serde(default, bound = "T: Deserialize<'de>")]
struct StatszEnvelope<T> {
    server: ServerIdentity,
    statsz: Option<T>,
    error: Option<ApiErrorBody>,
}

impl<T> Default for StatszEnvelope<T> {
    fn default() -> Self {
        StatszEnvelope {
            server: ServerIdentity::default(),
            statsz: None,
            error: None,
        }
    }
}

/// Who answered, and its data (absent for commands such as KICK) or its error.
pub(crate) type Decoded<T> = (ServerIdentity, Result<Option<T>, ApiErrorBody>);

/// Decodes one answer to a request on `subject` (`statsz`: the `STATSZ` envelope).
pub(crate) fn decode<T: DeserializeOwned>(
    subject: &str,
    statsz: bool,
    payload: &[u8],
) -> Result<Decoded<T>, AdminError> {
    let bad = |e: serde_json::Error| AdminError::Decode {
        subject: subject.to_string(),
        message: e.to_string(),
    };
    let (server, data, error) = if statsz {
        let env: StatszEnvelope<T> = serde_json::from_slice(payload).map_err(bad)?;
        (env.server, env.statsz, env.error)
    } else {
        let env: ApiResponse<T> = serde_json::from_slice(payload).map_err(bad)?;
        (env.server, env.data, env.error)
    };
    Ok((server, error.map_or(Ok(data), Err)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ServerStats, Varz};

    #[test]
    fn data_error_and_statsz_envelopes() {
        let (server, data) = decode::<Varz>(
            "s",
            false,
            br#"{"server":{"name":"n1","id":"X","ver":"2.15.1","new_field":[1]},
                 "data":{"server_name":"n1","connections":3,"start":"0001-01-01T00:00:00Z",
                         "someday":{"a":1}}}"#,
        )
        .unwrap();
        assert_eq!(
            (server.name.as_str(), server.version.as_str()),
            ("n1", "2.15.1")
        );
        let varz = data.unwrap().unwrap();
        assert_eq!(varz.connections, 3);
        assert_eq!(varz.start, None, "Go's zero time is no time");

        let (_, data) = decode::<Varz>(
            "s",
            false,
            br#"{"server":{"name":"n2"},"error":{"code":500,"description":"no such client id"}}"#,
        )
        .unwrap();
        let err = data.unwrap_err();
        assert_eq!(
            (err.code, err.description.as_str()),
            (500, "no such client id")
        );

        let (server, data) = decode::<ServerStats>(
            "s",
            true,
            br#"{"server":{"name":"n3"},"statsz":{"connections":7,"routes":[{"rid":1,"name":"n1"}]}}"#,
        )
        .unwrap();
        assert_eq!(server.name, "n3");
        let stats = data.unwrap().unwrap();
        assert_eq!(stats.connections, 7);
        assert_eq!(stats.routes[0].name.as_deref(), Some("n1"));

        // A command's success: no data, no error.
        let (_, data) =
            decode::<serde_json::Value>("s", false, br#"{"server":{"name":"n1"}}"#).unwrap();
        assert_eq!(data, Ok(None));

        assert!(matches!(
            decode::<Varz>("s", false, b"not json"),
            Err(AdminError::Decode { .. })
        ));
    }
}
