//! The asynchronous publisher: [`Context::publish_async`] sends a message and returns at once
//! with a [`PublishAckFuture`]; at most a window of acks is outstanding.
//!
//! Why not the client's `request()` per message: it sends and waits in one call, so pipelining
//! would need a task per message. Here every ack comes back on one wildcard subscription
//! (`<inbox>.<id>.<token>`), which the connection task routes itself (a handler subscription)
//! to a map of waiting oneshots, so a publish costs an encode into the client's write buffer,
//! a map insert and a oneshot. The window is a semaphore whose permit goes back when the ack
//! *arrives* (not when the future is awaited), so collecting futures and awaiting them later
//! cannot deadlock. Timeouts are checked by an expiry task on a coarse tick, so no timer is
//! armed per message.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use nats_client::{Client, HandlerSubscription, HeaderMap, Message, RequestError};
use tokio::sync::{OnceCell, Semaphore, oneshot};

use crate::context::Context;
use crate::error::JetStreamError;
use crate::publish::{MSG_ID, PubAck, PublishOptions, Retry, after_failure, decode_pub_ack};

/// How often outstanding acks are checked for expiry.
const TICK: Duration = Duration::from_millis(20);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tokens are sequential: a multiplicative hash spreads them over the table's control bits.
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The publish window of a [`Context`] (shared by its clones): created on first use.
pub(crate) struct AckWindow {
    capacity: usize,
    mux: OnceCell<Arc<AckMux>>,
}

impl AckWindow {
    pub(crate) fn new(capacity: usize) -> Arc<AckWindow> {
        Arc::new(AckWindow {
            capacity,
            mux: OnceCell::new(),
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    async fn mux(&self, client: &Client) -> Result<&Arc<AckMux>, JetStreamError> {
        self.mux
            .get_or_try_init(|| AckMux::start(client.clone(), self.capacity))
            .await
    }
}

struct Waiting {
    tx: oneshot::Sender<Message>,
    /// The tick after which the ack is given up.
    expires: u64,
}

/// Outstanding acks and the permits of the window: shared by the mux, the handler that the
/// connection task calls with each ack, and the expiry task.
struct Acks {
    /// `<inbox>.<id>.`; a reply subject is this plus the token.
    prefix: String,
    next: AtomicU64,
    /// Ticks of [`TICK`] since the mux started.
    now: AtomicU64,
    waiting: Mutex<HashMap<u64, Waiting, BuildHasherDefault<TokenHasher>>>,
    permits: Semaphore,
}

impl Acks {
    /// Registers a token; the caller holds a permit already.
    fn register(&self, timeout: Duration) -> (u64, String, oneshot::Receiver<Message>) {
        let token = self.next.fetch_add(1, Relaxed);
        let ticks = timeout.as_millis().div_ceil(TICK.as_millis()).max(1);
        let expires = self.now.load(Relaxed) + u64::try_from(ticks).unwrap_or(u64::MAX / 2);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(token, Waiting { tx, expires });
        let mut reply = String::with_capacity(self.prefix.len() + 20);
        reply.push_str(&self.prefix);
        reply.push_str(itoa::Buffer::new().format(token));
        (token, reply, rx)
    }

    /// Forgets a token; whoever removes an entry gives its permit back.
    fn cancel(&self, token: u64) {
        if lock(&self.waiting).remove(&token).is_some() {
            self.permits.add_permits(1);
        }
    }

    /// Called on the connection task with every message on the ack inbox.
    fn deliver(&self, msg: Message) {
        let token = msg
            .subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|t| t.parse::<u64>().ok());
        let Some(entry) = token.and_then(|t| lock(&self.waiting).remove(&t)) else {
            return;
        };
        self.permits.add_permits(1);
        let _ = entry.tx.send(msg);
    }

    /// Drops the senders of expired entries: their futures see a timeout.
    fn tick(&self) {
        let now = self.now.fetch_add(1, Relaxed) + 1;
        let mut freed = 0;
        lock(&self.waiting).retain(|_, w| {
            let keep = w.expires > now && !w.tx.is_closed();
            freed += usize::from(!keep);
            keep
        });
        if freed > 0 {
            self.permits.add_permits(freed);
        }
    }

    fn fail_all(&self) {
        let freed = {
            let mut w = lock(&self.waiting);
            let n = w.len();
            w.clear();
            n
        };
        self.permits.add_permits(freed);
    }

    async fn acquire(&self) -> Result<(), JetStreamError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| JetStreamError::Request(RequestError::Closed))?
            .forget();
        Ok(())
    }
}

/// The ack inbox of a [`Context`]: its subscription, its acks, and the expiry task's off
/// switch. Acks are routed by the connection task itself (a handler subscription), so an
/// ack frees its window slot and wakes its future without a task switch in between.
struct AckMux {
    client: Client,
    acks: Arc<Acks>,
    /// Dropped with the mux: unsubscribes the inbox.
    _sub: HandlerSubscription,
    /// Dropped with the mux: ends the expiry task.
    _stop: oneshot::Sender<()>,
}

impl AckMux {
    async fn start(client: Client, capacity: usize) -> Result<Arc<AckMux>, JetStreamError> {
        let acks = Arc::new(Acks {
            prefix: format!("{}.", client.new_inbox()),
            next: AtomicU64::new(1),
            now: AtomicU64::new(0),
            waiting: Mutex::default(),
            permits: Semaphore::new(capacity),
        });
        let routed = acks.clone();
        let sub = client.subscribe_with_handler(format!("{}*", acks.prefix), move |msg| {
            routed.deliver(msg);
        })?;
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(expire(acks.clone(), client.clone(), stopped));
        Ok(Arc::new(AckMux {
            client,
            acks,
            _sub: sub,
            _stop: stop,
        }))
    }

    fn cancel(&self, token: u64) {
        self.acks.cancel(token);
    }

    /// Takes a permit, registers, and sends; on a send failure nothing stays behind.
    async fn send(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(u64, oneshot::Receiver<Message>), JetStreamError> {
        self.acks.acquire().await?;
        let (token, reply, rx) = self.acks.register(timeout);
        if let Err(e) = self
            .client
            .publish_message(subject, Some(&reply), headers, payload)
            .await
        {
            self.acks.cancel(token);
            return Err(e.into());
        }
        Ok((token, rx))
    }
}

/// Expires overdue acks on a coarse tick until the mux is gone; fails every waiting ack once
/// the client is closed.
async fn expire(acks: Arc<Acks>, client: Client, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if client.connection_state() == nats_client::State::Closed {
                    break;
                }
                acks.tick();
            }
            _ = &mut stop => break,
        }
    }
    acks.fail_all();
}

/// What a [`PublishAckFuture`] needs to send its message again.
struct Resend {
    subject: String,
    headers: Option<HeaderMap>,
    payload: Bytes,
    has_msg_id: bool,
    attempt: u32,
    attempts: u32,
    timeout: Duration,
    wait: Duration,
}

type Sending =
    Pin<Box<dyn Future<Output = Result<(u64, oneshot::Receiver<Message>), JetStreamError>> + Send>>;

enum State {
    Waiting {
        token: u64,
        rx: oneshot::Receiver<Message>,
    },
    Resending(Sending),
    Done,
}

/// The ack of a message sent with [`Context::publish_async`]: await it for the [`PubAck`].
/// Dropping it gives up on the ack (the message was sent regardless).
#[must_use = "the ack future tells whether the message was stored"]
pub struct PublishAckFuture {
    mux: Arc<AckMux>,
    state: State,
    resend: Resend,
}

impl std::fmt::Debug for PublishAckFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishAckFuture")
            .field("subject", &self.resend.subject)
            .field("attempt", &self.resend.attempt)
            .finish_non_exhaustive()
    }
}

impl Drop for PublishAckFuture {
    fn drop(&mut self) {
        if let State::Waiting { token, .. } = self.state {
            self.mux.cancel(token);
        }
    }
}

impl Future for PublishAckFuture {
    type Output = Result<PubAck, JetStreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Waiting { rx, .. } => {
                    let failure = match ready!(Pin::new(rx).poll(cx)) {
                        Ok(reply)
                            if reply.status == Some(nats_client::StatusCode::NO_RESPONDERS) =>
                        {
                            RequestError::NoResponders {
                                subject: this.resend.subject.clone(),
                            }
                        }
                        Ok(reply) => {
                            this.state = State::Done;
                            return Poll::Ready(decode_pub_ack(&this.resend.subject, &reply));
                        }
                        Err(_)
                            if this.mux.client.connection_state() == nats_client::State::Closed =>
                        {
                            RequestError::Closed
                        }
                        Err(_) => RequestError::TimedOut {
                            subject: this.resend.subject.clone(),
                            timeout: this.resend.timeout,
                        },
                    };
                    // The entry is gone (delivered or expired): nothing to cancel on drop.
                    this.state = State::Done;
                    let r = &this.resend;
                    match after_failure(
                        failure,
                        &r.subject,
                        r.has_msg_id,
                        r.attempt,
                        r.attempts,
                        r.timeout,
                        r.wait,
                    ) {
                        Retry::Fail(e) => return Poll::Ready(Err(e)),
                        Retry::After(pause) => {
                            this.resend.attempt += 1;
                            this.state =
                                State::Resending(resend(this.mux.clone(), &this.resend, pause));
                        }
                    }
                }
                State::Resending(sending) => match ready!(sending.as_mut().poll(cx)) {
                    Ok((token, rx)) => this.state = State::Waiting { token, rx },
                    Err(e) => {
                        this.state = State::Done;
                        return Poll::Ready(Err(e));
                    }
                },
                State::Done => {
                    return Poll::Ready(Err(JetStreamError::Request(RequestError::Closed)));
                }
            }
        }
    }
}

fn resend(mux: Arc<AckMux>, r: &Resend, pause: Duration) -> Sending {
    let subject = r.subject.clone();
    let headers = r.headers.clone();
    let payload = r.payload.clone();
    let timeout = r.timeout;
    Box::pin(async move {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        mux.send(&subject, headers.as_ref(), &payload, timeout)
            .await
    })
}

impl Context {
    /// Sends a message and returns once it is in the client's write buffer, with a future
    /// for its ack. Waits while [`with_publish_window`](Context::with_publish_window) acks are
    /// outstanding. Use it to publish fast and check acks later.
    ///
    /// ```no_run
    /// # async fn demo(js: jetstream::Context) -> Result<(), jetstream::JetStreamError> {
    /// let mut acks = Vec::new();
    /// for i in 0..1000 {
    ///     acks.push(js.publish_async("events", format!("event {i}")).await?);
    /// }
    /// for ack in acks {
    ///     ack.await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn publish_async(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishAckFuture, JetStreamError> {
        self.publish_async_with(subject, payload, &PublishOptions::default())
            .await
    }

    /// [`publish_async`](Context::publish_async) with options (headers, dedup id,
    /// expectations, timeout, retries).
    pub async fn publish_async_with(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<PublishAckFuture, JetStreamError> {
        let payload = payload.into();
        let mux = self.window.mux(&self.client).await?.clone();
        let headers = options.build_headers();
        let resend = Resend {
            subject: subject.to_owned(),
            has_msg_id: headers.as_ref().is_some_and(|h| h.contains(MSG_ID)),
            headers,
            payload,
            attempt: 1,
            attempts: 1 + options
                .retry_attempts
                .unwrap_or(self.publish.retry_attempts),
            timeout: options.timeout.unwrap_or(self.publish.ack_timeout),
            wait: options.retry_wait.unwrap_or(self.publish.retry_wait),
        };
        let (token, rx) = mux
            .send(
                subject,
                resend.headers.as_ref(),
                &resend.payload,
                resend.timeout,
            )
            .await?;
        Ok(PublishAckFuture {
            mux,
            state: State::Waiting { token, rx },
            resend,
        })
    }

    /// Acks outstanding from [`publish_async`](Context::publish_async) right now.
    pub fn pending_acks(&self) -> usize {
        self.window
            .mux
            .get()
            .map_or(0, |m| lock(&m.acks.waiting).len())
    }
}
