//! Random interactions (quinn-proto's `random_interaction` in spirit): the session, the write
//! side and the writer's chunk driven by any sequence of publishes, flushes, partial writes,
//! server PINGs and PONGs, lost connections and lame-duck handovers, against a model server
//! that reads the bytes with nats-proto's strict client-op reader. After the sequence the
//! link is brought up and drained; then:
//! - every accepted publish reached a server exactly once (a cut op is resent whole, a
//!   written one never again);
//! - every flush call resolved exactly once, and only once every publish accepted before it
//!   had reached a server;
//! - every PING of a server got its PONG on that connection (the old one's at a handover);
//! - no server ever read a malformed op.

use std::collections::HashMap;

use std::io::IoSlice;

use bytes::{Bytes, BytesMut};
use nats_proto::fuzzing::read_client_op;
use nats_proto::{ClientOp, Encoder, ServerInfo, ServerOp};
use proptest::prelude::*;

use super::{Action, Session, Step};
use crate::addr::ServerAddr;
use crate::outbound::{Chunk, Outbound, Payload, Take};

#[derive(Debug, Clone)]
enum Op {
    /// A payload of that many bytes past its id, borrowed or shared.
    Publish(usize, bool),
    Flush,
    Take,
    Write(usize),
    ServerPing,
    ServerPong,
    Lose,
    Connect,
    HandOver,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..300, any::<bool>()).prop_map(|(n, shared)| Op::Publish(n, shared)),
        2 => Just(Op::Flush),
        4 => Just(Op::Take),
        6 => (1usize..200).prop_map(Op::Write),
        1 => Just(Op::ServerPing),
        2 => Just(Op::ServerPong),
        1 => Just(Op::Lose),
        1 => Just(Op::Connect),
        1 => Just(Op::HandOver),
    ]
}

/// One server's view of its connection.
#[derive(Default)]
struct Server {
    /// Bytes read and not yet a whole op.
    wire: BytesMut,
    /// Client PINGs read and not answered yet.
    pings_unanswered: usize,
    /// PINGs this server sent, and PONGs it read.
    pings_sent: usize,
    pongs_read: usize,
}

struct Model {
    out: Outbound<u32>,
    session: Session<u32>,
    chunk: Chunk<u32>,
    live: bool,
    server: Server,
    /// What a lost connection never sent, for the next one.
    unsent: BytesMut,
    next_id: u32,
    accepted: Vec<u32>,
    received: HashMap<u32, usize>,
    /// Flush id -> the publishes accepted before it.
    flushes: HashMap<u32, Vec<u32>>,
    resolved: HashMap<u32, usize>,
}

impl Model {
    fn new() -> Self {
        let mut m = Model {
            // Shared payloads of 100 bytes and more become segments of the write buffer.
            out: Outbound::new(1 << 20, 1 << 20).share_payloads_from(100),
            session: Session::default(),
            chunk: Chunk::default(),
            live: false,
            server: Server::default(),
            unsent: BytesMut::new(),
            next_id: 0,
            accepted: Vec::new(),
            received: HashMap::new(),
            flushes: HashMap::new(),
            resolved: HashMap::new(),
        };
        m.connect();
        m
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Publish(size, shared) => {
                let id = self.id();
                let mut payload = id.to_string().into_bytes();
                payload.resize(payload.len() + size, b'.');
                let payload = Bytes::from(payload);
                let payload = match shared {
                    true => Payload::Shared(&payload),
                    false => Payload::Borrowed(&payload),
                };
                if let Ok(Some(_)) = self.out.publish("s", None, None, payload) {
                    self.accepted.push(id);
                }
            }
            Op::Flush => {
                let id = self.id();
                if self.out.add_flush_waiter(id).is_ok() {
                    self.flushes.insert(id, self.accepted.clone());
                }
            }
            Op::Take if self.live && self.chunk.is_done() => {
                let _ = self.chunk.finished();
                let _ = self.out.take_chunk(&mut self.chunk);
            }
            Op::Write(n) if self.live && !self.chunk.is_done() => {
                // The writer's vectored write, of which the socket takes `n` bytes.
                let mut slices = [IoSlice::new(&[]); 4];
                let count = self.chunk.bytes.slices(self.chunk.written, &mut slices);
                let bytes: Vec<u8> = slices[..count]
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .take(*n)
                    .collect();
                self.chunk.written += bytes.len();
                if self.chunk.is_done()
                    && let Some(waiters) = self.chunk.waiters.take()
                {
                    self.session.ping_sent(waiters);
                }
                self.server_reads(&bytes);
            }
            Op::ServerPing if self.live => {
                self.server.pings_sent += 1;
                for action in self.session.server_op(ServerOp::Ping) {
                    match action {
                        Action::Pong => self.out.pong(),
                        _ => panic!("a PING is answered with a PONG only"),
                    }
                }
            }
            Op::ServerPong if self.live && self.server.pings_unanswered > 0 => {
                self.server.pings_unanswered -= 1;
                for action in self.session.server_op(ServerOp::Pong) {
                    match action {
                        Action::Flushed(waiters) => {
                            waiters.into_iter().for_each(|w| self.flushed(w))
                        }
                        _ => panic!("a PONG proves flush calls only"),
                    }
                }
            }
            Op::Lose if self.live => {
                let (unsent, unproven) = self.session.connection_lost(&mut self.chunk);
                self.out.go_offline();
                self.out.requeue_flushes(unproven);
                let _ = self.out.take_owed_pongs(); // moot with the server gone
                self.unsent = unsent.bytes;
                self.server = Server::default(); // an op cut short is dropped by the server
                self.live = false;
            }
            Op::Connect if !self.live => self.connect(),
            Op::HandOver if self.live => self.hand_over(),
            _ => {}
        }
    }

    fn connect(&mut self) {
        let encoder = Encoder::default();
        let mut fresh = BytesMut::new();
        let addr = ServerAddr::parse("nats://127.0.0.1:4222").expect("valid address");
        let _ = self
            .session
            .connected(&encoder, &mut fresh, addr, ServerInfo::default(), true);
        fresh.extend_from_slice(&std::mem::take(&mut self.unsent));
        self.out.go_live(encoder, fresh);
        self.live = true;
    }

    /// A lame-duck move: the cut op completed on the old connection, its PONGs owed written
    /// there, its unanswered PINGs answered there; the rest goes on on a new connection.
    fn hand_over(&mut self) {
        if let Some(rest) = self.chunk.cut_frame_rest() {
            let bytes = self.chunk.contiguous()[rest.clone()].to_vec();
            self.chunk.written = rest.end;
            if self.chunk.is_done()
                && let Some(waiters) = self.chunk.waiters.take()
            {
                self.session.ping_sent(waiters);
            }
            self.server_reads(&bytes);
        }
        let owed = self.out.take_owed_pongs();
        let (mut retirement, unsent, unproven) =
            self.session.handed_over(&mut self.chunk, true, owed);
        self.out.requeue_flushes(unproven);
        for step in retirement.begin(None) {
            if let Step::Write(bytes) = step {
                self.server_reads(&bytes);
            }
        }
        assert_eq!(
            self.server.pings_sent, self.server.pongs_read,
            "every PING of the old server is answered there"
        );
        // The old server answers what it read; none of those PONGs ends the retirement
        // (its own PING is not sent yet).
        for _ in 0..self.server.pings_unanswered {
            assert!(retirement.old_op(&ServerOp::Pong).is_empty());
        }
        self.server = Server::default();
        self.live = false;
        self.unsent = unsent;
        self.connect();
    }

    fn server_reads(&mut self, bytes: &[u8]) {
        self.server.wire.extend_from_slice(bytes);
        loop {
            match read_client_op(&mut self.server.wire) {
                Ok(Some(frame)) => match frame.op {
                    ClientOp::Pub { payload, .. } => {
                        let digits: Vec<u8> = payload
                            .iter()
                            .copied()
                            .take_while(u8::is_ascii_digit)
                            .collect();
                        let id = std::str::from_utf8(&digits)
                            .ok()
                            .and_then(|d| d.parse().ok())
                            .expect("an id");
                        *self.received.entry(id).or_default() += 1;
                    }
                    ClientOp::Ping => self.server.pings_unanswered += 1,
                    ClientOp::Pong => self.server.pongs_read += 1,
                    _ => {}
                },
                Ok(None) => return,
                Err(e) => panic!("the server read a malformed op: {e}"),
            }
        }
    }

    fn flushed(&mut self, id: u32) {
        *self.resolved.entry(id).or_default() += 1;
        let before = &self.flushes[&id];
        let missing: Vec<_> = before
            .iter()
            .filter(|p| !self.received.contains_key(p))
            .collect();
        assert!(
            missing.is_empty(),
            "flush {id} resolved before publishes {missing:?} reached a server"
        );
    }

    /// Brings the link up and runs the writer and the server until nothing is left.
    fn drain(&mut self) {
        if !self.live {
            self.connect();
        }
        for _ in 0..10_000 {
            self.apply(&Op::Write(usize::MAX / 2));
            self.apply(&Op::ServerPong);
            if self.chunk.is_done() {
                let _ = self.chunk.finished();
                if self.out.take_chunk(&mut self.chunk) == Take::Idle
                    && self.server.pings_unanswered == 0
                {
                    return;
                }
            }
        }
        panic!("the writer never ran dry");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_publish_arrives_once_and_every_flush_resolves_after_its_publishes(
        ops in proptest::collection::vec(op(), 0..120)
    ) {
        let mut m = Model::new();
        for op in &ops {
            m.apply(op);
        }
        m.drain();
        for id in &m.accepted {
            prop_assert_eq!(m.received.get(id).copied(), Some(1), "publish {}", id);
        }
        for id in m.flushes.keys() {
            prop_assert_eq!(m.resolved.get(id).copied(), Some(1), "flush {}", id);
        }
        prop_assert_eq!(m.server.pings_sent, m.server.pongs_read, "PINGs answered");
    }
}
