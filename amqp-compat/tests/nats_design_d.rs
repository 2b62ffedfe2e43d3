//! Design D on a real JetStream server: Wire's shape (a direct exchange, client queues
//! declared with `x-nats-tier: consumer` and bound with `<uid>` and `<uid>.<cid>`): one
//! stored copy per publish in the exchange's stream, one filtered consumer per queue.

use std::time::Duration;

use amqp_compat::exchange_storage::{EXCHANGE_MAX_CONSUMERS, exchange_stream, queue_consumer};
use amqp_compat::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ConnectionUri,
    ExchangeKind, SubjectMapper,
};
use futures_util::StreamExt;
use nats_tests::NatsServer;

fn d_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-nats-tier".into(),
        AMQPValue::LongString("consumer".into()),
    );
    args
}

async fn client_queue(ch: &Channel, uid: &str, cid: &str) -> String {
    let name = format!("user-notifications.{uid}.{cid}");
    ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions::durable(),
        d_args(),
    )
    .await
    .unwrap();
    for key in [uid.to_owned(), format!("{uid}.{cid}")] {
        ch.queue_bind(
            name.as_str().into(),
            "user-notifications".into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    name
}

async fn publish(ch: &Channel, key: &str, body: &str) {
    let c = ch
        .basic_publish(
            "user-notifications".into(),
            key.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_content_type("application/json".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(c, Confirmation::Ack(None));
}

/// A connection with `mapper` and a channel in confirm mode that declared the direct
/// exchange `user-notifications`.
async fn wire_exchange(uri: &ConnectionUri, mapper: SubjectMapper) -> (Connection, Channel) {
    let conn = Connection::connect_uri(uri, ConnectionProperties::default(), mapper)
        .await
        .unwrap();
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
    (conn, ch)
}

async fn drain(ch: &Channel, q: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(q.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        out.push(String::from_utf8_lossy(&m.data).into_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_fan_out_is_stored_once_and_filtered_per_queue() {
    let server = NatsServer::jetstream();
    let conn = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.exchange_declare(
        "user-notifications".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let c1 = client_queue(&ch, "u1", "c1").await;
    let c2 = client_queue(&ch, "u1", "c2").await;
    let other = client_queue(&ch, "u2", "c1").await;

    publish(&ch, "u1", "to all of u1").await;
    publish(&ch, "u1.c2", "to c2 only").await;
    publish(&ch, "u2", "to u2").await;

    // Stored once per publish, in the exchange's stream; no stream per queue.
    let js = jetstream::Context::new(conn.nats_client().clone());
    let stream = exchange_stream(None, "user-notifications");
    let info = js.stream_info(&stream).await.unwrap();
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.config.max_consumers, EXCHANGE_MAX_CONSUMERS);
    let names = js.stream_names(None).await.unwrap();
    assert!(!names.iter().any(|n| n.starts_with("AMQPQ_")), "{names:?}");
    // No consumer until the queue is used: an unconsumed queue costs a checkpoint only.
    assert!(
        js.consumer_info(&stream, &queue_consumer(&c2))
            .await
            .is_err()
    );

    // The count comes from the consumer, created from the checkpoint: it has everything
    // routed to the queue since its binding.
    let q = ch
        .queue_declare(c2.as_str().into(), QueueDeclareOptions::durable(), d_args())
        .await
        .unwrap();
    assert_eq!(q.message_count(), 2);
    let ci = js
        .consumer_info(&stream, &queue_consumer(&c2))
        .await
        .unwrap();
    let mut filters = ci.config.filter_subjects.clone();
    filters.sort();
    // Its two bindings, and the copies addressed to it by name.
    assert_eq!(
        filters,
        [
            "qd.user-notifications.user-notifications.u1.c2",
            "x.user-notifications.u1",
            "x.user-notifications.u1.c2"
        ]
    );
    assert_eq!(ci.config.num_replicas, 1);
    assert!(ci.config.memory_storage);

    // A consumer with acks, as cannon does.
    let cons = conn.create_channel().await.unwrap();
    let mut consumer = cons
        .basic_consume(
            c2.as_str().into(),
            "cannon".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(d.exchange.as_str(), "user-notifications");
        got.push((
            String::from_utf8_lossy(&d.data).into_owned(),
            d.routing_key.to_string(),
        ));
    }
    assert_eq!(
        got,
        [
            ("to all of u1".to_owned(), "u1".to_owned()),
            ("to c2 only".to_owned(), "u1.c2".to_owned())
        ]
    );
    cons.basic_ack(2, BasicAckOptions { multiple: true })
        .await
        .unwrap();

    assert_eq!(drain(&ch, &c1).await, ["to all of u1"]);
    assert_eq!(drain(&ch, &other).await, ["to u2"]);

    // Purge and delete act on the queue's consumer only; the exchange's stream stays.
    publish(&ch, "u2.c1", "x").await;
    publish(&ch, "u2", "y").await;
    assert_eq!(
        ch.queue_purge(other.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap(),
        2
    );
    assert!(drain(&ch, &other).await.is_empty());
    publish(&ch, "u2", "after purge").await;
    assert_eq!(drain(&ch, &other).await, ["after purge"]);
    ch.queue_delete(other.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert!(
        js.consumer_info(&stream, &queue_consumer(&other))
            .await
            .is_err()
    );
    assert!(js.stream_info(&stream).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_d_queue_refuses_bindings_it_cannot_filter_exactly() {
    let server = NatsServer::jetstream();
    let conn = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for (x, kind) in [
        ("a", ExchangeKind::Direct),
        ("b", ExchangeKind::Direct),
        ("h", ExchangeKind::Headers),
    ] {
        ch.exchange_declare(
            x.into(),
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    ch.queue_declare("d".into(), QueueDeclareOptions::durable(), d_args())
        .await
        .unwrap();
    let bind = async |x: &str| {
        let ch = conn.create_channel().await.unwrap();
        ch.queue_bind(
            "d".into(),
            x.into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    };
    bind("a").await.unwrap();
    for x in ["b", "h"] {
        let e = bind(x).await.unwrap_err();
        assert_eq!(e.reply_code(), Some(406), "{x}: {e}");
    }
    // Nothing of the refused bindings was stored.
    assert_eq!(conn.topology().bindings_of("d").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_preset_makes_client_queues_design_d_by_default() {
    use amqp_compat::routing::StorageTier;

    let server = NatsServer::jetstream();
    let uri = ConnectionUri::parse(&server.url()).unwrap();
    let (conn, ch) = wire_exchange(&uri, SubjectMapper::wire(None).unwrap()).await;
    let none = FieldTable::default;
    let client = "user-notifications.u1.c1";
    ch.queue_declare(client.into(), QueueDeclareOptions::durable(), none())
        .await
        .unwrap();
    for key in ["u1", "u1.c1"] {
        ch.queue_bind(
            client.into(),
            "user-notifications".into(),
            key.into(),
            QueueBindOptions::default(),
            none(),
        )
        .await
        .unwrap();
    }
    let fed = "backend-notifications.example.com";
    ch.queue_declare(fed.into(), QueueDeclareOptions::durable(), none())
        .await
        .unwrap();
    let temp = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            none(),
        )
        .await
        .unwrap();
    let t = conn.topology();
    let tier = |q: &str| t.queue(q).map(|d| d.tier);
    assert_eq!(tier(client), Some(StorageTier::Consumer));
    assert_eq!(tier(fed), Some(StorageTier::Stream));
    assert_eq!(tier(temp.name().as_str()), Some(StorageTier::Local));

    // It is a consumer on the exchange's stream (no stream of its own) and gets the fan-out.
    publish(&ch, "u1", "to all of u1").await;
    let js = jetstream::Context::new(conn.nats_client().clone());
    let names = js.stream_names(None).await.unwrap();
    assert!(
        names.iter().any(|n| n.starts_with("AMQPX_")),
        "the exchange's stream: {names:?}"
    );
    let own = amqp_compat::storage::queue_stream(None, client);
    assert!(!names.contains(&own), "{names:?}");
    assert!(names.contains(&amqp_compat::storage::queue_stream(None, fed)));
    assert_eq!(drain(&ch, client).await, ["to all of u1"]);
}

/// A D queue's consumer exists only while the queue is used: the server removes it after
/// `IDLE_CONSUMER` without pulls. The next use re-creates it from the checkpoint, with the
/// bindings made meanwhile, and nothing unacknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_idle_consumer_comes_back_at_its_checkpoint() {
    let server = NatsServer::jetstream();
    let uri = ConnectionUri::parse(&server.url()).unwrap();
    let (conn, ch) = wire_exchange(&uri, SubjectMapper::default()).await;
    let q = client_queue(&ch, "u1", "c1").await;
    for i in 0..5 {
        publish(&ch, "u1", &format!("m{i}")).await;
    }
    // Take and ack two, then close: the close writes the checkpoint.
    {
        let conn = Connection::connect(&server.url(), ConnectionProperties::default())
            .await
            .unwrap();
        let cch = conn.create_channel().await.unwrap();
        for i in 0..2 {
            let m = cch
                .basic_get(q.as_str().into(), BasicGetOptions::default())
                .await
                .unwrap()
                .expect("a message");
            assert_eq!(String::from_utf8_lossy(&m.data), format!("m{i}"));
            m.delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .unwrap();
        }
        // Acks are asynchronous: let the server apply them before the close checkpoints.
        let js = jetstream::Context::new(conn.nats_client().clone());
        let stream = exchange_stream(None, "user-notifications");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while js
            .consumer_info(&stream, &queue_consumer(&q))
            .await
            .unwrap()
            .ack_floor
            .consumer_sequence
            < 2
        {
            assert!(std::time::Instant::now() < deadline, "acks not applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        conn.close(200, "bye".into()).await.unwrap();
    }
    // The server's inactivity removal, without the wait.
    let js = jetstream::Context::new(conn.nats_client().clone());
    let stream = exchange_stream(None, "user-notifications");
    let ci = js
        .consumer_info(&stream, &queue_consumer(&q))
        .await
        .unwrap();
    assert_eq!(
        ci.config.inactive_threshold,
        amqp_compat::exchange_storage::IDLE_CONSUMER
    );
    assert!(
        js.delete_consumer(&stream, &queue_consumer(&q))
            .await
            .unwrap()
    );
    // A binding and publishes while the queue has no consumer.
    ch.queue_bind(
        q.as_str().into(),
        "user-notifications".into(),
        "u1.all".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "u1.all", "m5").await;
    publish(&ch, "u1", "m6").await;
    let declared = ch
        .queue_declare(q.as_str().into(), QueueDeclareOptions::durable(), d_args())
        .await
        .unwrap();
    assert_eq!(declared.message_count(), 5);
    assert_eq!(drain(&ch, &q).await, ["m2", "m3", "m4", "m5", "m6"]);
}

/// A D queue also receives what reaches it by name (the default exchange) and through an
/// exchange-to-exchange binding: a copy addressed to it on its exchange's stream, delivered
/// with the publish's own exchange and key, and seen by no other queue of that exchange (not
/// even one whose filter takes every key). A D queue bound nowhere has no stream: a publish
/// routed to it is nacked, never confirmed as stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_d_queue_receives_by_name_and_through_other_exchanges() {
    let server = NatsServer::jetstream();
    let uri = ConnectionUri::parse(&server.url()).unwrap();
    let (_conn, ch) = wire_exchange(&uri, SubjectMapper::new(None).unwrap()).await;
    let q = client_queue(&ch, "u1", "c1").await;
    for (x, kind) in [
        ("front", ExchangeKind::Fanout),
        ("all", ExchangeKind::Fanout),
    ] {
        ch.exchange_declare(
            x.into(),
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    ch.exchange_bind(
        "user-notifications".into(),
        "front".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // A D queue of a fanout exchange: its filter takes every key of that exchange.
    ch.queue_declare(
        "everything".into(),
        QueueDeclareOptions::durable(),
        d_args(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        "everything".into(),
        "all".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare("unbound".into(), QueueDeclareOptions::durable(), d_args())
        .await
        .unwrap();
    let send = async |x: &str, key: &str, body: &str| {
        ch.basic_publish(
            x.into(),
            key.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
    };
    assert_eq!(send("", &q, "by name").await, Confirmation::Ack(None));
    assert_eq!(
        send("front", "u1", "via e2e").await,
        Confirmation::Ack(None)
    );
    assert_eq!(
        send("user-notifications", "u1", "bound").await,
        Confirmation::Ack(None)
    );
    assert_eq!(send("all", "k", "fanned").await, Confirmation::Ack(None));
    assert_eq!(
        send("", "everything", "named").await,
        Confirmation::Ack(None)
    );
    assert_eq!(
        send("", "unbound", "nowhere").await,
        Confirmation::Nack(None)
    );

    let mut got = Vec::new();
    while let Some(m) = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let body = String::from_utf8_lossy(&m.data).into_owned();
        got.push((
            m.delivery.exchange.to_string(),
            m.delivery.routing_key.to_string(),
            body,
        ));
    }
    let expected = [
        ("", q.as_str(), "by name"),
        ("front", "u1", "via e2e"),
        ("user-notifications", "u1", "bound"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(x, k, b)| (x.to_string(), k.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(drain(&ch, "everything").await, ["fanned", "named"]);
}
