//! Lame duck: the client moves to another node before the server exits, losing nothing, as a
//! subscriber and as a publisher.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use nats_client::{Client, ConnectOptions, Event};
use nats_tests::{Cluster, ClusterOptions};
use tokio::task::spawn_blocking;

fn node_of(client: &Client) -> usize {
    let name = client.server_info().server_name.clone();
    name.trim_start_matches('n')
        .parse::<usize>()
        .expect("node name n<i>")
        - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lame_duck_moves_before_exit_without_loss() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let client = ConnectOptions::new()
        .lame_duck_jitter(Duration::from_millis(200))
        .connect(&cluster.urls())
        .await
        .unwrap();
    let victim = node_of(&client);
    let publisher = nats_client::connect(&cluster.node((victim + 1) % 3).url())
        .await
        .unwrap();
    let mut sub = client.subscribe("ldm.test").await.unwrap();
    client.flush().await.unwrap();
    // The subscription must have reached the publisher's server over the routes before the
    // run starts (it can take a while on a loaded machine): probe until one arrives.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            publisher.publish("ldm.test", "").await.unwrap();
            if let Ok(probe) = tokio::time::timeout(Duration::from_millis(20), sub.next()).await {
                assert!(probe.unwrap().payload.is_empty());
                break;
            }
        }
    })
    .await
    .expect("the subscription propagated to the publisher's server");
    let mut events = client.events();

    // Publish continuously; every batch is confirmed by flush before the next.
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    publisher
                        .publish("ldm.test", n.to_be_bytes())
                        .await
                        .unwrap();
                    n += 1;
                }
                publisher.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cluster = spawn_blocking(move || {
        cluster.lame_duck(victim);
        cluster
    })
    .await
    .unwrap();

    let moved = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(Event::Reconnected { server }) => return server,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("moved off the lame-duck server");
    let (still_running, cluster) = spawn_blocking(move || {
        let running = cluster.node_mut(victim).is_running();
        (running, cluster)
    })
    .await
    .unwrap();
    assert!(
        still_running,
        "the client must move before the server exits"
    );
    assert_ne!(node_of(&client), victim, "now on {moved}");

    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let published = publishing.await.unwrap();
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    while seen.len() < published as usize {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap_or_else(|_| {
                let missing: Vec<u32> = (0..published).filter(|n| !seen.contains(n)).collect();
                panic!(
                    "only {} of {published} arrived; missing {} from {:?} to {:?}",
                    seen.len(),
                    missing.len(),
                    missing.first(),
                    missing.last()
                )
            })
            .unwrap();
        if m.payload.is_empty() {
            continue; // a late probe
        }
        let n = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        if !seen.insert(n) {
            duplicates += 1;
        }
    }
    println!("{published} published, all received, {duplicates} duplicates during the overlap");
    assert_eq!(seen.len(), published as usize);
    // The move's propagation probe (a subscription of its own) is gone again.
    let now_on = node_of(&client);
    let (subs, mut cluster) = spawn_blocking(move || {
        let connz = cluster.node(now_on).monitor_json("/connz?subs=1");
        let subs: Vec<String> = connz["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c["subscriptions_list"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        (subs, cluster)
    })
    .await
    .unwrap();
    assert!(subs.iter().any(|s| s == "ldm.test"), "{subs:?}");
    assert!(!subs.iter().any(|s| s.ends_with(".ldm")), "{subs:?}");
    let (exited, cluster) = spawn_blocking(move || {
        let exited = cluster
            .node_mut(victim)
            .wait_for_exit(Duration::from_secs(40));
        (exited, cluster)
    })
    .await
    .unwrap();
    assert!(exited, "the lame-duck server exits");
    // Still connected and working after the old server is gone.
    if client.connection_state() != nats_client::State::Connected {
        while let Ok(e) = events.try_recv() {
            println!("event after the move: {e:?}");
        }
        for i in 0..3 {
            println!("--- n{} log:\n{}", i + 1, cluster.node(i).logs());
        }
        panic!("not connected after the lame-duck server exited");
    }
    client.flush().await.unwrap();
}

/// 64 KiB payload for message `n`: its number, then a fill byte derived from it, so a
/// subscriber can tell a whole message from one spliced with other bytes.
fn big_payload(n: u32) -> Vec<u8> {
    let mut p = vec![(n % 251) as u8; 64 * 1024];
    p[..4].copy_from_slice(&n.to_be_bytes());
    p
}

/// The moving client is the one publishing: large messages keep its writer in the middle of
/// an op most of the time, so the handoff cuts one. Every publish that was flushed arrives
/// once and intact (a cut op is completed on the old server, never sent twice, and the old
/// connection's unsubscribes are never spliced into it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_moves_off_a_lame_duck_server_without_loss_or_splicing() {
    // A long grace period: the server closes no client itself while the test looks.
    let cluster = spawn_blocking(|| {
        Cluster::start_with(ClusterOptions {
            extra_config: "lame_duck_grace_period: \"5s\"".into(),
            ..ClusterOptions::default()
        })
    })
    .await
    .unwrap();
    let publisher = ConnectOptions::new()
        .lame_duck_jitter(Duration::from_millis(200))
        .connect(&cluster.urls())
        .await
        .unwrap();
    let victim = node_of(&publisher);
    // Something for the retirement to unsubscribe on the old connection.
    let _own = publisher.subscribe("ldm.own").await.unwrap();
    let subscriber = nats_client::connect(&cluster.node((victim + 1) % 3).url())
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // How many have arrived: the publisher keeps at most WINDOW messages ahead of the
    // subscriber (32 MiB), so the servers never drop it as a slow consumer (64 MiB pending).
    const WINDOW: u32 = 512;
    let arrived = Arc::new(AtomicU32::new(0));
    let counter = arrived.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let seen_probe = ready.clone();
    let _sub = subscriber
        .subscribe_with_handler("ldm.big", move |m| {
            if m.payload.is_empty() {
                seen_probe.store(true, Ordering::Relaxed);
                return;
            }
            let n = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
            let _ = tx.send((n, m.payload[..] == big_payload(n)[..]));
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    subscriber.flush().await.unwrap();
    // The subscription must have reached the publisher's server over the routes before the
    // run starts (it can take a while on a loaded machine): probe until one arrives.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !ready.load(Ordering::Relaxed) {
            publisher.publish("ldm.big", "").await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the subscription propagated to the publisher's server");
    let mut events = publisher.events();
    let mut subscriber_events = subscriber.events();

    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let stop = stop.clone();
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            // No flush until the end: the writer never waits for a PONG, so it is busy
            // when the handoff comes.
            while !stop.load(Ordering::Relaxed) {
                if n.saturating_sub(arrived.load(Ordering::Relaxed)) >= WINDOW {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                publisher.publish("ldm.big", big_payload(n)).await.unwrap();
                n += 1;
            }
            publisher.flush().await.unwrap();
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cluster = spawn_blocking(move || {
        cluster.lame_duck(victim);
        cluster
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(Event::Reconnected { .. }) => return,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("moved off the lame-duck server");
    assert_ne!(node_of(&publisher), victim);
    // The client retires the old connection itself once its unsubscribes are confirmed,
    // which needs a clean stream (a cut op left there would swallow them).
    let (reason, cluster) = spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let closed = cluster.node(victim).monitor_json("/connz?state=closed");
            if let Some(c) = closed["connections"].as_array().and_then(|c| c.first()) {
                return (
                    c["reason"].as_str().unwrap_or_default().to_string(),
                    cluster,
                );
            }
            if std::time::Instant::now() > deadline {
                return ("still open".to_string(), cluster);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert_eq!(reason, "Client Closed", "the old connection");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let published = publishing.await.unwrap();

    let mut seen = BTreeSet::new();
    while seen.len() < published as usize {
        let (n, intact) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {published} arrived", seen.len()))
            .unwrap();
        assert!(intact, "message {n} arrived spliced");
        assert!(seen.insert(n), "message {n} arrived twice");
        assert!(n < published, "message {n} was never published");
    }
    println!("{published} messages of 64 KiB published across the move, all arrived once");
    assert_eq!(subscriber.statistics().dropped_msgs, 0);
    while let Ok(e) = subscriber_events.try_recv() {
        assert!(
            !matches!(e, Event::Disconnected { .. }),
            "subscriber: {e:?}"
        );
    }
    drop(cluster);
}
