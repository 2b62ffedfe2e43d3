//! `QueueAdmin::list_queues` / `delete_queue` and the `queues` / `queue delete` commands, on
//! a JetStream server with queues declared through amqp-compat.

use std::process::Output;
use std::time::Duration;

use admin::{AdminError, QueueAdmin, QueueDesign};
use amqp_compat::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use futures::StreamExt;
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(15);
const REGEX: &str = r"^backend-notifications\..*";

async fn amqp(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("amqp-compat connects")
}

async fn admin_js(server: &NatsServer) -> jetstream::Context {
    let client = nats_client::ConnectOptions::new()
        .connect(&server.url())
        .await
        .expect("connect");
    jetstream::Context::new(client)
}

async fn declare(ch: &Channel, name: &str, args: FieldTable) {
    ch.queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await
        .expect("queue_declare");
}

async fn publish(ch: &Channel, exchange: &str, key: &str, n: usize) {
    for i in 0..n {
        ch.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            format!("m{i}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    }
}

/// The 25 matching names, declared out of order, and the ones the regex must leave out.
fn domains() -> Vec<String> {
    (0..25)
        .map(|i| format!("backend-notifications.d{:02}.example", (i * 7) % 25))
        .collect()
}
const DECOYS: [&str; 3] = [
    "backend-notificationsX",
    "xbackend-notifications.a",
    "other",
];

async fn declare_listing_fixture(server: &NatsServer) -> Connection {
    let conn = amqp(&server.url()).await;
    let ch = conn.create_channel().await.unwrap();
    for name in domains().iter().map(String::as_str).chain(DECOYS) {
        declare(&ch, name, FieldTable::default()).await;
    }
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_and_paging_return_exactly_the_matching_queues_in_a_stable_order() {
    let server = NatsServer::jetstream();
    let _conn = declare_listing_fixture(&server).await;
    // Another vhost (amqp-compat namespace) with a matching name: not listed under `/`.
    let other = amqp(&format!("{}/billing", server.url())).await;
    let och = other.create_channel().await.unwrap();
    declare(&och, "backend-notifications.billing", FieldTable::default()).await;

    let admin = QueueAdmin::over_jetstream(admin_js(&server).await);
    let mut expected = domains();
    expected.sort();
    let mut seen = Vec::new();
    for page in 1..=3 {
        let p = admin
            .list_queues("/", Some(REGEX), page, 10)
            .await
            .expect("list_queues");
        assert_eq!(p.page, page);
        assert_eq!(p.page_count, 3);
        assert_eq!(p.page_size, 10);
        assert_eq!(p.filtered_count, 25);
        assert_eq!(p.total_count, 28);
        assert_eq!(p.item_count, p.items.len() as u64);
        assert_eq!(p.items.len(), if page < 3 { 10 } else { 5 });
        for q in &p.items {
            assert_eq!(q.vhost, "/");
            assert!(q.durable && !q.exclusive && !q.auto_delete);
            assert_eq!(q.storage.design, QueueDesign::Stream);
        }
        seen.extend(p.items.into_iter().map(|q| q.name));
    }
    assert_eq!(seen, expected, "every matching queue once, sorted by name");
    let again = admin.list_queues("/", Some(REGEX), 2, 10).await.unwrap();
    let again: Vec<String> = again.items.into_iter().map(|q| q.name).collect();
    assert_eq!(again, seen[10..20], "the same page twice is the same");
    let past = admin.list_queues("/", Some(REGEX), 4, 10).await.unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.page_count, 3);

    let all = admin.list_queues("/", None, 1, 100).await.unwrap();
    assert_eq!(all.items.len(), 28);
    let billing = admin
        .list_queues("billing", Some(REGEX), 1, 10)
        .await
        .unwrap();
    let names: Vec<&str> = billing.items.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["backend-notifications.billing"]);
    let none = admin.list_queues("nobody", None, 1, 10).await.unwrap();
    assert!(none.items.is_empty() && none.total_count == 0 && none.page_count == 1);

    assert!(matches!(
        admin.list_queues("/", Some("(unclosed"), 1, 10).await,
        Err(AdminError::InvalidArgument(_))
    ));
    assert!(matches!(
        admin.list_queues("/", None, 0, 10).await,
        Err(AdminError::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_consumers_and_unacked_follow_publishing_and_consuming() {
    let server = NatsServer::jetstream();
    let conn = amqp(&server.url()).await;
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1000));
    declare(&ch, "work", args).await;
    publish(&ch, "", "work", 5).await;

    // A design-D queue: a consumer on its exchange's stream.
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
    let mut d_args = FieldTable::default();
    d_args.insert(
        "x-nats-tier".into(),
        AMQPValue::LongString("consumer".into()),
    );
    declare(&ch, "user-notifications.u1", d_args).await;
    ch.queue_bind(
        "user-notifications.u1".into(),
        "user-notifications".into(),
        "u1".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "user-notifications", "u1", 3).await;

    let admin = QueueAdmin::over_jetstream(admin_js(&server).await);
    let before = admin.list_queues("/", None, 1, 10).await.unwrap();
    let work = before.items.iter().find(|q| q.name == "work").unwrap();
    assert_eq!(
        (work.messages, work.messages_unacknowledged, work.consumers),
        (5, 0, 0)
    );
    assert_eq!(work.arguments.get("x-max-length"), Some(&1000.into()));
    assert_eq!(work.storage.stream.as_deref(), Some("AMQPQ__work"));
    let d = before
        .items
        .iter()
        .find(|q| q.name == "user-notifications.u1")
        .unwrap();
    assert_eq!(d.storage.design, QueueDesign::Consumer);
    assert_eq!(
        d.storage.stream.as_deref(),
        Some("AMQPX__user-notifications")
    );
    assert_eq!((d.messages, d.messages_ready), (3, 3));

    // Consume two of five without acking them.
    let cch = conn.create_channel().await.unwrap();
    cch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    let mut consumer = cch
        .basic_consume(
            "work".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let d = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("a delivery in time")
            .expect("the consumer goes on")
            .expect("a delivery");
        held.push(d);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let work = loop {
        let p = admin.list_queues("/", Some("^work$"), 1, 10).await.unwrap();
        let w = p.items.into_iter().next().expect("work is listed");
        if w.messages_unacknowledged == 2 || tokio::time::Instant::now() > deadline {
            break w;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(work.messages, 5, "unacked messages still count");
    assert_eq!(work.messages_unacknowledged, 2);
    assert_eq!(work.messages_ready, 3);
    assert_eq!(work.consumers, 1);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_queue_removes_it_for_connected_processes_and_its_storage() {
    let server = NatsServer::jetstream();
    let conn = amqp(&server.url()).await;
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "doomed", FieldTable::default()).await;
    declare(&ch, "kept", FieldTable::default()).await;
    publish(&ch, "", "doomed", 2).await;

    let js = admin_js(&server).await;
    let admin = QueueAdmin::over_jetstream(js.clone());
    let gone = admin.delete_queue("/", "doomed").await.expect("deleted");
    assert_eq!((gone.name.as_str(), gone.messages), ("doomed", 2));
    assert!(
        js.stream_info("AMQPQ__doomed").await.is_err(),
        "stream gone"
    );
    assert!(js.stream_info("AMQPQ__kept").await.is_ok(), "others stay");

    // The connected process sees it gone: a passive declare is a 404.
    let ch2 = conn.create_channel().await.unwrap();
    let e = ch2
        .queue_declare(
            "doomed".into(),
            QueueDeclareOptions::durable().passive(),
            FieldTable::default(),
        )
        .await
        .expect_err("the queue is gone");
    assert_eq!(e.reply_code(), Some(404));

    let names: Vec<String> = admin
        .list_queues("/", None, 1, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["kept"]);
    assert!(matches!(
        admin.delete_queue("/", "doomed").await,
        Err(AdminError::QueueNotFound { .. })
    ));
    // Another connection's exclusive queue is deleted too, as the management API does.
    let ch3 = conn.create_channel().await.unwrap();
    ch3.queue_declare(
        "mine".into(),
        QueueDeclareOptions::exclusive(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let listed = admin.list_queues("/", Some("^mine$"), 1, 10).await.unwrap();
    assert!(listed.items[0].exclusive);
    admin
        .delete_queue("/", "mine")
        .await
        .expect("exclusive deleted");
    let e = ch3
        .queue_declare(
            "mine".into(),
            QueueDeclareOptions::exclusive().passive(),
            FieldTable::default(),
        )
        .await
        .expect_err("gone for its owner too");
    assert_eq!(e.reply_code(), Some(404));
    assert!(matches!(
        admin.delete_queue("no-such-vhost", "kept").await,
        Err(AdminError::QueueNotFound { .. })
    ));
}

async fn cli(server: &NatsServer, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_nats-admin"));
    for var in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CREDS",
        "NATS_CONTEXT",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--server").arg(server.url()).args(args);
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("nats-admin ends in time")
        .expect("nats-admin runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_as_json_and_tables_and_deletes() {
    let server = NatsServer::jetstream();
    let _conn = declare_listing_fixture(&server).await;

    let out = cli(
        &server,
        &[
            "queues",
            "--name-regex",
            REGEX,
            "--page",
            "2",
            "--page-size",
            "10",
            "--json",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["page"], 2);
    assert_eq!(v["page_count"], 3);
    assert_eq!(v["filtered_count"], 25);
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 10);
    for key in [
        "name",
        "messages",
        "consumers",
        "messages_unacknowledged",
        "storage",
    ] {
        assert!(items[0].get(key).is_some(), "{key} in {}", items[0]);
    }

    let out = cli(&server, &["queues", "--name-regex", "^other$"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for column in ["NAME", "MESSAGES", "UNACKED", "CONSUMERS", "STORAGE"] {
        assert!(text.contains(column), "{column} in {text}");
    }
    assert!(
        text.contains("other") && text.contains("AMQPQ__other"),
        "{text}"
    );

    // Another vhost, by --vhost.
    let billing = amqp(&format!("{}/billing", server.url())).await;
    let bch = billing.create_channel().await.unwrap();
    declare(&bch, "invoices", FieldTable::default()).await;
    let out = cli(&server, &["queues", "--vhost", "billing", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["items"][0]["name"], "invoices");
    assert_eq!(v["items"][0]["vhost"], "billing");
    assert_eq!(v["total_count"], 1);

    let out = cli(&server, &["queue", "delete", "other"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = cli(&server, &["queue", "delete", "other"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no queue \"other\""), "{err}");
}

/// A design-E (in-memory exclusive) queue: listed with the counts its owner reports (3
/// published, 1 delivered unacked: 3 / 2 / 1, one consumer), then "not counted" once its
/// owner's connection is gone without closing (nobody answers); `delete_queue` makes the
/// owner end its consumers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_exclusive_queue_is_counted_by_its_owner() {
    let server = NatsServer::jetstream();
    let conn = amqp(&server.url()).await;
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .to_string();
    publish(&ch, "", &q, 3).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery")
        .expect("open")
        .expect("delivery");
    assert_eq!(first.data, b"m0");

    let admin = QueueAdmin::over_jetstream(admin_js(&server).await);
    let listed = admin.list_queues("/", None, 1, 10).await.unwrap();
    let info = listed.items.iter().find(|i| i.name == q).expect("listed");
    assert_eq!(info.storage.design, QueueDesign::Local);
    assert!(info.storage.counted && info.exclusive && info.storage.stream.is_none());
    assert_eq!(
        (
            info.messages,
            info.messages_ready,
            info.messages_unacknowledged
        ),
        (3, 2, 1)
    );
    assert_eq!(info.consumers, 1);

    // Deleted by the administrator: the owner ends its consumer.
    let deleted = admin.delete_queue("/", &q).await.unwrap();
    assert_eq!(deleted.messages, 3);
    let end = tokio::time::timeout(WAIT, async {
        while let Some(d) = consumer.next().await {
            d.expect("no error");
        }
    })
    .await;
    assert!(end.is_ok(), "the consumer's stream ends");

    // An exclusive queue whose owner vanished (no close): not counted, listed until reaped.
    let q2 = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .to_string();
    conn.nats_client().close().await.unwrap();
    let listed = admin.list_queues("/", None, 1, 10).await.unwrap();
    let info = listed.items.iter().find(|i| i.name == q2).expect("listed");
    assert!(!info.storage.counted);
    assert_eq!(info.messages, 0);
}
