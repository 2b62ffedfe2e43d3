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

use std::collections::HashSet;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use jetstream::kv::{self, KvError};

use crate::connection::ConnectionInner;
use crate::error::Result;
use crate::exchange_storage::{exchange_stream, queue_consumer};
use crate::placement::{Place, place};
use crate::store::{create_bucket, nats_error};

/// How often a process writes the floors of the D queues it acked on.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The checkpoint bucket of one namespace and the queues acked on since the last write.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    kv: kv::Store,
    /// Queues settled on since the last flush (name -> exchange is read at flush time).
    touched: Mutex<HashSet<String>>,
}

/// The bucket name for a namespace: `AMQP_QSTATE` or `AMQP_QSTATE_<ns>`.
pub fn bucket_name(namespace: Option<&str>) -> String {
    crate::store::bucket_name(namespace).replacen("AMQP_TOPOLOGY", "AMQP_QSTATE", 1)
}

/// The key of `queue`: its consumer's name (KV-key safe, bounded length).
fn key(queue: &str) -> String {
    queue_consumer(queue)
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
        Ok(Self {
            kv,
            touched: Mutex::new(HashSet::new()),
        })
    }

    /// The stored floor of `queue` (`None`: never written).
    pub(crate) async fn floor(&self, queue: &str) -> Result<Option<u64>> {
        let entry = self.kv.entry(&key(queue)).await.map_err(nats_error)?;
        Ok(entry
            .filter(|e| !e.operation.is_removal())
            .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse().ok()))
    }

    /// Stores `floor` for `queue`.
    pub(crate) async fn save(&self, queue: &str, floor: u64) -> Result<()> {
        self.kv
            .put(&key(queue), floor.to_string())
            .await
            .map(drop)
            .map_err(nats_error)
    }

    /// Forgets `queue`'s floor (the queue was deleted).
    pub(crate) async fn remove(&self, queue: &str) -> Result<()> {
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
        if conn
            .checkpoints
            .save(&queue, info.ack_floor.stream_sequence)
            .await
            .is_err()
        {
            // Try again at the next interval.
            conn.checkpoints.touch(&queue);
        }
    }
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
