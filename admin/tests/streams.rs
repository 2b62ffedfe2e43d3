//! The stream and consumer report: counts from the leaders' views, ack pending and
//! redeliveries, and replica health when a follower goes away.

mod common;

use std::time::Duration;

use admin::report::{self, StreamsReport};
use common::{app_client, sys_client};
use jetstream::{ConsumerConfig, StreamConfig};
use nats_tests::{APP_ACCOUNT, Cluster};

const WITHIN: Duration = Duration::from_secs(45);

/// Polls the report until `done` holds, returning the last one either way.
async fn report_until(
    sys: &admin::SysClient,
    done: impl Fn(&StreamsReport) -> bool,
) -> (bool, StreamsReport) {
    let end = tokio::time::Instant::now() + WITHIN;
    loop {
        let r = report::streams(sys, None).await.unwrap();
        if done(&r) {
            return (true, r);
        }
        if tokio::time::Instant::now() >= end {
            return (false, r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_and_consumers_with_their_replica_health() {
    let mut cluster = Cluster::start(3);
    let sys = sys_client(&cluster, 0).await;
    let js = jetstream::new(app_client(&cluster, 0, "js").await);
    let stream = js
        .create_stream(StreamConfig {
            num_replicas: 3,
            ..StreamConfig::new("ORDERS", ["orders.>"])
        })
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig {
            ack_wait: Duration::from_millis(500),
            ..ConsumerConfig::durable("billing")
        })
        .await
        .unwrap();
    for i in 0..10 {
        js.publish(&format!("orders.{i}"), "order").await.unwrap();
    }
    // Nothing is acknowledged: pull until ack_wait has run out and a message comes again.
    let end = tokio::time::Instant::now() + WITHIN;
    let mut redelivered = false;
    while !redelivered && tokio::time::Instant::now() < end {
        let batch = consumer.fetch(3, Duration::from_secs(1)).await.unwrap();
        redelivered = batch
            .iter()
            .any(|m| m.info().map(|i| i.delivered > 1).unwrap_or(false));
    }
    assert!(redelivered, "no redelivery after ack_wait");

    let (ok, r) = report_until(&sys, |r| {
        r.consumers.iter().any(|c| c.redelivered > 0)
            && r.streams.iter().all(|s| s.lagging().is_empty())
    })
    .await;
    assert!(ok, "{r:#?}");
    assert!(r.missing.is_empty() && r.failed.is_empty());
    assert_eq!(r.streams.len(), 1, "{r:#?}");
    let s = &r.streams[0];
    assert_eq!(
        (s.account.as_str(), s.name.as_str()),
        (APP_ACCOUNT, "ORDERS")
    );
    assert_eq!((s.messages, s.consumers, s.replicas), (10, 1, 3));
    assert!(s.bytes > 0 && s.last_activity.is_some());
    assert_eq!(s.subjects, ["orders.>"]);
    let leader = s.leader.clone().expect("a stream leader");
    assert_eq!(s.followers.len(), 2);
    assert!(s.followers.iter().all(|f| f.name != leader));

    assert_eq!(r.consumers.len(), 1);
    let c = &r.consumers[0];
    assert_eq!((c.stream.as_str(), c.name.as_str()), ("ORDERS", "billing"));
    assert!(c.ack_pending >= 3, "{c:?}");
    assert!(c.redelivered >= 1, "{c:?}");
    assert!(c.last_activity.is_some() && c.leader.is_some());
    assert_eq!(c.num_pending + c.ack_pending, 10, "{c:?}");

    // Stop a follower (not the node the admin client talks through): it is reported
    // missing, and the leader lists it as not current.
    let follower = s
        .followers
        .iter()
        .map(|f| f.name.clone())
        .find(|f| f != cluster.node(0).name())
        .expect("a follower off node 0");
    let index = (0..3)
        .find(|&i| cluster.node(i).name() == follower)
        .unwrap();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_node(index);
        cluster
    })
    .await
    .unwrap();
    let (ok, r) = report_until(&sys, |r| {
        r.streams
            .first()
            .is_some_and(|s| s.leader.is_some() && s.lagging().iter().any(|f| f.name == follower))
    })
    .await;
    assert!(ok, "{follower} never reported lagging: {r:#?}");
    assert_eq!(r.missing, [follower]);
    drop(cluster);
}
