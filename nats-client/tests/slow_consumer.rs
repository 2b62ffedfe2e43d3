//! Slow consumers: a subscription over its pending limits drops messages, counts them, and
//! reports ONE `Event::SlowConsumer` per episode; a new episode starts only after it caught up.

use std::time::Duration;

use futures::StreamExt;
use nats_client::{Client, ConnectOptions, Event, Subscriber};
use nats_tests::NatsServer;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(10);
const BURST: u64 = 10_000;
const LIMIT: usize = 100;

/// Publishes `BURST` messages from `publisher` and returns once `consumer` has received all
/// of them from the server (read by its connection task, queued or dropped).
async fn burst(publisher: &Client, consumer: &Client, subject: &str) {
    let before = consumer.statistics().in_msgs;
    for i in 0..BURST {
        publisher.publish(subject, i.to_string()).await.unwrap();
    }
    // The server has routed every message once the publisher's PING is answered; the
    // consumer's PONG then comes after all of them on its own connection.
    publisher.flush().await.unwrap();
    consumer.flush().await.unwrap();
    assert_eq!(consumer.statistics().in_msgs, before + BURST);
}

/// The slow-consumer events for `sid` received so far.
fn slow_consumer_events(events: &mut broadcast::Receiver<Event>, sid: u64) -> usize {
    let mut n = 0;
    loop {
        match events.try_recv() {
            Ok(Event::SlowConsumer { sid: s, .. }) if s == sid => n += 1,
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Empty) => return n,
            Err(e) => panic!("events: {e}"),
        }
    }
}

async fn read_all_pending(sub: &mut Subscriber) -> Vec<u64> {
    let (pending, _) = sub.pending();
    let mut got = Vec::with_capacity(pending);
    for _ in 0..pending {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap();
        got.push(std::str::from_utf8(&msg.payload).unwrap().parse().unwrap());
    }
    assert_eq!(sub.pending(), (0, 0));
    got
}

#[tokio::test]
async fn one_event_per_episode_and_exact_drop_counts() {
    let server = NatsServer::single();
    let publisher = nats_client::connect(&server.url()).await.unwrap();
    let consumer = ConnectOptions::new()
        .subscription_pending_limits(LIMIT, 1 << 20)
        .connect(&server.url())
        .await
        .unwrap();
    let mut events = consumer.events();
    let mut sub = consumer.subscribe("flood").await.unwrap();
    consumer.flush().await.unwrap();

    // Episode 1: nobody reads while 10k messages arrive.
    burst(&publisher, &consumer, "flood").await;
    assert_eq!(sub.pending().0, LIMIT);
    let dropped = sub.dropped();
    assert_eq!(dropped, BURST - LIMIT as u64);
    assert_eq!(consumer.statistics().dropped_msgs, dropped);
    assert_eq!(slow_consumer_events(&mut events, sub.sid()), 1);
    // The first LIMIT messages are the ones kept, in order.
    assert_eq!(
        read_all_pending(&mut sub).await,
        (0..LIMIT as u64).collect::<Vec<_>>()
    );

    // Caught up; episode 2 reports again, once.
    burst(&publisher, &consumer, "flood").await;
    assert_eq!(sub.dropped(), 2 * (BURST - LIMIT as u64));
    assert_eq!(consumer.statistics().dropped_msgs, sub.dropped());
    assert_eq!(slow_consumer_events(&mut events, sub.sid()), 1);
    assert_eq!(read_all_pending(&mut sub).await.len(), LIMIT);

    // A reader that keeps up does not drop anything.
    let before = sub.dropped();
    for i in 0..LIMIT as u64 / 2 {
        publisher.publish("flood", i.to_string()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    consumer.flush().await.unwrap();
    assert_eq!(read_all_pending(&mut sub).await.len(), LIMIT / 2);
    assert_eq!(sub.dropped(), before);
    assert_eq!(slow_consumer_events(&mut events, sub.sid()), 0);
}

#[tokio::test]
async fn byte_limit_also_drops_and_only_the_slow_subscription_suffers() {
    let server = NatsServer::single();
    let publisher = nats_client::connect(&server.url()).await.unwrap();
    // About 1,000 messages of 1 KiB against a 64 KiB byte limit.
    let consumer = ConnectOptions::new()
        .subscription_pending_limits(1_000_000, 64 * 1024)
        .connect(&server.url())
        .await
        .unwrap();
    let mut events = consumer.events();
    let slow = consumer.subscribe("big").await.unwrap();
    let mut fast = consumer.subscribe("big").await.unwrap();
    consumer.flush().await.unwrap();
    // In batches of 16 KiB that `fast` reads before the next one: it never falls behind.
    for _ in 0..1000 / 16 + 1 {
        for _ in 0..16 {
            publisher.publish("big", vec![7u8; 1024]).await.unwrap();
        }
        publisher.flush().await.unwrap();
        consumer.flush().await.unwrap();
        for _ in 0..16 {
            tokio::time::timeout(WAIT, fast.next())
                .await
                .unwrap()
                .unwrap();
        }
    }
    const SENT: u64 = (1000 / 16 + 1) * 16;

    let (pending_msgs, pending_bytes) = slow.pending();
    assert!(pending_bytes <= 64 * 1024, "{pending_bytes}");
    assert_eq!(pending_msgs as u64 + slow.dropped(), SENT);
    assert_eq!(pending_msgs, 64, "64 messages of 1 KiB fill 64 KiB");
    assert_eq!(
        fast.dropped(),
        0,
        "the subscription that kept up lost nothing"
    );
    assert_eq!(consumer.statistics().dropped_msgs, slow.dropped());
    let mut slow_sids = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::SlowConsumer { sid, subject } = e {
            assert_eq!(subject, "big");
            slow_sids.push(sid);
        }
    }
    assert_eq!(
        slow_sids,
        [slow.sid()],
        "one event, for the slow subscription only"
    );
}

/// The limits bound everything not yet handed to the application, including the batch the
/// `Subscriber` already took out of the shared queue: a subscriber that read one message and
/// then stalled holds at most `LIMIT` messages, as with nats.go.
#[tokio::test]
async fn limits_bound_the_subscribers_local_batch_too() {
    let server = NatsServer::single();
    let publisher = nats_client::connect(&server.url()).await.unwrap();
    let consumer = ConnectOptions::new()
        .subscription_pending_limits(LIMIT, 1 << 20)
        .connect(&server.url())
        .await
        .unwrap();
    let mut sub = consumer.subscribe("flood").await.unwrap();
    consumer.flush().await.unwrap();
    for i in 0..LIMIT {
        publisher.publish("flood", i.to_string()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    consumer.flush().await.unwrap();
    tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    // The application has 1 message; 99 wait. Another burst finds room for 1 more only.
    burst(&publisher, &consumer, "flood").await;
    let (pending, _) = sub.pending();
    assert!(
        pending <= LIMIT,
        "{pending} messages pending over a limit of {LIMIT}"
    );
    assert_eq!(sub.dropped(), BURST - 1);
}
