//! Message acknowledgements against a real server: ack and double ack, nak (now and with a
//! delay), in-progress, term, ack-wait redelivery, and the metadata in the reply subject.

mod common;

use std::time::{Duration, Instant};

use common::{memory_stream, setup, unique};
use jetstream::{ConsumerConfig, JetStreamError, JsMessage};

async fn one(consumer: &jetstream::Consumer, wait: Duration) -> Option<JsMessage> {
    consumer.fetch(1, wait).await.unwrap().into_iter().next()
}

#[tokio::test]
async fn metadata_from_the_reply_subject() {
    let (_server, js) = setup().await;
    let name = unique("MD");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for i in 0..3 {
        js.publish(&format!("{p}.a"), format!("{i}")).await.unwrap();
    }
    let consumer = stream
        .create_consumer(ConsumerConfig {
            ack_wait: Duration::from_millis(300),
            ..ConsumerConfig::durable("md")
        })
        .await
        .unwrap();
    let m = one(&consumer, Duration::from_secs(1)).await.unwrap();
    let info = m.info().unwrap();
    assert_eq!((info.stream, info.consumer), (name.as_str(), "md"));
    assert_eq!(
        (info.delivered, info.stream_sequence, info.consumer_sequence),
        (1, 1, 1)
    );
    assert_eq!(info.pending, 2);
    let published = info.published().unwrap();
    assert!(
        (time::OffsetDateTime::now_utc() - published)
            .whole_seconds()
            .abs()
            < 60
    );
    // Not acked: redelivered after ack_wait with a higher delivery count.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = one(&consumer, Duration::from_secs(1)).await.unwrap();
    let info = again.info().unwrap();
    assert_eq!((info.stream_sequence, info.delivered), (1, 2));
    assert!(info.consumer_sequence > 1);
    again.ack().await.unwrap();
}

#[tokio::test]
async fn double_ack_confirms_and_ack_stops_redelivery() {
    let (_server, js) = setup().await;
    let name = unique("DA");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    js.publish(&format!("{}.a", name.to_lowercase()), "x")
        .await
        .unwrap();
    let mut consumer = stream
        .create_consumer(ConsumerConfig {
            ack_wait: Duration::from_millis(200),
            ..ConsumerConfig::durable("da")
        })
        .await
        .unwrap();
    let m = one(&consumer, Duration::from_secs(1)).await.unwrap();
    m.double_ack().await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(one(&consumer, Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn nak_redelivers_now_and_nak_with_delay_waits() {
    let (_server, js) = setup().await;
    let name = unique("NAK");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    js.publish(&format!("{}.a", name.to_lowercase()), "x")
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("nak"))
        .await
        .unwrap();

    let m = one(&consumer, Duration::from_secs(1)).await.unwrap();
    m.nak().await.unwrap();
    let m = one(&consumer, Duration::from_secs(1))
        .await
        .expect("redelivered at once");
    assert_eq!(m.info().unwrap().delivered, 2);

    let delay = Duration::from_millis(800);
    let nak_at = Instant::now();
    m.nak_with_delay(delay).await.unwrap();
    // Not before the delay...
    assert!(
        one(&consumer, Duration::from_millis(500)).await.is_none(),
        "redelivered before the nak delay"
    );
    // ...but after it.
    let m = one(&consumer, Duration::from_secs(3))
        .await
        .expect("redelivered after the delay");
    assert!(
        nak_at.elapsed() >= delay,
        "came after {:?}",
        nak_at.elapsed()
    );
    assert_eq!(m.info().unwrap().delivered, 3);
    m.ack().await.unwrap();
}

#[tokio::test]
async fn term_stops_redelivery() {
    let (_server, js) = setup().await;
    let name = unique("TERM");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    js.publish(&format!("{p}.a"), "poison").await.unwrap();
    js.publish(&format!("{p}.a"), "fine").await.unwrap();
    let mut consumer = stream
        .create_consumer(ConsumerConfig {
            ack_wait: Duration::from_millis(200),
            ..ConsumerConfig::durable("term")
        })
        .await
        .unwrap();
    let m = one(&consumer, Duration::from_secs(1)).await.unwrap();
    assert_eq!(&m.payload[..], b"poison");
    m.term_with_reason("cannot parse").await.unwrap();
    let m = one(&consumer, Duration::from_secs(1)).await.unwrap();
    assert_eq!(&m.payload[..], b"fine");
    m.term().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(one(&consumer, Duration::from_millis(300)).await.is_none());
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_redelivered, 0);
}

#[tokio::test]
async fn in_progress_extends_the_ack_wait() {
    let (_server, js) = setup().await;
    let name = unique("WPI");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    js.publish(&format!("{}.a", name.to_lowercase()), "slow")
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig {
            ack_wait: Duration::from_millis(500),
            ..ConsumerConfig::durable("wpi")
        })
        .await
        .unwrap();
    let m = one(&consumer, Duration::from_secs(1)).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        m.in_progress().await.unwrap();
    }
    // A second of work, twice the ack wait, and no redelivery.
    assert!(one(&consumer, Duration::from_millis(200)).await.is_none());
    m.double_ack().await.unwrap();
}

#[tokio::test]
async fn backoff_spaces_redeliveries() {
    let (_server, js) = setup().await;
    let name = unique("BO");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    js.publish(&format!("{}.a", name.to_lowercase()), "x")
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig {
            max_deliver: 3,
            backoff: vec![Duration::from_millis(200), Duration::from_millis(900)],
            ..ConsumerConfig::durable("bo")
        })
        .await
        .unwrap();
    let first = Instant::now();
    let _m = one(&consumer, Duration::from_secs(1)).await.unwrap();
    let _m = one(&consumer, Duration::from_secs(2)).await.unwrap();
    let second = first.elapsed();
    let _m = one(&consumer, Duration::from_secs(3)).await.unwrap();
    let third = first.elapsed();
    assert!(second >= Duration::from_millis(150), "{second:?}");
    assert!(
        third - second >= Duration::from_millis(700),
        "{second:?} then {third:?}"
    );
    // max_deliver 3: no fourth delivery.
    assert!(one(&consumer, Duration::from_millis(1200)).await.is_none());
}

#[tokio::test]
async fn acking_a_core_message_is_an_error() {
    let (_server, js) = setup().await;
    let client = js.client().clone();
    let mut sub = client.subscribe("plain").await.unwrap();
    client
        .publish_with_reply("plain", "reply.here", "x")
        .await
        .unwrap();
    use futures::StreamExt;
    let msg = sub.next().await.unwrap();
    let m = JsMessage::new(msg, client.clone(), Duration::from_secs(1));
    assert!(matches!(
        m.ack().await,
        Err(JetStreamError::NotJetStreamMessage { subject, .. }) if subject == "reply.here"
    ));
    assert!(m.info().is_err());
    // Without a reply subject the error names the message's own subject.
    client.publish("plain", "y").await.unwrap();
    let msg = sub.next().await.unwrap();
    let m = JsMessage::new(msg, client, Duration::from_secs(1));
    assert!(matches!(
        m.ack().await,
        Err(JetStreamError::NotJetStreamMessage { subject, .. }) if subject == "plain"
    ));
}
