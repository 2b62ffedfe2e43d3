//! Lame duck: when the server announces it will shut down (INFO `ldm: true`), the client moves
//! to another server on its own, without losing messages already routed to it.
//!
//! The move is make-before-break: connect to another server, send every subscription there
//! and wait for its PONG (the new server has them), publish a probe on the old connection
//! until it comes back through the new one (the old server has learnt our interest over the
//! routes), and only then UNSUB everything on the old connection, read it until the PONG that
//! follows, and close it. Meanwhile the old connection keeps delivering. The price of no loss
//! is that a message published during the overlap can arrive twice. An op the writer was
//! cut in the middle of is completed on the old connection (see [`finish_cut_op`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nats_proto::{Encoder, Parser, ServerOp};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};
use tracing::{debug, info, warn};

use crate::addr::ServerAddr;
use crate::handshake::{Established, establish};
use crate::outbound::Chunk;
use crate::session::Retirement;
use crate::shared::{Delivered, ReadBuf, Shared, deliver_messages};
use crate::sub_queue::Target;
use crate::transport::{Reader, Writer};

/// Time given to the other nodes of the cluster to learn our new subscriptions, once the old
/// server is known to have them.
const PROPAGATION_GRACE: Duration = Duration::from_millis(100);

/// Longest wait for the old server to learn our new subscriptions before going ahead anyway.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the probe is published to the old server while waiting.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// How long completing a cut op on the old connection may take (see [`finish_cut_op`]).
const CUT_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// The old connection, still delivering while its replacement takes over.
pub(crate) struct Retiring {
    pub rd: Reader,
    pub wr: Writer,
    pub parser: Parser,
    pub buf: BytesMut,
    pub state: Retirement,
}

/// A handoff stops the writer where it is, which may be inside an op. The old connection is
/// healthy, so the op is completed there rather than abandoned: whatever is written to that connection later (the retirement's
/// UNSUBs) would otherwise be read by the server as the rest of the op, and could even
/// complete a PUB with the wrong payload. The completed op is then not sent again on the new
/// connection. Returns whether the stream is clean; if completing fails or stalls it is not,
/// and the op goes out whole on the new connection, as after a lost connection.
pub(crate) async fn finish_cut_op<W: AsyncWrite + Unpin>(chunk: &mut Chunk, wr: &mut W) -> bool {
    let Some(rest) = chunk.cut_frame_rest() else {
        return true;
    };
    if !write_within(wr, &chunk.bytes[rest.clone()]).await {
        return false;
    }
    chunk.written = rest.end;
    true
}

async fn write_within<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> bool {
    let write = async {
        wr.write_all(bytes).await?;
        wr.flush().await
    };
    matches!(
        tokio::time::timeout(CUT_OP_TIMEOUT, write).await,
        Ok(Ok(()))
    )
}

/// Waits for the lame-duck signal, then connects to another server of the pool (after a
/// random delay, so a server's clients do not all move at once). Returns the new connection.
pub(crate) async fn find_replacement(
    shared: &Shared,
    current: &ServerAddr,
    signal: &Notify,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Box<Established> {
    signal.notified().await;
    let max = shared.opts().lame_duck_jitter;
    if !max.is_zero() {
        let jitter = rand::rng().random_range(Duration::ZERO..=max);
        tokio::time::sleep(jitter).await;
    }
    loop {
        let candidates: Vec<ServerAddr> = shared
            .pool()
            .addrs()
            .into_iter()
            .filter(|a| a != current)
            .collect();
        for addr in candidates {
            match establish(&addr, shared.opts(), tls).await {
                Ok(est) => {
                    info!(from = %current, to = %addr, "moving off a lame-duck server");
                    return Box::new(est);
                }
                Err(e) => {
                    warn!(server = %addr, error = %e, "lame-duck move attempt failed");
                    shared
                        .pool()
                        .failed(&addr, &shared.opts().reconnect_delay, Instant::now());
                }
            }
        }
        // Nowhere to go yet: stay until the server closes us (then the normal reconnect runs).
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Keeps delivering from the old connection until our subscriptions on the new one are known
/// to the old server, then unsubscribes the old one, drains it up to its PONG, and closes it.
pub(crate) async fn retire(shared: &Shared, mut old: Retiring) {
    // A probe subscription on the new connection only, sent after every re-sent SUB; the
    // flush's PONG then proves the new server holds them all.
    let probe_subject = format!("{}.{}.ldm", shared.opts().inbox_prefix, nuid::next());
    let arrived = Arc::new(Notify::new());
    let signal = arrived.clone();
    let probe = ProbeSub {
        shared,
        sid: shared
            .add_subscription(
                &probe_subject,
                None,
                Target::Handler(Arc::new(move |_| signal.notify_one())),
            )
            .ok(),
    };
    let (tx, rx) = oneshot::channel();
    let _ = shared.out().add_flush_waiter(tx); // refused once closing: the wait ends
    shared.wake_writer();
    // `old` moves into this block, so the connection closes when it ends (for plain TCP,
    // `shutdown` is a no-op: the socket closes when its last handle is dropped).
    let done = async move {
        // 1. Wait for the new server's PONG after our re-sent SUBs.
        tokio::select! {
            _ = rx => {}
            _ = pump(shared, &mut old, false) => return,
        }
        if !old.state.is_clean() {
            // An op is cut short on the old connection: nothing more may be written to it.
            // Keep delivering until the server closes it.
            pump(shared, &mut old, false).await;
            return;
        }
        // 2. Publish to the probe on the old server until it comes back on the new
        //    connection: the old server then knows our interest there (the new server sent
        //    it over the route after all the others). Then a grace for the other nodes.
        let mut frame = BytesMut::new();
        let encoder = Encoder::default();
        if probe.sid.is_some()
            && encoder
                .publish(&mut frame, &probe_subject, None, None, &[])
                .is_ok()
        {
            let deadline = Instant::now() + PROPAGATION_TIMEOUT;
            let propagated = loop {
                if write_old(&mut old, &frame).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = arrived.notified() => break true,
                    _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                    _ = pump(shared, &mut old, false) => return,
                }
                if Instant::now() >= deadline {
                    break false;
                }
            };
            if !propagated {
                warn!("no sign that our subscriptions reached the lame-duck server; moving on");
            }
        }
        drop(probe);
        tokio::select! {
            _ = tokio::time::sleep(PROPAGATION_GRACE) => {}
            _ = pump(shared, &mut old, false) => return,
        }
        // 3. UNSUB everything on the old connection, PING, and read until its PONG.
        let mut out = BytesMut::new();
        let sids = shared.sids();
        for sid in sids {
            encoder.unsubscribe(&mut out, sid, None);
        }
        encoder.ping(&mut out);
        if write_old(&mut old, &out).await.is_err() {
            return;
        }
        pump(shared, &mut old, true).await;
        let _ = old.wr.shutdown().await;
        drop(old);
        debug!("lame-duck connection retired");
    };
    done.await;
}

/// The probe subscription of [`retire`]; unsubscribed when dropped, however retirement ends.
struct ProbeSub<'a> {
    shared: &'a Shared,
    sid: Option<u64>,
}

impl Drop for ProbeSub<'_> {
    fn drop(&mut self) {
        if let Some(sid) = self.sid {
            let _ = self.shared.send_unsub(sid, None, true);
        }
    }
}

/// Writes `bytes` to the old connection, after the PONGs owed to its PINGs.
async fn write_old(old: &mut Retiring, bytes: &[u8]) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    old.state.write(&Encoder::default(), &mut out, bytes);
    old.wr.write_all(&out).await
}

/// Routes the old connection's messages. With `until_pong`, returns at the first PONG that
/// answers the retirement's PING; otherwise returns only when the connection ends. It never
/// writes (it is cancelled at arbitrary points, and a write cut short would corrupt the
/// stream): the server's PINGs are counted and answered by the next [`write_old`].
async fn pump(shared: &Shared, old: &mut Retiring, until_pong: bool) {
    loop {
        loop {
            let read = ReadBuf {
                parser: &mut old.parser,
                buf: &mut old.buf,
            };
            match shared.deliver_run(read, deliver_messages) {
                Delivered::Handler(handler, msg) => handler(msg),
                Delivered::Op(ServerOp::BadMsg(bad)) => shared.undeliverable(bad),
                Delivered::Op(ServerOp::Pong) => {
                    if old.state.pong() && until_pong {
                        return;
                    }
                }
                Delivered::Op(ServerOp::Ping) => old.state.ping(),
                Delivered::Op(_) => {}
                Delivered::NeedMore => break,
                Delivered::Failed(_) => return,
            }
        }
        match old.rd.read_buf(&mut old.buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(bytes: &[u8], written: usize) -> Chunk {
        Chunk {
            bytes: BytesMut::from(bytes),
            written,
            waiters: None,
            ping_at: None,
        }
    }

    #[tokio::test]
    async fn a_cut_publish_is_completed_and_not_sent_again() {
        let mut c = chunk(b"PUB a 3\r\nabc\r\nPUB b 1\r\nx\r\n", 5);
        let mut wire = Vec::new();
        let clean = finish_cut_op(&mut c, &mut wire).await;
        assert!(clean);
        assert_eq!(&wire[..], b" 3\r\nabc\r\n");
        assert_eq!(&c.take_unsent()[..], b"PUB b 1\r\nx\r\n");
    }

    #[tokio::test]
    async fn a_cut_ping_is_completed() {
        let mut c = chunk(b"PUB a 1\r\nx\r\nPING\r\n", 14);
        let mut wire = Vec::new();
        let clean = finish_cut_op(&mut c, &mut wire).await;
        assert!(clean);
        assert_eq!(&wire[..], b"NG\r\n");
        assert!(c.take_unsent().is_empty());
    }

    #[tokio::test]
    async fn a_failed_completion_leaves_the_op_to_the_new_connection() {
        let mut c = chunk(b"PUB a 3\r\nabc\r\n", 5);
        let (mut wr, rd) = tokio::io::duplex(64);
        drop(rd);
        let clean = finish_cut_op(&mut c, &mut wr).await;
        assert!(!clean);
        assert_eq!(&c.take_unsent()[..], b"PUB a 3\r\nabc\r\n");
    }

    #[tokio::test]
    async fn nothing_cut_nothing_written() {
        let mut c = chunk(b"PUB a 3\r\nabc\r\n", 14);
        let mut wire = Vec::new();
        let clean = finish_cut_op(&mut c, &mut wire).await;
        assert!(clean);
        assert!(wire.is_empty());
    }
}
