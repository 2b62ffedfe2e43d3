//! The issue-16 figure: `nats-admin queues` over 10,000 Wire client queues on the harness's
//! 3-node cluster. Starts the cluster, declares `N` (default 10,000) queues
//! `user-notifications.u<uid>.c<cid>` (3 clients per user, `x-nats-tier: consumer` = design
//! D, each bound with `<uid>` and `<uid>.<cid>` to direct exchange `user-notifications`)
//! from `TASKS` channels in parallel, and prints the declare rate, how long a fresh
//! `Connection` takes to load the topology, and the wall time of the built binary (process
//! start included) for: the first page, a regex matching one user's queues, a page in the
//! middle, and a regex matching a tenth of them.
//!
//! ```sh
//! cargo build --release -p admin --bin nats-admin
//! cargo run --release -p admin --example queues_10k -- target/release/nats-admin [N]
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use amqp_compat::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use amqp_compat::types::{AMQPValue, FieldTable};
use amqp_compat::{Channel, Connection, ConnectionProperties, ExchangeKind};

const RUNS: usize = 5;
const TASKS: usize = 32;
const EXCHANGE: &str = "user-notifications";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next() else {
        eprintln!("usage: queues_10k <path to nats-admin> [queues]");
        std::process::exit(1);
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let cluster = nats_tests::Cluster::start(3);
    let url = cluster.node(0).url();
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("amqp-compat connects");
    let ch = conn.create_channel().await.expect("channel");
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("exchange");

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let ch = conn.create_channel().await.expect("channel");
        let ids: Vec<usize> = (t..n).step_by(TASKS).collect();
        tasks.push(tokio::spawn(declare(ch, ids)));
    }
    for t in tasks {
        t.await.expect("declaring task");
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "declared {n} D queues + {} bindings in {took:.1} s: {:.0} queues/s (declare + 2 binds each, {TASKS} channels)",
        2 * n,
        n as f64 / took
    );

    let started = Instant::now();
    let fresh = Connection::connect(&cluster.node(1).url(), ConnectionProperties::default())
        .await
        .expect("a fresh connection");
    let load = started.elapsed();
    let t = fresh.topology();
    assert_eq!(
        t.queues().count(),
        n,
        "the fresh connection sees every queue"
    );
    println!(
        "a fresh Connection (node 1) loaded {} queues, {} bindings in {:.0} ms",
        t.queues().count(),
        t.binding_count(),
        ms(load)
    );

    let url = cluster.node(2).url();
    time(&binary, &url, &["queues"], "first page of 100");
    time(
        &binary,
        &url,
        &["queues", "--name-regex", r"^user-notifications\.u1234\..*"],
        "regex matching one user's 3 queues",
    );
    let middle = (n / 100 / 2).max(1).to_string();
    time(
        &binary,
        &url,
        &["queues", "--page", &middle, "--page-size", "100"],
        &format!("page {middle} of 100"),
    );
    time(
        &binary,
        &url,
        &[
            "queues",
            "--name-regex",
            r"^user-notifications\.u[0-9]*7\..*",
            "--page-size",
            "1000",
            "--json",
        ],
        "regex matching a tenth, one page of 1000, --json",
    );
}

async fn declare(ch: Channel, ids: Vec<usize>) {
    let mut args = FieldTable::default();
    args.insert(
        "x-nats-tier".into(),
        AMQPValue::LongString("consumer".into()),
    );
    for i in ids {
        let (uid, cid) = (format!("u{}", i / 3), format!("c{}", i % 3));
        let name = format!("{EXCHANGE}.{uid}.{cid}");
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::durable(),
            args.clone(),
        )
        .await
        .expect("declare");
        for key in [uid.clone(), format!("{uid}.{cid}")] {
            ch.queue_bind(
                name.as_str().into(),
                EXCHANGE.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        }
    }
}

fn time(binary: &str, url: &str, args: &[&str], what: &str) {
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut lines = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = Command::new(binary)
            .args(["-s", url])
            .args(args)
            .output()
            .expect("nats-admin runs");
        times.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines = out.stdout.iter().filter(|b| **b == b'\n').count();
    }
    times.sort();
    println!(
        "nats-admin queues, {what} ({lines} output lines), {RUNS} runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
