//! The connection task, one per client: the driver of the session (see `session.rs` for the
//! design notes). It owns the sockets and the timers: it feeds the session what the server
//! sent and when the keep-alive timer fires, carries out the session's actions, writes the
//! shared buffer out chunk by chunk, and on loss reconnects through the server pool and
//! resumes with what the session says was never sent. Lame-duck retirements (`lame_duck.rs`)
//! run beside it.

use std::io::IoSlice;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nats_proto::{Encoder, Parser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::error::ConnectError;
use crate::events::{DisconnectReason, Event};
use crate::handshake::{Established, establish};
use crate::lame_duck::{Retirements, Retiring, find_replacement, finish_cut_op, retire};
use crate::outbound::{LinkState, Take};
use crate::server_error::ServerError;
use crate::session::Action;
use crate::shared::{ClientChunk, Delivered, FlushWaiter, ReadBuf, Shared, deliver_messages};

/// Why serving a connection stopped.
enum Stop {
    /// The client closed; everything accepted was written.
    Closed,
    /// The connection was lost; reconnect.
    Lost(DisconnectReason),
    /// The server is in lame-duck mode and a replacement connection is ready.
    Handoff(Box<Handover>),
}

/// A lame-duck move: the new connection, the old one to retire, and what the old one never
/// sent (for the new one).
struct Handover {
    new: Established,
    old: Retiring,
    unsent: BytesMut,
}

/// Runs until the client is closed (or runs out of servers).
pub(crate) async fn run(
    shared: Arc<Shared>,
    first: Option<Established>,
    tls: Option<Arc<rustls::ClientConfig>>,
) {
    // The first connection, when there is one, was made live by `connect` already.
    let mut next = first;
    let mut unsent = BytesMut::new();
    let mut reconnecting = next.is_none();
    // Connections being retired after lame-duck moves: they deliver until their retirement
    // ends, whatever happens to the connections after them meanwhile.
    let mut retiring = Retirements::default();
    loop {
        let est = match next.take() {
            Some(est) => est,
            None => match retiring.alongside(reconnect(&shared, tls.as_ref())).await {
                Some(est) => {
                    go_live(&shared, &est, std::mem::take(&mut unsent), reconnecting);
                    est
                }
                None => break,
            },
        };
        let addr = est.addr.clone();
        let server = addr.to_string();
        let mut chunk = ClientChunk::default();
        let stop = retiring
            .alongside(serve(&shared, est, &mut chunk, tls.as_ref()))
            .await;
        match stop {
            Stop::Closed => break,
            Stop::Lost(reason) => {
                warn!(%server, %reason, "connection lost");
                if let DisconnectReason::ServerError(e) = &reason
                    && e.is_auth_error()
                {
                    shared.pool().auth_failed(&addr, &e.kind);
                }
                unsent = go_offline(&shared, &mut chunk);
                shared.emit(Event::Disconnected { server, reason });
                reconnecting = true;
            }
            Stop::Handoff(handover) => {
                let Handover { new, old, unsent } = *handover;
                go_live(&shared, &new, unsent, true);
                retiring.push(Box::pin(retire(&shared, old)));
                next = Some(new);
            }
        }
    }
    shared.finish();
}

/// Makes a fresh connection the live one: new server limits, every live subscription sent
/// (again), then the bytes the last connection never sent, then what was buffered meanwhile.
pub(crate) fn go_live(shared: &Shared, est: &Established, unsent: BytesMut, reconnecting: bool) {
    let encoder = Encoder::for_server(&est.info);
    let event = {
        let mut guard = shared.out();
        let (out, mut session) = guard.session();
        let mut fresh = BytesMut::with_capacity(out.buffered() + unsent.len() + 1024);
        let event = session.connected(
            &encoder,
            &mut fresh,
            est.addr.clone(),
            est.info.clone(),
            reconnecting,
        );
        drop(session);
        fresh.extend_from_slice(&unsent);
        out.go_live(encoder, fresh);
        event
    };
    shared.pool().connected(&est.addr);
    shared.discovered(&est.info.connect_urls, &est.addr);
    shared.stats().connects.fetch_add(1, Relaxed);
    if reconnecting {
        shared.stats().reconnects.fetch_add(1, Relaxed);
        info!(server = %est.addr, "reconnected");
    }
    shared.report(event);
    shared.wake_writer();
    shared.wake_publishers();
}

/// Marks the link down and collects what must be sent again on the next connection.
fn go_offline(shared: &Shared, chunk: &mut ClientChunk) -> BytesMut {
    // The PONGs owed to the lost server are moot.
    let unsent = shared.connection_lost(chunk).bytes;
    {
        shared.out().go_offline();
    }
    // In-flight requests cannot get their reply on this connection any more.
    shared
        .requests()
        .fail_all(crate::inbox::Ended::Disconnected);
    unsent
}

/// Tries servers from the pool, with backoff, until one accepts or the client closes.
async fn reconnect(
    shared: &Shared,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Option<Established> {
    loop {
        if matches!(shared.state(), LinkState::Closing | LinkState::Closed) {
            return None;
        }
        let next = shared.pool().next(Instant::now());
        let Some((addr, wait, attempt)) = next else {
            warn!("no server left to reconnect to");
            shared.emit(Event::ReconnectsExhausted);
            return None;
        };
        shared.emit(Event::Reconnecting {
            attempt,
            server: addr.to_string(),
            delay: wait,
        });
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.close_requested() => continue,
            }
        }
        debug!(server = %addr, attempt, "reconnecting");
        match establish(&addr, shared.opts(), tls).await {
            Ok(est) => return Some(est),
            Err(e) => {
                warn!(server = %addr, error = %e, "reconnect attempt failed");
                shared
                    .pool()
                    .failed(&addr, &shared.opts().reconnect_delay, Instant::now());
                if let Some(error) = handshake_server_error(&e) {
                    if error.is_auth_error() {
                        shared.pool().auth_failed(&addr, &error.kind);
                    }
                    shared.emit(Event::ServerError {
                        server: addr.to_string(),
                        error,
                    });
                }
            }
        }
    }
}

async fn serve(
    shared: &Shared,
    est: Established,
    chunk: &mut ClientChunk,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Stop {
    let Established {
        transport,
        mut read_buf,
        mut parser,
        addr,
        ..
    } = est;
    let (mut rd, mut wr) = transport.into_halves();
    let lame_duck = Notify::new();
    let ended = tokio::select! {
        stop = read_loop(shared, &mut rd, &mut parser, &mut read_buf, &lame_duck) => Err(stop),
        stop = write_loop(shared, &mut wr, chunk) => Err(stop),
        new = find_replacement(shared, &addr, &lame_duck, tls) => Ok(new),
    };
    match ended {
        Err(Stop::Closed) => {
            let _ = wr.shutdown().await;
            Stop::Closed
        }
        Err(stop) => stop,
        Ok(new) => {
            let clean = finish_cut_op(chunk, &mut wr).await;
            let (state, unsent) = shared.handed_over(chunk, clean);
            let old = Retiring {
                rd,
                wr,
                parser,
                buf: read_buf,
                state,
            };
            Stop::Handoff(Box::new(Handover {
                new: *new,
                old,
                unsent,
            }))
        }
    }
}

/// Feeds the session what comes in: the server's ops, and the keep-alive timer (a PING every
/// `ping_interval`).
async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Shared,
    rd: &mut R,
    parser: &mut Parser,
    buf: &mut BytesMut,
    lame_duck: &Notify,
) -> Stop {
    let period = shared.opts().ping_interval.max(Duration::from_millis(10));
    let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        if let Err(stop) = handle_buffered(shared, parser, buf, lame_duck) {
            return stop;
        }
        match parser.bytes_needed() {
            Some(need) if need > buf.len() => buf.reserve(need - buf.len()),
            _ if buf.capacity() - buf.len() < 8 * 1024 => buf.reserve(64 * 1024),
            _ => {}
        }
        // Both are cancel-safe: a read that loses the race has read nothing.
        tokio::select! {
            read = rd.read_buf(buf) => match read {
                Ok(0) => return Stop::Lost(DisconnectReason::ServerClosed),
                Ok(_) => {}
                Err(e) => return Stop::Lost(DisconnectReason::io(&e)),
            },
            _ = keep_alive.tick() => {
                let action = shared.keep_alive_tick();
                if let Err(stop) = perform(shared, parser, lame_duck, action) {
                    return stop;
                }
            }
        }
    }
}

/// Handles every whole op in the buffer. Messages are routed under one lock of the
/// session per run of consecutive messages; every other op goes to the session, and its
/// decisions are carried out here.
fn handle_buffered(
    shared: &Shared,
    parser: &mut Parser,
    buf: &mut BytesMut,
    lame_duck: &Notify,
) -> Result<(), Stop> {
    loop {
        let read = ReadBuf {
            parser: &mut *parser,
            buf: &mut *buf,
        };
        let op = match shared.deliver_run(read, deliver_messages) {
            Delivered::NeedMore => return Ok(()),
            Delivered::Failed(e) => return Err(Stop::Lost(DisconnectReason::Protocol(e))),
            Delivered::Handler(handler, msg) => {
                handler(msg);
                continue;
            }
            Delivered::Op(op) => op,
        };
        for action in shared.server_op(op) {
            perform(shared, parser, lame_duck, action)?;
        }
    }
}

/// Carries out one of the session's decisions for the live connection.
fn perform(
    shared: &Shared,
    parser: &mut Parser,
    lame_duck: &Notify,
    action: Action<FlushWaiter>,
) -> Result<(), Stop> {
    match action {
        Action::Pong => {
            shared.out().pong();
            shared.wake_writer();
        }
        Action::Ping => {
            shared.out().want_ping();
            shared.wake_writer();
        }
        Action::Flushed(waiters) => Shared::flushed(waiters),
        Action::Limits(limits) => parser.set_limits(limits),
        Action::Discovered { urls, current } => shared.discovered(&urls, &current),
        Action::Move => lame_duck.notify_one(),
        Action::Event(event) => shared.report(event),
        Action::RefuseRequests(subject) => {
            shared.requests().refuse(&subject);
        }
        Action::Deliver(delivery) => {
            if let Some((handler, msg)) = shared.delivered(delivery) {
                handler(msg);
            }
        }
        Action::Close(reason) => return Err(Stop::Lost(reason)),
    }
    Ok(())
}

/// The `-ERR` a failed handshake got from the server, if that is why it failed.
pub(crate) fn handshake_server_error(e: &ConnectError) -> Option<ServerError> {
    match e {
        ConnectError::AuthorizationViolation(text) | ConnectError::Server(text) => {
            Some(ServerError::parse(text))
        }
        _ => None,
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    shared: &Shared,
    wr: &mut W,
    chunk: &mut ClientChunk,
) -> Stop {
    loop {
        if chunk.is_done() {
            if let Some(waiters) = chunk.finished() {
                shared.ping_sent(waiters);
            }
            if let Err(stop) = next_chunk(shared, chunk).await {
                return stop;
            }
            continue;
        }
        match write_some(wr, chunk).await {
            Ok(0) => {
                let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                return Stop::Lost(DisconnectReason::io(&e));
            }
            Ok(n) => chunk.written += n,
            Err(e) => return Stop::Lost(DisconnectReason::io(&e)),
        }
        if chunk.is_done() {
            // The PING is handed over: its PONG may come before this task writes again.
            if let Some(waiters) = chunk.waiters.take() {
                shared.ping_sent(waiters);
            }
            if let Err(e) = wr.flush().await {
                return Stop::Lost(DisconnectReason::io(&e));
            }
        }
    }
}

/// Most slices one vectored write hands the socket (Linux takes up to 1024; past a few
/// dozen, a large payload per slice fills any socket buffer).
const MAX_SLICES: usize = 64;

/// Writes what it can of the chunk's unwritten bytes: one slice when they are in one piece,
/// else a vectored write of its segments (large payloads written from where they are).
async fn write_some<W: AsyncWrite + Unpin>(
    wr: &mut W,
    chunk: &ClientChunk,
) -> std::io::Result<usize> {
    if !chunk.bytes.is_segmented() {
        return wr.write(&chunk.bytes.tail()[chunk.written..]).await;
    }
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let n = chunk.bytes.slices(chunk.written, &mut slices);
    wr.write_vectored(&slices[..n]).await
}

/// Waits for buffered bytes and swaps them into `chunk` (plus a PING when flushes wait).
async fn next_chunk(shared: &Shared, chunk: &mut ClientChunk) -> Result<(), Stop> {
    loop {
        let notified = shared.writer_woken();
        let took = shared.out().take_chunk(chunk);
        match took {
            Take::Chunk => {
                shared.wake_publishers();
                return Ok(());
            }
            Take::Closing => return Err(Stop::Closed),
            Take::Idle => {}
        }
        notified.await;
    }
}
