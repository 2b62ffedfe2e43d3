//! Publishing with acks: PubAck fields, Nats-Msg-Id dedup, expectation failures, no stream,
//! and the windowed asynchronous publisher.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique};
use jetstream::{ErrorCode, JetStreamError, PublishOptions, StreamConfig};

#[tokio::test]
async fn pub_ack_and_dedup() {
    let (_server, js) = setup().await;
    let name = unique("PUB");
    let p = name.to_lowercase();
    let mut stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let ack = js.publish(&format!("{p}.a"), "one").await.unwrap();
    assert_eq!(
        (ack.stream.as_str(), ack.seq, ack.duplicate),
        (name.as_str(), 1, false)
    );
    assert_eq!(ack.domain, None);

    let opts = PublishOptions::new().msg_id("order-7");
    let first = js
        .publish_with(&format!("{p}.a"), "two", &opts)
        .await
        .unwrap();
    let again = js
        .publish_with(&format!("{p}.a"), "two again", &opts)
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.seq, first.seq);
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
    let stored = stream.get_message(first.seq).await.unwrap();
    assert_eq!(stored.headers.unwrap().get("Nats-Msg-Id"), Some("order-7"));
}

#[tokio::test]
async fn expectations_fail_with_typed_errors() {
    let (_server, js) = setup().await;
    let name = unique("EXP");
    let p = name.to_lowercase();
    js.create_stream(memory_stream(&name)).await.unwrap();
    let a = format!("{p}.a");
    let b = format!("{p}.b");

    // Expected last sequence.
    js.publish_with(&a, "1", &PublishOptions::new().expected_last_sequence(0))
        .await
        .unwrap();
    let err = js
        .publish_with(&a, "x", &PublishOptions::new().expected_last_sequence(5))
        .await
        .unwrap_err();
    assert!(
        err.is_api(ErrorCode::STREAM_WRONG_LAST_SEQUENCE)
            || err.is_api(ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT),
        "{err:?}"
    );
    assert_eq!(err.api_error().unwrap().code, 400);

    // Expected last subject sequence: b has none yet (0), a's last is 1.
    js.publish_with(
        &b,
        "2",
        &PublishOptions::new().expected_last_subject_sequence(0),
    )
    .await
    .unwrap();
    js.publish_with(
        &a,
        "3",
        &PublishOptions::new().expected_last_subject_sequence(1),
    )
    .await
    .unwrap();
    let err = js
        .publish_with(
            &a,
            "x",
            &PublishOptions::new().expected_last_subject_sequence(1),
        )
        .await
        .unwrap_err();
    assert!(
        err.is_api(ErrorCode::STREAM_WRONG_LAST_SEQUENCE)
            || err.is_api(ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT),
        "{err:?}"
    );

    // Expected stream.
    js.publish_with(&a, "4", &PublishOptions::new().expected_stream(&name))
        .await
        .unwrap();
    let err = js
        .publish_with(&a, "x", &PublishOptions::new().expected_stream("OTHER"))
        .await
        .unwrap_err();
    assert!(err.is_api(ErrorCode::STREAM_NOT_MATCH), "{err:?}");

    // Expected last message id.
    js.publish_with(&a, "5", &PublishOptions::new().msg_id("m5"))
        .await
        .unwrap();
    js.publish_with(
        &a,
        "6",
        &PublishOptions::new()
            .expected_last_msg_id("m5")
            .msg_id("m6"),
    )
    .await
    .unwrap();
    let err = js
        .publish_with(&a, "x", &PublishOptions::new().expected_last_msg_id("m5"))
        .await
        .unwrap_err();
    assert!(err.is_api(ErrorCode::STREAM_WRONG_LAST_MSG_ID), "{err:?}");
}

#[tokio::test]
async fn no_stream_is_typed_and_retried() {
    let (_server, js) = setup().await;
    // The attempt count alone: two retries, after 10-20 ms and 20-40 ms (jittered backoff).
    let started = std::time::Instant::now();
    let err = js
        .publish_with(
            "nobody.listens",
            "x",
            &PublishOptions::new()
                .retry_attempts(2)
                .retry_wait(Duration::from_millis(100))
                .retry_for(Duration::ZERO),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, JetStreamError::NoStream { ref subject } if subject == "nobody.listens"),
        "{err:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "two retries with a pause each"
    );
    // The time bound: retried until that long after the first 503.
    let started = std::time::Instant::now();
    let err = js
        .publish_with(
            "nobody.listens",
            "x",
            &PublishOptions::new().retry_for(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, JetStreamError::NoStream { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));

    let err = js
        .publish_async("nobody.listens", "x")
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert!(matches!(err, JetStreamError::NoStream { .. }), "{err:?}");
}

#[tokio::test]
async fn a_stream_created_during_retries_takes_the_message() {
    let (_server, js) = setup().await;
    let name = unique("LATE");
    let subject = format!("{}.a", name.to_lowercase());
    let js2 = js.clone();
    let config = memory_stream(&name);
    let creator = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        js2.create_stream(config).await.unwrap();
    });
    let ack = js
        .publish_with(
            &subject,
            "x",
            &PublishOptions::new()
                .retry_attempts(20)
                .retry_wait(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    assert_eq!(ack.stream, name);
    creator.await.unwrap();
}

#[tokio::test]
async fn async_publisher_keeps_order_and_window() {
    let (_server, js) = setup().await;
    let js = js.with_publish_window(64);
    let name = unique("ASYNC");
    let subject = format!("{}.a", name.to_lowercase());
    let mut stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let mut acks = Vec::new();
    for i in 0..5000u32 {
        acks.push(js.publish_async(&subject, i.to_string()).await.unwrap());
        assert!(js.pending_acks() <= 64);
    }
    for (i, ack) in acks.into_iter().enumerate() {
        let ack = ack.await.unwrap();
        assert_eq!(ack.seq, i as u64 + 1, "acks come back in publish order");
    }
    assert_eq!(js.pending_acks(), 0);
    assert_eq!(stream.info().await.unwrap().state.messages, 5000);
    let m = stream.get_message(4321).await.unwrap();
    assert_eq!(&m.payload[..], b"4320");
}

#[tokio::test]
async fn async_publisher_with_options_and_errors() {
    let (_server, js) = setup().await;
    let name = unique("AOPT");
    let subject = format!("{}.a", name.to_lowercase());
    js.create_stream(StreamConfig {
        max_msgs: 3,
        discard: jetstream::DiscardPolicy::New,
        ..memory_stream(&name)
    })
    .await
    .unwrap();
    let opts = PublishOptions::new().msg_id("same");
    let a = js.publish_async_with(&subject, "1", &opts).await.unwrap();
    let b = js.publish_async_with(&subject, "1", &opts).await.unwrap();
    assert!(!a.await.unwrap().duplicate);
    assert!(b.await.unwrap().duplicate);
    let wrong = js
        .publish_async_with(
            &subject,
            "x",
            &PublishOptions::new().expected_last_sequence(9),
        )
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert!(wrong.api_error().is_some(), "{wrong:?}");
    // A dropped future gives its window slot back.
    for _ in 0..10 {
        drop(js.publish_async(&subject, "dropped").await.unwrap());
    }
    common::within(5, "slots back", async {
        while js.pending_acks() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Stream full with discard new: the server refuses with an API error.
    let err = js.publish(&subject, "overflow").await.unwrap_err();
    assert!(err.api_error().is_some(), "{err:?}");
}

#[tokio::test]
async fn ack_timeout_without_msg_id_is_not_resent() {
    let (_server, js) = setup().await;
    // A plain subscriber (not a stream) that never answers: the ack cannot come.
    let client = js.client().clone();
    let _sink = client.subscribe("silent.sink").await.unwrap();
    client.flush().await.unwrap();
    let err = js
        .publish_with(
            "silent.sink",
            "x",
            &PublishOptions::new().timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, JetStreamError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    let err = js
        .publish_with(
            "silent.sink",
            "x",
            &PublishOptions::new()
                .timeout(Duration::from_millis(200))
                .msg_id("k")
                .retry_attempts(2)
                .retry_for(Duration::ZERO),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, JetStreamError::Timeout { attempts: 3, .. }),
        "{err:?}"
    );
    let err = js
        .publish_async_with(
            "silent.sink",
            "x",
            &PublishOptions::new()
                .timeout(Duration::from_millis(200))
                .msg_id("k")
                .retry_attempts(1)
                .retry_for(Duration::ZERO),
        )
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert!(
        matches!(err, JetStreamError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
}

/// `retry_for` keeps a msg-id publish going past its attempt count until that long after its
/// first failure, for the sync and the async publisher alike.
#[tokio::test]
async fn retries_go_on_for_the_time_bound() {
    let (_server, js) = setup().await;
    let client = js.client().clone();
    let _sink = client.subscribe("silent.bound").await.unwrap();
    client.flush().await.unwrap();
    let opts = PublishOptions::new()
        .timeout(Duration::from_millis(200))
        .msg_id("b")
        .retry_attempts(0)
        .retry_for(Duration::from_millis(700));
    let err = js
        .publish_with("silent.bound", "x", &opts)
        .await
        .unwrap_err();
    // Past the one attempt: the second failure (about 0.2 s after the first) is within the
    // bound.
    assert!(
        matches!(err, JetStreamError::Timeout { attempts, .. } if attempts >= 3),
        "{err:?}"
    );
    let ack = js
        .publish_async_with("silent.bound", "x", &opts)
        .await
        .unwrap();
    let err = ack.await.unwrap_err();
    assert!(
        matches!(err, JetStreamError::Timeout { attempts, .. } if attempts >= 3),
        "{err:?}"
    );
}

#[tokio::test]
async fn async_acks_share_the_clients_one_inbox_and_leave_nothing_behind() {
    let (_server, js) = setup().await;
    let client = js.client().clone();
    let _sink = client.subscribe("silent.shared").await.unwrap();
    client.flush().await.unwrap();
    let js = js.with_publish_window(8);
    let mut acks = Vec::new();
    for i in 0..5 {
        let opts = PublishOptions::new().timeout(Duration::from_millis(300));
        acks.push(
            js.publish_async_with("silent.shared", i.to_string(), &opts)
                .await
                .unwrap(),
        );
    }
    // The acks wait in the client's inbox, the same one `request` uses: no second registry.
    assert_eq!(js.pending_acks(), 5);
    assert_eq!(client.pending_requests(), 5);
    for ack in acks {
        let err = ack.await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(
            matches!(&err, JetStreamError::Timeout { subject, .. } if subject == "silent.shared")
        );
    }
    assert_eq!(js.pending_acks(), 0);
    assert_eq!(client.pending_requests(), 0);
}
