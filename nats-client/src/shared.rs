//! State shared by the client handles and the connection task.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use nats_proto::ServerInfo;
use tokio::sync::{Notify, broadcast, watch};
use tracing::warn;

use crate::addr::ServerAddr;
use crate::error::ClientError;
use crate::events::Event;
use crate::inbox::{Ended, Inbox};
use crate::lock;
use crate::message::Message;
use crate::options::ConnectOptions;
use crate::outbound::{FlushWaiter, LinkState, Outbound};
use crate::server_error::ServerError;
use crate::server_pool::ServerPool;
use crate::stats::Counters;
use crate::subscription::{Handler, Pushed, SubEntry, SubscriptionError, Target};

pub(crate) struct Shared {
    /// The write buffer; lock order: `out` before `subs`.
    pub out: Mutex<Outbound>,
    /// Wakes the writer: there is something to send (or to stop).
    pub writer_wake: Notify,
    /// Wakes publishers waiting for buffer space.
    pub space: Notify,
    /// Wakes the supervisor out of a reconnect wait when the client closes.
    pub close_wake: Notify,
    pub subs: Mutex<HashMap<u64, SubEntry>>,
    pub next_sid: AtomicU64,
    /// PINGs sent, oldest first, each with the flush calls waiting for its PONG.
    pub pongs: Mutex<VecDeque<Vec<FlushWaiter>>>,
    /// Keep-alive PINGs without any PONG since.
    pub pings_out: AtomicUsize,
    pub requests: Inbox,
    pub info: Mutex<Arc<ServerInfo>>,
    pub server: Mutex<Option<ServerAddr>>,
    pub pool: Mutex<ServerPool>,
    pub stats: Counters,
    pub events: broadcast::Sender<Event>,
    pub closed: watch::Sender<bool>,
    pub opts: ConnectOptions,
}

impl Shared {
    pub fn new(opts: ConnectOptions, pool: ServerPool) -> Self {
        let (events, _) = broadcast::channel(opts.event_capacity);
        Shared {
            out: Mutex::new(Outbound::new(
                opts.write_buffer_limit,
                opts.reconnect_buffer_size,
            )),
            writer_wake: Notify::new(),
            space: Notify::new(),
            close_wake: Notify::new(),
            subs: Mutex::default(),
            next_sid: AtomicU64::new(1),
            pongs: Mutex::default(),
            pings_out: AtomicUsize::new(0),
            requests: Inbox::new(&opts.inbox_prefix),
            info: Mutex::default(),
            server: Mutex::default(),
            pool: Mutex::new(pool),
            stats: Counters::default(),
            events,
            closed: watch::Sender::new(false),
            opts,
        }
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
        lock(&self.out).state
    }

    /// Asks the connection to close after sending what is buffered.
    pub fn request_close(&self) {
        {
            let mut out = lock(&self.out);
            match out.state {
                LinkState::Closing | LinkState::Closed => return,
                _ => out.state = LinkState::Closing,
            }
        }
        self.writer_wake.notify_one();
        self.close_wake.notify_one();
        self.space.notify_waiters();
    }

    /// Registers a subscription and sends its SUB (when connected; otherwise the reconnect
    /// sends it).
    pub fn add_subscription(
        &self,
        subject: &str,
        queue_group: Option<String>,
        target: Target,
    ) -> Result<u64, ClientError> {
        let sid = self.next_sid.fetch_add(1, Relaxed);
        let mut out = lock(&self.out);
        match out.state {
            LinkState::Closing | LinkState::Closed => return Err(ClientError::Closed),
            LinkState::Connected => {
                let encoder = out.encoder;
                encoder.subscribe(&mut out.buf, sid, subject, queue_group.as_deref())?;
            }
            LinkState::Disconnected => {
                // Validate now even though the SUB is sent later.
                let mut scratch = bytes::BytesMut::new();
                out.encoder
                    .subscribe(&mut scratch, sid, subject, queue_group.as_deref())?;
            }
        }
        lock(&self.subs).insert(
            sid,
            SubEntry {
                subject: subject.to_owned(),
                queue_group,
                max: None,
                delivered: 0,
                target,
            },
        );
        drop(out);
        self.writer_wake.notify_one();
        Ok(sid)
    }

    /// Sends UNSUB for `sid`; with `forget`, also stops routing its messages (a stream
    /// subscription's stream ends).
    pub fn send_unsub(&self, sid: u64, max: Option<u64>, forget: bool) -> Result<(), ClientError> {
        let mut out = lock(&self.out);
        if matches!(out.state, LinkState::Closing | LinkState::Closed) {
            return Err(ClientError::Closed);
        }
        let mut subs = lock(&self.subs);
        let remove = match (subs.get_mut(&sid), max) {
            (None, _) => return Ok(()),
            (Some(e), Some(max)) => {
                e.max = Some(max);
                e.delivered >= max
            }
            (Some(_), None) => forget,
        };
        if remove
            && let Some(SubEntry {
                target: Target::Queue(q),
                ..
            }) = subs.remove(&sid)
        {
            q.close();
        }
        drop(subs);
        if out.state == LinkState::Connected {
            let encoder = out.encoder;
            encoder.unsubscribe(&mut out.buf, sid, max);
            drop(out);
            self.writer_wake.notify_one();
        }
        Ok(())
    }

    /// Delivers one message to its subscription. Called by the reader with `subs` locked.
    ///
    /// A handler subscription's message comes back with its handler instead: the caller must
    /// release the table before calling it, so that the handler may use the client.
    #[must_use = "a handler subscription's message is delivered by calling the handler"]
    pub fn dispatch(
        &self,
        subs: &mut HashMap<u64, SubEntry>,
        msg: nats_proto::Msg,
    ) -> Option<(Handler, Message)> {
        self.stats.in_msgs.fetch_add(1, Relaxed);
        self.stats.in_bytes.fetch_add(msg.size as u64, Relaxed);
        let sid = msg.sid;
        let entry = subs.get_mut(&sid)?; // None: late message for a subscription already gone
        entry.delivered += 1;
        let done = entry.max.is_some_and(|max| entry.delivered >= max);
        let handed_back = match &entry.target {
            Target::Queue(q) => {
                if let Pushed::Dropped { first } = q.push(msg.into()) {
                    self.stats.dropped_msgs.fetch_add(1, Relaxed);
                    if first {
                        self.emit(Event::SlowConsumer {
                            sid,
                            subject: entry.subject.clone(),
                        });
                    }
                }
                None
            }
            Target::Requests => {
                self.requests.deliver(msg.into());
                None
            }
            Target::Handler(h) => Some((h.clone(), msg.into())),
        };
        if done
            && let Some(SubEntry {
                target: Target::Queue(q),
                ..
            }) = subs.remove(&sid)
        {
            q.close();
        }
        handed_back
    }

    /// A well-framed message that cannot be a [`Message`]: counted, reported, and handed to its
    /// subscription as an error. The connection is not affected.
    pub fn undeliverable(&self, bad: Box<nats_proto::BadMsg>) {
        self.stats.undeliverable_msgs.fetch_add(1, Relaxed);
        let (sid, error) = (bad.sid, bad.error.clone());
        warn!(sid, %error, "undeliverable message");
        let mut subs = lock(&self.subs);
        if let Some(entry) = subs.get_mut(&sid) {
            // It used up one of the subscription's messages on the server all the same.
            entry.delivered += 1;
            let done = entry.max.is_some_and(|max| entry.delivered >= max);
            if let Target::Queue(q) = &entry.target {
                q.push_error(SubscriptionError::Undeliverable(bad), done);
            }
            if done {
                subs.remove(&sid);
            }
        }
        drop(subs);
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
        let mut subs = lock(&self.subs);
        let refused: Vec<u64> = subs
            .iter()
            .filter(|(_, e)| {
                e.subject == subject
                    && e.queue_group.as_deref() == queue
                    && !matches!(e.target, Target::Requests)
            })
            .map(|(sid, _)| *sid)
            .collect();
        for sid in &refused {
            if let Some(SubEntry {
                target: Target::Queue(q),
                ..
            }) = subs.remove(sid)
            {
                q.push_error(SubscriptionError::Refused(error.clone()), true);
            }
        }
        refused.len()
    }

    /// Resolves the flush calls of the oldest outstanding PING.
    pub fn pong(&self) {
        self.pings_out.store(0, Relaxed);
        if let Some(group) = lock(&self.pongs).pop_front() {
            for w in group {
                let _ = w.send(());
            }
        }
    }

    /// Ends every subscription (queued messages stay readable) and fails every waiter.
    pub fn finish(&self) {
        {
            let mut out = lock(&self.out);
            out.state = LinkState::Closed;
            out.buf.clear();
            out.flush_waiters.clear();
        }
        for (_, e) in lock(&self.subs).drain() {
            if let Target::Queue(q) = e.target {
                q.close();
            }
        }
        lock(&self.pongs).clear();
        self.requests.fail_all(Ended::Closed);
        self.space.notify_waiters();
        self.emit(Event::Closed);
        self.closed.send_replace(true);
    }
}
