//! The rules that span several KV keys (one key per exchange, one per queue with its
//! bindings): an exchange delete removes its bindings from the queues' keys, an auto-delete
//! exchange goes with its last binding wherever that binding was kept, `if_unused` sees
//! bindings made by another connection.

use std::time::{Duration, Instant};

use amqp_compat::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use amqp_compat::store::TopologyStore;
use amqp_compat::types::FieldTable;
use amqp_compat::{Channel, Connection, ConnectionProperties, ExchangeKind};
use nats_tests::NatsServer;

async fn connect(server: &NatsServer) -> Connection {
    Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .unwrap()
}

async fn exchange(ch: &Channel, name: &str, auto_delete: bool) {
    let options = ExchangeDeclareOptions {
        auto_delete,
        ..Default::default()
    };
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Direct,
        options,
        FieldTable::default(),
    )
    .await
    .unwrap();
}

async fn bound_queue(ch: &Channel, q: &str, x: &str, key: &str) {
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        q.into(),
        x.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

async fn stored_store(server: &NatsServer) -> TopologyStore {
    let client = nats_client::ConnectOptions::new()
        .connect(&server.url())
        .await
        .unwrap();
    let js = jetstream::Context::new(client);
    TopologyStore::bind(&js, None).await.unwrap().unwrap()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_exchange_removes_its_bindings_from_the_queues_keys() {
    let server = NatsServer::jetstream();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let ca = a.create_channel().await.unwrap();
    let cb = b.create_channel().await.unwrap();
    exchange(&ca, "events", false).await;
    bound_queue(&ca, "q1", "events", "k").await;
    bound_queue(&cb, "q2", "events", "k").await;
    exchange(&ca, "other", false).await;
    ca.queue_bind(
        "q1".into(),
        "other".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    cb.exchange_delete("events".into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let store = stored_store(&server).await;
    let q1 = store.queue_entry("q1").await.unwrap().unwrap();
    let q2 = store.queue_entry("q2").await.unwrap().unwrap();
    let sources = |e: &amqp_compat::routing::QueueEntry| {
        e.bindings
            .iter()
            .map(|b| b.source.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sources(&q1),
        ["other"],
        "only the other exchange's binding is left"
    );
    assert!(sources(&q2).is_empty());

    // Re-declared, it starts without bindings, as in RabbitMQ.
    exchange(&ca, "events", false).await;
    eventually("a's cache", || a.topology().exchange("events").is_some()).await;
    assert!(
        a.topology()
            .route("events", "k", None)
            .unwrap()
            .is_unroutable()
    );
    assert_eq!(
        a.topology().route("other", "k", None).unwrap().queues.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_delete_exchange_goes_with_its_last_binding_in_any_queue() {
    let server = NatsServer::jetstream();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let ca = a.create_channel().await.unwrap();
    let cb = b.create_channel().await.unwrap();
    exchange(&ca, "auto", true).await;
    bound_queue(&ca, "q1", "auto", "k").await;
    bound_queue(&cb, "q2", "auto", "k").await;
    // b decides whether q2's binding was the last with q1's (a's) in view: no waiting here.
    cb.queue_delete("q2".into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let store = stored_store(&server).await;
    assert!(
        store.exchange_entry("auto").await.unwrap().is_some(),
        "q1 still binds it"
    );

    ca.queue_unbind(
        "q1".into(),
        "auto".into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    assert!(
        store.exchange_entry("auto").await.unwrap().is_none(),
        "its last binding went"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_unused_sees_another_connections_binding() {
    let server = NatsServer::jetstream();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let ca = a.create_channel().await.unwrap();
    exchange(&ca, "used", false).await;
    bound_queue(&ca, "q1", "used", "k").await;

    let cb = b.create_channel().await.unwrap();
    let refused = cb
        .exchange_delete(
            "used".into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.reply_code(), Some(406), "{refused}");

    let cb = b.create_channel().await.unwrap();
    cb.queue_delete("q1".into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    cb.exchange_delete(
        "used".into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..Default::default()
        },
    )
    .await
    .expect("unused now");
}
