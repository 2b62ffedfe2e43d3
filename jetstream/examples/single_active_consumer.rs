//! RabbitMQ's single active consumer (`x-single-active-consumer`) on JetStream: a consumer
//! with a pinned-client priority group. Start this twice: one process gets every message,
//! the other waits; stop the first (Ctrl-C, or kill it) and the second takes over, beginning
//! with the message the first left unacknowledged, in order.
//!
//! Needs a JetStream-enabled server 2.11+ (`nats-server -js`), then in two terminals
//! `cargo run -p jetstream --example single_active_consumer [nats://127.0.0.1:4222]`, and
//! publish with e.g. `nats pub example.sac.work "job {{Count}}" --count 100 --sleep 500ms`.

use std::time::Duration;

use futures::StreamExt;
use jetstream::{ConsumerConfig, PriorityPolicy, StorageType, StreamConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let js = jetstream::new(nats_client::connect(&url).await?);

    let stream = js
        .create_or_update_stream(StreamConfig {
            storage: StorageType::Memory,
            ..StreamConfig::new("EXAMPLE_SAC", ["example.sac.>"])
        })
        .await?;
    let consumer = stream
        .create_or_update_consumer(ConsumerConfig {
            priority_groups: vec!["workers".into()],
            priority_policy: PriorityPolicy::PinnedClient,
            // How long the pin survives a silent holder: the takeover time after a crash
            // (or the rest of ack_wait for the message in flight, whichever is longer).
            priority_timeout: Duration::from_secs(5),
            ack_wait: Duration::from_secs(5),
            // One message in flight: strict order across a takeover.
            max_ack_pending: 1,
            ..ConsumerConfig::durable("sac-workers")
        })
        .await?;

    println!("waiting for the pin (another process may hold it)...");
    let mut messages = consumer.messages().await?;
    let mut pinned = None;
    while let Some(item) = messages.next().await {
        let msg = match item {
            Ok(msg) => msg,
            Err(e) => {
                eprintln!("consumer trouble: {e}");
                continue;
            }
        };
        if pinned != consumer.pin_id() {
            pinned = consumer.pin_id();
            println!("active now (pin {})", pinned.as_deref().unwrap_or("-"));
        }
        let delivered = msg.info()?.delivered;
        println!(
            "{} (delivery {delivered})",
            String::from_utf8_lossy(&msg.payload)
        );
        msg.double_ack().await?;
    }
    Ok(())
}
