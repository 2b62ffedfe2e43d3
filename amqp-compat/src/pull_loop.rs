//! The pull loop behind each AMQP consumer: it asks the queue's JetStream consumer for what
//! the prefetch window allows and hands each message over as it arrives.
//!
//! One inbox subscription lives as long as the loop, and one pull request at a time is
//! outstanding, sized to the window's room; a message that arrives after its pull timed out
//! on our side (a loaded server) is still delivered, never left unacknowledged until the
//! consumer's `ack_wait`. A cancel ends the loop at once; what the last pull still brings
//! is returned to the queue (nak) by a task until that pull ends.
//!
//! An ack-mode consumer of a design-B queue (no checkpoint guard, no single-active pin) has
//! its subscription as a handler on the connection's read task: each message is given its
//! delivery tag and sent to the `Consumer` there, with no task in between; the loop only
//! hears of statuses and of a pull that brought all it could.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use jetstream::{JsMessage, PIN_ID_HEADER};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::channel::ChannelInner;
use crate::checkpoint::Guard;
use crate::connection::ConnectionInner;
use crate::consume::{Pending, SAC_GROUP, SAC_TIMEOUT, Stored, delivery};
use crate::error::Result;
use crate::message::{Acker, Delivery};

/// How long one pull request lives; a pull lost with a connection is noticed after this
/// (plus [`PULL_GRACE`]).
const PULL_EXPIRES: Duration = Duration::from_secs(2);
/// How long after its expiry a pull is taken as ended when the server's end-of-pull status
/// (408) did not come.
const PULL_GRACE: Duration = Duration::from_millis(500);
/// The pause after a failed pull.
const SHORT_PULL: Duration = Duration::from_millis(500);
/// The pull of a single-active-consumer candidate: long, so the first consumer's pull stays
/// first in the server's queue of waiting pulls and takes the pin with the first message, as
/// the first consumer registered is the active one in RabbitMQ.
const SAC_CANDIDATE_PULL: Duration = Duration::from_secs(30);
/// Largest pull when the prefetch is unlimited.
const MAX_BATCH: usize = 256;

/// Stops a consumer's loop: the flag, and a wake-up for the loop's wait.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Asks the loop to end.
    pub(crate) fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// A consumer's own prefetch window: its unacknowledged deliveries, and a wake-up for its
/// loop when one is settled.
#[derive(Debug, Default)]
pub(crate) struct Window {
    unacked: AtomicUsize,
    settled: Notify,
}

/// One unacknowledged delivery of a consumer, counted in its window while it lives.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Window>);

impl Slot {
    fn new(window: &Arc<Window>) -> Slot {
        window.unacked.fetch_add(1, Ordering::AcqRel);
        Slot(window.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.unacked.fetch_sub(1, Ordering::AcqRel);
        self.0.settled.notify_waiters();
    }
}

/// What one consumer's loop needs.
pub(crate) struct LoopArgs {
    pub(crate) channel: Arc<ChannelInner>,
    pub(crate) queue: Arc<str>,
    pub(crate) no_ack: bool,
    pub(crate) stop: Arc<Stop>,
    pub(crate) tx: mpsc::UnboundedSender<Result<Delivery>>,
    /// This consumer's unacknowledged deliveries.
    pub(crate) own: Arc<Window>,
    /// Its own prefetch (`basic.qos` with `global = false` before it started; 0: none).
    pub(crate) prefetch: u16,
    /// Told once the loop's first pull is on the server (`basic.consume` of a
    /// single-active-consumer queue returns then, so consumers take the pin in order).
    pub(crate) started: Option<tokio::sync::oneshot::Sender<()>>,
}

impl LoopArgs {
    /// Gives `msg` a delivery tag and sends it to the consumer's stream; after a cancel (or
    /// with the stream dropped) it goes back to the queue instead. `redelivered`: it was
    /// delivered before by a consumer since reset or replaced (`checkpoint::Guard`).
    async fn hand_over(&self, msg: JsMessage, redelivered: bool) {
        if self.stop.is_stopped() || self.tx.is_closed() {
            let _ = msg.nak().await;
            return;
        }
        if !self.no_ack {
            deliver(
                &self.channel,
                &self.queue,
                &self.own,
                &self.tx,
                msg,
                redelivered,
            );
            return;
        }
        let mut d = delivery(&self.channel, &self.queue, &msg, 0);
        let _ = msg.ack().await;
        let tag = self.channel.consume_state().unacked.next_tag();
        d.delivery_tag = tag;
        d.redelivered |= redelivered;
        d.acker = Acker::for_channel(&self.channel, tag);
        let _ = self.tx.send(Ok(d));
    }

    /// What hands over an ack-mode delivery without waiting (see [`Handed`]).
    fn handed(&self) -> Handed {
        Handed {
            channel: self.channel.clone(),
            queue: self.queue.clone(),
            stop: self.stop.clone(),
            tx: self.tx.clone(),
            own: self.own.clone(),
        }
    }

    /// Room in this consumer's window: its own prefetch and the channel's (`global`) one.
    fn room(&self) -> usize {
        let own = match self.prefetch {
            0 => usize::MAX,
            p => usize::from(p).saturating_sub(self.own.unacked.load(Ordering::Acquire)),
        };
        own.min(self.channel.room())
    }
}

/// Hands an ack-mode delivery to its consumer's stream with no await: from the loop, or
/// from the connection's read task itself (a design-B consumer's pulls come to a handler
/// subscription, so no task sits between the read and the `Consumer`).
struct Handed {
    channel: Arc<ChannelInner>,
    queue: Arc<str>,
    stop: Arc<Stop>,
    tx: mpsc::UnboundedSender<Result<Delivery>>,
    own: Arc<Window>,
}

impl Handed {
    /// Gives `msg` its delivery tag and sends it to the stream; after a cancel (or with the
    /// stream dropped) it goes back to the queue instead.
    fn give(&self, msg: JsMessage) {
        if self.stop.is_stopped() || self.tx.is_closed() {
            tokio::spawn(async move {
                let _ = msg.nak().await;
            });
            return;
        }
        deliver(&self.channel, &self.queue, &self.own, &self.tx, msg, false);
    }
}

/// Records `msg` as an unacknowledged delivery of `channel` (counted in the consumer's
/// window `own`) and sends it to the consumer's stream.
fn deliver(
    channel: &Arc<ChannelInner>,
    queue: &Arc<str>,
    own: &Arc<Window>,
    tx: &mpsc::UnboundedSender<Result<Delivery>>,
    msg: JsMessage,
    redelivered: bool,
) {
    // Built before the message moves into the channel's unacked set (no clone of it,
    // headers included); the tag is set once known.
    let mut d = delivery(channel, queue, &msg, 0);
    let pending = Pending::Stored(Stored {
        msg,
        queue: queue.clone(),
        _slot: Some(Slot::new(own)),
    });
    let tag = channel.consume_state().unacked.deliver(pending);
    d.delivery_tag = tag;
    d.redelivered |= redelivered;
    d.acker = Acker::for_channel(channel, tag);
    let _ = tx.send(Ok(d));
}

/// Where a loop's pulled messages arrive.
enum Source {
    /// Its subscription, read by the loop.
    Queue(nats_client::Subscriber),
    /// A handler on the connection's read task that hands messages over itself and tells
    /// the loop about statuses and a completed pull.
    Handler {
        events: mpsc::UnboundedReceiver<Event>,
        _sub: nats_client::HandlerSubscription,
    },
}

/// What a [`Source::Handler`] tells its loop.
enum Event {
    /// A status (end of pull, heartbeat, ...).
    Status(nats_client::Message),
    /// It handed over the last message the current pull could bring.
    Done,
}

/// The loop's pull requests on one JetStream consumer, all answered on one subscription
/// (`<inbox>.*`), each on its own reply subject (`<inbox>.<n>`), so the end-of-pull status
/// of a pull we already gave up on is not taken for the end of the current one.
struct Pulls {
    source: Source,
    inbox: String,
    /// The current pull's reply subject.
    reply: String,
    /// Pulls sent so far.
    sent: u64,
    subject: String,
    client: nats_client::Client,
    ack_timeout: Duration,
    /// Messages the current pull may still bring (shared with a handler source).
    outstanding: Arc<AtomicUsize>,
    /// When the current pull is taken as ended.
    deadline: Instant,
    /// A single-active-consumer queue's pulls: in the priority group, with the pin once one
    /// of its messages brought one.
    pinned: Option<SacPin>,
}

/// The pin of a single-active-consumer loop.
#[derive(Default)]
struct SacPin {
    id: Option<String>,
}

impl SacPin {
    /// The pull's priority-group fields and its expiry: a pinned client pulls again well
    /// inside `priority_timeout` (a third), a candidate waits long (see
    /// [`SAC_CANDIDATE_PULL`]).
    fn fields(&self) -> (String, Duration) {
        match &self.id {
            Some(id) => (
                format!(r#","group":"{SAC_GROUP}","id":"{id}""#),
                SAC_TIMEOUT / 3,
            ),
            None => (format!(r#","group":"{SAC_GROUP}""#), SAC_CANDIDATE_PULL),
        }
    }
}

/// What a pull gave.
enum Pulled {
    Message(JsMessage),
    /// The pull ended (complete, expired, or ended by the server).
    Ended,
    /// The handler handed over what the pull brought.
    Handed,
    /// The consumer or its stream is gone: look it up again.
    Gone,
    /// Anything else: pause and look it up again.
    Failed,
}

impl Pulls {
    /// `fast`: hand messages over on the connection's read task (an ack-mode consumer with
    /// no checkpoint guard); not for single-active-consumer queues, whose pin id the loop
    /// reads from each message.
    async fn open(
        conn: &ConnectionInner,
        p: &jetstream::Consumer,
        fast: Option<Handed>,
    ) -> Option<Pulls> {
        let pinned = (!p.cached_info().config.priority_groups.is_empty()).then(SacPin::default);
        let client = conn.client.clone();
        let inbox = client.new_inbox();
        let outstanding = Arc::new(AtomicUsize::new(0));
        let ack_timeout = conn.js.timeout();
        let source = match fast.filter(|_| pinned.is_none()) {
            None => Source::Queue(client.subscribe(format!("{inbox}.*")).await.ok()?),
            Some(handed) => {
                let (tx, events) = mpsc::unbounded_channel();
                let left = outstanding.clone();
                let js_client = client.clone();
                let sub = client
                    .subscribe_with_handler(format!("{inbox}.*"), move |msg| {
                        if msg.status.is_some() {
                            let _ = tx.send(Event::Status(msg));
                            return;
                        }
                        let before = left
                            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                                Some(n.saturating_sub(1))
                            })
                            .unwrap_or(0);
                        handed.give(JsMessage::new(msg, js_client.clone(), ack_timeout));
                        if before == 1 {
                            let _ = tx.send(Event::Done);
                        }
                    })
                    .ok()?;
                Source::Handler { events, _sub: sub }
            }
        };
        Some(Pulls {
            source,
            inbox,
            reply: String::new(),
            sent: 0,
            subject: format!(
                "{}.CONSUMER.MSG.NEXT.{}.{}",
                conn.js.prefix(),
                p.stream_name(),
                p.name()
            ),
            client,
            ack_timeout,
            outstanding,
            deadline: Instant::now(),
            pinned,
        })
    }

    fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    fn set_outstanding(&self, n: usize) {
        self.outstanding.store(n, Ordering::Release);
    }

    async fn request(&mut self, batch: usize) -> bool {
        let (group, expires) = match &self.pinned {
            Some(pin) => pin.fields(),
            None => (String::new(), PULL_EXPIRES),
        };
        let request = format!(
            r#"{{"batch":{batch},"expires":{}{group}}}"#,
            expires.as_nanos()
        );
        self.sent += 1;
        self.reply = format!("{}.{}", self.inbox, self.sent);
        // Counted before the request leaves: a handler source may get the pull's messages
        // before the publish call returns, and a count set after them would wait for
        // messages already handed over (until the pull's expiry).
        self.set_outstanding(batch);
        self.deadline = Instant::now() + expires + PULL_GRACE;
        let sent = self
            .client
            .publish_with_reply(&self.subject, &self.reply, request)
            .await;
        if sent.is_err() {
            self.set_outstanding(0);
        }
        sent.is_ok()
    }

    /// The next message or end of the current pull; pending forever when none is
    /// outstanding (late messages of an earlier pull still come through).
    async fn next(&mut self) -> Pulled {
        loop {
            let wake = match self.outstanding() {
                0 => Instant::now() + Duration::from_secs(3600),
                _ => self.deadline,
            };
            let next = match &mut self.source {
                Source::Queue(sub) => tokio::time::timeout_at(wake, sub.next()).await,
                Source::Handler { events, .. } => {
                    match tokio::time::timeout_at(wake, events.recv()).await {
                        Ok(Some(Event::Done)) => return Pulled::Handed,
                        Ok(Some(Event::Status(m))) => Ok(Some(m)),
                        Ok(None) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            };
            let msg = match next {
                Ok(Some(m)) => m,
                Ok(None) => return Pulled::Failed,
                Err(_) if self.outstanding() == 0 => continue,
                Err(_) => {
                    self.set_outstanding(0);
                    return Pulled::Ended;
                }
            };
            // A message keeps its stream subject, so it cannot tell which pull brought it
            // (one of an earlier pull is rare: it counts against the current one); a status
            // comes on its pull's reply subject.
            let Some(status) = msg.status else {
                let left = self.outstanding().saturating_sub(1);
                self.set_outstanding(left);
                if let Some(pin) = &mut self.pinned
                    && let Some(id) = msg.headers.as_ref().and_then(|h| h.get(PIN_ID_HEADER))
                    && pin.id.as_deref() != Some(id)
                {
                    pin.id = Some(id.to_owned());
                }
                return Pulled::Message(JsMessage::new(msg, self.client.clone(), self.ack_timeout));
            };
            let deleted = msg
                .description
                .as_deref()
                .is_some_and(|d| d.to_ascii_lowercase().contains("consumer deleted"));
            let current = &*msg.subject == self.reply.as_str();
            match status.as_u16() {
                // Idle heartbeat, or the end of a pull we already gave up on.
                100 => {}
                _ if !current => {}
                // The pin moved to another consumer: pull again as a candidate.
                423 => {
                    if let Some(pin) = &mut self.pinned {
                        pin.id = None;
                    }
                    self.set_outstanding(0);
                    return Pulled::Ended;
                }
                // No messages, expired, or the pull ended (batch completed, max waiting...).
                404 | 408 | 409 if !deleted => {
                    self.set_outstanding(0);
                    return Pulled::Ended;
                }
                // Deleted, or no responders: the consumer is not there.
                409 | 503 => {
                    self.set_outstanding(0);
                    return Pulled::Gone;
                }
                _ => {
                    self.set_outstanding(0);
                    return Pulled::Failed;
                }
            }
        }
    }

    /// Returns to the queue whatever the outstanding pull still brings (after a cancel).
    /// (A handler source naks them itself, the consumer being stopped: the task keeps its
    /// subscription until the pull ends.)
    fn drain(mut self) {
        if self.outstanding() == 0 {
            return;
        }
        tokio::spawn(async move {
            // Until the pull ended (its status, or all it could bring came).
            loop {
                match self.next().await {
                    Pulled::Message(msg) => drop(msg.nak().await),
                    Pulled::Handed => {}
                    _ => return,
                }
                if self.outstanding() == 0 {
                    return;
                }
            }
        });
    }
}

impl LoopArgs {
    /// Waits until either window has room (a settled delivery, a `basic.qos`) or the
    /// consumer is stopped (or its stream dropped). Messages a pull brings late wait in its subscription meanwhile,
    /// as they should: the window is full.
    async fn wait_for_room(&self, stopped: Pin<&mut Notified<'_>>) {
        // Registered before the check, so a wake-up in between is not lost.
        let shared = self.channel.window.notified();
        let own = self.own.settled.notified();
        tokio::pin!(shared, own);
        shared.as_mut().enable();
        own.as_mut().enable();
        if self.room() > 0 {
            return;
        }
        tokio::select! {
            _ = shared => {}
            _ = own => {}
            _ = stopped => {}
            _ = self.tx.closed() => {}
        }
    }
}

/// The pull loop of one consumer.
pub(crate) async fn pull_loop(mut a: LoopArgs) {
    let mut puller: Option<(jetstream::Consumer, Box<Pulls>)> = None;
    // A design-D queue's checkpoint, against a consumer reset by a server restart.
    let mut guard: Option<Guard> = None;
    loop {
        // Registered before the check, so a stop in between is not lost.
        let stopped = a.stop.notify.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        // A dropped stream ends the loop too: pulling on would only take messages from the
        // queue's other consumers and give them back flagged redelivered, again and again.
        if a.stop.is_stopped() || a.tx.is_closed() {
            break;
        }
        let Some((_, pulls)) = &mut puller else {
            // Not resolved yet, or the queue's storage changed (rebound, deleted).
            if a.channel.conn.store.read(|t| t.queue(&a.queue).is_none()) {
                return;
            }
            let resolved = match a.channel.puller(&a.queue).await {
                Ok(Some(p)) => {
                    guard = Guard::new(&a.channel.conn.checkpoints, &a.queue, &p);
                    // Without a checkpoint guard (B queues), an ack-mode consumer's
                    // messages are handed over on the connection's read task.
                    let fast = (guard.is_none() && !a.no_ack).then(|| a.handed());
                    Pulls::open(&a.channel.conn, &p, fast)
                        .await
                        .map(|pulls| (p, Box::new(pulls)))
                }
                _ => None,
            };
            if resolved.is_none() {
                tokio::select! {
                    _ = tokio::time::sleep(SHORT_PULL) => {}
                    _ = &mut stopped => {}
                }
            }
            puller = resolved;
            continue;
        };
        let room = a.room();
        if room == 0 {
            a.wait_for_room(stopped).await;
            continue;
        }
        if pulls.outstanding() == 0 {
            if !pulls.request(room.min(MAX_BATCH)).await {
                puller = None;
                tokio::time::sleep(SHORT_PULL).await;
                continue;
            }
            if let Some(started) = a.started.take() {
                let _ = pulls.client.flush().await;
                let _ = started.send(());
            }
        }
        tokio::select! {
            pulled = pulls.next() => match pulled {
                Pulled::Message(msg) => {
                    let seen = match guard.as_mut() {
                        Some(g) => g.check(&a.channel.conn, &msg).await,
                        None => Some(false),
                    };
                    if let Some(redelivered) = seen {
                        a.hand_over(msg, redelivered).await;
                    }
                }
                Pulled::Ended | Pulled::Handed => {}
                Pulled::Gone => puller = None,
                // Resolve the consumer again after a pause: it may be offline with its
                // server (a design-D consumer is then re-created from its checkpoint).
                Pulled::Failed => {
                    puller = None;
                    tokio::time::sleep(SHORT_PULL).await;
                }
            },
            _ = &mut stopped => {}
            _ = a.tx.closed() => {}
        }
    }
    if let Some((p, pulls)) = puller {
        let pinned = pulls.pinned.as_ref().is_some_and(|pin| pin.id.is_some());
        pulls.drain();
        // A single active consumer hands over at once (the next pull of another consumer
        // gets the pin) instead of after the priority timeout.
        if pinned {
            let _ = p.unpin(SAC_GROUP).await;
        }
    }
}
