//! Queue arguments (`x-message-ttl`, `x-dead-letter-exchange`, ...): validated as RabbitMQ
//! validates them (a wrong type or value -> 406 PRECONDITION_FAILED) and compared as RabbitMQ
//! compares them on a re-declare (integers of any width are equal when their values are).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    types::{AMQPValue, FieldTable},
};

/// A validated argument value, in the class RabbitMQ compares by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ArgValue {
    /// Any integer type.
    Int(i64),
    /// A string (long or short).
    Str(String),
    /// A boolean.
    Bool(bool),
    /// Anything else, kept as sent (only for arguments RabbitMQ does not check).
    Other(AMQPValue),
}

impl ArgValue {
    pub(crate) fn from_amqp_value(v: &AMQPValue) -> Self {
        match v {
            AMQPValue::ShortShortInt(i) => Self::Int((*i).into()),
            AMQPValue::ShortShortUInt(i) => Self::Int((*i).into()),
            AMQPValue::ShortInt(i) => Self::Int((*i).into()),
            AMQPValue::ShortUInt(i) => Self::Int((*i).into()),
            AMQPValue::LongInt(i) => Self::Int((*i).into()),
            AMQPValue::LongUInt(i) => Self::Int((*i).into()),
            AMQPValue::LongLongInt(i) => Self::Int(*i),
            AMQPValue::Timestamp(t) => i64::try_from(*t).map_or(Self::Other(v.clone()), Self::Int),
            AMQPValue::Boolean(b) => Self::Bool(*b),
            AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
                Ok(s) => Self::Str(s.to_owned()),
                Err(_) => Self::Other(v.clone()),
            },
            AMQPValue::ShortString(s) => Self::Str(s.as_str().to_owned()),
            other => Self::Other(other.clone()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Int(i) => format!("the value '{i}' of type 'signedint'"),
            Self::Str(s) => format!("the value '{s}' of type 'longstr'"),
            Self::Bool(b) => format!("the value '{b}' of type 'bool'"),
            Self::Other(v) => format!("the value '{v:?}'"),
        }
    }
}

/// What `x-overflow` asks for when a queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overflow {
    /// Drop the oldest message (the default).
    DropHead,
    /// Refuse the publish (`basic.nack` with confirms).
    RejectPublish,
    /// Refuse the publish and dead-letter it.
    RejectPublishDlx,
}

/// The queue type RabbitMQ would create (`x-queue-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueType {
    /// Classic queue (the default).
    Classic,
    /// Quorum queue (durable, replicated; Wire's client queues).
    Quorum,
    /// Stream queue.
    Stream,
}

/// A queue's answer to a new message ([`QueueArguments::admit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Enqueue it (then drop heads while over the limit, for `drop-head`).
    Enqueue,
    /// Refuse it: the publisher's confirm is a nack.
    Reject {
        /// Dead-letter the refused message (`reject-publish-dlx`).
        dead_letter: bool,
    },
}

/// Where a queue's messages live on JetStream (`docs/amqp-mapping.md` §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageTier {
    /// Design B: a stream of its own (per-queue limits, priorities; one Raft group).
    Stream,
    /// Design D: a light consumer on each source exchange's stream (fan-out stored once).
    Consumer,
    /// Design E: an exclusive queue held in its owning connection's memory (no stream, no
    /// JetStream consumer), fed by a core NATS subscription on its default-exchange subject.
    Local,
}

/// A queue's arguments after validation: the typed values the facade acts on, and every
/// argument as sent (compared on re-declare).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueArguments {
    /// `x-message-ttl` (ms).
    pub message_ttl: Option<u64>,
    /// `x-expires` (ms without use before the queue is deleted).
    pub expires: Option<u64>,
    /// `x-max-length` (messages).
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`.
    pub max_length_bytes: Option<u64>,
    /// `x-overflow`.
    pub overflow: Option<Overflow>,
    /// `x-dead-letter-exchange`.
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key`.
    pub dead_letter_routing_key: Option<String>,
    /// `x-max-priority` (0..=255).
    pub max_priority: Option<u8>,
    /// `x-single-active-consumer`.
    pub single_active_consumer: bool,
    /// `x-queue-type` (absent: classic).
    pub queue_type: Option<QueueType>,
    /// `x-nats-tier` (`stream` or `consumer`): amqp-compat's own override of the tier choice.
    pub nats_tier: Option<StorageTier>,
    /// Every argument as sent, by name, in RabbitMQ's comparison classes.
    pub raw: BTreeMap<String, ArgValue>,
}

/// The arguments RabbitMQ checks on declare and compares on re-declare (3.10's list).
const CHECKED: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
    "x-queue-master-locator",
    "x-delivery-limit",
    // amqp-compat's own: the storage tier cannot change on a re-declare.
    "x-nats-tier",
];

/// The largest TTL/expiry RabbitMQ accepts (ms), as its `?MAX_EXPIRY_TIMER`.
const MAX_EXPIRY_MS: i64 = 4_294_967_295;

impl QueueArguments {
    /// Validates `args` for queue `queue` (names go into RabbitMQ-style error texts).
    pub fn parse(queue: &str, args: &FieldTable) -> Result<Self> {
        let mut out = Self::default();
        let invalid = |key: &str, why: String| {
            Error::precondition_failed(format!(
                "invalid arg '{key}' for queue '{queue}' in vhost '/': {why}"
            ))
        };
        for (key, value) in args.inner() {
            let key = key.as_str();
            let v = ArgValue::from_amqp_value(value);
            let int = |min: i64, max: i64| match &v {
                ArgValue::Int(i) if (min..=max).contains(i) => Ok(*i),
                ArgValue::Int(i) => Err(invalid(key, format!("{{value_out_of_range,{i}}}"))),
                other => Err(invalid(key, format!("{{unacceptable_type,{other:?}}}"))),
            };
            let string = || match &v {
                ArgValue::Str(s) => Ok(s.clone()),
                other => Err(invalid(key, format!("{{unacceptable_type,{other:?}}}"))),
            };
            let one_of = |allowed: &[&str]| {
                let s = string()?;
                if allowed.contains(&s.as_str()) {
                    Ok(s)
                } else {
                    Err(invalid(key, format!("{{invalid_value,{s}}}")))
                }
            };
            let as_u64 = |i: i64| u64::try_from(i).unwrap_or(0);
            match key {
                "x-message-ttl" => out.message_ttl = Some(as_u64(int(0, MAX_EXPIRY_MS)?)),
                "x-expires" => out.expires = Some(as_u64(int(1, MAX_EXPIRY_MS)?)),
                "x-max-length" => out.max_length = Some(as_u64(int(0, i64::MAX)?)),
                "x-max-length-bytes" => out.max_length_bytes = Some(as_u64(int(0, i64::MAX)?)),
                "x-max-in-memory-length"
                | "x-max-in-memory-bytes"
                | "x-delivery-limit"
                | "x-stream-max-segment-size-bytes" => {
                    int(0, i64::MAX)?;
                }
                "x-quorum-initial-group-size" | "x-initial-cluster-size" => {
                    int(1, i64::MAX)?;
                }
                "x-max-priority" => {
                    out.max_priority = Some(u8::try_from(int(0, 255)?).unwrap_or(u8::MAX))
                }
                "x-overflow" => {
                    out.overflow = Some(
                        match one_of(&["drop-head", "reject-publish", "reject-publish-dlx"])?
                            .as_str()
                        {
                            "reject-publish" => Overflow::RejectPublish,
                            "reject-publish-dlx" => Overflow::RejectPublishDlx,
                            _ => Overflow::DropHead,
                        },
                    )
                }
                "x-dead-letter-exchange" => out.dead_letter_exchange = Some(string()?),
                "x-dead-letter-routing-key" => out.dead_letter_routing_key = Some(string()?),
                "x-dead-letter-strategy" => {
                    one_of(&["at-most-once", "at-least-once"])?;
                }
                "x-queue-mode" => {
                    one_of(&["default", "lazy"])?;
                }
                "x-queue-leader-locator" | "x-queue-master-locator" => {
                    one_of(&[
                        "client-local",
                        "balanced",
                        "min-masters",
                        "random",
                        "least-leaders",
                    ])?;
                }
                "x-max-age" => {
                    string()?;
                }
                "x-single-active-consumer" => match &v {
                    ArgValue::Bool(b) => out.single_active_consumer = *b,
                    other => return Err(invalid(key, format!("{{unacceptable_type,{other:?}}}"))),
                },
                "x-queue-type" => {
                    out.queue_type =
                        Some(match one_of(&["classic", "quorum", "stream"])?.as_str() {
                            "quorum" => QueueType::Quorum,
                            "stream" => QueueType::Stream,
                            _ => QueueType::Classic,
                        })
                }
                "x-nats-tier" => {
                    out.nats_tier = Some(match one_of(&["stream", "consumer"])?.as_str() {
                        "stream" => StorageTier::Stream,
                        _ => StorageTier::Consumer,
                    })
                }
                // Unknown arguments are stored and ignored, as RabbitMQ does.
                _ => {}
            }
            out.raw.insert(key.to_owned(), v);
        }
        if out.dead_letter_routing_key.is_some() && out.dead_letter_exchange.is_none() {
            return Err(invalid(
                "x-dead-letter-routing-key",
                "x-dead-letter-exchange is missing".into(),
            ));
        }
        Ok(out)
    }

    /// The tier these arguments ask for: `x-nats-tier` if set; a stream when the queue needs
    /// per-queue storage (length limits, overflow, priorities); else `default`.
    pub fn tier(&self, default: StorageTier) -> StorageTier {
        let needs_stream = self.max_length.is_some()
            || self.max_length_bytes.is_some()
            || self.overflow.is_some()
            || self.max_priority.is_some();
        match (self.nats_tier, needs_stream) {
            (Some(t), _) => t,
            (None, true) => StorageTier::Stream,
            (None, false) => default,
        }
    }

    /// True when an exclusive queue with these arguments may live in its owner's memory
    /// (design E): nothing it asks for needs per-queue storage or a timer (`x-expires`,
    /// length limits, overflow, priorities, dead-lettering, single active consumer, a quorum
    /// or stream queue type) and no `x-nats-tier` chose otherwise. (`x-message-ttl` and
    /// per-message expiration are kept in memory: expired messages are dropped at the head.)
    pub fn local_ok(&self) -> bool {
        self.nats_tier.is_none()
            && self.expires.is_none()
            && self.max_length.is_none()
            && self.max_length_bytes.is_none()
            && self.overflow.is_none()
            && self.dead_letter_exchange.is_none()
            && self.max_priority.is_none()
            && !self.single_active_consumer
            && matches!(self.queue_type, None | Some(QueueType::Classic))
    }

    /// True when a queue holding `messages` messages of `bytes` body bytes is over its
    /// `x-max-length` / `x-max-length-bytes`.
    pub fn exceeds(&self, messages: u64, bytes: u64) -> bool {
        self.max_length.is_some_and(|m| messages > m)
            || self.max_length_bytes.is_some_and(|b| bytes > b)
    }

    /// What the queue does with a new message of `body` bytes while it holds `messages`
    /// messages of `bytes` bytes: with `drop-head` (the default) it takes it and the caller drops
    /// the oldest messages while [`exceeds`](Self::exceeds) holds (dead-lettering them with
    /// reason `maxlen`); with `reject-publish(-dlx)` a message that would exceed is refused
    /// (the publisher gets `basic.nack`), and dead-lettered with `-dlx`.
    pub fn admit(&self, messages: u64, bytes: u64, body: u64) -> Admission {
        let over = self.exceeds(messages.saturating_add(1), bytes.saturating_add(body));
        match (self.overflow.unwrap_or(Overflow::DropHead), over) {
            (Overflow::DropHead, _) | (_, false) => Admission::Enqueue,
            (Overflow::RejectPublish, true) => Admission::Reject { dead_letter: false },
            (Overflow::RejectPublishDlx, true) => Admission::Reject { dead_letter: true },
        }
    }

    /// The priority a message has in this queue: none when the queue has no `x-max-priority`;
    /// else the message's `priority` (0 when unset) capped at the maximum, as RabbitMQ does.
    pub fn effective_priority(&self, message: Option<u8>) -> Option<u8> {
        self.max_priority.map(|max| message.unwrap_or(0).min(max))
    }

    /// RabbitMQ's re-declare check: every checked argument must be equal (absent on both sides
    /// counts as equal). `Err` is the 406 to answer.
    pub fn assert_equivalent(&self, queue: &str, new: &Self) -> Result<()> {
        // RabbitMQ 3.10 reads an absent x-queue-type as the default type, classic.
        let classic = ArgValue::Str("classic".to_owned());
        for key in CHECKED {
            let (mut cur, mut got) = (self.raw.get(*key), new.raw.get(*key));
            if *key == "x-queue-type" {
                cur = cur.or(Some(&classic));
                got = got.or(Some(&classic));
            }
            if cur != got {
                let show = |v: Option<&ArgValue>| v.map_or("none".to_owned(), ArgValue::describe);
                return Err(Error::precondition_failed(format!(
                    "inequivalent arg '{key}' for queue '{queue}' in vhost '/': received {} but current is {}",
                    show(got),
                    show(cur)
                )));
            }
        }
        Ok(())
    }
}
