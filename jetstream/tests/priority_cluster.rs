//! A pinned-client consumer (single active consumer) on a 3-node cluster across the kill of
//! the consumer's leader: the new leader does not know the old pin, so the clients' pulls
//! meet `423`, drop the pin and compete again. Nothing is lost and, with one message in
//! flight, messages are still handed out in stream order.

mod common;

use std::time::Duration;

use common::{context, create_r3_stream, within};
use futures::StreamExt;
use jetstream::{ConsumerConfig, Context, PriorityPolicy, PublishOptions};
use nats_tests::Cluster;
use tokio::sync::mpsc;
use tokio::task::spawn_blocking;

const TOTAL: u64 = 60;

/// Consumes on its own connection, reports `(payload, who)`, acks everything.
fn worker(js: Context, who: &'static str, tx: mpsc::UnboundedSender<(u64, &'static str)>) {
    tokio::spawn(async move {
        let consumer = js.get_consumer("SACR3", "q").await.unwrap();
        let mut messages = consumer.messages().await.unwrap();
        while let Some(item) = messages.next().await {
            match item {
                Ok(m) => {
                    let n = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                    if tx.send((n, who)).is_err() {
                        return;
                    }
                    let _ = m.double_ack().await;
                }
                Err(e) => eprintln!("{who}: {e}"),
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_consumer_survives_the_kill_of_its_leader_in_order() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let admin = context(&cluster.urls().join(",")).await;
    create_r3_stream(&admin, "SACR3", "sacr3.>").await;
    let consumer = admin
        .create_consumer(
            "SACR3",
            ConsumerConfig {
                priority_groups: vec!["sac".into()],
                priority_policy: PriorityPolicy::PinnedClient,
                priority_timeout: Duration::from_secs(3),
                ack_wait: Duration::from_secs(3),
                max_ack_pending: 1,
                ..ConsumerConfig::durable("q")
            },
        )
        .await
        .unwrap();
    let leader = consumer
        .cached_info()
        .cluster
        .clone()
        .unwrap()
        .leader
        .unwrap();
    let victim: usize = leader.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let js_a = context(&cluster.node((victim + 1) % 3).url()).await;
    worker(js_a.clone(), "A", tx.clone());
    let js_b = context(&cluster.node((victim + 2) % 3).url()).await;
    worker(js_b, "B", tx);

    let publisher = tokio::spawn(async move {
        for i in 0..TOTAL {
            let opts = PublishOptions::new()
                .msg_id(format!("m{i}"))
                .retry_attempts(40)
                .retry_wait(Duration::from_millis(250));
            while let Err(e) = js_a.publish_with("sacr3.q", i.to_string(), &opts).await {
                eprintln!("publish {i}: {e}; again");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let mut order = Vec::new();
    let mut cluster = Some(cluster);
    let mut killer = None;
    within(120, "every message", async {
        while order.last().is_none_or(|&(n, _)| n + 1 < TOTAL) {
            let (n, who) = rx.recv().await.unwrap();
            // A redelivery (an ack lost in the failover) repeats the latest message only.
            if order.last().is_some_and(|&(last, _)| n <= last) {
                assert_eq!(
                    order.last().unwrap().0,
                    n,
                    "out of order: {order:?} then {n}"
                );
                continue;
            }
            order.push((n, who));
            if order.len() == 20 && killer.is_none() {
                let mut c = cluster.take().unwrap();
                killer = Some(spawn_blocking(move || {
                    c.kill_node(victim);
                    c
                }));
            }
        }
    })
    .await;
    publisher.await.unwrap();
    let numbers: Vec<u64> = order.iter().map(|&(n, _)| n).collect();
    assert_eq!(
        numbers,
        (0..TOTAL).collect::<Vec<_>>(),
        "in order, none lost"
    );
    // Before the kill one client had them all.
    let first = order[0].1;
    assert!(order[..20].iter().all(|&(_, w)| w == first), "{order:?}");
    let switches = order.windows(2).filter(|w| w[0].1 != w[1].1).count();
    eprintln!("deliveries switched client {switches} time(s): {order:?}");
    drop(killer.unwrap().await.unwrap());
}
