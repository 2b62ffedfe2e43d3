//! The pull loop behind each AMQP consumer: it asks the queue's JetStream consumer for what
//! the prefetch window allows and hands each message over as it arrives.
//!
//! One inbox subscription lives as long as the loop, and one pull request at a time is
//! outstanding, sized to the window's room; a message that arrives after its pull timed out
//! on our side (a loaded server) is still delivered, never left unacknowledged until the
//! consumer's `ack_wait`. A cancel ends the loop at once; what the last pull still brings
//! is returned to the queue (nak) by a task until that pull ends.

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
    pub(crate) queue: String,
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
        // Built before the message moves into the channel's unacked set (no clone of it,
        // headers included); the tag is set once known.
        let mut d = delivery(&self.channel, &self.queue, &msg, 0);
        let tag = if self.no_ack {
            let _ = msg.ack().await;
            self.channel.consume_state().unacked.next_tag()
        } else {
            let pending = Pending::Stored(Stored {
                msg,
                queue: self.queue.clone(),
                _slot: Some(Slot::new(&self.own)),
            });
            self.channel.consume_state().unacked.deliver(pending)
        };
        d.delivery_tag = tag;
        d.redelivered |= redelivered;
        d.acker = Acker::for_channel(&self.channel, tag);
        let _ = self.tx.send(Ok(d));
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

/// The loop's pull requests on one JetStream consumer, all answered on one subscription
/// (`<inbox>.*`), each on its own reply subject (`<inbox>.<n>`), so the end-of-pull status
/// of a pull we already gave up on is not taken for the end of the current one.
struct Pulls {
    sub: nats_client::Subscriber,
    inbox: String,
    /// The current pull's reply subject.
    reply: String,
    /// Pulls sent so far.
    sent: u64,
    subject: String,
    client: nats_client::Client,
    ack_timeout: Duration,
    /// Messages the current pull may still bring.
    outstanding: usize,
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
    /// The consumer or its stream is gone: look it up again.
    Gone,
    /// Anything else: pause and look it up again.
    Failed,
}

impl Pulls {
    async fn open(conn: &ConnectionInner, p: &jetstream::Consumer) -> Option<Pulls> {
        let pinned = (!p.cached_info().config.priority_groups.is_empty()).then(SacPin::default);
        let client = conn.client.clone();
        let inbox = client.new_inbox();
        let sub = client.subscribe(format!("{inbox}.*")).await.ok()?;
        Some(Pulls {
            sub,
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
            ack_timeout: conn.js.timeout(),
            outstanding: 0,
            deadline: Instant::now(),
            pinned,
        })
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
        let sent = self
            .client
            .publish_with_reply(&self.subject, &self.reply, request)
            .await;
        self.outstanding = batch;
        self.deadline = Instant::now() + expires + PULL_GRACE;
        sent.is_ok()
    }

    /// The next message or end of the current pull; pending forever when none is
    /// outstanding (late messages of an earlier pull still come through).
    async fn next(&mut self) -> Pulled {
        loop {
            let wake = match self.outstanding {
                0 => Instant::now() + Duration::from_secs(3600),
                _ => self.deadline,
            };
            let msg = match tokio::time::timeout_at(wake, self.sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Pulled::Failed,
                Err(_) if self.outstanding == 0 => continue,
                Err(_) => {
                    self.outstanding = 0;
                    return Pulled::Ended;
                }
            };
            // A message keeps its stream subject, so it cannot tell which pull brought it
            // (one of an earlier pull is rare: it counts against the current one); a status
            // comes on its pull's reply subject.
            let Some(status) = msg.status else {
                self.outstanding = self.outstanding.saturating_sub(1);
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
                    self.outstanding = 0;
                    return Pulled::Ended;
                }
                // No messages, expired, or the pull ended (batch completed, max waiting...).
                404 | 408 | 409 if !deleted => {
                    self.outstanding = 0;
                    return Pulled::Ended;
                }
                // Deleted, or no responders: the consumer is not there.
                409 | 503 => {
                    self.outstanding = 0;
                    return Pulled::Gone;
                }
                _ => {
                    self.outstanding = 0;
                    return Pulled::Failed;
                }
            }
        }
    }

    /// Returns to the queue whatever the outstanding pull still brings (after a cancel).
    fn drain(mut self) {
        if self.outstanding == 0 {
            return;
        }
        tokio::spawn(async move {
            while let Pulled::Message(msg) = self.next().await {
                let _ = msg.nak().await;
            }
        });
    }
}

impl LoopArgs {
    /// Waits until either window has room (a settled delivery, a `basic.qos`) or the
    /// consumer is stopped. Messages a pull brings late wait in its subscription meanwhile,
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
        if a.stop.is_stopped() {
            break;
        }
        let Some((_, pulls)) = &mut puller else {
            // Not resolved yet, or the queue's storage changed (rebound, deleted).
            if a.channel.conn.store.read(|t| t.queue(&a.queue).is_none()) {
                return;
            }
            let resolved = match a.channel.puller(&a.queue).await {
                Ok(Some(p)) => Pulls::open(&a.channel.conn, &p)
                    .await
                    .map(|pulls| (p, Box::new(pulls))),
                _ => None,
            };
            guard = resolved
                .as_ref()
                .and_then(|(p, _)| Guard::new(&a.channel.conn.checkpoints, &a.queue, p));
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
        if pulls.outstanding == 0 {
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
                Pulled::Ended => {}
                Pulled::Gone => puller = None,
                // Resolve the consumer again after a pause: it may be offline with its
                // server (a design-D consumer is then re-created from its checkpoint).
                Pulled::Failed => {
                    puller = None;
                    tokio::time::sleep(SHORT_PULL).await;
                }
            },
            _ = &mut stopped => {}
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
