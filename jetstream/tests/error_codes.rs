//! Each typed `ErrorCode` the layers above branch on, provoked on a real server.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique};
use jetstream::{
    ConsumerConfig, DiscardPolicy, ErrorCode, JetStreamError, PublishOptions, RetentionPolicy,
    StreamConfig,
};

fn code(e: &JetStreamError) -> Option<ErrorCode> {
    e.api_error().map(|a| a.err_code)
}

#[tokio::test]
async fn full_stream_with_discard_new_rejects_the_publish() {
    let (_server, js) = setup().await;
    let name = unique("FULL");
    let subject = format!("{}.a", name.to_lowercase());
    js.create_stream(StreamConfig {
        max_msgs: 3,
        discard: DiscardPolicy::New,
        ..memory_stream(&name)
    })
    .await
    .unwrap();
    for i in 0..3 {
        js.publish(&subject, format!("m{i}")).await.unwrap();
    }
    let e = js.publish(&subject, "m3").await.unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::STREAM_STORE_FAILED), "{e}");
    assert!(e.to_string().contains("maximum messages"), "{e}");
}

#[tokio::test]
async fn full_subject_with_discard_new_per_subject_rejects_only_that_subject() {
    let (_server, js) = setup().await;
    let name = unique("PERSUBJ");
    let lower = name.to_lowercase();
    js.create_stream(StreamConfig {
        max_msgs_per_subject: 2,
        discard: DiscardPolicy::New,
        discard_new_per_subject: true,
        ..memory_stream(&name)
    })
    .await
    .unwrap();
    for _ in 0..2 {
        js.publish(&format!("{lower}.a"), "x").await.unwrap();
    }
    let e = js.publish(&format!("{lower}.a"), "x").await.unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::STREAM_STORE_FAILED), "{e}");
    js.publish(&format!("{lower}.b"), "x").await.unwrap();
}

#[tokio::test]
async fn ttl_on_a_stream_without_allow_msg_ttl_is_refused() {
    let (_server, js) = setup().await;
    let name = unique("NOTTL");
    js.create_stream(memory_stream(&name)).await.unwrap();
    let opts = PublishOptions::new().ttl(Duration::from_secs(5)).unwrap();
    let e = js
        .publish_with(&format!("{}.a", name.to_lowercase()), "x", &opts)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::MESSAGE_TTL_DISABLED), "{e}");
}

#[tokio::test]
async fn a_ttl_the_server_cannot_parse_is_refused() {
    let (_server, js) = setup().await;
    let name = unique("BADTTL");
    js.create_stream(StreamConfig {
        allow_msg_ttl: true,
        ..memory_stream(&name)
    })
    .await
    .unwrap();
    // `ttl()` refuses sub-second TTLs before sending; a raw header shows the server would too.
    let opts = PublishOptions::new().header("Nats-TTL", "500ms");
    let e = js
        .publish_with(&format!("{}.a", name.to_lowercase()), "x", &opts)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::MESSAGE_TTL_INVALID), "{e}");
}

#[tokio::test]
async fn max_consumers_reached() {
    let (_server, js) = setup().await;
    let name = unique("MAXC");
    let stream = js
        .create_stream(memory_stream(&name).with_max_consumers(1))
        .await
        .unwrap();
    stream
        .create_consumer(ConsumerConfig::durable("one"))
        .await
        .unwrap();
    let e = stream
        .create_consumer(ConsumerConfig::durable("two"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::MAXIMUM_CONSUMERS_LIMIT), "{e}");
}

#[tokio::test]
async fn overlapping_consumers_on_a_work_queue() {
    let (_server, js) = setup().await;
    let name = unique("WQ");
    let lower = name.to_lowercase();
    let stream = js
        .create_stream(StreamConfig {
            retention: RetentionPolicy::WorkQueue,
            ..memory_stream(&name)
        })
        .await
        .unwrap();
    stream
        .create_consumer(ConsumerConfig {
            filter_subject: format!("{lower}.>"),
            ..ConsumerConfig::durable("all")
        })
        .await
        .unwrap();
    let e = stream
        .create_consumer(ConsumerConfig {
            filter_subject: format!("{lower}.a"),
            ..ConsumerConfig::durable("some")
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::CONSUMER_WQ_NOT_UNIQUE), "{e}");
}

#[tokio::test]
async fn overlapping_filters_of_one_consumer() {
    let (_server, js) = setup().await;
    let name = unique("OVF");
    let lower = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let e = stream
        .create_consumer(ConsumerConfig {
            filter_subjects: vec![format!("{lower}.a.>"), format!("{lower}.a.b")],
            ..ConsumerConfig::durable("c")
        })
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        Some(ErrorCode::CONSUMER_OVERLAPPING_SUBJECT_FILTERS),
        "{e}"
    );
}

#[tokio::test]
async fn two_streams_on_one_subject() {
    let (_server, js) = setup().await;
    let a = unique("OVA");
    js.create_stream(memory_stream(&a)).await.unwrap();
    let e = js
        .create_stream(StreamConfig {
            subjects: vec![format!("{}.x", a.to_lowercase())],
            ..memory_stream(&unique("OVB"))
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::STREAM_SUBJECT_OVERLAP), "{e}");
}

/// 2.15 stops a stream without an explicit `max_consumers` (our default, -1) at 1000
/// consumers; an explicit limit lifts the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_stream_stops_at_1000_consumers_unless_it_sets_a_limit() {
    use futures::StreamExt;
    let (_server, js) = setup().await;
    async fn fill(js: &jetstream::Context, stream: &str, n: usize) -> Vec<JetStreamError> {
        futures::stream::iter(0..n)
            .map(|i| {
                let js = js.clone();
                let stream = stream.to_owned();
                async move {
                    js.create_consumer(
                        &stream,
                        ConsumerConfig {
                            memory_storage: true,
                            ..ConsumerConfig::durable(format!("c{i}"))
                        },
                    )
                    .await
                }
            })
            .buffer_unordered(16)
            .filter_map(|r| async move { r.err() })
            .collect()
            .await
    }
    let capped = unique("CAP");
    js.create_stream(memory_stream(&capped)).await.unwrap();
    let errors = fill(&js, &capped, 1001).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(code(&errors[0]), Some(ErrorCode::MAXIMUM_CONSUMERS_LIMIT));

    let lifted = unique("LIFT");
    js.create_stream(memory_stream(&lifted).with_max_consumers(2000))
        .await
        .unwrap();
    let errors = fill(&js, &lifted, 1001).await;
    assert!(errors.is_empty(), "{errors:?}");
}
