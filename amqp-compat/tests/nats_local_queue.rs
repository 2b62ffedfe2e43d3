//! Design E (docs/amqp-mapping.md §4) on a real nats-server: an exclusive queue held in its
//! owning connection's memory. What the conformance suite cannot show: no JetStream state,
//! the tier stored for every process, a crashed owner's queue (confirmed publishes answered,
//! the lease reaping its entry), consumers on two channels and a closed channel's requeue,
//! expiry at the head, a dropped consumer stream.

use std::time::Duration;

use amqp_compat::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use amqp_compat::routing::StorageTier;
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer, Delivery,
};
use futures_util::StreamExt;
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &NatsServer) -> Connection {
    Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("connect")
}

async fn confirming(conn: &Connection) -> Channel {
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    ch
}

async fn exclusive(ch: &Channel, name: &str, args: FieldTable) -> String {
    ch.queue_declare(name.into(), QueueDeclareOptions::exclusive(), args)
        .await
        .expect("declare")
        .name()
        .to_string()
}

async fn publish(ch: &Channel, q: &str, body: &str, props: BasicProperties) -> Confirmation {
    ch.basic_publish(
        "".into(),
        q.into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        props,
    )
    .await
    .expect("publish")
    .await
    .expect("confirm")
}

async fn consume(ch: &Channel, q: &str) -> Consumer {
    ch.basic_consume(
        q.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("consume")
}

async fn next(c: &mut Consumer) -> Delivery {
    tokio::time::timeout(WAIT, c.next())
        .await
        .expect("a delivery in time")
        .expect("stream open")
        .expect("delivery")
}

fn body(d: &Delivery) -> &str {
    std::str::from_utf8(&d.data).expect("utf-8")
}

/// Polls `check` until it holds or `WAIT` (x3) passes.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_queue_has_no_jetstream_state_and_goes_with_its_connection() {
    let server = NatsServer::jetstream();
    let owner = connect(&server).await;
    let other = connect(&server).await;
    let ch = confirming(&owner).await;
    let q = exclusive(&ch, "", FieldTable::default()).await;
    // Every process reads the tier from the topology.
    let tier = |c: &Connection| c.topology().queue(&q).map(|d| d.tier);
    assert_eq!(tier(&owner), Some(StorageTier::Local));
    eventually("the other process sees it", async || {
        tier(&other) == Some(StorageTier::Local)
    })
    .await;
    // An exclusive queue that needs a dead-letter exchange keeps its stream (design B).
    let mut dlx = FieldTable::default();
    dlx.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("dl".into()),
    );
    let with_dlx = exclusive(&ch, "", dlx).await;
    assert_eq!(
        owner.topology().queue(&with_dlx).map(|d| d.tier),
        Some(StorageTier::Stream)
    );

    let och = confirming(&other).await;
    let props = BasicProperties::default().with_correlation_id("c1".into());
    assert_eq!(
        publish(&och, &q, "hello", props).await,
        Confirmation::Ack(None)
    );
    let mut c = consume(&ch, &q).await;
    let d = next(&mut c).await;
    assert_eq!((body(&d), d.redelivered), ("hello", false));
    assert_eq!(
        d.properties.correlation_id().as_ref().map(|s| s.as_str()),
        Some("c1")
    );
    assert_eq!(d.routing_key.as_str(), q);

    let js = jetstream::Context::new(owner.nats_client().clone());
    let streams = js.stream_names(None).await.expect("stream names");
    let own = amqp_compat::storage::queue_stream(None, &q);
    assert!(!streams.contains(&own), "no stream for {q}: {streams:?}");
    assert!(streams.contains(&amqp_compat::storage::queue_stream(None, &with_dlx)));

    owner.close(200, "bye".into()).await.expect("close");
    eventually("gone with its owner", async || {
        other.topology().queue(&q).is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_owners_queue_confirms_publishes_as_dropped_until_the_lease_reaps_it() {
    let server = NatsServer::jetstream();
    let owner = connect(&server).await;
    let other = connect(&server).await;
    let ch = confirming(&owner).await;
    let q = exclusive(&ch, "gone-with-owner", FieldTable::default()).await;
    let och = confirming(&other).await;
    eventually("the other process sees it", async || {
        other.topology().queue(&q).is_some()
    })
    .await;
    // The owner's process dies: its NATS connection goes, nobody closes the AMQP one.
    owner
        .nats_client()
        .close()
        .await
        .expect("close the NATS connection");
    // Once the server has dropped the owner's connection (until then a copy reaches the
    // dying connection and its confirm times out: a nack), nobody subscribes to the queue.
    let subject = amqp_compat::SubjectMapper::new(None)
        .expect("mapper")
        .queue_subject(&q);
    eventually("the server drops the owner's subscription", async || {
        let probe =
            other
                .nats_client()
                .request_with(&subject, None, b"", Duration::from_millis(200));
        matches!(
            probe.await,
            Err(nats_client::RequestError::NoResponders { .. })
        )
    })
    .await;
    // Still in the topology: routed, nobody answers, confirmed as a message to a deleted
    // queue is (no error, no nack).
    assert!(other.topology().queue(&q).is_some());
    let confirm = publish(&och, &q, "lost", BasicProperties::default()).await;
    assert_eq!(confirm, Confirmation::Ack(None));
    // Another process reaps it once the owner's lease expired.
    eventually("reaped by the lease", async || {
        other.topology().queue(&q).is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_channels_share_it_round_robin_and_a_closed_channel_requeues_in_order() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch1 = confirming(&conn).await;
    let ch2 = confirming(&conn).await;
    let q = exclusive(&ch1, "", FieldTable::default()).await;
    let mut c1 = consume(&ch1, &q).await;
    let mut c2 = consume(&ch2, &q).await;
    for m in ["m1", "m2", "m3", "m4"] {
        publish(&ch1, &q, m, BasicProperties::default()).await;
    }
    let (a, b) = (next(&mut c1).await, next(&mut c1).await);
    assert_eq!((body(&a), body(&b)), ("m1", "m3"));
    assert_eq!((a.delivery_tag, b.delivery_tag), (1, 2), "ch1's own tags");
    let (x, y) = (next(&mut c2).await, next(&mut c2).await);
    assert_eq!((body(&x), body(&y)), ("m2", "m4"));
    assert_eq!((x.delivery_tag, y.delivery_tag), (1, 2), "ch2's own tags");
    // ch1 closes with m1 and m3 unacked: they go back, in order, flagged.
    ch1.close(200, "bye".into()).await.expect("close ch1");
    let (a, b) = (next(&mut c2).await, next(&mut c2).await);
    assert_eq!((body(&a), body(&b)), ("m1", "m3"));
    assert!(a.redelivered && b.redelivered);
    assert_eq!((a.delivery_tag, b.delivery_tag), (3, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_leave_from_the_head_and_expiration_zero_waits_for_no_one() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = confirming(&conn).await;
    let mut ttl = FieldTable::default();
    ttl.insert("x-message-ttl".into(), AMQPValue::LongInt(300));
    let q = exclusive(&ch, "", ttl).await;
    assert_eq!(
        conn.topology().queue(&q).map(|d| d.tier),
        Some(StorageTier::Local),
        "x-message-ttl is kept in memory"
    );
    publish(&ch, &q, "short", BasicProperties::default()).await;
    let long = BasicProperties::default().with_expiration("60000".into());
    let passive = QueueDeclareOptions::default().passive();
    let count = async || {
        ch.queue_declare(q.as_str().into(), passive, FieldTable::default())
            .await
            .expect("passive declare")
            .message_count()
    };
    assert_eq!(count().await, 1);
    eventually("expired after x-message-ttl", async || count().await == 0).await;

    // Expiration "0": delivered to a consumer with room, else dropped.
    let plain = exclusive(&ch, "", FieldTable::default()).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut c = consume(&ch, &plain).await;
    let now = BasicProperties::default().with_expiration("0".into());
    publish(&ch, &plain, "first", now.clone()).await;
    assert_eq!(body(&next(&mut c).await), "first");
    // The window is full now: a second one has nobody to go to.
    publish(&ch, &plain, "second", now).await;
    publish(&ch, &plain, "third", long).await;
    let count = ch
        .queue_declare(plain.as_str().into(), passive, FieldTable::default())
        .await
        .expect("passive declare")
        .message_count();
    assert_eq!(count, 1, "only 'third' waits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_consumer_stream_is_fed_no_more() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = confirming(&conn).await;
    let q = exclusive(&ch, "", FieldTable::default()).await;
    let c = consume(&ch, &q).await;
    drop(c);
    publish(&ch, &q, "kept", BasicProperties::default()).await;
    let passive = QueueDeclareOptions::default().passive();
    let declared = ch
        .queue_declare(q.as_str().into(), passive, FieldTable::default())
        .await
        .expect("passive declare");
    assert_eq!(
        declared.message_count(),
        1,
        "ready, not handed to a dropped stream"
    );
    let mut c2 = consume(&ch, &q).await;
    assert_eq!(body(&next(&mut c2).await), "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_outlives_its_dropped_channel_handle_as_in_lapin() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let pch = confirming(&conn).await;
    let ch = conn.create_channel().await.expect("channel");
    let q = exclusive(&ch, "", FieldTable::default()).await;
    let mut c = consume(&ch, &q).await;
    // lapin's Consumer keeps its channel open: dropping the handle changes nothing.
    drop(ch);
    publish(&pch, &q, "still fed", BasicProperties::default()).await;
    let d = next(&mut c).await;
    assert_eq!(body(&d), "still fed");
    assert!(
        d.acker
            .ack(amqp_compat::options::BasicAckOptions::default())
            .await
            .expect("ack"),
        "acked on the still open channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_dropped_unclosed_gives_its_unacked_deliveries_back() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = confirming(&conn).await;
    let q = exclusive(&ch, "", FieldTable::default()).await;
    publish(&ch, &q, "held", BasicProperties::default()).await;
    publish(&ch, &q, "consumed", BasicProperties::default()).await;
    let other = conn.create_channel().await.expect("channel");
    let got = other
        .basic_get(
            q.as_str().into(),
            amqp_compat::options::BasicGetOptions::default(),
        )
        .await
        .expect("basic_get")
        .expect("a message");
    assert_eq!(body(&got.delivery), "held");
    let mut c = consume(&other, &q).await;
    assert_eq!(body(&next(&mut c).await), "consumed");
    // Every handle gone, nothing acked, no close: as lapin closes a dropped channel, both
    // come back to the queue, flagged redelivered, in their order.
    drop((got, c, other));
    let passive = QueueDeclareOptions::default().passive();
    eventually("both back in the queue", async || {
        let declared = ch
            .queue_declare(q.as_str().into(), passive, FieldTable::default())
            .await
            .expect("passive declare");
        declared.message_count() == 2 && declared.consumer_count() == 0
    })
    .await;
    let mut again = consume(&ch, &q).await;
    let (a, b) = (next(&mut again).await, next(&mut again).await);
    assert_eq!((body(&a), body(&b)), ("held", "consumed"));
    assert!(a.redelivered && b.redelivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_concurrent_declare_leaves_the_declared_queue_alone() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let (a, b) = (confirming(&conn).await, confirming(&conn).await);
    let mut ttl = FieldTable::default();
    ttl.insert("x-message-ttl".into(), AMQPValue::LongInt(60_000));
    let q = "declared-twice";
    // The same exclusive queue declared at once on two channels with different arguments:
    // one declare wins, the other is refused (406) and closes its channel only.
    let (ra, rb) = tokio::join!(
        a.queue_declare(q.into(), QueueDeclareOptions::exclusive(), ttl),
        b.queue_declare(
            q.into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default()
        ),
    );
    let (ok, refused) = match (ra, rb) {
        (Ok(_), Err(e)) => (a, e),
        (Err(e), Ok(_)) => (b, e),
        other => panic!("one declare must win: {other:?}"),
    };
    assert_eq!(refused.reply_code(), Some(406), "{refused:?}");
    assert_eq!(
        publish(&ok, q, "kept", BasicProperties::default()).await,
        Confirmation::Ack(None)
    );
    let got = ok
        .basic_get(q.into(), amqp_compat::options::BasicGetOptions::default())
        .await
        .expect("basic_get");
    assert_eq!(got.as_ref().map(|m| body(&m.delivery)), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_queues_consumer_tag_is_free_again() {
    let server = NatsServer::jetstream();
    let conn = connect(&server).await;
    let ch = confirming(&conn).await;
    let q = exclusive(&ch, "", FieldTable::default()).await;
    let tagged = async |q: &str| {
        ch.basic_consume(
            q.into(),
            "replies".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    };
    let mut c = tagged(&q).await.expect("consume");
    // RabbitMQ cancels the consumers of a deleted queue (basic.cancel): the stream ends and
    // the tag may be used again on the channel.
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .expect("delete");
    assert!(
        tokio::time::timeout(WAIT, c.next())
            .await
            .expect("the stream ends")
            .is_none()
    );
    let q2 = exclusive(&ch, "", FieldTable::default()).await;
    let mut c2 = tagged(&q2).await.expect("the tag is free again");
    publish(&ch, &q2, "to the new one", BasicProperties::default()).await;
    assert_eq!(body(&next(&mut c2).await), "to the new one");
}
