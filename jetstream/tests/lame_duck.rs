//! A consumer whose server enters lame-duck mode moves to another server; during the move
//! its inbox is subscribed on both, and the server delivers what it sends to the inbox
//! through both connections. The consume loop drops those copies (same ack subject): a
//! message comes twice only when the server really delivers it again.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{context, create_r3_stream, within};
use futures::StreamExt;
use jetstream::{ConsumeOptions, ConsumerConfig, PublishOptions};
use nats_tests::Cluster;
use tokio::task::spawn_blocking;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_copies_from_the_lame_duck_overlap() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let admin = context(&cluster.urls().join(",")).await;
    create_r3_stream(&admin, "LDM", "ldm.>").await;
    admin
        .create_consumer(
            "LDM",
            ConsumerConfig {
                // A pull batch sent during the move can be lost (at-least-once): it comes
                // back after this.
                ack_wait: Duration::from_secs(10),
                max_ack_pending: 20_000,
                ..ConsumerConfig::durable("c")
            },
        )
        .await
        .unwrap();
    // The consumer's connection is on node 0 (listed first, in order), which goes lame duck;
    // publishing goes to node 1.
    let client = nats_client::ConnectOptions::new()
        .no_randomize()
        .connect(&cluster.urls().join(","))
        .await
        .unwrap();
    assert_eq!(client.server_info().server_name, "n1");
    let js = jetstream::new(client);
    let publisher_js = context(&cluster.node(1).url()).await;
    let consumer = js.get_consumer("LDM", "c").await.unwrap();
    let mut messages = consumer
        .consume(ConsumeOptions {
            max_messages: 1000,
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    // Publishing goes on until the move is over; every message is published until acked.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn(async move {
        let mut i = 0u64;
        let mut pending = Vec::with_capacity(256);
        while !*stop_rx.borrow() {
            for _ in 0..256 {
                let opts = PublishOptions::new().msg_id(format!("m{i}"));
                let ack = publisher_js
                    .publish_async_with("ldm.x", i.to_string(), &opts)
                    .await;
                pending.push((i, opts, ack));
                i += 1;
            }
            for (n, opts, ack) in pending.drain(..) {
                let ok = match ack {
                    Ok(fut) => fut.await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    let opts = opts
                        .retry_attempts(20)
                        .retry_wait(Duration::from_millis(250));
                    while let Err(e) = publisher_js
                        .publish_with("ldm.x", n.to_string(), &opts)
                        .await
                    {
                        eprintln!("publish {n}: {e}; again");
                    }
                }
            }
        }
        i
    });

    // (stream sequence, delivery count) -> times seen.
    let mut seen: HashMap<(u64, u64), u32> = HashMap::new();
    let mut distinct = HashSet::new();
    let mut events = js.client().events();
    let mut moved_at: Option<tokio::time::Instant> = None;
    let mut lame = false;
    let mut publisher = Some(publisher);
    let mut total = None;
    within(120, "every message", async {
        while total.is_none_or(|t| (distinct.len() as u64) < t) {
            while let Ok(e) = events.try_recv() {
                if lame && matches!(e, nats_client::Event::Reconnected { .. }) {
                    moved_at.get_or_insert_with(tokio::time::Instant::now);
                }
            }
            // Two seconds after the move the overlap is over: stop publishing.
            if moved_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2))
                && let Some(p) = publisher.take()
            {
                stop_tx.send(true).unwrap();
                total = Some(p.await.unwrap());
            }
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
            let m = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => {
                    eprintln!("consumer: {e}");
                    continue;
                }
                Ok(None) => panic!("the message stream ended"),
                Err(_) => {
                    let info = admin.consumer_info("LDM", "c").await;
                    eprintln!(
                        "quiet for 5 s at {} distinct; {:?}",
                        distinct.len(),
                        info.map(|i| (i.num_pending, i.num_ack_pending, i.num_waiting))
                    );
                    continue;
                }
            };
            let info = m.info().unwrap();
            *seen
                .entry((info.stream_sequence, info.delivered))
                .or_default() += 1;
            distinct.insert(info.stream_sequence);
            m.ack().await.unwrap();
            if distinct.len() == 3000 && !lame {
                lame = true;
                cluster.lame_duck(0);
            }
        }
    })
    .await;
    let copies: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{} deliveries of {} messages; {copies} identical copies",
        seen.values().sum::<u32>(),
        distinct.len()
    );
    assert_ne!(
        js.client().server_info().server_name,
        "n1",
        "the client left the lame-duck node"
    );
    assert_eq!(copies, 0);
}
