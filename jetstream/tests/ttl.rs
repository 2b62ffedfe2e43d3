//! Per-message TTL (`Nats-TTL`): a message published with a TTL goes after it; others stay.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique};
use jetstream::{ErrorCode, PublishOptions, StreamConfig};

#[tokio::test]
async fn message_expires_after_its_ttl() {
    let (_server, js) = setup().await;
    let name = unique("TTL");
    let subject = format!("{}.a", name.to_lowercase());
    js.create_stream(StreamConfig {
        allow_msg_ttl: true,
        ..memory_stream(&name)
    })
    .await
    .unwrap();
    let opts = PublishOptions::new().ttl(Duration::from_secs(1)).unwrap();
    let short = js.publish_with(&subject, "short", &opts).await.unwrap();
    let kept = js.publish(&subject, "kept").await.unwrap();
    let stored = js.get_message(&name, short.seq).await.unwrap();
    assert_eq!(
        stored.headers.as_ref().and_then(|h| h.get("Nats-TTL")),
        Some("1s")
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match js.get_message(&name, short.seq).await {
            Err(e) if e.is_api(ErrorCode::NO_MESSAGE_FOUND) => break,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("the 1 s message is still there: {other:?}"),
        }
    }
    assert_eq!(
        &js.get_message(&name, kept.seq).await.unwrap().payload[..],
        b"kept"
    );
}

#[test]
fn ttls_the_server_cannot_store_are_refused_before_sending() {
    for bad in [
        Duration::ZERO,
        Duration::from_millis(500),
        Duration::from_millis(1500),
    ] {
        let e = PublishOptions::new().ttl(bad).unwrap_err();
        assert_eq!(e.ttl, bad);
    }
    let h = PublishOptions::new()
        .ttl(Duration::from_secs(3600))
        .unwrap()
        .build_headers()
        .unwrap();
    assert_eq!(h.get("Nats-TTL"), Some("3600s"));
}
