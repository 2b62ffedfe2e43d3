//! What is measured: the scenarios, the workload every client gets, and one run's result.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

/// The shape of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// N publishes, then one flush; the run ends when the flush returns.
    Publish,
    /// N publishes and a flush on one connection, a counting subscriber on another; the run
    /// ends when the subscriber has all N (or nothing came for [`IDLE_TIMEOUT`]).
    PubSub,
    /// N sequential requests to a responder on another connection; latency per request.
    ReqRep,
    /// JetStream: N `publish_async`s to a fresh memory stream with at most [`JS_WINDOW`] acks
    /// outstanding; the run ends when every ack is in.
    JsPublish,
    /// JetStream: a fresh memory stream pre-filled with N messages (untimed), then a durable
    /// pull consumer (explicit ack, batches of [`JS_BATCH`]) takes and acks all N; the run ends
    /// with the last ack and a server round trip after it.
    JsConsume,
    /// Key-value: N sequential puts to a fresh memory bucket; latency per put.
    KvPut,
    /// Key-value: N puts with `kv::KV_IN_FLIGHT` in flight; throughput.
    KvPutParallel,
    /// Key-value: N sequential gets from a bucket of 1000 keys; latency per get.
    KvGet,
    /// An ordered consumer replays a stream pre-filled with N messages (untimed).
    OrderedReplay,
}

impl Kind {
    /// Whether the scenario needs the JetStream server (and has no limit client).
    pub fn is_jetstream(self) -> bool {
        !matches!(self, Kind::Publish | Kind::PubSub | Kind::ReqRep)
    }

    /// Whether the scenario reports latency percentiles (ratios compare p50).
    pub fn is_latency(self) -> bool {
        matches!(self, Kind::ReqRep | Kind::KvPut | Kind::KvGet)
    }
}

/// JetStream publish: acks outstanding at most (both clients keep a queue of ack futures and
/// await the oldest when it is full; ours also gets `with_publish_window(JS_WINDOW)`).
pub const JS_WINDOW: usize = 1000;
/// JetStream consume: messages per pull request, for both clients.
pub const JS_BATCH: usize = 500;
/// JetStream consume: the durable consumer's name.
pub const JS_CONSUMER: &str = "bench";

/// One benchmark scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub kind: Kind,
    pub payload: usize,
    /// Message count per run unless `--messages` says otherwise: sized so one run takes
    /// roughly 1-3 s on a small (2-core) machine.
    pub default_messages: u64,
}

/// Every throughput/latency scenario, in the order they run. (`memory` is separate.)
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "pub-16",
        kind: Kind::Publish,
        payload: 16,
        default_messages: 4_000_000,
    },
    Scenario {
        name: "pub-128",
        kind: Kind::Publish,
        payload: 128,
        default_messages: 3_000_000,
    },
    Scenario {
        name: "pub-16k",
        kind: Kind::Publish,
        payload: 16 * 1024,
        default_messages: 150_000,
    },
    Scenario {
        name: "pubsub-16",
        kind: Kind::PubSub,
        payload: 16,
        default_messages: 2_000_000,
    },
    Scenario {
        name: "pubsub-128",
        kind: Kind::PubSub,
        payload: 128,
        default_messages: 1_500_000,
    },
    Scenario {
        name: "pubsub-16k",
        kind: Kind::PubSub,
        payload: 16 * 1024,
        default_messages: 100_000,
    },
    Scenario {
        name: "reqrep-16",
        kind: Kind::ReqRep,
        payload: 16,
        default_messages: 20_000,
    },
    Scenario {
        name: "js-pub-128",
        kind: Kind::JsPublish,
        payload: 128,
        default_messages: 100_000,
    },
    Scenario {
        name: "js-consume-128",
        kind: Kind::JsConsume,
        payload: 128,
        default_messages: 100_000,
    },
    Scenario {
        name: "kv-put-128",
        kind: Kind::KvPut,
        payload: 128,
        default_messages: 20_000,
    },
    Scenario {
        name: "kv-put-par-128",
        kind: Kind::KvPutParallel,
        payload: 128,
        default_messages: 100_000,
    },
    Scenario {
        name: "kv-get-128",
        kind: Kind::KvGet,
        payload: 128,
        default_messages: 20_000,
    },
    Scenario {
        name: "ordered-128",
        kind: Kind::OrderedReplay,
        payload: 128,
        default_messages: 100_000,
    },
];

/// The name of the memory scenario (not part of [`SCENARIOS`]: it measures ours only).
pub const MEMORY: &str = "memory";

/// How long a pub->sub run waits without a new message before it counts the rest as lost.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `filter` selects `name`: the exact name, or a family prefix (`pub` selects `pub-16`,
/// `pub-128`, `pub-16k`, but not `pubsub-*`), or `all`.
pub fn selected(name: &str, filters: &[String]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            f == "all"
                || f == name
                || name
                    .strip_prefix(f.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        })
}

/// Where the one server of the whole run listens.
#[derive(Debug, Clone)]
pub struct Server {
    pub url: String,
    pub port: u16,
    pub monitor_port: u16,
}

/// Exactly what every client does in one run of a scenario.
#[derive(Debug, Clone)]
pub struct Workload {
    pub url: String,
    pub port: u16,
    pub monitor_port: u16,
    /// Unique per run and client, so nothing left over from another run can be counted.
    pub subject: String,
    pub payload: Bytes,
    pub messages: u64,
}

impl Workload {
    pub fn new(server: &Server, subject: String, payload_len: usize, messages: u64) -> Self {
        Workload {
            url: server.url.clone(),
            port: server.port,
            monitor_port: server.monitor_port,
            subject,
            // No CR/LF in it: the limit client's minimal parser never needs to look inside.
            payload: Bytes::from(vec![b'x'; payload_len]),
            messages,
        }
    }

    /// async-nats drops messages when a subscription's channel is full; this is large enough
    /// that a whole run fits, so it never drops.
    /// The JetStream stream of this run: the subject with `.` and `-` replaced (stream names
    /// allow neither `.` nor wildcards), so it is unique per run and client too.
    pub fn stream_name(&self) -> String {
        self.subject.replace(['.', '-'], "_")
    }

    pub fn async_nats_subscription_capacity(&self) -> usize {
        usize::try_from(self.messages)
            .unwrap_or(usize::MAX / 16)
            .saturating_add(1024)
            .max(64 * 1024)
    }
}

/// The outcome of one run of one client.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub elapsed_s: f64,
    pub sent: u64,
    /// pub->sub: messages the subscriber received.
    pub received: Option<u64>,
    /// Request/reply: latency percentiles in microseconds.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Slow consumers the server counted during the run (`/varz` `slow_consumers` delta): a
    /// server-side drop, not the client's.
    pub server_slow_consumers: u64,
}

impl Sample {
    /// A publish-only run.
    pub fn publish(sent: u64, elapsed: Duration) -> Self {
        Sample {
            elapsed_s: elapsed.as_secs_f64(),
            sent,
            received: None,
            p50_us: None,
            p99_us: None,
            server_slow_consumers: 0,
        }
    }

    /// A pub->sub run.
    pub fn pubsub(sent: u64, received: u64, elapsed: Duration) -> Self {
        Sample {
            received: Some(received),
            ..Sample::publish(sent, elapsed)
        }
    }

    /// A request/reply run from the latency of every request, in nanoseconds.
    pub fn reqrep(mut latencies_ns: Vec<u64>, elapsed: Duration) -> Self {
        latencies_ns.sort_unstable();
        let pct = |p: usize| {
            let n = latencies_ns.len();
            if n == 0 {
                return 0.0;
            }
            latencies_ns[(n * p / 100).min(n - 1)] as f64 / 1000.0
        };
        Sample {
            p50_us: Some(pct(50)),
            p99_us: Some(pct(99)),
            ..Sample::publish(latencies_ns.len() as u64, elapsed)
        }
    }

    /// Messages that completed per second: published (publish), received (pub->sub), or
    /// answered (request/reply).
    pub fn msgs_per_s(&self) -> f64 {
        self.received.unwrap_or(self.sent) as f64 / self.elapsed_s
    }

    pub fn lost(&self) -> u64 {
        self.received.map_or(0, |r| self.sent.saturating_sub(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_names_and_families() {
        let f = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(selected("pub-16", &[]));
        assert!(selected("pub-16", &f(&["pub"])));
        assert!(!selected("pubsub-16", &f(&["pub"])));
        assert!(selected("pubsub-16k", &f(&["pubsub"])));
        assert!(selected("reqrep-16", &f(&["all"])));
        assert!(selected("pub-128", &f(&["reqrep", "pub-128"])));
        assert!(!selected("pub-16k", &f(&["pub-16"])));
        assert!(selected("js-pub-128", &f(&["js"])));
        assert!(selected("js-consume-128", &f(&["js"])));
        assert!(!selected("js-pub-128", &f(&["pub"])));
    }

    #[test]
    fn percentiles_and_rates() {
        let s = Sample::reqrep(
            (1..=100).rev().map(|us| us * 1000).collect(),
            Duration::from_secs(1),
        );
        assert_eq!(s.sent, 100);
        assert_eq!(s.p50_us, Some(51.0));
        assert_eq!(s.p99_us, Some(100.0));
        assert_eq!(s.msgs_per_s(), 100.0);
        let s = Sample::pubsub(10, 7, Duration::from_millis(500));
        assert_eq!(s.lost(), 3);
        assert_eq!(s.msgs_per_s(), 14.0);
    }
}
