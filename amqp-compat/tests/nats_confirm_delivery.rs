//! amqp-compat on a real JetStream server: confirms dropped unawaited still count for
//! `wait_for_confirms`, and a consumer gets each delivery as it arrives, not when its pull's
//! batch fills or expires; a stored copy carries a msg id only with `publish_dedupe`.

use std::time::{Duration, Instant};

use amqp_compat::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use amqp_compat::types::FieldTable;
use amqp_compat::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use futures_util::StreamExt;
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(10);

async fn channel(server: &NatsServer, queue: &str) -> (Connection, Channel) {
    let conn = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("queue_declare");
    (conn, ch)
}

async fn publish(ch: &Channel, queue: &str, body: &[u8]) -> amqp_compat::PublisherConfirm {
    ch.basic_publish(
        "".into(),
        queue.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
    .expect("basic_publish")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirms_dropped_unawaited_still_count_for_wait_for_confirms() {
    let server = NatsServer::jetstream();
    let (_conn, ch) = channel(&server, "dropped").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    for i in 0..200u32 {
        drop(publish(&ch, "dropped", &i.to_be_bytes()).await);
    }
    let returned = tokio::time::timeout(WAIT, ch.wait_for_confirms())
        .await
        .expect("every confirm resolves")
        .expect("no channel error");
    assert!(returned.is_empty());
    // Confirmed means stored: all 200 are in the queue once wait_for_confirms returns.
    let q = ch
        .queue_declare(
            "dropped".into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("passive declare");
    assert_eq!(q.message_count(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_not_held_until_the_pull_expires() {
    let server = NatsServer::jetstream();
    let (_conn, ch) = channel(&server, "rpc").await;
    ch.basic_qos(500, BasicQosOptions::default())
        .await
        .expect("basic_qos");
    let mut consumer = ch
        .basic_consume(
            "rpc".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic_consume");
    // One message at a time, far fewer than a pull asks for: each must come through without
    // waiting for the pull to expire (500 ms), which made 20 round trips take 10 s or more.
    let rounds = 20u32;
    let start = Instant::now();
    for i in 0..rounds {
        drop(publish(&ch, "rpc", &i.to_be_bytes()).await);
        take_and_ack(&ch, &mut consumer, i).await;
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "{rounds} round trips took {took:?}: deliveries wait for the pull to end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_that_has_brought_its_batch_is_followed_at_once() {
    let server = NatsServer::jetstream();
    let (_conn, ch) = channel(&server, "batches").await;
    let total = 200u32;
    for i in 0..total {
        drop(publish(&ch, "batches", &i.to_be_bytes()).await);
    }
    ch.wait_for_confirms().await.expect("confirms");
    ch.basic_qos(10, BasicQosOptions::default())
        .await
        .expect("basic_qos");
    let mut consumer = ch
        .basic_consume(
            "batches".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic_consume");
    // Twenty windows of 10: each pull asks for the window's room and is complete when that
    // many came. Taking a complete pull for a running one until it expires (2 s) made this
    // take 40 s or more.
    let start = Instant::now();
    for i in 0..total {
        take_and_ack(&ch, &mut consumer, i).await;
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "{total} deliveries in windows of 10 took {took:?}: complete pulls wait for their expiry"
    );
}

/// Takes the next delivery of `consumer`, checks that it carries `i`, and acks it.
async fn take_and_ack(ch: &Channel, consumer: &mut Consumer, i: u32) {
    let d = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("the stream goes on")
        .expect("a delivery");
    assert_eq!(d.data, i.to_be_bytes());
    ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
        .await
        .expect("ack");
}

/// A confirmed copy carries a `Nats-Msg-Id` (the stream stores a resend once) only with the
/// URL's `publish_dedupe=true`; by default it is resent without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_dedupe_gives_each_stored_copy_a_msg_id() {
    let server = NatsServer::jetstream();
    let client = nats_client::ConnectOptions::new()
        .connect(server.url().as_str())
        .await
        .expect("connect");
    let js = jetstream::new(client);
    for (url, queue, dedupe) in [
        (server.url(), "plain", false),
        (
            format!("{}?publish_dedupe=true", server.url()),
            "dedupe",
            true,
        ),
    ] {
        let conn = Connection::connect(&url, ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("queue_declare");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm_select");
        let confirm = publish(&ch, queue, b"m").await.await.expect("confirm");
        assert!(confirm.is_ack(), "{confirm:?}");
        let stream = amqp_compat::storage::queue_stream(None, queue);
        let stored = js.get_message(&stream, 1).await.expect("stored copy");
        let id = stored.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id"));
        assert_eq!(id.is_some(), dedupe, "{queue}: {:?}", stored.headers);
        conn.close(200, "done".into()).await.expect("close");
    }
}
