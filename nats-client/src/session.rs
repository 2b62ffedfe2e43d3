//! The connection session as a plain value: no tokio, no sockets, no locks, no clock of its
//! own. Drivers move bytes and timers and feed it what happened; it answers with what to do.
//!
//! # Design notes
//! **What it holds** (for the client's whole life, across connections): the sid table with
//! what is re-sent on a new connection (SUB, and UNSUB with what is left of a limit), the
//! PONG FIFO (each PING sent, with the flush calls it answers for), the keep-alive count
//! (PINGs without a PONG since), the current server and its latest INFO, and the received
//! counters. Beside it, two more plain values: the write side (`outbound.rs`: the buffer
//! publishers encode into, a rope of bytes and large shared payloads (`rope.rs`), the link
//! state, the flush calls waiting for the next PING, the PONGs owed; `chunk.rs`: the chunk in
//! flight and where a cut fell in it) and, per connection being
//! retired after a lame-duck move, a [`Retirement`].
//!
//! **States.** The link, as publishers see it: `Disconnected` (publishes fill the reconnect
//! buffer) -> `Connected` (on "connected"; back on "lost") -> `Closing` (close called: what
//! was accepted is still written) -> `Closed`. A connection: handshake (`handshake.rs`) ->
//! live (this session) -> lost, or handed over to a new one and retired (`AwaitNewServer` ->
//! `Probing` -> `Grace` -> `Draining` -> `Done`, or `Stranded` when an op was cut there; see
//! `retirement.rs`). Any number of retirements run beside the live connection and outlive
//! it: losing the new connection mid-move does not drop the old one.
//!
//! **Inputs and outputs.**
//!
//! | input                                | method                     | output                                   |
//! |--------------------------------------|----------------------------|------------------------------------------|
//! | a user subscribes / unsubscribes     | `subscribe`, `unsubscribe` | sid; SUB/UNSUB bytes (when live)         |
//! | a connection is live ("connected")   | `connected`                | re-SUB bytes for every live subscription |
//! | a server `MSG`/`HMSG` (hot path)     | `deliver`                  | a [`Delivery`] (queue, inbox, handler)   |
//! | any other server op                  | `server_op`                | [`Action`]s: PONG, flush calls proven, parser limits, servers learnt, move (lame duck), events, requests refused, close |
//! | the writer sent a PING               | `ping_sent`                | -                                        |
//! | the keep-alive timer fired           | `keep_alive_tick`          | `Ping`, or `Close` (ping timeout)        |
//! | the connection is lost / handed over | `connection_lost`          | unsent ops (whole), PONGs owed, flush calls to ask again |
//! | the client is closed                 | `finish`                   | every subscription ended                 |
//! | (retiring connection) new server proven, probe back, timer, old server's op, lost | [`Retirement`] | [`Step`]s: bytes for the old connection, end the probe, close; when to wake |
//!
//! **Drivers.** `connection.rs` runs one task per client: for the live connection, a read
//! loop (bytes -> parser -> `deliver` / `server_op`, and the keep-alive timer) and a write
//! loop (takes the write side's buffer as a chunk, writes it, reports the PING sent); between
//! connections, the reconnect with backoff; beside them, the retirements. `lame_duck.rs`
//! finds the replacement connection and drives each [`Retirement`]. Neither decides what a
//! server op means, when the link is dead, which bytes are resent, or which PONG ends a
//! retirement: the session does, and its tests (`session/tests.rs`, `retirement.rs`,
//! `outbound.rs`, `chunk.rs`, `rope.rs`) need no runtime. The same drivers run over
//! in-memory pipes against scripted servers (`memory.rs`, `memory_tests*`) under tokio's
//! paused clock.
//!
//! It is generic over the flush waiter `W` (a oneshot sender in the client, anything in tests).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;
use nats_proto::{Encoder, ParserLimits, ProtoError, ServerInfo, ServerOp};

use crate::addr::ServerAddr;
use crate::events::{DisconnectReason, Event};
use crate::message::Message;
use crate::outbound::{Chunk, Unsent};
use crate::server_error::{PermissionOperation, ServerError, ServerErrorKind};
use crate::sub_queue::{Handler, Pushed, SubEntry, SubscriptionError, Target};

/// Headers the server may add to a message after the publisher's `max_payload` check
/// (JetStream republish, sources and mirrors, direct gets): allowed on top of `max_payload`.
pub(crate) const HEADER_ALLOWANCE: usize = 64 * 1024;

/// What the parser accepts from a server: messages up to its announced `max_payload` plus
/// [`HEADER_ALLOWANCE`], so a server cannot make us buffer far more than it said it would send
/// (the protocol default when it announced none).
pub(crate) fn inbound_limits(info: &ServerInfo) -> ParserLimits {
    let defaults = ParserLimits::default();
    if info.max_payload == 0 {
        return defaults;
    }
    ParserLimits {
        max_payload: info.max_payload.saturating_add(HEADER_ALLOWANCE),
        ..defaults
    }
}

/// What the driver must do after an input, in the order given.
#[must_use = "an action is the session's decision: the driver carries it out"]
pub(crate) enum Action<W> {
    /// Answer the server's PING (a PONG with the next write to that connection).
    Pong,
    /// Send a keep-alive PING with the next write.
    Ping,
    /// These flush calls are proven (their PING's PONG came): resolve them.
    Flushed(Vec<W>),
    /// The server's limits changed: the connection's parser follows.
    Limits(ParserLimits),
    /// Servers the INFO announced, for the pool (`current` completes them: scheme, TLS).
    Discovered {
        urls: Vec<String>,
        current: ServerAddr,
    },
    /// The server is going away (lame duck): move to another one.
    Move,
    /// Tell the user (and count, for the kinds that are counted).
    Event(Event),
    /// Requests sent to `subject` can never be answered (publishing there is refused).
    RefuseRequests(String),
    /// Where a message went (see [`Delivery`]).
    Deliver(Delivery),
    /// The connection is over: reconnect.
    Close(DisconnectReason),
}

/// The session state of one client (it outlives each connection).
pub(crate) struct Session<W> {
    subs: HashMap<u64, SubEntry>,
    next_sid: u64,
    /// PINGs sent, oldest first, each with the flush calls waiting for its PONG.
    pongs: VecDeque<Vec<W>>,
    /// Keep-alive PINGs without any PONG since.
    pings_out: usize,
    info: Arc<ServerInfo>,
    server: Option<ServerAddr>,
    counts: Received,
}

/// What the session received, counted (the rest of [`crate::Statistics`] is counted where it
/// happens: publishes under the write lock, connects by the driver).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Received {
    pub msgs: u64,
    pub bytes: u64,
    /// Dropped for a subscription over its pending limits.
    pub dropped: u64,
    /// Well-framed but not representable (see [`Session::undeliverable`]).
    pub undeliverable: u64,
}

/// Where a message went (see [`Session::deliver`]).
#[must_use = "a delivery may still have to be handed on"]
pub(crate) enum Delivery {
    /// No such subscription (a late message for one already gone).
    Gone,
    /// Pushed into the subscription's queue.
    Queued,
    /// The queue was full: dropped. `first` starts a slow-consumer episode.
    Dropped {
        sid: u64,
        subject: String,
        first: bool,
    },
    /// For the client's reply inbox.
    Requests(Message),
    /// For a handler, to be called once the session is released (it may use the client).
    Handler(Handler, Message),
}

impl<W> Default for Session<W> {
    fn default() -> Self {
        Session {
            subs: HashMap::new(),
            next_sid: 1,
            pongs: VecDeque::new(),
            pings_out: 0,
            info: Arc::default(),
            server: None,
            counts: Received::default(),
        }
    }
}

impl<W> Session<W> {
    /// The latest INFO of the current (or last) server.
    pub fn info(&self) -> Arc<ServerInfo> {
        self.info.clone()
    }

    /// Messages received so far (every connection).
    pub fn received(&self) -> Received {
        self.counts
    }

    /// The current (or last) server.
    pub fn server(&self) -> Option<&ServerAddr> {
        self.server.as_ref()
    }

    /// The current server as text ("" before the first connection).
    pub fn server_name(&self) -> String {
        self.server
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// Registers a subscription; with `out` (the link is up), writes its SUB there. The
    /// subject is validated either way, and nothing is registered if it is refused.
    pub fn subscribe(
        &mut self,
        encoder: &Encoder,
        out: Option<&mut BytesMut>,
        subject: &str,
        queue_group: Option<String>,
        target: Target,
    ) -> Result<u64, ProtoError> {
        let sid = self.next_sid;
        match out {
            Some(out) => encoder.subscribe(out, sid, subject, queue_group.as_deref())?,
            None => {
                // Validate now even though the SUB is sent on the next connection.
                encoder.subscribe(&mut BytesMut::new(), sid, subject, queue_group.as_deref())?;
            }
        }
        self.next_sid += 1;
        self.subs.insert(
            sid,
            SubEntry {
                subject: subject.to_owned(),
                queue_group,
                max: None,
                delivered: 0,
                target,
            },
        );
        Ok(sid)
    }

    /// UNSUB for `sid` (written to `out` when the link is up). With `max`, the subscription
    /// runs on to `max` messages in total; without, `forget` stops routing its messages now
    /// (a stream subscription's stream ends), else they keep coming until [`Session::forget`].
    pub fn unsubscribe(
        &mut self,
        encoder: &Encoder,
        out: Option<&mut BytesMut>,
        sid: u64,
        max: Option<u64>,
        forget: bool,
    ) {
        let remove = match (self.subs.get_mut(&sid), max) {
            (None, _) => return,
            (Some(e), Some(max)) => {
                e.max = Some(max);
                e.delivered >= max
            }
            (Some(_), None) => forget,
        };
        if remove {
            self.forget(sid);
        }
        if let Some(out) = out {
            encoder.unsubscribe(out, sid, max);
        }
    }

    /// Stops routing `sid`'s messages and ends its stream.
    pub fn forget(&mut self, sid: u64) {
        if let Some(SubEntry {
            target: Target::Queue(q),
            ..
        }) = self.subs.remove(&sid)
        {
            q.close();
        }
    }

    /// Every live subscription's sid.
    pub fn sids(&self) -> Vec<u64> {
        self.subs.keys().copied().collect()
    }

    /// Whether `sid` is a live subscription.
    #[cfg(test)]
    pub fn is_subscribed(&self, sid: u64) -> bool {
        self.subs.contains_key(&sid)
    }

    /// A new connection is live: remembers its server and INFO, forgets the last one's PING
    /// count, and writes SUB (and the UNSUB with what is left of a limit) for every live
    /// subscription. The PONGs still awaited are not touched: see [`Session::connection_lost`].
    /// `reconnecting`: after a loss (or a handover), rather than the first connection. Answers
    /// the event to send.
    pub fn connected(
        &mut self,
        encoder: &Encoder,
        out: &mut BytesMut,
        server: ServerAddr,
        info: ServerInfo,
        reconnecting: bool,
    ) -> Event {
        for (sid, e) in &self.subs {
            // Subjects were validated when the subscription was made.
            let _ = encoder.subscribe(out, *sid, &e.subject, e.queue_group.as_deref());
            if let Some(left) = e.remaining() {
                encoder.unsubscribe(out, *sid, Some(left));
            }
        }
        let name = server.to_string();
        let event = if reconnecting {
            Event::Reconnected { server: name }
        } else {
            Event::Connected { server: name }
        };
        self.info = Arc::new(info);
        self.server = Some(server);
        self.pings_out = 0;
        event
    }

    /// An op the live connection's server sent: what to do about it. (The reader delivers
    /// runs of messages through [`Session::deliver`] directly: no allocation per message.)
    pub fn server_op(&mut self, op: ServerOp) -> Vec<Action<W>> {
        match op {
            ServerOp::Msg(msg) => vec![Action::Deliver(self.deliver(msg))],
            ServerOp::Ping => vec![Action::Pong],
            ServerOp::Pong => match self.pong() {
                proven if proven.is_empty() => Vec::new(),
                proven => vec![Action::Flushed(proven)],
            },
            ServerOp::Info(info) => self.info_update(*info),
            ServerOp::Err(text) => self.server_error(&text),
            ServerOp::BadMsg(bad) => {
                let (sid, error) = (bad.sid, bad.error.clone());
                self.undeliverable(bad);
                vec![Action::Event(Event::UndeliverableMessage { sid, error })]
            }
            ServerOp::Ok => Vec::new(),
        }
    }

    /// An INFO on a live connection: new limits, servers to learn, and the move when it
    /// announces lame duck.
    fn info_update(&mut self, info: ServerInfo) -> Vec<Action<W>> {
        let mut actions = vec![Action::Limits(inbound_limits(&info))];
        if let Some(current) = &self.server {
            actions.push(Action::Discovered {
                urls: info.connect_urls.clone(),
                current: current.clone(),
            });
        }
        if info.ldm {
            let server = self.server_name();
            actions.push(Action::Event(Event::LameDuck { server }));
            actions.push(Action::Move);
        }
        self.info = Arc::new(info);
        actions
    }

    /// An `-ERR` on a live connection, handled as the table on [`ServerErrorKind`] says:
    /// always an event; a refused subscription ends, requests to a refused subject fail;
    /// stale connection, maximum connections and auth errors end the connection (the server
    /// closes it anyway).
    fn server_error(&mut self, text: &str) -> Vec<Action<W>> {
        let error = ServerError::parse(text);
        let mut actions = vec![Action::Event(Event::ServerError {
            server: self.server_name(),
            error: error.clone(),
        })];
        if let ServerErrorKind::PermissionsViolation {
            operation,
            subject,
            queue,
        } = &error.kind
        {
            match operation {
                PermissionOperation::Subscribe => {
                    self.refuse(subject, queue.as_deref(), &error);
                }
                PermissionOperation::Publish => {
                    actions.push(Action::RefuseRequests(subject.clone()));
                }
                PermissionOperation::PublishReply => {}
            }
        }
        if error.ends_connection() {
            actions.push(Action::Close(DisconnectReason::ServerError(error)));
        }
        actions
    }

    /// Routes a message to its subscription, counting it against a limit and ending the
    /// subscription when the limit is reached.
    pub fn deliver(&mut self, msg: nats_proto::Msg) -> Delivery {
        let sid = msg.sid;
        self.counts.msgs += 1;
        self.counts.bytes += msg.size as u64;
        let Some(entry) = self.subs.get_mut(&sid) else {
            return Delivery::Gone;
        };
        entry.delivered += 1;
        let done = entry.max.is_some_and(|max| entry.delivered >= max);
        let delivery = match &entry.target {
            Target::Queue(q) => match q.push(msg.into()) {
                Pushed::Queued => Delivery::Queued,
                Pushed::Dropped { first } => {
                    self.counts.dropped += 1;
                    Delivery::Dropped {
                        sid,
                        subject: entry.subject.clone(),
                        first,
                    }
                }
            },
            Target::Requests => Delivery::Requests(msg.into()),
            Target::Handler(h) => Delivery::Handler(h.clone(), msg.into()),
        };
        if done {
            self.forget(sid);
        }
        delivery
    }

    /// A well-framed message that cannot be a [`Message`]: it used up one of the
    /// subscription's messages on the server all the same; a stream subscription gets the
    /// error.
    pub fn undeliverable(&mut self, bad: Box<nats_proto::BadMsg>) {
        let sid = bad.sid;
        self.counts.undeliverable += 1;
        let Some(entry) = self.subs.get_mut(&sid) else {
            return;
        };
        entry.delivered += 1;
        let done = entry.max.is_some_and(|max| entry.delivered >= max);
        if let Target::Queue(q) = &entry.target {
            q.push_error(SubscriptionError::Undeliverable(bad), done);
        }
        if done {
            self.subs.remove(&sid);
        }
    }

    /// The server refused subscriptions to `subject` (in `queue`): their streams end with the
    /// error (handler subscriptions are forgotten; the reply inbox is kept). Returns how many.
    pub fn refuse(&mut self, subject: &str, queue: Option<&str>, error: &ServerError) -> usize {
        let refused: Vec<u64> = self
            .subs
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
            }) = self.subs.remove(sid)
            {
                q.push_error(SubscriptionError::Refused(error.clone()), true);
            }
        }
        refused.len()
    }

    /// The writer sent a PING answering for `waiters` (maybe none: a keep-alive PING).
    pub fn ping_sent(&mut self, waiters: Vec<W>) {
        self.pongs.push_back(waiters);
    }

    /// A PONG: the link is alive, and the oldest PING's flush calls are proven.
    pub fn pong(&mut self) -> Vec<W> {
        self.pings_out = 0;
        self.pongs.pop_front().unwrap_or_default()
    }

    /// PINGs sent whose PONG has not come yet.
    #[cfg(test)]
    pub fn pongs_awaited(&self) -> usize {
        self.pongs.len()
    }

    /// The keep-alive timer fired: a PING, or, with `max_pings_out` of them unanswered
    /// already, the link is dead (this also catches a write that stalls: its PINGs never go
    /// out, so no PONG comes back).
    pub fn keep_alive_tick(&mut self, max_pings_out: usize) -> Action<W> {
        let out = self.pings_out;
        self.pings_out += 1;
        if out >= max_pings_out {
            Action::Close(DisconnectReason::PingTimeout { unanswered: out })
        } else {
            Action::Ping
        }
    }

    /// The connection is gone (lost, or handed over in a lame-duck move), and `chunk` is
    /// where its writer stopped: what it never sent (to send on the next connection, but for
    /// the PONGs owed to its server), and the flush calls it never proved, which must ride a
    /// PING on the next connection: those of the chunk's own PING when it was not all written
    /// and those whose PING was sent but never answered.
    pub fn connection_lost(&mut self, chunk: &mut Chunk<W>) -> (Unsent, Vec<W>) {
        let unsent = chunk.take_unsent();
        let mut unproven: Vec<W> = chunk.waiters.take().unwrap_or_default();
        unproven.extend(self.pongs.drain(..).flatten());
        (unsent, unproven)
    }

    /// The connection is handed over to a new one in a lame-duck move: as
    /// [`Session::connection_lost`], and the old connection's [`Retirement`]. `clean`: every
    /// op written there is whole; `pongs_owed`: its server's PINGs not answered in `chunk`
    /// (the write side's count). Every PING sent there (the chunk's own, when all written) is
    /// answered before the retirement's, so those PONGs are not the retirement's.
    pub fn handed_over(
        &mut self,
        chunk: &mut Chunk<W>,
        clean: bool,
        pongs_owed: usize,
    ) -> (Retirement, BytesMut, Vec<W>) {
        let unanswered = self.pongs.len() + usize::from(chunk.is_done() && chunk.waiters.is_some());
        let (unsent, unproven) = self.connection_lost(chunk);
        let retirement = Retirement::new(clean, unanswered, unsent.pongs + pongs_owed);
        (retirement, unsent.bytes, unproven)
    }

    /// The client is closed: every subscription ends (queued messages stay readable) and
    /// every flush waiter is dropped.
    pub fn finish(&mut self) {
        for (_, e) in self.subs.drain() {
            if let Target::Queue(q) = e.target {
                q.close();
            }
        }
        self.pongs.clear();
    }
}

mod retirement;
pub(crate) use retirement::{Retirement, Step};

#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;
