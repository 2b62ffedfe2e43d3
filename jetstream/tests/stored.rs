//! Reading stored messages: `STREAM.MSG.GET` by sequence and last-by-subject, `DIRECT.GET`
//! when the stream allows it, and deleting single messages.

mod common;

use common::{memory_stream, setup, unique};
use jetstream::{ErrorCode, JetStreamError, PublishOptions, StreamConfig};

#[tokio::test]
async fn get_by_sequence_and_last_by_subject() {
    let (_server, js) = setup().await;
    let name = unique("G");
    let p = name.to_lowercase();
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let opts = PublishOptions::new().header("X-Tag", "first");
    let ack = js
        .publish_with(&format!("{p}.a"), "one", &opts)
        .await
        .unwrap();
    js.publish(&format!("{p}.b"), "two").await.unwrap();
    js.publish(&format!("{p}.a"), "three").await.unwrap();

    let m = stream.get_message(ack.seq).await.unwrap();
    assert_eq!(m.sequence, ack.seq);
    assert_eq!(m.subject, format!("{p}.a"));
    assert_eq!(&m.payload[..], b"one");
    assert_eq!(m.headers.as_ref().unwrap().get("X-Tag"), Some("first"));
    assert!(m.time.is_some());

    let last = stream.get_last_message(&format!("{p}.a")).await.unwrap();
    assert_eq!((&last.payload[..], last.sequence), (&b"three"[..], 3));
    assert!(last.headers.is_none());
    let wild = stream.get_last_message(&format!("{p}.*")).await.unwrap();
    assert_eq!(wild.sequence, 3);

    let err = stream.get_message(99).await.unwrap_err();
    assert!(err.is_api(ErrorCode::NO_MESSAGE_FOUND), "{err:?}");
    let err = js.get_message(&unique("NOPE"), 1).await.unwrap_err();
    assert!(err.is_api(ErrorCode::STREAM_NOT_FOUND), "{err:?}");
}

#[tokio::test]
async fn direct_get_when_allowed() {
    let (_server, js) = setup().await;
    let name = unique("D");
    let p = name.to_lowercase();
    let stream = js
        .create_stream(StreamConfig {
            allow_direct: true,
            ..memory_stream(&name)
        })
        .await
        .unwrap();
    let opts = PublishOptions::new().header("X-Tag", "v");
    js.publish_with(&format!("{p}.a"), "one", &opts)
        .await
        .unwrap();
    js.publish(&format!("{p}.b"), "two").await.unwrap();

    let m = stream.direct_get(1).await.unwrap();
    assert_eq!(
        (m.sequence, m.subject.as_str()),
        (1, format!("{p}.a").as_str())
    );
    assert_eq!(&m.payload[..], b"one");
    let h = m.headers.unwrap();
    assert_eq!(h.get("X-Tag"), Some("v"));
    assert!(
        h.get("Nats-Stream").is_none(),
        "server fields are lifted out of the headers"
    );
    assert!(m.time.is_some());

    let last = stream.direct_get_last(&format!("{p}.b")).await.unwrap();
    assert_eq!((&last.payload[..], last.sequence), (&b"two"[..], 2));
    assert!(last.headers.is_none());
    let wild = stream.direct_get_last(&format!("{p}.*")).await.unwrap();
    assert_eq!(wild.sequence, 2);

    let err = stream.direct_get(42).await.unwrap_err();
    assert!(err.is_api(ErrorCode::NO_MESSAGE_FOUND), "{err:?}");
}

#[tokio::test]
async fn direct_get_refused_without_allow_direct() {
    let (_server, js) = setup().await;
    let name = unique("ND");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    js.publish(&format!("{}.a", name.to_lowercase()), "x")
        .await
        .unwrap();
    let err = stream.direct_get(1).await.unwrap_err();
    assert!(
        matches!(err, JetStreamError::DirectGetUnavailable { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn delete_and_erase_messages() {
    let (_server, js) = setup().await;
    let name = unique("DEL");
    let p = name.to_lowercase();
    let mut stream = js.create_stream(memory_stream(&name)).await.unwrap();
    for i in 0..3 {
        js.publish(&format!("{p}.a"), format!("{i}")).await.unwrap();
    }
    assert!(stream.delete_message(2).await.unwrap());
    assert!(js.erase_message(&name, 3).await.unwrap());
    let err = stream.get_message(2).await.unwrap_err();
    assert!(err.is_api(ErrorCode::NO_MESSAGE_FOUND), "{err:?}");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    assert!(stream.delete_message(2).await.is_err());

    let denied = unique("DENY");
    let s = js
        .create_stream(StreamConfig {
            deny_delete: true,
            ..memory_stream(&denied)
        })
        .await
        .unwrap();
    js.publish(&format!("{}.a", denied.to_lowercase()), "x")
        .await
        .unwrap();
    let err = s.delete_message(1).await.unwrap_err();
    assert!(err.api_error().is_some(), "{err:?}");
}
