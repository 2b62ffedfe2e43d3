//! Publish/subscribe: subscribe to `demo.>`, publish a few messages (one with headers), print
//! what arrives.
//!
//! Run against a server (`nats-server` on the default port, or set `NATS_URL`):
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p nats-client --example pub_sub
//! ```

use futures::StreamExt;
use nats_client::HeaderMap;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = nats_client::connect(&url).await?;
    println!(
        "connected to {url} (server {})",
        client.server_info().server_id
    );

    let mut sub = client.subscribe("demo.>").await?;
    // Make sure the server has our subscription before publishing.
    client.flush().await?;

    for i in 0..3 {
        client
            .publish(format!("demo.numbers.{i}"), format!("message {i}"))
            .await?;
    }
    let mut headers = HeaderMap::new();
    headers.insert("X-Origin", "pub_sub example");
    client
        .publish_with_headers("demo.headers", &headers, "with a header")
        .await?;

    for _ in 0..4 {
        let msg = sub.next().await.ok_or("subscription ended")?;
        let origin = msg.headers.as_ref().and_then(|h| h.get("X-Origin"));
        println!(
            "{}: {} {}",
            msg.subject,
            String::from_utf8_lossy(&msg.payload),
            origin
                .map(|o| format!("(X-Origin: {o})"))
                .unwrap_or_default()
        );
    }

    // Sends anything still buffered, then closes.
    client.drain().await?;
    Ok(())
}
