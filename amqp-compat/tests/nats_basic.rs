//! amqp-compat on a real JetStream server, design B: publish with confirms and returns,
//! consume with prefetch, ack/nack/reject, basic_get, basic_cancel, properties round trip,
//! and lapin's asynchronous channel errors.

use std::time::Duration;

use amqp_compat::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{
    BasicProperties, Channel, ChannelState, Confirmation, Connection, ConnectionProperties,
    Consumer, Delivery, ErrorKind, ExchangeKind,
};
use futures_util::StreamExt;
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &NatsServer) -> Connection {
    Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("connect")
}

async fn queue(ch: &Channel, name: &str, args: FieldTable) {
    ch.queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await
        .expect("queue_declare");
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &str) -> Confirmation {
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        BasicProperties::default(),
    )
    .await
    .expect("basic_publish")
    .await
    .expect("confirm")
}

async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("the stream goes on")
        .expect("a delivery, not an error")
}

async fn nothing_for(consumer: &mut Consumer, d: Duration) {
    if let Ok(Some(item)) = tokio::time::timeout(d, consumer.next()).await {
        panic!("unexpected {item:?}");
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.data).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_publishes_are_consumed_within_the_prefetch_window() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = conn.create_channel().await.unwrap();
    queue(&ch, "jobs", FieldTable::default()).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut headers = FieldTable::default();
    headers.insert("attempt".into(), AMQPValue::LongInt(3));
    headers.insert("who".into(), AMQPValue::LongString("ünï".into()));
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_correlation_id("c-1".into())
        .with_expiration("60000".into())
        .with_headers(headers);
    for i in 0..3 {
        let c = ch
            .basic_publish(
                "".into(),
                "jobs".into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                props.clone(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(c, Confirmation::Ack(None));
    }
    let q = ch
        .queue_declare(
            "jobs".into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.message_count(), 3);

    let cons_ch = conn.create_channel().await.unwrap();
    cons_ch
        .basic_qos(2, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = cons_ch
        .basic_consume(
            "jobs".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert!(consumer.tag().as_str().starts_with("amq.ctag-"));
    let d1 = next(&mut consumer).await;
    let d2 = next(&mut consumer).await;
    assert_eq!((d1.delivery_tag, d2.delivery_tag), (1, 2));
    assert_eq!((body(&d1), body(&d2)), ("m0".into(), "m1".into()));
    // Exactly what the publisher set, and the default exchange with the queue as key.
    assert_eq!(d1.properties, props);
    assert_eq!(
        (d1.exchange.as_str(), d1.routing_key.as_str()),
        ("", "jobs")
    );
    assert!(!d1.redelivered);
    // The window is full: the third waits for an ack.
    nothing_for(&mut consumer, Duration::from_millis(700)).await;
    assert!(d1.acker.ack(BasicAckOptions::default()).await.unwrap());
    assert!(!d1.acker.ack(BasicAckOptions::default()).await.unwrap());
    let d3 = next(&mut consumer).await;
    assert_eq!((d3.delivery_tag, body(&d3)), (3, "m2".into()));
    // `multiple` acks 2 and 3; the queue is then empty.
    cons_ch
        .basic_ack(3, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    cons_ch
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap()
            .is_none()
    );
    let got = cons_ch
        .basic_get("jobs".into(), BasicGetOptions::default())
        .await
        .unwrap();
    assert!(got.is_none());
    assert_eq!(cons_ch.status(), ChannelState::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_copy_per_matched_queue_and_mandatory_returns() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.exchange_declare(
        "user-notifications".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for (q, keys) in [("n.u1.c1", ["u1", "u1.c1"]), ("n.u1.c2", ["u1", "u1.c2"])] {
        queue(&ch, q, FieldTable::default()).await;
        for k in keys {
            ch.queue_bind(
                q.into(),
                "user-notifications".into(),
                k.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
    }
    assert_eq!(
        publish(&ch, "user-notifications", "u1", "all").await,
        Confirmation::Ack(None)
    );
    assert_eq!(
        publish(&ch, "user-notifications", "u1.c2", "one").await,
        Confirmation::Ack(None)
    );
    // Unroutable, not mandatory: dropped and acked.
    assert_eq!(
        publish(&ch, "user-notifications", "u9", "lost").await,
        Confirmation::Ack(None)
    );
    // Unroutable and mandatory: returned with 312 in the confirm.
    let c = ch
        .basic_publish(
            "user-notifications".into(),
            "u9".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"back",
            BasicProperties::default().with_message_id("r1".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let Confirmation::Ack(Some(ret)) = c else {
        panic!("{c:?}");
    };
    assert_eq!((ret.reply_code, ret.reply_text.as_str()), (312, "NO_ROUTE"));
    assert_eq!(ret.delivery.data, b"back");
    assert_eq!(ch.wait_for_confirms().await.unwrap().len(), 1);

    let get = async |q: &str| {
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(q.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            out.push((body(&m), m.routing_key.to_string(), m.message_count));
        }
        out
    };
    assert_eq!(get("n.u1.c1").await, [("all".into(), "u1".into(), 0)]);
    assert_eq!(
        get("n.u1.c2").await,
        [
            ("all".into(), "u1".into(), 1),
            ("one".into(), "u1.c2".into(), 0)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_redelivers_and_reject_drops() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = conn.create_channel().await.unwrap();
    queue(&ch, "background-jobs", FieldTable::default()).await;
    publish(&ch, "", "background-jobs", "bad input").await;
    publish(&ch, "", "background-jobs", "fine").await;
    let mut consumer = ch
        .basic_consume(
            "background-jobs".into(),
            "worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let d = next(&mut consumer).await;
    assert_eq!((body(&d), d.redelivered), ("bad input".into(), false));
    d.acker
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    // It comes back, redelivered, with a new tag.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let d = next(&mut consumer).await;
        seen.push((body(&d), d.redelivered, d.delivery_tag));
        if d.redelivered {
            ch.basic_nack(
                d.delivery_tag,
                BasicNackOptions {
                    requeue: false,
                    multiple: false,
                },
            )
            .await
            .unwrap();
        } else {
            ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                .await
                .unwrap();
        }
    }
    seen.sort();
    assert_eq!(
        seen.iter()
            .map(|(b, r, _)| (b.as_str(), *r))
            .collect::<Vec<_>>(),
        [("bad input", true), ("fine", false)]
    );
    assert!(seen.iter().all(|(_, _, tag)| *tag > 1));
    // Rejected without requeue: gone.
    nothing_for(&mut consumer, Duration::from_millis(700)).await;
    ch.basic_cancel("worker".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    assert!(
        ch.basic_get("background-jobs".into(), BasicGetOptions::default())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_channel_requeues_its_unacked_deliveries() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = conn.create_channel().await.unwrap();
    queue(&ch, "work", FieldTable::default()).await;
    for i in 0..3 {
        publish(&ch, "", "work", &format!("m{i}")).await;
    }
    let first = conn.create_channel().await.unwrap();
    let m = first
        .basic_get("work".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.delivery_tag, m.message_count), (1, 2));
    let m2 = first
        .basic_get("work".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .unwrap();
    first
        .basic_ack(m.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    assert_eq!(body(&m2), "m1");
    first.close(200, "bye".into()).await.unwrap();
    let e = first
        .basic_get("work".into(), BasicGetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::InvalidChannelState(ChannelState::Closed, _)
    ));
    // m1 (unacked at close) is back, redelivered; m2 is still there; m0 was acked.
    let other = conn.create_channel().await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = other
        .basic_get("work".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        got.push((body(&m), m.redelivered));
    }
    got.sort();
    assert_eq!(got, [("m1".into(), true), ("m2".into(), false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_overflow_nacks_the_confirm() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    queue(&ch, "bounded", args).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    assert_eq!(
        publish(&ch, "", "bounded", "1").await,
        Confirmation::Ack(None)
    );
    assert_eq!(
        publish(&ch, "", "bounded", "2").await,
        Confirmation::Nack(None)
    );
    assert_eq!(ch.status(), ChannelState::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_delivery_tag_closes_the_channel_asynchronously() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = conn.create_channel().await.unwrap();
    queue(&ch, "q", FieldTable::default()).await;
    let mut consumer = ch
        .basic_consume(
            "q".into(),
            "c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    // The call itself succeeds, as with lapin.
    ch.basic_ack(42, BasicAckOptions::default()).await.unwrap();
    // The consumer's stream yields the 406 and ends.
    let item = tokio::time::timeout(WAIT, consumer.next())
        .await
        .unwrap()
        .expect("an error item");
    let e = item.unwrap_err();
    assert_eq!(e.reply_code(), Some(406), "{e}");
    assert!(
        tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap()
            .is_none()
    );
    // The next call reports the 406, later ones InvalidChannelState.
    let e = ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.reply_code(), Some(406));
    let e = ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::InvalidChannelState(ChannelState::Error, _)
    ));
    assert_eq!(ch.status(), ChannelState::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_a_missing_exchange_fails_its_confirm_and_the_next_call() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            "nope".into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .expect("the publish call itself succeeds");
    assert_eq!(confirm.await.unwrap_err().reply_code(), Some(404));
    let e = ch
        .queue_declare(
            "q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.reply_code(), Some(404));
    let e = ch
        .basic_publish(
            "".into(),
            "q".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::InvalidChannelState(ChannelState::Error, _)
    ));
    // A bad expiration does the same with 406.
    let ch = conn.create_channel().await.unwrap();
    let confirm = ch
        .basic_publish(
            "".into(),
            "q".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default().with_expiration("soon".into()),
        )
        .await
        .unwrap();
    assert_eq!(confirm.await.unwrap_err().reply_code(), Some(406));
    assert_eq!(ch.status(), ChannelState::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_are_dead_lettered_with_x_death() {
    let server = NatsServer::jetstream();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let ch = a.create_channel().await.unwrap();
    ch.exchange_declare(
        "dlx".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    queue(&ch, "dead", FieldTable::default()).await;
    ch.queue_bind(
        "dead".into(),
        "dlx".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("dlx".into()),
    );
    queue(&ch, "work", args).await;
    // Published through another connection: its cache learns the queue by the watch or,
    // on a miss, from the server.
    let pb = b.create_channel().await.unwrap();
    pb.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let c = pb
        .basic_publish(
            "".into(),
            "work".into(),
            BasicPublishOptions::default(),
            b"poison",
            BasicProperties::default()
                .with_message_id("m-1".into())
                .with_expiration("60000".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(c, Confirmation::Ack(None));
    let m = ch
        .basic_get("work".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .expect("the message");
    m.delivery
        .acker
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    // The copy is stored before the original goes: it is there as soon as reject returns.
    let d = ch
        .basic_get("dead".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the dead letter");
    assert_eq!(d.data, b"poison");
    assert_eq!(
        (d.exchange.as_str(), d.routing_key.as_str()),
        ("dlx", "work")
    );
    assert_eq!(d.properties.message_id().as_ref().unwrap().as_str(), "m-1");
    assert!(d.properties.expiration().is_none());
    let headers = d.properties.headers().as_ref().unwrap();
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        panic!("{headers:?}");
    };
    let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
        panic!("{deaths:?}");
    };
    let field = |k: &str| death.inner().get(k).cloned();
    assert_eq!(field("queue"), Some(AMQPValue::LongString("work".into())));
    assert_eq!(
        field("reason"),
        Some(AMQPValue::LongString("rejected".into()))
    );
    assert_eq!(
        field("original-expiration"),
        Some(AMQPValue::LongString("60000".into()))
    );
    assert!(
        ch.basic_get("work".into(), BasicGetOptions::default())
            .await
            .unwrap()
            .is_none()
    );
}
