//! Wire's backend on NATS through amqp-compat: gundeck publishes user notifications, cannon
//! consumes each client's queue, a temporary client gets a server-named queue, federation
//! consumes its backend queue with a single active consumer, and a worker rejects bad jobs.
//!
//! Run against a JetStream-enabled server: `nats-server -js`, then
//! `cargo run -p amqp-compat --example wire [nats://127.0.0.1:4222]`.

use std::time::Duration;

use amqp_compat::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind, Result,
};
use futures_util::StreamExt;

const EXCHANGE: &str = "user-notifications";

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// gundeck's client queue: durable quorum, dead letters to `dead-user-notifications`, stored
/// as a light consumer on the exchange's stream (design D), bound with `<uid>` and
/// `<uid>.<cid>`.
async fn client_queue(ch: &Channel, uid: &str, cid: &str) -> Result<String> {
    let name = format!("{EXCHANGE}.{uid}.{cid}");
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-dead-letter-exchange".into(),
        text("dead-user-notifications"),
    );
    args.insert("x-nats-tier".into(), text("consumer"));
    ch.queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
        .await?;
    for key in [uid.to_owned(), format!("{uid}.{cid}")] {
        ch.queue_bind(
            name.as_str().into(),
            EXCHANGE.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(name)
}

/// gundeck's publish: JSON, persistent with a TTL, or transient with expiration "0".
async fn notify(ch: &Channel, key: &str, json: &str, transient: bool) -> Result<()> {
    let props = BasicProperties::default().with_content_type("application/json".into());
    let props = match transient {
        true => props.with_delivery_mode(1).with_expiration("0".into()),
        false => props.with_delivery_mode(2).with_expiration("60000".into()),
    };
    let confirm = ch
        .basic_publish(
            EXCHANGE.into(),
            key.into(),
            BasicPublishOptions::default(),
            json.as_bytes(),
            props,
        )
        .await?
        .await?;
    println!("gundeck -> {key}: {json} ({confirm:?})");
    Ok(())
}

/// Takes `n` deliveries from `consumer`, acking each by tag (cannon's way).
async fn take(ch: &Channel, consumer: &mut Consumer, who: &str, n: usize) -> Result<()> {
    for _ in 0..n {
        let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await
        else {
            println!("{who}: nothing more");
            return Ok(());
        };
        let d = d?;
        println!(
            "{who} <- [{}] {} (tag {})",
            d.routing_key,
            String::from_utf8_lossy(&d.data),
            d.delivery_tag
        );
        ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    let props = ConnectionProperties::default().with_connection_name("gundeck".into());
    let gundeck = Connection::connect(&url, props).await?;
    let ch = gundeck.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for x in [EXCHANGE, "dead-user-notifications"] {
        ch.exchange_declare(
            x.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    }
    let c1 = client_queue(&ch, "alice", "phone").await?;
    let c2 = client_queue(&ch, "alice", "laptop").await?;

    // cannon: one consumer per client queue, prefetch 500.
    let cannon = Connection::connect(
        &url,
        ConnectionProperties::default().with_connection_name("cannon".into()),
    )
    .await?;
    let cch = cannon.create_channel().await?;
    cch.basic_qos(500, BasicQosOptions::default()).await?;
    let mut phone = cch
        .basic_consume(
            c1.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut laptop = cch
        .basic_consume(
            c2.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // A client without an id: a server-named exclusive auto-delete queue.
    let temp = cch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    for key in ["alice", "alice.temporary"] {
        cch.queue_bind(
            temp.name().clone(),
            EXCHANGE.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    println!("temporary client queue: {}", temp.name());
    let mut tmp = cch
        .basic_consume(
            temp.name().clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    notify(&ch, "alice", r#"{"type":"conversation.message"}"#, false).await?;
    notify(&ch, "alice.laptop", r#"{"type":"user.client-add"}"#, false).await?;
    notify(&ch, "alice", r#"{"type":"typing"}"#, true).await?;
    take(&cch, &mut phone, "cannon/phone", 2).await?;
    take(&cch, &mut laptop, "cannon/laptop", 3).await?;
    take(&cch, &mut tmp, "cannon/temporary", 2).await?;

    // federation: backend-notifications.<domain> on the default exchange, one active consumer.
    let fed = "backend-notifications.example.com";
    let mut sac = FieldTable::default();
    sac.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    ch.queue_declare(fed.into(), QueueDeclareOptions::durable(), sac)
        .await?;
    let fch = cannon.create_channel().await?;
    fch.basic_qos(1, BasicQosOptions::default()).await?;
    let mut federator = fch
        .basic_consume(
            fed.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let confirm = ch
        .basic_publish(
            "".into(),
            fed.into(),
            BasicPublishOptions::default(),
            br#"{"event":"on-user-deleted"}"#,
            BasicProperties::default(),
        )
        .await?
        .await?;
    println!("federation publish: {confirm:?}");
    take(&fch, &mut federator, "federator", 1).await?;

    // background-jobs: prefetch = concurrency, bad input rejected with requeue.
    ch.queue_declare(
        "background-jobs".into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await?;
    ch.basic_publish(
        "".into(),
        "background-jobs".into(),
        BasicPublishOptions::default(),
        b"not json",
        BasicProperties::default(),
    )
    .await?
    .await?;
    let wch = cannon.create_channel().await?;
    wch.basic_qos(4, BasicQosOptions::default()).await?;
    let mut jobs = wch
        .basic_consume(
            "background-jobs".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(5), jobs.next()).await {
        let d = d?;
        println!(
            "worker <- {:?} (redelivered {})",
            String::from_utf8_lossy(&d.data),
            d.redelivered
        );
        d.acker.reject(BasicRejectOptions { requeue: true }).await?;
        if let Ok(Some(again)) = tokio::time::timeout(Duration::from_secs(5), jobs.next()).await {
            let again = again?;
            println!(
                "worker <- again, redelivered {}; dropping it",
                again.redelivered
            );
            again
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await?;
        }
    }

    cannon.close(200, "bye".into()).await?;
    gundeck.close(200, "bye".into()).await?;
    Ok(())
}
