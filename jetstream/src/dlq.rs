//! The dead-letter worker: messages a consumer gave up on (`max_deliver` exceeded, or
//! terminated with `+TERM`) are copied to a dead-letter subject, exactly once.
//!
//! The server announces both events with advisories on
//! `$JS.EVENT.ADVISORY.CONSUMER.{MAX_DELIVERIES,MSG_TERMINATED}.<stream>.<consumer>`. Core NATS
//! advisories are lost when nobody listens, so the worker first makes sure a work-queue stream
//! captures them: advisories raised while it is down wait there. For each advisory it loads the
//! original message by stream sequence, publishes it (payload and headers kept, plus
//! `Nats-DLQ-*` headers naming the origin) with `Nats-Msg-Id: <stream>:<seq>` and waits for the
//! ack, optionally deletes the original, and only then acks the advisory. A crash anywhere
//! means the advisory comes again and the dead-letter stream deduplicates the copy.

use std::time::Duration;

use futures_util::StreamExt;
use nats_client::HeaderMap;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use tracing::{debug, warn};

use crate::consume::ConsumeOptions;
use crate::consumer::Consumer;
use crate::context::Context;
use crate::error::{ErrorCode, JetStreamError};
use crate::message::JsMessage;
use crate::models::{ConsumerConfig, RetentionPolicy, StorageType, StreamConfig};
use crate::publish::{PubAck, PublishOptions};

/// The headers a dead-lettered message carries besides its own.
pub mod headers {
    /// The stream the message came from.
    pub const STREAM: &str = "Nats-DLQ-Stream";
    /// The consumer that gave up on it.
    pub const CONSUMER: &str = "Nats-DLQ-Consumer";
    /// Its sequence in the origin stream.
    pub const SEQUENCE: &str = "Nats-DLQ-Sequence";
    /// How many times it was delivered.
    pub const DELIVERIES: &str = "Nats-DLQ-Deliveries";
    /// `max_deliveries`, `terminated`, or `terminated: <reason>`.
    pub const REASON: &str = "Nats-DLQ-Reason";
    /// The subject it was published to.
    pub const SUBJECT: &str = "Nats-DLQ-Subject";
    /// When it was stored in the origin stream (RFC 3339).
    pub const TIME: &str = "Nats-DLQ-Time";
    /// Its own `Nats-Msg-Id`, if it had one (the copy's id is `<stream>:<seq>`).
    pub const MSG_ID: &str = "Nats-DLQ-Msg-Id";
}

/// Where a [`DeadLetter`] worker reads and writes. [`DeadLetterConfig::new`] gives defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterConfig {
    /// The origin stream.
    pub stream: String,
    /// The consumer whose failures are dead-lettered.
    pub consumer: String,
    /// Where dead letters are published. Default `dlq.<stream>.<consumer>`.
    pub subject: String,
    /// A stream to capture `subject`, created when no stream captures it yet. Default: a
    /// stream `DLQ_<stream>_<consumer>` with a one-hour duplicate window. `None`: some stream
    /// must capture `subject` already.
    pub dlq_stream: Option<StreamConfig>,
    /// The work-queue stream that captures the advisories. Default
    /// `DLQ_ADVISORIES_<stream>_<consumer>`.
    pub advisory_stream: String,
    /// The durable consumer the worker reads advisories with. Default `dlq-worker`.
    pub advisory_consumer: String,
    /// Storage of the advisory stream (see [`with_storage`](Self::with_storage)). Default file.
    pub storage: StorageType,
    /// Replicas of the advisory stream (see [`with_replicas`](Self::with_replicas)). Default 1.
    pub replicas: usize,
    /// Delete the original from the origin stream once its copy is stored. Default false.
    pub delete_original: bool,
    /// Advisories handled per pull. Default 64.
    pub batch: usize,
    /// How long a failed advisory waits before it is tried again. Default 1 s.
    pub retry_delay: Duration,
}

impl DeadLetterConfig {
    /// Defaults for the failures of `consumer` on `stream`.
    pub fn new(stream: impl Into<String>, consumer: impl Into<String>) -> Self {
        let stream = stream.into();
        let consumer = consumer.into();
        let subject = format!("dlq.{stream}.{consumer}");
        DeadLetterConfig {
            dlq_stream: Some(StreamConfig {
                duplicate_window: Duration::from_secs(3600),
                ..StreamConfig::new(format!("DLQ_{stream}_{consumer}"), [subject.clone()])
            }),
            subject,
            advisory_stream: format!("DLQ_ADVISORIES_{stream}_{consumer}"),
            advisory_consumer: "dlq-worker".into(),
            storage: StorageType::File,
            replicas: 1,
            delete_original: false,
            batch: 64,
            retry_delay: Duration::from_secs(1),
            stream,
            consumer,
        }
    }

    /// Sets the replicas of the advisory stream and of the default dead-letter stream.
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        if let Some(s) = &mut self.dlq_stream {
            s.num_replicas = replicas;
        }
        self
    }

    /// Sets the storage of the advisory stream and of the default dead-letter stream.
    pub fn with_storage(mut self, storage: StorageType) -> Self {
        self.storage = storage;
        if let Some(s) = &mut self.dlq_stream {
            s.storage = storage;
        }
        self
    }

    /// The advisory subjects the worker captures.
    pub fn advisory_subjects(&self) -> [String; 2] {
        [
            format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
                self.stream, self.consumer
            ),
            format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{}.{}",
                self.stream, self.consumer
            ),
        ]
    }
}

/// Why a message was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// It was delivered `max_deliver` times without an ack.
    MaxDeliveries,
    /// A consumer terminated it (`+TERM`), with the reason it gave.
    Terminated(Option<String>),
}

impl DeadLetterReason {
    /// The `Nats-DLQ-Reason` value; a reason's control characters become spaces.
    pub fn header_value(&self) -> String {
        match self {
            DeadLetterReason::MaxDeliveries => "max_deliveries".into(),
            DeadLetterReason::Terminated(None) => "terminated".into(),
            DeadLetterReason::Terminated(Some(r)) => {
                let clean: String = r
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                format!("terminated: {}", clean.trim())
            }
        }
    }
}

/// What the worker did with one advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterOutcome {
    /// The original was copied to the dead-letter subject (`ack.duplicate` when an earlier
    /// run had copied it already).
    DeadLettered {
        /// Its sequence in the origin stream.
        stream_seq: u64,
        /// Its delivery count.
        deliveries: u64,
        /// Why.
        reason: DeadLetterReason,
        /// The dead-letter stream's ack.
        ack: PubAck,
        /// Whether the original was deleted from the origin stream.
        deleted_original: bool,
    },
    /// The original was gone (deleted, purged, aged out, or its stream deleted) before it
    /// could be copied. The advisory was acked; nothing else can be done.
    OriginalMissing {
        /// Its sequence in the origin stream.
        stream_seq: u64,
        /// Why it was to be dead-lettered.
        reason: DeadLetterReason,
        /// The server's answer to the lookup.
        error: crate::ApiError,
    },
    /// The advisory could not be understood, or was about another consumer; it was
    /// terminated.
    Malformed {
        /// The advisory's subject.
        subject: String,
        /// What was wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct Advisory {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    consumer: String,
    stream_seq: u64,
    #[serde(default)]
    deliveries: u64,
    #[serde(default)]
    reason: Option<String>,
}

/// Moves the failures of one consumer (`max_deliver` exceeded, or terminated) to a
/// dead-letter subject, exactly once.
///
/// The server announces both events with advisories on
/// `$JS.EVENT.ADVISORY.CONSUMER.{MAX_DELIVERIES,MSG_TERMINATED}.<stream>.<consumer>`; core NATS
/// drops advisories nobody listens to, so [`start`](DeadLetter::start) makes a work-queue
/// stream capture them and advisories raised while the worker is down wait there. For each
/// advisory the worker loads the original by stream sequence, publishes it with its headers
/// plus the [`dlq_headers`](crate::dlq_headers) and `Nats-Msg-Id: <stream>:<seq>`, waits for
/// the ack, optionally deletes the original, and only then acks the advisory: after a crash
/// the advisory comes again and the dead-letter stream's duplicate window drops the second
/// copy (keep that window longer than the advisory consumer's ack wait, as the default is).
///
/// ```no_run
/// # async fn demo(js: jetstream::Context) -> Result<(), jetstream::JetStreamError> {
/// let worker = jetstream::DeadLetter::start(
///     js,
///     jetstream::DeadLetterConfig::new("ORDERS", "billing"),
/// ).await?;
/// worker.run().await?; // until the advisory consumer is deleted or the client closes
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DeadLetter {
    context: Context,
    config: DeadLetterConfig,
    advisories: Consumer,
}

impl DeadLetter {
    /// Makes sure the advisory stream, its durable consumer, and a stream for the dead-letter
    /// subject exist, and returns the worker (which does nothing until run).
    pub async fn start(
        context: Context,
        config: DeadLetterConfig,
    ) -> Result<DeadLetter, JetStreamError> {
        let advisory_stream = ensure_stream(
            &context,
            StreamConfig {
                retention: RetentionPolicy::WorkQueue,
                storage: config.storage,
                num_replicas: config.replicas,
                ..StreamConfig::new(config.advisory_stream.clone(), config.advisory_subjects())
            },
        )
        .await?;
        if let Some(dlq) = &config.dlq_stream {
            ensure_stream(&context, dlq.clone()).await?;
        }
        let advisories = context
            .create_or_update_consumer(
                &advisory_stream,
                ConsumerConfig {
                    ack_wait: Duration::from_secs(30),
                    max_deliver: -1,
                    max_ack_pending: i64::try_from(config.batch.max(1) * 4).unwrap_or(1000),
                    // The capturing stream may be one of the user's that holds more events.
                    filter_subjects: config.advisory_subjects().to_vec(),
                    ..ConsumerConfig::durable(config.advisory_consumer.clone())
                },
            )
            .await?;
        Ok(DeadLetter {
            context,
            config,
            advisories,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DeadLetterConfig {
        &self.config
    }

    /// The consumer the advisories are read with.
    pub fn advisory_consumer(&self) -> &Consumer {
        &self.advisories
    }

    /// Handles advisories until the advisory consumer goes away or the client closes.
    /// Failures are logged and the advisory is tried again after `retry_delay`.
    pub async fn run(&self) -> Result<(), JetStreamError> {
        self.run_with(|_| {}).await
    }

    /// [`run`](Self::run), reporting each outcome (and each transient error) to `observe`.
    pub async fn run_with(
        &self,
        mut observe: impl FnMut(Result<DeadLetterOutcome, JetStreamError>),
    ) -> Result<(), JetStreamError> {
        let options = ConsumeOptions {
            max_messages: self.config.batch.max(1),
            expires: Duration::from_secs(10),
            idle_heartbeat: Duration::from_secs(5),
            ..ConsumeOptions::default()
        };
        let mut messages = self.advisories.consume(options).await?;
        while let Some(item) = messages.next().await {
            match item {
                Ok(msg) => observe(self.process(&msg).await),
                Err(e @ JetStreamError::ConsumerDeleted { .. }) => {
                    observe(Err(e.clone()));
                    return Err(e);
                }
                Err(e) => observe(Err(e)),
            }
        }
        Ok(())
    }

    /// Pulls up to `batch` advisories, waiting up to `expires`, and handles them.
    pub async fn process_batch(
        &self,
        expires: Duration,
    ) -> Result<Vec<Result<DeadLetterOutcome, JetStreamError>>, JetStreamError> {
        let batch = self
            .advisories
            .fetch(self.config.batch.max(1), expires)
            .await?;
        let mut out = Vec::with_capacity(batch.len());
        for msg in &batch {
            out.push(self.process(msg).await);
        }
        Ok(out)
    }

    /// Handles one advisory message; on failure it is nak'ed for a retry after `retry_delay`.
    pub async fn process(&self, advisory: &JsMessage) -> Result<DeadLetterOutcome, JetStreamError> {
        match self.handle(advisory).await {
            Ok(outcome) => {
                debug!(?outcome, "dead-letter advisory handled");
                Ok(outcome)
            }
            Err(e) => {
                warn!(error = %e, subject = %advisory.subject, "dead-letter advisory failed; will retry");
                let _ = advisory.nak_with_delay(self.config.retry_delay).await;
                Err(e)
            }
        }
    }

    async fn handle(&self, advisory: &JsMessage) -> Result<DeadLetterOutcome, JetStreamError> {
        let subject = advisory.subject.to_string();
        let parsed: Advisory = match serde_json::from_slice(&advisory.payload) {
            Ok(a) => a,
            Err(e) => {
                advisory.term_with_reason("malformed advisory").await?;
                return Ok(DeadLetterOutcome::Malformed {
                    subject,
                    reason: e.to_string(),
                });
            }
        };
        if parsed.stream != self.config.stream || parsed.consumer != self.config.consumer {
            advisory
                .term_with_reason("advisory for another consumer")
                .await?;
            return Ok(DeadLetterOutcome::Malformed {
                subject,
                reason: format!(
                    "advisory for consumer {:?} of stream {:?}",
                    parsed.consumer, parsed.stream
                ),
            });
        }
        let reason = if parsed.kind.ends_with(".terminated") || subject.contains(".MSG_TERMINATED.")
        {
            DeadLetterReason::Terminated(parsed.reason.filter(|r| !r.is_empty()))
        } else {
            DeadLetterReason::MaxDeliveries
        };
        let stream = &self.config.stream;
        let seq = parsed.stream_seq;
        let original = match self.context.get_message(stream, seq).await {
            Ok(m) => m,
            Err(JetStreamError::Api(error))
                if error.err_code == ErrorCode::NO_MESSAGE_FOUND
                    || error.err_code == ErrorCode::STREAM_NOT_FOUND =>
            {
                advisory.double_ack().await?;
                return Ok(DeadLetterOutcome::OriginalMissing {
                    stream_seq: seq,
                    reason,
                    error,
                });
            }
            Err(e) => return Err(e),
        };
        let mut h = original.headers.clone().unwrap_or_default();
        if let Some(id) = h.get(crate::publish::MSG_ID).map(str::to_owned) {
            h.insert(headers::MSG_ID, id);
        }
        strip_publish_directives(&mut h);
        h.insert(headers::STREAM, stream.as_str());
        h.insert(headers::CONSUMER, self.config.consumer.as_str());
        h.insert(headers::SEQUENCE, seq.to_string());
        h.insert(headers::DELIVERIES, parsed.deliveries.to_string());
        h.insert(headers::REASON, reason.header_value());
        h.insert(headers::SUBJECT, original.subject.as_str());
        if let Some(t) = original.time.and_then(|t| t.format(&Rfc3339).ok()) {
            h.insert(headers::TIME, t);
        }
        let options = PublishOptions::new()
            .headers(h)
            .msg_id(format!("{stream}:{seq}"));
        let ack = self
            .context
            .publish_with(&self.config.subject, original.payload.clone(), &options)
            .await?;
        let mut deleted_original = false;
        if self.config.delete_original {
            match self.context.delete_message(stream, seq).await {
                Ok(done) => deleted_original = done,
                Err(e) if e.is_api(ErrorCode::NO_MESSAGE_FOUND) => {}
                // Refused for good (e.g. `deny_delete`): the copy is safe, do not loop.
                Err(e) if !e.is_transient() && e.api_error().is_some() => {
                    warn!(error = %e, stream = %stream, seq, "could not delete the dead-lettered original");
                }
                Err(e) => return Err(e),
            }
        }
        advisory.double_ack().await?;
        Ok(DeadLetterOutcome::DeadLettered {
            stream_seq: seq,
            deliveries: parsed.deliveries,
            reason,
            ack,
            deleted_original,
        })
    }
}

/// Removes headers that direct how a publish is stored: they were for the original's stream
/// and would make the copy fail or behave differently (expectations, rollups, TTLs, batches).
fn strip_publish_directives(h: &mut HeaderMap) {
    const EXACT: [&str; 5] = [
        "Nats-Msg-Id",
        "Nats-Rollup",
        "Nats-TTL",
        "Nats-Incr",
        "Nats-Required-Api-Level",
    ];
    const PREFIXES: [&str; 3] = ["nats-expected-", "nats-batch-", "nats-schedule"];
    let doomed: Vec<String> = h
        .iter()
        .map(|(n, _)| n)
        .filter(|n| {
            let lower = n.to_ascii_lowercase();
            EXACT.iter().any(|e| e.eq_ignore_ascii_case(n))
                || PREFIXES.iter().any(|p| lower.starts_with(p))
        })
        .map(str::to_owned)
        .collect();
    for n in doomed {
        h.remove(&n);
    }
}

/// Creates `config`'s stream unless a stream already captures its subjects; returns the name
/// of the stream that does.
async fn ensure_stream(context: &Context, config: StreamConfig) -> Result<String, JetStreamError> {
    if let Some(first) = config.subjects.first()
        && let Some(existing) = context.stream_names(Some(first)).await?.into_iter().next()
    {
        return Ok(existing);
    }
    match context.create_stream(config.clone()).await {
        Ok(s) => Ok(s.name().to_owned()),
        Err(e) if e.is_api(ErrorCode::STREAM_NAME_EXISTS) => {
            // The stream exists with other settings: add our subjects to it.
            let mut info = context.stream_info(&config.name).await?;
            for s in &config.subjects {
                if !info.config.subjects.contains(s) {
                    info.config.subjects.push(s.clone());
                }
            }
            context.update_stream(info.config).await?;
            Ok(config.name)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_stripped_and_others_kept() {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", "1");
        h.insert("Nats-Expected-Last-Sequence", "3");
        h.insert("nats-expected-stream", "S");
        h.insert("Nats-TTL", "5s");
        h.insert("X-Tenant", "acme");
        h.insert("Nats-Trace", "keep");
        strip_publish_directives(&mut h);
        let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["X-Tenant", "Nats-Trace"]);
    }

    #[test]
    fn reasons() {
        assert_eq!(
            DeadLetterReason::MaxDeliveries.header_value(),
            "max_deliveries"
        );
        assert_eq!(
            DeadLetterReason::Terminated(Some("bad\r\ninput".into())).header_value(),
            "terminated: bad  input"
        );
    }

    #[test]
    fn advisories_parse() {
        let a: Advisory = serde_json::from_str(
            r#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2024-01-01T00:00:00Z",
                "stream":"S","consumer":"C","stream_seq":7,"deliveries":3}"#,
        )
        .unwrap();
        assert_eq!((a.stream_seq, a.deliveries), (7, 3));
        let t: Advisory = serde_json::from_str(
            r#"{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"S","consumer":"C",
                "consumer_seq":1,"stream_seq":2,"deliveries":1,"reason":"nope"}"#,
        )
        .unwrap();
        assert_eq!(t.reason.as_deref(), Some("nope"));
    }
}
