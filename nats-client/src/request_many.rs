//! Scatter-gather: one request, many replies ([`Client::request_many`]).
//!
//! The replies come through the client's one inbox like any other; the request's entry takes
//! replies until the stream ends, and leaves the inbox the moment it ends (or is dropped).

use std::fmt::Display;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use nats_proto::{HeaderMap, StatusCode};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::client::Client;
use crate::error::RequestError;
use crate::inbox::{Ended, Outcome};
use crate::message::Message;
use crate::shared::Shared;

/// A scatter-gather request being built: see [`Client::request_many`].
#[derive(Debug, Clone)]
#[must_use = "nothing is sent until `send` is awaited"]
pub struct RequestMany {
    client: Client,
    subject: String,
    payload: Bytes,
    headers: Option<HeaderMap>,
    max_messages: Option<usize>,
    stall: Option<Duration>,
    timeout: Option<Duration>,
}

/// Why a [`Replies`] stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RepliesEnd {
    /// [`RequestMany::max_messages`] replies arrived.
    MaxMessages,
    /// No reply for the [`RequestMany::stall`] period after the last one.
    Stall,
    /// The [`RequestMany::timeout`] passed.
    Timeout,
    /// The first reply was the server's `503`: nobody subscribes to the subject.
    NoResponders,
    /// The connection was lost (replies cannot come on the next connection).
    Disconnected,
    /// The client closed.
    Closed,
}

impl RequestMany {
    /// Sends these headers with the request.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Adds one header value.
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        self.headers
            .get_or_insert_with(HeaderMap::new)
            .append(name, value.to_string());
        self
    }

    /// End after this many replies (e.g. the number of servers). Default: no limit.
    pub fn max_messages(mut self, max: usize) -> Self {
        self.max_messages = Some(max);
        self
    }

    /// End when no reply came for this long after the last one. The wait for the first reply
    /// is bounded by the timeout only (a responder may take a while to answer at all; once
    /// replies flow, a quiet period means they are all in). Default: no stall limit.
    pub fn stall(mut self, stall: Duration) -> Self {
        self.stall = Some(stall);
        self
    }

    /// End this long after sending, whatever else. Default: the client's
    /// [`request_timeout`](crate::ConnectOptions::request_timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request. The replies are the returned stream's items.
    pub async fn send(self) -> Result<Replies, RequestError> {
        let client = &self.client;
        client.ensure_request_inbox(&self.subject)?;
        let shared = client.shared_arc().clone();
        let (ticket, rx) = shared.requests().register_many();
        let timeout = self.timeout.unwrap_or(shared.opts().request_timeout);
        let mut replies = Replies {
            shared,
            token: ticket.token,
            subject: self.subject,
            rx,
            remaining: self.max_messages,
            stall: self.stall,
            stall_timer: None,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            received: 0,
            end: None,
        };
        if replies.remaining == Some(0) {
            replies.finish(RepliesEnd::MaxMessages);
            return Ok(replies);
        }
        // On a failure `replies` is dropped, which takes its entry out of the inbox.
        client
            .publish_message(
                &replies.subject,
                Some(&ticket.reply),
                self.headers.as_ref(),
                &self.payload,
            )
            .await?;
        Ok(replies)
    }
}

/// The replies to a [`Client::request_many`] request: a `Stream` of [`Message`]s that ends at
/// the first of its limits (count, stall, timeout), at a `503` no-responders status as the
/// first reply, or when the connection is lost; [`Replies::end`] tells which. Dropping it
/// forgets the request.
pub struct Replies {
    shared: Arc<Shared>,
    token: u64,
    subject: String,
    rx: mpsc::UnboundedReceiver<Outcome>,
    remaining: Option<usize>,
    stall: Option<Duration>,
    stall_timer: Option<Pin<Box<Sleep>>>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    received: usize,
    end: Option<RepliesEnd>,
}

impl std::fmt::Debug for Replies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replies")
            .field("subject", &self.subject)
            .field("received", &self.received)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Replies {
    /// The subject the request was sent to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Replies handed out so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Why the stream ended; `None` while it goes on.
    pub fn end(&self) -> Option<RepliesEnd> {
        self.end
    }

    /// The end as an error, for callers that want one reply at least: `None` while the stream
    /// goes on or when it ended by its count or after some replies; the
    /// [`RequestError`] otherwise (no responders, timed out without any reply, connection lost,
    /// closed).
    pub fn error(&self) -> Option<RequestError> {
        let subject = || self.subject.clone();
        match self.end? {
            RepliesEnd::NoResponders => Some(RequestError::NoResponders { subject: subject() }),
            RepliesEnd::Disconnected => Some(RequestError::Disconnected { subject: subject() }),
            RepliesEnd::Closed => Some(RequestError::Closed),
            RepliesEnd::Timeout | RepliesEnd::Stall if self.received == 0 => {
                Some(RequestError::TimedOut {
                    subject: subject(),
                    timeout: self.timeout,
                })
            }
            _ => None,
        }
    }

    fn finish(&mut self, why: RepliesEnd) {
        if self.end.is_none() {
            self.end = Some(why);
            self.shared.requests().cancel(self.token);
            self.rx.close();
        }
    }
}

impl Stream for Replies {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let this = &mut *self;
        if this.end.is_some() {
            return Poll::Ready(None);
        }
        loop {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    if msg.status == Some(StatusCode::NO_RESPONDERS) {
                        if this.received == 0 {
                            this.finish(RepliesEnd::NoResponders);
                            return Poll::Ready(None);
                        }
                        continue; // a late 503 after real replies says nothing new
                    }
                    this.received += 1;
                    if let Some(n) = &mut this.remaining {
                        *n -= 1;
                        if *n == 0 {
                            this.finish(RepliesEnd::MaxMessages);
                            return Poll::Ready(Some(msg));
                        }
                    }
                    if let Some(stall) = this.stall {
                        let at = Instant::now() + stall;
                        match &mut this.stall_timer {
                            Some(t) => t.as_mut().reset(at),
                            None => this.stall_timer = Some(Box::pin(tokio::time::sleep_until(at))),
                        }
                    }
                    return Poll::Ready(Some(msg));
                }
                Poll::Ready(Some(Err(why))) => {
                    this.finish(match why {
                        // Refused: only one-reply entries are refused (see Inbox::refuse).
                        Ended::Closed | Ended::Refused => RepliesEnd::Closed,
                        Ended::Disconnected => RepliesEnd::Disconnected,
                        Ended::TimedOut => RepliesEnd::Timeout,
                    });
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => {
                    // The sender went away with the entry: only a closing client does that.
                    this.finish(RepliesEnd::Closed);
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.finish(RepliesEnd::Timeout);
            return Poll::Ready(None);
        }
        if let Some(t) = &mut this.stall_timer
            && t.as_mut().poll(cx).is_ready()
        {
            this.finish(RepliesEnd::Stall);
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        self.shared.requests().cancel(self.token);
    }
}

impl Client {
    /// Sends one request and gathers many replies: a [`Replies`] stream that ends after
    /// [`max_messages`](RequestMany::max_messages) replies, after a quiet
    /// [`stall`](RequestMany::stall) period, or at the [`timeout`](RequestMany::timeout),
    /// whichever comes first. Made for scatter-gather, such as `$SYS.REQ.SERVER.PING.VARZ`
    /// where every server of a cluster answers once.
    ///
    /// A `503` no-responders status as the first reply ends the stream at once
    /// ([`RepliesEnd::NoResponders`]); headers go with [`headers`](RequestMany::headers) or
    /// [`header`](RequestMany::header), and replies carry theirs.
    ///
    /// ```no_run
    /// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::RequestError> {
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// let mut replies = client
    ///     .request_many("$SYS.REQ.SERVER.PING.VARZ", "")
    ///     .max_messages(3)
    ///     .stall(Duration::from_millis(300))
    ///     .timeout(Duration::from_secs(2))
    ///     .send()
    ///     .await?;
    /// while let Some(reply) = replies.next().await {
    ///     println!("{} bytes from one server", reply.payload.len());
    /// }
    /// println!("ended by {:?}", replies.end());
    /// # Ok(()) }
    /// ```
    pub fn request_many(
        &self,
        subject: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> RequestMany {
        RequestMany {
            client: self.clone(),
            subject: subject.into(),
            payload: payload.into(),
            headers: None,
            max_messages: None,
            stall: None,
            timeout: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_and_sync<T: Send + Sync + Unpin>() {}

    #[test]
    fn replies_can_move_between_tasks() {
        send_and_sync::<Replies>();
        send_and_sync::<RequestMany>();
    }
}
