//! Consumer configuration and info.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::stream::ClusterInfo;
use super::{nanos, timestamp};

/// Where in the stream a new consumer starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    /// From the first message.
    #[default]
    All,
    /// From the last message.
    Last,
    /// Only messages stored after the consumer was created.
    New,
    /// From `opt_start_seq`.
    #[serde(rename = "by_start_sequence")]
    ByStartSequence,
    /// From `opt_start_time`.
    ByStartTime,
    /// The last message of every subject, then new ones.
    LastPerSubject,
}

/// How messages are acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    /// Every message must be acknowledged (the default here; required for pull consumers).
    #[default]
    Explicit,
    /// Acknowledging a message acknowledges every earlier one.
    All,
    /// No acknowledgements.
    None,
}

/// How fast stored messages are replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayPolicy {
    /// As fast as possible.
    #[default]
    Instant,
    /// At the pace they were stored.
    Original,
}

/// How a consumer with priority groups chooses among the pulls waiting on it (server 2.11+).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityPolicy {
    /// No priority groups.
    #[default]
    None,
    /// Pulls that set `min_pending`/`min_ack_pending` are served only while the consumer is
    /// that far behind: standby workers that take over the overflow.
    Overflow,
    /// One client at a time gets messages: the server pins the first puller of a group (its
    /// messages carry `Nats-Pin-Id`), the others wait until the pinned client stops pulling
    /// for `priority_timeout` or the pin is removed with
    /// [`Consumer::unpin`](crate::Consumer::unpin). RabbitMQ's single active consumer.
    PinnedClient,
    /// Pulls with a lower `priority` number are served first (server 2.12+). Orders pull
    /// requests, not messages.
    Prioritized,
}

/// A consumer's configuration (`$JS.API.CONSUMER.CREATE`).
///
/// A consumer with `durable_name` (or `name` and no `inactive_threshold`) is durable; without
/// a name this crate makes up one and the consumer is ephemeral (removed after
/// `inactive_threshold` without activity, 5 s by default on the server).
///
/// ```
/// use std::time::Duration;
/// use jetstream::{AckPolicy, ConsumerConfig};
/// let config = ConsumerConfig {
///     durable_name: Some("workers".into()),
///     filter_subjects: vec!["orders.eu.>".into(), "orders.us.>".into()],
///     ack_wait: Duration::from_secs(30),
///     max_deliver: 5,
///     backoff: vec![Duration::from_secs(1), Duration::from_secs(10)],
///     ..ConsumerConfig::default()
/// };
/// let json = serde_json::to_value(&config).unwrap();
/// assert_eq!(json["ack_policy"], "explicit");
/// assert_eq!(json["backoff"][1], 10_000_000_000i64);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    /// A durable consumer's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<String>,
    /// The consumer's name (durable or ephemeral).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where to start.
    pub deliver_policy: DeliverPolicy,
    /// The start sequence for [`DeliverPolicy::ByStartSequence`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_seq: Option<u64>,
    /// The start time for [`DeliverPolicy::ByStartTime`].
    #[serde(with = "timestamp", skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<OffsetDateTime>,
    /// How messages are acknowledged.
    pub ack_policy: AckPolicy,
    /// How long the server waits for an ack before redelivering; zero for the default (30 s).
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub ack_wait: Duration,
    /// Most deliveries of one message; 0 for the default, -1 for no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_deliver: i64,
    /// Redelivery delays, one per delivery (the last one repeats); replaces `ack_wait` for
    /// redeliveries.
    #[serde(with = "nanos::vec", skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<Duration>,
    /// Only messages on this subject (use `filter_subjects` for several).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Only messages on these subjects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    /// Replay pace.
    pub replay_policy: ReplayPolicy,
    /// Rate limit in bits per second (push consumers).
    #[serde(rename = "rate_limit_bps", skip_serializing_if = "is_zero_u64")]
    pub rate_limit: u64,
    /// Sampling of ack advisories, e.g. `"100%"`.
    #[serde(rename = "sample_freq", skip_serializing_if = "String::is_empty")]
    pub sample_frequency: String,
    /// Most waiting pull requests (pull consumers); 0 for the default (512).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    /// Most messages delivered and not yet acknowledged; 0 for the default (1000), -1 for
    /// no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    /// Flow control (push consumers).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flow_control: bool,
    /// Deliver only headers, with the payload size in `Nats-Msg-Size`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub headers_only: bool,
    /// Largest batch one pull request may ask for.
    #[serde(rename = "max_batch", skip_serializing_if = "is_zero")]
    pub max_request_batch: i64,
    /// Longest `expires` one pull request may ask for.
    #[serde(
        rename = "max_expires",
        with = "nanos",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub max_request_expires: Duration,
    /// Largest `max_bytes` one pull request may ask for.
    #[serde(rename = "max_bytes", skip_serializing_if = "is_zero")]
    pub max_request_max_bytes: i64,
    /// Push consumers: where messages are delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_subject: Option<String>,
    /// Push consumers: the queue group delivered to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_group: Option<String>,
    /// Push consumers: the idle heartbeat interval.
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub idle_heartbeat: Duration,
    /// Remove the consumer after this long without activity.
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub inactive_threshold: Duration,
    /// Replicas; 0 inherits the stream's.
    pub num_replicas: usize,
    /// Keep the consumer state in memory.
    #[serde(rename = "mem_storage", skip_serializing_if = "std::ops::Not::not")]
    pub memory_storage: bool,
    /// User metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Paused until this time.
    #[serde(with = "timestamp", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<OffsetDateTime>,
    /// Priority groups pulls must name (server 2.11+); set with a
    /// [`priority_policy`](Self::priority_policy). Names: up to 16 of `A-Za-z0-9-_/=)+`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<String>,
    /// How the waiting pulls of a group are chosen.
    #[serde(skip_serializing_if = "is_no_policy")]
    pub priority_policy: PriorityPolicy,
    /// [`PriorityPolicy::PinnedClient`]: the pin moves when the pinned client has not pulled
    /// for this long; zero for the server default (2 min). Takeover after a crash takes this
    /// long, or the rest of `ack_wait` for the message in flight, whichever is longer.
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub priority_timeout: Duration,
    /// Fields this crate does not model, kept as sent so an update does not drop them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_no_policy(p: &PriorityPolicy) -> bool {
    *p == PriorityPolicy::None
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl ConsumerConfig {
    /// A durable pull consumer with explicit acks.
    pub fn durable(name: impl Into<String>) -> Self {
        ConsumerConfig {
            durable_name: Some(name.into()),
            ..ConsumerConfig::default()
        }
    }

    /// The consumer's name: `name`, else `durable_name`.
    pub fn consumer_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .or(self.durable_name.as_deref())
            .filter(|n| !n.is_empty())
    }
}

/// A delivery position: consumer and stream sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SequenceInfo {
    /// The consumer sequence.
    #[serde(rename = "consumer_seq")]
    pub consumer_sequence: u64,
    /// The stream sequence.
    #[serde(rename = "stream_seq")]
    pub stream_sequence: u64,
    /// When it last moved.
    #[serde(with = "timestamp", skip_serializing_if = "Option::is_none")]
    pub last_active: Option<OffsetDateTime>,
}

/// A consumer's configuration and state (`$JS.API.CONSUMER.INFO`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerInfo {
    /// The stream.
    #[serde(rename = "stream_name")]
    pub stream: String,
    /// The consumer's name.
    pub name: String,
    /// When it was created.
    #[serde(with = "timestamp")]
    pub created: Option<OffsetDateTime>,
    /// The configuration (with the server's defaults filled in).
    pub config: ConsumerConfig,
    /// The last message delivered.
    pub delivered: SequenceInfo,
    /// The highest contiguously acknowledged message.
    pub ack_floor: SequenceInfo,
    /// Messages delivered and not yet acknowledged.
    pub num_ack_pending: u64,
    /// Messages delivered more than once.
    pub num_redelivered: u64,
    /// Pull requests waiting.
    pub num_waiting: u64,
    /// Messages not yet delivered.
    pub num_pending: u64,
    /// Its place in the cluster.
    pub cluster: Option<ClusterInfo>,
    /// A push consumer has an active subscriber.
    pub push_bound: bool,
    /// Paused.
    pub paused: bool,
    /// How long it stays paused, when paused.
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub pause_remaining: Duration,
    /// The state of each priority group (the pinned client, for
    /// [`PriorityPolicy::PinnedClient`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<PriorityGroupState>,
    /// Server time of this answer.
    #[serde(rename = "ts", with = "timestamp")]
    pub timestamp: Option<OffsetDateTime>,
}

/// One priority group of a consumer, as [`ConsumerInfo`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorityGroupState {
    /// The group.
    pub group: String,
    /// The pin id of the client that gets the messages now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_client_id: Option<String>,
    /// When that client was pinned.
    #[serde(
        rename = "pinned_ts",
        with = "timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub pinned_time: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_on_the_wire() {
        let c = ConsumerConfig {
            deliver_policy: DeliverPolicy::ByStartSequence,
            opt_start_seq: Some(7),
            ack_policy: AckPolicy::None,
            ..ConsumerConfig::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["deliver_policy"], "by_start_sequence");
        assert_eq!(v["ack_policy"], "none");
        assert_eq!(v["replay_policy"], "instant");
        assert!(v.get("max_deliver").is_none());
        let last: ConsumerConfig =
            serde_json::from_str(r#"{"deliver_policy":"last_per_subject","max_deliver":-1}"#)
                .unwrap();
        assert_eq!(last.deliver_policy, DeliverPolicy::LastPerSubject);
        assert_eq!(last.max_deliver, -1);
    }

    #[test]
    fn name_prefers_name_over_durable() {
        let mut c = ConsumerConfig::durable("d");
        assert_eq!(c.consumer_name(), Some("d"));
        c.name = Some("n".into());
        assert_eq!(c.consumer_name(), Some("n"));
    }

    #[test]
    fn priority_groups_on_the_wire() {
        let c = ConsumerConfig {
            priority_groups: vec!["sac".into()],
            priority_policy: PriorityPolicy::PinnedClient,
            priority_timeout: Duration::from_secs(2),
            ..ConsumerConfig::durable("q")
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["priority_policy"], "pinned_client");
        assert_eq!(v["priority_timeout"], 2_000_000_000i64);
        assert!(
            serde_json::to_value(ConsumerConfig::default())
                .unwrap()
                .get("priority_policy")
                .is_none()
        );
        let info: ConsumerInfo = serde_json::from_str(
            r#"{"stream_name":"S","name":"q","priority_groups":[{"group":"sac",
               "pinned_client_id":"abc","pinned_ts":"2026-11-29T20:00:00.5Z"}]}"#,
        )
        .unwrap();
        assert_eq!(
            info.priority_groups[0].pinned_client_id.as_deref(),
            Some("abc")
        );
        assert!(info.priority_groups[0].pinned_time.is_some());
    }
}
