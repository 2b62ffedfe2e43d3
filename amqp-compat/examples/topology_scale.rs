//! How the per-object topology store behaves at Wire's full size (default 300,000 client
//! queues, each bound with `<uid>` and `<uid>.<cid>` to `user-notifications`): writes the
//! queues' KV entries straight into the bucket (no JetStream consumers: this measures the
//! topology, not the queues' storage), then measures what every process pays: the time a
//! `TopologyStore` needs to load and index them (what `Connection::connect` does), the memory
//! that costs, a publish's route lookup, and listing the queue names (what `nats-admin
//! queues` does before reading one page).
//!
//! `cargo run --release -p amqp-compat --example topology_scale -- [queues]`
//! Starts a JetStream server with the `nats-tests` harness.

use std::time::Instant;

use amqp_compat::ExchangeKind;
use amqp_compat::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use amqp_compat::routing::Topology;
use amqp_compat::store::{TopologyStore, bucket_name, exchange_key, queue_key};
use amqp_compat::types::{AMQPValue, FieldTable};

const EXCHANGE: &str = "user-notifications";
const WRITERS: usize = 64;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let server = nats_tests::NatsServer::jetstream();
    let client = nats_client::ConnectOptions::new()
        .connect(&server.url())
        .await
        .expect("connect");
    let js = jetstream::Context::new(client);
    drop(TopologyStore::open(&js, None).await.expect("bucket"));
    let kv = js.key_value(&bucket_name(None)).await.expect("bucket");

    // The entries, built by the routing engine itself.
    let none = FieldTable::default();
    let mut args = FieldTable::default();
    args.insert(
        "x-nats-tier".into(),
        AMQPValue::LongString("consumer".into()),
    );
    let mut t = Topology::new();
    t.declare_exchange(
        EXCHANGE,
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        &none,
    )
    .expect("exchange");
    let mut entries = Vec::with_capacity(n + 1);
    let x = t.exchange_entry(EXCHANGE).expect("exchange entry");
    entries.push((
        exchange_key(EXCHANGE),
        serde_json::to_vec(&x).expect("json"),
    ));
    for i in 0..n {
        let (uid, cid) = (format!("{:08x}", i / 3), format!("c{}", i % 3));
        let q = format!("{EXCHANGE}.{uid}.{cid}");
        let mut part = t.clone();
        part.declare_queue(&q, QueueDeclareOptions::durable(), &args, "writer")
            .expect("declare");
        for key in [uid.clone(), format!("{uid}.{cid}")] {
            part.bind_queue(&q, EXCHANGE, &key, &none, "writer")
                .expect("bind");
        }
        let e = part.queue_entry(&q).expect("entry");
        entries.push((queue_key(&q), serde_json::to_vec(&e).expect("json")));
    }
    let bytes: usize = entries.iter().map(|(_, v)| v.len()).sum();
    let started = Instant::now();
    let chunk = entries.len().div_ceil(WRITERS);
    let mut writers = Vec::new();
    for part in entries.chunks(chunk) {
        let kv = kv.clone();
        let part = part.to_vec();
        writers.push(tokio::spawn(async move {
            for (k, v) in part {
                kv.put(&k, v).await.expect("put");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    println!(
        "wrote {n} queue keys ({:.0} bytes per value) in {:.1} s",
        bytes as f64 / entries.len() as f64,
        started.elapsed().as_secs_f64()
    );

    let before = rss_kib();
    let started = Instant::now();
    let store = TopologyStore::open(&js, None).await.expect("open");
    let load = started.elapsed();
    let after = rss_kib();
    let (queues, bindings) = store.read(|t| (t.queues().count(), t.binding_count()));
    assert_eq!(queues, n);
    println!(
        "a TopologyStore loaded {queues} queues, {bindings} bindings in {:.2} s; RSS +{} MiB ({:.0} bytes per queue)",
        load.as_secs_f64(),
        after.saturating_sub(before) / 1024,
        (after.saturating_sub(before) * 1024) as f64 / n as f64
    );

    let lookups = 1_000_000;
    let started = Instant::now();
    let mut found = 0;
    for i in 0..lookups {
        let uid = format!("{:08x}", (i * 7919) % (n / 3).max(1));
        found += store.read(|t| t.route(EXCHANGE, &uid, None).map_or(0, |r| r.queues.len()));
    }
    println!(
        "route lookups by user key: {:.2} us each ({found} queues reached by {lookups} lookups)",
        started.elapsed().as_secs_f64() * 1e6 / lookups as f64
    );

    let started = Instant::now();
    let names = store.queue_names().await.expect("names");
    println!(
        "listing {} queue names from the keys: {:.2} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
}
