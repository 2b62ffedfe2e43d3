//! The async publisher across a change of the stream's leader, on a 3-node cluster with an R3
//! stream: publishes with a msg id are resent when the connection drops or a
//! `LEADER_ELECTED` advisory arrives, and retried through the election with backoff; every
//! message confirmed is stored exactly once and no error reaches the application. Publishes
//! sent `at_least_once` (no id) are resent alike: every one is confirmed and stored, some
//! maybe twice.
//!
//! The figure printed is the producer's stall: the longest time between two consecutive acks
//! while publishing goes on at a steady rate across the leader's loss.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::within;
use jetstream::{Context, PublishAckFuture, PublishOptions, StreamConfig};
use nats_tests::Cluster;
use tokio::sync::mpsc;
use tokio::task::spawn_blocking;
use tokio::time::Instant;

/// The publisher's ack timeout.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// What the cluster does to the stream's leader.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// SIGKILL: the followers elect a new leader after the raft election timeout.
    Crash,
    /// SIGTERM: the leader hands over before it exits.
    Stop,
}

/// How a message survives a resend.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Resend {
    /// A msg id: stored exactly once.
    MsgId,
    /// `at_least_once`, no id: stored once or more.
    AtLeastOnce,
}

/// How many messages were confirmed, and the producer's stall.
struct Outcome {
    confirmed: usize,
    stall: Duration,
}

async fn admin(cluster: &Cluster) -> Context {
    let client = nats_client::ConnectOptions::new()
        .connect(&cluster.urls())
        .await
        .unwrap();
    jetstream::new(client)
}

/// Publishes `n` with a msg id `m{n}` as payload `n` to `pr.data` on a steady beat, loses the
/// stream's leader after one second, goes on for `after` seconds, then checks the stream.
/// `on_leader`: the publisher's connection is to the leader's node (else to another one).
async fn publish_across(
    loss: Loss,
    on_leader: bool,
    retry_for: Duration,
    after: u64,
    resend: Resend,
) -> Outcome {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let admin = admin(&cluster).await;
    let mut stream = within(30, "R3 stream", async {
        loop {
            let config = StreamConfig {
                num_replicas: 3,
                ..StreamConfig::new("PR", ["pr.>"])
            };
            match admin.create_stream(config).await {
                Ok(s) => return s,
                Err(e) => {
                    eprintln!("create stream: {e}; again");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    })
    .await;
    let leader = stream
        .cached_info()
        .cluster
        .clone()
        .unwrap()
        .leader
        .unwrap();
    let leader: usize = leader.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    let home = if on_leader { leader } else { (leader + 1) % 3 };
    let mut urls = vec![cluster.node(home).url()];
    urls.extend((0..3).filter(|i| *i != home).map(|i| cluster.node(i).url()));
    let client = nats_client::ConnectOptions::new()
        .no_randomize()
        .connect(&urls)
        .await
        .unwrap();
    // An ack timeout far above the election: only the resends on a lost connection or a
    // leader change keep the stall near the election's length.
    let js = jetstream::new(client)
        .with_timeout(ACK_TIMEOUT)
        .with_publish_window(512)
        .with_publish_retry_for(retry_for);

    // The acks are awaited in order by a task of their own, which notes when each came.
    let (tx, mut rx) = mpsc::channel::<(u64, PublishAckFuture)>(100_000);
    let collector = tokio::spawn(async move {
        let mut confirmed = Vec::new();
        let mut errors = Vec::new();
        let mut last = None::<Instant>;
        let mut stall = Duration::ZERO;
        while let Some((n, mut ack)) = rx.recv().await {
            let result = loop {
                match tokio::time::timeout(Duration::from_secs(5), &mut ack).await {
                    Ok(result) => break result,
                    Err(_) => eprintln!("still waiting for the ack of {n}: {ack:?}"),
                }
            };
            match result {
                Ok(_) => {
                    let now = Instant::now();
                    if let Some(last) = last {
                        stall = stall.max(now - last);
                    }
                    last = Some(now);
                    confirmed.push(n);
                }
                Err(e) => errors.push(format!("message {n}: {e}")),
            }
        }
        (confirmed, errors, stall)
    });

    let start = Instant::now();
    let mut cluster = Some(cluster);
    let mut lost = None;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1 + after) {
        for _ in 0..10 {
            let opts = match resend {
                Resend::MsgId => PublishOptions::new().msg_id(format!("m{n}")),
                Resend::AtLeastOnce => PublishOptions::new().at_least_once(),
            };
            let ack = js
                .publish_async_with("pr.data", n.to_string(), &opts)
                .await
                .unwrap_or_else(|e| panic!("publish {n}: {e}"));
            tx.send((n, ack)).await.unwrap();
            n += 1;
        }
        if start.elapsed() > Duration::from_secs(1)
            && let Some(mut cluster) = cluster.take()
        {
            lost = Some(spawn_blocking(move || {
                match loss {
                    Loss::Crash => cluster.kill_node(leader),
                    Loss::Stop => cluster.stop_node(leader),
                }
                cluster
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "published {n} in {:?}; {} acks pending",
        start.elapsed(),
        js.pending_acks()
    );
    drop(tx);
    let (confirmed, errors, stall) = within(60, "every ack", collector).await.unwrap();
    let _cluster = lost.unwrap().await.unwrap();
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(confirmed.len() as u64, n, "every publish confirmed");

    // Every confirmed message is in the stream exactly once (at least once without an id).
    let state = within(30, "stream info", async {
        loop {
            match stream.info().await {
                Ok(info) => return info.state.clone(),
                Err(e) => eprintln!("stream info: {e}; again"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for seq in state.first_seq..=state.last_seq {
        let m = js.get_message("PR", seq).await.unwrap();
        let v: u64 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
        *seen.entry(v).or_default() += 1;
    }
    assert!(
        seen.keys().all(|v| *v < n),
        "nothing but the messages published"
    );
    let twice = seen.values().filter(|c| **c > 1).count();
    for i in &confirmed {
        match resend {
            Resend::MsgId => assert_eq!(seen.get(i), Some(&1), "message {i} stored once"),
            Resend::AtLeastOnce => assert!(seen.contains_key(i), "message {i} stored"),
        }
    }
    if resend == Resend::MsgId {
        assert_eq!(state.messages, n, "each message stored once");
    }
    eprintln!("{resend:?}: {twice} messages stored more than once");
    eprintln!(
        "{loss:?} of the stream leader (publisher on the leader's node: {on_leader}): \
         {n} messages confirmed, producer stall {stall:?}"
    );
    Outcome {
        confirmed: confirmed.len(),
        stall,
    }
}

/// A graceful stop of the leader's node, the publisher connected to it: its acks fail with
/// the connection, the messages are resent on the next one, the handover is short, and the
/// default bound (2 s) rides it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_publishes_survive_the_leaders_node_stopping() {
    let out = publish_across(
        Loss::Stop,
        true,
        jetstream::DEFAULT_PUBLISH_RETRY_FOR,
        4,
        Resend::MsgId,
    )
    .await;
    assert!(out.confirmed > 0);
    eprintln!("stall across a handover: {:?}", out.stall);
}

/// A crash of the leader's node while the publisher stays connected to another one: the acks
/// in flight to the dead leader never come; the advisory of the new leader resends them
/// without waiting for the ack timeout. A crash election lasts the raft election timeout
/// (about 5 s), so the bound is raised above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_publishes_survive_the_leaders_crash() {
    let out = publish_across(
        Loss::Crash,
        false,
        Duration::from_secs(20),
        10,
        Resend::MsgId,
    )
    .await;
    assert!(out.confirmed > 0);
    eprintln!("stall across a crash election: {:?}", out.stall);
    // Without the resend on the advisory the acks in flight to the dead leader would wait out
    // their timeout (30 s); the election takes about 5 s (loose bound for a loaded machine).
    assert!(out.stall < ACK_TIMEOUT * 2 / 3, "stalled {:?}", out.stall);
}

/// A crash of the node the publisher is connected to, which leads the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_publishes_survive_a_crash_of_their_own_node() {
    let out = publish_across(
        Loss::Crash,
        true,
        Duration::from_secs(20),
        10,
        Resend::MsgId,
    )
    .await;
    assert!(out.confirmed > 0);
}

/// The leader's crash again, publishing `at_least_once` without ids: the acks in flight to the
/// dead leader are resent on the advisory as with ids, so no publish fails and none is lost
/// (a copy the old leader stored before it died is stored again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_publishes_survive_the_leaders_crash() {
    let out = publish_across(
        Loss::Crash,
        false,
        Duration::from_secs(20),
        10,
        Resend::AtLeastOnce,
    )
    .await;
    assert!(out.confirmed > 0);
    assert!(out.stall < ACK_TIMEOUT * 2 / 3, "stalled {:?}", out.stall);
}

/// The publisher's own node, leading the stream, crashes: the acks are lost with the
/// connection and the messages are resent on the next one, without ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_publishes_survive_a_crash_of_their_own_node() {
    let out = publish_across(
        Loss::Crash,
        true,
        Duration::from_secs(20),
        10,
        Resend::AtLeastOnce,
    )
    .await;
    assert!(out.confirmed > 0);
}
