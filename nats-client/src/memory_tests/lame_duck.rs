//! Lame-duck moves against scripted servers: the races fixed in the move's history (a stale
//! PONG taken for the retirement's, the old server's PING answered mid-stream, a cut op at the
//! switch, a PONG owed to the old server, the new connection lost mid-move).

use std::time::Duration;

use futures::StreamExt;
use nats_proto::{ClientOp, ServerOp};

use super::{connect, is_sub, options};
use crate::memory::{FakeConn, FakeServer, MemoryNet, info};
use crate::{Client, ConnectOptions, Subscriber};

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
    enter_lame_duck(&mut c1, "s1").await;
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
    let (mut c1, client, _sub) = joined_s1(&mut s1, options(&net), &["s1:4222", "s2:4222"]).await;
    let payload = vec![b'z'; 1000];
    client.publish("big", &payload).await.expect("buffered");
    tokio::time::sleep(Duration::from_millis(10)).await;
    enter_lame_duck(&mut c1, "s1").await;
    let (go, mut ops, old) = serve_old(c1);
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

/// Puts the server behind `conn` (named `name`) into lame-duck mode: an INFO with `ldm`.
/// Connects with `opts` to `urls`, joins through `s1`, and subscribes to `a`; `s1` has read
/// the SUB.
async fn joined_s1(
    s1: &mut FakeServer,
    opts: ConnectOptions,
    urls: &[&str],
) -> (FakeConn, Client, Subscriber) {
    let pending = connect(opts, urls);
    let mut c1 = s1.accept_client(&info("s1")).await;
    let client = pending.await.expect("joined").expect("connected");
    let sub = client.subscribe("a").await.expect("subscribed");
    assert!(is_sub(&c1.next_op().await.expect("SUB"), "a"));
    (c1, client, sub)
}

async fn enter_lame_duck(conn: &mut FakeConn, name: &str) {
    let mut ldm = info(name);
    ldm.ldm = true;
    conn.send(ServerOp::Info(Box::new(ldm))).await;
}

/// The old server from the moment `go` fires: reads every op (a malformed one fails the
/// test), answers PINGs and passes each op on.
fn serve_old(
    mut conn: FakeConn,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::mpsc::UnboundedReceiver<ClientOp>,
    tokio::task::JoinHandle<()>,
) {
    let (go, gate) = tokio::sync::oneshot::channel::<()>();
    let (ops_tx, ops) = tokio::sync::mpsc::unbounded_channel();
    let old = tokio::spawn(async move {
        let _ = gate.await;
        while let Some(op) = conn.next_op().await {
            if op == ClientOp::Ping {
                conn.send(ServerOp::Pong).await;
            }
            let _ = ops_tx.send(op);
        }
    });
    (go, ops, old)
}

/// Reads the new connection's ops, answering its PINGs, until the probe subscription's SUB is
/// proven by a PONG; returns the probe (subject, sid) and the other ops read.
async fn until_probe_proven(conn: &mut FakeConn) -> ((String, u64), Vec<ClientOp>) {
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
    let (mut c1, _client, mut sub) =
        joined_s1(&mut s1, options(&net), &["s1:4222", "s2:4222", "s3:4222"]).await;
    // s1 takes nobody new; it announces lame duck.
    drop(s1);
    enter_lame_duck(&mut c1, "s1").await;
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

#[tokio::test(start_paused = true)]
async fn a_pong_owed_to_the_old_server_at_the_move_goes_to_it_not_to_the_new_one() {
    // A pipe of 64 bytes and an old server that reads nothing until the move: the client's
    // answer to the old server's PING is stuck behind a cut 1000-byte PUB at the handoff.
    let net = MemoryNet::new(64);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let (mut c1, client, _sub) = joined_s1(&mut s1, options(&net), &["s1:4222", "s2:4222"]).await;
    client
        .publish("big", vec![b'z'; 1000])
        .await
        .expect("buffered");
    tokio::time::sleep(Duration::from_millis(10)).await;
    c1.send(ServerOp::Ping).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    enter_lame_duck(&mut c1, "s1").await;
    let (go, mut ops, old) = serve_old(c1);
    let mut c2 = s2.accept_client(&info("s2")).await;
    let _ = go.send(());
    let (probe, mut on_new) = until_probe_proven(&mut c2).await;
    assert!(
        matches!(ops.recv().await, Some(ClientOp::Pub { subject, .. }) if subject == "big"),
        "the cut PUB is completed on the old connection first"
    );
    assert_eq!(
        ops.recv().await,
        Some(ClientOp::Pong),
        "then the PONG owed to the old server"
    );
    loop {
        match ops.recv().await.expect("the old connection reads on") {
            ClientOp::Pub { subject, .. } if subject == probe.0 => break,
            op => assert!(!matches!(op, ClientOp::Unsub { .. }), "{op:?}"),
        }
    }
    c2.send_msg(&probe.0, probe.1, b"").await;
    while ops.recv().await.is_some() {} // UNSUBs, PING: the old connection retires
    old.await
        .expect("the old server's reads were all well-framed");
    let flusher = client.clone();
    let flush = tokio::spawn(async move { flusher.flush().await });
    loop {
        match c2.next_op().await.expect("the new connection stays") {
            ClientOp::Ping => {
                c2.send(ServerOp::Pong).await;
                tokio::task::yield_now().await;
                if flush.is_finished() {
                    break;
                }
            }
            op => on_new.push(op),
        }
    }
    assert!(
        !on_new.contains(&ClientOp::Pong),
        "the new server got the old one's PONG: {on_new:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cut_op_that_cannot_be_completed_at_the_move_goes_whole_to_the_new_server() {
    // The old server stops reading for good inside a 1000-byte PUB, then announces lame
    // duck: completing the op there times out, so the op goes whole to the new server and
    // nothing more is ever written to the old connection, which still delivers.
    let net = MemoryNet::new(64);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let (mut c1, client, mut sub) =
        joined_s1(&mut s1, options(&net), &["s1:4222", "s2:4222"]).await;
    let payload = vec![b'z'; 1000];
    client.publish("big", &payload).await.expect("buffered");
    tokio::time::sleep(Duration::from_millis(10)).await;
    enter_lame_duck(&mut c1, "s1").await;
    let mut c2 = s2.accept_client(&info("s2")).await;
    let (_probe, on_new) = until_probe_proven(&mut c2).await;
    let whole = on_new.iter().any(|op| {
        matches!(op, ClientOp::Pub { subject, payload: got, .. }
            if subject == "big" && got[..] == payload[..])
    });
    assert!(whole, "the PUB goes whole to the new server: {on_new:?}");
    // The stranded old connection still delivers.
    c1.send_msg("a", 1, b"from the old server").await;
    let msg = tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("delivered")
        .expect("a message");
    assert_eq!(&msg.payload[..], b"from the old server");
    // Everything the old server can read is the start of that PUB: no UNSUB, no PONG, no
    // probe was spliced into it.
    let seen = c1.read_for(Duration::from_secs(1)).await;
    assert!(seen.len() < 1000, "{} bytes", seen.len());
    assert!(
        b"PUB big 1000\r\n"
            .iter()
            .chain(payload.iter())
            .zip(seen.iter())
            .all(|(a, b)| a == b),
        "{seen:?}"
    );
    drop(c1);
    assert_eq!(client.connection_state(), crate::State::Connected);
}

#[tokio::test(start_paused = true)]
async fn a_long_reconnect_mid_move_never_unsubscribes_the_old_connection_meanwhile() {
    let net = MemoryNet::new(64 * 1024);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let opts = options(&net).reconnect_delay_callback(|_| Duration::from_secs(1));
    let (mut c1, _client, mut sub) =
        joined_s1(&mut s1, opts, &["s1:4222", "s2:4222", "s3:4222"]).await;
    drop(s1);
    enter_lame_duck(&mut c1, "s1").await;
    // The move gets as far as probing the old server; then the new server dies, and no
    // server takes the client for ten seconds (well past the probe's 3 s).
    let mut c2 = s2.accept_client(&info("s2")).await;
    let (probe, _) = until_probe_proven(&mut c2).await;
    c1.until(|op| matches!(op, ClientOp::Pub { subject, .. } if *subject == probe.0))
        .await;
    drop(s2);
    drop(c2);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let meanwhile = c1.read_for(Duration::from_millis(1)).await;
    let text = String::from_utf8_lossy(&meanwhile);
    assert!(!text.contains("UNSUB"), "{text}");
    c1.send_msg("a", 1, b"still delivering").await;
    let msg = tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("the old connection still delivers")
        .expect("a message");
    assert_eq!(&msg.payload[..], b"still delivering");
    // A server comes back; the move completes through it.
    let mut s3 = net.listen("s3:4222");
    let mut c3 = s3.accept_client(&info("s3")).await;
    let (probe, _) = until_probe_proven(&mut c3).await;
    c1.until(|op| matches!(op, ClientOp::Pub { subject, .. } if *subject == probe.0))
        .await;
    c3.send_msg(&probe.0, probe.1, b"").await;
    let retiring = c1.until(|op| *op == ClientOp::Ping).await;
    assert!(
        retiring.contains(&ClientOp::Unsub { sid: 1, max: None }),
        "{retiring:?}"
    );
    c1.send(ServerOp::Pong).await;
    assert!(c1.closed_by_client().await, "the old connection is retired");
}

#[tokio::test(start_paused = true)]
async fn a_second_move_while_the_first_retirement_runs_keeps_both_old_connections() {
    let net = MemoryNet::new(64 * 1024);
    let mut s1 = net.listen("s1:4222");
    let mut s2 = net.listen("s2:4222");
    let mut s3 = net.listen("s3:4222");
    let (mut c1, _client, mut sub) =
        joined_s1(&mut s1, options(&net), &["s1:4222", "s2:4222", "s3:4222"]).await;
    drop(s1);
    enter_lame_duck(&mut c1, "s1").await;
    let mut c2 = s2.accept_client(&info("s2")).await;
    let (probe1, _) = until_probe_proven(&mut c2).await;
    // s2 goes into lame duck too before s1's retirement is done.
    drop(s2);
    enter_lame_duck(&mut c2, "s2").await;
    let mut c3 = s3.accept_client(&info("s3")).await;
    let (probe2, on_new) = until_probe_proven(&mut c3).await;
    assert_ne!(probe1, probe2);
    assert!(on_new.iter().any(|op| is_sub(op, "a")), "{on_new:?}");
    // Both old connections still deliver.
    c1.send_msg("a", 1, b"from s1").await;
    c2.send_msg("a", 1, b"from s2").await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let msg = tokio::time::timeout(Duration::from_secs(1), sub.next())
            .await
            .expect("delivered")
            .expect("a message");
        got.push(msg.payload);
    }
    got.sort();
    assert_eq!(got, vec![&b"from s1"[..], &b"from s2"[..]]);
    // Each retirement completes through s3 on its own probe.
    for (conn, probe) in [(&mut c1, &probe1), (&mut c2, &probe2)] {
        conn.until(|op| matches!(op, ClientOp::Pub { subject, .. } if *subject == probe.0))
            .await;
        c3.send_msg(&probe.0, probe.1, b"").await;
        let retiring = conn.until(|op| *op == ClientOp::Ping).await;
        assert!(
            retiring.contains(&ClientOp::Unsub { sid: 1, max: None }),
            "{retiring:?}"
        );
        conn.send(ServerOp::Pong).await;
        assert!(conn.closed_by_client().await, "retired");
    }
    c3.send_msg("a", 1, b"s3").await;
    let msg = tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("delivered")
        .expect("a message");
    assert_eq!(&msg.payload[..], b"s3");
}
