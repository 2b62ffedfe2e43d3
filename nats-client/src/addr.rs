//! Server addresses: `nats://user:pass@host:port`, `tls://host`, `host:port`, `host`.

use crate::error::ConnectError;

/// Default client port.
pub const DEFAULT_PORT: u16 = 4222;

/// One server to connect to.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `tls://` was given: TLS is required for this server.
    pub tls: bool,
    /// User name from the URL.
    pub user: Option<String>,
    /// Password from the URL.
    pub pass: Option<String>,
}

impl std::fmt::Debug for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("ServerAddr")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "tls" } else { "nats" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl ServerAddr {
    /// Parses a server URL. A bare `host[:port]` means `nats://`; a bare token in the user part
    /// (`nats://token@host`) is taken as the user name, as the server reads it.
    ///
    /// ```
    /// use nats_client::ServerAddr;
    /// let a = ServerAddr::parse("nats://alice:s3cret@127.0.0.1:4333").unwrap();
    /// assert_eq!((a.host.as_str(), a.port, a.user.as_deref()), ("127.0.0.1", 4333, Some("alice")));
    /// assert!(ServerAddr::parse("tls://localhost").unwrap().tls);
    /// assert_eq!(ServerAddr::parse("127.0.0.1").unwrap().port, 4222);
    /// assert!(format!("{a:?}").find("s3cret").is_none());
    /// ```
    pub fn parse(input: &str) -> Result<ServerAddr, ConnectError> {
        let invalid = |reason: &str| ConnectError::InvalidUrl {
            url: redact(input),
            reason: reason.to_owned(),
        };
        let trimmed = input.trim();
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("nats://{trimmed}")
        };
        let url = url::Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
        let tls = match url.scheme() {
            "nats" => false,
            "tls" => true,
            other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
        };
        let host = url
            .host_str()
            .ok_or_else(|| invalid("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = (!url.username().is_empty()).then(|| decode(url.username()));
        let pass = url.password().map(decode);
        Ok(ServerAddr {
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
            tls,
            user,
            pass,
        })
    }

    /// `host:port` for socket connection.
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL with any password replaced, for error messages.
fn redact(input: &str) -> String {
    match (input.find("://"), input.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            format!("{}://<credentials>@{}", &input[..s], &input[at + 1..])
        }
        (None, Some(at)) => format!("<credentials>@{}", &input[at + 1..]),
        _ => input.to_owned(),
    }
}

/// Anything that names one or more servers: a URL, a comma-separated list, or a list.
pub trait ToServerAddrs {
    /// The parsed addresses.
    fn to_server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError>;
}

impl ToServerAddrs for str {
    fn to_server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError> {
        self.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(ServerAddr::parse)
            .collect()
    }
}

impl ToServerAddrs for String {
    fn to_server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError> {
        self.as_str().to_server_addrs()
    }
}

impl ToServerAddrs for ServerAddr {
    fn to_server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError> {
        Ok(vec![self.clone()])
    }
}

impl<T: ToServerAddrs> ToServerAddrs for [T] {
    fn to_server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError> {
        let mut out = Vec::new();
        for t in self {
            out.extend(t.to_server_addrs()?);
        }
        Ok(out)
    }
}

impl<T: ToServerAddrs> ToServerAddrs for Vec<T> {
    fn to_server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError> {
        self.as_slice().to_server_addrs()
    }
}

impl<T: ToServerAddrs + ?Sized> ToServerAddrs for &T {
    fn to_server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError> {
        (**self).to_server_addrs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let a = ServerAddr::parse("nats://u%40x:p%3Aw@h:1").unwrap();
        assert_eq!(
            (a.user.as_deref(), a.pass.as_deref()),
            (Some("u@x"), Some("p:w"))
        );
        let a = ServerAddr::parse("[::1]:5").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 5));
        assert_eq!(a.socket_addr(), "[::1]:5");
        assert!(ServerAddr::parse("http://x").is_err());
        let list = "nats://a:1, nats://b:2".to_server_addrs().unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn errors_hide_passwords() {
        let e = ServerAddr::parse("ftp://u:secret@h").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
