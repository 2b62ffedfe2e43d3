//! Design E (`docs/amqp-mapping.md` §4): an exclusive queue kept in its owning connection's
//! memory, as RabbitMQ keeps an exclusive queue on one node and deletes it with its
//! connection. No stream and no JetStream consumer: the owner subscribes (core NATS, a handler
//! on the connection task) to the queue's default-exchange subject, the one a design-B
//! queue's stream would listen on, so publishers route to it exactly as to a B queue.
//!
//! - Each message gets a position when it arrives; ready messages are kept by position, so a
//!   requeued message goes back to where it was (with `redelivered = true`), as in RabbitMQ.
//! - Consumers are served round robin, each within its prefetch (and its channel's `global`
//!   one); a delivery is handed to the consumer's stream from the connection task that read
//!   it, with its channel's delivery tag, and the stream reads it with no task in between.
//! - A publish with a reply subject is a confirmed publish (`jetstream` publish path): it is
//!   answered with a PubAck-shaped reply once enqueued. A queue whose owner is gone has no
//!   subscriber: the publisher gets no-responders, taken as RabbitMQ takes a message to a
//!   queue deleted meanwhile (dropped, confirmed).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use nats_client::{HandlerSubscription, Message};

use crate::channel::{ChannelInner, Settle};
use crate::consume::{Feed, Pending};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::expiration::{effective_ttl, parse_expiration};
use crate::message::{Acker, Delivery};
use crate::store::nats_error;

/// What a confirmed publish to a local queue is answered with (`stream` names no stream).
const PUB_ACK_STREAM: &str = "amqp-local";
use crate::storage::LOCAL_QUERY_HEADER as QUERY_HEADER;

/// A message in a local queue.
#[derive(Debug)]
pub(crate) struct Queued {
    pos: u64,
    redelivered: bool,
    envelope: Envelope,
    payload: Bytes,
    /// When it expires (its `expiration`, or the queue's `x-message-ttl`, from its arrival).
    expires: Option<Instant>,
}

impl Queued {
    /// The delivery of this message with tag `tag` on `channel`.
    pub(crate) fn delivery(&self, channel: &Arc<ChannelInner>, tag: u64) -> Delivery {
        Delivery {
            delivery_tag: tag,
            exchange: self.envelope.exchange.as_str().into(),
            routing_key: self.envelope.routing_key.as_str().into(),
            redelivered: self.redelivered,
            properties: self.envelope.properties.clone(),
            data: self.payload.to_vec(),
            acker: Acker::for_channel(channel, tag),
        }
    }
}

/// An unacknowledged delivery from a local queue, held by its channel until settled.
#[derive(Debug)]
pub(crate) struct LocalHeld {
    pub(crate) queue: Arc<LocalQueue>,
    /// The consumer whose window it counts in (`None`: a `basic_get`).
    consumer: Option<u64>,
    item: Queued,
}

impl LocalHeld {
    pub(crate) fn new(queue: Arc<LocalQueue>, item: Queued) -> Self {
        LocalHeld {
            queue,
            consumer: None,
            item,
        }
    }

    /// Settles it on its queue: acked or dropped (design-E queues have no dead-letter
    /// exchange), or back to its position.
    pub(crate) fn settle(self, how: Settle) {
        let LocalHeld {
            queue,
            consumer,
            item,
        } = self;
        queue.settled(consumer, matches!(how, Settle::Requeue).then_some(item));
    }
}

/// A consumer's side of its stream: deliveries handed over, and how it ended.
#[derive(Debug, Default)]
struct LinkState {
    inbox: VecDeque<Delivery>,
    waker: Option<Waker>,
    /// `Some(None)`: cancelled; `Some(Some(e))`: its channel failed with `e`.
    end: Option<Option<Error>>,
    /// The stream was dropped without a cancel: it gets nothing more (as a pull loop
    /// stops when its stream is gone).
    dropped: bool,
}

#[derive(Debug, Default)]
struct Link(Mutex<LinkState>);

impl Link {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn end(&self, err: Option<Error>) {
        let waker = {
            let mut s = self.lock();
            s.end.get_or_insert(err);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// One consumer attached to a local queue.
#[derive(Debug)]
struct Attached {
    id: u64,
    channel: Weak<ChannelInner>,
    link: Arc<Link>,
    no_ack: bool,
    prefetch: u16,
    unacked: usize,
}

#[derive(Debug, Default)]
struct State {
    ready: BTreeMap<u64, Queued>,
    /// Delivered and not settled yet (consumers' and `basic.get`'s).
    unacked: usize,
    next_pos: u64,
    consumers: Vec<Attached>,
    /// The consumer whose turn is next (round robin).
    turn: usize,
    next_id: u64,
    deleted: bool,
    /// `x-message-ttl`.
    ttl: Option<u64>,
}

impl State {
    /// Drops the expired messages at the head of the queue, as RabbitMQ expires them.
    fn drop_expired(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.ready.first_entry() {
            match entry.get().expires {
                Some(at) if at <= now => drop(entry.remove()),
                _ => return,
            }
        }
    }
}

/// A design-E queue of this connection.
#[derive(Debug)]
pub(crate) struct LocalQueue {
    name: String,
    state: Mutex<State>,
    sub: Mutex<Option<HandlerSubscription>>,
    client: nats_client::Client,
}

impl LocalQueue {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A message arrived (on the connection task): enqueue it, hand it to a consumer with
    /// room, and answer a confirmed publish.
    fn arrived(self: &Arc<Self>, msg: Message) {
        if let Some(query) = msg.headers.as_ref().and_then(|h| h.get(QUERY_HEADER)) {
            let delete = query == "delete";
            self.answer_query(msg.reply);
            if delete {
                self.delete();
            }
            return;
        }
        let envelope = Envelope::of_headers(msg.headers.as_ref(), &self.name);
        let mut wake = Vec::new();
        let pos = {
            let mut st = self.state();
            if st.deleted {
                return;
            }
            st.next_pos += 1;
            let pos = st.next_pos;
            let own = envelope
                .properties
                .expiration()
                .as_ref()
                .and_then(|e| parse_expiration(e.as_str()).ok());
            let expires =
                effective_ttl(own, st.ttl).map(|ms| Instant::now() + Duration::from_millis(ms));
            let item = Queued {
                pos,
                redelivered: false,
                envelope,
                payload: msg.payload,
                expires,
            };
            st.drop_expired();
            st.ready.insert(pos, item);
            self.dispatch(&mut st, &mut wake);
            // Expiration 0: delivered now or never.
            st.drop_expired();
            pos
        };
        wake.into_iter().for_each(Waker::wake);
        if let Some(reply) = msg.reply {
            self.answer(
                reply,
                format!(r#"{{"stream":"{PUB_ACK_STREAM}","seq":{pos}}}"#),
            );
        }
    }

    /// Answers `reply` from a task (the handler runs on the connection task, which must not
    /// wait).
    fn answer(&self, reply: impl AsRef<str> + Send + 'static, body: String) {
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.publish(reply.as_ref(), body).await;
        });
    }

    /// Answers a depth query (see [`QUERY_HEADER`]).
    fn answer_query(&self, reply: Option<impl AsRef<str> + Send + 'static>) {
        let Some(reply) = reply else { return };
        let body = {
            let mut st = self.state();
            st.drop_expired();
            format!(
                r#"{{"ready":{},"unacked":{},"consumers":{}}}"#,
                st.ready.len(),
                st.unacked,
                st.consumers.len()
            )
        };
        self.answer(reply, body);
    }

    /// Hands ready messages to consumers with room, round robin, oldest first.
    fn dispatch(self: &Arc<Self>, st: &mut State, wake: &mut Vec<Waker>) {
        while !st.ready.is_empty() && !st.consumers.is_empty() {
            let n = st.consumers.len();
            let chosen = (0..n).find_map(|k| {
                let i = (st.turn + k) % n;
                let c = &st.consumers[i];
                let full = !c.no_ack && c.prefetch != 0 && c.unacked >= usize::from(c.prefetch);
                if full || c.link.lock().dropped {
                    return None;
                }
                let channel = c.channel.upgrade()?;
                (c.no_ack || channel.room() > 0).then_some((i, channel))
            });
            let Some((i, channel)) = chosen else { return };
            let Some((_, item)) = st.ready.pop_first() else {
                return;
            };
            st.turn = (i + 1) % n;
            if !st.consumers[i].no_ack {
                st.unacked += 1;
            }
            let c = &mut st.consumers[i];
            let mut d = item.delivery(&channel, 0);
            let tag = {
                let mut s = channel.consume_state();
                match c.no_ack {
                    true => s.unacked.next_tag(),
                    false => {
                        c.unacked += 1;
                        s.unacked.deliver(Pending::Local(LocalHeld {
                            queue: self.clone(),
                            consumer: Some(c.id),
                            item,
                        }))
                    }
                }
            };
            d.delivery_tag = tag;
            d.acker = Acker::for_channel(&channel, tag);
            let mut link = c.link.lock();
            link.inbox.push_back(d);
            if let Some(w) = link.waker.take() {
                wake.push(w);
            }
        }
    }

    /// Hands out what consumers have room for now (a window opened elsewhere on a channel).
    pub(crate) fn kick(self: &Arc<Self>) {
        let mut wake = Vec::new();
        {
            let mut st = self.state();
            st.drop_expired();
            self.dispatch(&mut st, &mut wake);
        }
        wake.into_iter().for_each(Waker::wake);
    }

    /// A delivery was settled: `requeue` puts it back at its position, redelivered.
    fn settled(self: &Arc<Self>, consumer: Option<u64>, requeue: Option<Queued>) {
        let mut wake = Vec::new();
        {
            let mut st = self.state();
            st.unacked = st.unacked.saturating_sub(1);
            if let Some(c) = st.consumers.iter_mut().find(|c| Some(c.id) == consumer) {
                c.unacked = c.unacked.saturating_sub(1);
            }
            if let Some(mut item) = requeue.filter(|_| !st.deleted) {
                item.redelivered = true;
                st.ready.insert(item.pos, item);
            }
            st.drop_expired();
            self.dispatch(&mut st, &mut wake);
        }
        wake.into_iter().for_each(Waker::wake);
    }

    /// Attaches a consumer of `channel` (`prefetch` 0: unlimited); its deliveries come on
    /// the returned stream.
    pub(crate) fn attach(
        self: &Arc<Self>,
        channel: &Arc<ChannelInner>,
        no_ack: bool,
        prefetch: u16,
    ) -> (u64, LocalDeliveries) {
        let link = Arc::new(Link::default());
        let mut wake = Vec::new();
        let id = {
            let mut st = self.state();
            st.next_id += 1;
            let id = st.next_id;
            if st.deleted {
                link.end(None);
            }
            st.consumers.push(Attached {
                id,
                channel: Arc::downgrade(channel),
                link: link.clone(),
                no_ack,
                prefetch,
                unacked: 0,
            });
            st.drop_expired();
            self.dispatch(&mut st, &mut wake);
            id
        };
        wake.into_iter().for_each(Waker::wake);
        let deliveries = LocalDeliveries {
            link,
            done: false,
            _channel: channel.clone(),
        };
        (id, deliveries)
    }

    /// Detaches consumer `id` (cancel, or its channel closed): its stream yields what it was
    /// handed, then `err` if any, then ends. Its unacknowledged deliveries stay on the channel.
    pub(crate) fn detach(self: &Arc<Self>, id: u64, err: Option<Error>) {
        let gone = {
            let mut st = self.state();
            let at = st.consumers.iter().position(|c| c.id == id);
            let gone = at.map(|i| st.consumers.remove(i));
            if st.turn >= st.consumers.len() {
                st.turn = 0;
            }
            gone
        };
        if let Some(c) = gone {
            c.link.end(err);
        }
    }

    /// `basic.get`: the oldest ready message and how many stay ready (`ack`: it stays
    /// unacknowledged until settled).
    pub(crate) fn get(&self, ack: bool) -> Option<(Queued, u32)> {
        let mut st = self.state();
        st.drop_expired();
        let (_, item) = st.ready.pop_first()?;
        if ack {
            st.unacked += 1;
        }
        Some((item, saturate(st.ready.len())))
    }

    /// Sets the queue's `x-message-ttl` (from its declaration, once stored).
    pub(crate) fn set_ttl(&self, ttl: Option<u64>) {
        self.state().ttl = ttl;
    }

    /// Messages ready (not delivered, or requeued).
    pub(crate) fn ready_count(&self) -> u32 {
        let mut st = self.state();
        st.drop_expired();
        saturate(st.ready.len())
    }

    /// Drops every ready message; returns how many there were.
    pub(crate) fn purge(&self) -> u32 {
        let mut st = self.state();
        st.drop_expired();
        let n = st.ready.len();
        st.ready.clear();
        saturate(n)
    }

    /// The queue is deleted: no more messages arrive, consumers end; returns how many were
    /// ready.
    fn delete(&self) -> u32 {
        self.sub.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (n, consumers) = {
            let mut st = self.state();
            st.deleted = true;
            st.drop_expired();
            let n = st.ready.len();
            st.ready.clear();
            (n, std::mem::take(&mut st.consumers))
        };
        for c in consumers {
            c.link.end(None);
            // Cancelled, as RabbitMQ cancels a deleted queue's consumers: its tag is free
            // again on its channel.
            if let Some(channel) = c.channel.upgrade() {
                channel.consume_state().consumers.retain(|_, r| {
                    !matches!(&r.how, Feed::Local { queue, id } if *id == c.id && std::ptr::eq(Arc::as_ptr(queue), self))
                });
            }
        }
        saturate(n)
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The design-E queues of one connection, by name.
#[derive(Debug, Default)]
pub(crate) struct LocalQueues(Mutex<HashMap<String, Arc<LocalQueue>>>);

impl LocalQueues {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<LocalQueue>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The queue `name`, when this connection holds it.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<LocalQueue>> {
        self.map().get(name).cloned()
    }

    /// Every queue held.
    pub(crate) fn all(&self) -> Vec<Arc<LocalQueue>> {
        self.map().values().cloned().collect()
    }

    /// Holds queue `name` (once): subscribes to `subject` and waits until the server has the
    /// subscription, so every publish routed after the declare reaches it.
    pub(crate) async fn open(
        &self,
        client: &nats_client::Client,
        name: &str,
        subject: &str,
    ) -> Result<Arc<LocalQueue>> {
        // A queue deleted behind its owner's back (`nats-admin`) is replaced.
        if let Some(q) = self.get(name).filter(|q| !q.state().deleted) {
            return Ok(q);
        }
        let queue = Arc::new(LocalQueue {
            name: name.to_owned(),
            state: Mutex::default(),
            sub: Mutex::default(),
            client: client.clone(),
        });
        let weak = Arc::downgrade(&queue);
        let sub = client
            .subscribe_with_handler(subject, move |msg| {
                if let Some(q) = weak.upgrade() {
                    q.arrived(msg);
                }
            })
            .map_err(nats_error)?;
        *queue.sub.lock().unwrap_or_else(|p| p.into_inner()) = Some(sub);
        {
            let mut map = self.map();
            if let Some(q) = map.get(name).filter(|q| !q.state().deleted) {
                // Opened meanwhile by another channel: keep that one.
                return Ok(q.clone());
            }
            map.insert(name.to_owned(), queue.clone());
        }
        client.flush().await.map_err(nats_error)?;
        Ok(queue)
    }

    /// Deletes queue `name`; returns how many messages were ready (0 when not held).
    pub(crate) fn delete(&self, name: &str) -> u32 {
        let gone = self.map().remove(name);
        gone.map_or(0, |q| q.delete())
    }
}

/// A local consumer's deliveries: read straight from what the connection task handed over.
#[derive(Debug)]
pub(crate) struct LocalDeliveries {
    link: Arc<Link>,
    done: bool,
    /// The consumer keeps its channel open, as lapin's does (and as a pull loop does): the
    /// queue holds only a weak reference, and a channel whose handles were all dropped would
    /// otherwise take the consumer's deliveries with it.
    _channel: Arc<ChannelInner>,
}

impl Drop for LocalDeliveries {
    fn drop(&mut self) {
        self.link.lock().dropped = true;
    }
}

impl Stream for LocalDeliveries {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut s = self.link.lock();
        if let Some(d) = s.inbox.pop_front() {
            return Poll::Ready(Some(Ok(d)));
        }
        match s.end.as_mut() {
            Some(end) => {
                let err = end.take();
                drop(s);
                self.done = true;
                Poll::Ready(err.map(Err))
            }
            None => {
                match &s.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => s.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}
