//! The memory scenario (ours only): what 10k subscriptions cost, and that a long run of
//! requests does not grow the process or leave request entries behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use futures::StreamExt;
use nats_client::Client;
use serde::Serialize;

use crate::common::{BenchError, rss_kib};

/// Subscriptions made on one client.
pub const SUBSCRIPTIONS: usize = 10_000;
/// Requests in flight at once during the request run.
pub const CONCURRENCY: usize = 8;

/// What the memory scenario found.
#[derive(Debug, Serialize)]
pub struct MemoryReport {
    pub subscriptions: usize,
    pub rss_before_subscribe_kib: u64,
    pub rss_after_subscribe_kib: u64,
    pub bytes_per_subscription: f64,
    pub rss_after_unsubscribe_kib: u64,
    pub requests: u64,
    pub concurrency: usize,
    /// (requests done so far, RSS in KiB), the first point after a warm-up.
    pub rss_at: Vec<(u64, u64)>,
    /// RSS at the end minus RSS at the second checkpoint (10% of the run).
    pub growth_kib: i64,
    pub requests_per_s: f64,
    pub pending_requests_at_end: usize,
}

pub async fn run(url: &str, requests: u64) -> Result<MemoryReport, BenchError> {
    let client = nats_client::connect(url).await?;
    client.flush().await?;
    let rss_before_subscribe_kib = rss_kib();
    let mut subs = Vec::with_capacity(SUBSCRIPTIONS);
    for i in 0..SUBSCRIPTIONS {
        subs.push(client.subscribe(format!("bench.memory.sub.{i}")).await?);
    }
    client.flush().await?;
    let rss_after_subscribe_kib = rss_kib();
    drop(subs);
    client.flush().await?;
    let rss_after_unsubscribe_kib = rss_kib();
    client.close().await?;

    let responder = nats_client::connect(url).await?;
    let mut sub = responder.subscribe("bench.memory.rr").await?;
    responder.flush().await?;
    let answering = responder.clone();
    let serve = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if answering.respond(&msg, &msg.payload).await.is_err() {
                break;
            }
        }
    });

    let requester = nats_client::connect(url).await?;
    let checkpoints = [requests / 100, requests / 10, requests / 2, requests];
    let done = Arc::new(AtomicU64::new(0));
    let mut rss_at = Vec::new();
    let start = Instant::now();
    for upto in checkpoints {
        run_requests(&requester, &done, upto).await?;
        rss_at.push((upto, rss_kib()));
    }
    let elapsed = start.elapsed();
    let pending_requests_at_end = requester.pending_requests();
    requester.close().await?;
    serve.abort();
    responder.close().await?;

    let growth_kib =
        rss_at.last().map_or(0, |l| l.1 as i64) - rss_at.get(1).map_or(0, |c| c.1 as i64);
    Ok(MemoryReport {
        subscriptions: SUBSCRIPTIONS,
        rss_before_subscribe_kib,
        rss_after_subscribe_kib,
        bytes_per_subscription: (rss_after_subscribe_kib.saturating_sub(rss_before_subscribe_kib)
            * 1024) as f64
            / SUBSCRIPTIONS as f64,
        rss_after_unsubscribe_kib,
        requests,
        concurrency: CONCURRENCY,
        rss_at,
        growth_kib,
        requests_per_s: requests as f64 / elapsed.as_secs_f64(),
        pending_requests_at_end,
    })
}

/// Runs requests with [`CONCURRENCY`] in flight until `done` reaches `upto`.
async fn run_requests(client: &Client, done: &Arc<AtomicU64>, upto: u64) -> Result<(), BenchError> {
    let mut workers = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        let (client, done) = (client.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let payload = [b'x'; 16];
            while done.fetch_add(1, Relaxed) < upto {
                client.request("bench.memory.rr", &payload[..]).await?;
            }
            Ok::<(), BenchError>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    // Every worker overshot by one increment when it stopped.
    done.store(upto, Relaxed);
    Ok(())
}
