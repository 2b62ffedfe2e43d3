//! The client's CONNECT options.

use serde::{Deserialize, Serialize};

/// The JSON body of a CONNECT op. Absent options are left out of the JSON.
///
/// `Debug` redacts every secret (password, token, signature, JWT), so logging a
/// `ConnectInfo` never leaks credentials.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectInfo {
    /// Ask the server for `+OK` after every op (we keep it off).
    pub verbose: bool,
    /// Ask the server for strict subject checking.
    pub pedantic: bool,
    /// Whether the client requires TLS.
    pub tls_required: bool,
    /// Token authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// Connection name shown in monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Client language.
    pub lang: String,
    /// Client version.
    pub version: String,
    /// Protocol version (1: the server may send async INFO).
    pub protocol: u8,
    /// Whether the server may deliver our own publishes to our subscriptions.
    pub echo: bool,
    /// Signature of the server nonce (NKey/JWT auth), base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// User JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// Public NKey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// Ask for a 503 status message when a request has no responders.
    pub no_responders: bool,
    /// Whether the client understands headers.
    pub headers: bool,
}

impl std::fmt::Debug for ConnectInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConnectInfo")
            .field("verbose", &self.verbose)
            .field("pedantic", &self.pedantic)
            .field("tls_required", &self.tls_required)
            .field("auth_token", &redact(&self.auth_token))
            .field("user", &self.user)
            .field("pass", &redact(&self.pass))
            .field("name", &self.name)
            .field("lang", &self.lang)
            .field("version", &self.version)
            .field("protocol", &self.protocol)
            .field("echo", &self.echo)
            .field("sig", &redact(&self.sig))
            .field("jwt", &redact(&self.jwt))
            .field("nkey", &self.nkey)
            .field("no_responders", &self.no_responders)
            .field("headers", &self.headers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let c = ConnectInfo {
            user: Some("alice".into()),
            pass: Some("hunter2".into()),
            auth_token: Some("s3cret".into()),
            jwt: Some("eyJ.jwt".into()),
            sig: Some("sig123".into()),
            ..Default::default()
        };
        let d = format!("{c:?}");
        assert!(d.contains("alice"));
        for secret in ["hunter2", "s3cret", "eyJ.jwt", "sig123"] {
            assert!(!d.contains(secret), "{d}");
        }
    }

    #[test]
    fn absent_options_are_omitted() {
        let json = serde_json::to_string(&ConnectInfo::default()).unwrap();
        assert!(!json.contains("pass"));
        assert!(!json.contains("auth_token"));
    }
}
