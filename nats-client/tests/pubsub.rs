//! Publish/subscribe, queue groups, unsubscribe, flush, drain and close against a real server.

use std::time::Duration;

use futures::StreamExt;
use nats_client::{ClientError, HeaderMap, PublishError};
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(5);

async fn next(sub: &mut nats_client::Subscriber) -> nats_client::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message within 5 s")
        .expect("subscription still open")
}

#[tokio::test]
async fn publish_subscribe_with_and_without_headers() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("orders.*").await.unwrap();
    client.flush().await.unwrap();

    client.publish("orders.eu", "plain").await.unwrap();
    let mut headers = HeaderMap::new();
    headers.append("Nats-Msg-Id", "42");
    headers.append("X-Tag", "a");
    headers.append("X-Tag", "b");
    client
        .publish_with_headers("orders.us", &headers, "with headers")
        .await
        .unwrap();
    client
        .publish_with_reply("orders.asia", "reply.here", "")
        .await
        .unwrap();

    let m = next(&mut sub).await;
    assert_eq!(
        (&*m.subject, &m.payload[..], m.headers.is_none()),
        ("orders.eu", &b"plain"[..], true)
    );
    let m = next(&mut sub).await;
    let h = m.headers.unwrap();
    assert_eq!(h.get("Nats-Msg-Id"), Some("42"));
    assert_eq!(h.get_all("X-Tag").collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(&m.payload[..], b"with headers");
    let m = next(&mut sub).await;
    assert_eq!(m.reply.as_deref(), Some("reply.here"));
    assert!(m.payload.is_empty());

    let stats = client.statistics();
    assert_eq!((stats.out_msgs, stats.in_msgs), (3, 3));
}

#[tokio::test]
async fn queue_groups_spread_work() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let mut a = client.queue_subscribe("jobs", "workers").await.unwrap();
    let mut b = client.queue_subscribe("jobs", "workers").await.unwrap();
    client.flush().await.unwrap();
    for i in 0..200 {
        client.publish("jobs", i.to_string()).await.unwrap();
    }
    client.flush().await.unwrap();
    let (mut na, mut nb) = (0, 0);
    while na + nb < 200 {
        tokio::select! {
            Some(_) = a.next() => na += 1,
            Some(_) = b.next() => nb += 1,
            _ = tokio::time::sleep(WAIT) => panic!("only {} of 200 delivered", na + nb),
        }
    }
    assert_eq!(na + nb, 200, "each message goes to exactly one member");
    assert!(na > 20 && nb > 20, "work is spread: {na} / {nb}");
}

#[tokio::test]
async fn unsubscribe_after_ends_the_stream() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("ticks").await.unwrap();
    sub.unsubscribe_after(3).await.unwrap();
    client.flush().await.unwrap();
    for _ in 0..10 {
        client.publish("ticks", "x").await.unwrap();
    }
    client.flush().await.unwrap();
    let mut got = 0;
    while let Some(_m) = tokio::time::timeout(WAIT, sub.next()).await.unwrap() {
        got += 1;
    }
    assert_eq!(got, 3);
}

#[tokio::test]
async fn drain_delivers_every_pending_message() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let publisher = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("work").await.unwrap();
    client.flush().await.unwrap();
    for i in 0..5000u32 {
        publisher.publish("work", i.to_be_bytes()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    client.drain().await.unwrap();
    let mut expected = 0u32;
    while let Some(m) = tokio::time::timeout(WAIT, sub.next()).await.unwrap() {
        assert_eq!(&m.payload[..], expected.to_be_bytes());
        expected += 1;
    }
    assert_eq!(expected, 5000);
    assert_eq!(
        client.publish("work", "late").await,
        Err(PublishError::Closed)
    );
}

#[tokio::test]
async fn close_then_every_call_is_closed() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let observer = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = observer.subscribe("last").await.unwrap();
    observer.flush().await.unwrap();
    for _ in 0..1000 {
        client.publish("last", "x").await.unwrap();
    }
    client.close().await.unwrap();
    // Everything accepted before close() reached the server.
    for _ in 0..1000 {
        next(&mut sub).await;
    }
    assert_eq!(client.publish("x", "y").await, Err(PublishError::Closed));
    assert_eq!(client.flush().await, Err(ClientError::Closed));
    assert_eq!(client.close().await, Err(ClientError::Closed));
    assert!(matches!(
        client.subscribe("x").await,
        Err(ClientError::Closed)
    ));
    assert!(matches!(
        client.request("x", "").await,
        Err(nats_client::RequestError::Publish(PublishError::Closed))
            | Err(nats_client::RequestError::Closed)
    ));
}

#[tokio::test]
async fn invalid_subjects_never_reach_the_wire() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe(">").await.unwrap();
    client.flush().await.unwrap();
    for bad in ["a b", "evil\r\nPUB x 1\r\ny", "", "a..b", "wild.*"] {
        assert!(
            matches!(
                client.publish(bad, "x").await,
                Err(PublishError::Protocol(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        client.subscribe("a\r\nUNSUB 1").await,
        Err(ClientError::Protocol(_))
    ));
    assert!(matches!(
        client.queue_subscribe("a", "q q").await,
        Err(ClientError::Protocol(_))
    ));
    client.publish("ok", "fine").await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(
        &*m.subject, "ok",
        "nothing from the bad publishes arrived first"
    );
    client.flush().await.unwrap();
}

#[tokio::test]
async fn max_payload_is_refused_before_sending() {
    let server = NatsServer::with_auth("max_payload: 1024");
    let client = nats_client::connect(&server.url()).await.unwrap();
    assert_eq!(client.server_info().max_payload, 1024);
    let err = client.publish("big", vec![0u8; 2000]).await.unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::Protocol(nats_proto::ProtoError::MaxPayloadExceeded {
                size: 2000,
                limit: 1024
            })
        ),
        "{err:?}"
    );
    client.publish("small", vec![0u8; 1000]).await.unwrap();
    client.flush().await.unwrap();
}

/// Large payloads handed over as `Bytes` are written from where they are (segments of the
/// write buffer, vectored writes) between small ones copied in: every message arrives whole,
/// in order, with its headers.
#[tokio::test]
async fn large_shared_payloads_arrive_whole_and_in_order_between_small_ones() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("big.*").await.unwrap();
    client.flush().await.unwrap();

    let large = nats_client::Client::SHARED_PAYLOAD_MIN;
    let payload = |i: usize| -> bytes::Bytes {
        let len = if i.is_multiple_of(3) {
            10
        } else {
            large + i * 1000
        };
        (0..len)
            .map(|b| (b * 31 + i) as u8)
            .collect::<Vec<u8>>()
            .into()
    };
    for i in 0..60 {
        match i % 4 {
            0 => client.publish("big.a", payload(i)).await.unwrap(),
            1 => client.publish_bytes("big.b", payload(i)).await.unwrap(),
            2 => client
                .send(nats_client::Publish::new("big.c", payload(i)).header("I", i))
                .await
                .unwrap(),
            _ => client.publish_bytes("big.d", payload(i)).await.unwrap(),
        }
    }
    client.flush().await.unwrap();
    for i in 0..60 {
        let m = next(&mut sub).await;
        assert_eq!(m.payload, payload(i), "message {i}");
        if i % 4 == 2 {
            let headers = m.headers.expect("headers sent");
            assert_eq!(headers.get("I"), Some(i.to_string().as_str()));
        }
    }
    assert_eq!(client.statistics().out_msgs, 60);
}
