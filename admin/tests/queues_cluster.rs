//! Queue listing and deletion on the harness's 3-node cluster: queues declared through one
//! node are listed and deleted through another, by a `QueueAdmin` that also has `$SYS`.

mod common;

use std::time::Duration;

use admin::{AdminError, QueueAdmin, VhostMapping};
use amqp_compat::options::QueueDeclareOptions;
use amqp_compat::types::FieldTable;
use amqp_compat::{Connection, ConnectionProperties};
use common::{app_client, eventually, sys_client};
use nats_tests::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_declared_on_one_node_are_listed_paged_and_deleted_through_another() {
    let cluster = Cluster::start(3);
    let conn = Connection::connect(&cluster.node(0).url(), ConnectionProperties::default())
        .await
        .expect("amqp-compat connects to node 0");
    let ch = conn.create_channel().await.unwrap();
    let mut expected = Vec::new();
    for i in (0..12).rev() {
        let name = format!("backend-notifications.d{i:02}");
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
        expected.push(name);
    }
    ch.queue_declare(
        "unrelated".into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    expected.sort();

    let sys = sys_client(&cluster, 2).await;
    let js = jetstream::Context::new(app_client(&cluster, 2, "queue-admin").await);
    let admin = QueueAdmin::new(&sys, VhostMapping::new("APP")).with_jetstream(js);
    let mut seen = Vec::new();
    for page in 1..=3 {
        let p = admin
            .list_queues("/", Some(r"^backend-notifications\..*"), page, 5)
            .await
            .expect("list_queues");
        assert_eq!((p.page_count, p.filtered_count, p.total_count), (3, 12, 13));
        seen.extend(p.items.into_iter().map(|q| q.name));
    }
    assert_eq!(seen, expected);
    // The same QueueAdmin answers connection calls over $SYS.
    let conns = admin.list_connections("/").await.expect("connections");
    assert!(
        conns
            .iter()
            .any(|c| c.user_provided_name.as_deref() == Some("queue-admin"))
    );

    admin.delete_queue("/", &expected[0]).await.expect("delete");
    let left = admin.list_queues("/", None, 1, 100).await.unwrap();
    assert_eq!(left.total_count, 12);
    assert!(left.items.iter().all(|q| q.name != expected[0]));
    // Node 0's connection sees it gone.
    let gone = eventually(Duration::from_secs(10), || async {
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            expected[0].as_str().into(),
            QueueDeclareOptions::durable().passive(),
            FieldTable::default(),
        )
        .await
        .is_err_and(|e| e.reply_code() == Some(404))
    })
    .await;
    assert!(gone, "a passive declare on node 0 gets 404");
    assert!(matches!(
        admin.delete_queue("/", &expected[0]).await,
        Err(AdminError::QueueNotFound { .. })
    ));

    // The queue commands run as the system user: one clear line, exit 1.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_nats-admin"))
        .env_remove("NATS_URL")
        .args(["--timeout", "2s", "-s", &cluster.sys_url(), "queues"])
        .output()
        .await
        .expect("nats-admin runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("services' account"), "{err}");
}
