//! The project demo (`bash scripts/demo`): starts its own JetStream-enabled nats-server on
//! 127.0.0.1 through the test harness, then walks through what this client does: pub/sub with
//! headers, request/reply, JetStream publish with acks and de-duplication, a pull consumer that
//! acks good messages and terminates a poison one, and the dead-letter worker moving that one to
//! the dead-letter subject with headers naming where it came from.
//!
//! `cargo run -p jetstream --example demo`

use std::time::Duration;

use futures::StreamExt;
use jetstream::{
    ConsumerConfig, DeadLetter, DeadLetterConfig, DeadLetterOutcome, PublishOptions, StreamConfig,
};
use nats_client::HeaderMap;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = tokio::task::spawn_blocking(nats_tests::NatsServer::jetstream).await?;
    let client = nats_client::ConnectOptions::new()
        .name("demo")
        .connect(&server.url())
        .await?;
    let info = client.server_info();
    println!(
        "connected to nats-server {} at {} (JetStream: {})",
        info.version,
        server.url(),
        info.jetstream
    );

    // Core pub/sub with headers.
    let mut sub = client.subscribe("user.notifications.*.*").await?;
    let mut headers = HeaderMap::new();
    headers.insert("X-Origin", "demo");
    client
        .publish_with_headers("user.notifications.42.phone", &headers, "you have mail")
        .await?;
    let msg = sub.next().await.ok_or("subscription ended")?;
    println!(
        "pub/sub:   {} -> {:?} (X-Origin: {})",
        msg.subject,
        String::from_utf8_lossy(&msg.payload),
        msg.headers
            .as_ref()
            .and_then(|h| h.get("X-Origin"))
            .unwrap_or("-")
    );

    // Request/reply.
    let mut service = client.subscribe("time.now").await?;
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(req) = service.next().await {
            let _ = responder.respond(&req, "12:00").await;
        }
    });
    let reply = client.request("time.now", "").await?;
    println!(
        "request:   time.now -> {:?}",
        String::from_utf8_lossy(&reply.payload)
    );
    match client.request("nobody.home", "").await {
        Err(e) => println!("request:   nobody.home -> {e}"),
        Ok(_) => println!("request:   nobody.home answered?"),
    }

    // JetStream: a stream, acked publishes, de-duplication.
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(StreamConfig::new("ORDERS", ["orders.>"]))
        .await?;
    for (id, body) in [
        ("o-1", "book"),
        ("o-2", "lamp"),
        ("o-3", "POISON"),
        ("o-1", "book"),
    ] {
        let ack = js
            .publish_with(
                &format!("orders.{id}"),
                body,
                &PublishOptions::new().msg_id(id),
            )
            .await?;
        println!(
            "publish:   {id} {body:>6} -> ORDERS #{}{}",
            ack.seq,
            if ack.duplicate {
                " (duplicate, not stored again)"
            } else {
                ""
            }
        );
    }

    // The dead-letter worker must exist before failures happen: it captures their advisories.
    let dead_letters =
        DeadLetter::start(js.clone(), DeadLetterConfig::new("ORDERS", "billing")).await?;
    let mut dlq = client
        .subscribe(dead_letters.config().subject.clone())
        .await?;

    let consumer = stream
        .create_consumer(ConsumerConfig {
            max_deliver: 3,
            ..ConsumerConfig::durable("billing")
        })
        .await?;
    for msg in consumer.fetch(10, Duration::from_secs(1)).await? {
        let seq = msg.info()?.stream_sequence;
        if &msg.payload[..] == b"POISON" {
            msg.term_with_reason("cannot bill a poison order").await?;
            println!("consume:   #{seq} POISON -> term");
        } else {
            msg.ack().await?;
            println!(
                "consume:   #{seq} {} -> ack",
                String::from_utf8_lossy(&msg.payload)
            );
        }
    }

    for outcome in dead_letters.process_batch(Duration::from_secs(2)).await? {
        if let DeadLetterOutcome::DeadLettered {
            stream_seq, reason, ..
        } = outcome?
        {
            println!(
                "dlq:       ORDERS #{stream_seq} dead-lettered ({})",
                reason.header_value()
            );
        }
    }
    let letter = tokio::time::timeout(Duration::from_secs(5), dlq.next())
        .await?
        .ok_or("dead-letter subscription ended")?;
    println!(
        "dlq:       {} {:?}",
        letter.subject,
        String::from_utf8_lossy(&letter.payload)
    );
    if let Some(h) = &letter.headers {
        for (name, value) in h.iter().filter(|(n, _)| n.starts_with("Nats-DLQ")) {
            println!("             {name}: {value}");
        }
    }

    let stats = client.statistics();
    println!(
        "stats:     {} messages out, {} in",
        stats.out_msgs, stats.in_msgs
    );
    client.drain().await?;
    Ok(())
}
