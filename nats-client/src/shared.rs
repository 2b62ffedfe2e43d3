//! State shared by the client handles and the connection task.
//!
//! Two locks, and only one order: the write side ([`Outbound`]) and the [`Session`] (sid
//! table, PONG FIFO, server INFO). [`Shared::out`] locks the write side and reaches the session
//! from its guard ([`OutGuard::session`]); [`Shared::session`] locks the session alone and hands
//! it to a closure that gets nothing else. No field is public: every change goes through a
//! method here.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use nats_proto::{HeaderMap, ServerInfo};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, broadcast, oneshot, watch};
use tracing::warn;

use crate::addr::ServerAddr;
use crate::error::{ClientError, PublishError};
use crate::events::Event;
use crate::inbox::{Ended, Inbox};
use crate::lock;
use crate::options::ConnectOptions;
use crate::outbound::{FlushWaiter, LinkState, Outbound};
use crate::server_error::ServerError;
use crate::server_pool::ServerPool;
use crate::session::{Delivery, Session};
use crate::stats::{Counters, Statistics};
use crate::subscription::Target;

/// The session as the client holds it: flush waiters are oneshot senders.
pub(crate) type ClientSession = Session<FlushWaiter>;

pub(crate) struct Shared {
    out: Mutex<Outbound>,
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
    out: MutexGuard<'a, Outbound>,
    session: &'a Mutex<ClientSession>,
}

impl OutGuard<'_> {
    /// Locks the session too, while the write side stays locked.
    pub fn session(&mut self) -> (&mut Outbound, MutexGuard<'_, ClientSession>) {
        (&mut self.out, lock(self.session))
    }
}

impl Deref for OutGuard<'_> {
    type Target = Outbound;
    fn deref(&self) -> &Outbound {
        &self.out
    }
}

impl DerefMut for OutGuard<'_> {
    fn deref_mut(&mut self) -> &mut Outbound {
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

    /// Runs `f` on the session alone. `f` must not lock anything of `Shared` (it gets only
    /// the session, which is what keeps the lock order).
    pub fn session<R>(&self, f: impl FnOnce(&mut ClientSession) -> R) -> R {
        f(&mut lock(&self.session))
    }

    /// The session locked alone, for a run of message deliveries by the reader (which holds
    /// nothing else meanwhile).
    pub fn session_for_delivery(&self) -> MutexGuard<'_, ClientSession> {
        lock(&self.session)
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

    /// The current server as text.
    pub fn server_name(&self) -> String {
        self.session(|s| s.server_name())
    }

    /// The counters, with the outbound ones kept under the write lock.
    pub fn statistics(&self) -> Statistics {
        let mut stats = self.stats.snapshot();
        (stats.out_msgs, stats.out_bytes) = self.out().counters();
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
        payload: &[u8],
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
        let inbox = *lock(&self.requests.sid);
        self.session(|s| s.sids())
            .into_iter()
            .filter(|sid| Some(*sid) != inbox)
            .collect()
    }

    /// Counts a message and acts on where the session routed it. Called by the reader with
    /// the session locked (`session`, for a run of messages).
    ///
    /// A handler subscription's message comes back with its handler instead: the caller must
    /// release the session before calling it, so that the handler may use the client.
    #[must_use = "a handler subscription's message is delivered by calling the handler"]
    pub fn dispatch(
        &self,
        session: &mut ClientSession,
        msg: nats_proto::Msg,
    ) -> Option<(crate::subscription::Handler, crate::message::Message)> {
        self.stats.in_msgs.fetch_add(1, Relaxed);
        self.stats.in_bytes.fetch_add(msg.size as u64, Relaxed);
        match session.deliver(msg) {
            Delivery::Gone | Delivery::Queued => None,
            Delivery::Dropped {
                sid,
                subject,
                first,
            } => {
                self.stats.dropped_msgs.fetch_add(1, Relaxed);
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

    /// A well-framed message that cannot be a [`crate::Message`]: counted, reported, and
    /// handed to its subscription as an error. The connection is not affected.
    pub fn undeliverable(&self, bad: Box<nats_proto::BadMsg>) {
        self.stats.undeliverable_msgs.fetch_add(1, Relaxed);
        let (sid, error) = (bad.sid, bad.error.clone());
        warn!(sid, %error, "undeliverable message");
        self.session(|s| s.undeliverable(bad));
        self.emit(Event::UndeliverableMessage { sid, error });
    }

    /// The server refused subscriptions to `subject` (in `queue`): they can never get a
    /// message, so their streams end, with the error for [`Subscriber::take_errors`]
    /// (handler subscriptions are forgotten). Returns how many there were.
    ///
    /// [`Subscriber::take_errors`]: crate::Subscriber::take_errors
    pub fn refuse_subscriptions(
        &self,
        subject: &str,
        queue: Option<&str>,
        error: &ServerError,
    ) -> usize {
        self.session(|s| s.refuse(subject, queue, error))
    }

    /// Resolves the flush calls of the oldest outstanding PING.
    pub fn pong(&self) {
        for w in self.session(|s| s.pong()) {
            let _ = w.send(());
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
