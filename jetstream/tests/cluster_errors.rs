//! Error codes that need a cluster: 10134 (consumer replicas on an Interest stream) and
//! 10119 (an R1 consumer whose server is down).

mod common;

use std::time::Duration;

use common::within;
use jetstream::{ConsumerConfig, Context, ErrorCode, RetentionPolicy, StreamConfig};
use nats_tests::Cluster;
use tokio::task::spawn_blocking;

/// Retries `create` until the cluster has a meta leader and answers.
async fn create_stream(js: &Context, config: StreamConfig) {
    within(30, "create stream", async {
        loop {
            match js.create_stream(config.clone()).await {
                Ok(_) => return,
                Err(e) => {
                    eprintln!("create stream {}: {e}; again", config.name);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_replicas_and_offline_consumers() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let client = nats_client::ConnectOptions::new()
        .connect(&cluster.urls())
        .await
        .unwrap();
    let js = jetstream::new(client).with_timeout(Duration::from_secs(5));

    // 10134: a consumer of an R3 Interest stream must be R3 too.
    create_stream(
        &js,
        StreamConfig {
            retention: RetentionPolicy::Interest,
            num_replicas: 3,
            ..StreamConfig::new("INTEREST", ["interest.>"])
        },
    )
    .await;
    let e = js
        .create_consumer(
            "INTEREST",
            ConsumerConfig {
                num_replicas: 1,
                ..ConsumerConfig::durable("r1")
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.is_api(ErrorCode::CONSUMER_REPLICAS_SHOULD_MATCH_STREAM),
        "{e}"
    );

    // 10119: an R1 consumer (allowed on a Limits stream) is offline while its server is down.
    create_stream(
        &js,
        StreamConfig {
            num_replicas: 3,
            ..StreamConfig::new("LIMITS", ["limits.>"])
        },
    )
    .await;
    let consumer = js
        .create_consumer(
            "LIMITS",
            ConsumerConfig {
                num_replicas: 1,
                ..ConsumerConfig::durable("r1")
            },
        )
        .await
        .unwrap();
    let host = consumer
        .cached_info()
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the consumer's server");
    let victim: usize = host.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    let cluster = spawn_blocking(move || {
        let mut c = cluster;
        c.stop_node(victim);
        c
    })
    .await
    .unwrap();
    let seen = within(60, "consumer reported offline", async {
        loop {
            match js.consumer_info("LIMITS", "r1").await {
                Err(e) if e.is_api(ErrorCode::CONSUMER_OFFLINE) => return e,
                other => {
                    eprintln!("consumer info while {host} is down: {other:?}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
    .await;
    assert_eq!(seen.api_error().unwrap().code, 500);
    drop(cluster);
}
