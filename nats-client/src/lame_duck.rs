//! Lame duck: when the server announces it will shut down (INFO `ldm: true`), the client moves
//! to another server on its own, without losing messages already routed to it.
//!
//! The move is make-before-break: connect to another server, send every subscription there
//! and wait for its PONG (the new server has them), give the cluster a moment to propagate the
//! interest over its routes, and only then UNSUB everything on the old connection, read it
//! until the PONG that follows, and close it. Meanwhile the old connection keeps delivering.
//! The price of no loss is that a message published during the overlap can arrive twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nats_proto::{Encoder, Parser, ServerOp};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};
use tracing::{debug, info, warn};

use crate::addr::ServerAddr;
use crate::handshake::{Established, establish};
use crate::lock;
use crate::shared::Shared;
use crate::transport::{Reader, Writer};

/// Time given to the cluster to carry our new subscriptions over its routes before the old
/// ones are removed.
const PROPAGATION_GRACE: Duration = Duration::from_millis(100);

/// The old connection, still delivering while its replacement takes over.
pub(crate) struct Retiring {
    pub rd: Reader,
    pub wr: Writer,
    pub parser: Parser,
    pub buf: BytesMut,
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
    let max = shared.opts.lame_duck_jitter;
    if !max.is_zero() {
        let jitter = rand::rng().random_range(Duration::ZERO..=max);
        tokio::time::sleep(jitter).await;
    }
    loop {
        let candidates: Vec<ServerAddr> = lock(&shared.pool)
            .addrs()
            .into_iter()
            .filter(|a| a != current)
            .collect();
        for addr in candidates {
            match establish(&addr, &shared.opts, tls).await {
                Ok(est) => {
                    info!(from = %current, to = %addr, "moving off a lame-duck server");
                    return Box::new(est);
                }
                Err(e) => {
                    warn!(server = %addr, error = %e, "lame-duck move attempt failed");
                    lock(&shared.pool).failed(&addr, &shared.opts.reconnect_delay, Instant::now());
                }
            }
        }
        // Nowhere to go yet: stay until the server closes us (then the normal reconnect runs).
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Keeps delivering from the old connection until the new one holds our subscriptions, then
/// unsubscribes the old one, drains it up to its PONG, and closes it. Never returns.
pub(crate) async fn retire(shared: &Shared, mut old: Retiring) -> ! {
    let (tx, rx) = oneshot::channel();
    lock(&shared.out).flush_waiters.push(tx);
    shared.writer_wake.notify_one();
    let done = async {
        // 1. Wait for the new server's PONG after our re-sent SUBs.
        let confirmed = async {
            let _ = rx.await;
            tokio::time::sleep(PROPAGATION_GRACE).await;
        };
        tokio::select! {
            _ = confirmed => {}
            _ = pump(shared, &mut old, false) => return,
        }
        // 2. UNSUB everything on the old connection, PING, and read until its PONG.
        let mut out = BytesMut::new();
        let encoder = Encoder::default();
        let sids: Vec<u64> = lock(&shared.subs).keys().copied().collect();
        for sid in sids {
            encoder.unsubscribe(&mut out, sid, None);
        }
        encoder.ping(&mut out);
        if old.wr.write_all(&out).await.is_err() {
            return;
        }
        pump(shared, &mut old, true).await;
        let _ = old.wr.shutdown().await;
        debug!("lame-duck connection retired");
    };
    done.await;
    std::future::pending().await
}

/// Routes the old connection's messages; answers its PINGs. With `until_pong`, returns at the
/// first PONG; otherwise returns only when the connection ends.
async fn pump(shared: &Shared, old: &mut Retiring, until_pong: bool) {
    loop {
        loop {
            match old.parser.parse(&mut old.buf) {
                Ok(Some(ServerOp::Msg(msg))) => {
                    let handed_back = shared.dispatch(&mut lock(&shared.subs), msg);
                    if let Some((handler, msg)) = handed_back {
                        handler(msg);
                    }
                }
                Ok(Some(ServerOp::Pong)) if until_pong => return,
                Ok(Some(ServerOp::Ping)) => {
                    if old.wr.write_all(b"PONG\r\n").await.is_err() {
                        return;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match old.rd.read_buf(&mut old.buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
