//! Consumer administration: durable and ephemeral pull consumers, create/update semantics,
//! info, names/list, delete, several filter subjects, and the settings that shape delivery.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique};
use jetstream::{AckPolicy, ConsumerConfig, DeliverPolicy, ErrorCode, JetStreamError};

#[tokio::test]
async fn durable_create_update_info_delete() {
    let (_server, js) = setup().await;
    let name = unique("C");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let config = ConsumerConfig {
        ack_wait: Duration::from_secs(10),
        max_deliver: 4,
        backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
        max_ack_pending: 20,
        filter_subject: format!("{p}.orders"),
        description: Some("billing".into()),
        ..ConsumerConfig::durable("billing")
    };
    let mut consumer = stream.create_consumer(config.clone()).await.unwrap();
    assert_eq!(consumer.name(), "billing");
    assert_eq!(consumer.stream_name(), name);
    let info = consumer.cached_info();
    assert_eq!(info.config.durable_name.as_deref(), Some("billing"));
    assert_eq!(info.config.ack_policy, AckPolicy::Explicit);
    assert_eq!(info.config.max_deliver, 4);
    assert_eq!(info.config.backoff, config.backoff);
    assert_eq!(info.config.max_ack_pending, 20);
    assert_eq!(info.config.filter_subject, format!("{p}.orders"));

    // Create with the same config is idempotent; with another it is refused.
    stream.create_consumer(config.clone()).await.unwrap();
    let mut changed = config.clone();
    changed.max_ack_pending = 50;
    let err = stream.create_consumer(changed.clone()).await.unwrap_err();
    assert!(err.is_api(ErrorCode::CONSUMER_ALREADY_EXISTS), "{err:?}");
    let updated = stream.update_consumer(changed.clone()).await.unwrap();
    assert_eq!(updated.cached_info().config.max_ack_pending, 50);

    let err = stream
        .update_consumer(ConsumerConfig::durable("ghost"))
        .await
        .unwrap_err();
    assert!(err.is_api(ErrorCode::CONSUMER_DOES_NOT_EXIST), "{err:?}");
    stream
        .create_or_update_consumer(ConsumerConfig::durable("ghost"))
        .await
        .unwrap();

    js.publish(&format!("{p}.orders"), "1").await.unwrap();
    js.publish(&format!("{p}.other"), "2").await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_pending, 1, "the filter leaves out {p}.other");

    assert!(stream.delete_consumer("billing").await.unwrap());
    let err = stream.consumer_info("billing").await.unwrap_err();
    assert!(err.is_api(ErrorCode::CONSUMER_NOT_FOUND), "{err:?}");
}

#[tokio::test]
async fn ephemeral_consumers_get_a_name_and_go_away() {
    let (_server, js) = setup().await;
    let name = unique("E");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let consumer = stream
        .create_consumer(ConsumerConfig {
            inactive_threshold: Duration::from_millis(500),
            ..ConsumerConfig::default()
        })
        .await
        .unwrap();
    assert!(!consumer.name().is_empty());
    assert!(consumer.cached_info().config.durable_name.is_none());
    assert_eq!(
        consumer.cached_info().config.inactive_threshold,
        Duration::from_millis(500)
    );
    assert!(
        stream
            .consumer_names()
            .await
            .unwrap()
            .contains(&consumer.name().to_owned())
    );
    let gone = common::within(10, "ephemeral consumer removal", async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.consumer_info(consumer.name()).await.is_err() {
                return true;
            }
        }
    })
    .await;
    assert!(gone);
}

#[tokio::test]
async fn several_filter_subjects() {
    let (_server, js) = setup().await;
    let name = unique("F");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for s in ["eu", "us", "asia", "eu"] {
        js.publish(&format!("{p}.{s}"), s).await.unwrap();
    }
    let consumer = stream
        .create_consumer(ConsumerConfig {
            filter_subjects: vec![format!("{p}.eu"), format!("{p}.us")],
            ..ConsumerConfig::durable("west")
        })
        .await
        .unwrap();
    assert_eq!(consumer.cached_info().config.filter_subjects.len(), 2);
    let msgs = consumer
        .fetch(10, Duration::from_millis(300))
        .await
        .unwrap();
    let got: Vec<_> = msgs.iter().map(|m| m.subject.to_string()).collect();
    assert_eq!(
        got,
        [format!("{p}.eu"), format!("{p}.us"), format!("{p}.eu")]
    );

    // Both filter_subject and filter_subjects: the server refuses.
    let err = stream
        .create_consumer(ConsumerConfig {
            filter_subject: format!("{p}.eu"),
            filter_subjects: vec![format!("{p}.us")],
            ..ConsumerConfig::durable("both")
        })
        .await
        .unwrap_err();
    assert!(err.api_error().is_some(), "{err:?}");

    // A wildcard filter works too (it travels in the body, not the subject).
    let wild = stream
        .create_consumer(ConsumerConfig {
            filter_subject: format!("{p}.*"),
            deliver_policy: DeliverPolicy::Last,
            ..ConsumerConfig::durable("wild")
        })
        .await
        .unwrap();
    assert_eq!(wild.cached_info().num_pending, 1);
}

#[tokio::test]
async fn names_and_list() {
    let (_server, js) = setup().await;
    let name = unique("N");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for i in 0..4 {
        stream
            .create_consumer(ConsumerConfig::durable(format!("c{i}")))
            .await
            .unwrap();
    }
    let mut names = js.consumer_names(&name).await.unwrap();
    names.sort();
    assert_eq!(names, ["c0", "c1", "c2", "c3"]);
    let page = js.consumer_names_page(&name, 3).await.unwrap();
    assert_eq!((page.total, page.offset, page.items.len()), (4, 3, 1));
    let infos = stream.list_consumers().await.unwrap();
    assert_eq!(infos.len(), 4);
    assert!(infos.iter().all(|i| i.stream == name));
    let one = js.list_consumers_page(&name, 0).await.unwrap();
    assert_eq!(one.total, 4);
    let mut got = js.get_consumer(&name, "c2").await.unwrap();
    assert_eq!(got.info().await.unwrap().name, "c2");

    let err = js.consumer_names(&unique("NOSTREAM")).await.unwrap_err();
    assert!(err.is_api(ErrorCode::STREAM_NOT_FOUND), "{err:?}");
    let err = stream.get_consumer("a.b").await.unwrap_err();
    assert!(matches!(err, JetStreamError::InvalidName { .. }), "{err:?}");
}

#[tokio::test]
async fn deliver_policies() {
    let (_server, js) = setup().await;
    let name = unique("DP");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for i in 1..=5 {
        js.publish(&format!("{p}.x"), format!("{i}")).await.unwrap();
    }
    let by_seq = stream
        .create_consumer(ConsumerConfig {
            deliver_policy: DeliverPolicy::ByStartSequence,
            opt_start_seq: Some(4),
            ..ConsumerConfig::durable("from4")
        })
        .await
        .unwrap();
    let msgs = by_seq.fetch(10, Duration::from_millis(200)).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(&msgs[0].payload[..], b"4");
    let new = stream
        .create_consumer(ConsumerConfig {
            deliver_policy: DeliverPolicy::New,
            ..ConsumerConfig::durable("new")
        })
        .await
        .unwrap();
    assert!(new.fetch(10, Duration::ZERO).await.unwrap().is_empty());
}
