//! Ack-floor checkpoints of design-D queues (`docs/amqp-mapping.md` §4).
//!
//! A D queue's consumer is R1: it lives on one server, and when that server is lost the
//! queue's position goes with it. Each queue's ack floor (the stream sequence up to which
//! everything was acknowledged) is therefore kept in KV bucket `AMQP_QSTATE[_ns]` (R3 where
//! the cluster has three nodes): written when the consumer is created (its start point) and,
//! while a process acks, at most once per [`INTERVAL`] per queue from the consumer's own info.
//! A consumer found missing or offline (10119) is re-created starting right after the floor:
//! nothing acknowledged-after-the-floor is lost, and at most one interval of acks is delivered
//! again (at-least-once).
//!
//! D consumers keep their state in memory (a file consumer rewrites its state file on every
//! ack: at 1,000 consumers the servers spent their time creating files). A restarted server
//! re-creates such a consumer from its assignment with an empty state, back at its configured
//! start. A checkpoint therefore names the consumer it belongs to (its `created` time, which
//! the re-created consumer keeps): a consumer of that name and time whose ack floor is below
//! the checkpoint was reset, and is moved to the checkpoint (`exchange_storage::repair`);
//! until then nothing at or below the checkpoint is delivered again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use jetstream::JsMessage;
use jetstream::kv::{self, KvError};

use crate::connection::ConnectionInner;
use crate::error::Result;
use crate::exchange_storage::{exchange_stream, queue_consumer, repair};
use crate::placement::{Place, place};
use crate::store::{create_bucket, nats_error};

/// How often a process writes the floors of the D queues it acked on.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A queue's checkpoint: the ack floor of one incarnation of its consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Floor {
    /// Every stream sequence up to this one is acknowledged.
    pub(crate) seq: u64,
    /// The consumer's creation time (unix nanoseconds); `None` in checkpoints written before
    /// consumers were memory-backed.
    pub(crate) created: Option<i128>,
    /// The highest stream sequence delivered (by this incarnation or, carried over, by the
    /// ones before it): a message up to here comes again with `redelivered = true`.
    pub(crate) delivered: u64,
}

impl Floor {
    /// The floor of `info`'s consumer.
    pub(crate) fn of(info: &jetstream::models::ConsumerInfo) -> Floor {
        Floor {
            seq: info.ack_floor.stream_sequence,
            created: info.created.map(OffsetDateTime::unix_timestamp_nanos),
            delivered: info.delivered.stream_sequence,
        }
    }

    /// `self` with the delivered mark of `before` when that is higher (a consumer moved back
    /// or re-created keeps what was delivered before).
    pub(crate) fn keeping_delivered(self, before: Option<Floor>) -> Floor {
        Floor {
            delivered: self.delivered.max(before.map_or(0, |b| b.delivered)),
            ..self
        }
    }

    /// True when `self` and `other` describe the same consumer (or either predates
    /// incarnation times).
    pub(crate) fn same_consumer(&self, other: &Floor) -> bool {
        match (self.created, other.created) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// `<seq> <created> <delivered>`; older checkpoints are `<seq>` or `<seq> <created>`.
    fn encode(&self) -> String {
        match self.created {
            Some(c) => format!("{} {c} {}", self.seq, self.delivered),
            None => self.seq.to_string(),
        }
    }

    fn decode(value: &[u8]) -> Option<Floor> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split(' ');
        let seq = parts.next()?.parse().ok()?;
        let created = match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        let delivered = match parts.next() {
            Some(d) => d.parse().ok()?,
            None => seq,
        };
        Some(Floor {
            seq,
            created,
            delivered,
        })
    }
}

/// A queue's checkpoint: the floor of its consumer, or, for a queue whose consumer was never
/// created (it is created at the first consume: an unconsumed queue costs no consumer), the
/// servers' time it was bound at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Acknowledged up to here.
    Floor(Floor),
    /// Receives what was published from this time on (`@<unix nanos>`).
    Since(OffsetDateTime),
}

impl Mark {
    fn encode(&self) -> String {
        match self {
            Mark::Floor(f) => f.encode(),
            Mark::Since(t) => format!("@{}", t.unix_timestamp_nanos()),
        }
    }

    fn decode(value: &[u8]) -> Option<Mark> {
        match value.strip_prefix(b"@") {
            Some(t) => {
                let nanos: i128 = std::str::from_utf8(t).ok()?.parse().ok()?;
                OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .ok()
                    .map(Mark::Since)
            }
            None => Floor::decode(value).map(Mark::Floor),
        }
    }
}

/// The checkpoint bucket of one namespace and the queues acked on since the last write.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    kv: kv::Store,
    /// Queues settled on since the last flush (name -> exchange is read at flush time).
    touched: Mutex<HashSet<String>>,
    /// The last floor this process read or wrote per queue.
    known: Mutex<HashMap<String, Floor>>,
    /// The servers' clock minus ours, estimated at open (a D consumer starts at a server time).
    clock_offset: time::Duration,
    /// How far the estimate may be off: half the round trip it was measured over, plus a
    /// margin for the servers' clocks among themselves.
    clock_error: time::Duration,
}

/// The margin for clock differences between the servers of a cluster.
const SERVER_SKEW: Duration = Duration::from_millis(50);

/// The bucket name for a namespace: `AMQP_QSTATE` or `AMQP_QSTATE_<ns>`.
pub fn bucket_name(namespace: Option<&str>) -> String {
    crate::store::bucket_name(namespace).replacen("AMQP_TOPOLOGY", "AMQP_QSTATE", 1)
}

/// The key of `queue`: its consumer's name (KV-key safe, bounded length).
fn key(queue: &str) -> String {
    queue_consumer(queue)
}

/// The checkpoint of `queue` in `namespace`, read without a [`Checkpoints`] (admin tools).
pub(crate) async fn read_mark(
    js: &jetstream::Context,
    namespace: Option<&str>,
    queue: &str,
) -> Result<Option<Mark>> {
    let kv = match js.key_value(&bucket_name(namespace)).await {
        Ok(kv) => kv,
        Err(KvError::BucketNotFound { .. }) => return Ok(None),
        Err(e) => return Err(nats_error(e)),
    };
    let entry = kv.entry(&key(queue)).await.map_err(nats_error)?;
    Ok(entry
        .filter(|e| !e.operation.is_removal())
        .and_then(|e| Mark::decode(&e.value)))
}

impl Checkpoints {
    /// Binds to (or creates) the bucket of `namespace`.
    pub(crate) async fn open(js: &jetstream::Context, namespace: Option<&str>) -> Result<Self> {
        let bucket = bucket_name(namespace);
        let kv = match js.key_value(&bucket).await {
            Ok(kv) => kv,
            Err(KvError::BucketNotFound { .. }) => {
                create_bucket(js, &bucket, "amqp-compat queue checkpoints").await?
            }
            Err(e) => return Err(nats_error(e)),
        }
        .read_from_leader();
        let (clock_offset, clock_error) = clock_offset(js, &bucket).await?;
        Ok(Self {
            kv,
            touched: Mutex::new(HashSet::new()),
            known: Mutex::new(HashMap::new()),
            clock_offset,
            clock_error,
        })
    }

    /// The servers' time now, minus the estimate's error: a consumer starting there misses
    /// nothing published from now on (and may get what was published just before).
    pub(crate) fn server_now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset - self.clock_error
    }

    /// The stored checkpoint of `queue` (`None`: never written).
    pub(crate) async fn mark(&self, queue: &str) -> Result<Option<Mark>> {
        let entry = self.kv.entry(&key(queue)).await.map_err(nats_error)?;
        let mark = entry
            .filter(|e| !e.operation.is_removal())
            .and_then(|e| Mark::decode(&e.value));
        let mut known = self.known();
        match mark {
            Some(Mark::Floor(f)) => known.insert(queue.to_owned(), f),
            _ => known.remove(queue),
        };
        Ok(mark)
    }

    /// The stored floor of `queue` (`None`: never written, or no consumer yet).
    pub(crate) async fn floor(&self, queue: &str) -> Result<Option<Floor>> {
        Ok(match self.mark(queue).await? {
            Some(Mark::Floor(f)) => Some(f),
            _ => None,
        })
    }

    /// Stores that `queue` receives what is published from `since` on (no consumer yet).
    pub(crate) async fn save_since(&self, queue: &str, since: OffsetDateTime) -> Result<()> {
        self.known().remove(queue);
        self.kv
            .put(&key(queue), Mark::Since(since).encode())
            .await
            .map(drop)
            .map_err(nats_error)
    }

    /// The floor this process last read or wrote for `queue`.
    pub(crate) fn known_floor(&self, queue: &str) -> Option<Floor> {
        self.known().get(queue).copied()
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Floor>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `floor` for `queue`.
    pub(crate) async fn save(&self, queue: &str, floor: Floor) -> Result<()> {
        self.kv
            .put(&key(queue), Mark::Floor(floor).encode())
            .await
            .map_err(nats_error)?;
        self.known().insert(queue.to_owned(), floor);
        Ok(())
    }

    /// Forgets `queue`'s floor (the queue was deleted).
    pub(crate) async fn remove(&self, queue: &str) -> Result<()> {
        self.known().remove(queue);
        self.kv.purge(&key(queue)).await.map_err(nats_error)
    }

    /// Notes that this process settled a delivery of `queue`.
    pub(crate) fn touch(&self, queue: &str) {
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        if !t.contains(queue) {
            t.insert(queue.to_owned());
        }
    }

    /// Takes the queues touched since the last call.
    pub(crate) fn take_touched(&self) -> Vec<String> {
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        t.drain().collect()
    }
}

/// Keeps a consumer loop from delivering what a reset consumer delivers again: messages at
/// or below the queue's checkpoint are acknowledged already; they are acknowledged again
/// (skipped), and the first one sets off a [`repair`] of the consumer.
#[derive(Debug)]
pub(crate) struct Guard {
    queue: String,
    stream: String,
    floor: u64,
    /// Up to here messages were delivered before (by this consumer before a reset, or by
    /// the one it replaces).
    delivered: u64,
    repairing: bool,
}

impl Guard {
    /// The guard of `queue` read through `consumer`, when this process knows a checkpoint of
    /// that consumer.
    pub(crate) fn new(
        checkpoints: &Checkpoints,
        queue: &str,
        consumer: &jetstream::Consumer,
    ) -> Option<Guard> {
        let known = checkpoints.known_floor(queue)?;
        known
            .same_consumer(&Floor::of(consumer.cached_info()))
            .then(|| Guard {
                queue: queue.to_owned(),
                stream: consumer.stream_name().to_owned(),
                floor: known.seq,
                delivered: known.delivered,
                repairing: false,
            })
    }

    /// What `msg` is to this queue, from its stream sequence (read once): `None` when it was
    /// acknowledged before (it is acknowledged again here, not delivered, and the first such
    /// message sets off a [`repair`] of the consumer); otherwise whether it was delivered
    /// before (RabbitMQ's `redelivered` flag: the consumer delivering it again was reset or
    /// re-created from the checkpoint).
    pub(crate) async fn check(
        &mut self,
        conn: &Arc<ConnectionInner>,
        msg: &JsMessage,
    ) -> Option<bool> {
        let Ok(seq) = msg.info().map(|i| i.stream_sequence) else {
            return Some(false);
        };
        if seq > self.floor {
            return Some(seq <= self.delivered);
        }
        let _ = msg.ack().await;
        if !std::mem::replace(&mut self.repairing, true) {
            let (conn, queue, stream) = (conn.clone(), self.queue.clone(), self.stream.clone());
            tokio::spawn(async move {
                if let Err(e) = repair(&conn, &queue, &stream).await {
                    tracing::warn!(queue, error = %e, "cannot repair a reset consumer");
                }
            });
        }
        None
    }
}

/// Writes the ack floors of the D queues `conn` settled on since the last call.
pub(crate) async fn flush(conn: &ConnectionInner) {
    for queue in conn.checkpoints.take_touched() {
        let Some(Place::Consumer(Some(exchange))) = conn.store.read(|t| place(t, conn, &queue))
        else {
            continue;
        };
        let stream = exchange_stream(conn.mapper.namespace(), &exchange);
        let Ok(info) = conn.js.consumer_info(&stream, &key(&queue)).await else {
            continue;
        };
        let known = conn.checkpoints.known_floor(&queue);
        let current = Floor::of(&info);
        let floor = current.keeping_delivered(known.filter(|k| k.same_consumer(&current)));
        match known {
            Some(known) if known == floor => continue,
            // The consumer went back: its server restarted and re-created it empty.
            Some(known) if known.same_consumer(&floor) && known.seq > floor.seq => {
                if let Err(e) = repair(conn, &queue, &stream).await {
                    tracing::warn!(queue, error = %e, "cannot repair a reset consumer");
                }
                continue;
            }
            _ => {}
        }
        if conn.checkpoints.save(&queue, floor).await.is_err() {
            // Try again at the next interval.
            conn.checkpoints.touch(&queue);
        }
    }
}

/// Estimates the servers' clock minus ours from the `ts` of a stream info answer, and the
/// estimate's error.
async fn clock_offset(
    js: &jetstream::Context,
    bucket: &str,
) -> Result<(time::Duration, time::Duration)> {
    let sent = Instant::now();
    let local = OffsetDateTime::now_utc();
    let info = js
        .stream_info(&format!("KV_{bucket}"))
        .await
        .map_err(nats_error)?;
    let rtt = sent.elapsed();
    let half = time::Duration::try_from(rtt / 2).unwrap_or(time::Duration::ZERO);
    let error = half + time::Duration::try_from(SERVER_SKEW).unwrap_or(time::Duration::ZERO);
    let offset = match info.timestamp {
        Some(server) => server - (local + half),
        // A server without `ts` in its answers (before 2.10): trust our clock.
        None => time::Duration::ZERO,
    };
    Ok((offset, error))
}

/// Runs [`flush`] every [`INTERVAL`] until the connection is dropped or closed.
pub(crate) async fn flush_loop(conn: Weak<ConnectionInner>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = conn.upgrade() else { return };
        if inner.check().is_err() {
            return;
        }
        flush(&inner).await;
    }
}
