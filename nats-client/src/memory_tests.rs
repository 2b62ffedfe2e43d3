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
async fn lame_duck_move_skips_a_stale_pong_and_answers_the_old_servers_ping() {
    let net = MemoryNet::new(64 * 1024);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let pending = connect(options(&net), &["s1:4222", "s2:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let mut sub = client.subscribe("a").await.expect("subscribed");
    let flusher = client.clone();
    let flush = tokio::spawn(async move { flusher.flush().await });
    c1.until(|op| *op == ClientOp::Ping).await;
    // The old server holds that PONG back, and announces lame duck.
    let mut ldm = info("s1");
    ldm.ldm = true;
    c1.send(ServerOp::Info(Box::new(ldm))).await;
    let mut c2 = s2.accept_client(&info("s2")).await;
    // The re-sent SUBs, the probe's SUB and PINGs (the requeued flush's, the probe's) in
    // whichever order the writer takes them: answer every PING until the probe's is answered.
    let mut subs = Vec::new();
    let mut probe = None;
    loop {
        match c2.next_op().await.expect("the new connection stays") {
            ClientOp::Ping => {
                c2.send(ServerOp::Pong).await;
                if probe.is_some() {
                    break;
                }
            }
            ClientOp::Sub { subject, sid, .. } if subject.ends_with(".ldm") => {
                probe = Some((subject, sid));
            }
            op => subs.push(op),
        }
    }
    let probe = probe.expect("a probe subscription on the new server");
    assert!(subs.iter().any(|op| is_sub(op, "a")), "{subs:?}");
    flush
        .await
        .expect("joined")
        .expect("the flush rides the new server's PING");
    // The probe comes to the old server; nothing is unsubscribed there before it came back.
    let before_probe = c1
        .until(|op| matches!(op, ClientOp::Pub { subject, .. } if *subject == probe.0))
        .await;
    assert!(
        !before_probe
            .iter()
            .any(|op| matches!(op, ClientOp::Unsub { .. })),
        "{before_probe:?}"
    );
    // The old server PINGs us meanwhile: the answer must come before anything else is
    // written there (reading the old connection never writes; the next write carries it).
    c1.send(ServerOp::Ping).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    c2.send_msg(&probe.0, probe.1, b"").await;
    let retiring = c1.until(|op| *op == ClientOp::Ping).await;
    let unsub = retiring
        .iter()
        .position(|op| *op == ClientOp::Unsub { sid: 1, max: None })
        .unwrap_or_else(|| panic!("no UNSUB of the subscription: {retiring:?}"));
    let pong = retiring
        .iter()
        .position(|op| *op == ClientOp::Pong)
        .unwrap_or_else(|| panic!("the old server's PING was not answered: {retiring:?}"));
    assert!(pong < unsub, "{retiring:?}");
    // First the stale PONG (the flush's), then a message still in flight, then the PONG
    // that answers the retirement: the message must not be lost.
    c1.send(ServerOp::Pong).await;
    c1.send_msg("a", 1, b"in flight").await;
    c1.send(ServerOp::Pong).await;
    let msg = tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("delivered")
        .expect("a message");
    assert_eq!(&msg.payload[..], b"in flight");
    assert!(c1.closed_by_client().await, "the old connection is closed");
}

#[tokio::test(start_paused = true)]
async fn lame_duck_move_completes_a_cut_publish_on_the_old_connection_only() {
    // A pipe of 64 bytes, and an old server that reads nothing until the move: the writer is
    // stopped inside the 1000-byte PUB when the handoff happens.
    let net = MemoryNet::new(64);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let pending = connect(options(&net), &["s1:4222", "s2:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let _sub = client.subscribe("a").await.expect("subscribed");
    assert!(is_sub(&c1.next_op().await.expect("SUB"), "a"));
    let payload = vec![b'z'; 1000];
    client.publish("big", &payload).await.expect("buffered");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut ldm = info("s1");
    ldm.ldm = true;
    c1.send(ServerOp::Info(Box::new(ldm))).await;
    // The old server, from now on: reads every op (a malformed one fails the test) and
    // answers PINGs.
    let (go, gate) = tokio::sync::oneshot::channel::<()>();
    let (ops_tx, mut ops) = tokio::sync::mpsc::unbounded_channel();
    let old = tokio::spawn(async move {
        let _ = gate.await;
        while let Some(op) = c1.next_op().await {
            if op == ClientOp::Ping {
                c1.send(ServerOp::Pong).await;
            }
            let _ = ops_tx.send(op);
        }
    });
    let mut c2 = s2.accept_client(&info("s2")).await;
    let _ = go.send(());
    let mut probe = None;
    let mut on_new = Vec::new();
    loop {
        match c2.next_op().await.expect("the new connection stays") {
            ClientOp::Ping => {
                c2.send(ServerOp::Pong).await;
                if probe.is_some() {
                    break; // the probe's SUB is proven
                }
            }
            ClientOp::Sub { subject, sid, .. } if subject.ends_with(".ldm") => {
                probe = Some((subject, sid));
            }
            op => on_new.push(op),
        }
    }
    let (probe_subject, probe_sid) = probe.expect("a probe");
    let first = ops.recv().await.expect("the old server reads on");
    match first {
        ClientOp::Pub {
            subject,
            payload: got,
            ..
        } => {
            assert_eq!(subject, "big");
            assert_eq!(&got[..], &payload[..], "the cut PUB is completed there");
        }
        other => panic!("expected the rest of the PUB first, got {other:?}"),
    }
    // The probe reaches the old server; it comes back through the new one.
    loop {
        let Some(op) = ops.recv().await else {
            let end = old.await;
            panic!("the old connection ended before the probe: {end:?}");
        };
        match op {
            ClientOp::Pub { subject, .. } if subject == probe_subject => break,
            op => assert!(!matches!(op, ClientOp::Unsub { .. }), "{op:?}"),
        }
    }
    c2.send_msg(&probe_subject, probe_sid, b"").await;
    let mut unsubs = Vec::new();
    loop {
        match ops.recv().await {
            Some(ClientOp::Unsub { sid, .. }) => unsubs.push(sid),
            Some(_) => {}
            None => break, // the client closed the old connection
        }
    }
    assert!(unsubs.contains(&1), "{unsubs:?}");
    old.await
        .expect("the old server's reads were all well-framed");
    // Nothing of the completed PUB went to the new server.
    let flusher = client.clone();
    let flush = tokio::spawn(async move { flusher.flush().await });
    loop {
        match c2.next_op().await.expect("the new connection stays") {
            ClientOp::Ping => {
                c2.send(ServerOp::Pong).await;
                if flush.is_finished() {
                    break;
                }
                tokio::task::yield_now().await;
                if flush.is_finished() {
                    break;
                }
            }
            op => on_new.push(op),
        }
    }
    assert!(
        !on_new
            .iter()
            .any(|op| matches!(op, ClientOp::Pub { subject, .. } if subject == "big")),
        "the PUB completed on the old server was sent again: {on_new:?}"
    );
}

/// Reads the new connection's ops, answering its PINGs, until the probe subscription's SUB is
/// proven by a PONG; returns the probe (subject, sid) and the other ops read.
async fn until_probe_proven(conn: &mut crate::memory::FakeConn) -> ((String, u64), Vec<ClientOp>) {
    let mut probe = None;
    let mut others = Vec::new();
    loop {
        match conn.next_op().await.expect("the new connection stays") {
            ClientOp::Ping => {
                conn.send(ServerOp::Pong).await;
                if let Some(probe) = probe.take() {
                    return (probe, others);
                }
            }
            ClientOp::Sub { subject, sid, .. } if subject.ends_with(".ldm") => {
                probe = Some((subject, sid));
            }
            op => others.push(op),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn losing_the_new_connection_during_a_lame_duck_move_keeps_the_old_one() {
    let net = MemoryNet::new(64 * 1024);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let mut s3 = net.listen("s3:4222");
    let pending = connect(options(&net), &["s1:4222", "s2:4222", "s3:4222"]);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let mut sub = client.subscribe("a").await.expect("subscribed");
    assert!(is_sub(&c1.next_op().await.expect("SUB"), "a"));
    // s1 takes nobody new; it announces lame duck.
    drop(s1);
    let mut ldm = info("s1");
    ldm.ldm = true;
    c1.send(ServerOp::Info(Box::new(ldm))).await;
    // The move starts on s2, which dies before it proved anything.
    let mut c2 = s2.accept_client(&info("s2")).await;
    c2.until(|op| matches!(op, ClientOp::Sub { subject, .. } if subject.ends_with(".ldm")))
        .await;
    drop(s2);
    drop(c2);
    tokio::time::sleep(Duration::from_millis(1)).await;
    // The old connection is healthy: it still delivers.
    c1.send_msg("a", 1, b"still here").await;
    let msg = tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("the old connection still delivers")
        .expect("a message");
    assert_eq!(&msg.payload[..], b"still here");
    // The client reconnects to s3 and the move goes on from there.
    let mut c3 = s3.accept_client(&info("s3")).await;
    let (probe, on_new) = until_probe_proven(&mut c3).await;
    assert!(on_new.iter().any(|op| is_sub(op, "a")), "{on_new:?}");
    let before_probe = c1
        .until(|op| matches!(op, ClientOp::Pub { subject, .. } if *subject == probe.0))
        .await;
    assert!(
        !before_probe
            .iter()
            .any(|op| matches!(op, ClientOp::Unsub { .. })),
        "{before_probe:?}"
    );
    c3.send_msg(&probe.0, probe.1, b"").await;
    let retiring = c1.until(|op| *op == ClientOp::Ping).await;
    assert!(
        retiring.contains(&ClientOp::Unsub { sid: 1, max: None }),
        "{retiring:?}"
    );
    c1.send(ServerOp::Pong).await;
    assert!(c1.closed_by_client().await, "the old connection is retired");
    c3.send_msg("a", 1, b"new").await;
    let msg = tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("delivered")
        .expect("a message");
    assert_eq!(&msg.payload[..], b"new");
}
