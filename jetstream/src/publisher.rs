//! The asynchronous publisher: [`Context::publish_async`] sends a message and returns at once
//! with a [`PublishAckFuture`]; at most a window of acks is outstanding.
//!
//! Why not the client's `request()` per message: it sends and waits in one call, so pipelining
//! would need a task per message. Here every publish goes through the client's
//! [`RequestWindow`]: the ack comes back through the client's one reply inbox, which the
//! connection task routes itself, so a publish costs an encode into the client's write buffer,
//! a map insert and a oneshot. A window slot goes back when the ack *arrives* (not when the
//! future is awaited), so collecting futures and awaiting them later cannot deadlock; timeouts
//! are checked on the inbox's coarse tick, so no timer is armed per message.
//!
//! Recovery when the stream's leader changes. Publishes with a `Nats-Msg-Id` are resent
//! without waiting for their ack timeout, in two cases: the connection drops (the client fails
//! every pending request at once with `Disconnected`; the copy waits in the client's buffer for
//! the next connection), and a `$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.*` advisory arrives
//! (an ack still missing then was probably sent to the old leader and lost with it). Both are
//! safe because the stream stores an id once within its duplicate window; the ack of a copy
//! may then say `duplicate`. A `503` (no stream listening: the election is still on) is
//! retried with jittered exponential backoff for at least
//! [`Context::with_publish_retry_for`] (2 s by default), so an election shorter than that
//! surfaces no error.
//!
//! Only publishes with an id are resent on a timeout, a lost connection or a leader change:
//! without one a resend may store the message twice. The publisher does not invent ids: an id
//! costs every message its header and the stream a dedup-table entry for the duplicate window
//! (two minutes by default: millions of entries at a high rate), and only an id the
//! application derives from its own data also covers the application's own resends (after a
//! crash, say). Set [`PublishOptions::msg_id`] where a message must survive a leader change
//! stored once, or [`PublishOptions::at_least_once`] where a duplicate after a fault is
//! acceptable and an error is not (the resends then go as with an id, without the dedup).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use nats_client::{Client, ReplyFuture, Request, RequestError, RequestWindow};
use tokio::sync::{oneshot, watch};

use crate::ack_tracker::Outcome;
use crate::context::Context;
use crate::error::JetStreamError;
use crate::publish::{
    Budget, MSG_ID, PubAck, PublishOptions, Retry, after_failure, api_retry, decode_pub_ack,
};

type Sending = Pin<Box<dyn Future<Output = Result<ReplyFuture, RequestError>> + Send>>;
pub(crate) type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The advisory subject announcing a new stream leader (the stream's name last).
pub const STREAM_LEADER_ELECTED: &str = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED";

/// Counts stream leader elections seen on a context's connection; started by the first
/// publish with a msg id.
#[derive(Debug)]
pub(crate) struct LeaderChanges {
    started: AtomicBool,
    count: watch::Sender<u64>,
}

impl Default for LeaderChanges {
    fn default() -> Self {
        LeaderChanges {
            started: AtomicBool::new(false),
            count: watch::Sender::new(0),
        }
    }
}

impl LeaderChanges {
    /// How many leader changes were seen so far.
    pub(crate) fn current(&self) -> u64 {
        *self.count.borrow()
    }

    /// A future that completes at the next leader change after this call (never, if the
    /// watcher is gone).
    pub(crate) fn next(self: &Arc<Self>, client: &Client) -> Signal {
        if !self.started.load(Relaxed) && !self.started.swap(true, Relaxed) {
            let me = Arc::downgrade(self);
            let client = client.clone();
            tokio::spawn(async move {
                let subject = format!("{STREAM_LEADER_ELECTED}.*");
                let mut sub = match client.subscribe(subject).await {
                    Ok(sub) => sub,
                    Err(e) => {
                        tracing::debug!("no stream leader advisories: {e}");
                        return;
                    }
                };
                while sub.next().await.is_some() {
                    let Some(me) = me.upgrade() else { return };
                    me.count.send_modify(|n| *n += 1);
                }
            });
        }
        let mut rx = self.count.subscribe();
        Box::pin(async move {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

enum State {
    Waiting(ReplyFuture),
    Resending(Sending),
    Done,
}

/// The ack of a message sent with [`Context::publish_async`]: await it for the [`PubAck`].
/// Dropping it gives up on the ack (the message was sent regardless) and stops its resends.
///
/// A publish with a msg id is driven by the context's ack tracker (one task for all of them,
/// see `ack_tracker.rs`), so its resends (after a lost connection, a leader change, a `503`
/// during an election) go on while the application awaits other acks: a window of publishes
/// hit by an election recovers all at once, not one backoff after another in the order the
/// futures are awaited.
#[must_use = "the ack future tells whether the message was stored"]
pub struct PublishAckFuture {
    inner: Inner,
}

#[allow(clippy::large_enum_variant)] // boxing would cost every plain publish an allocation
enum Inner {
    /// Driven by whoever awaits it.
    Here(Attempts),
    /// Driven by the context's ack tracker, which stops when this is dropped.
    Tracked(oneshot::Receiver<Outcome>),
}

impl std::fmt::Debug for PublishAckFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("PublishAckFuture");
        match &self.inner {
            Inner::Here(a) => {
                d.field("subject", &a.request.subject);
                d.field("attempt", &a.attempt);
            }
            Inner::Tracked(_) => {
                d.field("tracked", &true);
            }
        }
        d.finish_non_exhaustive()
    }
}

impl Future for PublishAckFuture {
    type Output = Result<PubAck, JetStreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Inner::Here(attempts) => Pin::new(attempts).poll(cx),
            Inner::Tracked(rx) => Poll::Ready(match ready!(Pin::new(rx).poll(cx)) {
                Ok(result) => result,
                // Only a panic or a runtime shutting down ends the tracker otherwise.
                Err(_) => Err(JetStreamError::Request(RequestError::Closed)),
            }),
        }
    }
}

/// One publish and its resends.
pub(crate) struct Attempts {
    window: RequestWindow,
    state: State,
    /// The message, kept to send it again.
    request: Request,
    has_msg_id: bool,
    /// Resent on a lost ack: it has a msg id or was sent at least once.
    resends: bool,
    attempt: u32,
    attempts: u32,
    wait: Duration,
    retry_for: Duration,
    first_failure: Option<Instant>,
}

impl Future for Attempts {
    type Output = Result<PubAck, JetStreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Waiting(reply) => {
                    let polled = ready!(Pin::new(reply).poll(cx));
                    this.state = State::Done;
                    let subject = &this.request.subject;
                    let retry = match polled {
                        Ok(reply) => match decode_pub_ack(subject, &reply) {
                            Err(e) => match api_retry(&e, this.has_msg_id, this.budget()) {
                                Some(pause) => Retry::After(pause),
                                None => Retry::Fail(e),
                            },
                            ok => return Poll::Ready(ok),
                        },
                        Err(e) => {
                            let budget = this.budget();
                            after_failure(e, &this.request.subject, this.resends, budget)
                        }
                    };
                    match retry {
                        Retry::Fail(e) => return Poll::Ready(Err(e)),
                        Retry::After(pause) => {
                            this.attempt += 1;
                            let pause = (!pause.is_zero()).then_some(pause);
                            this.state =
                                State::Resending(resend(&this.window, &this.request, pause));
                        }
                    }
                }
                State::Resending(sending) => match ready!(sending.as_mut().poll(cx)) {
                    Ok(reply) => this.state = State::Waiting(reply),
                    Err(e) => {
                        this.state = State::Done;
                        return Poll::Ready(Err(send_error(e)));
                    }
                },
                State::Done => {
                    return Poll::Ready(Err(JetStreamError::Request(RequestError::Closed)));
                }
            }
        }
    }
}

impl Attempts {
    /// A stream has a new leader: an ack still missing went to the old one. Sends again now
    /// (the stream drops the copy if the first was stored); only for a publish that resends
    /// (a msg id, or at least once: then the stream may store it twice).
    pub(crate) fn leader_changed(&mut self) {
        if self.resends && matches!(self.state, State::Waiting(_)) {
            self.state = State::Resending(resend(&self.window, &self.request, None));
        }
    }

    /// What is left for retries after the attempt that just failed. Read only on a failure,
    /// so an ack that arrives costs no clock read.
    fn budget(&mut self) -> Budget {
        let since = *self.first_failure.get_or_insert_with(Instant::now);
        Budget {
            attempt: self.attempt,
            attempts: self.attempts,
            failing_for: since.elapsed(),
            retry_for: self.retry_for,
            wait: self.wait,
            timeout: self.request.timeout.unwrap_or_default(),
        }
    }
}

/// Sends `request` again through `window`, after `pause` if any.
fn resend(window: &RequestWindow, request: &Request, pause: Option<Duration>) -> Sending {
    let window = window.clone();
    let request = request.clone();
    Box::pin(async move {
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        window.send(&request).await
    })
}

/// A failure to send: a refused publish stays a [`JetStreamError::Publish`].
fn send_error(e: RequestError) -> JetStreamError {
    match e {
        RequestError::Publish(p) => JetStreamError::Publish(p),
        other => JetStreamError::Request(other),
    }
}

impl Context {
    /// Sends a message and returns once it is in the client's write buffer, with a future
    /// for its ack. Waits while [`with_publish_window`](Context::with_publish_window) acks are
    /// outstanding. Use it to publish fast and check acks later.
    ///
    /// ```no_run
    /// # async fn demo(js: jetstream::Context) -> Result<(), jetstream::JetStreamError> {
    /// let mut acks = Vec::new();
    /// for i in 0..1000 {
    ///     acks.push(js.publish_async("events", format!("event {i}")).await?);
    /// }
    /// for ack in acks {
    ///     ack.await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn publish_async(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishAckFuture, JetStreamError> {
        self.publish_async_with(subject, payload, &PublishOptions::default())
            .await
    }

    /// [`publish_async`](Context::publish_async) with options (headers, dedup id,
    /// expectations, timeout, retries).
    pub async fn publish_async_with(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<PublishAckFuture, JetStreamError> {
        let mut request = Request::new(subject, payload)
            .timeout(options.timeout.unwrap_or(self.publish.ack_timeout));
        request.headers = options.build_headers();
        let has_msg_id = request.headers.as_ref().is_some_and(|h| h.contains(MSG_ID));
        let resends = options.resends(request.headers.as_ref());
        // Count from before the send: an election after it must trigger the resend.
        let stamp = resends.then(|| self.leaders.current());
        // The waiting path is boxed: its future is several times the size of the rest, and
        // would otherwise be carried (and moved) by every publish that never waits.
        let sent = match self.window.try_send(&request) {
            Some(sent) => sent,
            None => Box::pin(self.window.send(&request)).await,
        };
        let reply = sent.map_err(send_error)?;
        let attempts = Attempts {
            window: self.window.clone(),
            state: State::Waiting(reply),
            has_msg_id,
            resends,
            request,
            attempt: 1,
            attempts: 1 + options
                .retry_attempts
                .unwrap_or(self.publish.retry_attempts),
            wait: options.retry_wait.unwrap_or(self.publish.retry_wait),
            retry_for: options.retry_for.unwrap_or(self.publish.retry_for),
            first_failure: None,
        };
        let inner = match stamp {
            Some(stamp) => {
                Inner::Tracked(
                    self.tracker
                        .track(attempts, stamp, &self.leaders, &self.client),
                )
            }
            None => Inner::Here(attempts),
        };
        Ok(PublishAckFuture { inner })
    }

    /// Acks outstanding from [`publish_async`](Context::publish_async) right now.
    pub fn pending_acks(&self) -> usize {
        self.window.in_flight()
    }
}
