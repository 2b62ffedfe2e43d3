//! The continuous pull issues a fresh pull request as soon as the client reconnects, without
//! waiting for a missed heartbeat: the restarted server forgot the old request.

mod common;

use std::time::Duration;

use common::{next_new, setup, unique, within};
use futures::StreamExt;
use jetstream::{ConsumeOptions, ConsumerConfig, StorageType, StreamConfig};
use tokio::task::spawn_blocking;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_triggers_a_fresh_pull() {
    let (server, js) = setup().await;
    let name = unique("RC");
    let subject = format!("{}.a", name.to_lowercase());
    let stream = js
        .create_stream(StreamConfig {
            storage: StorageType::File,
            ..StreamConfig::new(&name, [format!("{}.>", name.to_lowercase())])
        })
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("rc"))
        .await
        .unwrap();
    // Long expiry and heartbeat: only the reconnect can explain a quick delivery.
    let mut messages = consumer
        .consume(ConsumeOptions {
            expires: Duration::from_secs(120),
            idle_heartbeat: Duration::from_secs(30),
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    js.publish(&subject, "before").await.unwrap();
    let m = within(5, "before", messages.next()).await.unwrap().unwrap();
    m.double_ack().await.unwrap();

    let mut events = js.client().events();
    let server = spawn_blocking(move || {
        // A crash, not a shutdown: a stopping server tells waiting pulls `409 Server
        // Shutdown`, which would make the consumer pull again by itself.
        let mut s = server;
        s.kill();
        s.restart();
        s
    })
    .await
    .unwrap();
    within(15, "reconnected", async {
        loop {
            if let Ok(nats_client::Event::Reconnected { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await;
    js.publish(&subject, "after").await.unwrap();
    // The restarted server may deliver "before" again (its ack reached disk asynchronously:
    // at-least-once); what must come, long before the 30 s heartbeat, is "after".
    let m = within(
        10,
        "delivery after the reconnect",
        next_new(&mut messages, b"before"),
    )
    .await;
    assert_eq!(&m.payload[..], b"after");
    drop(server);
}
