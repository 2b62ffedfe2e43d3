//! Wire's topology at scale on a 3-node NATS cluster (issue 15's figures): N client queues
//! `user-notifications.<uid>.<cid>` (3 clients per user, design D, each bound with `<uid>` and
//! `<uid>.<cid>`), then the idle cost per node, then fan-out with consumers attached.
//!
//! `cargo run -p amqp-compat --release --example wire_scale -- [--queues 10000]
//! [--consumers 1000] [--publishes 20000] [--rate 1000] [--seconds 10] [--declarers 32]`
//!
//! Prints: declare rate (queues/s, each queue = declare + 2 binds), the time a fresh connection
//! needs to load the topology, idle CPU (% of one core) and RSS per node with no consumers,
//! fan-out throughput (deliveries/s, publishes with key `<uid>` reaching every client queue
//! of the user, confirms on) and the delivery latency p50/p99 at a fixed offered load.
//! Starts its own cluster with the `nats-tests` harness (`nats-server` from `scripts/setup`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqp_compat::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use futures_util::StreamExt;
use nats_tests::Cluster;

const EXCHANGE: &str = "user-notifications";
const CLIENTS_PER_USER: usize = 3;
/// Tasks publishing at once in the throughput phase.
const PUBLISHERS: usize = 32;
/// Consumers per cannon channel.
const CONSUMERS_PER_CHANNEL: usize = 50;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    queues: usize,
    consumers: usize,
    publishes: usize,
    rate: usize,
    seconds: u64,
    declarers: usize,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        queues: 10_000,
        consumers: 1_000,
        publishes: 20_000,
        rate: 1_000,
        seconds: 10,
        declarers: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: u64 = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse()?;
        let value_usize = usize::try_from(value)?;
        match flag.as_str() {
            "--queues" => a.queues = value_usize,
            "--consumers" => a.consumers = value_usize,
            "--publishes" => a.publishes = value_usize,
            "--rate" => a.rate = value_usize.max(1),
            "--seconds" => a.seconds = value,
            "--declarers" => a.declarers = value_usize.max(1),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    a.consumers = a.consumers.min(a.queues);
    Ok(a)
}

fn user(i: usize) -> String {
    format!("u{:06}", i / CLIENTS_PER_USER)
}

fn queue_name(i: usize) -> String {
    format!("{EXCHANGE}.{}.c{}", user(i), i % CLIENTS_PER_USER)
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

async fn declare_client_queue(ch: &Channel, i: usize) -> amqp_compat::Result<()> {
    let name = queue_name(i);
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert("x-nats-tier".into(), text("consumer"));
    ch.queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
        .await?;
    let uid = user(i);
    for key in [uid.clone(), format!("{uid}.c{}", i % CLIENTS_PER_USER)] {
        ch.queue_bind(
            name.as_str().into(),
            EXCHANGE.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Declares queues `0..n` from `declarers` channels at once; returns queues per second.
async fn declare_all(conn: &Connection, n: usize, declarers: usize) -> Result<f64, Error> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..declarers {
        let ch = conn.create_channel().await?;
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, amqp_compat::Error>(());
                }
                declare_client_queue(&ch, i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// CPU ticks (user + system) and RSS (KiB) of process `pid`, from /proc.
fn proc_sample(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((ticks, rss))
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Prints each node's CPU (% of one core) over `window` and its RSS at the end.
async fn idle_cost(cluster: &Cluster, window: Duration) {
    let hz = clock_ticks_per_second();
    let before: Vec<_> = cluster
        .nodes()
        .iter()
        .map(|n| proc_sample(n.pid()))
        .collect();
    tokio::time::sleep(window).await;
    for (node, before) in cluster.nodes().iter().zip(before) {
        match (before, proc_sample(node.pid())) {
            (Some((t0, _)), Some((t1, rss))) => println!(
                "  idle {}: CPU {:.1}% of a core, RSS {} MiB",
                node.name(),
                (t1 - t0) as f64 / hz / window.as_secs_f64() * 100.0,
                rss / 1024
            ),
            _ => println!("  idle {}: /proc not readable", node.name()),
        }
    }
}

/// Latencies (µs) recorded by consumers, tagged with the phase they belong to.
#[derive(Default)]
struct Recorder {
    phase: AtomicUsize,
    delivered: AtomicUsize,
    latencies: Mutex<Vec<u64>>,
}

/// Attaches one consumer per queue `0..n` (prefetch 500, ack each by tag); each delivery's
/// payload carries its publish time as microseconds since `base`.
async fn attach(
    url: &str,
    n: usize,
    base: Instant,
    rec: Arc<Recorder>,
) -> Result<Connection, Error> {
    let props = ConnectionProperties::default().with_connection_name("cannon".into());
    let cannon = Connection::connect(url, props).await?;
    let mut ch = None;
    for i in 0..n {
        if i % CONSUMERS_PER_CHANNEL == 0 {
            let c = cannon.create_channel().await?;
            c.basic_qos(500, BasicQosOptions::default()).await?;
            ch = Some(c);
        }
        let Some(ch) = ch.clone() else { continue };
        let mut consumer = ch
            .basic_consume(
                queue_name(i).as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let rec = rec.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let sent = d
                    .data
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                let now = u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX);
                if rec.phase.load(Ordering::Relaxed) == 1 {
                    let mut l = rec.latencies.lock().unwrap_or_else(|p| p.into_inner());
                    l.push(now.saturating_sub(sent));
                }
                rec.delivered.fetch_add(1, Ordering::Relaxed);
                if ch
                    .basic_ack(d.delivery_tag, BasicAckOptions::default())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    Ok(cannon)
}

async fn publish(ch: &Channel, uid: &str, base: Instant) -> amqp_compat::Result<()> {
    let mut payload = u64::try_from(base.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .to_be_bytes()
        .to_vec();
    payload.extend_from_slice(br#"{"type":"notification","payload":"hello"}"#);
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_expiration("60000".into());
    ch.basic_publish(
        EXCHANGE.into(),
        uid.into(),
        BasicPublishOptions::default(),
        &payload,
        props,
    )
    .await?
    .await?;
    Ok(())
}

/// Waits until `rec` counts `target` deliveries or `limit` passes; returns the count.
async fn wait_delivered(rec: &Recorder, target: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    while rec.delivered.load(Ordering::Relaxed) < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rec.delivered.load(Ordering::Relaxed)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize] as f64 / 1000.0,
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = args()?;
    println!("starting a 3-node cluster");
    let cluster = Cluster::start(3);
    let url = cluster.urls().join(",");
    let props = ConnectionProperties::default().with_connection_name("gundeck".into());
    let gundeck = Connection::connect(&url, props).await?;
    let ch = gundeck.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await?;

    println!("declaring {} client queues", a.queues);
    let rate = declare_all(&gundeck, a.queues, a.declarers).await?;
    println!("  declare: {rate:.0} queues/s (declare + 2 binds each)");
    let started = Instant::now();
    let fresh = Connection::connect(&url, ConnectionProperties::default()).await?;
    println!(
        "  a fresh connection loads the topology in {:.0} ms ({} queues seen)",
        started.elapsed().as_secs_f64() * 1e3,
        fresh.topology().queues().count()
    );
    drop(fresh);

    println!("idle, no consumers (settling 5 s, then 10 s window)");
    tokio::time::sleep(Duration::from_secs(5)).await;
    idle_cost(&cluster, Duration::from_secs(10)).await;

    println!("attaching {} consumers", a.consumers);
    let base = Instant::now();
    let rec = Arc::new(Recorder::default());
    let started = Instant::now();
    let _cannon = attach(&url, a.consumers, base, rec.clone()).await?;
    println!("  attached in {:.1} s", started.elapsed().as_secs_f64());
    let users = a.consumers.div_ceil(CLIENTS_PER_USER).max(1);
    let per_user = |u: usize| CLIENTS_PER_USER.min(a.consumers - u * CLIENTS_PER_USER);
    ch.confirm_select(ConfirmSelectOptions::default()).await?;

    // Throughput: publishes from 32 tasks, each awaiting its confirm.
    let expected: usize = (0..a.publishes).map(|p| per_user(p % users)).sum();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..PUBLISHERS {
        let (ch, next, publishes) = (ch.clone(), next.clone(), a.publishes);
        tasks.push(tokio::spawn(async move {
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= publishes {
                    return Ok::<_, amqp_compat::Error>(());
                }
                publish(&ch, &user(p % users * CLIENTS_PER_USER), base).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let got = wait_delivered(&rec, expected, Duration::from_secs(60)).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  fan-out: {} publishes -> {got}/{expected} deliveries in {secs:.2} s = {:.0} deliveries/s",
        a.publishes,
        got as f64 / secs
    );

    // Latency at a fixed offered load.
    rec.phase.store(1, Ordering::Relaxed);
    let before = rec.delivered.load(Ordering::Relaxed);
    let total = a.rate * usize::try_from(a.seconds)?;
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut expected = 0;
    let mut pending = Vec::new();
    for p in 0..total {
        ticker.tick().await;
        expected += per_user(p % users);
        let (ch, uid) = (ch.clone(), user(p % users * CLIENTS_PER_USER));
        pending.push(tokio::spawn(async move { publish(&ch, &uid, base).await }));
    }
    for p in pending {
        p.await??;
    }
    let got = wait_delivered(&rec, before + expected, Duration::from_secs(60)).await - before;
    let mut l = std::mem::take(&mut *rec.latencies.lock().unwrap_or_else(|p| p.into_inner()));
    l.sort_unstable();
    println!(
        "  at {} publishes/s ({:.0} deliveries/s offered) for {} s: {got}/{expected} delivered, latency p50 {:.2} ms, p99 {:.2} ms",
        a.rate,
        expected as f64 / a.seconds as f64,
        a.seconds,
        percentile(&l, 0.50),
        percentile(&l, 0.99)
    );
    Ok(())
}
