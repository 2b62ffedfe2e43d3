//! The ordered consumer: every message of a stream (or of some subjects) exactly once and in
//! stream order, without acknowledgements, surviving consumer loss.
//!
//! Why it is correct: the server numbers what one consumer delivers with a consumer sequence
//! that grows by one per message. An ephemeral, ack-none consumer never redelivers, so the
//! sequence can only jump when something was lost (a dropped message, a slow subscription, a
//! server that forgot the consumer). Each delivered message is checked against the last
//! consumer sequence seen; on a jump, a missed heartbeat, a reconnect, `409 Consumer Deleted`
//! or `503` the consumer is replaced by a fresh one starting at the last *stream* sequence
//! delivered + 1. Messages of an older consumer are told apart by the consumer name in their
//! ack subject (`<prefix>_<serial>`) and a fresh inbox per consumer, so nothing is delivered
//! twice and nothing is skipped.
//!
//! This is the pull-based design of nats.go's `jetstream` package (not the legacy push
//! ordered consumer): pull requests bound the flow, so no flow-control replies are needed.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_core::Stream as FuturesStream;
use futures_util::StreamExt;
use nats_client::{Client, Event, Message, PublishError, RequestError, StatusCode, Subscriber};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use crate::context::Context;
use crate::error::{ErrorCode, JetStreamError, check_name};
use crate::message::{JsMessage, MessageInfo};
use crate::models::{AckPolicy, ConsumerConfig, DeliverPolicy, nanos};
use crate::stream::Stream;

/// How long past `expires` the consumer waits for the server's `408` before pulling again.
const EXPIRY_GRACE: Duration = Duration::from_secs(1);

/// Longest pause between attempts to re-create a lost consumer.
const MAX_RESET_BACKOFF: Duration = Duration::from_secs(5);

/// Configuration of an ordered consumer ([`Context::ordered_messages`]).
///
/// ```
/// use jetstream::{DeliverPolicy, OrderedConsumerConfig};
/// let config = OrderedConsumerConfig {
///     filter_subjects: vec!["orders.eu.>".into()],
///     deliver_policy: DeliverPolicy::LastPerSubject,
///     ..OrderedConsumerConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedConsumerConfig {
    /// Only messages on these subjects (empty: all).
    pub filter_subjects: Vec<String>,
    /// Where the first consumer starts; later ones start after the last message delivered.
    pub deliver_policy: DeliverPolicy,
    /// The start sequence for [`DeliverPolicy::ByStartSequence`].
    pub opt_start_seq: Option<u64>,
    /// The start time for [`DeliverPolicy::ByStartTime`].
    pub opt_start_time: Option<OffsetDateTime>,
    /// Deliver headers only, with the payload size in `Nats-Msg-Size`.
    pub headers_only: bool,
    /// The server removes a consumer idle this long (default 5 min, as nats.go).
    pub inactive_threshold: Duration,
    /// Messages asked for per pull request (default 500); a new pull tops up at half.
    pub max_messages: usize,
    /// Lifetime of each pull request (default 30 s).
    pub expires: Duration,
    /// Idle heartbeat interval (default 5 s, at most half of `expires`); two missed make the
    /// consumer start afresh.
    pub idle_heartbeat: Duration,
    /// User metadata set on each consumer.
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl Default for OrderedConsumerConfig {
    fn default() -> Self {
        OrderedConsumerConfig {
            filter_subjects: Vec::new(),
            deliver_policy: DeliverPolicy::All,
            opt_start_seq: None,
            opt_start_time: None,
            headers_only: false,
            inactive_threshold: Duration::from_secs(300),
            max_messages: 500,
            expires: Duration::from_secs(30),
            idle_heartbeat: Duration::from_secs(5),
            metadata: Default::default(),
        }
    }
}

/// A pull request of the ordered consumer.
#[derive(Serialize)]
struct OrderedPull {
    batch: usize,
    #[serde(with = "nanos")]
    expires: Duration,
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    idle_heartbeat: Duration,
}

/// What the caller may read about an [`OrderedMessages`] while it runs.
#[derive(Debug, Clone, Default)]
struct Progress {
    consumer: String,
    stream_sequence: u64,
    resets: u64,
}

impl Context {
    /// An ordered consumer on `stream`: every message (matching the filters) once, in stream
    /// order, re-created from the last delivered stream sequence + 1 whenever it is lost (a
    /// sequence gap, missed heartbeats, a reconnect, deletion). Messages need no ack.
    ///
    /// The first consumer is created before this returns, so a missing stream fails here.
    /// `Err` items afterwards report trouble (missed heartbeats, failed re-creations, which are
    /// retried with a back-off) and the stream goes on. It ends after the stream is deleted or
    /// the client closes.
    ///
    /// ```no_run
    /// # async fn demo(js: jetstream::Context) -> Result<(), jetstream::JetStreamError> {
    /// use futures::StreamExt;
    /// let mut messages = js.ordered_messages("ORDERS", Default::default()).await?;
    /// while let Some(Ok(msg)) = messages.next().await {
    ///     println!("{} #{}", msg.subject, msg.info()?.stream_sequence);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ordered_messages(
        &self,
        stream: &str,
        config: OrderedConsumerConfig,
    ) -> Result<OrderedMessages, JetStreamError> {
        check_name("stream", stream)?;
        let client = self.client.clone();
        let events = client.events();
        let hb = config.idle_heartbeat.min(config.expires / 2);
        let progress = Arc::new(Mutex::new(Progress::default()));
        let mut ordered = Ordered {
            context: self.clone(),
            stream: stream.to_owned(),
            config: OrderedConsumerConfig {
                max_messages: config.max_messages.max(1),
                idle_heartbeat: hb,
                ..config
            },
            prefix: nuid::next().to_string(),
            serial: 0,
            name: String::new(),
            next_subject: String::new(),
            inbox: String::new(),
            sub: None,
            client,
            events: Some(events),
            stream_seq: 0,
            consumer_seq: 0,
            pending: 0,
            watchdog: Instant::now(),
            pull_after: None,
            reset: None,
            failures: 0,
            done: false,
            progress: progress.clone(),
        };
        let initial_pending = ordered.recreate().await?;
        ordered.pull().await?;
        let stream = futures_util::stream::unfold(ordered, |mut o| async move {
            let item = o.next().await?;
            Some((item, o))
        });
        Ok(OrderedMessages {
            inner: Box::pin(stream),
            initial_pending,
            progress,
        })
    }
}

impl Stream {
    /// An ordered consumer on this stream; see [`Context::ordered_messages`].
    pub async fn ordered_messages(
        &self,
        config: OrderedConsumerConfig,
    ) -> Result<OrderedMessages, JetStreamError> {
        self.context.ordered_messages(&self.name, config).await
    }
}

/// The stream of messages of an ordered consumer ([`Context::ordered_messages`]). Dropping
/// it stops pulling; the server removes the consumer after its `inactive_threshold`.
pub struct OrderedMessages {
    inner: Pin<Box<dyn FuturesStream<Item = Result<JsMessage, JetStreamError>> + Send>>,
    initial_pending: u64,
    progress: Arc<Mutex<Progress>>,
}

impl OrderedMessages {
    /// How many messages the first consumer had to deliver when it was created (its
    /// `num_pending`): the messages stored before consumption started.
    pub fn initial_pending(&self) -> u64 {
        self.initial_pending
    }

    /// The stream sequence of the last message delivered (0 before the first).
    pub fn last_stream_sequence(&self) -> u64 {
        self.progress().stream_sequence
    }

    /// How many times the consumer was re-created.
    pub fn resets(&self) -> u64 {
        self.progress().resets
    }

    /// The name of the consumer in use.
    pub fn consumer_name(&self) -> String {
        self.progress().consumer
    }

    fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for OrderedMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedMessages")
            .field("initial_pending", &self.initial_pending)
            .field("progress", &self.progress())
            .finish()
    }
}

impl FuturesStream for OrderedMessages {
    type Item = Result<JsMessage, JetStreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// What one status message means to the ordered consumer.
#[derive(Debug, PartialEq, Eq)]
enum Status {
    Heartbeat,
    /// The pull request ended; `pending` is what it still had open, when the server said.
    Ended(Option<usize>),
    /// Forget open requests and pull again (leader change, server shutdown).
    Repull,
    /// The consumer is gone: start a new one.
    Lost,
    /// A refusal the caller should hear about; pull again after a pause.
    Report(Option<usize>),
    /// Pulling again cannot help.
    Fatal,
}

fn classify(msg: &Message) -> Option<Status> {
    let code = msg.status?;
    let pending = || {
        msg.headers
            .as_ref()?
            .get("Nats-Pending-Messages")?
            .trim()
            .parse()
            .ok()
    };
    let desc = msg
        .description
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some(match code {
        StatusCode::IDLE_HEARTBEAT => Status::Heartbeat,
        StatusCode::NOT_FOUND | StatusCode::TIMEOUT => Status::Ended(pending()),
        StatusCode::NO_RESPONDERS => Status::Lost,
        StatusCode::CONFLICT if desc.contains("consumer deleted") => Status::Lost,
        StatusCode::CONFLICT
            if desc.contains("leadership change") || desc.contains("server shutdown") =>
        {
            Status::Repull
        }
        StatusCode::CONFLICT if desc.contains("batch completed") || desc.contains("maxbytes") => {
            Status::Ended(pending())
        }
        StatusCode::BAD_REQUEST => Status::Fatal,
        _ => Status::Report(pending()),
    })
}

/// The state behind [`OrderedMessages`].
struct Ordered {
    context: Context,
    stream: String,
    config: OrderedConsumerConfig,
    /// Consumer names are `<prefix>_<serial>`.
    prefix: String,
    serial: u64,
    name: String,
    next_subject: String,
    inbox: String,
    sub: Option<Subscriber>,
    client: Client,
    events: Option<broadcast::Receiver<Event>>,
    /// The last stream and consumer sequences delivered.
    stream_seq: u64,
    consumer_seq: u64,
    /// Messages asked for and not yet received.
    pending: usize,
    /// When two heartbeat intervals (or the request's expiry) will have passed in silence.
    watchdog: Instant,
    /// Do not pull before this (after a refusal).
    pull_after: Option<Instant>,
    /// The consumer must be replaced, not before this instant.
    reset: Option<Instant>,
    /// Failed re-creations in a row.
    failures: u32,
    done: bool,
    progress: Arc<Mutex<Progress>>,
}

impl Ordered {
    fn consumer_config(&self) -> ConsumerConfig {
        let c = &self.config;
        let mut config = ConsumerConfig {
            name: Some(format!("{}_{}", self.prefix, self.serial)),
            ack_policy: AckPolicy::None,
            inactive_threshold: c.inactive_threshold,
            num_replicas: 1,
            memory_storage: true,
            headers_only: c.headers_only,
            metadata: c.metadata.clone(),
            ..ConsumerConfig::default()
        };
        match c.filter_subjects.as_slice() {
            [] => {}
            [one] => config.filter_subject = one.clone(),
            many => config.filter_subjects = many.to_vec(),
        }
        if self.stream_seq > 0 {
            config.deliver_policy = DeliverPolicy::ByStartSequence;
            config.opt_start_seq = Some(self.stream_seq + 1);
        } else {
            config.deliver_policy = c.deliver_policy;
            match c.deliver_policy {
                DeliverPolicy::ByStartSequence => config.opt_start_seq = c.opt_start_seq,
                DeliverPolicy::ByStartTime => config.opt_start_time = c.opt_start_time,
                DeliverPolicy::LastPerSubject if c.filter_subjects.is_empty() => {
                    config.filter_subject = ">".into();
                }
                _ => {}
            }
        }
        config
    }

    /// Replaces the consumer with a fresh one that starts after the last message delivered;
    /// returns its `num_pending`.
    async fn recreate(&mut self) -> Result<u64, JetStreamError> {
        self.serial += 1;
        let config = self.consumer_config();
        let consumer = self
            .context
            .create_consumer(&self.stream, config)
            .await
            .inspect_err(|_| self.serial -= 1)?;
        let inbox = self.client.new_inbox();
        let sub = self.client.subscribe(inbox.clone()).await?;
        let old = std::mem::replace(&mut self.name, consumer.name().to_owned());
        if !old.is_empty() {
            // Best effort: an ephemeral consumer would go by itself after its threshold.
            let context = self.context.clone();
            let stream = self.stream.clone();
            tokio::spawn(async move {
                let _ = context.delete_consumer(&stream, &old).await;
            });
        }
        self.next_subject = consumer.next_subject();
        self.inbox = inbox;
        self.sub = Some(sub);
        self.consumer_seq = 0;
        self.pending = 0;
        self.pull_after = None;
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        progress.consumer = self.name.clone();
        if self.serial > 1 {
            progress.resets += 1;
        }
        Ok(consumer.cached_info().num_pending)
    }

    async fn pull(&mut self) -> Result<(), JetStreamError> {
        let batch = self.config.max_messages.saturating_sub(self.pending).max(1);
        let request = OrderedPull {
            batch,
            expires: self.config.expires,
            idle_heartbeat: self.config.idle_heartbeat,
        };
        let body = serde_json::to_vec(&request).map_err(|e| JetStreamError::json("pull", &e))?;
        self.client
            .publish_message(&self.next_subject, Some(&self.inbox), None, &body)
            .await?;
        self.pending += batch;
        self.feed_watchdog();
        Ok(())
    }

    fn feed_watchdog(&mut self) {
        let hb = self.config.idle_heartbeat;
        self.watchdog = if hb.is_zero() {
            Instant::now() + self.config.expires + EXPIRY_GRACE
        } else {
            Instant::now() + 2 * hb
        };
    }

    fn lose(&mut self) {
        if self.reset.is_none() {
            self.reset = Some(Instant::now());
        }
    }

    fn wants_pull(&self) -> bool {
        self.pending <= self.config.max_messages / 2
            && self.pull_after.is_none_or(|t| Instant::now() >= t)
    }

    /// Handles one message from the inbox; `Some` is an item for the caller.
    fn handle(&mut self, msg: Message) -> Option<Result<JsMessage, JetStreamError>> {
        self.feed_watchdog();
        let Some(status) = classify(&msg) else {
            self.pending = self.pending.saturating_sub(1);
            return self.deliver(msg);
        };
        match status {
            Status::Heartbeat => None,
            Status::Ended(pending) => {
                self.settle(pending);
                None
            }
            Status::Repull => {
                self.pending = 0;
                None
            }
            Status::Lost => {
                self.lose();
                None
            }
            Status::Report(pending) => {
                self.settle(pending);
                self.pull_after = Some(Instant::now() + Duration::from_secs(1));
                Some(Err(self.status_error(&msg)))
            }
            Status::Fatal => {
                self.done = true;
                Some(Err(self.status_error(&msg)))
            }
        }
    }

    fn settle(&mut self, pending: Option<usize>) {
        self.pending = match pending {
            Some(n) => self.pending.saturating_sub(n),
            None => 0,
        };
    }

    fn deliver(&mut self, msg: Message) -> Option<Result<JsMessage, JetStreamError>> {
        let reply = msg.reply.as_deref().unwrap_or_default();
        let (consumer_seq, stream_seq) = match MessageInfo::parse(reply) {
            Ok(info) if info.consumer != self.name => return None, // an older consumer's
            Ok(info) => (info.consumer_sequence, info.stream_sequence),
            Err(e) => return Some(Err(e)),
        };
        if consumer_seq != self.consumer_seq + 1 {
            // Something was lost in between: start again after the last one delivered.
            self.lose();
            return None;
        }
        self.consumer_seq = consumer_seq;
        self.stream_seq = stream_seq;
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stream_sequence = stream_seq;
        Some(Ok(JsMessage::new(
            msg,
            self.client.clone(),
            self.context.timeout,
        )))
    }

    fn status_error(&self, msg: &Message) -> JetStreamError {
        JetStreamError::PullStatus {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
            code: msg.status.map_or(0, StatusCode::as_u16),
            description: msg.description.as_deref().unwrap_or_default().to_owned(),
        }
    }

    /// Replaces a lost consumer; `Some` is an item for the caller (a failure).
    async fn reset_now(&mut self) -> Option<Result<JsMessage, JetStreamError>> {
        match self.recreate().await {
            Ok(_) => {
                self.reset = None;
                self.failures = 0;
                if let Err(e) = self.pull().await {
                    return self.failed(e);
                }
                None
            }
            Err(e) => self.failed(e),
        }
    }

    fn failed(&mut self, e: JetStreamError) -> Option<Result<JsMessage, JetStreamError>> {
        let closed = matches!(
            e,
            JetStreamError::Publish(PublishError::Closed)
                | JetStreamError::Request(RequestError::Closed)
                | JetStreamError::Client(nats_client::ClientError::Closed)
        );
        if closed || e.is_api(ErrorCode::STREAM_NOT_FOUND) {
            self.done = true;
            return Some(Err(e));
        }
        self.failures = self.failures.saturating_add(1);
        let pause = Duration::from_millis(250)
            .saturating_mul(1 << self.failures.min(5))
            .min(MAX_RESET_BACKOFF);
        self.reset = Some(Instant::now() + pause);
        Some(Err(e))
    }

    async fn next(&mut self) -> Option<Result<JsMessage, JetStreamError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(at) = self.reset {
                if Instant::now() >= at {
                    if let Some(item) = self.reset_now().await {
                        return Some(item);
                    }
                    continue;
                }
            } else if self.wants_pull()
                && let Err(e) = self.pull().await
            {
                if matches!(e, JetStreamError::Publish(PublishError::Closed)) {
                    self.done = true;
                }
                self.pull_after = Some(Instant::now() + Duration::from_secs(1));
                return Some(Err(e));
            }
            let mut wake = self.reset.unwrap_or(self.watchdog);
            if let Some(t) = self.pull_after {
                wake = wake.min(t);
            }
            let sub = self.sub.as_mut()?;
            tokio::select! {
                biased;
                msg = sub.next() => match msg {
                    Some(msg) => {
                        if self.reset.is_none()
                            && let Some(item) = self.handle(msg)
                        {
                            return Some(item);
                        }
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                event = recv_event(&mut self.events) => match event {
                    // The server behind the connection may have forgotten the consumer.
                    Ok(Event::Reconnected { .. }) | Err(RecvError::Lagged(_)) => self.lose(),
                    Ok(_) => {}
                    Err(RecvError::Closed) => self.events = None,
                },
                () = tokio::time::sleep_until(wake) => {
                    if self.reset.is_none() && Instant::now() >= self.watchdog {
                        let hb = self.config.idle_heartbeat;
                        if hb.is_zero() {
                            // The request just ran out: pull again.
                            self.pending = 0;
                            self.feed_watchdog();
                        } else {
                            self.lose();
                            return Some(Err(JetStreamError::HeartbeatMissed {
                                stream: self.stream.clone(),
                                consumer: self.name.clone(),
                                interval: hb,
                            }));
                        }
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

    fn status(code: u16, desc: &str) -> Message {
        Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: Bytes::new(),
            headers: None,
            status: StatusCode::from_u16(code),
            description: Some(desc.into()),
            length: 0,
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            classify(&status(100, "Idle Heartbeat")),
            Some(Status::Heartbeat)
        );
        assert_eq!(
            classify(&status(408, "Request Timeout")),
            Some(Status::Ended(None))
        );
        assert_eq!(
            classify(&status(409, "Consumer Deleted")),
            Some(Status::Lost)
        );
        assert_eq!(classify(&status(503, "")), Some(Status::Lost));
        assert_eq!(
            classify(&status(409, "Leadership Change")),
            Some(Status::Repull)
        );
        assert_eq!(
            classify(&status(409, "Exceeded MaxWaiting")),
            Some(Status::Report(None))
        );
        assert_eq!(classify(&status(400, "Bad Request")), Some(Status::Fatal));
    }

    #[test]
    fn pull_json() {
        let p = OrderedPull {
            batch: 5,
            expires: Duration::from_secs(1),
            idle_heartbeat: Duration::ZERO,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"batch":5,"expires":1000000000}"#
        );
    }
}
