//! `ConnectOptions`: the builder for a client.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{AuthCallback, Credentials};
use crate::events::Event;
use crate::reconnect::{Backoff, ReconnectDelay};

/// How to connect, authenticate and behave. Build one, then call
/// [`ConnectOptions::connect`].
///
/// ```no_run
/// # async fn demo() -> Result<(), nats_client::ConnectError> {
/// use std::time::Duration;
/// let client = nats_client::ConnectOptions::new()
///     .name("orders-service")
///     .user_and_password("app", "app-secret")
///     .connection_timeout(Duration::from_secs(3))
///     .connect("nats://127.0.0.1:4222")
///     .await?;
/// # drop(client); Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) name: Option<String>,
    pub(crate) echo: bool,
    pub(crate) inbox_prefix: String,
    pub(crate) connection_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) credentials: Credentials,
    pub(crate) auth_callback: Option<AuthCallback>,
    pub(crate) tls: TlsOptions,
    pub(crate) pending_msgs_limit: usize,
    pub(crate) pending_bytes_limit: usize,
    pub(crate) write_buffer_limit: usize,
    pub(crate) reconnect_buffer_size: usize,
    pub(crate) max_reconnects: Option<usize>,
    pub(crate) reconnect_delay: ReconnectDelay,
    pub(crate) ping_interval: Duration,
    pub(crate) max_pings_out: usize,
    pub(crate) no_randomize: bool,
    pub(crate) ignore_discovered_servers: bool,
    pub(crate) retry_on_initial_connect: bool,
    pub(crate) event_capacity: usize,
    pub(crate) lame_duck_jitter: Duration,
    pub(crate) event_callback: Option<EventCallback>,
    /// Connect through in-memory pipes to scripted servers instead of TCP (tests only).
    #[cfg(test)]
    pub(crate) memory: Option<Arc<crate::memory::MemoryNet>>,
}

/// A function called with every [`Event`], on the connection task (see
/// [`ConnectOptions::event_callback`]).
pub(crate) type EventCallback = Arc<dyn Fn(&Event) + Send + Sync>;

/// TLS settings.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    pub required: bool,
    pub first: bool,
    pub root_certificates: Vec<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub config: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            name: None,
            echo: true,
            inbox_prefix: "_INBOX".into(),
            connection_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            credentials: Credentials::None,
            auth_callback: None,
            tls: TlsOptions::default(),
            pending_msgs_limit: 500_000,
            pending_bytes_limit: 64 * 1024 * 1024,
            write_buffer_limit: 2 * 1024 * 1024,
            reconnect_buffer_size: 8 * 1024 * 1024,
            max_reconnects: Some(60),
            reconnect_delay: ReconnectDelay::Backoff(Backoff::default()),
            ping_interval: Duration::from_secs(120),
            max_pings_out: 2,
            no_randomize: false,
            ignore_discovered_servers: false,
            retry_on_initial_connect: false,
            event_capacity: 256,
            lame_duck_jitter: Duration::from_millis(500),
            event_callback: None,
            #[cfg(test)]
            memory: None,
        }
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("name", &self.name)
            .field("echo", &self.echo)
            .field("inbox_prefix", &self.inbox_prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("credentials", &self.credentials)
            .field("auth_callback", &self.auth_callback.is_some())
            .field("tls_required", &self.tls.required)
            .field("tls_first", &self.tls.first)
            .field("pending_msgs_limit", &self.pending_msgs_limit)
            .field("pending_bytes_limit", &self.pending_bytes_limit)
            .field("reconnect_buffer_size", &self.reconnect_buffer_size)
            .field("max_reconnects", &self.max_reconnects)
            .field("event_callback", &self.event_callback.is_some())
            .finish_non_exhaustive()
    }
}

impl ConnectOptions {
    /// Options with nats.go's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection name shown in server monitoring.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Do not deliver this client's own publishes to its subscriptions.
    pub fn no_echo(mut self) -> Self {
        self.echo = false;
        self
    }

    /// Prefix of reply inboxes (default `_INBOX`).
    pub fn inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inbox_prefix = prefix.into();
        self
    }

    /// Time allowed for TCP connect, TLS and the NATS handshake (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Default timeout of [`Client::request`](crate::Client::request) (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// User and password authentication.
    pub fn user_and_password(mut self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        self.credentials = Credentials::UserPass {
            user: user.into(),
            pass: pass.into(),
        };
        self
    }

    /// Token authentication.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Credentials::Token(token.into());
        self
    }

    /// NKey authentication: the seed (`SU...`) signs the server's nonce.
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.credentials = Credentials::NKey(seed.into());
        self
    }

    /// JWT authentication from a `.creds` file (user JWT and NKey seed).
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials = Credentials::CredsFile(path.into());
        self
    }

    /// JWT authentication from a user JWT and an NKey seed given directly.
    pub fn jwt(mut self, jwt: impl Into<String>, seed: impl Into<String>) -> Self {
        self.credentials = Credentials::Jwt {
            jwt: jwt.into(),
            seed: seed.into(),
        };
        self
    }

    /// A callback asked for credentials on every (re)connect, given the server's nonce.
    pub fn auth_callback(mut self, callback: AuthCallback) -> Self {
        self.auth_callback = Some(callback);
        self
    }

    /// Require TLS even if the server does not.
    pub fn require_tls(mut self, required: bool) -> Self {
        self.tls.required = required;
        self
    }

    /// Start TLS before the server's INFO (servers configured with `handshake_first`).
    pub fn tls_first(mut self) -> Self {
        self.tls.first = true;
        self.tls.required = true;
        self
    }

    /// Trust the CA certificates in this PEM file (instead of the bundled web roots).
    pub fn add_root_certificates(mut self, pem: impl Into<PathBuf>) -> Self {
        self.tls.root_certificates.push(pem.into());
        self
    }

    /// Present this client certificate and key (PEM files) for mutual TLS.
    pub fn add_client_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Use a rustls configuration built by the caller (overrides the TLS file options).
    pub fn tls_client_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls.config = Some(Arc::new(config));
        self
    }

    /// Pending limits of each subscription: messages beyond them are dropped and reported as
    /// a slow consumer (defaults 500,000 messages and 64 MiB, as nats.go).
    pub fn subscription_pending_limits(mut self, msgs: usize, bytes: usize) -> Self {
        self.pending_msgs_limit = msgs;
        self.pending_bytes_limit = bytes;
        self
    }

    /// Bytes the write buffer may hold while connected before publishers wait (default 2 MiB).
    pub fn write_buffer_limit(mut self, bytes: usize) -> Self {
        self.write_buffer_limit = bytes.max(1);
        self
    }

    /// Bytes kept while disconnected (default 8 MiB; 0 = publishing fails at once).
    pub fn reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.reconnect_buffer_size = bytes;
        self
    }

    /// Reconnect attempts per server before it is dropped from the pool (default 60;
    /// `None` = forever): `Some(n)` makes exactly `n` attempts on each server after a loss
    /// (`Some(0)`: none), counted since the server last accepted us. When no server is left,
    /// the client sends [`Event::ReconnectsExhausted`] and closes.
    pub fn max_reconnects(mut self, attempts: Option<usize>) -> Self {
        self.max_reconnects = attempts;
        self
    }

    /// The backoff policy between reconnect attempts.
    pub fn reconnect_backoff(mut self, backoff: Backoff) -> Self {
        self.reconnect_delay = ReconnectDelay::Backoff(backoff);
        self
    }

    /// A custom delay before reconnect attempt `n` (1-based), like nats.go's
    /// `CustomReconnectDelay`.
    pub fn reconnect_delay_callback(
        mut self,
        callback: impl Fn(usize) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.reconnect_delay = ReconnectDelay::Callback(Arc::new(callback));
        self
    }

    /// Interval of the keep-alive PING (default 2 minutes).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Unanswered keep-alive PINGs before the connection is declared dead (default 2).
    pub fn max_pings_out(mut self, n: usize) -> Self {
        self.max_pings_out = n.max(1);
        self
    }

    /// Keep the server list in the given order instead of shuffling it.
    pub fn no_randomize(mut self) -> Self {
        self.no_randomize = true;
        self
    }

    /// Do not add servers announced by the cluster (`connect_urls`) to the pool.
    pub fn ignore_discovered_servers(mut self) -> Self {
        self.ignore_discovered_servers = true;
        self
    }

    /// Keep trying in the background when the first connect fails, instead of returning the
    /// error.
    pub fn retry_on_initial_connect(mut self) -> Self {
        self.retry_on_initial_connect = true;
        self
    }

    /// Upper bound of the random delay before moving off a lame-duck server (default 500 ms):
    /// spreads a server's clients over the cluster instead of moving them all at once.
    pub fn lame_duck_jitter(mut self, max: Duration) -> Self {
        self.lame_duck_jitter = max;
        self
    }

    /// Calls `callback` with every [`Event`], from the first `Connected` of
    /// [`ConnectOptions::connect`] on (the [`Client::events`](crate::Client::events) channel
    /// exists only once `connect` returns, so it cannot show that one). The callback runs on
    /// the connection task, in order, before the event goes to the channel: it must be quick,
    /// must not block, and must not call the client (it may run while the connection task
    /// holds the subscription table); send the work to a channel or task for anything more.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), nats_client::ConnectError> {
    /// let client = nats_client::ConnectOptions::new()
    ///     .event_callback(|event| eprintln!("nats: {event}"))
    ///     .connect("nats://127.0.0.1:4222")
    ///     .await?;
    /// # drop(client); Ok(()) }
    /// ```
    pub fn event_callback(mut self, callback: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.event_callback = Some(Arc::new(callback));
        self
    }

    /// Capacity of the event channel (default 256).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }
}
