//! Helpers shared by the integration tests: a JetStream server, a context, unique names.

#![allow(dead_code)] // each test file uses a different subset

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use jetstream::{Context, StorageType, StreamConfig};
use nats_tests::NatsServer;

/// A single JetStream server (started on a blocking thread) and a context connected to it.
pub async fn setup() -> (NatsServer, Context) {
    let server = tokio::task::spawn_blocking(NatsServer::jetstream)
        .await
        .expect("start nats-server");
    let js = connect(&server).await;
    (server, js)
}

pub async fn connect(server: &NatsServer) -> Context {
    let client = nats_client::ConnectOptions::new()
        .connect(&server.url())
        .await
        .expect("connect");
    jetstream::new(client).with_timeout(Duration::from_secs(5))
}

/// A name unique within the test binary, e.g. `S3`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A memory stream named `name` on `<name-lowercase>.>`.
pub fn memory_stream(name: &str) -> StreamConfig {
    StreamConfig {
        storage: StorageType::Memory,
        ..StreamConfig::new(name, [format!("{}.>", name.to_lowercase())])
    }
}

/// Panics unless `fut` finishes within `secs` seconds.
pub async fn within<F: std::future::Future>(secs: u64, what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {secs} s"))
}

/// The next message of `messages` that is not a redelivery of `already_acked`, skipping
/// reported trouble (missed heartbeats). After a server crash the server may deliver a
/// message again although its ack was confirmed: the consumer's state reaches disk
/// asynchronously and JetStream promises at-least-once, so a test may see it again.
pub async fn next_new(
    messages: &mut jetstream::Messages,
    already_acked: &[u8],
) -> jetstream::JsMessage {
    loop {
        match messages.next().await.expect("message stream ended") {
            Ok(m) if &m.payload[..] == already_acked => {
                eprintln!("redelivered after the restart (at-least-once): {already_acked:?}");
                m.ack().await.expect("ack the redelivery");
            }
            Ok(m) => return m,
            Err(jetstream::JetStreamError::HeartbeatMissed { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

/// A context on a client connected to `url` (one URL or a comma-separated list).
pub async fn context(url: &str) -> Context {
    let client = nats_client::ConnectOptions::new()
        .connect(url)
        .await
        .expect("connect");
    jetstream::new(client).with_timeout(Duration::from_secs(5))
}

/// Creates the R3 stream `name` on `subject`, retrying while a just-formed cluster has no
/// JetStream meta leader yet (creation fails until the election is over).
pub async fn create_r3_stream(js: &Context, name: &str, subject: &str) {
    within(30, "R3 stream", async {
        let config = StreamConfig {
            num_replicas: 3,
            ..StreamConfig::new(name, [subject])
        };
        while let Err(e) = js.create_stream(config.clone()).await {
            eprintln!("create stream {name}: {e}; again");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
}
