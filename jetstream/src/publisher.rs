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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use nats_client::{ReplyFuture, Request, RequestError, RequestWindow};

use crate::context::Context;
use crate::error::JetStreamError;
use crate::publish::{MSG_ID, PubAck, PublishOptions, Retry, after_failure, decode_pub_ack};

type Sending = Pin<Box<dyn Future<Output = Result<ReplyFuture, RequestError>> + Send>>;

enum State {
    Waiting(ReplyFuture),
    Resending(Sending),
    Done,
}

/// The ack of a message sent with [`Context::publish_async`]: await it for the [`PubAck`].
/// Dropping it gives up on the ack (the message was sent regardless).
#[must_use = "the ack future tells whether the message was stored"]
pub struct PublishAckFuture {
    window: RequestWindow,
    state: State,
    /// The message, kept to send it again.
    request: Request,
    has_msg_id: bool,
    attempt: u32,
    attempts: u32,
    wait: Duration,
}

impl std::fmt::Debug for PublishAckFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishAckFuture")
            .field("subject", &self.request.subject)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Future for PublishAckFuture {
    type Output = Result<PubAck, JetStreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Waiting(reply) => {
                    let failure = match ready!(Pin::new(reply).poll(cx)) {
                        Ok(reply) => {
                            this.state = State::Done;
                            return Poll::Ready(decode_pub_ack(&this.request.subject, &reply));
                        }
                        Err(e) => e,
                    };
                    this.state = State::Done;
                    let timeout = this.request.timeout.unwrap_or_default();
                    match after_failure(
                        failure,
                        &this.request.subject,
                        this.has_msg_id,
                        this.attempt,
                        this.attempts,
                        timeout,
                        this.wait,
                    ) {
                        Retry::Fail(e) => return Poll::Ready(Err(e)),
                        Retry::After(pause) => {
                            this.attempt += 1;
                            let window = this.window.clone();
                            let request = this.request.clone();
                            this.state = State::Resending(Box::pin(async move {
                                if !pause.is_zero() {
                                    tokio::time::sleep(pause).await;
                                }
                                window.send(&request).await
                            }));
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
        let reply = self.window.send(&request).await.map_err(send_error)?;
        Ok(PublishAckFuture {
            window: self.window.clone(),
            state: State::Waiting(reply),
            has_msg_id: request.headers.as_ref().is_some_and(|h| h.contains(MSG_ID)),
            request,
            attempt: 1,
            attempts: 1 + options
                .retry_attempts
                .unwrap_or(self.publish.retry_attempts),
            wait: options.retry_wait.unwrap_or(self.publish.retry_wait),
        })
    }

    /// Acks outstanding from [`publish_async`](Context::publish_async) right now.
    pub fn pending_acks(&self) -> usize {
        self.window.in_flight()
    }
}
