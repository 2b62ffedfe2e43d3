//! Handler subscriptions against a real server: every message, in order, none dropped; the
//! handler may publish; dropping the subscription stops delivery.

use std::time::Duration;

use futures::StreamExt;
use nats_client::ConnectOptions;
use nats_tests::NatsServer;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_gets_every_message_in_order_past_the_pending_limit() {
    let server = NatsServer::single();
    // A queue subscription with this limit would drop most of the burst below.
    let client = ConnectOptions::new()
        .subscription_pending_limits(16, 1024 * 1024)
        .connect(&server.url())
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _sub = client
        .subscribe_with_handler("burst.*", move |msg| {
            let _ = tx.send(msg);
        })
        .unwrap();
    client.flush().await.unwrap();
    for i in 0..5000u32 {
        client
            .publish(format!("burst.{i}"), i.to_be_bytes())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    // The server sends the messages before the flush's PONG and the handler runs as they
    // are read: all of them were handled by the time the flush returned.
    assert_eq!(rx.len(), 5000);
    for i in 0..5000u32 {
        let msg = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&*msg.subject, format!("burst.{i}"));
        assert_eq!(&msg.payload[..], i.to_be_bytes());
    }
    assert_eq!(client.statistics().dropped_msgs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_may_publish_and_stops_when_dropped() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let echo = client.clone();
    // The handler runs without the subscription table locked: subscribing and unsubscribing
    // from inside it must not deadlock, and it can hand a publish to a task.
    let sub = client
        .subscribe_with_handler("echo", move |msg| {
            drop(echo.subscribe_with_handler("nested", |_| {}).unwrap());
            let echo = echo.clone();
            tokio::spawn(async move {
                if let Some(reply) = msg.reply {
                    echo.publish(reply, msg.payload).await.unwrap();
                }
            });
        })
        .unwrap();
    assert_eq!(sub.subject(), "echo");
    client.flush().await.unwrap();
    let reply = client.request("echo", "ping").await.unwrap();
    assert_eq!(&reply.payload[..], b"ping");

    let mut watcher = client.subscribe("echo").await.unwrap();
    sub.unsubscribe().unwrap();
    client.flush().await.unwrap();
    let err = client
        .request_with("echo", None, b"again", Duration::from_millis(300))
        .await;
    assert!(
        err.is_err(),
        "no handler may answer after unsubscribe: {err:?}"
    );
    // The message itself still went out (the watcher saw it).
    let seen = tokio::time::timeout(WAIT, watcher.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&seen.payload[..], b"again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_handlers_share_the_messages() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let members: Vec<_> = (0..2)
        .map(|member| {
            let tx = tx.clone();
            client
                .queue_subscribe_with_handler("work", "workers", move |msg| {
                    let _ = tx.send((member, msg));
                })
                .unwrap()
        })
        .collect();
    // A plain subscriber on the same subject sees every message, whatever the group does.
    let mut all = client.subscribe("work").await.unwrap();
    client.flush().await.unwrap();
    for i in 0..1000u32 {
        client.publish("work", i.to_be_bytes()).await.unwrap();
    }
    client.flush().await.unwrap();
    let mut seen = vec![0u32; 1000];
    let mut per_member = [0u32; 2];
    for _ in 0..1000 {
        let (member, msg) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        let i = u32::from_be_bytes(msg.payload[..].try_into().unwrap());
        seen[i as usize] += 1;
        per_member[member] += 1;
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "each message to exactly one member"
    );
    assert!(per_member.iter().all(|&n| n > 0), "{per_member:?}");
    for _ in 0..1000 {
        tokio::time::timeout(WAIT, all.next())
            .await
            .unwrap()
            .unwrap();
    }
    drop(members);
    client.flush().await.unwrap();
    assert!(rx.try_recv().is_err());
}
