//! Consumer controls: reset to a sequence (2.14), pause / resume (2.11).

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique};
use jetstream::{ConsumerConfig, DeliverPolicy, ErrorCode};

#[tokio::test]
async fn reset_empties_one_consumers_backlog_and_replays_from_a_sequence() {
    let (_server, js) = setup().await;
    let name = unique("RESET");
    let subject = format!("{}.a", name.to_lowercase());
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let q1 = stream
        .create_consumer(ConsumerConfig::durable("q1"))
        .await
        .unwrap();
    stream
        .create_consumer(ConsumerConfig::durable("q2"))
        .await
        .unwrap();
    for i in 1..=5 {
        js.publish(&subject, format!("m{i}")).await.unwrap();
    }
    // Two delivered, one acked.
    let got = q1.fetch(2, Duration::from_secs(2)).await.unwrap();
    got[0].double_ack().await.unwrap();

    // Back to the ack floor: m2 (delivered, unacked) comes again.
    let r = q1.reset(None).await.unwrap();
    assert_eq!(r.reset_seq, 2);
    let again = q1.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(&again[0].payload[..], b"m2");

    // To a sequence: delivery goes on from there.
    let r = q1.reset(Some(4)).await.unwrap();
    assert_eq!(r.reset_seq, 4);
    let from4 = q1.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(&from4[0].payload[..], b"m4");

    // Past the end: the backlog is empty (queue.purge), the other consumer keeps its own.
    let r = q1.reset(Some(6)).await.unwrap();
    assert_eq!((r.info.num_pending, r.info.num_ack_pending), (0, 0));
    assert_eq!(r.info.name, "q1");
    assert!(
        q1.fetch(1, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(js.consumer_info(&name, "q2").await.unwrap().num_pending, 5);
    js.publish(&subject, "m6").await.unwrap();
    let next = q1.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(&next[0].payload[..], b"m6");
}

#[tokio::test]
async fn reset_to_a_sequence_is_refused_for_deliver_new() {
    let (_server, js) = setup().await;
    let name = unique("RESETNEW");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let c = stream
        .create_consumer(ConsumerConfig {
            deliver_policy: DeliverPolicy::New,
            ..ConsumerConfig::durable("n")
        })
        .await
        .unwrap();
    let e = c.reset(Some(1)).await.unwrap_err();
    assert!(e.is_api(ErrorCode::CONSUMER_INVALID_RESET), "{e}");
}

#[tokio::test]
async fn pause_stops_delivery_until_resume() {
    let (_server, js) = setup().await;
    let name = unique("PAUSE");
    let subject = format!("{}.a", name.to_lowercase());
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let mut c = stream
        .create_consumer(ConsumerConfig::durable("p"))
        .await
        .unwrap();
    let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let p = c.pause(until).await.unwrap();
    assert!(p.paused);
    assert!(p.pause_remaining > Duration::from_secs(3500));
    let info = c.info().await.unwrap();
    assert!(info.paused);
    assert!(info.config.pause_until.is_some());

    js.publish(&subject, "x").await.unwrap();
    assert!(
        c.fetch(1, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );

    let r = c.resume().await.unwrap();
    assert!(!r.paused);
    let got = c.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(&got[0].payload[..], b"x");
    assert!(!c.info().await.unwrap().paused);
}
