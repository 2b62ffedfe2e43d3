//! A replicated (R3) bucket on a 3-node cluster keeps every write and every compare-and-set
//! while the node leading its stream restarts, and a watch sees each change once, in order
//! (the bucket keeps all of them: a watch cannot replay revisions the history limit dropped).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::within;
use futures::StreamExt;
use jetstream::kv::{Config, KvError, Store, WatchEvent};
use nats_tests::Cluster;
use tokio::task::spawn_blocking;

/// Retries `op` while it fails transiently (an election, a lost connection).
async fn retry<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, KvError>>,
{
    within(60, what, async {
        loop {
            match op().await {
                Ok(v) => return v,
                Err(e) if e.is_transient() || matches!(e, KvError::JetStream(_)) => {
                    eprintln!("{what}: {e}; again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
    })
    .await
}

/// Moves the counter `key` to `target` by compare-and-set, one step. The only writer, so a
/// counter found at `target` means an earlier attempt whose ack was lost did land. Reads are
/// direct gets, which any replica answers, so a read may be stale; the compare-and-set keeps
/// a stale read from doing harm.
async fn step_to(kv: &Store, key: &str, target: u64) {
    loop {
        let entry = retry("read counter", || kv.entry(key)).await.unwrap();
        let n: u64 = std::str::from_utf8(&entry.value).unwrap().parse().unwrap();
        if n == target {
            return;
        }
        assert!(n < target, "the counter went past {target}: {n}");
        if n + 1 < target {
            // A replica behind the leader answered the direct get: read again.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        match kv.update(key, target.to_string(), entry.revision).await {
            Ok(_) => return,
            Err(e) => {
                eprintln!("update: {e}; again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_bucket_across_a_leader_restart() {
    let mut cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let client = nats_client::ConnectOptions::new()
        .connect(&cluster.urls())
        .await
        .unwrap();
    let js = jetstream::new(client).with_timeout(Duration::from_secs(3));
    let kv = retry("create R3 bucket", || {
        js.create_key_value(Config {
            history: 64,
            num_replicas: 3,
            ..Config::new("ha")
        })
    })
    .await;
    for i in 0..50 {
        let key = format!("k.{i}");
        retry("put", || kv.put(&key, i.to_string())).await;
    }
    retry("counter", || kv.create("counter", "0")).await;
    let mut watch = kv.watch("counter").await.unwrap();
    let first = within(10, "initial counter", watch.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, WatchEvent::Entry(ref e) if e.value == "0"));
    assert_eq!(
        within(10, "caught up", watch.next())
            .await
            .unwrap()
            .unwrap(),
        WatchEvent::CaughtUp
    );

    // Restart the node leading the bucket's stream while counting up with CAS.
    let leader = js
        .stream_info("KV_ha")
        .await
        .unwrap()
        .cluster
        .and_then(|c| c.leader)
        .unwrap();
    let victim = (0..3).find(|&i| cluster.node(i).name() == leader).unwrap();
    let restart = spawn_blocking(move || {
        cluster.kill_node(victim);
        std::thread::sleep(Duration::from_secs(1));
        cluster.restart_node(victim);
        cluster
    });
    const COUNT: u64 = 60;
    let counter = {
        let kv = kv.clone();
        tokio::spawn(async move {
            for target in 1..=COUNT {
                step_to(&kv, "counter", target).await;
            }
        })
    };
    // The watch sees every value once, in order, whatever the watch's consumer went through.
    let mut last_revision = 0;
    for expected in 1..=COUNT {
        let entry = loop {
            match within(60, "counter update", watch.next()).await {
                Some(Ok(WatchEvent::Entry(e))) => break e,
                Some(Ok(WatchEvent::CaughtUp)) => panic!("CaughtUp twice"),
                Some(Err(e)) => eprintln!("watch: {e}"),
                None => panic!("watch ended"),
            }
        };
        assert_eq!(entry.value, Bytes::from(expected.to_string()));
        assert!(entry.revision > last_revision);
        last_revision = entry.revision;
    }
    counter.await.unwrap();
    let _cluster = restart.await.unwrap();

    // Nothing written before the restart was lost, and reads work on the new leader.
    for i in 0..50 {
        let key = format!("k.{i}");
        let v = retry("get", || kv.get(&key)).await;
        assert_eq!(v, Some(Bytes::from(i.to_string())));
    }
    let history = retry("history", || kv.history("counter")).await;
    assert_eq!(history.len() as u64, COUNT + 1);
    assert_eq!(history.last().unwrap().value, COUNT.to_string());
}
