//! Scatter-gather with `Client::request_many`: three responders (in a real system: one per
//! server or service instance) answer one request; the replies are a stream that ends at a
//! count, after a quiet period, or at a deadline, whichever comes first.
//!
//! Run against a server (`nats-server` on the default port, or set `NATS_URL`):
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p nats-client --example scatter_gather
//! ```
//!
//! Against a cluster with a system account, the same call on `$SYS.REQ.SERVER.PING.VARZ`
//! gathers one reply per server.

use std::time::Duration;

use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = nats_client::connect(&url).await?;

    for id in 0..3 {
        let mut pings = client.subscribe("demo.ping").await?;
        let responder = client.clone();
        tokio::spawn(async move {
            while let Some(ping) = pings.next().await {
                let _ = responder.respond(&ping, format!("instance {id}")).await;
            }
        });
    }
    client.flush().await?;

    let mut replies = client
        .request_many("demo.ping", "who is there?")
        .max_messages(3)
        .stall(Duration::from_millis(300))
        .timeout(Duration::from_secs(2))
        .send()
        .await?;
    while let Some(reply) = replies.next().await {
        println!("{}", String::from_utf8_lossy(&reply.payload));
    }
    println!(
        "{} replies; ended by {:?}",
        replies.received(),
        replies.end()
    );
    Ok(())
}
