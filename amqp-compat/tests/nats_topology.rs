//! amqp-compat on a real JetStream server: the shared topology (KV bucket, compare-and-set,
//! watch), `Connection`/`Channel` and the queue/exchange methods with RabbitMQ's reply codes.

use std::time::{Duration, Instant};

use amqp_compat::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use amqp_compat::types::FieldTable;
use amqp_compat::{
    ChannelState, Connection, ConnectionProperties, ConnectionState, ErrorKind, ExchangeKind,
};
use nats_tests::NatsServer;

async fn connect(server: &NatsServer, name: &str) -> Connection {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(&server.url(), props)
        .await
        .expect("connect")
}

/// Waits until `check` holds for `conn`'s cached topology (it follows a watch).
async fn eventually(conn: &Connection, what: &str, check: impl Fn(&Connection) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !check(conn) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn code(e: &amqp_compat::Error) -> Option<u16> {
    e.reply_code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_share_declarations() {
    let server = NatsServer::jetstream();
    let a = connect(&server, "gundeck-1").await;
    let b = connect(&server, "gundeck-2").await;
    let ca = a.create_channel().await.unwrap();
    let cb = b.create_channel().await.unwrap();

    ca.exchange_declare(
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
    let q = ca
        .queue_declare(
            "user-notifications.u1.c1".into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.name().as_str(), "user-notifications.u1.c1");
    assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
    for key in ["u1", "u1.c1"] {
        ca.queue_bind(
            "user-notifications.u1.c1".into(),
            "user-notifications".into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }

    // The other connection sees all of it: passive declares, and its watched cache routes.
    cb.exchange_declare(
        "user-notifications".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = cb
        .queue_declare(
            "user-notifications.u1.c1".into(),
            QueueDeclareOptions::durable().passive(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.name().as_str(), "user-notifications.u1.c1");
    eventually(&b, "b's cache to route u1.c1", |c| {
        let t = c.topology();
        t.route("user-notifications", "u1.c1", None)
            .map(|r| r.queues.contains("user-notifications.u1.c1"))
            .unwrap_or(false)
    })
    .await;

    // An idempotent re-declare from b, then a mismatching one: 406 closes b's channel.
    cb.queue_declare(
        "user-notifications.u1.c1".into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let e = cb
        .queue_declare(
            "user-notifications.u1.c1".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(406), "{e}");
    assert_eq!(cb.status(), ChannelState::Error);
    let e = cb
        .queue_declare(
            "x".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::InvalidChannelState(ChannelState::Error, _)
        ),
        "{e:?}"
    );
    // Unbinding on a: b's cache follows.
    ca.queue_unbind(
        "user-notifications.u1.c1".into(),
        "user-notifications".into(),
        "u1".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    eventually(&b, "b's cache to drop the u1 binding", |c| {
        c.topology()
            .route("user-notifications", "u1", None)
            .map(|r| r.queues.is_empty())
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_codes_of_the_queue_methods() {
    let server = NatsServer::jetstream();
    let a = connect(&server, "a").await;
    let ch = a.create_channel().await.unwrap();
    // Passive declare of a missing queue: 404, the channel is closed.
    let e = ch
        .queue_declare(
            "missing".into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(404));
    let ch = a.create_channel().await.unwrap();
    // Server-named queues.
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert!(q.name().as_str().starts_with("amq.gen-"), "{}", q.name());
    // Reserved names: 403.
    let e = ch
        .queue_declare(
            "amq.mine".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(403));
    // Binding to a missing exchange: 404; to the default exchange: 403.
    for (exchange, want) in [("nope", 404), ("", 403)] {
        let ch = a.create_channel().await.unwrap();
        let e = ch
            .queue_bind(
                q.name().clone(),
                exchange.into(),
                "k".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(want), "{exchange}: {e}");
    }
    // Bad queue arguments: 406 before anything is stored.
    let ch = a.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-max-length".into(),
        amqp_compat::types::AMQPValue::LongString("ten".into()),
    );
    let e = ch
        .queue_declare("bad".into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(406));
    assert!(a.topology().queue("bad").is_none());
    // Deleting an absent queue or exchange succeeds.
    let ch = a.create_channel().await.unwrap();
    assert_eq!(
        ch.queue_delete("absent".into(), QueueDeleteOptions::default())
            .await
            .unwrap(),
        0
    );
    ch.exchange_delete("absent".into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    // Purge of a missing queue: 404.
    let e = ch
        .queue_purge("absent".into(), QueuePurgeOptions::default())
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queues_belong_to_their_connection() {
    let server = NatsServer::jetstream();
    let a = connect(&server, "owner").await;
    let b = connect(&server, "other").await;
    let ca = a.create_channel().await.unwrap();
    ca.queue_declare(
        "mine".into(),
        QueueDeclareOptions::exclusive(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let cb = b.create_channel().await.unwrap();
    let e = cb
        .queue_declare(
            "mine".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(405));
    let cb = b.create_channel().await.unwrap();
    let e = cb
        .queue_delete("mine".into(), QueueDeleteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(405));

    // Closing the owner deletes the queue and its stream.
    a.close(200, "bye".into()).await.unwrap();
    assert_eq!(a.status(), ConnectionState::Closed);
    let e = a.create_channel().await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidConnectionState(_)),
        "{e:?}"
    );
    let cb = b.create_channel().await.unwrap();
    let e = cb
        .queue_declare(
            "mine".into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(404));
    let js = jetstream::Context::new(b.nats_client().clone());
    let names = js.stream_names(None).await.unwrap();
    assert!(!names.iter().any(|n| n.contains("mine")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_delete_count_the_queues_messages() {
    let server = NatsServer::jetstream();
    let a = connect(&server, "a").await;
    let ch = a.create_channel().await.unwrap();
    ch.queue_declare(
        "jobs".into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // Three messages stored on the queue's subject (publishing lands in the next slice).
    let js = jetstream::Context::new(a.nats_client().clone());
    let fill = async |n: usize| {
        for i in 0..n {
            js.publish("q.jobs", format!("m{i}")).await.unwrap();
        }
    };
    fill(3).await;
    let q = ch
        .queue_declare(
            "jobs".into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.message_count(), 3);
    assert_eq!(
        ch.queue_purge("jobs".into(), QueuePurgeOptions::default())
            .await
            .unwrap(),
        3
    );
    fill(2).await;
    let e = ch
        .queue_delete(
            "jobs".into(),
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(406));
    let ch = a.create_channel().await.unwrap();
    assert_eq!(
        ch.queue_delete("jobs".into(), QueueDeleteOptions::default())
            .await
            .unwrap(),
        2
    );
    assert!(a.topology().queue("jobs").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_name_is_the_nats_connection_name() {
    let server = NatsServer::jetstream();
    let _a = connect(&server, "cannon-7").await;
    let connz = nats_tests::monitor_json(server.monitor_port(), "/connz");
    let names: Vec<String> = connz["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.iter().any(|n| n == "cannon-7"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_declares_from_many_connections_all_land() {
    // Compare-and-set with retry: concurrent writers never lose each other's changes.
    let server = NatsServer::jetstream();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let conn = connect(&server, &format!("c{i}")).await;
        tasks.push(tokio::spawn(async move {
            let ch = conn.create_channel().await.unwrap();
            for j in 0..5 {
                ch.queue_declare(
                    format!("q-{i}-{j}").into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            }
            conn
        }));
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await.unwrap());
    }
    for conn in &conns {
        eventually(conn, "all 20 queues", |c| {
            c.topology().queues().count() == 20
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_owners_exclusive_queue_is_reaped() {
    use amqp_compat::connection::{LEASE_INTERVAL, LEASE_TTL};
    let server = NatsServer::jetstream();
    let a = connect(&server, "crashes").await;
    let b = connect(&server, "survives").await;
    let ca = a.create_channel().await.unwrap();
    let q = ca
        .queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let name = q.name().to_string();
    // While its owner lives (and renews its lease), the queue stays.
    tokio::time::sleep(LEASE_TTL + 2 * LEASE_INTERVAL).await;
    assert!(b.topology().queue(&name).is_some());
    // The owner's process "dies": its NATS connection goes without an AMQP close.
    a.nats_client().close().await.unwrap();
    let deadline = Instant::now() + LEASE_TTL + Duration::from_secs(20);
    eventually(&b, "the reaper", |c| c.topology().queue(&name).is_none()).await;
    assert!(Instant::now() < deadline);
    let js = jetstream::Context::new(b.nats_client().clone());
    let streams = js.stream_names(None).await.unwrap();
    assert!(
        !streams.iter().any(|s| s.contains("amq=2Egen")),
        "{streams:?}"
    );
}
