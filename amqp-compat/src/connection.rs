//! [`Connection`]: one NATS connection, its JetStream context and the shared topology, with
//! lapin's `Connection` methods.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::channel::{Channel, ChannelInner};
use crate::checkpoint::{self, Checkpoints};
use crate::connection_properties::ConnectionProperties;
use crate::error::{ConnectionState, Error, ErrorKind, Result};
use crate::placement::place;
use crate::store::{Scope, TopologyStore, nats_error};
use crate::subject::SubjectMapper;
use crate::types::{ReplyCode, ShortString};
use crate::uri::ConnectionUri;

/// A connection to NATS, shaped like lapin's `Connection`; cheap to clone.
#[derive(Clone, Debug)]
pub struct Connection {
    pub(crate) inner: Arc<ConnectionInner>,
}

#[derive(Debug)]
pub(crate) struct ConnectionInner {
    pub(crate) client: nats_client::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) store: TopologyStore,
    /// Ack floors of design-D queues.
    pub(crate) checkpoints: Checkpoints,
    pub(crate) mapper: SubjectMapper,
    /// The subjects of the queues this connection published to.
    pub(crate) queue_subjects: crate::storage::QueueSubjects,
    /// Stored copies carry a `Nats-Msg-Id` (the URL's `publish_dedupe`).
    pub(crate) publish_dedupe: bool,
    /// Owns this connection's exclusive queues.
    pub(crate) id: String,
    /// Its design-E (in-memory exclusive) queues.
    pub(crate) local: crate::local_queue::LocalQueues,
    state: Mutex<ConnectionState>,
    next_channel: AtomicU16,
    channels: Mutex<Vec<Weak<ChannelInner>>>,
}

impl ConnectionInner {
    pub(crate) fn state(&self) -> ConnectionState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Fails with `InvalidConnectionState` unless connected.
    pub(crate) fn check(&self) -> Result<()> {
        match self.state() {
            ConnectionState::Connected => Ok(()),
            s => Err(ErrorKind::InvalidConnectionState(s).into()),
        }
    }
}

/// How often a connection renews its lease and looks for crashed owners' exclusive queues.
pub const LEASE_INTERVAL: Duration = Duration::from_secs(2);
/// A lease older than this belongs to a crashed process: its exclusive queues are reaped.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

/// Renews `conn`'s lease and reaps the exclusive queues of connections whose lease expired,
/// until the connection is dropped or closed.
async fn lease_loop(conn: Weak<ConnectionInner>) {
    loop {
        let Some(inner) = conn.upgrade() else { return };
        if inner.check().is_err() {
            return;
        }
        let _ = inner.store.renew_lease(&inner.id).await;
        let owners: BTreeSet<String> = inner.store.read(|t| {
            t.queues()
                .filter_map(|q| q.exclusive_owner.clone())
                .filter(|o| *o != inner.id)
                .collect()
        });
        for owner in owners {
            let expired = match inner.store.lease_age(&owner).await {
                Ok(Some(age)) => age > LEASE_TTL,
                Ok(None) => true,
                Err(_) => false,
            };
            if expired {
                let _ = inner.reap(&owner).await;
            }
        }
        drop(inner);
        tokio::time::sleep(LEASE_INTERVAL).await;
    }
}

impl ConnectionInner {
    /// Deletes the exclusive queues of connection `owner` (closed or crashed) and their
    /// storage.
    async fn reap(&self, owner: &str) -> Result<()> {
        let owned: Vec<String> = self.store.read(|t| {
            t.queues()
                .filter(|q| q.exclusive_owner.as_deref() == Some(owner))
                .map(|q| q.name.clone())
                .collect()
        });
        // One change per queue: each is one key (its bindings go with it).
        for name in owned {
            let gone = self
                .store
                .modify(&Scope::queue(&name), |t| {
                    let places: Vec<_> = t
                        .queues()
                        .filter(|q| q.exclusive_owner.as_deref() == Some(owner))
                        .filter_map(|q| Some((q.name.clone(), place(t, self, &q.name)?)))
                        .collect();
                    t.connection_closed(owner);
                    Ok(places)
                })
                .await?;
            for (q, p) in &gone {
                self.drop_queue(p, q).await?;
            }
        }
        Ok(())
    }
}

/// How long a stored copy is sent again while its stream answers nothing (`503`: no leader):
/// longer than an election after a crash (the raft election timeout, 4-9 s, then the catch-up),
/// so a confirm waits through it, as with a RabbitMQ quorum queue, instead of a nack.
const PUBLISH_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(15);

impl Connection {
    /// Connects to the NATS servers of `uri` (`amqp://user:pass@host:port/vhost` or
    /// `nats://host:port,…?namespace=…`; see [`ConnectionUri`]). The connection name of
    /// `options` becomes the NATS connection name.
    pub async fn connect(uri: &str, options: ConnectionProperties) -> Result<Connection> {
        let uri = ConnectionUri::parse(uri)?;
        let mapper = SubjectMapper::new(uri.namespace.as_deref())
            .map_err(|e| Error::from(ErrorKind::InvalidUri(e.to_string())))?;
        Self::connect_uri(&uri, options, mapper).await
    }

    /// Connects as [`connect`](Self::connect) does, with a parsed URL and another subject
    /// mapping (e.g. [`SubjectMapper::wire`]).
    pub async fn connect_uri(
        uri: &ConnectionUri,
        options: ConnectionProperties,
        mapper: SubjectMapper,
    ) -> Result<Connection> {
        let mut nats = nats_client::ConnectOptions::new();
        if let Some(name) = options.connection_name() {
            nats = nats.name(name);
        }
        if let Some(c) = &uri.credentials {
            nats = nats.user_and_password(c.user.clone(), c.password.clone());
        }
        let client = nats.connect(&uri.servers).await.map_err(nats_error)?;
        let js = jetstream::Context::new(client.clone()).with_publish_retry_for(PUBLISH_RETRY_FOR);
        let store = TopologyStore::open(&js, mapper.namespace()).await?;
        let checkpoints = Checkpoints::open(&js, mapper.namespace()).await?;
        let connection = Connection {
            inner: Arc::new(ConnectionInner {
                client,
                js,
                store,
                checkpoints,
                mapper,
                queue_subjects: Default::default(),
                publish_dedupe: uri.publish_dedupe,
                id: nuid::next().to_string(),
                local: Default::default(),
                state: Mutex::new(ConnectionState::Connected),
                next_channel: AtomicU16::new(1),
                channels: Mutex::default(),
            }),
        };
        connection
            .inner
            .store
            .renew_lease(&connection.inner.id)
            .await?;
        tokio::spawn(lease_loop(Arc::downgrade(&connection.inner)));
        tokio::spawn(checkpoint::flush_loop(Arc::downgrade(&connection.inner)));
        Ok(connection)
    }

    /// Opens a channel.
    pub async fn create_channel(&self) -> Result<Channel> {
        self.inner.check()?;
        let id = self.inner.next_channel.fetch_add(1, Ordering::Relaxed);
        let channel = Channel::new(self.inner.clone(), id);
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        channels.retain(|c| c.strong_count() > 0);
        channels.push(Arc::downgrade(&channel.inner));
        Ok(channel)
    }

    /// The connection's state.
    pub fn status(&self) -> ConnectionState {
        self.inner.state()
    }

    /// The id that owns this connection's exclusive queues.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The shared topology as this connection last saw it (kept current by a KV watch).
    pub fn topology(&self) -> crate::routing::Topology {
        self.inner.store.cached()
    }

    /// The underlying NATS client.
    pub fn nats_client(&self) -> &nats_client::Client {
        &self.inner.client
    }

    /// Closes the connection: its channels' unacked deliveries are requeued, its exclusive
    /// queues are deleted, as RabbitMQ does (a connection that disappears without closing
    /// has them reaped by another process once its lease is older than [`LEASE_TTL`]); later calls
    /// fail with `InvalidConnectionState`.
    pub async fn close(&self, _reply_code: ReplyCode, _reply_text: ShortString) -> Result<()> {
        self.inner.check()?;
        self.inner.set_state(ConnectionState::Closing);
        // Channels first: consumers end, unacked deliveries go back to their queues.
        let channels: Vec<_> = std::mem::take(
            &mut *self
                .inner
                .channels
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for c in channels.iter().filter_map(Weak::upgrade) {
            c.release(None).await;
        }
        // The last acks reach the server before the checkpoint reads the ack floors (a
        // floor read ahead of them would let a few acked messages come again).
        let _ = self.inner.client.flush().await;
        checkpoint::flush(&self.inner).await;
        let gone = self.inner.reap(&self.inner.id).await;
        let _ = self.inner.store.drop_lease(&self.inner.id).await;
        self.inner.client.close().await.map_err(nats_error)?;
        self.inner.set_state(ConnectionState::Closed);
        gone
    }
}
