//! The topology at a size the first design (one KV value for everything, capped by
//! `max_payload` near 2,400 queues) could not hold: 3,000 Wire-style client queues, each
//! bound twice to a direct exchange, declared in parallel from several channels; a second
//! connection opened afterwards sees every queue and binding and routes to them.

use std::time::{Duration, Instant};

use amqp_compat::ExchangeKind;
use amqp_compat::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use nats_tests::NatsServer;

const QUEUES: usize = 3_000;
const TASKS: usize = 12;
const EXCHANGE: &str = "user-notifications";

fn d_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-nats-tier".into(),
        AMQPValue::LongString("consumer".into()),
    );
    args
}

/// Client `i`: user `u<i/3>`, client `c<i%3>`.
fn client(i: usize) -> (String, String, String) {
    let (uid, cid) = (format!("u{}", i / 3), format!("c{}", i % 3));
    (format!("{EXCHANGE}.{uid}.{cid}"), uid, cid)
}

async fn declare_clients(ch: Channel, ids: Vec<usize>) {
    for i in ids {
        let (name, uid, cid) = client(i);
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::durable(),
            d_args(),
        )
        .await
        .expect("declare");
        for key in [uid.clone(), format!("{uid}.{cid}")] {
            ch.queue_bind(
                name.as_str().into(),
                EXCHANGE.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_queues_than_one_value_could_hold_are_shared_and_routed() {
    let server = NatsServer::jetstream();
    let a = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = a.create_channel().await.unwrap();
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let ch = a.create_channel().await.unwrap();
        let ids: Vec<usize> = (t..QUEUES).step_by(TASKS).collect();
        tasks.push(tokio::spawn(declare_clients(ch, ids)));
    }
    for t in tasks {
        t.await.expect("declaring task");
    }
    eprintln!(
        "{QUEUES} queues, {} bindings declared in {:?}",
        2 * QUEUES,
        started.elapsed()
    );

    // A connection opened now loads every key.
    let started = Instant::now();
    let b = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("second connection");
    eprintln!(
        "second connection loaded the topology in {:?}",
        started.elapsed()
    );
    let t = b.topology();
    assert_eq!(t.queues().count(), QUEUES);
    assert_eq!(t.binding_count(), 2 * QUEUES);
    for i in [0, 1, 2, 1_000, 1_501, QUEUES - 1] {
        let (name, uid, cid) = client(i);
        assert!(t.queue(&name).is_some(), "{name}");
        let user = t.route(EXCHANGE, &uid, None).unwrap();
        let siblings: Vec<String> = (0..3).map(|c| client(i / 3 * 3 + c).0).collect();
        assert_eq!(user.queues.iter().cloned().collect::<Vec<_>>(), siblings);
        let one = t.route(EXCHANGE, &format!("{uid}.{cid}"), None).unwrap();
        assert_eq!(one.queues.into_iter().collect::<Vec<_>>(), vec![name]);
    }

    // And publishing through it reaches the queues of the user, and only those.
    let cb = b.create_channel().await.unwrap();
    cb.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = cb
        .basic_publish(
            EXCHANGE.into(),
            "u777".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"{\"n\":1}",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(confirm, Confirmation::Ack(None));
    for i in [2_331, 2_332, 2_333] {
        let q = client(i).0;
        let got = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(m) = cb
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .unwrap()
                {
                    return m;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let m = got.unwrap_or_else(|_| panic!("{q} got nothing"));
        assert_eq!(m.delivery.data, b"{\"n\":1}");
    }
    let other = client(2_334).0;
    assert!(
        cb.basic_get(other.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .is_none()
    );
}
