//! The read-task hand-over of a design-B consumer's pulled messages (`pull_loop`): what a
//! cancelled consumer's last, still open pull brings goes back to the queue, and a closed
//! channel's deliveries come back, on a real nats-server.

use std::time::Duration;

use amqp_compat::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use amqp_compat::types::FieldTable;
use amqp_compat::{BasicProperties, Channel, Connection, ConnectionProperties};
use futures_util::StreamExt;
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(10);

async fn publish(ch: &Channel, q: &str, body: &str) {
    ch.basic_publish(
        "".into(),
        q.into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        BasicProperties::default(),
    )
    .await
    .expect("publish")
    .await
    .expect("confirm");
}

/// Takes every message `basic_get` finds until `n` were seen (polling with a deadline).
async fn get_all(ch: &Channel, q: &str, n: usize) -> Vec<(String, bool)> {
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    let mut seen = Vec::new();
    while seen.len() < n {
        assert!(tokio::time::Instant::now() < deadline, "only {seen:?}");
        let got = ch
            .basic_get(q.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic_get");
        match got {
            Some(m) => seen.push((
                String::from_utf8_lossy(&m.delivery.data).into_owned(),
                m.delivery.redelivered,
            )),
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    seen
}

/// A connection and a channel in confirm mode that declared queue `q`.
async fn confirming_queue(server: &NatsServer, q: &str) -> (Connection, Channel) {
    let conn = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    (conn, ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_cancelled_consumers_open_pull_brings_goes_back_to_the_queue() {
    let server = NatsServer::jetstream();
    let (conn, ch) = confirming_queue(&server, "work").await;
    let cch = conn.create_channel().await.unwrap();
    cch.basic_qos(10, BasicQosOptions::default()).await.unwrap();
    let mut consumer = cch
        .basic_consume(
            "work".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish(&ch, "work", "first").await;
    let d = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery")
        .expect("open")
        .expect("delivery");
    assert_eq!(d.data, b"first");
    // Cancelled with a pull for 9 more still open on the server (2 s).
    cch.basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    for m in ["a", "b", "c"] {
        publish(&ch, "work", m).await;
    }
    // None reaches the cancelled consumer; each is back in the queue (redelivered if the
    // open pull took it).
    let mut seen = get_all(&ch, "work", 3).await;
    assert!(
        tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("the stream ends")
            .is_none()
    );
    seen.sort();
    let bodies: Vec<&str> = seen.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(bodies, ["a", "b", "c"]);
    // "first" stays unacked on the cancelled consumer's channel until it closes.
    cch.close(200, "bye".into()).await.unwrap();
    let back = get_all(&ch, "work", 1).await;
    assert_eq!(back, [("first".to_string(), true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_consumer_stops_pulling_and_flags_nothing_redelivered() {
    let server = NatsServer::jetstream();
    let (conn, ch) = confirming_queue(&server, "shared").await;
    let consume = async |ch: &Channel| {
        ch.basic_consume(
            "shared".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap()
    };
    let gone_ch = conn.create_channel().await.unwrap();
    let gone = consume(&gone_ch).await;
    drop(gone);
    // The dropped consumer's loop pulls no more: its last pull ends and none follows.
    let js = jetstream::Context::new(conn.nats_client().clone());
    let stream = amqp_compat::storage::queue_stream(None, "shared");
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    loop {
        let info = js
            .consumer_info(&stream, "amqp")
            .await
            .expect("consumer info");
        if info.num_waiting == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let live_ch = conn.create_channel().await.unwrap();
    let mut live = consume(&live_ch).await;
    let sent: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for m in &sent {
        publish(&ch, "shared", m).await;
    }
    // Each goes to the live consumer once, as first delivered: none was taken and given
    // back by a consumer nobody reads.
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let d = tokio::time::timeout(WAIT, live.next())
            .await
            .expect("a delivery in time")
            .expect("open")
            .expect("delivery");
        got.push((String::from_utf8_lossy(&d.data).into_owned(), d.redelivered));
    }
    let expected: Vec<(String, bool)> = sent.iter().map(|m| (m.clone(), false)).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_closed_while_its_pulls_bring_messages_gives_every_one_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = NatsServer::jetstream();
    let conn = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "busy".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn({
        let (stop, ch) = (stop.clone(), ch.clone());
        async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::Acquire) {
                ch.basic_publish(
                    "".into(),
                    "busy".into(),
                    BasicPublishOptions::default(),
                    sent.to_string().as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
                sent += 1;
                tokio::task::yield_now().await;
            }
            sent
        }
    });
    let mut closed = Vec::new();
    for _ in 0..10 {
        // Two consumers on one channel: its close stops one while the other's open pull
        // keeps handing messages over.
        let x = conn.create_channel().await.unwrap();
        let mut consumers = Vec::new();
        for _ in 0..2 {
            let c = x
                .basic_consume(
                    "busy".into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            consumers.push(c);
        }
        for c in &mut consumers {
            tokio::time::timeout(WAIT, c.next())
                .await
                .expect("a delivery");
        }
        x.close(200, "bye".into()).await.unwrap();
        // Kept, with their consumers: a dropped channel would give back what it holds.
        closed.push((x, consumers));
    }
    stop.store(true, Ordering::Release);
    let sent = flood.await.unwrap();
    // Nothing was acked: every message comes again to a new consumer, none is held
    // unacknowledged by a closed channel.
    let last = conn.create_channel().await.unwrap();
    let mut c = last
        .basic_consume(
            "busy".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    while (seen.len() as u64) < sent {
        let d = tokio::time::timeout(WAIT, c.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {sent} came again", seen.len()))
            .expect("open")
            .expect("delivery");
        last.basic_ack(d.delivery_tag, Default::default())
            .await
            .unwrap();
        seen.insert(d.data);
    }
    drop(closed);
}
