//! Shared by the admin integration tests: clients for the harness's 3-node cluster.

#![allow(dead_code)] // each test file uses a different part

use std::time::Duration;

use admin::{SysClient, Timing};
use nats_client::{Client, ConnectOptions};
use nats_tests::{Cluster, SYS_USER};

/// The timing the tests use: longer than the defaults, so that a server slowed down by a
/// loaded machine is not taken for a missing one (the quiet period only runs out when fewer
/// servers than known answer).
pub const TIMING: Timing = Timing {
    quiet: Duration::from_secs(2),
    deadline: Duration::from_secs(10),
};

/// A system-account client connected to node `node` only (so the node it talks through
/// stays up when a test kills another).
pub async fn sys_client(cluster: &Cluster, node: usize) -> SysClient {
    let client = ConnectOptions::new()
        .user_and_password(SYS_USER.user, SYS_USER.password)
        .ignore_discovered_servers()
        .connect(&cluster.node(node).url())
        .await
        .expect("the system user connects");
    SysClient::with_timing(client, TIMING)
        .await
        .expect("the system user reaches $SYS")
}

/// An application client (no credentials: the cluster's `no_auth_user` puts it in `APP`)
/// on node `node`, with a connection name.
pub async fn app_client(cluster: &Cluster, node: usize, name: &str) -> Client {
    ConnectOptions::new()
        .name(name)
        .reconnect_backoff(nats_client::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..nats_client::Backoff::default()
        })
        .connect(&cluster.node(node).url())
        .await
        .expect("the app client connects")
}

/// Polls `check` every 100 ms until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for a `Disconnected` and then a `Reconnected` event on `events`.
pub async fn disconnected_then_reconnected(
    events: &mut tokio::sync::broadcast::Receiver<nats_client::Event>,
    timeout: Duration,
) -> Result<(), String> {
    let wait = async {
        let mut lost = false;
        loop {
            match events.recv().await {
                Ok(nats_client::Event::Disconnected { .. }) => lost = true,
                Ok(nats_client::Event::Reconnected { .. }) if lost => return Ok(()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(format!("events ended: {e}")),
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| "no disconnect and reconnect in time".to_string())?
}
