//! An in-memory network and a scripted fake server, for tests of the connection session that
//! need no real server: reconnect, flush across a reconnect, ping timeouts, lame duck and cut
//! frames, in orders of events a real server rarely produces, under tokio's paused clock.
//!
//! The client connects through [`MemoryNet`] (set on its options) instead of TCP; each
//! connection is a `tokio::io::duplex` pipe whose server end goes to the [`FakeServer`]
//! listening under that address. The server writes with nats-proto's server-op encoder and
//! reads the client's ops with nats-proto's strict client-op reader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nats_proto::fuzzing::read_client_op;
use nats_proto::{ClientOp, Msg, ServerInfo, ServerOp, encode_server_op};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::addr::ServerAddr;
use crate::lock;

/// Named listeners of in-memory connections.
pub(crate) struct MemoryNet {
    listeners: Mutex<HashMap<String, mpsc::UnboundedSender<DuplexStream>>>,
    /// Bytes a pipe holds in each direction before a write waits (small values cut writes).
    capacity: usize,
}

impl MemoryNet {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(MemoryNet {
            listeners: Mutex::default(),
            capacity,
        })
    }

    /// A server listening at `addr` (e.g. `"s1:4222"`) until it is dropped.
    pub fn listen(&self, addr: &str) -> FakeServer {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.listeners).insert(addr.to_owned(), tx);
        FakeServer { rx }
    }

    /// A client's connection to `addr`; `None` (refused) when nothing listens there.
    pub fn connect(&self, addr: &ServerAddr) -> Option<DuplexStream> {
        let (client, server) = tokio::io::duplex(self.capacity);
        let listeners = lock(&self.listeners);
        listeners.get(&addr.socket_addr())?.send(server).ok()?;
        Some(client)
    }
}

/// One scripted server: accepts connections in the order clients make them.
pub(crate) struct FakeServer {
    rx: mpsc::UnboundedReceiver<DuplexStream>,
}

impl FakeServer {
    /// The next connection, raw (nothing sent yet).
    pub async fn accept(&mut self) -> FakeConn {
        let io = self
            .rx
            .recv()
            .await
            .expect("the network outlives the server");
        FakeConn {
            io,
            buf: BytesMut::new(),
        }
    }

    /// The next connection, after a normal handshake with `info`.
    pub async fn accept_client(&mut self, info: &ServerInfo) -> FakeConn {
        let mut conn = self.accept().await;
        conn.handshake(info).await;
        conn
    }
}

/// The server's end of one connection.
pub(crate) struct FakeConn {
    io: DuplexStream,
    buf: BytesMut,
}

impl FakeConn {
    /// Sends INFO, reads CONNECT and PING, answers PONG.
    pub async fn handshake(&mut self, info: &ServerInfo) {
        self.send(ServerOp::Info(Box::new(info.clone()))).await;
        assert!(matches!(self.next_op().await, Some(ClientOp::Connect(_))));
        assert_eq!(self.next_op().await, Some(ClientOp::Ping));
        self.send(ServerOp::Pong).await;
    }

    pub async fn send(&mut self, op: ServerOp) {
        let mut out = BytesMut::new();
        encode_server_op(&mut out, &op);
        // The client may be gone already; the test's assertions say whether that is right.
        let _ = self.io.write_all(&out).await;
    }

    /// Sends a message for `sid`.
    pub async fn send_msg(&mut self, subject: &str, sid: u64, payload: &'static [u8]) {
        self.send(ServerOp::Msg(Msg {
            subject: subject.into(),
            sid,
            reply: None,
            headers: None,
            status: None,
            description: None,
            payload: Bytes::from_static(payload),
            size: payload.len(),
        }))
        .await;
    }

    /// The client's next op; `None` when the connection ends first.
    pub async fn next_op(&mut self) -> Option<ClientOp> {
        loop {
            match read_client_op(&mut self.buf) {
                Ok(Some(frame)) => return Some(frame.op),
                Ok(None) => {}
                Err(e) => panic!("the client sent a malformed op: {e}"),
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads ops until one matches, answering nothing; returns the ops read before it.
    pub async fn until(&mut self, want: impl Fn(&ClientOp) -> bool) -> Vec<ClientOp> {
        let mut before = Vec::new();
        loop {
            match self.next_op().await {
                Some(op) if want(&op) => return before,
                Some(op) => before.push(op),
                None => panic!("the connection ended before the op; read {before:?}"),
            }
        }
    }

    /// Reads exactly `n` raw bytes (the client may be cut inside an op).
    pub async fn read_raw(&mut self, n: usize) -> Bytes {
        while self.buf.len() < n {
            if matches!(self.io.read_buf(&mut self.buf).await, Ok(0) | Err(_)) {
                break;
            }
        }
        let n = n.min(self.buf.len());
        self.buf.split_to(n).freeze()
    }

    /// Everything the client sends within `wait` (of the paused clock), raw.
    pub async fn read_for(&mut self, wait: Duration) -> Bytes {
        let read = async {
            while let Ok(n) = self.io.read_buf(&mut self.buf).await
                && n > 0
            {}
        };
        let _ = tokio::time::timeout(wait, read).await;
        self.buf.split().freeze()
    }

    /// Whether the client closed its end (within a (paused-clock) second).
    pub async fn closed_by_client(&mut self) -> bool {
        let read = async {
            loop {
                let mut scratch = [0u8; 256];
                match self.io.read(&mut scratch).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(1), read)
            .await
            .unwrap_or(false)
    }
}

/// A server INFO for tests.
pub(crate) fn info(id: &str) -> ServerInfo {
    ServerInfo {
        server_id: id.into(),
        headers: true,
        max_payload: 1024 * 1024,
        proto: 1,
        ..ServerInfo::default()
    }
}
