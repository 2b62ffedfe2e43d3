//! Waiting for conditions: the readiness checks of servers and clusters are built on these.

use std::time::{Duration, Instant};

/// How long a single server may take to answer `/healthz` with 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a cluster may take to form (routes between all nodes, a JetStream meta leader).
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// How often conditions are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `check` until it returns true or `timeout` passes; returns whether it became true.
pub fn poll_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `check` until it returns true.
///
/// # Panics
/// When `timeout` passes first; the message says what was awaited (`what`).
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, check: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, check),
        "timed out after {timeout:?} waiting for {what}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_true() {
        let mut calls = 0;
        wait_until(Duration::from_secs(1), "third call", || {
            calls += 1;
            calls == 3
        });
        assert_eq!(calls, 3);
        assert!(!poll_until(Duration::from_millis(60), || false));
    }
}
