//! The key-value store against a real server: operations, compare-and-set, markers, history,
//! keys, watches, and the bucket conventions nats.go and nats-py use.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{setup, unique, within};
use futures::StreamExt;
use jetstream::kv::{Config, Entry, KvError, Operation, Watch, WatchEvent, WatchOptions};
use jetstream::{DiscardPolicy, StorageType};

fn memory(bucket: &str) -> Config {
    Config {
        storage: StorageType::Memory,
        ..Config::new(bucket)
    }
}

async fn next_event(watch: &mut Watch) -> WatchEvent {
    loop {
        match within(10, "watch event", watch.next()).await {
            Some(Ok(event)) => return event,
            Some(Err(e)) if e.is_transient() => eprintln!("watch: {e}"),
            other => panic!("watch ended or failed: {other:?}"),
        }
    }
}

async fn next_entry(watch: &mut Watch) -> Entry {
    match next_event(watch).await {
        WatchEvent::Entry(e) => e,
        WatchEvent::CaughtUp => panic!("expected an entry, got CaughtUp"),
    }
}

#[tokio::test]
async fn put_get_create_update_delete_purge() {
    let (_server, js) = setup().await;
    let kv = js
        .create_key_value(Config {
            history: 5,
            ..memory(&unique("ops"))
        })
        .await
        .unwrap();

    assert_eq!(kv.get("a").await.unwrap(), None);
    assert_eq!(kv.entry("a").await.unwrap(), None);
    let r1 = kv.put("a", "one").await.unwrap();
    assert_eq!(kv.get("a").await.unwrap(), Some(Bytes::from("one")));
    let e = kv.entry("a").await.unwrap().unwrap();
    assert_eq!(
        (e.revision, e.operation, &e.key[..]),
        (r1, Operation::Put, "a")
    );
    assert!(e.created.is_some());

    // create: refused while the key has a value.
    let err = kv.create("a", "again").await.unwrap_err();
    assert!(
        matches!(&err, KvError::KeyExists { key, .. } if key == "a"),
        "{err}"
    );
    assert!(err.is_conflict());

    // update: compare and set on the revision.
    let r2 = kv.update("a", "two", r1).await.unwrap();
    assert!(r2 > r1);
    let err = kv.update("a", "stale", r1).await.unwrap_err();
    match err {
        KvError::WrongRevision {
            expected, current, ..
        } => {
            assert_eq!(expected, r1);
            assert_eq!(current, Some(r2));
        }
        other => panic!("expected WrongRevision, got {other}"),
    }
    assert_eq!(kv.get("a").await.unwrap(), Some(Bytes::from("two")));
    assert_eq!(kv.entry_at("a", r1).await.unwrap().unwrap().value, "one");
    let leader = kv.clone().read_from_leader();
    assert_eq!(leader.get("a").await.unwrap(), Some(Bytes::from("two")));
    assert_eq!(
        leader.entry_at("a", r1).await.unwrap().unwrap().value,
        "one"
    );
    let other = kv.put("b", "x").await.unwrap();
    assert_eq!(kv.entry_at("a", other).await.unwrap(), None);

    // delete: a marker; create succeeds over it.
    kv.delete("a").await.unwrap();
    assert_eq!(kv.get("a").await.unwrap(), None);
    let marker = kv.entry("a").await.unwrap().unwrap();
    assert_eq!(marker.operation, Operation::Delete);
    assert!(marker.value.is_empty());
    let r3 = kv.create("a", "three").await.unwrap();
    assert_eq!(kv.get("a").await.unwrap(), Some(Bytes::from("three")));

    let history = kv.history("a").await.unwrap();
    let ops: Vec<_> = history.iter().map(|e| (e.revision, e.operation)).collect();
    assert_eq!(
        ops,
        [
            (r1, Operation::Put),
            (r2, Operation::Put),
            (marker.revision, Operation::Delete),
            (r3, Operation::Put)
        ]
    );

    // delete expecting a revision.
    let err = kv.delete_expect_revision("a", r2).await.unwrap_err();
    assert!(matches!(err, KvError::WrongRevision { .. }), "{err}");
    kv.delete_expect_revision("a", r3).await.unwrap();

    // purge: the marker stays alone; create works over it too.
    kv.purge("a").await.unwrap();
    let history = kv.history("a").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].operation, Operation::Purge);
    kv.create("a", "four").await.unwrap();
    assert_eq!(kv.history("a").await.unwrap().len(), 2);
    assert_eq!(kv.history("never").await.unwrap(), []);

    // Bad keys are typed errors before anything is sent.
    for bad in ["", "a b", "a.*", ".a", "a\r\nPUB x 1"] {
        assert!(
            matches!(kv.put(bad, "x").await, Err(KvError::InvalidKey { .. })),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn keys_status_and_bucket_admin() {
    let (_server, js) = setup().await;
    let name = unique("adm");
    let kv = js.create_key_value(memory(&name)).await.unwrap();
    let keys: Vec<String> = kv.keys().await.unwrap().map(|k| k.unwrap()).collect().await;
    assert!(keys.is_empty());
    for k in ["x.1", "x.2", "y", "gone"] {
        kv.put(k, k).await.unwrap();
    }
    kv.put("x.1", "newer").await.unwrap();
    kv.delete("gone").await.unwrap();
    kv.purge("y").await.unwrap();
    let mut keys: Vec<String> = kv.keys().await.unwrap().map(|k| k.unwrap()).collect().await;
    keys.sort();
    assert_eq!(keys, ["x.1", "x.2"]);
    let mut xs: Vec<String> = kv
        .keys_matching(&["x.*", "gone"])
        .await
        .unwrap()
        .map(|k| k.unwrap())
        .collect()
        .await;
    xs.sort();
    assert_eq!(xs, ["x.1", "x.2"]);

    let status = kv.status().await.unwrap();
    assert_eq!(status.bucket(), name);
    assert_eq!(status.history(), 1);
    assert_eq!(status.values(), 4); // x.1, x.2, and the two markers
    // Recent markers stay (as the only revision); with no age limit they go.
    kv.purge_deletes(Duration::from_secs(1800)).await.unwrap();
    assert_eq!(kv.status().await.unwrap().values(), 4);
    kv.purge_deletes(Duration::ZERO).await.unwrap();
    assert_eq!(kv.status().await.unwrap().values(), 2);
    assert_eq!(kv.entry("gone").await.unwrap(), None);

    // Same config again: fine. Another config: BucketExists.
    js.create_key_value(memory(&name)).await.unwrap();
    let err = js
        .create_key_value(Config {
            history: 3,
            ..memory(&name)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::BucketExists { .. }), "{err}");
    let updated = js
        .create_or_update_key_value(Config {
            history: 3,
            ..memory(&name)
        })
        .await
        .unwrap();
    assert_eq!(updated.status().await.unwrap().history(), 3);

    assert!(js.key_value_names().await.unwrap().contains(&name));
    let bound = js.key_value(&name).await.unwrap();
    assert_eq!(bound.get("x.2").await.unwrap(), Some(Bytes::from("x.2")));
    js.delete_key_value(&name).await.unwrap();
    assert!(matches!(
        js.key_value(&name).await,
        Err(KvError::BucketNotFound { .. })
    ));
    assert!(matches!(
        js.delete_key_value(&name).await,
        Err(KvError::BucketNotFound { .. })
    ));
    assert!(matches!(
        js.key_value("bad.name").await,
        Err(KvError::InvalidBucket { .. })
    ));
    // A stream that is not a bucket.
    js.create_stream(jetstream::StreamConfig::new("KV_plain", ["plain.>"]))
        .await
        .unwrap();
    assert!(matches!(
        js.key_value("plain").await,
        Err(KvError::NotABucket { .. })
    ));
}

#[tokio::test]
async fn watch_initial_values_then_live_updates() {
    let (_server, js) = setup().await;
    // History kept, so a watch that had to re-create its consumer (a heartbeat missed on a
    // loaded machine) still finds every revision it has not delivered yet.
    let kv = js
        .create_key_value(Config {
            history: 10,
            ..memory(&unique("w"))
        })
        .await
        .unwrap();

    // Empty bucket: CaughtUp comes first.
    let mut empty = kv.watch_all().await.unwrap();
    assert_eq!(next_event(&mut empty).await, WatchEvent::CaughtUp);
    assert!(empty.is_caught_up());

    kv.put("q.a", "1").await.unwrap();
    kv.put("q.a", "2").await.unwrap();
    kv.put("q.b", "1").await.unwrap();
    kv.put("x.other", "1").await.unwrap();
    kv.put("q.c", "1").await.unwrap();
    kv.delete("q.c").await.unwrap();

    let mut watch = kv.watch("q.>").await.unwrap();
    // The latest revision of each key, in revision order, markers included.
    let a = next_entry(&mut watch).await;
    assert_eq!((&a.key[..], &a.value[..]), ("q.a", &b"2"[..]));
    let b = next_entry(&mut watch).await;
    assert_eq!(b.key, "q.b");
    let c = next_entry(&mut watch).await;
    assert_eq!((&c.key[..], c.operation), ("q.c", Operation::Delete));
    assert_eq!(next_event(&mut watch).await, WatchEvent::CaughtUp);

    // Live: puts, deletes and purges, filtered by the pattern.
    kv.put("x.other", "2").await.unwrap();
    let rev = kv.put("q.d", "new").await.unwrap();
    kv.purge("q.a").await.unwrap();
    let d = next_entry(&mut watch).await;
    assert_eq!(
        (&d.key[..], d.revision, d.operation),
        ("q.d", rev, Operation::Put)
    );
    let p = next_entry(&mut watch).await;
    assert_eq!((&p.key[..], p.operation), ("q.a", Operation::Purge));

    // The watch on everything saw them all live.
    let mut seen = Vec::new();
    while seen.len() < 8 {
        seen.push(next_entry(&mut empty).await.key);
    }
    assert_eq!(
        seen,
        [
            "q.a", "q.a", "q.b", "x.other", "q.c", "q.c", "x.other", "q.d"
        ],
        "consumer resets: {}",
        empty.consumer().resets()
    );

    // Options: updates only, history, ignore deletes.
    let mut updates = kv
        .watch_with(
            &["q.*"],
            WatchOptions {
                updates_only: true,
                ..WatchOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_event(&mut updates).await, WatchEvent::CaughtUp);
    let mut history = kv
        .watch_with(
            &["q.a"],
            WatchOptions {
                include_history: true,
                ignore_deletes: true,
                ..WatchOptions::default()
            },
        )
        .await
        .unwrap();
    // q.a was purged: only the marker is left, and it is ignored.
    assert_eq!(next_event(&mut history).await, WatchEvent::CaughtUp);
    kv.put("q.e", "late").await.unwrap();
    assert_eq!(next_entry(&mut updates).await.key, "q.e");
    assert!(matches!(
        kv.watch("a.>.b").await,
        Err(KvError::InvalidKey { .. })
    ));
}

/// What nats.go, nats-py and the CLI send, written with the plain client, read by our store;
/// and our bucket read back through the raw API.
#[tokio::test]
async fn interoperates_with_the_kv_conventions() {
    let (_server, js) = setup().await;
    let client = js.client().clone();
    // A bucket made the way nats.go makes it (the raw JSON of its CreateKeyValue).
    let create = serde_json::json!({
        "name": "KV_interop", "subjects": ["$KV.interop.>"], "retention": "limits",
        "max_consumers": -1, "max_msgs": -1, "max_bytes": -1, "max_age": 0,
        "max_msgs_per_subject": 3, "max_msg_size": -1, "discard": "new", "storage": "memory",
        "num_replicas": 1, "duplicate_window": 120_000_000_000i64, "allow_rollup_hdrs": true,
        "deny_delete": true, "allow_direct": true
    });
    let reply = client
        .request("$JS.API.STREAM.CREATE.KV_interop", create.to_string())
        .await
        .unwrap();
    let created: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(created.get("error").is_none(), "{created}");

    // Writes as nats.go does them: a plain publish, a DEL marker, a PURGE marker with rollup.
    let publish =
        |subject: &'static str, headers: Option<nats_client::HeaderMap>, body: &'static str| {
            let client = client.clone();
            async move {
                let reply = client
                    .request_with(
                        subject,
                        headers.as_ref(),
                        body.as_bytes(),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                let ack: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
                assert!(ack.get("error").is_none(), "{ack}");
                ack["seq"].as_u64().unwrap()
            }
        };
    let marker = |op: &str, rollup: bool| {
        let mut h = nats_client::HeaderMap::new();
        h.insert("KV-Operation", op);
        if rollup {
            h.insert("Nats-Rollup", "sub");
        }
        Some(h)
    };
    let s1 = publish("$KV.interop.app.name", None, "alpha").await;
    publish("$KV.interop.app.gone", None, "x").await;
    publish("$KV.interop.app.gone", marker("DEL", false), "").await;
    publish("$KV.interop.app.purged", None, "y").await;
    publish("$KV.interop.app.purged", None, "z").await;
    publish("$KV.interop.app.purged", marker("PURGE", true), "").await;

    let kv = js.key_value("interop").await.unwrap();
    let e = kv.entry("app.name").await.unwrap().unwrap();
    assert_eq!((&e.value[..], e.revision), (&b"alpha"[..], s1));
    assert_eq!(kv.get("app.gone").await.unwrap(), None);
    assert_eq!(
        kv.entry("app.gone").await.unwrap().unwrap().operation,
        Operation::Delete
    );
    let purged = kv.history("app.purged").await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].operation, Operation::Purge);
    let keys: Vec<String> = kv.keys().await.unwrap().map(|k| k.unwrap()).collect().await;
    assert_eq!(keys, ["app.name"]);
    kv.create("app.gone", "back").await.unwrap();

    // The reverse: our bucket, read through the raw API.
    let ours = js
        .create_key_value(Config {
            history: 2,
            ..memory("ours")
        })
        .await
        .unwrap();
    let rev = ours.put("k", "v1").await.unwrap();
    ours.delete("k").await.unwrap();
    ours.put("p", "v").await.unwrap();
    ours.purge("p").await.unwrap();
    let reply = client
        .request("$JS.API.STREAM.INFO.KV_ours", "")
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let c = &info["config"];
    assert_eq!(c["subjects"], serde_json::json!(["$KV.ours.>"]));
    assert_eq!(c["max_msgs_per_subject"], 2);
    assert_eq!(c["discard"], "new");
    assert_eq!(c["allow_rollup_hdrs"], true);
    assert_eq!(c["allow_direct"], true);
    assert_eq!(c["deny_delete"], true);
    assert_eq!(c["duplicate_window"], 120_000_000_000i64);
    assert_eq!(info["state"]["messages"], 3); // k, its DEL marker, p's PURGE marker

    // A direct get, as nats.go's Get does it.
    let reply = client
        .request("$JS.API.DIRECT.GET.KV_ours.$KV.ours.k", "")
        .await
        .unwrap();
    let h = reply.headers.unwrap();
    assert_eq!(h.get("KV-Operation"), Some("DEL"));
    let got = client
        .request("$JS.API.DIRECT.GET.KV_ours", format!(r#"{{"seq":{rev}}}"#))
        .await
        .unwrap();
    assert_eq!(&got.payload[..], b"v1");
    assert_eq!(got.headers.unwrap().get("Nats-Subject"), Some("$KV.ours.k"));
    let reply = client
        .request("$JS.API.DIRECT.GET.KV_ours.$KV.ours.p", "")
        .await
        .unwrap();
    let h = reply.headers.unwrap();
    assert_eq!(h.get("KV-Operation"), Some("PURGE"));
    assert_eq!(h.get("Nats-Rollup"), Some("sub"));
    let stream = js.stream_info("KV_ours").await.unwrap();
    assert_eq!(stream.config.discard, DiscardPolicy::New);
}

/// Two writers race to create one key: exactly one wins, the other gets `KeyExists`; racing
/// compare-and-set updates from one revision: exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_and_updates_have_one_winner() {
    let (_server, js) = setup().await;
    let kv = js.create_key_value(memory(&unique("race"))).await.unwrap();
    for round in 0..20 {
        let key = format!("k{round}");
        let (a, b) = tokio::join!(kv.create(&key, "a"), kv.create(&key, "b"));
        let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{a:?} {b:?}");
        for r in [a, b] {
            if let Err(e) = r {
                assert!(matches!(e, KvError::KeyExists { .. }), "{e}");
            }
        }
        let rev = kv.entry(&key).await.unwrap().unwrap().revision;
        let (a, b) = tokio::join!(kv.update(&key, "x", rev), kv.update(&key, "y", rev));
        assert_eq!([&a, &b].iter().filter(|r| r.is_ok()).count(), 1);
        assert!(a.is_err() || b.is_err());
    }
}

/// A watch goes on, missing nothing, after its consumer is deleted server-side. (The bucket
/// keeps history: with history 1, a revision replaced while the watch had no consumer is
/// gone from the stream, and no watch can replay it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_losing_its_consumer() {
    let (_server, js) = setup().await;
    let name = unique("wl");
    let kv = js
        .create_key_value(Config {
            history: 10,
            ..memory(&name)
        })
        .await
        .unwrap();
    kv.put("a", "0").await.unwrap();
    let mut watch = kv.watch_all().await.unwrap();
    assert_eq!(next_entry(&mut watch).await.value, "0");
    assert_eq!(next_event(&mut watch).await, WatchEvent::CaughtUp);
    for round in 1..=3u32 {
        kv.put("a", format!("{round}.1")).await.unwrap();
        assert_eq!(next_entry(&mut watch).await.value, format!("{round}.1"));
        let consumer = watch.consumer().consumer_name();
        assert!(
            js.delete_consumer(&format!("KV_{name}"), &consumer)
                .await
                .unwrap()
        );
        // Written while the watch has no consumer.
        kv.put("a", format!("{round}.2")).await.unwrap();
        kv.delete("a").await.unwrap();
        assert_eq!(next_entry(&mut watch).await.value, format!("{round}.2"));
        assert_eq!(next_entry(&mut watch).await.operation, Operation::Delete);
        assert_eq!(watch.consumer().resets(), u64::from(round));
    }
}
