//! Pulling from a consumer: one-shot [`Consumer::fetch`] and the continuous
//! [`Consumer::messages`] stream (idle heartbeats, `404`/`408`/`409` status handling,
//! re-pulling after a reconnect).

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use nats_client::{Client, Event, Message, StatusCode, Subscriber};
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use crate::consumer::Consumer;
use crate::error::JetStreamError;
use crate::message::JsMessage;
use crate::models::nanos;

/// How long past `expires` a fetch waits for the server's `408` before giving up on its own.
const EXPIRY_GRACE: Duration = Duration::from_secs(1);

/// A pull request (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`).
#[derive(Debug, Serialize)]
struct PullRequest {
    batch: usize,
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    expires: Duration,
    #[serde(skip_serializing_if = "is_zero")]
    max_bytes: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_wait: bool,
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    idle_heartbeat: Duration,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Options of one [`Consumer::fetch_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Most messages to return.
    pub batch: usize,
    /// How long the server may wait to fill the batch; zero asks for what is there now
    /// (`no_wait`).
    pub expires: Duration,
    /// Most bytes to return (0: no limit).
    pub max_bytes: usize,
    /// Ask the server for idle heartbeats at this interval while it waits (zero: none); two
    /// missed make the fetch fail with [`JetStreamError::HeartbeatMissed`].
    pub idle_heartbeat: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            batch: 1,
            expires: Duration::from_secs(5),
            max_bytes: 0,
            idle_heartbeat: Duration::ZERO,
        }
    }
}

/// Options of [`Consumer::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Messages asked for per pull request; a new pull tops up when fewer than half are left.
    pub max_messages: usize,
    /// Bytes asked for per pull request (0: no limit).
    pub max_bytes: usize,
    /// Lifetime of each pull request.
    pub expires: Duration,
    /// Idle heartbeat interval; two missed are reported as
    /// [`JetStreamError::HeartbeatMissed`] and followed by a fresh pull. Zero disables them.
    pub idle_heartbeat: Duration,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            max_messages: 500,
            max_bytes: 0,
            expires: Duration::from_secs(30),
            idle_heartbeat: Duration::from_secs(15),
        }
    }
}

/// What a status message means for a pull.
#[derive(Debug, PartialEq, Eq)]
enum Status {
    /// A heartbeat: the server is alive.
    Heartbeat,
    /// The request ended (`404`, `408`, `409 Batch Completed`, size limit); `pending` is what
    /// it still had open, when the server said.
    Ended { pending: Option<(usize, usize)> },
    /// The request ended in a way the caller should hear about, but pulling may go on.
    Report { pending: Option<(usize, usize)> },
    /// A leader moved: forget outstanding requests and pull again.
    Reset,
    /// The consumer is gone.
    Deleted,
    /// Pulling again cannot help (`400`, push consumer).
    Fatal,
}

fn classify(msg: &Message) -> Option<Status> {
    let code = msg.status?;
    let desc = msg.description.as_deref().unwrap_or_default();
    let pending = || {
        let h = msg.headers.as_ref()?;
        let n = h.get("Nats-Pending-Messages")?.trim().parse().ok()?;
        let b = h
            .get("Nats-Pending-Bytes")
            .and_then(|b| b.trim().parse().ok())
            .unwrap_or(0);
        Some((n, b))
    };
    Some(match code {
        StatusCode::IDLE_HEARTBEAT => Status::Heartbeat,
        StatusCode::NOT_FOUND | StatusCode::TIMEOUT => Status::Ended { pending: pending() },
        StatusCode::CONFLICT => {
            let d = desc.to_ascii_lowercase();
            if d.contains("consumer deleted") {
                Status::Deleted
            } else if d.contains("leadership change") || d.contains("server shutdown") {
                Status::Reset
            } else if d.contains("batch completed") || d.contains("exceeds maxbytes") {
                Status::Ended { pending: pending() }
            } else if d.contains("push based") {
                Status::Fatal
            } else {
                Status::Report { pending: pending() }
            }
        }
        StatusCode::BAD_REQUEST => Status::Fatal,
        _ => Status::Report { pending: None },
    })
}

impl Consumer {
    fn status_error(&self, msg: &Message) -> JetStreamError {
        JetStreamError::PullStatus {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
            code: msg.status.map_or(0, StatusCode::as_u16),
            description: msg.description.as_deref().unwrap_or_default().to_owned(),
        }
    }

    fn deleted_error(&self) -> JetStreamError {
        JetStreamError::ConsumerDeleted {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
        }
    }

    fn wrap(&self, msg: Message) -> JsMessage {
        JsMessage::new(msg, self.context.client.clone(), self.context.timeout)
    }

    /// Pulls up to `batch` messages, waiting up to `expires` for them (zero: only what is
    /// there now). Returns fewer, or none, when the time is up. Messages already received are
    /// returned even when the pull then fails; an error comes only with no messages.
    pub async fn fetch(
        &self,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<JsMessage>, JetStreamError> {
        self.fetch_with(&FetchOptions {
            batch,
            expires,
            ..FetchOptions::default()
        })
        .await
    }

    /// [`fetch`](Consumer::fetch) with every option.
    pub async fn fetch_with(
        &self,
        options: &FetchOptions,
    ) -> Result<Vec<JsMessage>, JetStreamError> {
        let client = &self.context.client;
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(inbox.clone()).await?;
        let no_wait = options.expires.is_zero();
        let request = PullRequest {
            batch: options.batch.max(1),
            expires: options.expires,
            max_bytes: options.max_bytes,
            no_wait,
            // The server refuses a heartbeat longer than half the expiry.
            idle_heartbeat: if no_wait {
                Duration::ZERO
            } else {
                options.idle_heartbeat.min(options.expires / 2)
            },
        };
        let body = serde_json::to_vec(&request).map_err(|e| JetStreamError::json("pull", &e))?;
        client
            .publish_message(&self.next_subject(), Some(&inbox), None, &body)
            .await?;
        let start = Instant::now();
        let deadline = start
            + if no_wait {
                self.context.timeout
            } else {
                options.expires + EXPIRY_GRACE
            };
        let hb = request.idle_heartbeat;
        let mut hb_deadline = (!hb.is_zero()).then(|| start + 2 * hb);
        let mut messages = Vec::with_capacity(request.batch.min(1024));
        let mut failure = None;
        loop {
            let wake = hb_deadline.map_or(deadline, |h| h.min(deadline));
            let msg = match tokio::time::timeout_at(wake, sub.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => {
                    failure = Some(JetStreamError::Client(nats_client::ClientError::Closed));
                    break;
                }
                Err(_)
                    if hb_deadline.is_some_and(|h| Instant::now() >= h)
                        && Instant::now() < deadline =>
                {
                    failure = Some(JetStreamError::HeartbeatMissed {
                        stream: self.stream.clone(),
                        consumer: self.name.clone(),
                        interval: hb,
                    });
                    break;
                }
                Err(_) => break,
            };
            if let Some(h) = hb_deadline.as_mut() {
                *h = Instant::now() + 2 * hb;
            }
            match classify(&msg) {
                None => {
                    messages.push(self.wrap(msg));
                    if messages.len() >= request.batch {
                        break;
                    }
                }
                Some(Status::Heartbeat) => {}
                Some(Status::Ended { .. }) => break,
                Some(Status::Deleted) => {
                    failure = Some(self.deleted_error());
                    break;
                }
                Some(_) => {
                    failure = Some(self.status_error(&msg));
                    break;
                }
            }
        }
        drop(sub);
        match failure {
            Some(e) if messages.is_empty() => Err(e),
            _ => Ok(messages),
        }
    }

    /// A continuous stream of messages with the default [`ConsumeOptions`].
    pub async fn messages(&self) -> Result<Messages, JetStreamError> {
        self.consume(ConsumeOptions::default()).await
    }

    /// A continuous stream of messages: pulls in batches, tops up as messages are taken,
    /// watches idle heartbeats and pulls afresh after a reconnect or a missed heartbeat.
    ///
    /// `Err` items report trouble (missed heartbeats, `409` refusals such as
    /// `Exceeded MaxWaiting`) and the stream goes on; it ends after
    /// [`JetStreamError::ConsumerDeleted`] or another fatal status, or when the client closes.
    ///
    /// ```no_run
    /// # async fn demo(consumer: jetstream::Consumer) -> Result<(), jetstream::JetStreamError> {
    /// use futures::StreamExt;
    /// let mut messages = consumer.messages().await?;
    /// while let Some(item) = messages.next().await {
    ///     match item {
    ///         Ok(msg) => msg.ack().await?,
    ///         Err(e) => eprintln!("consumer trouble: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn consume(&self, options: ConsumeOptions) -> Result<Messages, JetStreamError> {
        let client = self.context.client.clone();
        let inbox = client.new_inbox();
        let sub = client.subscribe(inbox.clone()).await?;
        let events = client.events();
        let mut puller = Puller {
            consumer: self.clone(),
            next_subject: self.next_subject(),
            client,
            inbox,
            sub,
            events: Some(events),
            options: ConsumeOptions {
                max_messages: options.max_messages.max(1),
                // The server refuses a heartbeat longer than half the expiry.
                idle_heartbeat: options.idle_heartbeat.min(options.expires / 2),
                ..options
            },
            pending_msgs: 0,
            pending_bytes: 0,
            watchdog: Instant::now(),
            pull_after: None,
            done: false,
        };
        // The first pull goes out now, so messages flow while the caller gets ready.
        puller.pull().await?;
        let stream = futures_util::stream::unfold(puller, |mut p| async move {
            let item = p.next().await?;
            Some((item, p))
        });
        Ok(Messages {
            inner: Box::pin(stream),
        })
    }
}

/// The stream returned by [`Consumer::consume`] and [`Consumer::messages`]. Dropping it stops
/// pulling (the server lets the open pull request expire).
pub struct Messages {
    inner: Pin<Box<dyn Stream<Item = Result<JsMessage, JetStreamError>> + Send>>,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl Stream for Messages {
    type Item = Result<JsMessage, JetStreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The state behind [`Messages`].
struct Puller {
    consumer: Consumer,
    next_subject: String,
    client: Client,
    inbox: String,
    sub: Subscriber,
    /// Connection events; `None` once the channel is closed.
    events: Option<broadcast::Receiver<Event>>,
    options: ConsumeOptions,
    /// Messages (and bytes) asked for and not yet received.
    pending_msgs: usize,
    pending_bytes: usize,
    /// Heartbeats on: when two intervals will have passed without traffic. Off: when the
    /// newest pull request will have expired.
    watchdog: Instant,
    /// Do not pull before this (after a refusal, so a refusing server is not hammered).
    pull_after: Option<Instant>,
    done: bool,
}

impl Puller {
    fn heartbeat(&self) -> Duration {
        self.options.idle_heartbeat
    }

    fn reset(&mut self) {
        self.pending_msgs = 0;
        self.pending_bytes = 0;
    }

    fn feed_watchdog(&mut self) {
        let hb = self.heartbeat();
        if !hb.is_zero() {
            self.watchdog = Instant::now() + 2 * hb;
        }
    }

    fn wants_pull(&self) -> bool {
        let o = &self.options;
        let below_msgs = self.pending_msgs <= o.max_messages / 2;
        let below_bytes = o.max_bytes > 0 && self.pending_bytes <= o.max_bytes / 2;
        (below_msgs || below_bytes) && self.pull_after.is_none_or(|t| Instant::now() >= t)
    }

    async fn pull(&mut self) -> Result<(), JetStreamError> {
        let o = &self.options;
        let batch = o.max_messages.saturating_sub(self.pending_msgs).max(1);
        let max_bytes = if o.max_bytes > 0 {
            o.max_bytes.saturating_sub(self.pending_bytes).max(1)
        } else {
            0
        };
        let request = PullRequest {
            batch,
            expires: o.expires,
            max_bytes,
            no_wait: false,
            idle_heartbeat: o.idle_heartbeat,
        };
        let body = serde_json::to_vec(&request).map_err(|e| JetStreamError::json("pull", &e))?;
        self.client
            .publish_message(&self.next_subject, Some(&self.inbox), None, &body)
            .await?;
        self.pending_msgs += batch;
        self.pending_bytes += max_bytes;
        self.pull_after = None;
        if self.heartbeat().is_zero() {
            self.watchdog = Instant::now() + o.expires + EXPIRY_GRACE;
        } else {
            self.feed_watchdog();
        }
        Ok(())
    }

    fn settle(&mut self, pending: Option<(usize, usize)>) {
        match pending {
            Some((n, b)) => {
                self.pending_msgs = self.pending_msgs.saturating_sub(n);
                self.pending_bytes = self.pending_bytes.saturating_sub(b);
            }
            None => self.reset(),
        }
    }

    /// Handles one message from the inbox; `Some` is an item for the caller.
    fn handle(&mut self, msg: Message) -> Option<Result<JsMessage, JetStreamError>> {
        self.feed_watchdog();
        let Some(status) = classify(&msg) else {
            self.pending_msgs = self.pending_msgs.saturating_sub(1);
            self.pending_bytes = self.pending_bytes.saturating_sub(msg.length);
            return Some(Ok(self.consumer.wrap(msg)));
        };
        match status {
            Status::Heartbeat => None,
            Status::Ended { pending } => {
                self.settle(pending);
                None
            }
            Status::Reset => {
                self.reset();
                None
            }
            Status::Report { pending } => {
                self.settle(pending);
                // A refusal would repeat at once: pause pulling for a moment.
                self.pull_after = Some(Instant::now() + self.pause());
                Some(Err(self.consumer.status_error(&msg)))
            }
            Status::Deleted => {
                self.done = true;
                Some(Err(self.consumer.deleted_error()))
            }
            Status::Fatal => {
                self.done = true;
                Some(Err(self.consumer.status_error(&msg)))
            }
        }
    }

    fn pause(&self) -> Duration {
        let hb = self.heartbeat();
        if hb.is_zero() {
            Duration::from_secs(1)
        } else {
            hb.min(Duration::from_secs(1))
        }
    }

    async fn next(&mut self) -> Option<Result<JsMessage, JetStreamError>> {
        loop {
            if self.done {
                return None;
            }
            if self.wants_pull()
                && let Err(e) = self.pull().await
            {
                if matches!(
                    e,
                    JetStreamError::Publish(nats_client::PublishError::Closed)
                ) {
                    self.done = true;
                }
                self.pull_after = Some(Instant::now() + self.pause());
                return Some(Err(e));
            }
            let wake = self
                .pull_after
                .map_or(self.watchdog, |t| t.min(self.watchdog));
            tokio::select! {
                biased;
                msg = self.sub.next() => match msg {
                    Some(msg) => {
                        if let Some(item) = self.handle(msg) {
                            return Some(item);
                        }
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                event = recv_event(&mut self.events) => match event {
                    Ok(Event::Reconnected { .. }) | Err(RecvError::Lagged(_)) => {
                        // Requests made on the old connection may be gone with it.
                        self.reset();
                        self.pull_after = None;
                    }
                    Ok(_) => {}
                    Err(RecvError::Closed) => self.events = None,
                },
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= self.watchdog {
                        self.reset();
                        let hb = self.heartbeat();
                        if !hb.is_zero() {
                            self.feed_watchdog();
                            return Some(Err(JetStreamError::HeartbeatMissed {
                                stream: self.consumer.stream.clone(),
                                consumer: self.consumer.name.clone(),
                                interval: hb,
                            }));
                        }
                        // Without heartbeats, the request just ran out: pull again.
                        self.watchdog = now + self.options.expires + EXPIRY_GRACE;
                    }
                }
            }
        }
    }
}

async fn recv_event(events: &mut Option<broadcast::Receiver<Event>>) -> Result<Event, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use nats_client::HeaderMap;

    fn status(code: u16, desc: &str, pending: Option<(usize, usize)>) -> Message {
        let headers = pending.map(|(n, b)| {
            let mut h = HeaderMap::new();
            h.insert("Nats-Pending-Messages", n.to_string());
            h.insert("Nats-Pending-Bytes", b.to_string());
            h
        });
        Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: Bytes::new(),
            headers,
            status: StatusCode::from_u16(code),
            description: Some(desc.into()),
            length: 0,
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            classify(&status(100, "Idle Heartbeat", None)),
            Some(Status::Heartbeat)
        );
        assert_eq!(
            classify(&status(408, "Request Timeout", Some((3, 10)))),
            Some(Status::Ended {
                pending: Some((3, 10))
            })
        );
        assert_eq!(
            classify(&status(404, "No Messages", None)),
            Some(Status::Ended { pending: None })
        );
        assert_eq!(
            classify(&status(409, "Consumer Deleted", None)),
            Some(Status::Deleted)
        );
        assert_eq!(
            classify(&status(409, "Leadership Change", None)),
            Some(Status::Reset)
        );
        assert_eq!(
            classify(&status(409, "Exceeded MaxWaiting", None)),
            Some(Status::Report { pending: None })
        );
        assert_eq!(
            classify(&status(400, "Bad Request", None)),
            Some(Status::Fatal)
        );
        assert_eq!(
            classify(&status(409, "Consumer is push based", None)),
            Some(Status::Fatal)
        );
    }

    #[test]
    fn pull_request_json() {
        let r = PullRequest {
            batch: 10,
            expires: Duration::from_secs(1),
            max_bytes: 0,
            no_wait: false,
            idle_heartbeat: Duration::from_millis(500),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"batch":10,"expires":1000000000,"idle_heartbeat":500000000}"#
        );
    }
}
