//! Chaos on a 3-node cluster: 10k messages published and consumed with acks on an R3
//! stream lose nothing while the node the client is connected to restarts.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::within;
use futures::StreamExt;
use jetstream::{ConsumeOptions, ConsumerConfig, JetStreamError, PublishOptions, StreamConfig};
use nats_tests::Cluster;
use tokio::task::spawn_blocking;

const TOTAL: usize = 10_000;

/// Publishes message `i` until the stream has it; the msg id makes every resend safe.
async fn publish_surely(js: &jetstream::Context, i: usize) {
    let opts = PublishOptions::new()
        .msg_id(format!("m-{i}"))
        .retry_attempts(5)
        .retry_wait(Duration::from_millis(250))
        .timeout(Duration::from_secs(2));
    loop {
        match js.publish_with("chaos.data", i.to_string(), &opts).await {
            Ok(_) => return,
            Err(e) => {
                eprintln!("publish {i}: {e}; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_stream_loses_nothing_while_a_node_restarts() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let client = nats_client::ConnectOptions::new()
        .connect(&cluster.urls())
        .await
        .unwrap();
    let js = jetstream::new(client.clone()).with_timeout(Duration::from_secs(5));
    let stream = within(30, "create R3 stream", async {
        loop {
            match js
                .create_stream(StreamConfig {
                    num_replicas: 3,
                    ..StreamConfig::new("CHAOS", ["chaos.>"])
                })
                .await
            {
                Ok(s) => return s,
                Err(e) => {
                    eprintln!("create stream: {e}; again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
    .await;
    let consumer = stream
        .create_consumer(ConsumerConfig {
            ack_wait: Duration::from_secs(5),
            max_ack_pending: 2000,
            ..ConsumerConfig::durable("chaos")
        })
        .await
        .unwrap();

    // Publishing goes on across the outage: the first part before the node goes down, the
    // rest from the moment the client has lost its connection.
    let (down_tx, mut down_rx) = tokio::sync::watch::channel(false);
    let mut events = client.events();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if matches!(e, nats_client::Event::Disconnected { .. }) {
                let _ = down_tx.send(true);
            }
        }
    });
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            let opts = |i: usize| PublishOptions::new().msg_id(format!("m-{i}"));
            let mut acks = Vec::with_capacity(256);
            let mut i = 0;
            while i < TOTAL {
                if i == 3072 {
                    down_rx.wait_for(|down| *down).await.unwrap();
                }
                let end = (i + 256).min(TOTAL);
                for n in i..end {
                    acks.push((
                        n,
                        js.publish_async_with("chaos.data", n.to_string(), &opts(n))
                            .await,
                    ));
                }
                for (n, ack) in acks.drain(..) {
                    let ok = match ack {
                        Ok(fut) => fut.await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        publish_surely(&js, n).await;
                    }
                }
                i = end;
            }
        })
    };

    let mut messages = consumer
        .consume(ConsumeOptions {
            max_messages: 500,
            expires: Duration::from_secs(5),
            idle_heartbeat: Duration::from_secs(1),
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    let victim = {
        let name = client.server_info().server_name.clone();
        name.trim_start_matches('n').parse::<usize>().unwrap() - 1
    };
    let mut seen = HashSet::new();
    let mut restarter = None;
    let mut cluster = Some(cluster);
    let mut reports = 0;
    within(180, "consume 10k", async {
        while seen.len() < TOTAL {
            match messages.next().await {
                Some(Ok(m)) => {
                    let n: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                    seen.insert(n);
                    let _ = m.ack().await;
                }
                Some(Err(e)) => {
                    reports += 1;
                    assert!(
                        matches!(
                            e,
                            JetStreamError::HeartbeatMissed { .. }
                                | JetStreamError::PullStatus { .. }
                        ),
                        "unexpected {e:?}"
                    );
                }
                None => panic!("the message stream ended at {} messages", seen.len()),
            }
            if seen.len() == 2000 && restarter.is_none() {
                let mut c = cluster.take().unwrap();
                restarter = Some(spawn_blocking(move || {
                    c.restart_node(victim);
                    c
                }));
            }
        }
    })
    .await;
    publisher.await.unwrap();
    let cluster = restarter.unwrap().await.unwrap();
    eprintln!("consumed {TOTAL} distinct messages; {reports} transient reports");
    let mut stream = stream;
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.state.messages, TOTAL as u64,
        "dedup kept one copy of each"
    );
    assert!(
        client.statistics().reconnects >= 1,
        "the client moved to another node"
    );
    drop(cluster);
}
