//! The other priority policies: `overflow` (pulls that only take over when the consumer is
//! behind) and `prioritized` (lower priority numbers are served first).

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique, within};
use jetstream::{ConsumerConfig, FetchOptions, PriorityGroup, PriorityPolicy};

fn grouped(policy: PriorityPolicy) -> ConsumerConfig {
    ConsumerConfig {
        priority_groups: vec!["g".into()],
        priority_policy: policy,
        ..ConsumerConfig::durable("c")
    }
}

fn pull(group: PriorityGroup, expires: Duration) -> FetchOptions {
    FetchOptions {
        batch: 1,
        expires,
        priority_group: Some(group),
        ..FetchOptions::default()
    }
}

#[tokio::test]
async fn an_overflow_pull_is_served_only_while_the_consumer_is_behind() {
    let (_server, js) = setup().await;
    let name = unique("OVERFLOW");
    let subject = format!("{}.a", name.to_lowercase());
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let c = stream
        .create_consumer(grouped(PriorityPolicy::Overflow))
        .await
        .unwrap();
    for i in 0..2 {
        js.publish(&subject, format!("m{i}")).await.unwrap();
    }
    let standby = pull(
        PriorityGroup::new("g").min_pending(5),
        Duration::from_millis(500),
    );
    assert!(c.fetch_with(&standby).await.unwrap().is_empty());
    for i in 2..6 {
        js.publish(&subject, format!("m{i}")).await.unwrap();
    }
    // Six pending now: the standby takes over.
    let got = c.fetch_with(&standby).await.unwrap();
    assert_eq!(&got[0].payload[..], b"m0");
    got[0].double_ack().await.unwrap();
    // A pull without thresholds is always served.
    let regular = pull(PriorityGroup::new("g"), Duration::from_secs(2));
    assert_eq!(&c.fetch_with(&regular).await.unwrap()[0].payload[..], b"m1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lower_priority_number_is_served_first() {
    let (_server, js) = setup().await;
    let name = unique("PRIO");
    let subject = format!("{}.a", name.to_lowercase());
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let c = stream
        .create_consumer(grouped(PriorityPolicy::Prioritized))
        .await
        .unwrap();
    let expires = Duration::from_secs(3);
    let low = {
        let c = c.clone();
        tokio::spawn(async move {
            c.fetch_with(&pull(PriorityGroup::new("g").priority(5), expires))
                .await
        })
    };
    within(5, "first pull waiting", async {
        while js.consumer_info(&name, "c").await.unwrap().num_waiting < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let high = {
        let c = c.clone();
        tokio::spawn(async move {
            c.fetch_with(&pull(PriorityGroup::new("g").priority(0), expires))
                .await
        })
    };
    within(5, "both pulls waiting", async {
        while js.consumer_info(&name, "c").await.unwrap().num_waiting < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    js.publish(&subject, "only").await.unwrap();
    let high = high.await.unwrap().unwrap();
    assert_eq!(high.len(), 1, "priority 0 got the message");
    assert!(low.await.unwrap().unwrap().is_empty(), "priority 5 waited");
}

#[tokio::test]
async fn a_priority_out_of_range_is_refused_by_the_server() {
    let (_server, js) = setup().await;
    let name = unique("PRIOBAD");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let c = stream
        .create_consumer(grouped(PriorityPolicy::Prioritized))
        .await
        .unwrap();
    let e = c
        .fetch_with(&pull(
            PriorityGroup::new("g").priority(10),
            Duration::from_secs(1),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(e, jetstream::JetStreamError::PullStatus { code: 400, .. }),
        "{e}"
    );
}
