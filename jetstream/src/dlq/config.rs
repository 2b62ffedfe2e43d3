//! Where a [`DeadLetter`](super::DeadLetter) worker reads and writes.

use std::time::Duration;

use crate::models::{StorageType, StreamConfig};

/// Where a [`DeadLetter`](super::DeadLetter) worker reads and writes.
/// [`DeadLetterConfig::new`] (one consumer) and [`DeadLetterConfig::for_stream`] (every
/// consumer of a stream) give defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterConfig {
    /// The origin stream.
    pub stream: String,
    /// The consumer whose failures are dead-lettered; `None` for every consumer of the
    /// stream, captured with one wildcard advisory stream (not one per consumer).
    pub consumer: Option<String>,
    /// Where the [`StandardRoute`](super::StandardRoute) publishes dead letters. Default
    /// `dlq.<stream>.<consumer>`, or `dlq.<stream>` for a whole stream.
    pub subject: String,
    /// A stream to capture the dead letters, created when no stream captures its first
    /// subject yet. Default: `DLQ_<stream>_<consumer>` (or `DLQ_<stream>`) on `subject` with a
    /// one-hour duplicate window. `None`: some stream must capture the routes already.
    pub dlq_stream: Option<StreamConfig>,
    /// The work-queue stream that captures the advisories. Default
    /// `DLQ_ADVISORIES_<stream>_<consumer>` (or `DLQ_ADVISORIES_<stream>`). Use one mode per
    /// origin stream: a per-stream capture and a per-consumer one overlap.
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
    /// Attempts per advisory when it fails for a reason that waiting does not cure (not
    /// [`is_transient`](crate::JetStreamError::is_transient)); then it is acked and reported
    /// as [`DeadLetterOutcome::Unprocessable`](super::DeadLetterOutcome::Unprocessable), so
    /// one bad message cannot stop the worker. Transient failures (timeouts, no leader) are
    /// retried without bound. Default 5.
    pub max_attempts: u32,
}

impl DeadLetterConfig {
    /// Defaults for the failures of `consumer` on `stream`.
    pub fn new(stream: impl Into<String>, consumer: impl Into<String>) -> Self {
        let stream = stream.into();
        let consumer = consumer.into();
        DeadLetterConfig::with_names(
            format!("dlq.{stream}.{consumer}"),
            format!("DLQ_{stream}_{consumer}"),
            format!("DLQ_ADVISORIES_{stream}_{consumer}"),
            stream,
            Some(consumer),
        )
    }

    /// Defaults for the failures of every consumer of `stream`: one advisory stream
    /// (`DLQ_ADVISORIES_<stream>`) captures them all, dead letters go to `dlq.<stream>` with
    /// the consumer's name in `Nats-DLQ-Consumer` (or wherever a
    /// [`DeadLetterRouter`](super::DeadLetterRouter) sends them).
    ///
    /// ```
    /// let c = jetstream::DeadLetterConfig::for_stream("ORDERS");
    /// assert_eq!(
    ///     c.advisory_subjects()[0],
    ///     "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.*"
    /// );
    /// ```
    pub fn for_stream(stream: impl Into<String>) -> Self {
        let stream = stream.into();
        DeadLetterConfig::with_names(
            format!("dlq.{stream}"),
            format!("DLQ_{stream}"),
            format!("DLQ_ADVISORIES_{stream}"),
            stream,
            None,
        )
    }

    fn with_names(
        subject: String,
        dlq_stream: String,
        advisory_stream: String,
        stream: String,
        consumer: Option<String>,
    ) -> Self {
        DeadLetterConfig {
            dlq_stream: Some(StreamConfig {
                duplicate_window: Duration::from_secs(3600),
                ..StreamConfig::new(dlq_stream, [subject.clone()])
            }),
            subject,
            advisory_stream,
            advisory_consumer: "dlq-worker".into(),
            storage: StorageType::File,
            replicas: 1,
            delete_original: false,
            batch: 64,
            retry_delay: Duration::from_secs(1),
            max_attempts: 5,
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

    /// The advisory subjects the worker captures (`*` for the consumer of a whole stream).
    pub fn advisory_subjects(&self) -> [String; 2] {
        let consumer = self.consumer.as_deref().unwrap_or("*");
        ["MAX_DELIVERIES", "MSG_TERMINATED"].map(|kind| {
            format!(
                "$JS.EVENT.ADVISORY.CONSUMER.{kind}.{}.{consumer}",
                self.stream
            )
        })
    }

    /// Whether an advisory about `consumer` of `stream` is this worker's.
    pub(crate) fn covers(&self, stream: &str, consumer: &str) -> bool {
        stream == self.stream && self.consumer.as_deref().is_none_or(|c| c == consumer)
    }

    /// The `Nats-Msg-Id` of a copy: `<stream>:<seq>` for one consumer (as before), with the
    /// consumer in it for a whole stream, where two consumers may give up on one message.
    pub(crate) fn dedup_id(&self, consumer: &str, seq: u64) -> String {
        match self.consumer {
            Some(_) => format!("{}:{seq}", self.stream),
            None => format!("{}:{consumer}:{seq}", self.stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let one = DeadLetterConfig::new("S", "c");
        assert!(one.covers("S", "c") && !one.covers("S", "d") && !one.covers("T", "c"));
        assert_eq!(one.dedup_id("c", 7), "S:7");
        assert_eq!(one.dlq_stream.as_ref().unwrap().name, "DLQ_S_c");
        let all = DeadLetterConfig::for_stream("S");
        assert!(all.covers("S", "c") && all.covers("S", "d") && !all.covers("T", "c"));
        assert_eq!(all.dedup_id("c", 7), "S:c:7");
        assert_eq!(
            all.advisory_subjects()[1],
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.*"
        );
        assert_eq!(all.subject, "dlq.S");
    }
}
