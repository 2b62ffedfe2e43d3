//! The client's one reply inbox: a token registry behind one wildcard subscription
//! (`<inbox prefix>.<nuid>.*`).
//!
//! Every kind of request goes through it: [`Client::request`](crate::Client::request) and
//! [`Client::send_request`](crate::Client::send_request) (one reply), a
//! [`RequestWindow`](crate::RequestWindow) (one reply, a bounded number in flight, expiry
//! without a timer per request: what the JetStream publisher uses), and
//! [`Client::request_many`](crate::Client::request_many) (a stream of replies).
//!
//! The connection task routes a reply to its entry under one short lock, with no task switch in
//! between. An entry leaves the map when its request completes, expires, is dropped, or the
//! connection is lost: the map never keeps an abandoned request. A window slot (a semaphore
//! permit held by the entry) goes back the moment its entry leaves the map, so a caller that
//! collects reply futures and awaits them later cannot deadlock its own window.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::lock;
use crate::message::Message;

/// How often entries with a deadline are checked (the precision of a window's timeout).
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// Why an entry ended without (another) reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Its deadline passed.
    TimedOut,
    /// The connection was lost: the reply cannot come on the next one.
    Disconnected,
    /// The client closed.
    Closed,
    /// The server refused to let the client publish the request (a permissions violation).
    Refused,
}

/// What an entry's receiver gets.
pub(crate) type Outcome = Result<Message, Ended>;

enum Sink {
    /// One reply, then the entry is gone.
    One(oneshot::Sender<Outcome>),
    /// Any number of replies until the receiver cancels the token (or drops).
    Many(mpsc::UnboundedSender<Outcome>),
}

struct Entry {
    sink: Sink,
    /// A hash of the subject the request went to (see [`subject_hash`]).
    subject: u64,
    /// Milliseconds on the inbox's coarse clock after which the entry expires.
    expires: Option<u64>,
    /// A window slot, given back when the entry leaves the map.
    _permit: Option<OwnedSemaphorePermit>,
}

/// Tokens are sequential: a multiplicative hash spreads them over the table's control bits
/// (and costs far less than SipHash on every publish of a windowed publisher).
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

/// A registered entry: its token and the reply subject to send with the request.
pub(crate) struct Ticket {
    pub token: u64,
    pub reply: String,
}

pub(crate) struct Inbox {
    /// `<inbox prefix>.<nuid>.`; a reply subject is this plus the token.
    prefix: String,
    /// The sid of the wildcard subscription once it exists.
    sid: Mutex<Option<u64>>,
    /// `sid` is set: the lock-free check every request makes first.
    subscribed: AtomicBool,
    pending: Mutex<HashMap<u64, Entry, BuildHasherDefault<TokenHasher>>>,
    next: AtomicU64,
    /// Deadlines are milliseconds since this instant.
    epoch: Instant,
    /// Whether the ticker task was started (it runs until the client closes).
    ticking: AtomicBool,
}

impl Inbox {
    pub fn new(inbox_prefix: &str) -> Self {
        Inbox {
            prefix: format!("{inbox_prefix}.{}.", nuid::next()),
            sid: Mutex::new(None),
            subscribed: AtomicBool::new(false),
            pending: Mutex::default(),
            next: AtomicU64::new(1),
            epoch: Instant::now(),
            ticking: AtomicBool::new(false),
        }
    }

    /// The sid of the wildcard reply subscription, once it exists.
    pub fn sid(&self) -> Option<u64> {
        *lock(&self.sid)
    }

    /// Makes sure the wildcard reply subscription exists: `subscribe` is called with its
    /// filter the first time (once, however many requests race), and its sid kept.
    pub fn ensure_subscribed<E>(
        &self,
        subscribe: impl FnOnce(&str) -> Result<u64, E>,
    ) -> Result<(), E> {
        if self.subscribed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let mut sid = lock(&self.sid);
        if sid.is_none() {
            *sid = Some(subscribe(&format!("{}*", self.prefix))?);
            self.subscribed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }

    fn ticket(&self) -> Ticket {
        let token = self.next.fetch_add(1, Relaxed);
        let mut reply = String::with_capacity(self.prefix.len() + 20);
        reply.push_str(&self.prefix);
        reply.push_str(itoa::Buffer::new().format(token));
        Ticket { token, reply }
    }

    /// Registers a one-reply entry, expiring after `timeout` when given (then the caller must
    /// make sure the ticker runs: see [`Inbox::start_ticker`]), holding `permit` until it
    /// leaves the map. The caller must [`Inbox::cancel`] the token when it stops waiting.
    pub fn register(
        &self,
        subject: &str,
        timeout: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> (Ticket, oneshot::Receiver<Outcome>) {
        let ticket = self.ticket();
        let (tx, rx) = oneshot::channel();
        // The clock is read here, not taken from the last tick (which may lag under load): an
        // entry never expires early, and at most one tick (plus scheduling) late.
        let expires = timeout.map(|t| {
            let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX / 2);
            self.elapsed_ms().saturating_add(ms)
        });
        let entry = Entry {
            sink: Sink::One(tx),
            subject: subject_hash(subject),
            expires,
            _permit: permit,
        };
        lock(&self.pending).insert(ticket.token, entry);
        (ticket, rx)
    }

    /// Registers an entry that takes any number of replies until it is cancelled.
    pub fn register_many(&self) -> (Ticket, mpsc::UnboundedReceiver<Outcome>) {
        let ticket = self.ticket();
        let (tx, rx) = mpsc::unbounded_channel();
        let entry = Entry {
            sink: Sink::Many(tx),
            subject: 0,
            expires: None,
            _permit: None,
        };
        lock(&self.pending).insert(ticket.token, entry);
        (ticket, rx)
    }

    /// Whether the caller must start the ticker now (true once per inbox).
    pub fn start_ticker(&self) -> bool {
        // Read first: every windowed request asks, and a read keeps the cache line shared.
        !self.ticking.load(Relaxed) && !self.ticking.swap(true, Relaxed)
    }

    /// Forgets an entry (done, timed out, abandoned); its window slot goes back.
    pub fn cancel(&self, token: u64) {
        let removed = lock(&self.pending).remove(&token);
        drop(removed); // outside the lock: a freed permit may wake a waiter
    }

    /// Routes a message that arrived on the wildcard inbox.
    pub fn deliver(&self, msg: Message) {
        let Some(token) = msg
            .subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|t| t.parse::<u64>().ok())
        else {
            return;
        };
        let mut pending = lock(&self.pending);
        let one = match pending.get(&token) {
            None => return, // late reply to a request already gone
            Some(Entry {
                sink: Sink::Many(tx),
                ..
            }) => {
                if tx.send(Ok(msg)).is_err() {
                    pending.remove(&token);
                }
                return;
            }
            Some(_) => pending.remove(&token),
        };
        drop(pending);
        if let Some(Entry {
            sink: Sink::One(tx),
            ..
        }) = one
        {
            let _ = tx.send(Ok(msg));
        }
    }

    /// Ends the one-reply entries of requests sent to `subject` with [`Ended::Refused`]: the
    /// server refused the publish (`Permissions Violation for Publish to "<subject>"`), so no
    /// reply can come. Entries are matched on a 64-bit hash of the subject. Returns how many.
    pub fn refuse(&self, subject: &str) -> usize {
        let hash = subject_hash(subject);
        let refused: Vec<Entry> = {
            let mut pending = lock(&self.pending);
            let tokens: Vec<u64> = pending
                .iter()
                .filter(|(_, e)| e.subject == hash && matches!(e.sink, Sink::One(_)))
                .map(|(token, _)| *token)
                .collect();
            tokens.iter().filter_map(|t| pending.remove(t)).collect()
        };
        let n = refused.len();
        for e in refused {
            send_end(e.sink, Ended::Refused);
        }
        n
    }

    /// Ends every entry with `why` (connection lost, client closed).
    pub fn fail_all(&self, why: Ended) {
        let entries: Vec<Entry> = lock(&self.pending).drain().map(|(_, e)| e).collect();
        for e in entries {
            send_end(e.sink, why);
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 2)
    }

    /// Ends the entries whose deadline passed.
    pub fn tick(&self) {
        let now = self.elapsed_ms();
        let expired: Vec<Entry> = {
            let mut pending = lock(&self.pending);
            let due: Vec<u64> = pending
                .iter()
                .filter(|(_, e)| e.expires.is_some_and(|t| t <= now))
                .map(|(token, _)| *token)
                .collect();
            due.iter().filter_map(|t| pending.remove(t)).collect()
        };
        for e in expired {
            send_end(e.sink, Ended::TimedOut);
        }
    }

    /// Entries waiting right now.
    pub fn len(&self) -> usize {
        lock(&self.pending).len()
    }
}

/// FNV-1a over the subject: cheap for the short subjects requests go to, and a collision
/// between two subjects pending at once is vanishingly unlikely.
fn subject_hash(subject: &str) -> u64 {
    subject.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn send_end(sink: Sink, why: Ended) {
    match sink {
        Sink::One(tx) => {
            let _ = tx.send(Err(why));
        }
        Sink::Many(tx) => {
            let _ = tx.send(Err(why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    fn reply_to(subject: &str, payload: &'static [u8]) -> Message {
        Message {
            subject: subject.into(),
            reply: None,
            payload: Bytes::from_static(payload),
            headers: None,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn entries_never_outlive_their_request() {
        let inbox = Inbox::new("_INBOX");
        let (t, mut rx) = inbox.register("s", None, None);
        assert_eq!(inbox.len(), 1);
        inbox.deliver(reply_to(&t.reply, b"ok"));
        assert_eq!(inbox.len(), 0);
        assert_eq!(&rx.try_recv().unwrap().unwrap().payload[..], b"ok");
        inbox.cancel(t.token);
        let (t, _rx) = inbox.register("s", None, None);
        assert_eq!(inbox.len(), 1);
        inbox.cancel(t.token);
        assert_eq!(inbox.len(), 0);
    }

    #[test]
    fn many_replies_until_cancelled() {
        let inbox = Inbox::new("_INBOX");
        let (t, mut rx) = inbox.register_many();
        for _ in 0..3 {
            inbox.deliver(reply_to(&t.reply, b"r"));
        }
        assert_eq!(inbox.len(), 1);
        for _ in 0..3 {
            assert!(rx.try_recv().unwrap().is_ok());
        }
        inbox.cancel(t.token);
        inbox.deliver(reply_to(&t.reply, b"late"));
        assert_eq!(inbox.len(), 0);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_dropped_stream_receiver_is_removed_on_the_next_reply() {
        let inbox = Inbox::new("_INBOX");
        let (t, rx) = inbox.register_many();
        drop(rx);
        inbox.deliver(reply_to(&t.reply, b"r"));
        assert_eq!(inbox.len(), 0);
    }

    #[test]
    fn expiry_and_window_slots() {
        let inbox = Inbox::new("_INBOX");
        let window = Arc::new(Semaphore::new(2));
        let p1 = window.clone().try_acquire_owned().unwrap();
        let p2 = window.clone().try_acquire_owned().unwrap();
        let (t1, mut rx1) = inbox.register("s", Some(Duration::ZERO), Some(p1));
        let (t2, mut rx2) = inbox.register("s", Some(Duration::from_secs(3600)), Some(p2));
        assert_eq!(window.available_permits(), 0);
        inbox.tick();
        assert_eq!(rx1.try_recv().unwrap(), Err(Ended::TimedOut));
        assert_eq!(
            window.available_permits(),
            1,
            "an expired entry frees its slot"
        );
        inbox.deliver(reply_to(&t2.reply, b"ack"));
        assert!(rx2.try_recv().unwrap().is_ok());
        assert_eq!(window.available_permits(), 2, "a reply frees its slot");
        assert_eq!(inbox.len(), 0);
        inbox.cancel(t1.token);
        assert_eq!(window.available_permits(), 2);
    }

    #[test]
    fn a_refused_publish_ends_the_requests_sent_to_its_subject_only() {
        let inbox = Inbox::new("_INBOX");
        let (_a, mut to_secret) = inbox.register("secret.x", None, None);
        let (_b, mut elsewhere) = inbox.register("open.x", None, None);
        let (_c, mut many) = inbox.register_many();
        assert_eq!(inbox.refuse("secret.x"), 1);
        assert_eq!(to_secret.try_recv().unwrap(), Err(Ended::Refused));
        assert!(elsewhere.try_recv().is_err());
        assert!(many.try_recv().is_err());
        assert_eq!(inbox.len(), 2);
    }

    #[test]
    fn fail_all_tells_every_waiter_why() {
        let inbox = Inbox::new("_INBOX");
        let (_, mut one) = inbox.register("s", None, None);
        let (_, mut many) = inbox.register_many();
        inbox.fail_all(Ended::Disconnected);
        assert_eq!(one.try_recv().unwrap(), Err(Ended::Disconnected));
        assert_eq!(many.try_recv().unwrap(), Err(Ended::Disconnected));
        assert_eq!(inbox.len(), 0);
    }

    #[test]
    fn foreign_subjects_are_ignored() {
        let inbox = Inbox::new("_INBOX");
        let (_t, mut rx) = inbox.register("s", None, None);
        inbox.deliver(reply_to("_INBOX.other.1", b"x"));
        inbox.deliver(reply_to(&format!("{}nope", inbox.prefix), b"x"));
        assert!(rx.try_recv().is_err());
        assert_eq!(inbox.len(), 1);
    }
}
