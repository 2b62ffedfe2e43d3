//! Priority groups: a pinned-client consumer is RabbitMQ's single active consumer. Two
//! processes pull from one consumer; only the pinned one receives; when it dies the other
//! takes over, and gets the message the dead one left unacknowledged first, in order.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{connect, memory_stream, setup, unique, within};
use futures::StreamExt;
use jetstream::{
    ConsumeOptions, Consumer, ConsumerConfig, FetchOptions, JsMessage, Messages, PriorityGroup,
    PriorityPolicy,
};
use tokio::sync::mpsc;

const GROUP: &str = "sac";

fn pinned(name: &str, timeout: Duration) -> ConsumerConfig {
    ConsumerConfig {
        priority_groups: vec![GROUP.into()],
        priority_policy: PriorityPolicy::PinnedClient,
        priority_timeout: timeout,
        ack_wait: Duration::from_secs(2),
        max_ack_pending: 1,
        ..ConsumerConfig::durable(name)
    }
}

/// The next message of `messages`, skipping reported trouble (missed heartbeats...).
async fn next_msg(messages: &mut Messages) -> JsMessage {
    loop {
        match messages.next().await {
            Some(Ok(m)) => return m,
            Some(Err(e)) => eprintln!("consumer trouble: {e}"),
            None => panic!("message stream ended"),
        }
    }
}

/// The child process: consumes from the pinned consumer named by the environment, prints
/// `GOT <payload>` for each message and acks all but the one named by `JS_SAC_HOLD`. Run by
/// `single_active_consumer_fails_over_across_processes` only.
#[tokio::test]
#[ignore = "child process of single_active_consumer_fails_over_across_processes"]
async fn sac_child() {
    let url = std::env::var("JS_SAC_URL").expect("JS_SAC_URL");
    let stream = std::env::var("JS_SAC_STREAM").expect("JS_SAC_STREAM");
    let consumer = std::env::var("JS_SAC_CONSUMER").expect("JS_SAC_CONSUMER");
    let hold = std::env::var("JS_SAC_HOLD").unwrap_or_default();
    let client = nats_client::connect(&url).await.expect("connect");
    let js = jetstream::new(client);
    let consumer = js.get_consumer(&stream, &consumer).await.expect("consumer");
    let mut messages = consumer.messages().await.expect("consume");
    loop {
        let m = next_msg(&mut messages).await;
        let text = String::from_utf8_lossy(&m.payload).into_owned();
        let mut out = std::io::stdout().lock();
        writeln!(out, "GOT {text}").unwrap();
        out.flush().unwrap();
        if text != hold {
            m.double_ack().await.expect("ack");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_active_consumer_fails_over_across_processes() {
    let (server, js) = setup().await;
    let name = unique("SAC");
    let subject = format!("{}.q", name.to_lowercase());
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    stream
        .create_consumer(pinned("q", Duration::from_secs(2)))
        .await
        .unwrap();

    // Process A.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "sac_child", "--nocapture"])
        .env("JS_SAC_URL", server.url())
        .env("JS_SAC_STREAM", &name)
        .env("JS_SAC_CONSUMER", "q")
        .env("JS_SAC_HOLD", "m4")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, mut from_a) = mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(p) = line.strip_prefix("GOT ") {
                let _ = tx.send(p.to_owned());
            }
        }
    });
    js.publish(&subject, "m1").await.unwrap();
    assert_eq!(within(20, "A gets m1", from_a.recv()).await.unwrap(), "m1");

    // Process B (here: another connection) joins while A holds the pin.
    let js_b = connect(&server).await;
    let consumer_b = js_b.get_consumer(&name, "q").await.unwrap();
    let mut b = consumer_b.messages().await.unwrap();
    for p in ["m2", "m3", "m4", "m5", "m6"] {
        js.publish(&subject, p).await.unwrap();
    }
    for want in ["m2", "m3", "m4"] {
        assert_eq!(within(10, want, from_a.recv()).await.unwrap(), want);
    }
    // A holds m4 unacknowledged (max_ack_pending 1): nothing else moves, and B gets nothing.
    let early = tokio::time::timeout(Duration::from_secs(1), next_msg(&mut b)).await;
    assert!(early.is_err(), "B received while A was pinned: {early:?}");

    let info = js.consumer_info(&name, "q").await.unwrap();
    let state = &info.priority_groups[0];
    assert_eq!(state.group, GROUP);
    assert!(state.pinned_client_id.is_some() && state.pinned_time.is_some());
    assert!(consumer_b.pin_id().is_none());

    child.kill().unwrap();
    child.wait().unwrap();

    // B takes over after priority_timeout and ack_wait: m4 first, redelivered, then the rest.
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = within(30, "B takes over", next_msg(&mut b)).await;
        let delivered = m.info().unwrap().delivered;
        got.push((String::from_utf8_lossy(&m.payload).into_owned(), delivered));
        m.double_ack().await.unwrap();
    }
    assert_eq!(got[0], ("m4".to_owned(), 2), "{got:?}");
    let rest: Vec<_> = got[1..].iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(rest, ["m5", "m6"]);
    assert!(consumer_b.pin_id().is_some());
    assert!(from_a.try_recv().is_err());
}

/// `unpin` moves the pin at once: the old holder's next pull meets `423`, drops its pin and
/// becomes a candidate; the next pull of the group gets a new pin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpin_moves_the_pin_and_the_old_holder_pulls_again() {
    let (server, js) = setup().await;
    let name = unique("UNPIN");
    let subject = format!("{}.q", name.to_lowercase());
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let a: Consumer = stream
        .create_consumer(pinned("q", Duration::from_secs(60)))
        .await
        .unwrap();
    let options = FetchOptions {
        batch: 1,
        expires: Duration::from_secs(2),
        priority_group: Some(PriorityGroup::new(GROUP)),
        ..FetchOptions::default()
    };
    js.publish(&subject, "one").await.unwrap();
    let got = a.fetch_with(&options).await.unwrap();
    assert_eq!(got.len(), 1);
    got[0].double_ack().await.unwrap();
    let first_pin = a.pin_id().expect("pinned after the first message");
    let info = a.context().consumer_info(&name, "q").await.unwrap();
    assert_eq!(
        info.priority_groups[0].pinned_client_id.as_deref(),
        Some(first_pin.as_str())
    );

    // While A is pinned, B (another connection) gets nothing.
    let js_b = connect(&server).await;
    let b = js_b.get_consumer(&name, "q").await.unwrap();
    js.publish(&subject, "two").await.unwrap();
    let none = b
        .fetch_with(&FetchOptions {
            expires: Duration::from_millis(500),
            ..options.clone()
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    a.unpin(GROUP).await.unwrap();
    let info = a.context().consumer_info(&name, "q").await.unwrap();
    assert!(info.priority_groups[0].pinned_client_id.is_none());

    // A still carries its old pin: the server answers 423, A drops it and pulls again.
    let got = a.fetch_with(&options).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].payload[..], b"two");
    let second_pin = a.pin_id().expect("pinned again");
    assert_ne!(second_pin, first_pin);
}

/// Without a group in the options, a consume on a consumer with priority groups pulls in its
/// first group (the server refuses pulls without one).
#[tokio::test]
async fn consume_uses_the_consumers_group_by_default() {
    let (_server, js) = setup().await;
    let name = unique("DEFGRP");
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let c = stream
        .create_consumer(pinned("q", Duration::from_secs(30)))
        .await
        .unwrap();
    js.publish(&format!("{}.q", name.to_lowercase()), "x")
        .await
        .unwrap();
    let mut messages = c
        .consume(ConsumeOptions {
            expires: Duration::from_secs(5),
            ..ConsumeOptions::default()
        })
        .await
        .unwrap();
    let m = within(10, "message", next_msg(&mut messages)).await;
    assert_eq!(&m.payload[..], b"x");
    assert!(c.pin_id().is_some());
}

/// A consuming pinned client pulls again well inside `priority_timeout`, so it keeps its pin
/// for several timeouts, also while the application does not poll its stream (busy with a
/// message), and a standby stays idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consuming_client_keeps_its_pin_past_priority_timeout() {
    let (server, js) = setup().await;
    let name = unique("KEEP");
    let subject = format!("{}.q", name.to_lowercase());
    let stream = js.create_stream(memory_stream(&name)).await.unwrap();
    let a = stream
        .create_consumer(pinned("q", Duration::from_secs(2)))
        .await
        .unwrap();
    let mut from_a = a.messages().await.unwrap();
    js.publish(&subject, "m1").await.unwrap();
    within(10, "A gets m1", next_msg(&mut from_a))
        .await
        .double_ack()
        .await
        .unwrap();
    let pin = a.pin_id().expect("A is pinned");

    let js_b = connect(&server).await;
    let b = js_b.get_consumer(&name, "q").await.unwrap();
    let mut from_b = b.messages().await.unwrap();
    // Two and a half priority timeouts without polling A's stream: the time passing is what
    // is under test.
    tokio::time::sleep(Duration::from_secs(5)).await;
    js.publish(&subject, "m2").await.unwrap();
    let m = within(10, "A gets m2", next_msg(&mut from_a)).await;
    assert_eq!(&m.payload[..], b"m2");
    m.double_ack().await.unwrap();
    assert_eq!(a.pin_id().as_deref(), Some(pin.as_str()));
    let early = tokio::time::timeout(Duration::from_millis(500), next_msg(&mut from_b)).await;
    assert!(early.is_err(), "B received while A was pinned");
}
