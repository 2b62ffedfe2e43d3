//! The state machine behind [`Messages`](crate::Messages): a hand-written `poll_next` over
//! the inbox subscription, the leader advisories, the connection events and one timer.
//!
//! Why not an `async fn next` wrapped in `stream::unfold`: unfold moves the whole state into
//! a fresh future for every message, and `select!` re-creates (and re-registers) the timer
//! each time the inbox runs dry. Here the state stays put, the timer is allocated once and
//! reset only when its deadline moves, and the clock is read once per pull or timer tick
//! rather than once per message.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use nats_client::{Event, Message, Subscriber};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Sleep};

use crate::consume::ConsumeOptions;
use crate::consumer::Consumer;
use crate::error::JetStreamError;
use crate::message::JsMessage;
use crate::pull::{EXPIRY_GRACE, PullRequest, Status, classify};

type Item = Result<JsMessage, JetStreamError>;
type Events = Pin<Box<dyn Stream<Item = Result<Event, RecvError>> + Send>>;
type Sending = Pin<Box<dyn Future<Output = Result<(), JetStreamError>> + Send>>;

/// A pull request on its way into the client's write buffer.
struct InFlight {
    sending: Sending,
    batch: usize,
    max_bytes: usize,
}

/// The state behind [`Messages`](crate::Messages).
pub(crate) struct Puller {
    consumer: Consumer,
    /// The consumer's leader-elected advisories (replicated consumers only).
    leader_sub: Option<Subscriber>,
    pub(crate) next_subject: String,
    pub(crate) inbox: String,
    sub: Subscriber,
    /// Connection events; `None` once the channel is closed.
    events: Option<Events>,
    pub(crate) options: ConsumeOptions,
    /// Messages (and bytes) asked for and not yet received.
    pending_msgs: usize,
    pending_bytes: usize,
    /// Heartbeats on: the next check that traffic came in the last interval. Off: when the
    /// newest pull request will have expired.
    watchdog: Instant,
    /// Heartbeats on: whether anything arrived since the last check (a flag, so a message
    /// costs no clock read), and how many checks in a row found nothing.
    heard: bool,
    missed: u8,
    /// Do not pull before this (after a refusal, so a refusing server is not hammered).
    pull_after: Option<Instant>,
    /// Pinned-client consumers: pull at least this often, so the pin does not lapse
    /// (the server renews it only when a pull carrying it arrives).
    repin: Option<Duration>,
    /// When the next such pull is due.
    repin_at: Option<Instant>,
    /// Open while the client moves off a lame-duck server (see [`Overlap`]).
    overlap: Option<Overlap>,
    sending: Option<InFlight>,
    /// Wakes the stream at the earliest of `watchdog`, `pull_after` and `repin_at`.
    timer: Pin<Box<Sleep>>,
    done: bool,
}

/// While the client moves off a lame-duck server, the inbox is subscribed on both servers
/// and whatever the JetStream server sends to it arrives twice. Both copies carry the same
/// ack subject (a real redelivery has another delivery count and consumer sequence), so
/// the copies are recognised by it and dropped. The window opens on the lame-duck event and
/// closes [`OVERLAP_AFTER_MOVE`] after the reconnect that follows (or after
/// [`OVERLAP_MAX`]).
struct Overlap {
    until: Instant,
    seen: HashSet<String>,
}

/// How long after the move to the new server copies may still come through the old one.
const OVERLAP_AFTER_MOVE: Duration = Duration::from_secs(10);
/// The longest the window stays open when no reconnect follows the lame-duck event.
const OVERLAP_MAX: Duration = Duration::from_secs(60);
/// Most ack subjects remembered in the window (a bound on memory at any rate).
const OVERLAP_CAPACITY: usize = 1 << 17;

impl Overlap {
    /// Whether `reply` was seen before in this window (a copy); remembers it.
    fn is_copy(&mut self, reply: &str) -> bool {
        if self.seen.len() >= OVERLAP_CAPACITY {
            self.seen.clear();
        }
        !self.seen.insert(reply.to_owned())
    }
}

/// Connection events as a stream that keeps its place in the channel between polls.
fn event_stream(rx: broadcast::Receiver<Event>) -> Events {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await;
        Some((event, rx))
    }))
}

impl Puller {
    /// The state of a fresh stream; nothing is pulled until [`Puller::pull`].
    pub(crate) fn new(
        consumer: Consumer,
        sub: Subscriber,
        inbox: String,
        leader_sub: Option<Subscriber>,
        events: broadcast::Receiver<Event>,
        options: ConsumeOptions,
        repin: Option<Duration>,
    ) -> Puller {
        let now = Instant::now();
        Puller {
            next_subject: consumer.next_subject(),
            consumer,
            leader_sub,
            inbox,
            sub,
            events: Some(event_stream(events)),
            options,
            pending_msgs: 0,
            pending_bytes: 0,
            watchdog: now,
            heard: false,
            missed: 0,
            pull_after: None,
            repin,
            repin_at: None,
            overlap: None,
            sending: None,
            timer: Box::pin(tokio::time::sleep_until(now)),
            done: false,
        }
    }

    fn heartbeat(&self) -> Duration {
        self.options.idle_heartbeat
    }

    fn reset(&mut self) {
        self.pending_msgs = 0;
        self.pending_bytes = 0;
    }

    /// Starts heartbeat watching afresh from `now`: two silent intervals from here on are a
    /// miss.
    fn arm_watchdog(&mut self, now: Instant) {
        let hb = self.heartbeat();
        if !hb.is_zero() {
            self.watchdog = now + hb;
            self.heard = false;
            self.missed = 0;
        }
    }

    fn wants_pull(&self) -> bool {
        let o = &self.options;
        let below_msgs = self.pending_msgs <= o.max_messages / 2;
        let below_bytes = o.max_bytes > 0 && self.pending_bytes <= o.max_bytes / 2;
        if self.pull_after.is_none() && (below_msgs || below_bytes) {
            // The common case decides without a clock read.
            return true;
        }
        let now = Instant::now();
        let repin_due = self.repin_at.is_some_and(|t| now >= t);
        (below_msgs || below_bytes || repin_due) && self.pull_after.is_none_or(|t| now >= t)
    }

    /// A pull request for what is missing from the window, on its way out.
    fn start_pull(&self) -> InFlight {
        let o = &self.options;
        let batch = o.max_messages.saturating_sub(self.pending_msgs).max(1);
        let max_bytes = if o.max_bytes > 0 {
            o.max_bytes.saturating_sub(self.pending_bytes).max(1)
        } else {
            0
        };
        let request = PullRequest {
            batch,
            expires: o.expires,
            max_bytes,
            no_wait: false,
            idle_heartbeat: o.idle_heartbeat,
            priority: self.consumer.pull_priority(o.priority_group.as_ref()),
        };
        let body = serde_json::to_vec(&request).map_err(|e| JetStreamError::json("pull", &e));
        let client = self.consumer.context.client.clone();
        let subject = self.next_subject.clone();
        let inbox = self.inbox.clone();
        let sending: Sending = Box::pin(async move {
            client
                .publish_message(&subject, Some(&inbox), None, &body?)
                .await?;
            Ok(())
        });
        InFlight {
            sending,
            batch,
            max_bytes,
        }
    }

    /// Accounts for a pull request that went out.
    fn pulled(&mut self, batch: usize, max_bytes: usize) {
        let now = Instant::now();
        self.pending_msgs += batch;
        self.pending_bytes += max_bytes;
        self.pull_after = None;
        self.repin_at = self.repin.map(|every| now + every);
        if self.heartbeat().is_zero() {
            self.watchdog = now + self.options.expires + EXPIRY_GRACE;
        } else {
            self.arm_watchdog(now);
        }
    }

    /// Sends the first pull request (before the stream is handed out).
    pub(crate) async fn pull(&mut self) -> Result<(), JetStreamError> {
        let InFlight {
            sending,
            batch,
            max_bytes,
        } = self.start_pull();
        sending.await?;
        self.pulled(batch, max_bytes);
        Ok(())
    }

    fn settle(&mut self, pending: Option<(usize, usize)>) {
        match pending {
            Some((n, b)) => {
                self.pending_msgs = self.pending_msgs.saturating_sub(n);
                self.pending_bytes = self.pending_bytes.saturating_sub(b);
            }
            None => self.reset(),
        }
    }

    /// Handles one message from the inbox; `Some` is an item for the caller.
    fn handle(&mut self, msg: Message) -> Option<Item> {
        self.heard = true;
        let Some(status) = classify(&msg) else {
            if let Some(overlap) = self.overlap.as_mut() {
                if Instant::now() >= overlap.until {
                    self.overlap = None;
                } else if let Some(reply) = &msg.reply
                    && overlap.is_copy(reply)
                {
                    tracing::trace!(reply = %reply, "dropped a copy from the lame-duck overlap");
                    return None;
                }
            }
            if self.repin.is_some() {
                self.consumer.pin.observe(&msg);
            }
            self.pending_msgs = self.pending_msgs.saturating_sub(1);
            self.pending_bytes = self.pending_bytes.saturating_sub(msg.length);
            return Some(Ok(self.consumer.wrap(msg)));
        };
        match status {
            Status::Heartbeat => None,
            Status::Ended { pending } => {
                self.settle(pending);
                None
            }
            Status::Reset => {
                self.reset();
                None
            }
            Status::PinMismatch { pending } => {
                // The pin moved: pull again, without it, at once.
                tracing::debug!(consumer = %self.consumer.name, "pin moved to another client");
                self.consumer.pin.clear();
                self.settle(pending);
                self.pull_after = None;
                None
            }
            Status::Report { pending } => {
                self.settle(pending);
                // A refusal would repeat at once: pause pulling for a moment.
                self.pull_after = Some(Instant::now() + self.pause());
                Some(Err(self.consumer.status_error(&msg)))
            }
            Status::Deleted => {
                self.done = true;
                Some(Err(self.consumer.deleted_error()))
            }
            Status::Fatal => {
                self.done = true;
                Some(Err(self.consumer.status_error(&msg)))
            }
        }
    }

    fn pause(&self) -> Duration {
        let hb = self.heartbeat();
        if hb.is_zero() {
            Duration::from_secs(1)
        } else {
            hb.min(Duration::from_secs(1))
        }
    }

    /// A new consumer leader knows nothing of pulls made to the old one.
    fn on_leader_elected(&mut self) {
        tracing::debug!(consumer = %self.consumer.name, "consumer leader elected; pulling afresh");
        self.reset();
        self.pull_after = None;
        self.arm_watchdog(Instant::now());
    }

    fn on_event(&mut self, event: Result<Event, RecvError>) {
        match event {
            Ok(Event::Reconnected { .. }) | Err(RecvError::Lagged(_)) => {
                // Requests made on the old connection may be gone with it.
                self.reset();
                self.pull_after = None;
                if let Some(overlap) = self.overlap.as_mut() {
                    overlap.until = Instant::now() + OVERLAP_AFTER_MOVE;
                }
            }
            Ok(Event::LameDuck { .. }) => {
                self.overlap = Some(Overlap {
                    until: Instant::now() + OVERLAP_MAX,
                    seen: HashSet::new(),
                });
            }
            Ok(_) => {}
            Err(RecvError::Closed) => self.events = None,
        }
    }

    /// The timer fired: a heartbeat check, a pull request that ran out, or a pause or
    /// re-pin deadline that passed (the next round of the loop pulls then).
    fn on_timer(&mut self) -> Option<Item> {
        let now = Instant::now();
        if self.pull_after.is_some_and(|t| now >= t) {
            // No longer holds pulls back; kept, it would keep the timer firing.
            self.pull_after = None;
        }
        if now < self.watchdog {
            return None;
        }
        let hb = self.heartbeat();
        if hb.is_zero() {
            // Without heartbeats, the request just ran out: pull again.
            self.reset();
            self.watchdog = now + self.options.expires + EXPIRY_GRACE;
            return None;
        }
        self.missed = if self.heard { 0 } else { self.missed + 1 };
        self.heard = false;
        self.watchdog = now + hb;
        if self.missed < 2 {
            return None;
        }
        self.reset();
        self.arm_watchdog(now);
        Some(Err(JetStreamError::HeartbeatMissed {
            stream: self.consumer.stream.clone(),
            consumer: self.consumer.name.clone(),
            interval: hb,
        }))
    }

    /// The next item: messages first, then leader advisories, connection events and the
    /// timer (the order the `biased` select of an `async fn` would poll them in).
    pub(crate) fn poll_item(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if self.sending.is_none() && self.wants_pull() {
                self.sending = Some(self.start_pull());
            }
            if let Some(pull) = self.sending.as_mut() {
                let sent = ready!(pull.sending.as_mut().poll(cx));
                let (batch, max_bytes) = (pull.batch, pull.max_bytes);
                self.sending = None;
                match sent {
                    Ok(()) => self.pulled(batch, max_bytes),
                    Err(e) => {
                        if matches!(
                            e,
                            JetStreamError::Publish(nats_client::PublishError::Closed)
                        ) {
                            self.done = true;
                        }
                        self.pull_after = Some(Instant::now() + self.pause());
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            match self.sub.poll_next_unpin(cx) {
                Poll::Ready(Some(msg)) => {
                    if let Some(item) = self.handle(msg) {
                        return Poll::Ready(Some(item));
                    }
                    continue;
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {}
            }
            if let Some(leader) = self.leader_sub.as_mut()
                && let Poll::Ready(elected) = leader.poll_next_unpin(cx)
            {
                match elected {
                    Some(_) => self.on_leader_elected(),
                    None => self.leader_sub = None,
                }
                continue;
            }
            if let Some(events) = self.events.as_mut()
                && let Poll::Ready(event) = events.as_mut().poll_next(cx)
            {
                self.on_event(event.unwrap_or(Err(RecvError::Closed)));
                continue;
            }
            let wake = [self.pull_after, self.repin_at]
                .into_iter()
                .flatten()
                .fold(self.watchdog, Instant::min);
            if self.timer.deadline() != wake {
                self.timer.as_mut().reset(wake);
            }
            ready!(self.timer.as_mut().poll(cx));
            if let Some(item) = self.on_timer() {
                return Poll::Ready(Some(item));
            }
        }
    }
}
