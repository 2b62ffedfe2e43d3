//! Handler subscription: count and sum readings on `sensors.>` with a function the connection
//! task calls for every message (no queue, no slow-consumer drops), then print the totals.
//!
//! Run against a server (`nats-server` on the default port, or set `NATS_URL`):
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p nats-client --example handler
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = nats_client::connect(&url).await?;

    let count = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let (c, s) = (count.clone(), sum.clone());
    // The handler runs on the connection task: keep it short and never block in it.
    let sub = client.subscribe_with_handler("sensors.>", move |msg| {
        let reading: u64 = std::str::from_utf8(&msg.payload)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        c.fetch_add(1, Ordering::Relaxed);
        s.fetch_add(reading, Ordering::Relaxed);
    })?;
    client.flush().await?;

    for i in 0..10_000u64 {
        client
            .publish(format!("sensors.room{}", i % 4), (i % 100).to_string())
            .await?;
    }
    // The server sends our messages back before the PONG that ends the flush, and the
    // connection task calls the handler as it reads them: once the flush returns, the
    // handler has seen every message.
    client.flush().await?;

    println!(
        "{} readings on {}, sum {}",
        count.load(Ordering::Relaxed),
        sub.subject(),
        sum.load(Ordering::Relaxed)
    );
    sub.unsubscribe()?;
    client.drain().await?;
    Ok(())
}
