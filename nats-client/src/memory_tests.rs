//! The connection session against scripted servers over in-memory pipes (see `crate::memory`),
//! under tokio's paused clock: every order of events here is chosen by the test, not by luck.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nats_proto::{ClientOp, ServerOp};
use tokio::time::Instant;

use crate::addr::ServerAddr;
use crate::client::Client;
use crate::events::{DisconnectReason, Event};
use crate::memory::{MemoryNet, info};
use crate::options::ConnectOptions;

fn options(net: &Arc<MemoryNet>) -> ConnectOptions {
    let mut opts = ConnectOptions::new()
        .no_randomize()
        .ignore_discovered_servers()
        .lame_duck_jitter(Duration::ZERO)
        .reconnect_delay_callback(|_| Duration::from_millis(10));
    opts.memory = Some(net.clone());
    opts
}

/// Starts connecting (the caller plays the server's side of the handshake meanwhile).
fn connect(
    opts: ConnectOptions,
    servers: &[&str],
) -> tokio::task::JoinHandle<Result<Client, crate::error::ConnectError>> {
    let addrs: Vec<ServerAddr> = servers
        .iter()
        .map(|s| ServerAddr::parse(&format!("nats://{s}")).expect("valid address"))
        .collect();
    tokio::spawn(Client::connect_with(addrs, opts))
}

fn is_sub(op: &ClientOp, subject: &str) -> bool {
    matches!(op, ClientOp::Sub { subject: s, .. } if s == subject)
}

mod lame_duck;

#[tokio::test(start_paused = true)]
async fn a_flush_sent_before_a_loss_is_proven_by_the_next_server() {
    let net = MemoryNet::new(64 * 1024);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let pending = connect(options(&net), &["s1:4222", "s2:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let mut events = client.events();
    let mut sub = client.subscribe("a").await.expect("subscribed");
    client.publish("a", "x").await.expect("buffered");
    let flusher = client.clone();
    let flush = tokio::spawn(async move { flusher.flush().await });
    let before = c1.until(|op| *op == ClientOp::Ping).await;
    assert!(is_sub(&before[0], "a"));
    assert!(matches!(&before[1], ClientOp::Pub { subject, .. } if subject == "a"));
    // The server dies without answering the flush's PING (and s1 takes nobody back).
    drop(s1);
    drop(c1);
    let mut c2 = s2.accept_client(&info("s2")).await;
    let resent = c2.until(|op| *op == ClientOp::Ping).await;
    assert_eq!(
        resent.len(),
        1,
        "only the SUB again (the PUB was delivered): {resent:?}"
    );
    assert!(is_sub(&resent[0], "a"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !flush.is_finished(),
        "a flush is proven by a PONG, not by reconnecting"
    );
    c2.send(ServerOp::Pong).await;
    flush.await.expect("joined").expect("flushed");
    c2.send_msg("a", 1, b"after").await;
    let msg = sub.next().await.expect("a message");
    assert_eq!(&msg.payload[..], b"after");
    let mut saw_reconnect = false;
    while let Ok(e) = events.try_recv() {
        saw_reconnect |= matches!(e, Event::Reconnected { .. });
    }
    assert!(saw_reconnect);
}

#[tokio::test(start_paused = true)]
async fn unanswered_pings_end_the_connection_after_max_pings_out() {
    let net = MemoryNet::new(64 * 1024);
    let mut s1 = net.listen("s1:4222");
    let opts = options(&net)
        .ping_interval(Duration::from_secs(1))
        .max_pings_out(2);
    let pending = connect(opts, &["s1:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let mut events = client.events();
    let start = Instant::now();
    for _ in 0..2 {
        assert_eq!(c1.next_op().await, Some(ClientOp::Ping));
    }
    // Never answered: the third tick finds two PINGs out and gives up.
    assert_eq!(c1.next_op().await, None, "the client drops the connection");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    let reason = loop {
        match events.recv().await.expect("events") {
            Event::Disconnected { reason, .. } => break reason,
            _ => continue,
        }
    };
    assert!(
        matches!(reason, DisconnectReason::PingTimeout { unanswered: 2 }),
        "{reason:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn answered_pings_keep_the_connection() {
    let net = MemoryNet::new(64 * 1024);
    let mut s1 = net.listen("s1:4222");
    let opts = options(&net)
        .ping_interval(Duration::from_secs(1))
        .max_pings_out(1);
    let pending = connect(opts, &["s1:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    for _ in 0..5 {
        assert_eq!(c1.next_op().await, Some(ClientOp::Ping));
        c1.send(ServerOp::Pong).await;
    }
    assert_eq!(client.connection_state(), crate::State::Connected);
}

#[tokio::test(start_paused = true)]
async fn a_publish_cut_by_a_loss_is_sent_whole_on_the_next_connection() {
    // A pipe of 64 bytes: the writer is stopped inside the 1000-byte PUB.
    let net = MemoryNet::new(64);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let pending = connect(options(&net), &["s1:4222", "s2:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let payload = vec![b'z'; 1000];
    client.publish("big", &payload).await.expect("buffered");
    let head = c1.read_raw(100).await;
    assert!(head.starts_with(b"PUB big 1000\r\n"), "{head:?}");
    drop(s1);
    drop(c1);
    let mut c2 = s2.accept_client(&info("s2")).await;
    match c2.next_op().await {
        Some(ClientOp::Pub {
            subject,
            payload: got,
            ..
        }) => {
            assert_eq!(subject, "big");
            assert_eq!(&got[..], &payload[..], "the cut PUB arrives whole");
        }
        other => panic!("expected the PUB again, got {other:?}"),
    }
    client.flush_timeout(Duration::from_secs(1)).await.ok();
}

#[tokio::test(start_paused = true)]
async fn a_stalled_write_ends_in_a_ping_timeout_and_the_op_goes_whole_to_the_next_server() {
    // The server stops reading inside a 1000-byte PUB: the keep-alive PINGs never go out,
    // so none is answered.
    let net = MemoryNet::new(64);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let opts = options(&net)
        .ping_interval(Duration::from_secs(1))
        .max_pings_out(2);
    let pending = connect(opts, &["s1:4222", "s2:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let mut events = client.events();
    let start = Instant::now();
    let payload = vec![b'z'; 1000];
    client.publish("big", &payload).await.expect("buffered");
    let head = c1.read_raw(10).await;
    assert_eq!(&head[..], b"PUB big 10");
    drop(s1);
    let mut c2 = s2.accept_client(&info("s2")).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    let reason = loop {
        match events.recv().await.expect("events") {
            Event::Disconnected { reason, .. } => break reason,
            _ => continue,
        }
    };
    assert!(
        matches!(reason, DisconnectReason::PingTimeout { unanswered: 2 }),
        "{reason:?}"
    );
    match c2.next_op().await {
        Some(ClientOp::Pub {
            subject,
            payload: got,
            ..
        }) => {
            assert_eq!(subject, "big");
            assert_eq!(&got[..], &payload[..], "the stalled PUB arrives whole");
        }
        other => panic!("expected the PUB again, got {other:?}"),
    }
    drop(c1);
}
