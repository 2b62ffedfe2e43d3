//! The [`DeadLetter`] worker and the [`DeadLetterHandle`] of a spawned one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::config::DeadLetterConfig;
use super::outcome::{Advisory, Counters, DeadLetterOutcome, DeadLetterStats};
use super::route::{DeadLetterRecord, DeadLetterRouter, StandardRoute};
use crate::consume::ConsumeOptions;
use crate::consumer::Consumer;
use crate::context::Context;
use crate::error::{ErrorCode, JetStreamError};
use crate::message::JsMessage;
use crate::models::{ConsumerConfig, RetentionPolicy, StreamConfig};
use crate::publish::PublishOptions;

/// Moves the failures of one consumer, or of every consumer of a stream (`max_deliver`
/// exceeded, or terminated), to dead-letter subjects, exactly once.
///
/// What it cannot copy is what is gone: on **Interest and WorkQueue streams a terminated
/// message is deleted at once** (Limits streams keep it), and a message removed by limits or
/// a TTL while in flight is reported as terminated ("Unacknowledged message was deleted")
/// after its payload is gone. Both end as [`DeadLetterOutcome::OriginalMissing`]. Where the
/// copy matters on such streams, the consumer must publish the copy itself *before* it
/// terminates or acks (as the AMQP layer does for `x-dead-letter-exchange`) and leave this
/// worker the `max_deliver` cases.
///
/// [`start`](DeadLetter::start) makes a work-queue stream capture the advisories, so those
/// raised while the worker is down wait there. For each advisory the worker loads the
/// original by stream sequence, asks its [`DeadLetterRouter`] (default: [`StandardRoute`] to
/// [`DeadLetterConfig::subject`]) for the subject and headers, publishes the copy with the
/// route's `Nats-Msg-Id`, waits for the ack, optionally deletes the original, and only then
/// acks the advisory: after a crash the advisory comes again and the dead-letter stream's
/// duplicate window drops the second copy (keep that window longer than the advisory
/// consumer's ack wait, as the default is). An advisory that keeps failing for a reason
/// waiting does not cure is given up after [`DeadLetterConfig::max_attempts`] as
/// [`DeadLetterOutcome::Unprocessable`].
///
/// ```no_run
/// # async fn demo(js: jetstream::Context) -> Result<(), jetstream::JetStreamError> {
/// let worker = jetstream::DeadLetter::start(
///     js,
///     jetstream::DeadLetterConfig::for_stream("ORDERS"),
/// )
/// .await?
/// .spawn();
/// // ... later, on shutdown: finishes the advisory in hand, then stops.
/// worker.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeadLetter {
    context: Context,
    config: DeadLetterConfig,
    advisories: Consumer,
    router: Arc<dyn DeadLetterRouter>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("config", &self.config)
            .field("advisories", &self.advisories.name())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
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
            router: Arc::new(StandardRoute {
                subject: config.subject.clone(),
            }),
            context,
            config,
            advisories,
            counters: Arc::default(),
        })
    }

    /// Routes dead letters with `router` instead of the [`StandardRoute`]. The routes'
    /// subjects must be captured by a stream (set [`DeadLetterConfig::dlq_stream`] to one
    /// that captures them, or create it).
    pub fn with_router(mut self, router: impl DeadLetterRouter + 'static) -> Self {
        self.router = Arc::new(router);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &DeadLetterConfig {
        &self.config
    }

    /// The consumer the advisories are read with.
    pub fn advisory_consumer(&self) -> &Consumer {
        &self.advisories
    }

    /// What this worker and its clones have done so far.
    pub fn stats(&self) -> DeadLetterStats {
        self.counters.snapshot()
    }

    /// Handles advisories until the advisory consumer goes away or the client closes.
    /// Failures are logged and the advisory is tried again after `retry_delay`.
    pub async fn run(&self) -> Result<(), JetStreamError> {
        self.run_with(|_| {}).await
    }

    /// [`run`](Self::run), reporting each outcome (and each transient error) to `observe`.
    pub async fn run_with(
        &self,
        observe: impl FnMut(Result<DeadLetterOutcome, JetStreamError>),
    ) -> Result<(), JetStreamError> {
        self.run_until(std::future::pending(), observe).await
    }

    /// [`run_with`](Self::run_with) until `shutdown` completes: the advisory in hand is
    /// finished (copied and acked) first, then it returns `Ok`. Advisories pulled and not yet
    /// handled are redelivered to the next worker after the advisory consumer's ack wait.
    pub async fn run_until(
        &self,
        shutdown: impl Future<Output = ()>,
        mut observe: impl FnMut(Result<DeadLetterOutcome, JetStreamError>),
    ) -> Result<(), JetStreamError> {
        let options = ConsumeOptions {
            max_messages: self.config.batch.max(1),
            expires: Duration::from_secs(10),
            idle_heartbeat: Duration::from_secs(5),
            ..ConsumeOptions::default()
        };
        let mut messages = self.advisories.consume(options).await?;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let item = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                item = messages.next() => item,
            };
            match item {
                Some(Ok(msg)) => observe(self.process(&msg).await),
                Some(Err(e @ JetStreamError::ConsumerDeleted { .. })) => {
                    observe(Err(e.clone()));
                    return Err(e);
                }
                Some(Err(e)) => observe(Err(e)),
                None => return Ok(()),
            }
        }
    }

    /// Runs a clone of this worker on a tokio task until [`DeadLetterHandle::stop`].
    /// Outcomes are logged (`tracing`) and counted ([`DeadLetterHandle::stats`]).
    pub fn spawn(&self) -> DeadLetterHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let worker = self.clone();
        let task = tokio::spawn(async move {
            worker
                .run_until(
                    async move {
                        // A dropped handle stops the worker too.
                        let _ = stopped.await;
                    },
                    |_| {},
                )
                .await
        });
        DeadLetterHandle {
            stop: Some(stop),
            task,
            counters: self.counters.clone(),
        }
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

    /// Handles one advisory message. On a failure it is nak'ed for a retry after
    /// `retry_delay`; after `max_attempts` failures that waiting does not cure it is acked
    /// and reported as [`DeadLetterOutcome::Unprocessable`].
    pub async fn process(&self, advisory: &JsMessage) -> Result<DeadLetterOutcome, JetStreamError> {
        let result = match self.handle(advisory).await {
            Ok(outcome) => {
                debug!(?outcome, "dead-letter advisory handled");
                Ok(outcome)
            }
            Err(e) => self.failed(advisory, e).await,
        };
        self.counters.count(&result);
        result
    }

    async fn failed(
        &self,
        advisory: &JsMessage,
        error: JetStreamError,
    ) -> Result<DeadLetterOutcome, JetStreamError> {
        // An advisory we cannot read the delivery count of has no retry to count on.
        let attempts = advisory.info().map_or(u64::MAX, |i| i.delivered);
        if error.is_transient() || attempts < u64::from(self.config.max_attempts.max(1)) {
            warn!(error = %error, subject = %advisory.subject, attempts, "dead-letter advisory failed; will retry");
            let _ = advisory.nak_with_delay(self.config.retry_delay).await;
            return Err(error);
        }
        let stream_seq = serde_json::from_slice::<Advisory>(&advisory.payload)
            .ok()
            .map(|a| a.stream_seq);
        warn!(error = %error, subject = %advisory.subject, ?stream_seq, attempts, "dead-letter advisory unprocessable; giving up on it");
        advisory.double_ack().await?;
        Ok(DeadLetterOutcome::Unprocessable {
            subject: advisory.subject.to_string(),
            stream_seq,
            attempts,
            error,
        })
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
        if !self.config.covers(&parsed.stream, &parsed.consumer) {
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
        let reason = parsed.dead_letter_reason(&subject);
        let stream = &self.config.stream;
        let consumer = parsed.consumer;
        let seq = parsed.stream_seq;
        let original = match self.context.get_message(stream, seq).await {
            Ok(m) => m,
            Err(JetStreamError::Api(error))
                if error.err_code == ErrorCode::NO_MESSAGE_FOUND
                    || error.err_code == ErrorCode::STREAM_NOT_FOUND =>
            {
                advisory.double_ack().await?;
                return Ok(DeadLetterOutcome::OriginalMissing {
                    consumer,
                    stream_seq: seq,
                    reason,
                    error,
                });
            }
            Err(e) => return Err(e),
        };
        let dedup_id = self.config.dedup_id(&consumer, seq);
        let record = DeadLetterRecord {
            stream,
            consumer: &consumer,
            stream_seq: seq,
            deliveries: parsed.deliveries,
            reason: &reason,
            original: &original,
            dedup_id: &dedup_id,
        };
        let Some(route) = self.router.route(&record) else {
            advisory.double_ack().await?;
            return Ok(DeadLetterOutcome::Skipped {
                consumer,
                stream_seq: seq,
                reason,
            });
        };
        let options = PublishOptions::new()
            .headers(route.headers)
            .msg_id(route.msg_id);
        let ack = self
            .context
            .publish_with(&route.subject, original.payload.clone(), &options)
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
            consumer,
            stream_seq: seq,
            deliveries: parsed.deliveries,
            reason,
            subject: route.subject,
            ack,
            deleted_original,
        })
    }
}

/// A [`DeadLetter`] worker running on its own task ([`DeadLetter::spawn`]). Dropping the
/// handle stops the worker the same way as [`stop`](Self::stop), without waiting for it.
#[derive(Debug)]
pub struct DeadLetterHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), JetStreamError>>,
    counters: Arc<Counters>,
}

impl DeadLetterHandle {
    /// Stops the worker gracefully: the advisory in hand is finished, then the task ends.
    /// Returns how the run ended (`Ok` when it was stopped; the error when it had ended on
    /// its own, e.g. [`JetStreamError::ConsumerDeleted`]).
    pub async fn stop(mut self) -> Result<(), JetStreamError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }

    /// Stops the worker at once, possibly in the middle of an advisory (which is then
    /// handled again by the next worker; the copy is deduplicated).
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the worker has ended (stopped, aborted, or failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// What the worker has done so far.
    pub fn stats(&self) -> DeadLetterStats {
        self.counters.snapshot()
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
