//! Connection URLs: `amqp://user:pass@host:port/vhost` and `nats://` URLs, turned into what a
//! NATS connection needs (servers, credentials, namespace).
//!
//! - `amqp://` -> `nats://`, `amqps://` -> `tls://`; an absent port is NATS's 4222 (an explicit
//!   port is used as written: point the URL at the NATS server).
//! - user and password (percent-decoded) become NATS user/password credentials.
//! - The vhost (the path, percent-decoded; `/`, `%2f` or empty = the default vhost) becomes the
//!   subject namespace; a `namespace` query parameter sets it explicitly.
//! - Several servers: comma-separated, `nats://a:4222,nats://b:4222` or `nats://a:4222,b:4222`.
//! - `publish_dedupe=true` gives every stored copy a `Nats-Msg-Id`, so a publish resent after
//!   a stream leader change is stored once (default `false`: resent without an id, a copy may
//!   be stored twice; `docs/amqp-mapping.md` §7).
//! - AMQP tuning parameters (`heartbeat`, `frame_max`, `channel_max`, `connection_timeout`,
//!   `auth_mechanism`) are accepted and ignored; any other parameter is an error.

use std::fmt;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::{Error, ErrorKind, Result};

/// NATS's default client port.
pub const DEFAULT_NATS_PORT: u16 = 4222;

const IGNORED_PARAMS: &[&str] = &[
    "heartbeat",
    "frame_max",
    "channel_max",
    "connection_timeout",
    "auth_mechanism",
];

/// A parsed connection URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUri {
    /// NATS server URLs (`nats://host:port` or `tls://host:port`), without credentials.
    pub servers: Vec<String>,
    /// User and password, if the URL carried them.
    pub credentials: Option<Credentials>,
    /// The AMQP vhost as written (decoded); `/` for the default vhost.
    pub vhost: String,
    /// The subject namespace: the `namespace` parameter, else the vhost unless it is `/`.
    pub namespace: Option<String>,
    /// `publish_dedupe`: each stored copy carries a `Nats-Msg-Id` (default false).
    pub publish_dedupe: bool,
}

/// User/password credentials from a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for ConnectionUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionUri")
            .field("servers", &self.servers)
            .field("credentials", &self.credentials)
            .field("vhost", &self.vhost)
            .field("namespace", &self.namespace)
            .field("publish_dedupe", &self.publish_dedupe)
            .finish()
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    ErrorKind::InvalidUri(msg.into()).into()
}

impl ConnectionUri {
    /// Parses a URL; see the module docs for what is understood.
    pub fn parse(uri: &str) -> Result<Self> {
        let uri = uri.trim();
        let (scheme, _) = uri
            .split_once("://")
            .ok_or_else(|| invalid(format!("no scheme in {:?}", redact(uri))))?;
        let mut servers = Vec::new();
        let mut credentials = None;
        let mut vhost = None;
        let mut namespace = None;
        let mut publish_dedupe = false;
        let parts: Vec<&str> = uri.split(',').collect();
        for (i, part) in parts.iter().enumerate() {
            let part = part.trim();
            let full = if part.contains("://") {
                part.to_owned()
            } else {
                format!("{scheme}://{part}")
            };
            let url = Url::parse(&full).map_err(|e| invalid(format!("{}: {e}", redact(&full))))?;
            let nats_scheme = match url.scheme() {
                "amqp" | "nats" => "nats",
                "amqps" | "tls" => "tls",
                other => return Err(invalid(format!("unsupported scheme {other:?}"))),
            };
            let host = url
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| invalid(format!("no host in {}", redact(&full))))?;
            let port = url.port().unwrap_or(DEFAULT_NATS_PORT);
            servers.push(format!("{nats_scheme}://{host}:{port}"));
            if !url.username().is_empty() {
                let c = Credentials {
                    user: decode(url.username())?,
                    password: decode(url.password().unwrap_or(""))?,
                };
                if credentials.as_ref().is_some_and(|old| old != &c) {
                    return Err(invalid("different credentials for different servers"));
                }
                credentials = Some(c);
            }
            // The path and query belong to the last URL of the list, as in nats.go's lists.
            let last = i + 1 == parts.len();
            let path = url.path();
            if !(last || path.is_empty() || path == "/") {
                return Err(invalid("only the last URL of a list may name a vhost"));
            }
            if last {
                vhost = Some(match path.strip_prefix('/') {
                    None | Some("") => "/".to_owned(),
                    Some(v) => decode(v)?,
                });
                for (k, v) in url.query_pairs() {
                    match &*k {
                        "namespace" => namespace = Some(v.into_owned()),
                        "publish_dedupe" => {
                            publish_dedupe = match &*v {
                                "true" | "1" => true,
                                "false" | "0" => false,
                                v => return Err(invalid(format!("publish_dedupe={v:?}"))),
                            }
                        }
                        k if IGNORED_PARAMS.contains(&k) => {}
                        k => return Err(invalid(format!("unknown URL parameter {k:?}"))),
                    }
                }
            }
        }
        let vhost = vhost.unwrap_or_else(|| "/".to_owned());
        let namespace = namespace
            .or_else(|| (vhost != "/").then(|| vhost.clone()))
            .filter(|n| !n.is_empty());
        if let Some(ns) = &namespace {
            crate::subject::validate_namespace(ns)
                .map_err(|e| invalid(format!("namespace {ns:?}: {e}")))?;
        }
        Ok(Self {
            servers,
            credentials,
            vhost,
            namespace,
            publish_dedupe,
        })
    }
}

fn decode(s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| invalid("a percent-encoded part is not UTF-8"))
}

/// The URL with any password replaced, for error messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => match uri[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &uri[..s + 3], &uri[at..]),
            None => uri.to_owned(),
        },
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amqp_url_with_everything() {
        let u = ConnectionUri::parse("amqp://guest:p%40ss@rabbit.local:5673/wire?heartbeat=30")
            .unwrap();
        assert_eq!(u.servers, ["nats://rabbit.local:5673"]);
        let c = u.credentials.clone().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("guest", "p@ss"));
        assert_eq!(u.vhost, "wire");
        assert_eq!(u.namespace.as_deref(), Some("wire"));
        assert!(!format!("{u:?}").contains("p@ss"));
    }

    #[test]
    fn default_vhost_means_no_namespace() {
        for url in ["amqp://h", "amqp://h/", "amqp://h/%2f", "amqp://h:4222/%2F"] {
            let u = ConnectionUri::parse(url).unwrap();
            assert_eq!(u.vhost, "/", "{url}");
            assert_eq!(u.namespace, None, "{url}");
            assert_eq!(u.servers, ["nats://h:4222"], "{url}");
            assert_eq!(u.credentials, None);
        }
    }

    #[test]
    fn nats_lists_tls_and_explicit_namespace() {
        let u = ConnectionUri::parse("nats://a:4222,b:4223,nats://c?namespace=prod").unwrap();
        assert_eq!(
            u.servers,
            ["nats://a:4222", "nats://b:4223", "nats://c:4222"]
        );
        assert_eq!(u.namespace.as_deref(), Some("prod"));
        assert!(!u.publish_dedupe);
        let u = ConnectionUri::parse("nats://c?publish_dedupe=true&namespace=p").unwrap();
        assert!(u.publish_dedupe);
        let u = ConnectionUri::parse("amqps://u:p@h:5671/").unwrap();
        assert_eq!(u.servers, ["tls://h:5671"]);
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        for bad in [
            "rabbit:5672",
            "http://h",
            "amqp://",
            "amqp://h?bogus=1",
            "amqp://h?publish_dedupe=yes",
            "amqp://h/a.b.",
            "amqp://h/has%20space",
            "amqp://h:99999",
            "amqp://h/v,nats://g",
            "amqp://h/%ff",
        ] {
            let err = ConnectionUri::parse(bad).expect_err(bad);
            assert!(
                matches!(err.kind(), ErrorKind::InvalidUri(_)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn errors_do_not_show_passwords() {
        let err = ConnectionUri::parse("amqp://u:secret@h:5672/v?bogus=1,").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = ConnectionUri::parse("http://u:secret@h").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
