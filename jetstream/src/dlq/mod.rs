//! The dead-letter worker: messages consumers gave up on (`max_deliver` exceeded, or
//! terminated with `+TERM`) are copied to a dead-letter subject, exactly once.
//!
//! The server announces both events with advisories on
//! `$JS.EVENT.ADVISORY.CONSUMER.{MAX_DELIVERIES,MSG_TERMINATED}.<stream>.<consumer>`. Core NATS
//! advisories are lost when nobody listens, so the worker first makes sure a work-queue stream
//! captures them: advisories raised while it is down wait there. It watches one consumer, or
//! every consumer of a stream with one capture (a wildcard on the consumer token).
//!
//! Why exactly once: for each advisory the worker loads the original message by stream
//! sequence, asks the [`DeadLetterRouter`] where it goes, publishes it with a `Nats-Msg-Id`
//! derived from (stream, consumer, sequence) and waits for the ack, optionally deletes the
//! original, and only then acks the advisory. A crash anywhere means the advisory comes again
//! and the dead-letter stream's duplicate window drops the second copy.
//!
//! What it cannot do: copy what is gone. On **Interest and WorkQueue streams a terminated
//! message is deleted at once** (Limits streams keep it), and messages removed by limits or a
//! TTL while in flight raise `MSG_TERMINATED` with reason "Unacknowledged message was deleted"
//! after their payload is gone. Both end as [`DeadLetterOutcome::OriginalMissing`]. Where the
//! copy matters on such streams, the consumer must publish it itself *before* it terminates
//! or acks (as the AMQP layer does for `x-dead-letter-exchange`), and keep this worker for
//! `max_deliver` only.

mod config;
mod outcome;
mod route;
mod worker;

pub use config::DeadLetterConfig;
pub use outcome::{DeadLetterOutcome, DeadLetterReason, DeadLetterStats};
pub use route::{DeadLetterRecord, DeadLetterRouter, Route, StandardRoute, headers};
pub use worker::{DeadLetter, DeadLetterHandle};
