//! [`Connection`]: one NATS connection, its JetStream context and the shared topology, with
//! lapin's `Connection` methods.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::channel::{Channel, ChannelInner};
use crate::connection_properties::ConnectionProperties;
use crate::error::{ConnectionState, Error, ErrorKind, Result};
use crate::placement::place;
use crate::store::{TopologyStore, nats_error};
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
    pub(crate) mapper: SubjectMapper,
    /// Owns this connection's exclusive queues.
    pub(crate) id: String,
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
        let js = jetstream::Context::new(client.clone());
        let store = TopologyStore::open(&js, mapper.namespace()).await?;
        Ok(Connection {
            inner: Arc::new(ConnectionInner {
                client,
                js,
                store,
                mapper,
                id: nuid::next().to_string(),
                state: Mutex::new(ConnectionState::Connected),
                next_channel: AtomicU16::new(1),
                channels: Mutex::default(),
            }),
        })
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
    /// queues are deleted, as RabbitMQ does; later calls
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
        let id = self.inner.id.clone();
        let inner = &self.inner;
        let gone = inner
            .store
            .modify(|t| {
                let places: Vec<_> = t
                    .queues()
                    .filter(|q| q.exclusive_owner.as_deref() == Some(id.as_str()))
                    .filter_map(|q| Some((q.name.clone(), place(t, inner, &q.name)?)))
                    .collect();
                t.connection_closed(&id);
                Ok(places)
            })
            .await;
        if let Ok(gone) = &gone {
            for (q, p) in gone {
                inner.drop_queue(p, q).await?;
            }
        }
        self.inner.client.close().await.map_err(nats_error)?;
        self.inner.set_state(ConnectionState::Closed);
        gone.map(drop)
    }
}
