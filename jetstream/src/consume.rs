//! The continuous pull: [`Consumer::consume`] / [`Consumer::messages`] keep a pull request
//! open, top it up as messages are taken, watch idle heartbeats, and pull afresh after a
//! reconnect, a missed heartbeat or a leader change.

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use nats_client::{Event, Message, Subscriber};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use crate::consumer::Consumer;
use crate::error::JetStreamError;
use crate::message::JsMessage;
use crate::priority::{PriorityGroup, repin_interval};
use crate::pull::{EXPIRY_GRACE, PullRequest, Status, classify};

/// Options of [`Consumer::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Messages asked for per pull request; a new pull tops up when fewer than half are left.
    pub max_messages: usize,
    /// Bytes asked for per pull request (0: no limit).
    pub max_bytes: usize,
    /// Lifetime of each pull request.
    pub expires: Duration,
    /// Idle heartbeat interval; two missed are reported as
    /// [`JetStreamError::HeartbeatMissed`] and followed by a fresh pull. Zero disables them.
    pub idle_heartbeat: Duration,
    /// The priority group to pull in (server 2.11+); `None` on a consumer with priority
    /// groups pulls in its first group. On a [`PriorityPolicy::PinnedClient`] consumer the
    /// stream keeps the pin it is given (each pull carries it and pulls are kept shorter than
    /// a third of `priority_timeout`, so the pin does not lapse while this stream lives), and
    /// when the server says the pin moved (`423`) it drops it and pulls again as a candidate.
    /// A standby's pulls simply expire (`408`) until the pin comes to it.
    ///
    /// [`PriorityPolicy::PinnedClient`]: crate::PriorityPolicy::PinnedClient
    pub priority_group: Option<PriorityGroup>,
    /// Pull afresh when the consumer gets a new leader (on the
    /// `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.<stream>.<consumer>` advisory), so a
    /// consumer whose leader died does not wait for missed heartbeats (up to twice
    /// `idle_heartbeat`) to notice that its pull went with it. Only replicated consumers
    /// subscribe (one subscription per stream of messages); needs permission to subscribe to
    /// that subject. Default true.
    pub repull_on_leader_change: bool,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            max_messages: 500,
            max_bytes: 0,
            expires: Duration::from_secs(30),
            idle_heartbeat: Duration::from_secs(15),
            priority_group: None,
            repull_on_leader_change: true,
        }
    }
}

impl Consumer {
    /// A continuous stream of messages with the default [`ConsumeOptions`].
    pub async fn messages(&self) -> Result<Messages, JetStreamError> {
        self.consume(ConsumeOptions::default()).await
    }

    /// A continuous stream of messages: pulls in batches, tops up as messages are taken,
    /// watches idle heartbeats and pulls afresh after a reconnect or a missed heartbeat.
    ///
    /// `Err` items report trouble (missed heartbeats, `409` refusals such as
    /// `Exceeded MaxWaiting`) and the stream goes on; it ends after
    /// [`JetStreamError::ConsumerDeleted`] or another fatal status, or when the client closes.
    ///
    /// ```no_run
    /// # async fn demo(consumer: jetstream::Consumer) -> Result<(), jetstream::JetStreamError> {
    /// use futures::StreamExt;
    /// let mut messages = consumer.messages().await?;
    /// while let Some(item) = messages.next().await {
    ///     match item {
    ///         Ok(msg) => msg.ack().await?,
    ///         Err(e) => eprintln!("consumer trouble: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn consume(&self, options: ConsumeOptions) -> Result<Messages, JetStreamError> {
        let client = &self.context.client;
        let inbox = client.new_inbox();
        let sub = client.subscribe(inbox.clone()).await?;
        let events = client.events();
        // A pinned client must pull again inside `priority_timeout` to keep its pin; a pull
        // goes out at the latest when the previous one expires.
        let repin = repin_interval(&self.cached_info().config);
        let expires = match repin {
            Some(every) => options.expires.min(every),
            None => options.expires,
        };
        let replicated = self
            .cached_info()
            .cluster
            .as_ref()
            .is_some_and(|c| !c.replicas.is_empty());
        let leader_sub = if options.repull_on_leader_change && replicated {
            Some(
                client
                    .subscribe(format!(
                        "$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.{}.{}",
                        self.stream, self.name
                    ))
                    .await?,
            )
        } else {
            None
        };
        let mut puller = Puller {
            consumer: self.clone(),
            leader_sub,
            next_subject: self.next_subject(),
            inbox,
            sub,
            events: Some(events),
            options: ConsumeOptions {
                max_messages: options.max_messages.max(1),
                // The server refuses a heartbeat longer than half the expiry.
                idle_heartbeat: options.idle_heartbeat.min(expires / 2),
                expires,
                ..options
            },
            pending_msgs: 0,
            pending_bytes: 0,
            watchdog: Instant::now(),
            pull_after: None,
            repin,
            repin_at: None,
            overlap: None,
            done: false,
        };
        // The first pull goes out now, so messages flow while the caller gets ready.
        puller.pull().await?;
        let keepalive = repin.map(|every| {
            KeepPin(tokio::spawn(keep_pin(
                self.clone(),
                puller.options.priority_group.clone(),
                puller.next_subject.clone(),
                puller.inbox.clone(),
                every,
            )))
        });
        let stream = futures_util::stream::unfold(puller, |mut p| async move {
            let item = p.next().await?;
            Some((item, p))
        });
        Ok(Messages {
            inner: Box::pin(stream),
            _keepalive: keepalive,
        })
    }
}

/// The stream returned by [`Consumer::consume`] and [`Consumer::messages`]. Dropping it stops
/// pulling (the server lets the open pull request expire).
pub struct Messages {
    inner: Pin<Box<dyn Stream<Item = Result<JsMessage, JetStreamError>> + Send>>,
    _keepalive: Option<KeepPin>,
}

/// Stops the pin keeper when the [`Messages`] stream is dropped.
struct KeepPin(tokio::task::JoinHandle<()>);

impl Drop for KeepPin {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps the pin of a pinned-client consumer while the application is busy and does not poll
/// [`Messages`]: the server renews a pin only when a pull carrying it arrives, so this sends
/// a one-message pull with the pin every `every`. What it yields waits in the inbox for the
/// next poll, as any prefetched message does.
async fn keep_pin(
    consumer: Consumer,
    group: Option<PriorityGroup>,
    subject: String,
    inbox: String,
    every: Duration,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(priority) = consumer
            .pull_priority(group.as_ref())
            .filter(|p| p.id.is_some())
        else {
            continue;
        };
        let request = PullRequest {
            batch: 1,
            expires: every,
            max_bytes: 0,
            no_wait: false,
            idle_heartbeat: Duration::ZERO,
            priority: Some(priority),
        };
        if let Err(e) = consumer.send_pull(&subject, &inbox, &request).await {
            tracing::debug!(error = %e, "pin keep-alive pull failed");
        }
    }
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl Stream for Messages {
    type Item = Result<JsMessage, JetStreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The state behind [`Messages`].
struct Puller {
    consumer: Consumer,
    /// The consumer's leader-elected advisories (replicated consumers only).
    leader_sub: Option<Subscriber>,
    next_subject: String,
    inbox: String,
    sub: Subscriber,
    /// Connection events; `None` once the channel is closed.
    events: Option<broadcast::Receiver<Event>>,
    options: ConsumeOptions,
    /// Messages (and bytes) asked for and not yet received.
    pending_msgs: usize,
    pending_bytes: usize,
    /// Heartbeats on: when two intervals will have passed without traffic. Off: when the
    /// newest pull request will have expired.
    watchdog: Instant,
    /// Do not pull before this (after a refusal, so a refusing server is not hammered).
    pull_after: Option<Instant>,
    /// Pinned-client consumers: pull at least this often, so the pin does not lapse
    /// (the server renews it only when a pull carrying it arrives).
    repin: Option<Duration>,
    /// When the next such pull is due.
    repin_at: Option<Instant>,
    /// Open while the client moves off a lame-duck server (see [`Overlap`]).
    overlap: Option<Overlap>,
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

impl Puller {
    fn heartbeat(&self) -> Duration {
        self.options.idle_heartbeat
    }

    fn reset(&mut self) {
        self.pending_msgs = 0;
        self.pending_bytes = 0;
    }

    fn feed_watchdog(&mut self) {
        let hb = self.heartbeat();
        if !hb.is_zero() {
            self.watchdog = Instant::now() + 2 * hb;
        }
    }

    fn wants_pull(&self) -> bool {
        let o = &self.options;
        let now = Instant::now();
        let below_msgs = self.pending_msgs <= o.max_messages / 2;
        let below_bytes = o.max_bytes > 0 && self.pending_bytes <= o.max_bytes / 2;
        let repin_due = self.repin_at.is_some_and(|t| now >= t);
        (below_msgs || below_bytes || repin_due) && self.pull_after.is_none_or(|t| now >= t)
    }

    async fn pull(&mut self) -> Result<(), JetStreamError> {
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
        self.consumer
            .send_pull(&self.next_subject, &self.inbox, &request)
            .await?;
        self.pending_msgs += batch;
        self.pending_bytes += max_bytes;
        self.pull_after = None;
        self.repin_at = self.repin.map(|every| Instant::now() + every);
        if self.heartbeat().is_zero() {
            self.watchdog = Instant::now() + o.expires + EXPIRY_GRACE;
        } else {
            self.feed_watchdog();
        }
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
    fn handle(&mut self, msg: Message) -> Option<Result<JsMessage, JetStreamError>> {
        self.feed_watchdog();
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

    async fn next(&mut self) -> Option<Result<JsMessage, JetStreamError>> {
        loop {
            if self.done {
                return None;
            }
            if self.wants_pull()
                && let Err(e) = self.pull().await
            {
                if matches!(
                    e,
                    JetStreamError::Publish(nats_client::PublishError::Closed)
                ) {
                    self.done = true;
                }
                self.pull_after = Some(Instant::now() + self.pause());
                return Some(Err(e));
            }
            let wake = [self.pull_after, self.repin_at]
                .into_iter()
                .flatten()
                .fold(self.watchdog, Instant::min);
            tokio::select! {
                biased;
                msg = self.sub.next() => match msg {
                    Some(msg) => {
                        if let Some(item) = self.handle(msg) {
                            return Some(item);
                        }
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                elected = recv_sub(&mut self.leader_sub) => match elected {
                    Some(_) => {
                        // The new leader knows nothing of pulls made to the old one.
                        tracing::debug!(consumer = %self.consumer.name, "consumer leader elected; pulling afresh");
                        self.reset();
                        self.pull_after = None;
                        self.feed_watchdog();
                    }
                    None => self.leader_sub = None,
                },
                event = recv_event(&mut self.events) => match event {
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
                },
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= self.watchdog {
                        self.reset();
                        let hb = self.heartbeat();
                        if !hb.is_zero() {
                            self.feed_watchdog();
                            return Some(Err(JetStreamError::HeartbeatMissed {
                                stream: self.consumer.stream.clone(),
                                consumer: self.consumer.name.clone(),
                                interval: hb,
                            }));
                        }
                        // Without heartbeats, the request just ran out: pull again.
                        self.watchdog = now + self.options.expires + EXPIRY_GRACE;
                    }
                }
            }
        }
    }
}

async fn recv_sub(sub: &mut Option<Subscriber>) -> Option<Message> {
    match sub {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

async fn recv_event(events: &mut Option<broadcast::Receiver<Event>>) -> Result<Event, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
