//! RPC over RabbitMQ's direct reply-to, through amqp-compat: a server consumes the request
//! queue `rpc` and answers each request to its `reply_to` with the same `correlation_id`; the
//! client consumes the pseudo-queue `amq.rabbitmq.reply-to` (no reply queue) and publishes its
//! requests on the same channel with `reply_to = "amq.rabbitmq.reply-to"`. The reply travels
//! over core NATS (docs/amqp-mapping.md §8).
//!
//! It prints the median of each leg over N round trips: request (publish -> the server has
//! it: the request queue's stream and pull) and reply (the server publishes -> the client has
//! it: one core NATS message).
//!
//! Run against a JetStream-enabled server: `nats-server -js`, then
//! `cargo run -p amqp-compat --release --example rpc [nats://127.0.0.1:4222] [N]`.

use std::sync::OnceLock;
use std::time::Instant;

use amqp_compat::direct_reply::QUEUE as DIRECT_REPLY_TO;
use amqp_compat::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable, ShortString};
use amqp_compat::{BasicProperties, Connection, ConnectionProperties, Result};
use futures_util::StreamExt;

/// Nanoseconds since the first call: both sides run in this process, on one clock.
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn median_us(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2)
        .map_or(f64::NAN, |&ns| ns as f64 / 1000.0)
}

/// The server: answers every request of `rpc` to its `reply_to`, stamping when it got it.
async fn serve(conn: Connection) -> Result<()> {
    let ch = conn.create_channel().await?;
    let mut requests = ch
        .basic_consume(
            "rpc".into(),
            "rpc-server".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    while let Some(d) = requests.next().await {
        let d = d?;
        let got = now_ns();
        let Some(reply_to) = d.properties.reply_to().clone() else {
            continue;
        };
        let mut headers = FieldTable::default();
        headers.insert("got-ns".into(), AMQPValue::LongLongInt(got as i64));
        let mut props = BasicProperties::default().with_headers(headers);
        if let Some(id) = d.properties.correlation_id().clone() {
            props = props.with_correlation_id(id);
        }
        ch.basic_publish(
            "".into(),
            reply_to,
            BasicPublishOptions::default(),
            &d.data,
            props,
        )
        .await?;
        ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let props = || ConnectionProperties::default();
    let (client, server) = (
        Connection::connect(&url, props().with_connection_name("rpc-client".into())).await?,
        Connection::connect(&url, props().with_connection_name("rpc-server".into())).await?,
    );
    let ch = client.create_channel().await?;
    ch.queue_declare(
        "rpc".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let service = tokio::spawn(serve(server.clone()));

    // The reply consumer: no queue to declare, no acks.
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut replies = ch
        .basic_consume(
            DIRECT_REPLY_TO.into(),
            "".into(),
            no_ack,
            FieldTable::default(),
        )
        .await?;
    let (mut there, mut back, mut round) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let id: ShortString = i.to_string().into();
        let props = BasicProperties::default()
            .with_reply_to(DIRECT_REPLY_TO.into())
            .with_correlation_id(id.clone());
        let sent = now_ns();
        ch.basic_publish(
            "".into(),
            "rpc".into(),
            BasicPublishOptions::default(),
            b"ping",
            props,
        )
        .await?;
        let reply = loop {
            match replies.next().await {
                Some(d) => {
                    let d = d?;
                    if d.properties.correlation_id().as_ref() == Some(&id) {
                        break d;
                    }
                }
                None => return Ok(()),
            }
        };
        let done = now_ns();
        let got = reply
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("got-ns").cloned());
        if let Some(AMQPValue::LongLongInt(got)) = got {
            let got = got as u64;
            there.push(got.saturating_sub(sent));
            back.push(done.saturating_sub(got));
        }
        round.push(done.saturating_sub(sent));
        if i == 0 {
            println!("the reply name: {}", reply.routing_key);
        }
    }
    println!(
        "{n} round trips: p50 {:.0} us (request leg {:.0} us, reply leg {:.0} us)",
        median_us(round),
        median_us(there),
        median_us(back)
    );
    service.abort();
    ch.queue_delete("rpc".into(), QueueDeleteOptions::default())
        .await?;
    client.close(200, "done".into()).await?;
    server.close(200, "done".into()).await?;
    Ok(())
}
