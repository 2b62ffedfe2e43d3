//! Cross-client check with nats-py: a bucket written by nats-py is read by our store, and a
//! bucket written by our store is read by nats-py (including markers, keys and a CAS update).
//!
//! Opt-in (`cargo test -p jetstream --test kv_nats_py -- --ignored`): it needs nats-py in the
//! workspace venv (`.tools/venv/bin/pip install nats-py`). The conventions themselves are
//! checked without Python in `kv.rs` (`interoperates_with_the_kv_conventions`).

mod common;

use std::process::Command;

use bytes::Bytes;
use common::setup;
use futures::StreamExt;
use jetstream::kv::{Config, Operation};

const WRITE: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="py", history=5)
    await kv.put("app.a", b"1")
    r = await kv.put("app.b", b"2")
    await kv.update("app.b", b"3", last=r)
    await kv.delete("app.b")
    await kv.put("app.c", b"x")
    await kv.purge("app.c")
    await kv.create("app.d", b"4")
    await nc.close()
asyncio.run(main())
"#;

const READ: &str = r#"
import asyncio, sys, json, nats
from nats.js.errors import KeyNotFoundError, KeyDeletedError, KeyWrongLastSequenceError
async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    kv = await js.key_value("rs")
    out = {}
    e = await kv.get("q.x")
    out["x"] = [e.value.decode(), e.revision]
    try:
        await kv.get("q.y")
        out["y"] = "present"
    except (KeyNotFoundError, KeyDeletedError) as err:
        out["y"] = [type(err).__name__, err.op]
    out["keys"] = sorted(await kv.keys())
    out["history_y"] = [[h.operation or "PUT", h.value.decode()] for h in await kv.history("q.y")]
    try:
        await kv.update("q.x", b"stale", last=1)
        out["cas"] = "accepted"
    except KeyWrongLastSequenceError:
        out["cas"] = "wrong last sequence"
    out["status_history"] = (await kv.status()).history
    print(json.dumps(out))
    await nc.close()
asyncio.run(main())
"#;

fn python(script: &str, url: &str) -> String {
    let python = nats_tests::binary::workspace_root().join(".tools/venv/bin/python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "nats-py script failed (pip install nats-py into .tools/venv?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-py in .tools/venv (pip install nats-py)"]
async fn nats_py_and_ours_read_each_others_buckets() {
    let (server, js) = setup().await;
    let url = server.url();

    // nats-py writes, we read.
    let u = url.clone();
    tokio::task::spawn_blocking(move || python(WRITE, &u))
        .await
        .unwrap();
    let kv = js.key_value("py").await.unwrap();
    assert_eq!(kv.get("app.a").await.unwrap(), Some(Bytes::from("1")));
    assert_eq!(kv.get("app.b").await.unwrap(), None);
    assert_eq!(
        kv.entry("app.b").await.unwrap().unwrap().operation,
        Operation::Delete
    );
    let ops: Vec<_> = kv
        .history("app.b")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.operation, e.value))
        .collect();
    assert_eq!(
        ops,
        [
            (Operation::Put, Bytes::from("2")),
            (Operation::Put, Bytes::from("3")),
            (Operation::Delete, Bytes::new())
        ]
    );
    let purged = kv.history("app.c").await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].operation, Operation::Purge);
    let mut keys: Vec<String> = kv.keys().await.unwrap().map(|k| k.unwrap()).collect().await;
    keys.sort();
    assert_eq!(keys, ["app.a", "app.d"]);
    assert_eq!(kv.status().await.unwrap().history(), 5);

    // We write, nats-py reads.
    let ours = js
        .create_key_value(Config {
            history: 4,
            ..Config::new("rs")
        })
        .await
        .unwrap();
    let r = ours.put("q.x", "one").await.unwrap();
    let r = ours.update("q.x", "two", r).await.unwrap();
    ours.put("q.y", "gone soon").await.unwrap();
    ours.delete("q.y").await.unwrap();
    let out = tokio::task::spawn_blocking(move || python(READ, &url))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["x"], serde_json::json!(["two", r]));
    // nats-py reports a deleted key as not found, naming the marker's operation.
    assert_eq!(v["y"], serde_json::json!(["KeyNotFoundError", "DEL"]));
    assert_eq!(v["keys"], serde_json::json!(["q.x"]));
    assert_eq!(
        v["history_y"],
        serde_json::json!([["PUT", "gone soon"], ["DEL", ""]])
    );
    assert_eq!(v["cas"], "wrong last sequence");
    assert_eq!(v["status_history"], 4);
}
