//! What the worker makes of one advisory: the reason a message was given up on, the outcome,
//! and the counters of outcomes.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::error::{ApiError, JetStreamError};
use crate::publish::PubAck;

/// Why a message was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// It was delivered `max_deliver` times without an ack.
    MaxDeliveries,
    /// A consumer terminated it (`+TERM`), with the reason it gave. The server also reports
    /// in-flight messages removed by limits or a TTL this way ("Unacknowledged message was
    /// deleted").
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
    /// The original was copied to its route (`ack.duplicate` when an earlier run had copied
    /// it already).
    DeadLettered {
        /// The consumer that gave up on it.
        consumer: String,
        /// Its sequence in the origin stream.
        stream_seq: u64,
        /// Its delivery count.
        deliveries: u64,
        /// Why.
        reason: DeadLetterReason,
        /// The subject the copy went to.
        subject: String,
        /// The dead-letter stream's ack.
        ack: PubAck,
        /// Whether the original was deleted from the origin stream.
        deleted_original: bool,
    },
    /// The original was gone (terminated on an Interest or WorkQueue stream, deleted,
    /// purged, aged out, or its stream deleted) before it could be copied. The advisory was
    /// acked; nothing else can be done.
    OriginalMissing {
        /// The consumer that gave up on it.
        consumer: String,
        /// Its sequence in the origin stream.
        stream_seq: u64,
        /// Why it was to be dead-lettered.
        reason: DeadLetterReason,
        /// The server's answer to the lookup.
        error: ApiError,
    },
    /// The [`DeadLetterRouter`](super::DeadLetterRouter) chose not to copy it; the advisory
    /// was acked.
    Skipped {
        /// The consumer that gave up on it.
        consumer: String,
        /// Its sequence in the origin stream.
        stream_seq: u64,
        /// Why it was to be dead-lettered.
        reason: DeadLetterReason,
    },
    /// The advisory could not be understood, or was about a consumer this worker does not
    /// watch; it was terminated.
    Malformed {
        /// The advisory's subject.
        subject: String,
        /// What was wrong.
        reason: String,
    },
    /// Handling the advisory failed `max_attempts` times for a reason that waiting does not
    /// cure (the original cannot be read or republished, the route is unusable...). It was
    /// acked and logged so the worker goes on with the others.
    Unprocessable {
        /// The advisory's subject.
        subject: String,
        /// The original's sequence, when the advisory could be read.
        stream_seq: Option<u64>,
        /// How many times it was tried.
        attempts: u64,
        /// The last failure.
        error: JetStreamError,
    },
}

/// Counts of what a [`DeadLetter`](super::DeadLetter) worker (and its clones) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadLetterStats {
    /// Copies stored (duplicates of earlier copies included).
    pub dead_lettered: u64,
    /// Originals that were gone.
    pub original_missing: u64,
    /// Advisories the router skipped.
    pub skipped: u64,
    /// Malformed or foreign advisories.
    pub malformed: u64,
    /// Advisories given up after `max_attempts`.
    pub unprocessable: u64,
    /// Failed attempts that will be retried.
    pub retries: u64,
}

/// The live counters behind [`DeadLetterStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    dead_lettered: AtomicU64,
    original_missing: AtomicU64,
    skipped: AtomicU64,
    malformed: AtomicU64,
    unprocessable: AtomicU64,
    retries: AtomicU64,
}

impl Counters {
    pub(crate) fn count(&self, outcome: &Result<DeadLetterOutcome, JetStreamError>) {
        let counter = match outcome {
            Ok(DeadLetterOutcome::DeadLettered { .. }) => &self.dead_lettered,
            Ok(DeadLetterOutcome::OriginalMissing { .. }) => &self.original_missing,
            Ok(DeadLetterOutcome::Skipped { .. }) => &self.skipped,
            Ok(DeadLetterOutcome::Malformed { .. }) => &self.malformed,
            Ok(DeadLetterOutcome::Unprocessable { .. }) => &self.unprocessable,
            Err(_) => &self.retries,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> DeadLetterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeadLetterStats {
            dead_lettered: get(&self.dead_lettered),
            original_missing: get(&self.original_missing),
            skipped: get(&self.skipped),
            malformed: get(&self.malformed),
            unprocessable: get(&self.unprocessable),
            retries: get(&self.retries),
        }
    }
}

/// The fields of a `MAX_DELIVERIES` or `MSG_TERMINATED` advisory the worker uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Advisory {
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) stream: String,
    #[serde(default)]
    pub(crate) consumer: String,
    pub(crate) stream_seq: u64,
    #[serde(default)]
    pub(crate) deliveries: u64,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

impl Advisory {
    /// Why the message was given up on, from the advisory's type or subject.
    pub(crate) fn dead_letter_reason(&self, subject: &str) -> DeadLetterReason {
        if self.kind.ends_with(".terminated") || subject.contains(".MSG_TERMINATED.") {
            DeadLetterReason::Terminated(self.reason.clone().filter(|r| !r.is_empty()))
        } else {
            DeadLetterReason::MaxDeliveries
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(a.dead_letter_reason("x"), DeadLetterReason::MaxDeliveries);
        let t: Advisory = serde_json::from_str(
            r#"{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"S","consumer":"C",
                "consumer_seq":1,"stream_seq":2,"deliveries":1,"reason":"nope"}"#,
        )
        .unwrap();
        assert_eq!(
            t.dead_letter_reason("x"),
            DeadLetterReason::Terminated(Some("nope".into()))
        );
    }

    #[test]
    fn counters() {
        let c = Counters::default();
        c.count(&Ok(DeadLetterOutcome::Malformed {
            subject: "s".into(),
            reason: "r".into(),
        }));
        c.count(&Err(JetStreamError::NoStream {
            subject: "s".into(),
        }));
        let s = c.snapshot();
        assert_eq!((s.malformed, s.retries, s.dead_lettered), (1, 1, 0));
    }
}
