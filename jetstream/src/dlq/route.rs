//! Where a dead letter goes: the [`DeadLetterRouter`] hook, the standard route with the
//! `Nats-DLQ-*` headers, and the headers a copy must not carry over.

use nats_client::HeaderMap;
use time::format_description::well_known::Rfc3339;

use super::outcome::DeadLetterReason;
use crate::stored::StoredMessage;

/// The headers the [`StandardRoute`] gives a dead-lettered message besides its own.
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
    /// Its own `Nats-Msg-Id`, if it had one (the copy's id is derived from its origin).
    pub const MSG_ID: &str = "Nats-DLQ-Msg-Id";
}

/// What the worker knows about one message to dead-letter: the advisory's facts and the
/// original as stored.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterRecord<'a> {
    /// The origin stream.
    pub stream: &'a str,
    /// The consumer that gave up on it.
    pub consumer: &'a str,
    /// Its sequence in the origin stream.
    pub stream_seq: u64,
    /// How many times it was delivered.
    pub deliveries: u64,
    /// Why it is dead-lettered.
    pub reason: &'a DeadLetterReason,
    /// The original message (subject, headers, payload, time).
    pub original: &'a StoredMessage,
    /// The `Nats-Msg-Id` the standard route gives the copy; a custom route should keep an id
    /// that is the same every time this advisory is handled, so a retry is deduplicated.
    pub dedup_id: &'a str,
}

/// Where one dead letter goes and what it carries besides the original payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The subject to publish the copy to (some stream must capture it).
    pub subject: String,
    /// The copy's headers.
    pub headers: HeaderMap,
    /// The copy's `Nats-Msg-Id`: the dead-letter stream drops a second copy with the same id
    /// within its duplicate window.
    pub msg_id: String,
}

impl Route {
    /// The standard copy to `subject`: the original's headers without those that direct how
    /// a publish is stored (expectations, `Nats-Msg-Id`, rollup, TTL, batch, schedule), plus
    /// the [`headers`] naming its origin, with [`DeadLetterRecord::dedup_id`] as id. A custom
    /// router can start from it and add its own (e.g. AMQP `x-death` headers).
    ///
    /// ```
    /// # fn demo(record: &jetstream::DeadLetterRecord<'_>) {
    /// let mut route = jetstream::Route::standard(record, "dlx.orders");
    /// route.headers.insert("x-first-death-queue", record.consumer);
    /// # }
    /// ```
    pub fn standard(record: &DeadLetterRecord<'_>, subject: impl Into<String>) -> Route {
        let original = record.original;
        let mut h = original.headers.clone().unwrap_or_default();
        if let Some(id) = h.get(crate::publish::MSG_ID).map(str::to_owned) {
            h.insert(headers::MSG_ID, id);
        }
        strip_publish_directives(&mut h);
        h.insert(headers::STREAM, record.stream);
        h.insert(headers::CONSUMER, record.consumer);
        h.insert(headers::SEQUENCE, record.stream_seq.to_string());
        h.insert(headers::DELIVERIES, record.deliveries.to_string());
        h.insert(headers::REASON, record.reason.header_value());
        h.insert(headers::SUBJECT, original.subject.as_str());
        if let Some(t) = original.time.and_then(|t| t.format(&Rfc3339).ok()) {
            h.insert(headers::TIME, t);
        }
        Route {
            subject: subject.into(),
            headers: h,
            msg_id: record.dedup_id.to_owned(),
        }
    }
}

/// Decides where each dead letter goes: the hook through which a layer above (the AMQP
/// facade's dead-letter exchanges) chooses the subject and headers from the advisory and the
/// original. `None` skips the message ([`DeadLetterOutcome::Skipped`](super::DeadLetterOutcome::Skipped)).
///
/// Any `Fn(&DeadLetterRecord<'_>) -> Option<Route> + Send + Sync` is a router:
///
/// ```
/// use jetstream::{DeadLetterRecord, Route};
/// let router = |r: &DeadLetterRecord<'_>| {
///     let mut route = Route::standard(r, format!("dlx.{}", r.consumer));
///     route.headers.insert("x-death-reason", "rejected");
///     Some(route)
/// };
/// # fn takes(_: impl jetstream::DeadLetterRouter) {}
/// takes(router);
/// ```
pub trait DeadLetterRouter: Send + Sync {
    /// The route of one dead letter, or `None` to skip it.
    fn route(&self, record: &DeadLetterRecord<'_>) -> Option<Route>;
}

impl<F> DeadLetterRouter for F
where
    F: Fn(&DeadLetterRecord<'_>) -> Option<Route> + Send + Sync,
{
    fn route(&self, record: &DeadLetterRecord<'_>) -> Option<Route> {
        self(record)
    }
}

/// The default router: [`Route::standard`] to one subject
/// ([`DeadLetterConfig::subject`](super::DeadLetterConfig::subject)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardRoute {
    /// The dead-letter subject.
    pub subject: String,
}

impl DeadLetterRouter for StandardRoute {
    fn route(&self, record: &DeadLetterRecord<'_>) -> Option<Route> {
        Some(Route::standard(record, self.subject.as_str()))
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
    fn standard_route() {
        let mut oh = HeaderMap::new();
        oh.insert("Nats-Msg-Id", "orig");
        oh.insert("X-A", "1");
        let original = StoredMessage {
            subject: "orders.eu".into(),
            sequence: 9,
            headers: Some(oh),
            payload: bytes::Bytes::from_static(b"p"),
            time: None,
        };
        let reason = DeadLetterReason::MaxDeliveries;
        let record = DeadLetterRecord {
            stream: "S",
            consumer: "c",
            stream_seq: 9,
            deliveries: 3,
            reason: &reason,
            original: &original,
            dedup_id: "S:9",
        };
        let r = StandardRoute {
            subject: "dlq.S".into(),
        }
        .route(&record)
        .unwrap();
        assert_eq!((r.subject.as_str(), r.msg_id.as_str()), ("dlq.S", "S:9"));
        assert_eq!(r.headers.get(headers::MSG_ID), Some("orig"));
        assert_eq!(r.headers.get("Nats-Msg-Id"), None);
        assert_eq!(r.headers.get(headers::DELIVERIES), Some("3"));
        assert_eq!(r.headers.get("X-A"), Some("1"));
    }
}
