//! Pull consumers: fetch (batch, expiry, no_wait, max bytes), the continuous message stream
//! with idle heartbeats, missed-heartbeat reports, `409 Consumer Deleted`, request-limit
//! refusals, and re-pulling after the server comes back.

mod common;

use std::time::{Duration, Instant};

use common::{memory_stream, next_new, setup, unique, within};
use futures::StreamExt;
use jetstream::{ConsumeOptions, ConsumerConfig, FetchOptions, JetStreamError, StorageType};
use tokio::task::spawn_blocking;

#[tokio::test]
async fn fetch_batches_and_expiry() {
    let (_server, js) = setup().await;
    let name = unique("FE");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for i in 0..5 {
        js.publish(&format!("{p}.a"), format!("{i}")).await.unwrap();
    }
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("f"))
        .await
        .unwrap();
    let first = consumer.fetch(3, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 3);
    for m in &first {
        m.ack().await.unwrap();
    }
    // Only two left: the fetch returns them when the request expires.
    let started = Instant::now();
    let rest = consumer
        .fetch(10, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "waited for the expiry"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    for m in &rest {
        m.double_ack().await.unwrap();
    }
    // Nothing left: an empty batch after the expiry, not an error.
    let started = Instant::now();
    let none = consumer
        .fetch(10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
    // no_wait: an empty batch at once.
    let started = Instant::now();
    assert!(consumer.fetch(10, Duration::ZERO).await.unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn fetch_with_max_bytes_and_heartbeats() {
    let (_server, js) = setup().await;
    let name = unique("FB");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for _ in 0..10 {
        js.publish(&format!("{p}.a"), vec![b'x'; 100])
            .await
            .unwrap();
    }
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("fb"))
        .await
        .unwrap();
    let some = consumer
        .fetch_with(&FetchOptions {
            batch: 10,
            expires: Duration::from_secs(1),
            max_bytes: 350,
            ..FetchOptions::default()
        })
        .await
        .unwrap();
    assert!(
        !some.is_empty() && some.len() < 10,
        "max_bytes cut the batch: {}",
        some.len()
    );
    // Heartbeats keep an idle fetch alive until its expiry. (Two missed heartbeats fail the
    // fetch: 100 ms ones failed it on a loaded machine, so they are 500 ms here.)
    let empty = stream.create_consumer(ConsumerConfig {
        filter_subject: format!("{p}.none"),
        ..ConsumerConfig::durable("idle")
    });
    let empty = empty.await.unwrap();
    let started = Instant::now();
    let got = empty
        .fetch_with(&FetchOptions {
            batch: 5,
            expires: Duration::from_secs(2),
            idle_heartbeat: Duration::from_millis(500),
            ..FetchOptions::default()
        })
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1900));
}

#[tokio::test]
async fn fetch_from_a_missing_consumer_fails() {
    let (_server, js) = setup().await;
    let name = unique("FM");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("gone"))
        .await
        .unwrap();
    stream.delete_consumer("gone").await.unwrap();
    let err = consumer
        .fetch(1, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JetStreamError::PullStatus { code: 503, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn messages_stream_tops_up_and_acks() {
    let (_server, js) = setup().await;
    let name = unique("MS");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("m"))
        .await
        .unwrap();
    let total = 1000;
    let publisher = {
        let js = js.clone();
        let subject = format!("{p}.a");
        tokio::spawn(async move {
            for i in 0..total {
                drop(js.publish_async(&subject, format!("{i}")).await.unwrap());
            }
        })
    };
    let mut messages = consumer
        .consume(ConsumeOptions {
            max_messages: 64,
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    let mut seen = 0;
    within(20, "consume 1000", async {
        while seen < total {
            let m = messages.next().await.unwrap().unwrap();
            assert_eq!(m.payload, format!("{seen}").as_bytes());
            m.ack().await.unwrap();
            seen += 1;
        }
    })
    .await;
    publisher.await.unwrap();
    js.client().flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = consumer.clone();
    let info = c.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 0);
}

#[tokio::test]
async fn idle_stream_with_short_heartbeats_reports_nothing() {
    let (_server, js) = setup().await;
    let name = unique("HB");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("hb"))
        .await
        .unwrap();
    let mut messages = consumer
        .consume(ConsumeOptions {
            // Short, but not so short that a loaded machine misses two in a row.
            expires: Duration::from_secs(1),
            idle_heartbeat: Duration::from_millis(300),
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    // Several expiries and re-pulls go by without a report.
    let quiet = tokio::time::timeout(Duration::from_millis(2500), messages.next()).await;
    assert!(
        quiet.is_err(),
        "unexpected item: {:?}",
        quiet.map(|i| i.map(|r| r.map(|m| m.subject.clone())))
    );
    js.publish(&format!("{}.a", name.to_lowercase()), "late")
        .await
        .unwrap();
    let m = within(5, "message after idling", messages.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_heartbeats_are_reported_and_pulling_resumes_after_restart() {
    let (server, js) = setup().await;
    let name = unique("MISS");
    let stream = js
        .create_stream(jetstream::StreamConfig {
            storage: StorageType::File,
            ..memory_stream(&name)
        })
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("miss"))
        .await
        .unwrap();
    let mut messages = consumer
        .consume(ConsumeOptions {
            expires: Duration::from_secs(2),
            idle_heartbeat: Duration::from_millis(200),
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    js.publish(&format!("{}.a", name.to_lowercase()), "before")
        .await
        .unwrap();
    let m = within(5, "first", messages.next()).await.unwrap().unwrap();
    m.double_ack().await.unwrap();

    let mut server = spawn_blocking(move || {
        let mut s = server;
        s.stop();
        s
    })
    .await
    .unwrap();
    let item = within(5, "heartbeat report", messages.next())
        .await
        .unwrap();
    assert!(
        matches!(item, Err(JetStreamError::HeartbeatMissed { ref consumer, interval, .. })
            if consumer == "miss" && interval == Duration::from_millis(200)),
        "{:?}",
        item.map(|m| m.subject.clone())
    );
    server = spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    // After the reconnect a fresh pull goes out: a new message arrives (heartbeat reports
    // from the outage may come first).
    let publisher = js.clone();
    let subject = format!("{}.a", name.to_lowercase());
    within(20, "publish after restart", async {
        loop {
            match publisher.publish(&subject, "after").await {
                Ok(_) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    // A restarted server may deliver "before" again (at-least-once).
    let m = within(
        20,
        "message after restart",
        next_new(&mut messages, b"before"),
    )
    .await;
    assert_eq!(&m.payload[..], b"after");
    drop(server);
}

#[tokio::test]
async fn deleting_the_consumer_ends_the_stream() {
    let (_server, js) = setup().await;
    let name = unique("DELC");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig::durable("doomed"))
        .await
        .unwrap();
    let mut messages = consumer
        .consume(ConsumeOptions {
            expires: Duration::from_secs(5),
            idle_heartbeat: Duration::from_secs(1),
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    // Let the pull request reach the consumer before deleting it.
    js.client().flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.delete_consumer("doomed").await.unwrap();
    let item = within(5, "deleted report", messages.next()).await.unwrap();
    assert!(
        matches!(item, Err(JetStreamError::ConsumerDeleted { ref consumer, .. }) if consumer == "doomed"),
        "{:?}",
        item.map(|m| m.subject.clone())
    );
    assert!(
        messages.next().await.is_none(),
        "the stream ends after the consumer is deleted"
    );
}

#[tokio::test]
async fn pull_limit_refusals_are_reported() {
    let (_server, js) = setup().await;
    let name = unique("MW");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig {
            max_request_batch: 2,
            ..ConsumerConfig::durable("mw")
        })
        .await
        .unwrap();
    let mut messages = consumer
        .consume(ConsumeOptions {
            max_messages: 10,
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    let item = within(5, "refusal", messages.next()).await.unwrap();
    assert!(
        matches!(item, Err(JetStreamError::PullStatus { code: 409, ref description, .. })
            if description.contains("MaxRequestBatch")),
        "{:?}",
        item.map(|m| m.subject.clone())
    );
    let err = consumer
        .fetch(5, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JetStreamError::PullStatus { code: 409, .. }),
        "{err:?}"
    );
}
