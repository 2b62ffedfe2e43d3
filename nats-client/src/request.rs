//! Request/reply through the client's one inbox ([`crate::inbox`]): the [`Request`] value, the
//! [`ReplyFuture`] of a request in flight, and [`RequestWindow`], a bound on requests in flight
//! with expiry (what JetStream's asynchronous publisher uses).

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use nats_proto::{HeaderMap, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use crate::client::Client;
use crate::error::{ClientError, PublishError, RequestError};
use crate::inbox::{Ended, Outcome};
use crate::message::Message;
use crate::outbound::LinkState;
use crate::outbound::Payload;
use crate::shared::Shared;
use crate::sub_queue::Target;

/// A request as a value: subject, payload, headers and timeout, built step by step.
///
/// The fields are public so that another message model (an AMQP `BasicProperties`, say) can
/// be mapped onto it directly; the builder methods of the same names are the short form.
///
/// ```no_run
/// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::RequestError> {
/// use std::time::Duration;
/// use nats_client::Request;
/// let reply = client
///     .request_value(Request::new("svc.echo", "hi").header("X-Id", 7).timeout(Duration::from_secs(1)))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// The subject the request goes to.
    pub subject: String,
    /// The payload.
    pub payload: Bytes,
    /// Headers, if any.
    pub headers: Option<HeaderMap>,
    /// How long to wait for the reply; `None`: the client's
    /// [`request_timeout`](crate::ConnectOptions::request_timeout).
    pub timeout: Option<Duration>,
}

impl Request {
    /// A request to `subject` with `payload`, no headers, the client's timeout.
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Request {
            subject: subject.into(),
            payload: payload.into(),
            headers: None,
            timeout: None,
        }
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: impl Into<Bytes>) -> Self {
        self.payload = payload.into();
        self
    }

    /// Sets all headers (replacing any added before).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Adds one header value (any displayable value: numbers, ids...).
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        self.headers
            .get_or_insert_with(HeaderMap::new)
            .append(name, value.to_string());
        self
    }

    /// Sets how long to wait for the reply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The reply to a request in flight, from [`Client::send_request`] or
/// [`RequestWindow::send`].
///
/// From [`Client::send_request`] no timer is armed: wrap it in `tokio::time::timeout` (or race
/// it against anything else). From a [`RequestWindow`] it ends with
/// [`RequestError::TimedOut`] once the request's timeout has passed (checked on a coarse tick,
/// so up to 20 ms late). Dropping it forgets the request: an abandoned reply never stays in
/// the client's inbox.
pub struct ReplyFuture {
    shared: Arc<Shared>,
    token: u64,
    subject: String,
    timeout: Option<Duration>,
    rx: oneshot::Receiver<Outcome>,
    /// The outcome was handed out: the inbox removed the entry already (a reply, an expiry,
    /// a lost connection all take it out), so dropping need not look for it.
    done: bool,
}

impl std::fmt::Debug for ReplyFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyFuture")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl ReplyFuture {
    /// The subject the request was sent to.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl Future for ReplyFuture {
    type Output = Result<Message, RequestError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let outcome = match Pin::new(&mut this.rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(outcome)) => outcome,
            // The entry vanished without a word: only a closing client does that.
            Poll::Ready(Err(_)) if this.shared.state() == LinkState::Closed => Err(Ended::Closed),
            Poll::Ready(Err(_)) => Err(Ended::Disconnected),
        };
        this.done = true;
        Poll::Ready(reply_result(&this.subject, this.timeout, outcome))
    }
}

/// Maps what the inbox delivered to what a single-reply request returns.
fn reply_result(
    subject: &str,
    timeout: Option<Duration>,
    outcome: Outcome,
) -> Result<Message, RequestError> {
    match outcome {
        Ok(msg) if msg.status == Some(StatusCode::NO_RESPONDERS) => {
            Err(RequestError::NoResponders {
                subject: subject.to_owned(),
            })
        }
        Ok(msg) => Ok(msg),
        Err(Ended::TimedOut) => Err(RequestError::TimedOut {
            subject: subject.to_owned(),
            timeout: timeout.unwrap_or_default(),
        }),
        Err(Ended::Disconnected) => Err(RequestError::Disconnected {
            subject: subject.to_owned(),
        }),
        Err(Ended::Closed) => Err(RequestError::Closed),
        Err(Ended::Refused) => Err(RequestError::PermissionDenied {
            subject: subject.to_owned(),
        }),
    }
}

impl Drop for ReplyFuture {
    fn drop(&mut self) {
        if !self.done {
            self.shared.requests().cancel(self.token);
        }
    }
}

/// A bound on the requests in flight through one client, each with a timeout and no timer of
/// its own: [`RequestWindow::send`] waits while `capacity` requests wait for their reply. A
/// slot is free again the moment its reply arrives (or its request times out or is dropped),
/// not when the [`ReplyFuture`] is awaited, so sending many and awaiting them later cannot
/// deadlock. JetStream's asynchronous publisher is one.
///
/// Cheap to clone; clones share the window.
///
/// ```no_run
/// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::RequestError> {
/// use std::time::Duration;
/// use nats_client::Request;
/// let window = client.request_window(256);
/// let mut replies = Vec::new();
/// for i in 0..10_000 {
///     let request = Request::new("svc.work", format!("job {i}")).timeout(Duration::from_secs(5));
///     replies.push(window.send(&request).await?);
/// }
/// for reply in replies {
///     reply.await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RequestWindow {
    client: Client,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl RequestWindow {
    /// Sends a request once a slot is free, and returns the future of its reply. The request's
    /// timeout (or the client's default) counts from the send.
    pub async fn send(&self, request: &Request) -> Result<ReplyFuture, RequestError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RequestError::Closed)?;
        let timeout = request
            .timeout
            .unwrap_or(self.client.shared().opts().request_timeout);
        self.client
            .start_request(
                &request.subject,
                request.headers.as_ref(),
                &request.payload,
                Some(timeout),
                Some(permit),
            )
            .await
    }

    /// [`send`](RequestWindow::send) without waiting: `None` when no slot is free or the
    /// client's write buffer is full right now (then `send` waits for room). Lets a caller
    /// keep the waiting path, and its larger future, off the common case.
    pub fn try_send(&self, request: &Request) -> Option<Result<ReplyFuture, RequestError>> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => return None,
            Err(TryAcquireError::Closed) => return Some(Err(RequestError::Closed)),
        };
        let timeout = request
            .timeout
            .unwrap_or(self.client.shared().opts().request_timeout);
        self.client
            .try_start_request(
                &request.subject,
                request.headers.as_ref(),
                &request.payload,
                Some(timeout),
                permit,
            )
            .transpose()
    }

    /// How many requests may be in flight at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests in flight right now (sent, reply not yet in).
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// The client the window sends through.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// Sends a request and waits for the first reply, up to the default request timeout.
    pub async fn request(
        &self,
        subject: impl AsRef<str>,
        payload: impl AsRef<[u8]>,
    ) -> Result<Message, RequestError> {
        let timeout = self.shared().opts().request_timeout;
        self.request_with(subject.as_ref(), None, payload.as_ref(), timeout)
            .await
    }

    /// Sends a request with headers.
    pub async fn request_with_headers(
        &self,
        subject: impl AsRef<str>,
        headers: &HeaderMap,
        payload: impl AsRef<[u8]>,
    ) -> Result<Message, RequestError> {
        let timeout = self.shared().opts().request_timeout;
        self.request_with(subject.as_ref(), Some(headers), payload.as_ref(), timeout)
            .await
    }

    /// Sends a [`Request`] value and waits for the first reply, up to its timeout (or the
    /// client's default).
    pub async fn request_value(&self, request: Request) -> Result<Message, RequestError> {
        let timeout = request
            .timeout
            .unwrap_or(self.shared().opts().request_timeout);
        self.request_with(
            &request.subject,
            request.headers.as_ref(),
            &request.payload,
            timeout,
        )
        .await
    }

    /// Sends a request with optional headers and an explicit timeout.
    pub async fn request_with(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        let reply = self.send_request(subject, headers, payload).await?;
        match tokio::time::timeout(timeout, reply).await {
            Ok(result) => result,
            Err(_) => Err(RequestError::TimedOut {
                subject: subject.to_owned(),
                timeout,
            }),
        }
    }

    /// Publishes a request and returns the future of its reply, without waiting and without a
    /// timer: for pipelining requests through the client's one reply inbox (see also
    /// [`Client::request_window`] for a bounded number in flight with timeouts).
    pub async fn send_request(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<ReplyFuture, RequestError> {
        self.start_request(subject, headers, payload, None, None)
            .await
    }

    /// A window of at most `max_in_flight` (at least 1) requests in flight, sharing this
    /// client's inbox.
    pub fn request_window(&self, max_in_flight: usize) -> RequestWindow {
        let capacity = max_in_flight.max(1);
        RequestWindow {
            client: self.clone(),
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Registers a one-reply entry and publishes the request; on a failure nothing stays
    /// registered.
    async fn start_request(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        timeout: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<ReplyFuture, RequestError> {
        let (future, reply) = self.register_request(subject, timeout, permit)?;
        self.publish_message(subject, Some(&reply), headers, payload)
            .await?;
        Ok(future)
    }

    /// [`Client::start_request`] when the write buffer has room now; `None` (and nothing
    /// registered) when it is full.
    fn try_start_request(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        timeout: Option<Duration>,
        permit: OwnedSemaphorePermit,
    ) -> Result<Option<ReplyFuture>, RequestError> {
        let (future, reply) = self.register_request(subject, timeout, Some(permit))?;
        // Full: dropping the future cancels the entry and gives the slot back.
        let sent = self.shared().try_publish(
            subject,
            Some(&reply),
            headers,
            Payload::Borrowed(payload),
        )?;
        Ok(sent.then_some(future))
    }

    /// Registers a one-reply entry: its future (dropping it cancels the entry) and the reply
    /// subject to publish with.
    fn register_request(
        &self,
        subject: &str,
        timeout: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(ReplyFuture, String), RequestError> {
        self.ensure_request_inbox(subject)?;
        let shared = self.shared_arc();
        if timeout.is_some() && shared.requests().start_ticker() {
            tokio::spawn(tick(Arc::downgrade(shared)));
        }
        let (ticket, rx) = shared.requests().register(subject, timeout, permit);
        let future = ReplyFuture {
            shared: shared.clone(),
            token: ticket.token,
            subject: subject.to_owned(),
            timeout,
            rx,
            done: false,
        };
        Ok((future, ticket.reply))
    }

    /// Creates the wildcard reply subscription on first use. `subject` is the request's, for
    /// the error.
    pub(crate) fn ensure_request_inbox(&self, subject: &str) -> Result<(), RequestError> {
        self.shared().requests().ensure_subscribed(|filter| {
            self.add_subscription(filter, None, Target::Requests)
                .map_err(|e| client_to_request(e, subject))
        })?;
        Ok(())
    }
}

/// A client error met while making a request, with the request's subject.
pub(crate) fn client_to_request(e: ClientError, subject: &str) -> RequestError {
    match e {
        ClientError::Closed => RequestError::Closed,
        ClientError::TimedOut(timeout) => RequestError::TimedOut {
            subject: subject.to_owned(),
            timeout,
        },
        ClientError::Disconnected => RequestError::Disconnected {
            subject: subject.to_owned(),
        },
        ClientError::Protocol(p) => RequestError::Publish(PublishError::Protocol(p)),
        ClientError::ReconnectBufferFull {
            buffered,
            limit,
            size,
        } => RequestError::Publish(PublishError::ReconnectBufferFull {
            buffered,
            limit,
            size,
        }),
        ClientError::NoReplySubject { subject } => {
            RequestError::Publish(PublishError::NoReplySubject { subject })
        }
    }
}

/// Expires overdue entries of the client's inbox until the client is gone or closed.
async fn tick(shared: std::sync::Weak<Shared>) {
    let mut interval = tokio::time::interval(crate::inbox::TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.state() == LinkState::Closed {
            return;
        }
        shared.requests().tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_values_build() {
        let r = Request::new("a.b", "x")
            .header("N", 42)
            .header("N", "y")
            .timeout(Duration::from_millis(5))
            .subject("c.d")
            .payload(vec![1u8, 2]);
        assert_eq!(r.subject, "c.d");
        assert_eq!(&r.payload[..], &[1, 2]);
        let h = r.headers.as_ref().unwrap();
        assert_eq!(h.get_all("N").collect::<Vec<_>>(), ["42", "y"]);
        assert_eq!(r.timeout, Some(Duration::from_millis(5)));
    }

    #[test]
    fn outcomes_keep_the_subject() {
        let t = Some(Duration::from_secs(2));
        assert_eq!(
            reply_result("s.x", t, Err(Ended::TimedOut)),
            Err(RequestError::TimedOut {
                subject: "s.x".into(),
                timeout: Duration::from_secs(2)
            })
        );
        assert_eq!(
            reply_result("s.x", t, Err(Ended::Disconnected)),
            Err(RequestError::Disconnected {
                subject: "s.x".into()
            })
        );
        assert_eq!(
            reply_result("s.x", t, Err(Ended::Closed)),
            Err(RequestError::Closed)
        );
    }

    #[test]
    fn client_errors_keep_the_request_subject() {
        let e = client_to_request(ClientError::Disconnected, "svc.a");
        assert_eq!(
            e,
            RequestError::Disconnected {
                subject: "svc.a".into()
            }
        );
        let e = client_to_request(ClientError::TimedOut(Duration::from_secs(1)), "svc.a");
        assert!(matches!(e, RequestError::TimedOut { subject, .. } if subject == "svc.a"));
    }
}
