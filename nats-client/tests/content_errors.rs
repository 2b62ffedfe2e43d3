//! Content errors through a real server: nats-server passes subjects, reply subjects and
//! header values that are not UTF-8 through, so any publisher can send them. Such a message
//! must never cost the connection: header values come through as bytes, a message whose
//! subject cannot be shown is an error for its subscription alone, and a flow on another
//! subject beside them loses nothing.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nats_client::nats_proto::ProtoError;
use nats_client::{ConnectOptions, Event, SubscriptionError};
use nats_tests::NatsServer;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const FLOW: usize = 2_000;

/// Waits until `cond` holds, polling.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_cost_neither_the_connection_nor_the_flow_beside_them() {
    let server = NatsServer::single();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let client = ConnectOptions::new()
        .event_callback(move |e| seen.lock().unwrap().push(e.clone()))
        .connect(&server.url())
        .await
        .unwrap();
    let mut bad = client.subscribe("bad.>").await.unwrap();
    let mut flow = client.subscribe("flow").await.unwrap();
    client.flush().await.unwrap();

    // A raw publisher interleaves bad messages with the flow, all in one stream of bytes, so
    // they reach the client's read buffer together.
    let mut raw = server.raw_connection();
    raw.handshake(json!({"headers": true}));
    let mut stream = raw.into_stream();
    let publisher = std::thread::spawn(move || {
        let hvalue: &[u8] = b"NATS/1.0\r\nX-Raw: caf\xe9\r\n\r\n";
        let mut bytes = Vec::new();
        for i in 0..FLOW {
            match i {
                500 => bytes.extend_from_slice(b"PUB bad.\xff 3\r\nsub\r\n"),
                1000 => bytes.extend_from_slice(b"PUB bad.reply r.\xfe 5\r\nreply\r\n"),
                1500 => {
                    let line = format!("HPUB bad.header {} {}\r\n", hvalue.len(), hvalue.len() + 3);
                    bytes.extend_from_slice(line.as_bytes());
                    bytes.extend_from_slice(hvalue);
                    bytes.extend_from_slice(b"hdr\r\n");
                }
                _ => {}
            }
            let payload = i.to_string();
            bytes.extend_from_slice(
                format!("PUB flow {}\r\n{payload}\r\n", payload.len()).as_bytes(),
            );
        }
        bytes.extend_from_slice(b"PING\r\n");
        stream.write_all(&bytes).unwrap();
        stream
    });

    for i in 0..FLOW {
        let msg = tokio::time::timeout(WAIT, flow.next())
            .await
            .unwrap_or_else(|_| panic!("flow message {i} within {WAIT:?}"))
            .expect("the flow subscription stays open");
        assert_eq!(
            &msg.payload[..],
            i.to_string().as_bytes(),
            "in order, none lost"
        );
    }
    let _stream = publisher.join().unwrap();

    // The header value that is not UTF-8 is delivered, its bytes intact.
    let msg = tokio::time::timeout(WAIT, bad.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&*msg.subject, &msg.payload[..]),
        ("bad.header", &b"hdr"[..])
    );
    let headers = msg.headers.as_ref().unwrap();
    assert_eq!(headers.get_value("X-Raw").unwrap().as_bytes(), b"caf\xe9");
    assert_eq!(headers.get("X-Raw"), None);

    // The two that cannot be a `Message` are errors of their subscription, with their bytes.
    wait_until("two undeliverable messages counted", || {
        client.statistics().undeliverable_msgs == 2
    })
    .await;
    let errors = bad.take_errors();
    type Parts = (Vec<u8>, Option<Vec<u8>>, Vec<u8>);
    let raw_parts: Vec<Parts> = errors
        .iter()
        .map(|e| match e {
            SubscriptionError::Undeliverable(m) => (
                m.subject.to_vec(),
                m.reply.as_ref().map(|r| r.to_vec()),
                m.payload.to_vec(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        raw_parts,
        [
            (b"bad.\xff".to_vec(), None, b"sub".to_vec()),
            (
                b"bad.reply".to_vec(),
                Some(b"r.\xfe".to_vec()),
                b"reply".to_vec()
            ),
        ]
    );
    let events = events.lock().unwrap().clone();
    let undeliverable: Vec<&ProtoError> = events
        .iter()
        .filter_map(|e| match e {
            Event::UndeliverableMessage { sid, error } if *sid == bad.sid() => Some(error),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            undeliverable[..],
            [
                ProtoError::InvalidUtf8 {
                    field: "subject",
                    ..
                },
                ProtoError::InvalidUtf8 {
                    field: "reply subject",
                    ..
                }
            ]
        ),
        "{undeliverable:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "{events:?}"
    );
    let stats = client.statistics();
    assert_eq!((stats.reconnects, stats.connects), (0, 1));
    assert_eq!(stats.in_msgs, FLOW as u64 + 1);

    // Still one healthy connection.
    client.publish("flow", "after").await.unwrap();
    let msg = tokio::time::timeout(WAIT, flow.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"after");
}
