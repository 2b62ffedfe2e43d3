//! The ordered consumer against a real server: a long replay in order, re-creation after the
//! consumer is deleted server-side, after a server restart, and the end when the stream goes.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique, within};
use futures::StreamExt;
use jetstream::{
    Context, DeliverPolicy, JetStreamError, OrderedConsumerConfig, OrderedMessages, StorageType,
    StreamConfig,
};
use tokio::task::spawn_blocking;

/// Publishes `count` messages `from..from+count` (payload = the number) with up to 1000 acks
/// in flight, then checks the stream holds `total`.
async fn load(js: &Context, stream: &str, subject: &str, from: u64, count: u64, total: u64) {
    let mut acks = std::collections::VecDeque::new();
    for i in from..from + count {
        if acks.len() >= 1000 {
            let ack: jetstream::PublishAckFuture = acks.pop_front().unwrap();
            ack.await.unwrap();
        }
        acks.push_back(js.publish_async(subject, i.to_string()).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    assert_eq!(js.stream_info(stream).await.unwrap().state.messages, total);
}

/// Takes the next message, skipping reported trouble; returns (stream seq, payload number).
async fn take(messages: &mut OrderedMessages) -> (u64, u64) {
    loop {
        match within(30, "next ordered message", messages.next()).await {
            Some(Ok(m)) => {
                let seq = m.info().unwrap().stream_sequence;
                let n = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                return (seq, n);
            }
            Some(Err(e)) => eprintln!("ordered consumer: {e}"),
            None => panic!("ordered consumer ended"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_100k_messages_once_in_order() {
    let (_server, js) = setup().await;
    let name = unique("OR");
    let subject = format!("{}.x", name.to_lowercase());
    js.create_stream(memory_stream(&name)).await.unwrap();
    const N: u64 = 100_000;
    load(&js, &name, &subject, 1, N, N).await;
    let mut messages = js
        .ordered_messages(&name, OrderedConsumerConfig::default())
        .await
        .unwrap();
    assert_eq!(messages.initial_pending(), N);
    for expected in 1..=N {
        assert_eq!(take(&mut messages).await, (expected, expected));
    }
    assert_eq!(messages.last_stream_sequence(), N);
    assert_eq!(messages.resets(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_after_the_consumer_is_deleted_mid_stream() {
    let (_server, js) = setup().await;
    let name = unique("OD");
    let subject = format!("{}.x", name.to_lowercase());
    js.create_stream(memory_stream(&name)).await.unwrap();
    load(&js, &name, &subject, 1, 2000, 2000).await;
    let mut messages = js
        .ordered_messages(
            &name,
            OrderedConsumerConfig {
                max_messages: 100,
                ..OrderedConsumerConfig::default()
            },
        )
        .await
        .unwrap();
    for expected in 1..=300 {
        assert_eq!(take(&mut messages).await, (expected, expected));
    }
    let first = messages.consumer_name();
    assert!(js.delete_consumer(&name, &first).await.unwrap());
    // Publish more while it is gone; every message still comes once, in order.
    load(&js, &name, &subject, 2001, 500, 2500).await;
    for expected in 301..=2500 {
        assert_eq!(take(&mut messages).await, (expected, expected));
    }
    assert!(messages.resets() >= 1);
    assert_ne!(messages.consumer_name(), first);
    // The replacement starts after the last message delivered.
    let info = js
        .consumer_info(&name, &messages.consumer_name())
        .await
        .unwrap();
    assert_eq!(info.config.deliver_policy, DeliverPolicy::ByStartSequence);
    assert!(info.config.opt_start_seq.unwrap() > 300);
    assert!(info.config.memory_storage);
    assert_eq!(info.config.ack_policy, jetstream::AckPolicy::None);

    // Deleting the stream ends the consumer.
    js.delete_stream(&name).await.unwrap();
    let end = within(30, "end after the stream is deleted", async {
        loop {
            match messages.next().await {
                None => return None,
                Some(Err(e)) if e.is_api(jetstream::ErrorCode::STREAM_NOT_FOUND) => {
                    return Some(e);
                }
                Some(_) => {}
            }
        }
    })
    .await;
    assert!(end.is_some());
    assert!(
        within(5, "none after the error", messages.next())
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_restart() {
    let (server, js) = setup().await;
    let name = unique("ORS");
    let subject = format!("{}.x", name.to_lowercase());
    js.create_stream(StreamConfig {
        storage: StorageType::File,
        ..StreamConfig::new(&name, [format!("{}.>", name.to_lowercase())])
    })
    .await
    .unwrap();
    load(&js, &name, &subject, 1, 200, 200).await;
    let mut messages = js
        .ordered_messages(
            &name,
            OrderedConsumerConfig {
                max_messages: 50,
                idle_heartbeat: Duration::from_secs(1),
                ..OrderedConsumerConfig::default()
            },
        )
        .await
        .unwrap();
    for expected in 1..=120 {
        assert_eq!(take(&mut messages).await, (expected, expected));
    }
    let mut events = js.client().events();
    let server = spawn_blocking(move || {
        let mut s = server;
        s.kill();
        s.restart();
        s
    })
    .await
    .unwrap();
    within(20, "reconnected", async {
        loop {
            if let Ok(nats_client::Event::Reconnected { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await;
    // The memory consumer died with the server; the messages did not.
    let publish_more = async {
        loop {
            match js.stream_info(&name).await {
                Ok(_) => break,
                Err(JetStreamError::Api(_)) | Err(JetStreamError::Request(_)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        load(&js, &name, &subject, 201, 100, 300).await;
    };
    within(30, "publish after restart", publish_more).await;
    for expected in 121..=300 {
        assert_eq!(take(&mut messages).await, (expected, expected));
    }
    assert!(messages.resets() >= 1);
    drop(server);
}
