//! Where a queue's messages are, by its tier: its own stream (design B), its consumer on
//! its exchange's stream (design D), or its owning connection's memory (design E); counting,
//! purging and dropping each.

use crate::connection::ConnectionInner;
use crate::error::Result;
use crate::exchange_storage::{self as xs, d_source, is_d};
use crate::routing::{StorageTier, Topology};
use crate::storage::QueueStorage;

/// A queue's storage.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    /// Design B.
    Stream(QueueStorage),
    /// Design D: the consumer on this exchange's stream (`None` while unbound).
    Consumer(Option<String>),
    /// Design E: held by the owning connection (`crate::local_queue`).
    Local,
}

/// The storage of `queue` in `t` (`None` when the queue does not exist).
pub(crate) fn place(t: &Topology, conn: &ConnectionInner, queue: &str) -> Option<Place> {
    let decl = t.queue(queue)?;
    if decl.tier == StorageTier::Local {
        return Some(Place::Local);
    }
    Some(match is_d(decl) {
        false => Place::Stream(QueueStorage::of(&conn.mapper, queue)),
        true => Place::Consumer(
            d_source(t, queue, &conn.mapper)
                .ok()
                .flatten()
                .map(|s| s.exchange),
        ),
    })
}

impl ConnectionInner {
    /// Waits until what this connection published so far reached its local queues (the
    /// server forwards it to us before it answers the flush), so a count or purge after a
    /// publish sees it, as on one RabbitMQ channel.
    async fn flush_local(&self) -> Result<()> {
        self.client.flush().await.map_err(crate::store::nats_error)
    }

    /// Messages ready in the queue (a local queue of another connection counts 0: only its
    /// owner may use it).
    pub(crate) async fn queue_count(&self, place: &Place, queue: &str) -> Result<u32> {
        match place {
            Place::Local => Ok(match self.local.get(queue) {
                Some(q) => {
                    self.flush_local().await?;
                    q.ready_count()
                }
                None => 0,
            }),
            Place::Stream(s) => s.message_count(&self.js).await,
            Place::Consumer(Some(x)) => xs::message_count(self, queue, x).await,
            Place::Consumer(None) => Ok(0),
        }
    }

    /// Removes the queue's storage (the stream, the consumer, or the local queue; one of a
    /// crashed connection has nothing left to remove).
    pub(crate) async fn drop_queue(&self, place: &Place, queue: &str) -> Result<()> {
        match place {
            Place::Local => {
                self.local.delete(queue);
                Ok(())
            }
            Place::Stream(s) => s.delete(&self.js).await,
            Place::Consumer(Some(x)) => {
                xs::delete_consumer(&self.js, &self.mapper, queue, x).await?;
                self.checkpoints.remove(queue).await
            }
            Place::Consumer(None) => self.checkpoints.remove(queue).await,
        }
    }

    /// Drops every ready message; returns how many there were. A D queue's consumer moves to
    /// the end of its exchange's stream.
    pub(crate) async fn purge_queue(
        &self,
        t: &Topology,
        place: &Place,
        queue: &str,
    ) -> Result<u32> {
        match place {
            Place::Local => Ok(match self.local.get(queue) {
                Some(q) => {
                    self.flush_local().await?;
                    q.purge()
                }
                None => 0,
            }),
            Place::Stream(s) => s.purge(&self.js).await,
            Place::Consumer(None) => Ok(0),
            Place::Consumer(Some(x)) => xs::purge_consumer(self, t, queue, x).await,
        }
    }
}
