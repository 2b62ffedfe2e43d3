//! Consuming on design B (`docs/amqp-mapping.md` §5): `basic_consume`, the [`Consumer`]
//! stream, `basic_qos`, `basic_ack`/`nack`/`reject`, `basic_get`, `basic_cancel`. Each queue
//! stream has one durable pull consumer `amqp` shared by every AMQP consumer of the queue;
//! each AMQP consumer's pull loop (`crate::pull_loop`) requests only what its prefetch
//! window allows.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_util::Stream;
use jetstream::models::{AckPolicy, ConsumerConfig, PriorityPolicy};
use jetstream::{ErrorCode, JsMessage};
use tokio::sync::mpsc;

use crate::channel::{Channel, ChannelInner, Settle};
use crate::dead_letter::DeathReason;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::exchange_storage as xs;
use crate::message::{Acker, BasicGetMessage, Delivery};
use crate::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicQosOptions, BasicRejectOptions,
};
use crate::placement::{Place, place};
use crate::pull_loop::{LoopArgs, Slot, Stop, pull_loop};
use crate::store::{Scope, nats_error};
use crate::types::{DeliveryTag, FieldTable, ShortString};
use crate::{acks::Unacked, routing::generated_name};

/// The JetStream consumer every AMQP consumer of a queue pulls from.
const PULLER: &str = crate::exchange_storage::QUEUE_STREAM_CONSUMER;
/// The priority group of single-active-consumer queues.
pub(crate) const SAC_GROUP: &str = "sac";
/// How long a crashed active consumer keeps the pin.
pub(crate) const SAC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `basic.consume` on a single-active-consumer queue waits for its first pull.
const SAC_START: Duration = Duration::from_secs(5);
/// RabbitMQ's default consumer timeout: an unacked delivery of a crashed process comes back
/// after this long.
const ACK_WAIT: Duration = Duration::from_secs(30 * 60);

/// An unacknowledged delivery: a stored message (designs B and D) or one of a local queue
/// (design E).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // kept by tag, never moved much; boxing costs an allocation
pub(crate) enum Pending {
    Stored(Stored),
    Local(crate::local_queue::LocalHeld),
}

/// An unacknowledged stored delivery: the JetStream message to settle.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) msg: JsMessage,
    /// Its queue's name, shared by every delivery of a consumer (no allocation each).
    pub(crate) queue: Arc<str>,
    /// Counts in its consumer's window while unacknowledged (`None`: a `basic_get`).
    pub(crate) _slot: Option<Slot>,
}

/// One running consumer of a channel.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) queue: String,
    pub(crate) how: Feed,
}

/// How a running consumer is fed.
#[derive(Debug)]
pub(crate) enum Feed {
    /// By its pull loop.
    Pull {
        stop: Arc<Stop>,
        tx: mpsc::UnboundedSender<Result<Delivery>>,
        done: tokio::sync::oneshot::Receiver<()>,
    },
    /// By its local queue (design E), as consumer `id`.
    Local {
        queue: Arc<crate::local_queue::LocalQueue>,
        id: u64,
    },
}

impl Running {
    /// Stops the consumer; its stream gets `err`, if any, after what it was handed.
    async fn stop(self, err: Option<&Error>) -> String {
        match self.how {
            Feed::Pull { stop, tx, done } => {
                stop.stop();
                if let Some(e) = err {
                    let _ = tx.send(Err(e.clone()));
                }
                drop(tx);
                let _ = done.await;
            }
            Feed::Local { queue, id } => queue.detach(id, err.cloned()),
        }
        self.queue
    }
}

/// The consuming state of one channel.
#[derive(Debug, Default)]
pub(crate) struct ConsumeState {
    pub(crate) unacked: Unacked<Pending>,
    /// `basic.qos` with `global = false`: the window of each consumer started after it.
    pub(crate) prefetch: u16,
    /// `basic.qos` with `global = true`: the window shared by the channel's consumers.
    channel_prefetch: u16,
    pub(crate) consumers: HashMap<String, Running>,
}

/// A consumer's deliveries, lapin's `Consumer`: a `Stream` of `Result<Delivery>` that ends
/// when the consumer is cancelled and yields the error when its channel fails.
#[derive(Debug)]
pub struct Consumer {
    tag: ShortString,
    queue: ShortString,
    rx: Deliveries,
}

/// Where a consumer's deliveries come from.
#[derive(Debug)]
enum Deliveries {
    /// Its pull loop.
    Queue(mpsc::UnboundedReceiver<Result<Delivery>>),
    /// The channel's direct reply-to inbox.
    Replies(crate::direct_reply::Replies),
    /// Its local queue (design E).
    Local(crate::local_queue::LocalDeliveries),
}

impl Consumer {
    pub(crate) fn replies(
        tag: ShortString,
        queue: ShortString,
        r: crate::direct_reply::Replies,
    ) -> Self {
        let rx = Deliveries::Replies(r);
        Consumer { tag, queue, rx }
    }

    pub(crate) fn local(
        tag: ShortString,
        queue: ShortString,
        d: crate::local_queue::LocalDeliveries,
    ) -> Self {
        let rx = Deliveries::Local(d);
        Consumer { tag, queue, rx }
    }

    /// The consumer tag (server-generated `amq.ctag-…` when none was given).
    pub fn tag(&self) -> ShortString {
        self.tag.clone()
    }

    /// The queue consumed.
    pub fn queue(&self) -> ShortString {
        self.queue.clone()
    }
}

impl Stream for Consumer {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.rx {
            Deliveries::Queue(rx) => rx.poll_recv(cx),
            Deliveries::Replies(r) => Pin::new(r).poll_next(cx),
            Deliveries::Local(l) => Pin::new(l).poll_next(cx),
        }
    }
}

/// The envelope of a stored message (a message stored without one, by a plain NATS
/// publisher, reads as published to the default exchange with the queue's name).
pub(crate) fn envelope_of(msg: &JsMessage, queue: &str) -> Envelope {
    Envelope::of_headers(msg.message().headers.as_ref(), queue)
}

/// Builds the delivery of a stored message for `queue`.
pub(crate) fn delivery(
    channel: &Arc<ChannelInner>,
    queue: &str,
    msg: &JsMessage,
    tag: u64,
) -> Delivery {
    let envelope = envelope_of(msg, queue);
    let redelivered = msg.info().is_ok_and(|i| i.delivered > 1);
    Delivery {
        delivery_tag: tag,
        exchange: envelope.exchange.into(),
        routing_key: envelope.routing_key.into(),
        redelivered,
        properties: envelope.properties,
        data: msg.message().payload.to_vec(),
        acker: Acker::for_channel(channel, tag),
    }
}

impl ChannelInner {
    pub(crate) fn consume_state(&self) -> std::sync::MutexGuard<'_, ConsumeState> {
        self.consume.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What a consumer of `queue` pulls from: the shared `amqp` consumer of its stream
    /// (design B, created on first use), or its own consumer on its exchange's stream
    /// (design D; `None` while the queue is unbound).
    pub(crate) async fn puller(&self, queue: &str) -> Result<Option<jetstream::Consumer>> {
        let conn = &self.conn;
        let js = &conn.js;
        let storage = match conn.store.read(|t| place(t, conn, queue)) {
            None => return Ok(None),
            Some(Place::Consumer(None) | Place::Local) => return Ok(None),
            Some(Place::Consumer(Some(x))) => {
                return xs::queue_puller(conn, queue, &x).await;
            }
            Some(Place::Stream(s)) => s,
        };
        match js.get_consumer(&storage.stream, PULLER).await {
            Ok(c) => return Ok(Some(c)),
            Err(e) if e.is_api(ErrorCode::CONSUMER_NOT_FOUND) => {}
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => return Ok(None),
            Err(e) => return Err(nats_error(e)),
        }
        let sac = conn.store.read(|t| {
            t.queue(queue)
                .is_some_and(|d| d.arguments.single_active_consumer)
        });
        let mut config = ConsumerConfig {
            durable_name: Some(PULLER.to_owned()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: -1,
            max_waiting: 4096,
            ..ConsumerConfig::default()
        };
        if sac {
            // x-single-active-consumer: a pinned-client group; only the pinned puller gets
            // messages, the pin moves when it stops pulling or is unpinned (§6).
            config.priority_groups = vec![SAC_GROUP.to_owned()];
            config.priority_policy = PriorityPolicy::PinnedClient;
            config.priority_timeout = SAC_TIMEOUT;
        }
        match js.create_consumer(&storage.stream, config).await {
            Ok(c) => Ok(Some(c)),
            // Created by another process meanwhile.
            Err(_) => js
                .get_consumer(&storage.stream, PULLER)
                .await
                .map(Some)
                .map_err(nats_error),
        }
    }

    /// Settles `tag` (and every earlier outstanding tag with `multiple`). An unknown tag
    /// closes the channel with 406 asynchronously, as RabbitMQ does: the call succeeds and
    /// the error surfaces on the next call, the pending confirms and the consumers.
    pub(crate) async fn settle(
        self: &Arc<Self>,
        tag: DeliveryTag,
        multiple: bool,
        how: Settle,
    ) -> Result<()> {
        let settled = self.consume_state().unacked.settle(tag, multiple);
        let settled = match settled {
            Ok(s) => s,
            Err(e) => {
                self.fail_async(e);
                return Ok(());
            }
        };
        self.window.notify_waiters();
        let mut stored = Vec::with_capacity(settled.len());
        let mut local = false;
        for (_, p) in settled {
            match p {
                Pending::Stored(s) => stored.push(s),
                Pending::Local(l) => {
                    local = true;
                    l.settle(how);
                }
            }
        }
        if local || self.channel_prefetch() != 0 {
            // A window opened: local queues hand out what now fits.
            self.conn.local.all().iter().for_each(|q| q.kick());
        }
        // Checkpoints note each queue once per call (a `multiple` ack is usually one queue).
        let mut touched: Option<&str> = None;
        for p in &stored {
            if touched != Some(&*p.queue) {
                self.conn.checkpoints.touch(&p.queue);
                touched = Some(&p.queue);
            }
        }
        for p in stored {
            let done = match how {
                Settle::Ack => p.msg.ack().await,
                Settle::Requeue => p.msg.nak().await,
                Settle::Drop => {
                    self.dead_letter(&p, DeathReason::Rejected).await?;
                    p.msg.term().await
                }
            };
            done.map_err(nats_error)?;
        }
        Ok(())
    }

    /// Stops every consumer (their streams get `err` when given) and requeues every unacked
    /// delivery, as RabbitMQ does when a channel closes.
    pub(crate) async fn release(&self, err: Option<Error>) {
        crate::direct_reply::release(self, err.as_ref());
        let consumers: Vec<(String, Running)> = self.consume_state().consumers.drain().collect();
        let mut queues = Vec::new();
        for (_, r) in consumers {
            queues.push(r.stop(err.as_ref()).await);
        }
        // Taken once every consumer stopped: what one was handed while another was being
        // stopped would stay on the closed channel, unacknowledged, never requeued.
        let unacked = self.consume_state().unacked.take_all();
        for (_, p) in unacked {
            match p {
                Pending::Stored(s) => drop(s.msg.nak().await),
                Pending::Local(l) => l.settle(Settle::Requeue),
            }
        }
        for q in queues {
            self.consumer_gone(&q).await;
        }
        self.window.notify_waiters();
    }

    /// A consumer of `queue` is gone: count it out; an auto-delete queue goes with its last.
    pub(crate) async fn consumer_gone(&self, queue: &str) {
        self.conn.consumer_gone(queue).await;
    }

    /// The channel's shared (`global`) prefetch (0: none).
    fn channel_prefetch(&self) -> u16 {
        self.consume_state().channel_prefetch
    }

    /// True when `tag` names one of the channel's queue consumers.
    pub(crate) fn has_consumer(&self, tag: &str) -> bool {
        self.consume_state().consumers.contains_key(tag)
    }

    /// Room left in the channel's shared (`global`) prefetch window (`usize::MAX` when
    /// unlimited).
    pub(crate) fn room(&self) -> usize {
        let s = self.consume_state();
        match s.channel_prefetch {
            0 => usize::MAX,
            p => usize::from(p).saturating_sub(s.unacked.len()),
        }
    }
}

impl Channel {
    /// `basic.qos`, as RabbitMQ reads it: with `global = false` (lapin's default) at most
    /// `prefetch_count` unacknowledged deliveries per consumer, for each consumer started
    /// after the call; with `global = true` at most that many shared by all the channel's
    /// consumers, at once. 0: unlimited.
    pub async fn basic_qos(&self, prefetch_count: u16, options: BasicQosOptions) -> Result<()> {
        self.inner.check("basic.qos")?;
        {
            let mut s = self.inner.consume_state();
            match options.global {
                false => s.prefetch = prefetch_count,
                true => s.channel_prefetch = prefetch_count,
            }
        }
        self.inner.window.notify_waiters();
        // Local queues hand out what a larger window now allows.
        self.inner.conn.local.all().iter().for_each(|q| q.kick());
        Ok(())
    }

    /// `basic.consume`: 404 for a missing queue, 405 for another connection's exclusive
    /// queue, 403 when consuming exclusively is refused, 530 (connection) for a tag already
    /// used on this channel. An empty tag gets a server-generated `amq.ctag-…`.
    pub async fn basic_consume(
        &self,
        queue: ShortString,
        consumer_tag: ShortString,
        options: BasicConsumeOptions,
        _arguments: FieldTable,
    ) -> Result<Consumer> {
        self.inner.check("basic.consume")?;
        if queue.as_str() == crate::direct_reply::QUEUE {
            return crate::direct_reply::consume(self, consumer_tag, options).await;
        }
        let tag = match consumer_tag.as_str() {
            "" => generated_name("amq.ctag-"),
            t => t.to_owned(),
        };
        if self.inner.consume_state().consumers.contains_key(&tag) {
            return Err(self.inner.fail(Error::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            ))));
        }
        let owner = self.inner.conn.id.clone();
        let q = queue.as_str();
        self.inner
            .conn
            .store
            .modify(&Scope::queue(q), |t| {
                t.add_consumer(q, &owner, options.exclusive)
            })
            .await
            .map_err(|e| self.inner.fail(e))?;
        if let Some(local) = self.inner.conn.local.get(q) {
            return Ok(self.consume_local(local, queue, tag, options));
        }
        if let Err(e) = self.inner.puller(q).await {
            self.inner.consumer_gone(q).await;
            return Err(e);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(Stop::default());
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        self.inner.consume_state().consumers.insert(
            tag.clone(),
            Running {
                queue: q.into(),
                how: Feed::Pull {
                    stop: stop.clone(),
                    tx: tx.clone(),
                    done,
                },
            },
        );
        let args = LoopArgs {
            channel: self.inner.clone(),
            queue: q.into(),
            no_ack: options.no_ack,
            stop,
            tx,
            own: Arc::default(),
            prefetch: self.inner.consume_state().prefetch,
            started: Some(started_tx),
        };
        tokio::spawn(async move {
            pull_loop(args).await;
            let _ = done_tx.send(());
        });
        // A single-active-consumer queue: the first consumer registered is the active one,
        // so return once this one's pull waits on the server (bounded: a queue that cannot
        // be pulled yet does not block the call).
        let sac = self.inner.conn.store.read(|t| {
            t.queue(q)
                .is_some_and(|d| d.arguments.single_active_consumer)
        });
        if sac {
            let _ = tokio::time::timeout(SAC_START, started).await;
        }
        Ok(Consumer {
            tag: tag.into(),
            queue,
            rx: Deliveries::Queue(rx),
        })
    }

    /// `basic.cancel`: the consumer's stream ends; its unacknowledged deliveries stay on the
    /// channel (still ackable). An auto-delete queue is deleted with its last consumer.
    pub async fn basic_cancel(
        &self,
        consumer_tag: ShortString,
        _options: BasicCancelOptions,
    ) -> Result<()> {
        self.inner.check("basic.cancel")?;
        if crate::direct_reply::cancel(&self.inner, consumer_tag.as_str()) {
            return Ok(());
        }
        let running = self
            .inner
            .consume_state()
            .consumers
            .remove(consumer_tag.as_str());
        if let Some(r) = running {
            let queue = r.stop(None).await;
            self.inner.consumer_gone(&queue).await;
        }
        Ok(())
    }

    /// `basic.ack`. An unknown tag closes the channel with 406 asynchronously (lapin's
    /// behaviour: this call returns `Ok`).
    pub async fn basic_ack(
        &self,
        delivery_tag: DeliveryTag,
        options: BasicAckOptions,
    ) -> Result<()> {
        self.inner.check("basic.ack")?;
        self.inner
            .settle(delivery_tag, options.multiple, Settle::Ack)
            .await
    }

    /// `basic.nack`: `requeue` redelivers (with `redelivered = true`), otherwise the message
    /// is dropped.
    pub async fn basic_nack(
        &self,
        delivery_tag: DeliveryTag,
        options: BasicNackOptions,
    ) -> Result<()> {
        self.inner.check("basic.nack")?;
        let how = match options.requeue {
            true => Settle::Requeue,
            false => Settle::Drop,
        };
        self.inner.settle(delivery_tag, options.multiple, how).await
    }

    /// `basic.reject`: one delivery, requeued or dropped.
    pub async fn basic_reject(
        &self,
        delivery_tag: DeliveryTag,
        options: BasicRejectOptions,
    ) -> Result<()> {
        self.inner.check("basic.reject")?;
        let how = match options.requeue {
            true => Settle::Requeue,
            false => Settle::Drop,
        };
        self.inner.settle(delivery_tag, false, how).await
    }

    /// `basic.get`: one message if the queue has one, with the number of messages left.
    pub async fn basic_get(
        &self,
        queue: ShortString,
        options: BasicGetOptions,
    ) -> Result<Option<BasicGetMessage>> {
        self.inner.check("basic.get")?;
        self.check_queue(queue.as_str()).await?;
        if let Some(local) = self.inner.conn.local.get(queue.as_str()) {
            return self.get_local(&local, options).await;
        }
        let Some(puller) = self.inner.puller(queue.as_str()).await? else {
            return Ok(None);
        };
        let msgs = puller.fetch(1, Duration::ZERO).await.map_err(nats_error)?;
        let Some(msg) = msgs.into_iter().next() else {
            return Ok(None);
        };
        let message_count = msg
            .info()
            .map(|i| u32::try_from(i.pending).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let tag = {
            let mut s = self.inner.consume_state();
            match options.no_ack {
                true => s.unacked.next_tag(),
                false => s.unacked.deliver(Pending::Stored(Stored {
                    msg: msg.clone(),
                    queue: queue.as_str().into(),
                    _slot: None,
                })),
            }
        };
        if options.no_ack {
            msg.ack().await.map_err(nats_error)?;
        }
        Ok(Some(BasicGetMessage {
            delivery: delivery(&self.inner, queue.as_str(), &msg, tag),
            message_count,
        }))
    }
}

impl crate::connection::ConnectionInner {
    /// A consumer of `queue` is gone: count it out; an auto-delete queue goes with its last.
    pub(crate) async fn consumer_gone(&self, queue: &str) {
        let conn = self;
        let deleted = conn
            .store
            .modify(&Scope::queue(queue), |t| {
                let p = place(t, conn, queue);
                Ok(t.remove_consumer(queue).then_some(p).flatten())
            })
            .await;
        if let Ok(Some(p)) = deleted {
            let _ = conn.drop_queue(&p, queue).await;
        }
    }
}
