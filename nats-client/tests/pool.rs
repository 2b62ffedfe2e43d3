//! `Pool`: per-key ordering across members, and skipping a member that is down.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use nats_client::{ConnectOptions, Pool, State};
use nats_tests::Cluster;
use tokio::task::spawn_blocking;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keys_messages_stay_in_order_under_load() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let pool = Pool::connect(&cluster.urls(), ConnectOptions::new(), 4)
        .await
        .unwrap();
    let observer = nats_client::connect(&cluster.node(0).url()).await.unwrap();
    let mut sub = observer.subscribe("ordered.>").await.unwrap();
    observer.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 20 keys, 500 messages each, published concurrently from 20 tasks.
    let mut tasks = Vec::new();
    for key in 0..20u32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..500u32 {
                let client = pool.get_for(&key);
                let mut payload = key.to_be_bytes().to_vec();
                payload.extend_from_slice(&seq.to_be_bytes());
                client
                    .publish(format!("ordered.{key}"), payload)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    pool.flush().await.unwrap();
    let mut last: HashMap<u32, u32> = HashMap::new();
    for _ in 0..20 * 500 {
        let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        let key = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        let seq = u32::from_be_bytes(m.payload[4..8].try_into().unwrap());
        let expected = last.get(&key).map_or(0, |s| s + 1);
        assert_eq!(seq, expected, "key {key} out of order");
        last.insert(key, seq);
    }
    assert_eq!(pool.statistics().connected, 4);
    let used: usize = pool
        .statistics()
        .members
        .iter()
        .filter(|s| s.out_msgs > 0)
        .count();
    assert!(used >= 2, "keys spread over the members");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_is_down_is_skipped() {
    let mut cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    // Member 0 only knows node 0 and may not discover others; members 1..3 use node 1.
    let lonely = ConnectOptions::new()
        .ignore_discovered_servers()
        .connect(&cluster.node(0).url())
        .await
        .unwrap();
    let others = [
        nats_client::connect(&cluster.node(1).url()).await.unwrap(),
        nats_client::connect(&cluster.node(1).url()).await.unwrap(),
    ];
    let pool = Pool::from_clients(vec![lonely.clone(), others[0].clone(), others[1].clone()]);
    let key = (0..1000u32)
        .find(|k| std::ptr::eq(pool.get_for(k), &pool.clients()[0]))
        .unwrap();

    let mut events = lonely.events();
    cluster = spawn_blocking(move || {
        cluster.kill_node(0);
        cluster
    })
    .await
    .unwrap();
    while lonely.connection_state() == State::Connected {
        let _ = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap();
    }
    let chosen = pool.get_for(&key);
    assert_eq!(
        chosen.connection_state(),
        State::Connected,
        "the down member is skipped"
    );
    assert!(!std::ptr::eq(chosen, &pool.clients()[0]));
    for _ in 0..10 {
        assert_eq!(pool.get().connection_state(), State::Connected);
    }
    assert_eq!(pool.statistics().connected, 2);
    drop(cluster);
}
