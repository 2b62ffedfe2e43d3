//! Times `nats-admin queues` over many amqp-compat queues: the figure in the README. Starts a
//! JetStream server with the test harness, declares `N` durable queues through amqp-compat
//! (default 1,000; design B: a stream each; `queues_10k` times 10,000 D queues on a
//! cluster; when a declare fails the rest is timed over what fits), publishes
//! one message to each, then runs the built binary (pass its path) `RUNS` times per listing and prints the
//! minimum, median and maximum wall time, process start included.
//!
//! ```sh
//! cargo build --release -p admin
//! cargo run --release -p admin --example time_queues -- target/release/nats-admin [N]
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use amqp_compat::options::{BasicPublishOptions, QueueDeclareOptions};
use amqp_compat::types::FieldTable;
use amqp_compat::{BasicProperties, Connection, ConnectionProperties};

const RUNS: usize = 10;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next() else {
        eprintln!("usage: time_queues <path to nats-admin> [queues]");
        std::process::exit(1);
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let server = nats_tests::NatsServer::jetstream();
    let conn = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("amqp-compat connects");
    let ch = conn.create_channel().await.expect("channel");
    let started = Instant::now();
    let mut n = n;
    for i in 0..n {
        let name = format!("backend-notifications.domain{i:05}.example");
        let declared = ch
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await;
        if let Err(e) = declared {
            // The server ran out of room for streams: time what fits.
            println!("declare {} failed: {e}", i + 1);
            n = i;
            break;
        }
        ch.basic_publish(
            "".into(),
            name.as_str().into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    }
    println!(
        "declared {n} queues in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let url = server.url();
    let all = n.to_string();
    time(&binary, &url, &["queues"], "first page of 100");
    time(
        &binary,
        &url,
        &[
            "queues",
            "--name-regex",
            r"^backend-notifications\..*",
            "--page",
            "3",
        ],
        "regex, page 3 of 100",
    );
    time(
        &binary,
        &url,
        &["queues", "--page-size", &all, "--json"],
        &format!("all {n} in one page, --json"),
    );
}

fn time(binary: &str, url: &str, args: &[&str], what: &str) {
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
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
    }
    times.sort();
    println!(
        "nats-admin queues, {what}, {RUNS} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
