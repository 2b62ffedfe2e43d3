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

mod puller;
mod status;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_core::Stream as FuturesStream;
use time::OffsetDateTime;

use crate::context::Context;
use crate::error::{JetStreamError, check_name};
use crate::message::JsMessage;
use crate::models::DeliverPolicy;
use crate::stream::Stream;
use puller::Ordered;

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
    /// Idle heartbeat interval (default 2 s, at most half of `expires`); two missed make the
    /// consumer start afresh. An R1 consumer dies with its server while the client may stay
    /// connected elsewhere, so this bounds how long the consumer is blind (4 s by default).
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
            idle_heartbeat: Duration::from_secs(2),
            metadata: Default::default(),
        }
    }
}

/// What the caller may read about an [`OrderedMessages`] while it runs (atomics: the
/// sequence is written once per message).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) consumer: Mutex<String>,
    pub(crate) stream_sequence: AtomicU64,
    pub(crate) resets: AtomicU64,
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
        let progress = Arc::new(Progress::default());
        let mut ordered = Ordered::new(self.clone(), stream, config, progress.clone());
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
    progress: Arc<Progress>,
}

impl OrderedMessages {
    /// How many messages the first consumer had to deliver when it was created (its
    /// `num_pending`): the messages stored before consumption started.
    pub fn initial_pending(&self) -> u64 {
        self.initial_pending
    }

    /// The stream sequence of the last message delivered (0 before the first).
    pub fn last_stream_sequence(&self) -> u64 {
        self.progress.stream_sequence.load(Ordering::Relaxed)
    }

    /// How many times the consumer was re-created.
    pub fn resets(&self) -> u64 {
        self.progress.resets.load(Ordering::Relaxed)
    }

    /// The name of the consumer in use.
    pub fn consumer_name(&self) -> String {
        self.progress
            .consumer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for OrderedMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedMessages")
            .field("initial_pending", &self.initial_pending)
            .field("consumer", &self.consumer_name())
            .field("last_stream_sequence", &self.last_stream_sequence())
            .field("resets", &self.resets())
            .finish()
    }
}

impl FuturesStream for OrderedMessages {
    type Item = Result<JsMessage, JetStreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
