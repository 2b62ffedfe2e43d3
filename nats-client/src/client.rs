//! The [`Client`] handle: publish, subscribe, request, flush, drain, close.

use std::sync::Arc;
use std::time::Duration;

use nats_proto::{HeaderMap, ServerInfo};
use tokio::sync::broadcast;

use crate::addr::{ServerAddr, ToServerAddrs};
use crate::connection;
use crate::error::{ClientError, ConnectError, PublishError};
use crate::events::Event;
use crate::handshake::establish;
use crate::options::ConnectOptions;
use crate::outbound::{LinkState, Payload};
use crate::server_pool::ServerPool;
use crate::shared::Shared;
use crate::stats::Statistics;
use crate::sub_queue::Target;
use crate::tls;

/// A connection to a NATS server or cluster. Cheap to clone: every clone shares the one
/// connection. When the last clone (and the last [`Subscriber`](crate::Subscriber)) is dropped, the connection
/// sends what it has buffered and closes.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.request_close();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.shared().server())
            .field("state", &self.connection_state())
            .finish()
    }
}

/// The connection's state as seen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connected to a server.
    Connected,
    /// Lost the connection; reconnecting (publishes go to the reconnect buffer).
    Disconnected,
    /// Closed for good.
    Closed,
}

impl ConnectOptions {
    /// Connects to the given server(s) with these options.
    pub async fn connect<A: ToServerAddrs + ?Sized>(
        self,
        addrs: &A,
    ) -> Result<Client, ConnectError> {
        let servers = addrs.to_server_addrs()?;
        Client::connect_with(servers, self).await
    }
}

impl Client {
    pub(crate) async fn connect_with(
        servers: Vec<ServerAddr>,
        opts: ConnectOptions,
    ) -> Result<Client, ConnectError> {
        if servers.is_empty() {
            return Err(ConnectError::NoServers);
        }
        let wants_tls = opts.tls.required
            || opts.tls.config.is_some()
            || !opts.tls.root_certificates.is_empty()
            || opts.tls.client_cert.is_some()
            || servers.iter().any(|s| s.tls);
        // A server may require TLS even when we did not ask: have a default config ready.
        let tls = match tls::client_config(&opts.tls) {
            Ok(c) => Some(c),
            Err(e) if wants_tls => return Err(e),
            Err(_) => None,
        };
        let pool = ServerPool::new(servers, !opts.no_randomize, opts.max_reconnects);
        let mut first = None;
        let mut last_error = None;
        for addr in pool.addrs() {
            match establish(&addr, &opts, tls.as_ref()).await {
                Ok(est) => {
                    first = Some(est);
                    break;
                }
                Err(e) => {
                    // The channel does not exist yet; the callback can hear why.
                    if let (Some(callback), Some(error)) =
                        (&opts.event_callback, connection::handshake_server_error(&e))
                    {
                        callback(&Event::ServerError {
                            server: addr.to_string(),
                            error,
                        });
                    }
                    last_error = Some(e);
                }
            }
        }
        if first.is_none() && !opts.retry_on_initial_connect {
            return Err(last_error.unwrap_or(ConnectError::NoServers));
        }
        let shared = Arc::new(Shared::new(opts, pool));
        if let Some(est) = &first {
            connection::go_live(&shared, est, bytes::BytesMut::new(), false);
        }
        tokio::spawn(connection::run(shared.clone(), first, tls));
        Ok(Client {
            handle: Arc::new(Handle { shared }),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    pub(crate) fn shared_arc(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The INFO of the server currently (or last) connected to.
    pub fn server_info(&self) -> Arc<ServerInfo> {
        self.shared().info()
    }

    /// The connection state.
    pub fn connection_state(&self) -> State {
        match self.shared().state() {
            LinkState::Connected => State::Connected,
            LinkState::Disconnected => State::Disconnected,
            LinkState::Closing | LinkState::Closed => State::Closed,
        }
    }

    /// The servers the client knows (configured and discovered), in reconnect order.
    pub fn servers(&self) -> Vec<ServerAddr> {
        self.shared().pool().addrs()
    }

    /// A snapshot of the counters.
    pub fn statistics(&self) -> Statistics {
        self.shared().statistics()
    }

    /// Connection events from now on (connected, disconnected, slow consumer, ...).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared().subscribe_events()
    }

    /// A new unique subject under the inbox prefix, for replies.
    pub fn new_inbox(&self) -> String {
        format!("{}.{}", self.shared().opts().inbox_prefix, nuid::next())
    }

    /// Requests waiting for a reply right now (a request that ends for any reason, timeout
    /// and cancellation included, leaves none behind).
    pub fn pending_requests(&self) -> usize {
        self.shared().requests().len()
    }

    /// Publishes a message. Returns once the message is in the write buffer (use
    /// [`Client::flush`] to know the server has it); waits while the buffer is full.
    pub async fn publish(
        &self,
        subject: impl AsRef<str>,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), PublishError> {
        let payload = Payload::Borrowed(payload.as_ref());
        self.publish_payload(subject.as_ref(), None, None, payload)
            .await
    }

    /// Publishes a message with headers.
    pub async fn publish_with_headers(
        &self,
        subject: impl AsRef<str>,
        headers: &HeaderMap,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), PublishError> {
        self.publish_message(subject.as_ref(), None, Some(headers), payload.as_ref())
            .await
    }

    /// Publishes a message with a reply subject.
    pub async fn publish_with_reply(
        &self,
        subject: impl AsRef<str>,
        reply: impl AsRef<str>,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), PublishError> {
        self.publish_message(
            subject.as_ref(),
            Some(reply.as_ref()),
            None,
            payload.as_ref(),
        )
        .await
    }

    /// Publishes with any combination of reply subject and headers.
    pub async fn publish_message(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        self.publish_payload(subject, reply, headers, Payload::Borrowed(payload))
            .await
    }

    /// Publishes a borrowed or shared payload (see [`Payload`]), waiting while the buffer is
    /// full.
    pub(crate) async fn publish_payload(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: Payload<'_>,
    ) -> Result<(), PublishError> {
        let shared = self.shared();
        loop {
            if shared.try_publish(subject, reply, headers, payload)? {
                return Ok(());
            }
            // Full: register for the writer's "space" signal, then try once more, so the
            // signal cannot slip in between.
            let notified = shared.space_freed();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.try_publish(subject, reply, headers, payload)? {
                return Ok(());
            }
            notified.await;
        }
    }

    /// Registers a subscription and sends its SUB (see [`Shared::add_subscription`]).
    pub(crate) fn add_subscription(
        &self,
        subject: &str,
        queue_group: Option<String>,
        target: Target,
    ) -> Result<u64, ClientError> {
        self.shared().add_subscription(subject, queue_group, target)
    }

    /// Sends UNSUB for `sid` and forgets it (or, with `max`, lets it run to `max` messages).
    pub(crate) fn unsubscribe_sid(&self, sid: u64, max: Option<u64>) -> Result<(), ClientError> {
        self.shared().send_unsub(sid, max, true)
    }

    /// Sends UNSUB but keeps routing messages already on their way (for drain).
    pub(crate) fn unsubscribe_sid_keep_queue(&self, sid: u64) -> Result<(), ClientError> {
        self.shared().send_unsub(sid, None, false)
    }

    /// Forgets a drained subscription and ends its stream.
    pub(crate) fn forget_sid(&self, sid: u64) {
        self.shared().forget(sid);
    }

    /// Waits until the server has processed everything sent so far (a PING/PONG round trip
    /// behind the buffered data).
    pub async fn flush(&self) -> Result<(), ClientError> {
        let rx = self.shared().flush_waiter()?;
        rx.await.map_err(|_| ClientError::Closed)
    }

    /// [`Client::flush`] with a timeout.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<(), ClientError> {
        tokio::time::timeout(timeout, self.flush())
            .await
            .map_err(|_| ClientError::TimedOut(timeout))?
    }

    /// Unsubscribes every subscription, waits until the server has sent all it had for them
    /// (their streams end after those messages), then flushes and closes.
    pub async fn drain(&self) -> Result<(), ClientError> {
        let sids = self.shared().user_sids();
        for sid in &sids {
            self.unsubscribe_sid_keep_queue(*sid)?;
        }
        self.flush().await?;
        for sid in sids {
            self.forget_sid(sid);
        }
        self.close().await
    }

    /// Sends everything already accepted, then closes. Later calls fail with `Closed`.
    pub async fn close(&self) -> Result<(), ClientError> {
        let shared = self.shared();
        if matches!(shared.state(), LinkState::Closing | LinkState::Closed) {
            return Err(ClientError::Closed);
        }
        shared.request_close();
        let mut closed = shared.closed();
        let _ = closed.wait_for(|c| *c).await;
        Ok(())
    }
}
