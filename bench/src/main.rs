//! Side-by-side benchmark: this client (`nats_client`), async-nats, and a raw-socket "limit"
//! client, against one `nats-server` started for the run. See bench/README.md.

mod amqp;
mod common;
mod kv;
mod limit;
mod memory;
mod ours;
mod report;
mod scenario;
mod theirs;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use crate::common::BenchError;
use crate::scenario::{Kind, MEMORY, SCENARIOS, Sample, Scenario, Server, Workload, selected};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "nats-client vs async-nats vs a raw-socket limit, on one local nats-server")]
struct Args {
    /// Messages (requests, for request/reply) per run in every scenario [default: per scenario,
    /// about 1-3 s per run].
    #[arg(long)]
    messages: Option<u64>,
    /// Runs per client and scenario; the table shows the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Run only these scenarios (repeatable): a name such as `pub-16`, a family such as `pub`,
    /// `pubsub`, `reqrep`, `js` (JetStream), or `memory`. Default: all.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Skip the short unreported warm-up run of each client before each scenario.
    #[arg(long)]
    no_warmup: bool,
    /// Run only these clients (repeatable): `ours`, `async-nats`, `limit`. Default: all three
    /// (ratios need ours and async-nats; "of limit" needs the limit). Useful for profiling.
    #[arg(long = "client", value_enum)]
    clients: Vec<ClientKind>,
    /// Run the AMQP comparison instead: amqp-compat on nats-server vs lapin on RabbitMQ
    /// (`--scenario amqp-publish` etc. selects cases; see bench/README.md).
    #[arg(long)]
    amqp: bool,
    /// With `--amqp`: nats-server is a 3-node cluster (durable queues are R3 streams).
    #[arg(long)]
    amqp_cluster: bool,
    /// With `--amqp`: run only these sides (repeatable). Default: all.
    #[arg(long = "amqp-side", value_enum)]
    amqp_sides: Vec<amqp::Side>,
    /// Requests in the memory scenario.
    #[arg(long, default_value_t = 1_000_000)]
    memory_requests: u64,
}

/// The three clients, in their order in round 0 (later rounds rotate it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ClientKind {
    Ours,
    AsyncNats,
    Limit,
}

impl ClientKind {
    const ALL: [ClientKind; 3] = [ClientKind::Ours, ClientKind::AsyncNats, ClientKind::Limit];

    pub(crate) fn label(self) -> &'static str {
        match self {
            ClientKind::Ours => "nats-client",
            ClientKind::AsyncNats => "async-nats",
            ClientKind::Limit => "limit",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            ClientKind::Ours => "ours",
            ClientKind::AsyncNats => "async",
            ClientKind::Limit => "limit",
        }
    }
}

/// All runs of one client in one scenario.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) scenario: Scenario,
    pub(crate) client: ClientKind,
    pub(crate) messages: u64,
    pub(crate) samples: Vec<Sample>,
}

/// A run that takes longer than this is a failure (a hang must not stall the whole bench).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Pause between runs so one run's leftovers (closing sockets, server buffers) settle.
const SETTLE: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let args = Args::parse();
    if args.amqp {
        return amqp::main(amqp::Options {
            runs: args.runs.max(1),
            filters: args.scenarios,
            cluster: args.amqp_cluster,
            warmup: !args.no_warmup,
            sides: args.amqp_sides,
        });
    }
    for f in &args.scenarios {
        if f != MEMORY
            && f != "all"
            && !SCENARIOS
                .iter()
                .any(|s| selected(s.name, std::slice::from_ref(f)))
        {
            let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            eprintln!(
                "unknown scenario {f:?}; known: {}, memory, all",
                names.join(", ")
            );
            return ExitCode::FAILURE;
        }
    }
    if args.runs == 0 {
        eprintln!("--runs must be at least 1");
        return ExitCode::FAILURE;
    }

    let server = nats_tests::NatsServer::single();
    // The JetStream scenarios get a server of their own (JetStream on, memory streams only),
    // started only when one of them is selected; the core scenarios keep a plain server.
    let js_server = SCENARIOS
        .iter()
        .any(|s| s.kind.is_jetstream() && selected(s.name, &args.scenarios))
        .then(nats_tests::NatsServer::jetstream);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = Server {
        url: server.url(),
        port: server.port(),
        monitor_port: server.monitor_port(),
    };
    let js_target = js_server.as_ref().map(|s| Server {
        url: s.url(),
        port: s.port(),
        monitor_port: s.monitor_port(),
    });
    // Everything runs in a task, so the clients' own tasks and the benchmark loop share the
    // same two workers (the thread blocking on the runtime stays idle).
    let outcome = runtime.block_on(async move {
        tokio::spawn(async move {
            run_all(&args, &target, js_target.as_ref())
                .await
                .map(|r| (args, r))
        })
        .await
        .map_err(|e| -> BenchError { format!("benchmark task failed: {e}").into() })?
    });
    drop(server);
    drop(js_server);
    match outcome {
        Ok((args, results)) => {
            if args.json {
                println!("{}", report::json(&results));
            } else {
                print!("{}", report::text(&results));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything the run produced.
pub(crate) struct Results {
    pub(crate) server_version: String,
    pub(crate) runs: usize,
    pub(crate) measured: Vec<Measured>,
    pub(crate) memory: Option<memory::MemoryReport>,
}

async fn run_all(
    args: &Args,
    core_server: &Server,
    js_server: Option<&Server>,
) -> Result<Results, BenchError> {
    let server = core_server;
    let server_version = {
        let probe = nats_client::connect(server.url.as_str()).await?;
        let version = probe.server_info().version.clone();
        probe.close().await?;
        version
    };
    eprintln!(
        "nats-server {server_version} at {}; {} run(s) per client",
        server.url, args.runs
    );
    // First, while the process is fresh: after the throughput runs the allocator keeps tens of
    // MiB it can reuse, and RSS would not move at all.
    let memory =
        if args.scenarios.is_empty() || args.scenarios.iter().any(|f| f == MEMORY || f == "all") {
            eprintln!(
                "memory: {} subscriptions, {} requests",
                memory::SUBSCRIPTIONS,
                args.memory_requests
            );
            Some(memory::run(&server.url, args.memory_requests).await?)
        } else {
            None
        };
    let mut measured = Vec::new();
    for sc in SCENARIOS
        .iter()
        .filter(|s| selected(s.name, &args.scenarios))
    {
        let messages = args.messages.unwrap_or(sc.default_messages).max(1);
        let server = if sc.kind.is_jetstream() {
            js_server.ok_or("no JetStream server")?
        } else {
            core_server
        };
        // No limit client for JetStream: a raw socket has no JetStream protocol.
        let clients: Vec<ClientKind> = ClientKind::ALL
            .into_iter()
            .filter(|c| args.clients.is_empty() || args.clients.contains(c))
            .filter(|c| !(sc.kind.is_jetstream() && *c == ClientKind::Limit))
            .collect();
        if clients.is_empty() {
            continue;
        }
        if !args.no_warmup {
            for &client in &clients {
                let w = workload(server, sc, client, "warmup", (messages / 10).max(1));
                run_one(sc.kind, client, w).await?;
            }
        }
        let mut rows: Vec<Measured> = clients
            .iter()
            .map(|&client| Measured {
                scenario: *sc,
                client,
                messages,
                samples: Vec::new(),
            })
            .collect();
        for round in 0..args.runs {
            for i in 0..clients.len() {
                let client = clients[(round + i) % clients.len()];
                let w = workload(server, sc, client, &round.to_string(), messages);
                let sample = run_one(sc.kind, client, w).await?;
                eprintln!(
                    "{:<14} {:<12} run {}: {:>12.0} msgs/s in {:.2} s{}{}",
                    sc.name,
                    client.label(),
                    round + 1,
                    sample.msgs_per_s(),
                    sample.elapsed_s,
                    sample
                        .p50_us
                        .map(|p| format!("  p50 {p:.1} us"))
                        .unwrap_or_default(),
                    if sample.lost() > 0 {
                        format!(
                            "  LOST {} (server slow consumers: {})",
                            sample.lost(),
                            sample.server_slow_consumers
                        )
                    } else {
                        String::new()
                    }
                );
                if let Some(row) = rows.iter_mut().find(|r| r.client == client) {
                    row.samples.push(sample);
                }
            }
        }
        measured.extend(rows);
    }
    Ok(Results {
        server_version,
        runs: args.runs,
        measured,
        memory,
    })
}

fn workload(
    server: &Server,
    sc: &Scenario,
    client: ClientKind,
    run: &str,
    messages: u64,
) -> Workload {
    let subject = format!("bench.{}.{}.{run}", sc.name, client.tag());
    Workload::new(server, subject, sc.payload, messages)
}

async fn run_one(kind: Kind, client: ClientKind, w: Workload) -> Result<Sample, BenchError> {
    let monitor_port = w.monitor_port;
    let slow_before = server_slow_consumers(monitor_port).await?;
    let run = async move {
        match (client, kind) {
            (ClientKind::Ours, Kind::Publish) => ours::publish(w).await,
            (ClientKind::Ours, Kind::PubSub) => ours::pubsub(w).await,
            (ClientKind::Ours, Kind::ReqRep) => ours::reqrep(w).await,
            (ClientKind::Ours, Kind::JsPublish) => ours::js_publish(w).await,
            (ClientKind::Ours, Kind::JsConsume) => ours::js_consume(w).await,
            (ClientKind::AsyncNats, Kind::Publish) => theirs::publish(w).await,
            (ClientKind::AsyncNats, Kind::PubSub) => theirs::pubsub(w).await,
            (ClientKind::AsyncNats, Kind::ReqRep) => theirs::reqrep(w).await,
            (ClientKind::AsyncNats, Kind::JsPublish) => theirs::js_publish(w).await,
            (ClientKind::AsyncNats, Kind::JsConsume) => theirs::js_consume(w).await,
            (ClientKind::Ours, Kind::KvPut) => kv::ours::put(w).await,
            (ClientKind::Ours, Kind::KvPutParallel) => kv::ours::put_parallel(w).await,
            (ClientKind::Ours, Kind::KvGet) => kv::ours::get(w).await,
            (ClientKind::Ours, Kind::OrderedReplay) => kv::ours::ordered(w).await,
            (ClientKind::AsyncNats, Kind::KvPut) => kv::theirs::put(w).await,
            (ClientKind::AsyncNats, Kind::KvPutParallel) => kv::theirs::put_parallel(w).await,
            (ClientKind::AsyncNats, Kind::KvGet) => kv::theirs::get(w).await,
            (ClientKind::AsyncNats, Kind::OrderedReplay) => kv::theirs::ordered(w).await,
            (ClientKind::Limit, kind) => tokio::task::spawn_blocking(move || match kind {
                Kind::Publish => limit::publish(w),
                Kind::PubSub => limit::pubsub(w),
                Kind::ReqRep => limit::reqrep(w),
                _ => Err("the limit client has no JetStream".into()),
            })
            .await
            .map_err(|e| -> BenchError { format!("limit client failed: {e}").into() })?,
        }
    };
    let mut sample =
        tokio::time::timeout(RUN_TIMEOUT, run)
            .await
            .map_err(|_| -> BenchError {
                format!("{} run did not finish in {RUN_TIMEOUT:?}", client.label()).into()
            })??;
    tokio::time::sleep(SETTLE).await;
    sample.server_slow_consumers = server_slow_consumers(monitor_port)
        .await?
        .saturating_sub(slow_before);
    Ok(sample)
}

/// The server's count of slow consumers so far (`/varz`).
async fn server_slow_consumers(monitor_port: u16) -> Result<u64, BenchError> {
    let varz = tokio::task::spawn_blocking(move || nats_tests::monitor_json(monitor_port, "/varz"))
        .await
        .map_err(|e| -> BenchError { format!("reading /varz failed: {e}").into() })?;
    Ok(varz["slow_consumers"].as_u64().unwrap_or(0))
}
