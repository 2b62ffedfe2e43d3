//! Pieces every client's runs share: the error type, waiting for a subscriber, percentiles.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::scenario::IDLE_TIMEOUT;

/// Errors of a benchmark run: any failure ends the run with its message.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Waits (after the publisher's flush returned) until the subscriber task has received every
/// message, or nothing new arrived for [`IDLE_TIMEOUT`]. The task counts into `received` and
/// returns the instant it saw the last message. Returns (received, elapsed since `start`).
pub async fn wait_for_subscriber(
    mut task: JoinHandle<Option<Instant>>,
    received: &AtomicU64,
    start: Instant,
) -> (u64, Duration) {
    let mut last = received.load(Relaxed);
    let mut last_change = Instant::now();
    loop {
        tokio::select! {
            done = &mut task => {
                let end = match done {
                    Ok(Some(at)) => at,
                    _ => Instant::now(),
                };
                return (received.load(Relaxed), end - start);
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                let now = received.load(Relaxed);
                if now != last {
                    last = now;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= IDLE_TIMEOUT {
                    task.abort();
                    return (now, last_change - start);
                }
            }
        }
    }
}

/// Resident set size of this process in KiB (`VmRSS` in /proc/self/status); 0 where unknown.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
