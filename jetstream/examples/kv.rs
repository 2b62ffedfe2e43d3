//! A key-value bucket as shared configuration: compare-and-set updates and a watch, the way
//! a topology store kept by several processes works.
//!
//! Needs a JetStream-enabled server: `nats-server -js`, then
//! `cargo run -p jetstream --example kv [nats://127.0.0.1:4222]`.

use std::time::Duration;

use futures::StreamExt;
use jetstream::StorageType;
use jetstream::kv::{Config, KvError, Operation, WatchEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let client = nats_client::connect(&url).await?;
    let js = jetstream::new(client);

    let kv = js
        .create_or_update_key_value(Config {
            history: 5,
            storage: StorageType::Memory,
            ..Config::new("example_topology")
        })
        .await?;

    // Watch everything under `queue.`: current values first, then a marker, then changes.
    let mut watch = kv.watch("queue.>").await?;
    let watcher = tokio::spawn(async move {
        let mut changes = 0;
        while let Some(event) = watch.next().await {
            match event {
                Ok(WatchEvent::Entry(e)) if e.operation == Operation::Put => {
                    println!(
                        "watch: {} = {} (rev {})",
                        e.key,
                        String::from_utf8_lossy(&e.value),
                        e.revision
                    );
                    changes += 1;
                }
                Ok(WatchEvent::Entry(e)) => {
                    println!(
                        "watch: {} removed ({:?}, rev {})",
                        e.key, e.operation, e.revision
                    );
                    changes += 1;
                }
                Ok(WatchEvent::CaughtUp) => println!("watch: initial values done"),
                Err(e) => println!("watch trouble (it recovers): {e}"),
            }
            if changes == 3 {
                break;
            }
        }
    });

    // Declare a queue once: `create` fails if another process declared it first.
    let revision = match kv.create("queue.orders", r#"{"durable":true}"#).await {
        Ok(rev) => rev,
        Err(KvError::KeyExists { .. }) => kv.entry("queue.orders").await?.map_or(0, |e| e.revision),
        Err(e) => return Err(e.into()),
    };
    // Change it only if nobody changed it since we read it.
    match kv
        .update(
            "queue.orders",
            r#"{"durable":true,"max_length":1000}"#,
            revision,
        )
        .await
    {
        Ok(rev) => println!("updated to revision {rev}"),
        Err(e @ KvError::WrongRevision { .. }) => println!("lost the race: {e}"),
        Err(e) => return Err(e.into()),
    }
    kv.delete("queue.orders").await?;

    tokio::time::timeout(Duration::from_secs(5), watcher).await??;
    let mut keys = kv.keys().await?;
    while let Some(key) = keys.next().await {
        println!("key: {}", key?);
    }
    println!("history of queue.orders:");
    for e in kv.history("queue.orders").await? {
        println!(
            "  rev {} {:?} {}",
            e.revision,
            e.operation,
            String::from_utf8_lossy(&e.value)
        );
    }
    js.delete_key_value("example_topology").await?;
    Ok(())
}
