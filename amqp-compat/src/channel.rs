//! [`Channel`]: lapin's channel methods over NATS. This file holds the channel state and the
//! topology methods (exchanges, queues, bindings); `docs/amqp-mapping.md` §3 and §9.

use std::sync::{Arc, Mutex};

use crate::connection::ConnectionInner;
use crate::error::{ChannelState, ConnectionState, Error, ErrorKind, Result};
use crate::exchange::ExchangeKind;
use crate::exchange_storage as xs;
use crate::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeUnbindOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use crate::placement::{Place, place};
use crate::queue::Queue;
use crate::routing::{QueueDecl, SourceFilters, StorageTier, Topology};
use crate::store::Scope;
use crate::types::{ChannelId, FieldTable, MessageCount, ReplyCode, ShortString};

/// A channel, shaped like lapin's `Channel`; cheap to clone.
#[derive(Clone, Debug)]
pub struct Channel {
    pub(crate) inner: Arc<ChannelInner>,
}

/// Where a channel stands.
#[derive(Clone, Debug)]
pub(crate) enum Status {
    Open,
    /// Closed by an error the application has not seen yet (AMQP reports some errors
    /// asynchronously): the next call returns it.
    Failed(Error),
    /// Closed by an error already reported.
    Errored,
    /// Closed by the application.
    Closed,
}

#[derive(Debug)]
pub(crate) struct ChannelInner {
    pub(crate) conn: Arc<ConnectionInner>,
    pub(crate) id: ChannelId,
    pub(crate) status: Mutex<Status>,
    pub(crate) consume: Mutex<crate::consume::ConsumeState>,
    /// Signalled when the prefetch window opens.
    pub(crate) window: tokio::sync::Notify,
    pub(crate) publish: Mutex<crate::publish::PublishState>,
    /// Signalled when a confirm resolves.
    pub(crate) confirmed: tokio::sync::Notify,
    /// The direct reply-to consumer (`crate::direct_reply`).
    pub(crate) reply: crate::direct_reply::ReplySlot,
}

/// How a delivery is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settle {
    Ack,
    Requeue,
    Drop,
}

impl ChannelInner {
    pub(crate) fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_status(&self, status: Status) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// Fails unless the channel and its connection are open. An error the channel was closed
    /// with and nobody has seen yet is returned once; after that, `InvalidChannelState`.
    pub(crate) fn check(&self, method: &'static str) -> Result<()> {
        self.conn.check()?;
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match &*status {
            Status::Open => Ok(()),
            Status::Failed(e) => {
                let e = e.clone();
                *status = Status::Errored;
                Err(e)
            }
            Status::Errored => {
                Err(ErrorKind::InvalidChannelState(ChannelState::Error, method).into())
            }
            Status::Closed => {
                Err(ErrorKind::InvalidChannelState(ChannelState::Closed, method).into())
            }
        }
    }

    /// Records what `err` closes, as RabbitMQ does (a soft AMQP error closes the channel, a
    /// hard one the connection), and returns it to the caller.
    pub(crate) fn fail(&self, err: Error) -> Error {
        if err.is_amqp_hard_error() {
            self.conn.set_state(ConnectionState::Error);
            self.set_status(Status::Errored);
        } else if err.is_amqp_soft_error() {
            self.set_status(Status::Errored);
        }
        err
    }

    /// Closes the channel with an error reported later (on the next call, pending confirms
    /// and consumer streams).
    pub(crate) fn fail_async(self: &Arc<Self>, err: Error) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*status, Status::Open) {
            if err.is_amqp_hard_error() {
                self.conn.set_state(ConnectionState::Error);
            }
            *status = Status::Failed(err.clone());
            drop(status);
            // Consumers see the error and end; unacked deliveries go back to their queues.
            let this = self.clone();
            tokio::spawn(async move { this.release(Some(err)).await });
            self.confirmed.notify_waiters();
        }
    }

    /// The error a closed channel reports to its confirms and consumers.
    pub(crate) fn closed_error(&self) -> Option<Error> {
        if let Err(e) = self.conn.check() {
            return Some(e);
        }
        match self.status() {
            Status::Open => None,
            Status::Failed(e) => Some(e),
            Status::Errored => Some(ErrorKind::InvalidChannelState(ChannelState::Error, "").into()),
            Status::Closed => Some(ErrorKind::InvalidChannelState(ChannelState::Closed, "").into()),
        }
    }

    /// Runs a topology change and records the error it fails with.
    async fn modify<T>(
        &self,
        scope: Scope,
        op: impl FnMut(&mut Topology) -> Result<T>,
    ) -> Result<T> {
        self.conn
            .store
            .modify(&scope, op)
            .await
            .map_err(|e| self.fail(e))
    }
}

/// A channel dropped without a close (every handle gone, and no consumer stream or pull
/// loop holding it) is closed as lapin closes it: its unacknowledged deliveries go back to
/// their queues (a local queue's would be lost for good, a stored one held until its
/// `ack_wait`) and its local consumers are counted out. On a task: a local queue's settle
/// takes the queue's lock, which this drop may run under (the queue upgrades its consumers'
/// channels while it hands out).
impl Drop for ChannelInner {
    fn drop(&mut self) {
        use crate::consume::{Feed, Pending};
        let s = self.consume.get_mut().unwrap_or_else(|p| p.into_inner());
        let unacked = s.unacked.take_all();
        let local: Vec<_> = s
            .consumers
            .drain()
            .filter_map(|(_, r)| match r.how {
                Feed::Local { queue, id } => Some((r.queue, queue, id)),
                Feed::Pull { .. } => None,
            })
            .collect();
        if unacked.is_empty() && local.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conn = self.conn.clone();
        runtime.spawn(async move {
            for (_, queue, id) in &local {
                queue.detach(*id, None);
            }
            for (_, p) in unacked {
                match p {
                    Pending::Stored(s) => drop(s.msg.nak().await),
                    Pending::Local(l) => l.settle(Settle::Requeue),
                }
            }
            for (name, _, _) in local {
                conn.consumer_gone(&name).await;
            }
        });
    }
}

/// For a design-D queue: its declaration and its single source after a binding change (406
/// when the bindings need more than a D queue offers); `None` for other queues.
#[allow(clippy::type_complexity)]
fn d_change(
    t: &Topology,
    conn: &ConnectionInner,
    queue: &str,
) -> Result<Option<(QueueDecl, Option<SourceFilters>)>> {
    match t.queue(queue) {
        Some(decl) if xs::is_d(decl) => {
            let source = xs::d_source(t, queue, &conn.mapper)?;
            Ok(Some((decl.clone(), source)))
        }
        _ => Ok(None),
    }
}

impl Channel {
    pub(crate) fn new(conn: Arc<ConnectionInner>, id: ChannelId) -> Self {
        Channel {
            inner: Arc::new(ChannelInner {
                conn,
                id,
                status: Mutex::new(Status::Open),
                consume: Mutex::default(),
                window: tokio::sync::Notify::new(),
                publish: Mutex::default(),
                confirmed: tokio::sync::Notify::new(),
                reply: Default::default(),
            }),
        }
    }

    /// The channel's number on its connection.
    pub fn id(&self) -> ChannelId {
        self.inner.id
    }

    /// The channel's state.
    pub fn status(&self) -> ChannelState {
        match self.inner.status() {
            Status::Open => ChannelState::Connected,
            Status::Failed(_) | Status::Errored => ChannelState::Error,
            Status::Closed => ChannelState::Closed,
        }
    }

    /// Closes the channel; later calls fail with `InvalidChannelState`.
    pub async fn close(&self, _reply_code: ReplyCode, _reply_text: ShortString) -> Result<()> {
        self.inner.check("channel.close")?;
        self.on_close().await;
        self.inner.set_status(Status::Closed);
        Ok(())
    }

    /// `exchange.declare`: 406 on a mismatch, 404 for a passive declare of a missing
    /// exchange, 403 for `amq.*` names and the default exchange, 503 for an unknown kind.
    pub async fn exchange_declare(
        &self,
        exchange: ShortString,
        kind: ExchangeKind,
        options: ExchangeDeclareOptions,
        arguments: FieldTable,
    ) -> Result<()> {
        self.inner.check("exchange.declare")?;
        self.inner
            .modify(Scope::exchange(exchange.as_str()), |t| {
                t.declare_exchange(exchange.as_str(), kind.clone(), options, &arguments)
            })
            .await
    }

    /// `exchange.delete`; deleting an absent exchange succeeds.
    pub async fn exchange_delete(
        &self,
        exchange: ShortString,
        options: ExchangeDeleteOptions,
    ) -> Result<()> {
        self.inner.check("exchange.delete")?;
        self.inner
            .modify(Scope::exchange(exchange.as_str()).with_usage(), |t| {
                t.delete_exchange(exchange.as_str(), options)
            })
            .await
    }

    /// `exchange.bind`: messages routed by `source` also go through `destination`.
    pub async fn exchange_bind(
        &self,
        destination: ShortString,
        source: ShortString,
        routing_key: ShortString,
        _options: ExchangeBindOptions,
        arguments: FieldTable,
    ) -> Result<()> {
        self.inner.check("exchange.bind")?;
        let scope = Scope::exchange(destination.as_str()).and_exchange(source.as_str());
        self.inner
            .modify(scope, |t| {
                t.bind_exchange(
                    destination.as_str(),
                    source.as_str(),
                    routing_key.as_str(),
                    &arguments,
                )
            })
            .await
    }

    /// `exchange.unbind`.
    pub async fn exchange_unbind(
        &self,
        destination: ShortString,
        source: ShortString,
        routing_key: ShortString,
        _options: ExchangeUnbindOptions,
        arguments: FieldTable,
    ) -> Result<()> {
        self.inner.check("exchange.unbind")?;
        let scope = Scope::exchange(destination.as_str()).and_exchange(source.as_str());
        self.inner
            .modify(scope, |t| {
                t.unbind_exchange(
                    destination.as_str(),
                    source.as_str(),
                    routing_key.as_str(),
                    &arguments,
                )
            })
            .await
    }

    /// `queue.declare`: an empty name gets a server-generated `amq.gen-…` name; `passive`
    /// fails with 404 when the queue is absent; a re-declare with other flags or arguments
    /// fails with 406; another connection's exclusive queue with 405. The queue's stream is
    /// created with it.
    pub async fn queue_declare(
        &self,
        queue: ShortString,
        options: QueueDeclareOptions,
        arguments: FieldTable,
    ) -> Result<Queue> {
        self.inner.check("queue.declare")?;
        if let Some(pseudo) = crate::direct_reply::declare(&self.inner, queue.as_str()) {
            return pseudo;
        }
        let conn = &self.inner.conn;
        // Design B unless the queue asks for D (`x-nats-tier: consumer`) or the mapper's preset
        // names it a client queue (Wire's `user-notifications.<uid>.<cid>`); see placement.rs.
        let default_tier = match conn.mapper.is_client_queue(queue.as_str()) {
            true => StorageTier::Consumer,
            false => StorageTier::Stream,
        };
        // A named exclusive queue may be design E: its owner subscribes before the topology
        // names it, so no publish routed to it is missed (undone below if it is not E).
        let early = crate::local_consume::open_early(conn, queue.as_str(), options).await?;
        let declared = self
            .inner
            .modify(Scope::queue(queue.as_str()), |t| {
                let d = t.declare_queue_with_tier(
                    queue.as_str(),
                    options,
                    &arguments,
                    &conn.id,
                    default_tier,
                )?;
                let decl: Option<QueueDecl> = t.queue(&d.name).cloned();
                Ok((d, decl))
            })
            .await;
        let (declared, decl) = match declared {
            Ok(d) => d,
            Err(e) => {
                crate::local_consume::undo_early(conn, queue.as_str(), early);
                return Err(e);
            }
        };
        let place = conn.store.read(|t| place(t, conn, &declared.name));
        if let (Some(Place::Stream(storage)), Some(decl)) = (&place, &decl)
            && !options.passive
        {
            storage.ensure(&conn.js, decl).await?;
        }
        crate::local_consume::open_declared(conn, &declared.name, decl.as_ref(), early).await?;
        let messages = match &place {
            Some(p) => conn.queue_count(p, &declared.name).await?,
            None => 0,
        };
        Ok(Queue::new(
            declared.name.into(),
            messages,
            declared.consumer_count,
        ))
    }

    /// `queue.bind`: 404 for a missing queue or exchange, 403 for the default exchange.
    pub async fn queue_bind(
        &self,
        queue: ShortString,
        exchange: ShortString,
        routing_key: ShortString,
        _options: QueueBindOptions,
        arguments: FieldTable,
    ) -> Result<()> {
        self.inner.check("queue.bind")?;
        let conn = &self.inner.conn;
        let scope = Scope::queue(queue.as_str()).and_exchange(exchange.as_str());
        let d = self
            .inner
            .modify(scope, |t| {
                t.bind_queue(
                    queue.as_str(),
                    exchange.as_str(),
                    routing_key.as_str(),
                    &arguments,
                    &conn.id,
                )?;
                d_change(t, conn, queue.as_str())
            })
            .await?;
        if let Some((decl, source)) = d {
            xs::sync_consumer(conn, &decl, source.as_ref()).await?;
        }
        Ok(())
    }

    /// `queue.unbind`; unbinding what is not bound succeeds.
    pub async fn queue_unbind(
        &self,
        queue: ShortString,
        exchange: ShortString,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<()> {
        self.inner.check("queue.unbind")?;
        let conn = &self.inner.conn;
        let scope = Scope::queue(queue.as_str()).and_exchange(exchange.as_str());
        let (before, d) = self
            .inner
            .modify(scope, |t| {
                let before = place(t, conn, queue.as_str());
                t.unbind_queue(
                    queue.as_str(),
                    exchange.as_str(),
                    routing_key.as_str(),
                    &arguments,
                    &conn.id,
                )?;
                Ok((before, d_change(t, conn, queue.as_str())?))
            })
            .await?;
        match (before, d) {
            (Some(p @ Place::Consumer(Some(_))), Some((_, None))) => {
                conn.drop_queue(&p, queue.as_str()).await
            }
            (_, Some((decl, source))) => xs::sync_consumer(conn, &decl, source.as_ref()).await,
            _ => Ok(()),
        }
    }

    /// `queue.purge`: removes the queue's ready messages and returns how many there were.
    pub async fn queue_purge(
        &self,
        queue: ShortString,
        _options: QueuePurgeOptions,
    ) -> Result<MessageCount> {
        self.inner.check("queue.purge")?;
        self.check_queue(queue.as_str()).await?;
        let conn = &self.inner.conn;
        let t = conn.store.cached_queue(queue.as_str());
        match place(&t, conn, queue.as_str()) {
            Some(p) => conn.purge_queue(&t, &p, queue.as_str()).await,
            None => Ok(0),
        }
    }

    /// `queue.delete`: returns the messages the queue held; `if_unused`/`if_empty` -> 406.
    /// Deleting an absent queue succeeds with 0.
    pub async fn queue_delete(
        &self,
        queue: ShortString,
        options: QueueDeleteOptions,
    ) -> Result<MessageCount> {
        self.inner.check("queue.delete")?;
        let conn = &self.inner.conn;
        let q = queue.as_str();
        let count = match conn.store.read(|t| place(t, conn, q)) {
            Some(p) => conn.queue_count(&p, q).await?,
            None => 0,
        };
        let gone = self
            .inner
            .modify(Scope::queue(q), |t| {
                let p = place(t, conn, q);
                t.delete_queue(q, options, &conn.id, count)?;
                Ok(p)
            })
            .await?;
        let Some(p) = gone else {
            return Ok(0);
        };
        conn.drop_queue(&p, q).await?;
        Ok(count)
    }

    /// 404 when `queue` is absent, 405 when it is another connection's exclusive queue
    /// (both close the channel).
    pub(crate) async fn check_queue(&self, queue: &str) -> Result<QueueDecl> {
        let owner = &self.inner.conn.id;
        self.inner
            .modify(Scope::queue(queue), |t| {
                t.check_exclusive_access(queue, owner)?;
                t.queue(queue)
                    .cloned()
                    .ok_or_else(|| Error::not_found(format!("no queue '{queue}' in vhost '/'")))
            })
            .await
    }

    /// What the channel releases when it closes: its consumers end, its unacked deliveries
    /// go back to their queues (redelivered).
    async fn on_close(&self) {
        self.inner.release(None).await;
    }
}
