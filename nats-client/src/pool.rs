//! `Pool`: several connections to a cluster, with key-stable selection.
//!
//! AMQP channels gave the migrated services per-channel ordering. `get_for(key)` gives the
//! same: one key always maps to the same member, so one key's messages go down one connection,
//! in order, also while that member reconnects (its reconnect buffer keeps them, in order, and
//! sends them first thing on the next connection). `get_for_available(key)` is the failover
//! variant: it skips a member that is reconnecting, trading that order for availability.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::addr::ToServerAddrs;
use crate::client::{Client, State};
use crate::error::{ClientError, ConnectError};
use crate::options::ConnectOptions;
use crate::stats::Statistics;

/// A fixed set of client connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use nats_client::{ConnectOptions, Pool};
/// let pool = Pool::connect("nats://127.0.0.1:4222", ConnectOptions::new(), 4).await?;
/// // Every message for user 42 goes over the same connection, so they stay in order.
/// pool.get_for(&"user-42").publish("user.notifications.42.c1", "hi").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Pool {
    members: Vec<Client>,
    next: std::sync::Arc<AtomicUsize>,
}

/// Counters of a pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStatistics {
    /// Members currently connected.
    pub connected: usize,
    /// Each member's counters, by index.
    pub members: Vec<Statistics>,
}

impl Pool {
    /// Opens `size` connections (at least one) with the same options.
    pub async fn connect<A: ToServerAddrs + ?Sized>(
        addrs: &A,
        options: ConnectOptions,
        size: usize,
    ) -> Result<Pool, ConnectError> {
        let servers = addrs.to_server_addrs()?;
        let mut members = Vec::with_capacity(size.max(1));
        for i in 0..size.max(1) {
            let mut opts = options.clone();
            opts.name = Some(match &options.name {
                Some(name) => format!("{name}-{i}"),
                None => format!("pool-{i}"),
            });
            members.push(opts.connect(&servers).await?);
        }
        Ok(Pool::from_clients(members))
    }

    /// A pool over clients connected by the caller. Panics on an empty list.
    pub fn from_clients(members: Vec<Client>) -> Pool {
        assert!(!members.is_empty(), "a pool needs at least one client");
        Pool {
            members,
            next: Default::default(),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a pool has at least one member.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every member, by index.
    pub fn clients(&self) -> &[Client] {
        &self.members
    }

    /// The next connected member, round robin (any member if none is connected: its
    /// reconnect buffer takes the publish).
    pub fn get(&self) -> &Client {
        let start = self.next.fetch_add(1, Relaxed);
        self.first_connected_from(start)
    }

    /// The member for `key`: always the same one, connected or not, so one key's messages
    /// stay in order. While that member reconnects its publishes go to its reconnect buffer
    /// (and fail with [`PublishError::ReconnectBufferFull`](crate::PublishError) when it is
    /// full), to be sent in order once it is back.
    pub fn get_for<K: Hash + ?Sized>(&self, key: &K) -> &Client {
        &self.members[self.index_for(key)]
    }

    /// The member for `key` if it is connected, else the next connected one (any member when
    /// none is). Failover: a key's messages keep flowing while its member reconnects, but they
    /// may then overtake the ones still in that member's reconnect buffer.
    pub fn get_for_available<K: Hash + ?Sized>(&self, key: &K) -> &Client {
        self.first_connected_from(self.index_for(key))
    }

    /// The index of `key`'s member (stable for the life of the pool).
    pub fn index_for<K: Hash + ?Sized>(&self, key: &K) -> usize {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.members.len() as u64) as usize
    }

    fn first_connected_from(&self, start: usize) -> &Client {
        let n = self.members.len();
        (0..n)
            .map(|i| &self.members[(start + i) % n])
            .find(|c| c.connection_state() == State::Connected)
            .unwrap_or(&self.members[start % n])
    }

    /// Counters of every member.
    pub fn statistics(&self) -> PoolStatistics {
        PoolStatistics {
            connected: self
                .members
                .iter()
                .filter(|c| c.connection_state() == State::Connected)
                .count(),
            members: self.members.iter().map(Client::statistics).collect(),
        }
    }

    /// Flushes every member.
    pub async fn flush(&self) -> Result<(), ClientError> {
        for c in &self.members {
            c.flush().await?;
        }
        Ok(())
    }

    /// Closes every member.
    pub async fn close(&self) -> Result<(), ClientError> {
        for c in &self.members {
            c.close().await?;
        }
        Ok(())
    }
}
