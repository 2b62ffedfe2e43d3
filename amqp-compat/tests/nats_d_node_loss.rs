//! A design-D queue survives the loss of the server holding its R1 consumer: the consumer is
//! re-created from the queue's checkpointed ack floor, so every confirmed message that was
//! not acknowledged is delivered (at-least-once), including those published while the
//! server is down.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use amqp_compat::exchange_storage::{exchange_stream, queue_consumer};
use amqp_compat::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind,
};
use futures_util::StreamExt;
use nats_tests::Cluster;

const EXCHANGE: &str = "user-notifications";
const QUEUE: &str = "user-notifications.u1.c1";

async fn publish(ch: &Channel, i: u32) {
    // The stream may be electing a leader after the node loss: retry until confirmed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let confirm = match ch
            .basic_publish(
                EXCHANGE.into(),
                "u1".into(),
                BasicPublishOptions::default(),
                i.to_string().as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
        {
            Ok(c) => c.await,
            Err(e) => Err(e),
        };
        match confirm {
            Ok(Confirmation::Ack(_)) => return,
            other => assert!(
                Instant::now() < deadline,
                "publish {i} never confirmed: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Connects, retrying while a just-started (or just-degraded) cluster's JetStream API times
/// out on a loaded machine.
async fn connect(url: &str) -> (Connection, Channel) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(url, ConnectionProperties::default()).await {
            Ok(conn) => {
                let ch = conn.create_channel().await.unwrap();
                return (conn, ch);
            }
            Err(e) => assert!(Instant::now() < deadline, "cannot connect: {e:?}"),
        }
    }
}

/// A new connection consuming `queue` with `prefetch`.
async fn consume_queue(url: &str, queue: &str, prefetch: u16) -> (Connection, Channel, Consumer) {
    let (conn, ch) = connect(url).await;
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .unwrap();
    let consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (conn, ch, consumer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_queue_is_recreated_from_its_checkpoint_after_its_server_is_lost() {
    let (mut cluster, url, _admin, ch) = cluster_with_exchange().await;
    declare_d_queue(&ch, QUEUE, "u1").await;
    for i in 0..100 {
        publish(&ch, i).await;
    }

    // Consume and ack 0..40, then let the checkpoint catch up and close.
    {
        let (conn, cch, mut consumer) = consume_queue(&url, QUEUE, 10).await;
        ack_in_order(&cch, &mut consumer, 0..40).await;
        conn.close(200, "bye".into()).await.unwrap();
    }

    // Kill the server holding the queue's R1 consumer.
    let js = jetstream::Context::new(
        nats_client::ConnectOptions::new()
            .connect(&cluster.urls())
            .await
            .unwrap(),
    );
    let node = host_of(&cluster, &js, QUEUE).await;
    cluster.kill_node(node);

    for i in 100..120 {
        publish(&ch, i).await;
    }

    // A new consumer gets everything from 40 on (some of 0..40 may come again).
    consume_all(&url, QUEUE, 40..120).await;
}

/// A 3-node cluster, its URL list, and a connection whose channel (in confirm mode) has
/// declared the durable direct exchange [`EXCHANGE`].
async fn cluster_with_exchange() -> (Cluster, String, Connection, Channel) {
    let cluster = Cluster::start(3);
    let url = cluster.urls().join(",");
    let (conn, ch) = connect(&url).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await
    .unwrap();
    (cluster, url, conn, ch)
}

/// Declares a durable design-D queue bound to [`EXCHANGE`] with `key`.
async fn declare_d_queue(ch: &Channel, queue: &str, key: &str) {
    let mut args = FieldTable::default();
    args.insert(
        "x-nats-tier".into(),
        AMQPValue::LongString("consumer".into()),
    );
    ch.queue_declare(queue.into(), QueueDeclareOptions::durable(), args)
        .await
        .unwrap();
    ch.queue_bind(
        queue.into(),
        EXCHANGE.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

async fn publish_to(ch: &Channel, key: &str, i: u32) {
    let confirm = ch
        .basic_publish(
            EXCHANGE.into(),
            key.into(),
            BasicPublishOptions::default(),
            i.to_string().as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(confirm, Confirmation::Ack(_)), "{confirm:?}");
}

/// The node holding `queue`'s R1 consumer.
async fn host_of(cluster: &Cluster, js: &jetstream::Context, queue: &str) -> usize {
    let stream = exchange_stream(None, EXCHANGE);
    let info = js
        .consumer_info(&stream, &queue_consumer(queue))
        .await
        .unwrap();
    let host = info
        .cluster
        .and_then(|c| c.leader)
        .expect("the consumer has a leader");
    (0..cluster.size())
        .find(|&i| cluster.node(i).name() == host)
        .expect("leader is a node")
}

/// Takes `expected` from `consumer` in order and acks each.
async fn ack_in_order(ch: &Channel, consumer: &mut Consumer, expected: std::ops::Range<u32>) {
    for n in expected {
        let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("delivery")
            .expect("stream open")
            .expect("delivery ok");
        assert_eq!(String::from_utf8_lossy(&d.data), n.to_string());
        ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await
            .unwrap();
    }
}

/// Consumes `queue` until every number in `expected` came; returns every number delivered,
/// with its `redelivered` flag.
async fn consume_all(url: &str, queue: &str, expected: std::ops::Range<u32>) -> Vec<(u32, bool)> {
    let (_conn, ch) = connect(url).await;
    ch.basic_qos(50, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut missing: BTreeSet<u32> = expected.collect();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(d)) = tokio::time::timeout(left, consumer.next()).await else {
            panic!("{queue}: never delivered after the restart: {missing:?}");
        };
        let d = d.unwrap();
        let n: u32 = String::from_utf8_lossy(&d.data).parse().unwrap();
        missing.remove(&n);
        seen.push((n, d.redelivered));
        ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await
            .unwrap();
    }
    seen
}

/// D consumers keep their state in memory; a restarted server re-creates them empty, back
/// at their configured start. Neither what was confirmed and not acked may be lost (queue
/// `quiet`, never consumed: a consumer created with "deliver new" would skip it), nor what
/// was acked come again (queue `busy`: it resumes at its checkpoint, not at its start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_queue_resumes_at_its_checkpoint_after_its_server_restarts() {
    const BUSY: &str = "user-notifications.u1.busy";
    const QUIET: &str = "user-notifications.u2.quiet";
    let (mut cluster, url, _admin, ch) = cluster_with_exchange().await;
    declare_d_queue(&ch, BUSY, "u1").await;
    declare_d_queue(&ch, QUIET, "u2").await;
    // A queue's consumer is created at its first consume (and stays while it is used, and a
    // while after): consume `quiet` once, so it has a consumer that receives nothing.
    {
        let (conn, cch, consumer) = consume_queue(&url, QUIET, 10).await;
        cch.basic_cancel(consumer.tag(), Default::default())
            .await
            .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    }
    for i in 0..100 {
        publish_to(&ch, "u1", i).await;
    }
    for i in 0..10 {
        publish_to(&ch, "u2", i).await;
    }

    // Ack 0..40 of `busy`; once the server has those acks, close (which checkpoints).
    let js = jetstream::Context::new(
        nats_client::ConnectOptions::new()
            .connect(&cluster.urls())
            .await
            .unwrap(),
    );
    let stream = exchange_stream(None, EXCHANGE);
    {
        let (conn, cch, mut consumer) = consume_queue(&url, BUSY, 10).await;
        ack_in_order(&cch, &mut consumer, 0..40).await;
        // 40 is delivered and not acked: after the restart it comes again, flagged so.
        let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("delivery")
            .expect("stream open")
            .expect("delivery ok");
        assert_eq!(String::from_utf8_lossy(&d.data), "40");
        cch.basic_cancel(consumer.tag(), Default::default())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = js
                .consumer_info(&stream, &queue_consumer(BUSY))
                .await
                .unwrap();
            if info.ack_floor.consumer_sequence >= 40 {
                break;
            }
            assert!(Instant::now() < deadline, "acks not applied: {info:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        conn.close(200, "bye".into()).await.unwrap();
    }

    // Restart the servers holding the two consumers.
    let mut hosts = BTreeSet::new();
    for queue in [BUSY, QUIET] {
        hosts.insert(host_of(&cluster, &js, queue).await);
    }
    for node in hosts {
        cluster.restart_node(node);
    }
    for i in 100..120 {
        publish(&ch, i).await;
    }

    let busy = consume_all(&url, BUSY, 40..120).await;
    assert!(
        busy.iter().all(|&(n, _)| n >= 40),
        "acknowledged messages delivered again after the restart: {busy:?}"
    );
    // Delivered before the restart: redelivered, as RabbitMQ flags it; published after it:
    // not (the consumer re-created empty has no delivery history of its own).
    let flag = |n: u32| busy.iter().find(|&&(m, _)| m == n).map(|&(_, r)| r);
    assert_eq!(flag(40), Some(true), "{busy:?}");
    assert_eq!(flag(119), Some(false), "{busy:?}");
    consume_all(&url, QUIET, 0..10).await;
}
