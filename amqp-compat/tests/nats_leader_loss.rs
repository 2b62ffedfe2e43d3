//! Publisher confirms across the crash of a durable queue's stream leader, on a 3-node
//! cluster: the copies whose PubAck was lost with the leader are resent when the new leader
//! is elected, so every publish is confirmed `Ack` (none nacked, none failed) and every
//! confirmed message is delivered, some maybe twice (at-least-once; `publish_dedupe=true`
//! would store each once).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use amqp_compat::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use amqp_compat::types::FieldTable;
use amqp_compat::{BasicProperties, storage::queue_stream};
use amqp_compat::{
    Channel, Confirmation, Connection, ConnectionProperties, Consumer, PublisherConfirm,
};
use futures_util::StreamExt;
use nats_tests::Cluster;
use tokio::sync::mpsc;
use tokio::task::spawn_blocking;

const QUEUE: &str = "orders";

/// Connects to `url`, retrying while a young cluster's JetStream API times out.
async fn channel(url: &str) -> (Connection, Channel) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(url, ConnectionProperties::default()).await {
            Ok(conn) => {
                let ch = conn.create_channel().await.expect("channel");
                return (conn, ch);
            }
            Err(e) => assert!(Instant::now() < deadline, "cannot connect: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A new connection consuming [`QUEUE`] (prefetch 500), retried while the cluster recovers
/// from the node loss (the consumer's own election, API timeouts on a loaded machine).
async fn consume(url: &str) -> (Connection, Channel, Consumer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (conn, _) = channel(url).await;
    loop {
        let ch = conn.create_channel().await.expect("channel");
        ch.basic_qos(500, BasicQosOptions::default())
            .await
            .expect("qos");
        let consumed = ch
            .basic_consume(
                QUEUE.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await;
        match consumed {
            Ok(consumer) => return (conn, ch, consumer),
            Err(e) => assert!(Instant::now() < deadline, "cannot consume: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The index of the node leading `queue`'s stream.
async fn stream_leader(cluster: &Cluster, queue: &str) -> usize {
    let client = nats_client::ConnectOptions::new()
        .connect(&cluster.urls())
        .await
        .expect("connect");
    let js = jetstream::new(client);
    let info = js
        .stream_info(&queue_stream(None, queue))
        .await
        .expect("stream info");
    let leader = info.cluster.and_then(|c| c.leader).expect("a leader");
    (0..cluster.size())
        .find(|&i| cluster.node(i).name() == leader)
        .expect("the leader is a node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirms_survive_a_crash_of_the_queues_stream_leader() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let (_admin, ach) = channel(&cluster.urls().join(",")).await;
    ach.queue_declare(
        QUEUE.into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .expect("declare");
    let leader = stream_leader(&cluster, QUEUE).await;
    // The publisher is connected to another node, which stays up: its PubAcks in flight to
    // the dead leader never come, and only the resend on the new leader's election helps.
    let home = cluster.node((leader + 1) % 3).url();
    let (_conn, ch) = channel(&home).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");

    let (tx, mut rx) = mpsc::channel::<(u32, PublisherConfirm)>(100_000);
    let collector = tokio::spawn(async move {
        let mut refused = Vec::new();
        while let Some((n, confirm)) = rx.recv().await {
            match confirm.await {
                Ok(Confirmation::Ack(_)) => {}
                other => refused.push(format!("{n}: {other:?}")),
            }
        }
        refused
    });
    let start = Instant::now();
    let mut cluster = Some(cluster);
    let mut crashed = None;
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(8) {
        for _ in 0..10 {
            let confirm = ch
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    n.to_string().as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("basic_publish");
            tx.send((n, confirm)).await.expect("collector");
            n += 1;
        }
        if start.elapsed() > Duration::from_secs(1)
            && let Some(mut c) = cluster.take()
        {
            crashed = Some(spawn_blocking(move || {
                c.kill_node(leader);
                c
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(tx);
    let refused = tokio::time::timeout(Duration::from_secs(90), collector)
        .await
        .expect("every confirm resolves")
        .expect("collector");
    assert!(
        refused.is_empty(),
        "{} of {n} publishes not acked: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    let cluster = crashed.expect("the leader was crashed").await.unwrap();

    // Everything confirmed is delivered from the surviving nodes.
    // The queue's consumer may still be electing its own leader: consume once it answers.
    let (_cconn, cch, mut consumer) = consume(&cluster.urls().join(",")).await;
    let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u32) < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(d)) = tokio::time::timeout(left, consumer.next()).await else {
            let missing: Vec<u32> = (0..n).filter(|i| !seen.contains_key(i)).collect();
            panic!(
                "{} confirmed messages never delivered: {missing:?}",
                missing.len()
            );
        };
        let d = d.expect("delivery");
        let i: u32 = String::from_utf8_lossy(&d.data).parse().expect("a number");
        assert!(i < n, "only what was published: {i}");
        *seen.entry(i).or_default() += 1;
        cch.basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let twice = seen.values().filter(|c| **c > 1).count();
    eprintln!("{n} publishes confirmed across the crash; {twice} delivered more than once so far");
}
