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
//!
//! The move's bookkeeping and decisions are the session's `Retirement` (its phases, which
//! PONG ends it, what is written when); this module is its driver: it finds the replacement,
//! moves the old connection's bytes and timers, and carries out the retirement's steps.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nats_proto::{Parser, ServerOp};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};
use tracing::{debug, info, warn};

use crate::addr::ServerAddr;
use crate::handshake::{Established, establish};
use crate::outbound::LinkState;
use crate::session::{Retirement, Step};
use crate::shared::ClientChunk;
use crate::shared::{Delivered, ReadBuf, Shared, deliver_messages};
use crate::sub_queue::Target;
use crate::transport::{Reader, Writer};

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

/// The retirements in progress, polled alongside whatever the connection task does.
#[derive(Default)]
pub(crate) struct Retirements<'a> {
    running: Vec<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>,
}

impl<'a> Retirements<'a> {
    pub fn push(&mut self, retirement: Pin<Box<dyn Future<Output = ()> + Send + 'a>>) {
        self.running.push(retirement);
    }

    /// Runs `work` to its end while the retirements go on.
    pub async fn alongside<F: Future>(&mut self, work: F) -> F::Output {
        let retirements = std::future::poll_fn(|cx| {
            self.running
                .retain_mut(|r| r.as_mut().poll(cx).is_pending());
            Poll::<std::convert::Infallible>::Pending
        });
        tokio::select! {
            out = work => out,
            never = retirements => match never {},
        }
    }
}

/// A handoff stops the writer where it is, which may be inside an op. The old connection is
/// healthy, so the op is completed there rather than abandoned: whatever is written to that connection later (the retirement's
/// UNSUBs) would otherwise be read by the server as the rest of the op, and could even
/// complete a PUB with the wrong payload. The completed op is then not sent again on the new
/// connection. Returns whether the stream is clean; if completing fails or stalls it is not,
/// and the op goes out whole on the new connection, as after a lost connection.
pub(crate) async fn finish_cut_op<W: AsyncWrite + Unpin>(
    chunk: &mut ClientChunk,
    wr: &mut W,
) -> bool {
    let Some(rest) = chunk.cut_frame_rest() else {
        return true;
    };
    if !write_within(wr, &chunk.contiguous()[rest.clone()]).await {
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

/// Drives the old connection's [`Retirement`]: feeds it the new server's proof, the probe's
/// return, its timers and the old server's ops, and carries out its steps; delivers the old
/// connection's messages meanwhile. Returns when the retirement is over (the old connection
/// closes as `old` is dropped: for plain TCP, `shutdown` is a no-op and the socket closes when
/// its last handle goes).
pub(crate) async fn retire(shared: &Shared, mut old: Retiring) {
    // A probe subscription on the new connection only, sent after every re-sent SUB; the
    // flush's PONG then proves the new server holds them all.
    let probe_subject = format!("{}.{}.ldm", shared.opts().inbox_prefix, nuid::next());
    let arrived = Arc::new(Notify::new());
    let signal = arrived.clone();
    let mut probe = ProbeSub {
        shared,
        sid: shared
            .add_subscription(
                &probe_subject,
                None,
                Target::Handler(Arc::new(move |_| signal.notify_one())),
            )
            .ok(),
    };
    let mut steps = old
        .state
        .begin(probe.sid.is_some().then_some(probe_subject.as_str()));
    let (tx, mut proven) = oneshot::channel();
    let _ = shared.out().add_flush_waiter(tx); // refused once closing: the wait ends
    shared.wake_writer();
    let mut awaiting_proof = true;
    match take_buffered(shared, &mut old) {
        Some(more) => steps.extend(more),
        None => return,
    }
    loop {
        for step in steps.drain(..) {
            match step {
                Step::Write(bytes) => {
                    if old.wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::EndProbe => probe.end(),
                Step::ProbeTimedOut => {
                    warn!("no sign that our subscriptions reached the lame-duck server; moving on");
                }
                Step::Close => {
                    let _ = old.wr.shutdown().await;
                    debug!("lame-duck connection retired");
                    return;
                }
            }
        }
        let wake = old.state.wake_at().map(tokio::time::Instant::from_std);
        steps = tokio::select! {
            _ = &mut proven, if awaiting_proof => {
                // A closing client drops the waiter: going on is harmless, the task ends.
                awaiting_proof = false;
                old.state.new_server_proven(now())
            }
            () = arrived.notified() => old.state.probe_arrived(now()),
            () = sleep_until(wake), if wake.is_some() => {
                let live = shared.state() == LinkState::Connected;
                old.state.timer(now(), live, || shared.sids())
            }
            // Cancel-safe: a read that loses the race has read nothing.
            read = old.rd.read_buf(&mut old.buf) => match read {
                Ok(0) | Err(_) => {
                    old.state.old_lost();
                    return;
                }
                Ok(_) => match take_buffered(shared, &mut old) {
                    Some(steps) => steps,
                    None => return,
                },
            },
        };
    }
}

/// The driver's clock, as the session takes it (tokio's, so that a paused test clock rules).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Delivers the old connection's buffered messages and gives the retirement its other ops.
/// `None` when the stream is broken.
fn take_buffered(shared: &Shared, old: &mut Retiring) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    loop {
        let read = ReadBuf {
            parser: &mut old.parser,
            buf: &mut old.buf,
        };
        match shared.deliver_run(read, deliver_messages) {
            Delivered::Handler(handler, msg) => handler(msg),
            Delivered::Op(ServerOp::BadMsg(bad)) => shared.undeliverable(bad),
            Delivered::Op(op) => steps.extend(old.state.old_op(&op)),
            Delivered::NeedMore => return Some(steps),
            Delivered::Failed(_) => {
                old.state.old_lost();
                return None;
            }
        }
    }
}

/// The probe subscription of [`retire`]; unsubscribed when it ends, or when dropped however
/// the retirement ends.
struct ProbeSub<'a> {
    shared: &'a Shared,
    sid: Option<u64>,
}

impl ProbeSub<'_> {
    fn end(&mut self) {
        if let Some(sid) = self.sid.take() {
            let _ = self.shared.send_unsub(sid, None, true);
        }
    }
}

impl Drop for ProbeSub<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(bytes: &[u8], written: usize) -> ClientChunk {
        ClientChunk {
            bytes: BytesMut::from(bytes).into(),
            written,
            ..ClientChunk::default()
        }
    }

    #[tokio::test]
    async fn a_cut_publish_is_completed_and_not_sent_again() {
        let mut c = chunk(b"PUB a 3\r\nabc\r\nPUB b 1\r\nx\r\n", 5);
        let mut wire = Vec::new();
        let clean = finish_cut_op(&mut c, &mut wire).await;
        assert!(clean);
        assert_eq!(&wire[..], b" 3\r\nabc\r\n");
        assert_eq!(&c.take_unsent().bytes[..], b"PUB b 1\r\nx\r\n");
    }

    #[tokio::test]
    async fn a_cut_ping_is_completed() {
        let mut c = chunk(b"PUB a 1\r\nx\r\nPING\r\n", 14);
        let mut wire = Vec::new();
        let clean = finish_cut_op(&mut c, &mut wire).await;
        assert!(clean);
        assert_eq!(&wire[..], b"NG\r\n");
        assert!(c.take_unsent().bytes.is_empty());
    }

    #[tokio::test]
    async fn a_failed_completion_leaves_the_op_to_the_new_connection() {
        let mut c = chunk(b"PUB a 3\r\nabc\r\n", 5);
        let (mut wr, rd) = tokio::io::duplex(64);
        drop(rd);
        let clean = finish_cut_op(&mut c, &mut wr).await;
        assert!(!clean);
        assert_eq!(&c.take_unsent().bytes[..], b"PUB a 3\r\nabc\r\n");
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
