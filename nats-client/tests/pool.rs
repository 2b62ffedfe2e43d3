//! `Pool`: per-key ordering across members, also while a member reconnects, and the failover
//! variant that skips a member that is down.

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
async fn get_for_available_skips_a_member_that_is_down() {
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
    let key = (0..1000u32).find(|k| pool.index_for(k) == 0).unwrap();

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
    let chosen = pool.get_for_available(&key);
    assert_eq!(
        chosen.connection_state(),
        State::Connected,
        "the down member is skipped"
    );
    assert!(
        std::ptr::eq(pool.get_for(&key), &pool.clients()[0]),
        "get_for keeps the key on its member"
    );
    assert!(!std::ptr::eq(chosen, &pool.clients()[0]));
    for _ in 0..10 {
        assert_eq!(pool.get().connection_state(), State::Connected);
    }
    assert_eq!(pool.statistics().connected, 2);
    drop(cluster);
}

/// The payload of message `seq` of the ordering test.
fn seq_payload(seq: u32) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_stays_on_its_member_and_in_order_across_a_reconnect() {
    let mut cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    // Member 0 only knows node 0, so it is down for as long as node 0 is.
    let lonely = ConnectOptions::new()
        .ignore_discovered_servers()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(&cluster.node(0).url())
        .await
        .unwrap();
    let other = nats_client::connect(&cluster.node(1).url()).await.unwrap();
    let pool = Pool::from_clients(vec![lonely.clone(), other.clone()]);
    let key = (0..1000u32).find(|k| pool.index_for(k) == 0).unwrap();
    // The member's own subscription sees what it publishes (the server echoes), and after a
    // reconnect it is subscribed again before the reconnect buffer is sent: it sees every
    // message that reached node 0, in the order node 0 got them.
    let mut sub = lonely.subscribe("ordered.key").await.unwrap();
    lonely.flush().await.unwrap();

    for seq in 0..100 {
        pool.get_for(&key)
            .publish("ordered.key", seq_payload(seq))
            .await
            .unwrap();
    }
    pool.get_for(&key).flush().await.unwrap();

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
    for seq in 100..300 {
        let member = pool.get_for(&key);
        assert!(std::ptr::eq(member, &pool.clients()[0]), "the key moved");
        member
            .publish("ordered.key", seq_payload(seq))
            .await
            .unwrap();
    }
    cluster = spawn_blocking(move || {
        cluster.restart_node(0);
        cluster
    })
    .await
    .unwrap();
    for seq in 300..400 {
        pool.get_for(&key)
            .publish("ordered.key", seq_payload(seq))
            .await
            .unwrap();
    }
    pool.get_for(&key).flush().await.unwrap();

    for expected in 0..400u32 {
        let m = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .unwrap_or_else(|_| panic!("message {expected} never arrived"))
            .unwrap();
        let seq = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        assert_eq!(seq, expected, "out of order");
    }
    assert_eq!(
        other.statistics().out_msgs,
        0,
        "nothing of the key went through the other member"
    );
    drop(cluster);
}
