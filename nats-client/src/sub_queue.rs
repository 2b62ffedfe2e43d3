//! A subscription's queue and its place in the session: the bounded per-subscription queue the
//! connection task pushes into and the [`Subscriber`](crate::Subscriber) drains in batches (one
//! lock per batch, not per message), where a subscription's messages go ([`Target`]), and what
//! the session keeps of each subscription ([`SubEntry`]).
//!
//! A queue over its message or byte limit drops the new message, counts it, and reports ONE
//! slow-consumer event per episode; the episode ends when a message fits again (as nats.go).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};

use crate::lock;
use crate::message::Message;
use crate::server_error::ServerError;

/// Errors kept per subscription until [`Subscriber::take_errors`](crate::Subscriber::take_errors) reads them; beyond this,
/// the oldest give way (each is also an event and counted in statistics).
const MAX_KEPT_ERRORS: usize = 64;

/// Something a subscription could not deliver, or why it ended early. Read them with
/// [`Subscriber::take_errors`](crate::Subscriber::take_errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// A well-framed message for this subscription cannot be a [`Message`]: its subject or
    /// reply subject is not UTF-8, or its header block does not parse. Its bytes are here as
    /// received (so a JetStream message can still be acknowledged through its reply subject);
    /// the messages after it were delivered as usual.
    #[error("undeliverable message: {}", .0.error)]
    Undeliverable(Box<nats_proto::BadMsg>),
    /// The server refused the subscription (a permissions violation): the stream ends.
    #[error("the server refused the subscription: {0}")]
    Refused(ServerError),
}

/// What happened to a pushed message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Dropped; `first` is true for the first drop of a slow-consumer episode.
    Dropped {
        first: bool,
    },
}

/// A subscription's queue, shared by the connection task and the [`Subscriber`](crate::Subscriber).
pub(crate) struct SubQueue {
    inner: Mutex<QueueInner>,
    max_msgs: usize,
    max_bytes: usize,
    /// Messages and bytes the subscriber has taken into its local batch but not yet handed
    /// out: they still count against the limits.
    taken_msgs: AtomicUsize,
    taken_bytes: AtomicUsize,
}

#[derive(Default)]
struct QueueInner {
    msgs: VecDeque<Message>,
    bytes: usize,
    waker: Option<Waker>,
    closed: bool,
    slow: bool,
    dropped: u64,
    errors: VecDeque<SubscriptionError>,
}

impl SubQueue {
    pub fn new(max_msgs: usize, max_bytes: usize) -> Arc<Self> {
        Arc::new(SubQueue {
            inner: Mutex::default(),
            max_msgs,
            max_bytes,
            taken_msgs: AtomicUsize::new(0),
            taken_bytes: AtomicUsize::new(0),
        })
    }

    pub fn push(&self, msg: Message) -> Pushed {
        let mut q = lock(&self.inner);
        if q.closed {
            return Pushed::Queued;
        }
        let msgs = q.msgs.len() + self.taken_msgs.load(Relaxed);
        let bytes = q.bytes + self.taken_bytes.load(Relaxed);
        if msgs >= self.max_msgs || bytes + msg.length > self.max_bytes {
            q.dropped += 1;
            let first = !q.slow;
            q.slow = true;
            return Pushed::Dropped { first };
        }
        q.slow = false;
        q.bytes += msg.length;
        q.msgs.push_back(msg);
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        Pushed::Queued
    }

    /// No more messages will come; the subscriber still gets what is queued.
    pub fn close(&self) {
        let waker = {
            let mut q = lock(&self.inner);
            q.closed = true;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Records an error for the subscriber; with `close`, the stream also ends (after what is
    /// queued).
    pub fn push_error(&self, error: SubscriptionError, close: bool) {
        let waker = {
            let mut q = lock(&self.inner);
            if q.errors.len() >= MAX_KEPT_ERRORS {
                q.errors.pop_front();
            }
            q.errors.push_back(error);
            q.closed |= close;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn take_errors(&self) -> Vec<SubscriptionError> {
        lock(&self.inner).errors.drain(..).collect()
    }

    pub fn is_closed(&self) -> bool {
        lock(&self.inner).closed
    }

    pub(crate) fn dropped(&self) -> u64 {
        lock(&self.inner).dropped
    }

    pub(crate) fn pending(&self) -> (usize, usize) {
        let q = lock(&self.inner);
        (
            q.msgs.len() + self.taken_msgs.load(Relaxed),
            q.bytes + self.taken_bytes.load(Relaxed),
        )
    }

    /// The subscriber handed out one message of its local batch.
    pub(crate) fn handed_out(&self, msg: &Message) {
        self.taken_msgs.fetch_sub(1, Relaxed);
        self.taken_bytes.fetch_sub(msg.length, Relaxed);
    }

    /// Moves every queued message into `into`; `Ready(false)` when closed and empty.
    pub(crate) fn poll_take(
        &self,
        into: &mut VecDeque<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<bool> {
        let mut q = lock(&self.inner);
        if !q.msgs.is_empty() {
            // Counted as taken before they leave the lock, so limits never see a gap.
            self.taken_msgs.fetch_add(q.msgs.len(), Relaxed);
            self.taken_bytes.fetch_add(q.bytes, Relaxed);
            std::mem::swap(&mut q.msgs, into);
            q.bytes = 0;
            return Poll::Ready(true);
        }
        if q.closed {
            return Poll::Ready(false);
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Where the connection task delivers a subscription's messages.
pub(crate) enum Target {
    Queue(Arc<SubQueue>),
    /// The client's wildcard reply inbox: routed to waiting requests.
    Requests,
    /// Called by the connection task for every message (see
    /// [`Client::subscribe_with_handler`](crate::Client::subscribe_with_handler)).
    Handler(Handler),
}

/// A message handler of a [`Target::Handler`] subscription.
pub(crate) type Handler = Arc<dyn Fn(Message) + Send + Sync>;

/// One live subscription, as the connection task knows it (also what is re-sent on
/// reconnect).
pub(crate) struct SubEntry {
    pub subject: String,
    pub queue_group: Option<String>,
    /// Unsubscribe after this many messages in total.
    pub max: Option<u64>,
    pub delivered: u64,
    pub target: Target,
}

impl SubEntry {
    /// Messages still allowed before auto-unsubscribe, if limited.
    pub fn remaining(&self) -> Option<u64> {
        self.max.map(|m| m.saturating_sub(self.delivered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(len: usize) -> Message {
        Message {
            subject: "s".into(),
            reply: None,
            payload: Bytes::from(vec![0; len]),
            headers: None,
            status: None,
            description: None,
            length: len,
        }
    }

    #[test]
    fn one_slow_consumer_report_per_episode() {
        let q = SubQueue::new(2, 1000);
        assert_eq!(q.push(msg(1)), Pushed::Queued);
        assert_eq!(q.push(msg(1)), Pushed::Queued);
        assert_eq!(q.push(msg(1)), Pushed::Dropped { first: true });
        assert_eq!(q.push(msg(1)), Pushed::Dropped { first: false });
        let mut local = VecDeque::new();
        let waker = futures_util_noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(q.poll_take(&mut local, &mut cx), Poll::Ready(true));
        // Taken into the local batch but not handed out: still counted.
        assert_eq!(q.push(msg(1)), Pushed::Dropped { first: false });
        for m in local.drain(..) {
            q.handed_out(&m);
        }
        assert_eq!(q.push(msg(1)), Pushed::Queued);
        assert_eq!(q.push(msg(1)), Pushed::Queued);
        assert_eq!(q.push(msg(1)), Pushed::Dropped { first: true });
        assert_eq!(q.dropped(), 4);
    }

    #[test]
    fn byte_limit() {
        let q = SubQueue::new(100, 10);
        assert_eq!(q.push(msg(6)), Pushed::Queued);
        assert_eq!(q.push(msg(6)), Pushed::Dropped { first: true });
        assert_eq!(q.push(msg(4)), Pushed::Queued);
    }

    fn futures_util_noop_waker() -> Waker {
        Waker::noop().clone()
    }
}
