//! Recovery when a consumer's leader dies while the consumer's own connection stays up: the
//! new leader knows nothing of the pending pull, so without help the consumer is blind until
//! two idle heartbeats are missed (30 s with the defaults). The consume loop pulls afresh on
//! the `LEADER_ELECTED` advisory instead. Measured here: the longest time from a message's
//! publish ack to its delivery across the kill, with the default heartbeat of 15 s.
//!
//! On nats-server 2.15.1 in this scenario the new leader also knows the pending pull (the
//! leader replicates pending requests) and answers it with `409 Leadership Change`, which
//! makes the consumer pull again by itself: both runs measure the election time (about 5 s).
//! The advisory covers pulls the new leader did not learn of.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{context, create_r3_stream, within};
use futures::StreamExt;
use jetstream::{ConsumeOptions, ConsumerConfig, PublishOptions};
use nats_tests::Cluster;
use tokio::task::spawn_blocking;
use tokio::time::Instant;

/// Kills the consumer's leader while messages flow; returns the worst publish-ack-to-delivery
/// time. Every message published is delivered.
async fn blind_time(repull_on_leader_change: bool) -> Duration {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let admin = context(&cluster.urls().join(",")).await;
    create_r3_stream(&admin, "LC", "lc.>").await;
    let info = admin
        .create_consumer(
            "LC",
            ConsumerConfig {
                ack_wait: Duration::from_secs(10),
                ..ConsumerConfig::durable("lc")
            },
        )
        .await
        .unwrap()
        .cached_info()
        .clone();
    let leader = info
        .cluster
        .and_then(|c| c.leader)
        .expect("consumer leader");
    let victim: usize = leader.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    // The consumer and the publisher stay on a node that survives.
    let url = cluster.node((victim + 1) % 3).url();
    let js = context(&url).await;
    let publisher_js = context(&url).await;
    let consumer = js.get_consumer("LC", "lc").await.unwrap();
    let mut messages = consumer
        .consume(ConsumeOptions {
            repull_on_leader_change,
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();

    let acked: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let publisher = {
        let acked = acked.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            while !*stop_rx.borrow() {
                let opts = PublishOptions::new()
                    .msg_id(format!("m{i}"))
                    .retry_attempts(20)
                    .retry_wait(Duration::from_millis(250))
                    .timeout(Duration::from_secs(2));
                match publisher_js
                    .publish_with("lc.data", i.to_string(), &opts)
                    .await
                {
                    Ok(_) => {
                        acked.lock().unwrap().insert(i, Instant::now());
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => eprintln!("publish {i}: {e}; again"),
                }
            }
            i
        })
    };

    let mut received: HashMap<u64, Instant> = HashMap::new();
    let mut killer = None;
    let mut cluster = Some(cluster);
    let mut killed_at: Option<Instant> = None;
    let mut publisher = Some(publisher);
    let mut published = None;
    within(120, "every message delivered", async {
        loop {
            if let Some(total) = published
                && (0..total).all(|i| received.contains_key(&i))
            {
                return;
            }
            let item = tokio::time::timeout(Duration::from_millis(200), messages.next()).await;
            match item {
                Ok(Some(Ok(m))) => {
                    let n: u64 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                    received.entry(n).or_insert_with(Instant::now);
                    let _ = m.ack().await;
                }
                Ok(Some(Err(e))) => eprintln!("consumer: {e}"),
                Ok(None) => panic!("the message stream ended"),
                Err(_) => {}
            }
            if received.len() == 50 && killer.is_none() {
                let mut c = cluster.take().unwrap();
                killed_at = Some(Instant::now());
                killer = Some(spawn_blocking(move || {
                    c.kill_node(victim);
                    c
                }));
            }
            // Publish for 10 s after the kill, then stop and wait for the rest.
            if killed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(10))
                && let Some(p) = publisher.take()
            {
                stop_tx.send(true).unwrap();
                published = Some(p.await.unwrap());
            }
        }
    })
    .await;
    let cluster = killer.unwrap().await.unwrap();
    let acked = acked.lock().unwrap();
    let worst = acked
        .iter()
        .map(|(i, at)| received[i].saturating_duration_since(*at))
        .max()
        .unwrap();
    eprintln!(
        "repull_on_leader_change={repull_on_leader_change}: {} messages, worst ack-to-delivery {worst:?}",
        acked.len()
    );
    drop(cluster);
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_soon_after_its_leader_dies() {
    let worst = blind_time(true).await;
    // Without the re-pull this is up to 2 x idle_heartbeat (30 s); the advisory comes a few
    // seconds after the kill. The bound is loose for loaded machines.
    assert!(worst < Duration::from_secs(15), "blind for {worst:?}");
}

/// The figure without the re-pull, for comparison (about 2 x idle_heartbeat): run with
/// `cargo test -p jetstream --test leader_change -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for comparison, not a check"]
async fn blind_time_without_the_repull() {
    let worst = blind_time(false).await;
    eprintln!("without the re-pull: blind for {worst:?}");
}

/// The advisory makes the consume loop pull afresh: a second pull request waits on the
/// consumer right after it (the first one, with a 30 s expiry, is still open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_elected_advisory_makes_the_consumer_pull_again() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let js = context(&cluster.urls().join(",")).await;
    create_r3_stream(&js, "ADV", "adv.>").await;
    let consumer = js
        .create_consumer("ADV", ConsumerConfig::durable("c"))
        .await
        .unwrap();
    let waiting = |n: u64| {
        let js = js.clone();
        async move {
            within(10, "pull requests waiting", async {
                while js.consumer_info("ADV", "c").await.unwrap().num_waiting != n {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
        }
    };
    let mut messages = consumer.messages().await.unwrap();
    waiting(1).await;
    // What the new leader announces (the payload does not matter to the consumer).
    js.client()
        .publish("$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.ADV.c", "{}")
        .await
        .unwrap();
    // The stream of messages runs only while polled.
    let poll = tokio::time::timeout(Duration::from_millis(500), messages.next()).await;
    assert!(poll.is_err(), "no message was published");
    waiting(2).await;
    drop(cluster);
}
