//! State shared by the client handles and the connection task.
//!
//! Two locks, and only one order: the write side ([`Outbound`]) and the [`Session`] (sid
//! table, PONG FIFO, server INFO). No field is public, so the types decide who holds what:
//! - [`Shared::out`] locks the write side; the session is reached from its guard
//!   ([`OutGuard::session`]): write side first, then session.
//! - The session alone is locked only inside this module's methods (none of which takes the
//!   write lock meanwhile), and by [`Shared::deliver_run`], whose step is a function pointer
//!   that captures nothing and is given only the session, a [`Deliverer`] (counters, events,
//!   the reply inbox) and the reader's buffer: it has no way to the write lock.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use nats_proto::{HeaderMap, Parser, ServerInfo, ServerOp};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, broadcast, oneshot, watch};
use tracing::warn;

use crate::addr::ServerAddr;
use crate::error::{ClientError, PublishError};
use crate::events::Event;
use crate::inbox::{Ended, Inbox};
use crate::lock;
use crate::message::Message;
use crate::options::ConnectOptions;
use crate::outbound::{Chunk, LinkState, Outbound, Payload, Unsent};
use crate::server_pool::ServerPool;
use crate::session::{Action, Delivery, Retirement, Session};
use crate::stats::{Counters, Statistics};
use crate::sub_queue::{Handler, Target};

/// A flush call waiting: resolved when the PONG of the PING sent after its data arrives.
pub(crate) type FlushWaiter = oneshot::Sender<()>;

/// The session as the client holds it: flush waiters are oneshot senders.
pub(crate) type ClientSession = Session<FlushWaiter>;

/// The write side as the client holds it.
pub(crate) type ClientOutbound = Outbound<FlushWaiter>;

/// The writer's chunk in flight.
pub(crate) type ClientChunk = Chunk<FlushWaiter>;

pub(crate) struct Shared {
    out: Mutex<ClientOutbound>,
    session: Mutex<ClientSession>,
    /// Wakes the writer: there is something to send (or to stop).
    writer_wake: Notify,
    /// Wakes publishers waiting for buffer space.
    space: Notify,
    /// Wakes the supervisor out of a reconnect wait when the client closes.
    close_wake: Notify,
    requests: Inbox,
    pool: Mutex<ServerPool>,
    stats: Counters,
    events: broadcast::Sender<Event>,
    closed: watch::Sender<bool>,
    opts: ConnectOptions,
}

/// The write side locked; the session is reachable from here (lock order: out, then session).
pub(crate) struct OutGuard<'a> {
    out: MutexGuard<'a, ClientOutbound>,
    session: &'a Mutex<ClientSession>,
}

impl OutGuard<'_> {
    /// Locks the session too, while the write side stays locked.
    pub fn session(&mut self) -> (&mut ClientOutbound, MutexGuard<'_, ClientSession>) {
        (&mut self.out, lock(self.session))
    }
}

impl Deref for OutGuard<'_> {
    type Target = ClientOutbound;
    fn deref(&self) -> &ClientOutbound {
        &self.out
    }
}

impl DerefMut for OutGuard<'_> {
    fn deref_mut(&mut self) -> &mut ClientOutbound {
        &mut self.out
    }
}

impl Shared {
    pub fn new(opts: ConnectOptions, pool: ServerPool) -> Self {
        let (events, _) = broadcast::channel(opts.event_capacity);
        Shared {
            out: Mutex::new(Outbound::new(
                opts.write_buffer_limit,
                opts.reconnect_buffer_size,
            )),
            session: Mutex::default(),
            writer_wake: Notify::new(),
            space: Notify::new(),
            close_wake: Notify::new(),
            requests: Inbox::new(&opts.inbox_prefix),
            pool: Mutex::new(pool),
            stats: Counters::default(),
            events,
            closed: watch::Sender::new(false),
            opts,
        }
    }

    pub fn opts(&self) -> &ConnectOptions {
        &self.opts
    }

    pub fn requests(&self) -> &Inbox {
        &self.requests
    }

    pub fn stats(&self) -> &Counters {
        &self.stats
    }

    /// Locks the write side (see [`OutGuard::session`] for the session as well).
    pub fn out(&self) -> OutGuard<'_> {
        OutGuard {
            out: lock(&self.out),
            session: &self.session,
        }
    }

    /// The session locked alone, by the methods of this module only: none of them takes the
    /// write lock while holding it.
    fn session<R>(&self, f: impl FnOnce(&mut ClientSession) -> R) -> R {
        f(&mut lock(&self.session))
    }

    /// Delivers the buffered messages under one lock of the session, up to the first other op
    /// (or a handler to call, or the end of what is buffered). `step` is a function pointer:
    /// it captures nothing, so with the session locked it can reach only the session, the
    /// [`Deliverer`] and the reader's parser and buffer, never the write lock.
    pub fn deliver_run(&self, read: ReadBuf<'_>, step: DeliverStep) -> Delivered {
        let deliverer = Deliverer { shared: self };
        step(&mut lock(&self.session), &deliverer, read)
    }

    /// The writer sent a PING for `waiters`.
    pub fn ping_sent(&self, waiters: Vec<FlushWaiter>) {
        self.session(|s| s.ping_sent(waiters));
    }

    /// The keep-alive timer fired: a PING, or the link is dead.
    pub fn keep_alive_tick(&self) -> Action<FlushWaiter> {
        let max = self.opts.max_pings_out;
        self.session(|s| s.keep_alive_tick(max))
    }

    /// An op (not a run of messages: see [`Shared::deliver_run`]) from the live connection's
    /// server: what the session decided.
    pub fn server_op(&self, op: ServerOp) -> Vec<Action<FlushWaiter>> {
        self.session(|s| s.server_op(op))
    }

    /// Servers an INFO announced, unless discovery is off.
    pub fn discovered(&self, urls: &[String], current: &ServerAddr) {
        if !self.opts.ignore_discovered_servers {
            self.pool().update_discovered(urls, current);
        }
    }

    /// An event the session decided on: logged, counted, sent.
    pub fn report(&self, event: Event) {
        match &event {
            Event::ServerError { server, error } => warn!(%server, %error, "server error"),
            Event::UndeliverableMessage { sid, error } => {
                warn!(sid, %error, "undeliverable message");
            }
            _ => {}
        }
        self.emit(event);
    }

    /// A message from a retiring connection that cannot be a [`Message`] (see
    /// [`Session::undeliverable`]).
    pub fn undeliverable(&self, bad: Box<nats_proto::BadMsg>) {
        let (sid, error) = (bad.sid, bad.error.clone());
        self.session(|s| s.undeliverable(bad));
        self.report(Event::UndeliverableMessage { sid, error });
    }

    /// The connection is gone (lost, or handed over): what it never sent, with the PONGs it
    /// owed its server counted (see [`Session::connection_lost`]); its unproven flush calls
    /// ride the next connection's PING.
    pub fn connection_lost(&self, chunk: &mut ClientChunk) -> Unsent {
        let mut guard = self.out();
        let (out, mut session) = guard.session();
        let (mut unsent, unproven) = session.connection_lost(chunk);
        drop(session);
        out.requeue_flushes(unproven);
        unsent.pongs += out.take_owed_pongs();
        unsent
    }

    /// The connection is handed over (lame duck): what it never sent, and its retirement
    /// (see [`Session::handed_over`]); its unproven flush calls ride the new connection's PING.
    pub fn handed_over(&self, chunk: &mut ClientChunk, clean: bool) -> (Retirement, BytesMut) {
        let mut guard = self.out();
        let (out, mut session) = guard.session();
        let owed = out.take_owed_pongs();
        let (retirement, unsent, unproven) = session.handed_over(chunk, clean, owed);
        drop(session);
        out.requeue_flushes(unproven);
        (retirement, unsent)
    }

    /// Resolves proven flush calls.
    pub fn flushed(waiters: Vec<FlushWaiter>) {
        for w in waiters {
            let _ = w.send(());
        }
    }

    /// Every live subscription's sid.
    pub fn sids(&self) -> Vec<u64> {
        self.session(|s| s.sids())
    }

    pub fn pool(&self) -> MutexGuard<'_, ServerPool> {
        lock(&self.pool)
    }

    pub fn wake_writer(&self) {
        self.writer_wake.notify_one();
    }

    pub fn writer_woken(&self) -> Notified<'_> {
        self.writer_wake.notified()
    }

    pub fn wake_publishers(&self) {
        self.space.notify_waiters();
    }

    pub fn close_requested(&self) -> Notified<'_> {
        self.close_wake.notified()
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// The latest INFO.
    pub fn info(&self) -> Arc<ServerInfo> {
        self.session(|s| s.info())
    }

    /// The current (or last) server.
    pub fn server(&self) -> Option<ServerAddr> {
        self.session(|s| s.server().cloned())
    }

    /// The counters, with the outbound ones kept under the write lock and the inbound ones
    /// in the session.
    pub fn statistics(&self) -> Statistics {
        let mut stats = self.stats.snapshot();
        (stats.out_msgs, stats.out_bytes) = self.out().counters();
        let received = self.session(|s| s.received());
        stats.in_msgs = received.msgs;
        stats.in_bytes = received.bytes;
        stats.dropped_msgs = received.dropped;
        stats.undeliverable_msgs = received.undeliverable;
        stats
    }

    /// Sends an event without ever blocking (to the callback first, if there is one); counts
    /// it when it pushes out an unread one.
    pub fn emit(&self, event: Event) {
        if let Some(callback) = &self.opts.event_callback {
            callback(&event);
        }
        if self.events.receiver_count() == 0 {
            return;
        }
        if self.events.len() >= self.opts.event_capacity {
            self.stats.dropped_events.fetch_add(1, Relaxed);
        }
        let _ = self.events.send(event);
    }

    pub fn state(&self) -> LinkState {
        self.out().state()
    }

    /// Asks the connection to close after sending what is buffered.
    pub fn request_close(&self) {
        if !self.out().close() {
            return;
        }
        self.writer_wake.notify_one();
        self.close_wake.notify_one();
        self.space.notify_waiters();
    }

    /// Encodes a publish into the write buffer, waking the writer if it is idle. Returns
    /// `false` when the buffer is full: wait for [`Shared::space_freed`], then try again.
    pub fn try_publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: Payload<'_>,
    ) -> Result<bool, PublishError> {
        let accepted = self.out().publish(subject, reply, headers, payload)?;
        match accepted {
            None => Ok(false),
            Some(wake) => {
                if wake {
                    self.writer_wake.notify_one();
                }
                Ok(true)
            }
        }
    }

    /// The writer's "space" signal (see [`Shared::try_publish`]).
    pub fn space_freed(&self) -> Notified<'_> {
        self.space.notified()
    }

    /// A flush: its waiter rides the next PING; resolved by its PONG.
    pub fn flush_waiter(&self) -> Result<oneshot::Receiver<()>, ClientError> {
        let (tx, rx) = oneshot::channel();
        if self.out().add_flush_waiter(tx).is_err() {
            return Err(ClientError::Closed);
        }
        self.writer_wake.notify_one();
        Ok(rx)
    }

    /// Registers a subscription and sends its SUB (when connected; otherwise the reconnect
    /// sends it).
    pub fn add_subscription(
        &self,
        subject: &str,
        queue_group: Option<String>,
        target: Target,
    ) -> Result<u64, ClientError> {
        let mut guard = self.out();
        let (out, mut session) = guard.session();
        let (encoder, live) = out.control().map_err(|_| ClientError::Closed)?;
        let sid = session.subscribe(&encoder, live, subject, queue_group, target)?;
        drop(session);
        drop(guard);
        self.writer_wake.notify_one();
        Ok(sid)
    }

    /// Sends UNSUB for `sid`; with `forget`, also stops routing its messages (a stream
    /// subscription's stream ends).
    pub fn send_unsub(&self, sid: u64, max: Option<u64>, forget: bool) -> Result<(), ClientError> {
        let mut guard = self.out();
        let (out, mut session) = guard.session();
        let (encoder, live) = out.control().map_err(|_| ClientError::Closed)?;
        let wrote = live.is_some();
        session.unsubscribe(&encoder, live, sid, max, forget);
        drop(session);
        drop(guard);
        if wrote {
            self.writer_wake.notify_one();
        }
        Ok(())
    }

    /// Forgets a drained subscription and ends its stream.
    pub fn forget(&self, sid: u64) {
        self.session(|s| s.forget(sid));
    }

    /// The sids of every live subscription but the reply inbox (what a drain unsubscribes).
    pub fn user_sids(&self) -> Vec<u64> {
        let inbox = self.requests.sid();
        self.session(|s| s.sids())
            .into_iter()
            .filter(|sid| Some(*sid) != inbox)
            .collect()
    }
}

/// The reader's parser and read buffer, lent to a run of deliveries.
pub(crate) struct ReadBuf<'a> {
    pub parser: &'a mut Parser,
    pub buf: &'a mut BytesMut,
}

/// One run of deliveries (see [`Shared::deliver_run`]).
pub(crate) type DeliverStep = fn(&mut ClientSession, &Deliverer<'_>, ReadBuf<'_>) -> Delivered;

/// How a run of deliveries ended.
pub(crate) enum Delivered {
    /// Nothing more buffered.
    NeedMore,
    /// An op that is not a message, for the caller (who holds no lock now).
    Op(ServerOp),
    /// A handler subscription's message: call the handler (the session is released).
    Handler(Handler, Message),
    /// The stream is broken.
    Failed(nats_proto::ProtoError),
}

/// The standard run: parse and deliver messages until something else comes.
pub(crate) fn deliver_messages(
    session: &mut ClientSession,
    deliverer: &Deliverer<'_>,
    read: ReadBuf<'_>,
) -> Delivered {
    loop {
        match read.parser.parse(read.buf) {
            Ok(Some(ServerOp::Msg(msg))) => {
                if let Some((handler, msg)) = deliverer.dispatch(session, msg) {
                    return Delivered::Handler(handler, msg);
                }
            }
            Ok(Some(op)) => return Delivered::Op(op),
            Ok(None) => return Delivered::NeedMore,
            Err(e) => return Delivered::Failed(e),
        }
    }
}

/// What a run of deliveries may use besides the session: counters, events and the reply
/// inbox. Not the write side.
pub(crate) struct Deliverer<'a> {
    shared: &'a Shared,
}

impl Deliverer<'_> {
    /// Counts a message and acts on where the session routed it. A handler subscription's
    /// message comes back with its handler instead, to be called once the session is
    /// released (the handler may use the client).
    #[must_use = "a handler subscription's message is delivered by calling the handler"]
    pub fn dispatch(
        &self,
        session: &mut ClientSession,
        msg: nats_proto::Msg,
    ) -> Option<(Handler, Message)> {
        self.shared.delivered(session.deliver(msg))
    }
}

impl Shared {
    /// Acts on where the session routed a message. A handler subscription's message comes
    /// back with its handler, to be called once the session is released.
    #[must_use = "a handler subscription's message is delivered by calling the handler"]
    pub fn delivered(&self, delivery: Delivery) -> Option<(Handler, Message)> {
        match delivery {
            Delivery::Gone | Delivery::Queued => None,
            Delivery::Dropped {
                sid,
                subject,
                first,
            } => {
                if first {
                    self.emit(Event::SlowConsumer { sid, subject });
                }
                None
            }
            Delivery::Requests(msg) => {
                self.requests.deliver(msg);
                None
            }
            Delivery::Handler(handler, msg) => Some((handler, msg)),
        }
    }

    /// Ends every subscription (queued messages stay readable) and fails every waiter.
    pub fn finish(&self) {
        {
            let mut guard = self.out();
            let (out, mut session) = guard.session();
            out.finish();
            session.finish();
        }
        self.requests.fail_all(Ended::Closed);
        self.space.notify_waiters();
        self.emit(Event::Closed);
        self.closed.send_replace(true);
    }
}
