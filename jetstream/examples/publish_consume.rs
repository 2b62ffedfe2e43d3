//! Publish with acks, then consume with a durable pull consumer.
//!
//! Needs a JetStream-enabled server: `nats-server -js`, then
//! `cargo run -p jetstream --example publish_consume [nats://127.0.0.1:4222]`.

use std::time::Duration;

use futures::StreamExt;
use jetstream::{ConsumeOptions, ConsumerConfig, PublishOptions, StorageType, StreamConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let client = nats_client::connect(&url).await?;
    let js = jetstream::new(client);

    let stream = js
        .create_or_update_stream(StreamConfig {
            storage: StorageType::Memory,
            max_age: Duration::from_secs(3600),
            ..StreamConfig::new("EXAMPLE_ORDERS", ["example.orders.>"])
        })
        .await?;

    // One publish that waits for its ack, deduplicated by id...
    let ack = js
        .publish_with(
            "example.orders.eu",
            "order 0",
            &PublishOptions::new().msg_id("order-0"),
        )
        .await?;
    println!(
        "stored in {} as #{} (duplicate: {})",
        ack.stream, ack.seq, ack.duplicate
    );

    // ...then many with a window of acks in flight.
    let mut acks = Vec::new();
    for i in 1..=100 {
        acks.push(
            js.publish_async("example.orders.us", format!("order {i}"))
                .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }

    let consumer = stream
        .create_or_update_consumer(ConsumerConfig {
            ack_wait: Duration::from_secs(10),
            max_deliver: 5,
            ..ConsumerConfig::durable("example-billing")
        })
        .await?;
    let mut messages = consumer
        .consume(ConsumeOptions {
            max_messages: 50,
            ..ConsumeOptions::default()
        })
        .await?;
    let mut handled = 0;
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(2), messages.next()).await {
        match item {
            Ok(msg) => {
                let info = msg.info()?;
                println!(
                    "#{} {} (delivery {}): {}",
                    info.stream_sequence,
                    msg.subject,
                    info.delivered,
                    String::from_utf8_lossy(&msg.payload)
                );
                msg.ack().await?;
                handled += 1;
            }
            Err(e) => eprintln!("consumer trouble: {e}"),
        }
    }
    println!("handled {handled} messages; idle for 2 s, done");
    Ok(())
}
