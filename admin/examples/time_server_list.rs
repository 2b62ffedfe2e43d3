//! Times `nats-admin server list` against a 3-node cluster started by the test harness: the
//! figure in the README. Runs the built binary (pass its path) `RUNS` times and prints the
//! minimum, median and maximum wall time, process start included; then again with one node
//! killed (the answer then ends after the quiet period, 500 ms by default).
//!
//! ```sh
//! cargo build --release -p admin
//! cargo run --release -p admin --example time_server_list -- target/release/nats-admin
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn main() {
    let Some(binary) = std::env::args().nth(1) else {
        eprintln!("usage: time_server_list <path to nats-admin>");
        std::process::exit(1);
    };
    let mut cluster = nats_tests::Cluster::start(3);
    let url = cluster.sys_url();
    time(&binary, &url, RUNS, "3-node cluster");
    cluster.kill_node(2);
    time(&binary, &url, RUNS / 3, "3-node cluster, one node killed");
}

fn time(binary: &str, url: &str, runs: usize, what: &str) {
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let out = Command::new(binary)
            .args(["-s", url, "server", "list"])
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
        "nats-admin server list, {what}, {runs} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[runs / 2]),
        ms(times[runs - 1])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
