//! `--amqp`: amqp-compat on nats-server vs lapin 4.12 on RabbitMQ (quorum queues, persistent
//! messages, confirms), both brokers started for the run, every case run on both sides in
//! interleaved rounds; plus the publish + consume + ack case written directly on `jetstream`
//! (what the facade costs). Issue 15, "Performance"; bench/README.md has the table.

mod cpu;
mod direct;
mod sides;
mod table;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use amqp_compat::types::{AMQPValue, FieldTable};

use crate::common::BenchError;
use crate::scenario::selected;
use cpu::Cost;

/// Confirms outstanding at most, per publishing channel (and PubAcks, for `jetstream`).
pub const CONFIRM_WINDOW: usize = 1000;
/// `basic_qos` prefetch of every consumer (pull batch, for `jetstream`).
pub const PREFETCH: u16 = 500;
/// Client queues per user in the fan-out case.
pub const FANOUT_CLIENTS: usize = 5;
/// A consumer that sees nothing for this long fails the run.
pub const IDLE: Duration = Duration::from_secs(20);
/// Offered load of the latency case, messages per second.
pub const LATENCY_RATE: u32 = 5_000;
/// Payload bytes of every message.
pub const PAYLOAD: usize = 128;

/// The cases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    PublishConfirm,
    PublishConsumeAck,
    Fanout,
    Rpc,
    RpcDirect,
    Latency,
}

impl Case {
    pub const ALL: [Case; 6] = [
        Case::PublishConfirm,
        Case::PublishConsumeAck,
        Case::Fanout,
        Case::Rpc,
        Case::RpcDirect,
        Case::Latency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Case::PublishConfirm => "amqp-publish",
            Case::PublishConsumeAck => "amqp-pca",
            Case::Fanout => "amqp-fanout",
            Case::Rpc => "amqp-rpc",
            Case::RpcDirect => "amqp-rpc-direct",
            Case::Latency => "amqp-latency",
        }
    }

    /// Messages per run (requests for RPC, publishes for the fan-out): a few seconds for lapin.
    fn messages(self) -> u64 {
        match self {
            Case::PublishConfirm => 60_000,
            Case::PublishConsumeAck => 30_000,
            Case::Fanout => 10_000,
            Case::Rpc | Case::RpcDirect => 3_000,
            Case::Latency => u64::from(LATENCY_RATE) * 3,
        }
    }

    /// The sides measured: the publish + consume + ack case also runs directly on jetstream.
    fn sides(self) -> &'static [Side] {
        match self {
            Case::PublishConsumeAck => &[Side::Compat, Side::Lapin, Side::Direct],
            _ => &[Side::Compat, Side::Lapin],
        }
    }
}

/// Who runs a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    /// amqp-compat on nats-server.
    #[value(name = "amqp-compat")]
    Compat,
    /// lapin on RabbitMQ.
    Lapin,
    /// Our `jetstream` crate directly, on nats-server.
    #[value(name = "jetstream")]
    Direct,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Compat => "amqp-compat",
            Side::Lapin => "lapin",
            Side::Direct => "jetstream",
        }
    }
}

/// What one run of one side does.
#[derive(Debug, Clone)]
pub struct Spec {
    pub url: String,
    /// Unique per run and side: every name the run declares ends with it.
    pub tag: String,
    pub messages: u64,
    pub rate: u32,
    /// Extra arguments of the durable queues (besides `x-queue-type: quorum`).
    pub queue_args: FieldTable,
    /// Extra arguments of the fan-out's client queues.
    pub fanout_args: FieldTable,
    /// Stream replicas for the direct flow (what amqp-compat gives a durable queue).
    pub replicas: usize,
    /// The broker's processes, for its CPU time.
    pub broker_pids: Vec<u32>,
}

impl Spec {
    pub fn name(&self, what: &str) -> String {
        format!("{what}-{}", self.tag)
    }

    pub fn payload(&self) -> Vec<u8> {
        vec![b'x'; PAYLOAD]
    }
}

/// Nanoseconds since the first call in this process: the send stamp of the latency case.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The send stamp at the start of a latency-case payload.
pub fn stamp(payload: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes)).filter(|&ns| ns != u64::from_le_bytes(*b"xxxxxxxx"))
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Messages (deliveries in the fan-out, round trips in RPC) completed.
    pub count: u64,
    pub cost: Cost,
    /// p50 and p99 in microseconds (RPC, latency).
    pub percentiles: Option<(f64, f64)>,
}

impl Outcome {
    pub fn rate(count: u64, cost: Cost) -> Self {
        Outcome {
            count,
            cost,
            percentiles: None,
        }
    }

    pub fn latency(mut ns: Vec<u64>, cost: Cost) -> Self {
        ns.sort_unstable();
        let pct = |p: usize| match ns.len() {
            0 => f64::NAN,
            n => ns[(n * p / 100).min(n - 1)] as f64 / 1000.0,
        };
        Outcome {
            count: ns.len() as u64,
            cost,
            percentiles: Some((pct(50), pct(99))),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.cost.elapsed.as_secs_f64()
    }

    /// Client CPU per message, microseconds.
    pub fn client_us(&self) -> f64 {
        self.cost.client_cpu.as_secs_f64() * 1e6 / self.count.max(1) as f64
    }

    /// Broker CPU per message, microseconds.
    pub fn broker_us(&self) -> f64 {
        self.cost.broker_cpu.as_secs_f64() * 1e6 / self.count.max(1) as f64
    }
}

/// `--amqp` options.
#[derive(Debug, Clone)]
pub struct Options {
    pub runs: usize,
    pub filters: Vec<String>,
    pub cluster: bool,
    pub warmup: bool,
    /// Only these sides (empty: all).
    pub sides: Vec<Side>,
}

/// Where each side connects.
struct Targets {
    nats_url: String,
    nats_pids: Vec<u32>,
    rabbit_url: String,
    rabbit_pids: Vec<u32>,
    replicas: usize,
}

/// Every run of one side in one case.
#[derive(Debug)]
pub struct Measured {
    pub case: Case,
    pub side: Side,
    pub runs: Vec<Outcome>,
}

pub fn main(options: Options) -> ExitCode {
    for f in &options.filters {
        if f != "amqp"
            && !Case::ALL
                .iter()
                .any(|c| selected(c.name(), std::slice::from_ref(f)))
        {
            let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
            eprintln!("unknown AMQP case {f:?}; known: amqp, {}", names.join(", "));
            return ExitCode::FAILURE;
        }
    }
    let started = Instant::now();
    let lapin = options.sides.is_empty() || options.sides.contains(&Side::Lapin);
    let rabbit = lapin.then(nats_tests::RabbitMq::start);
    let rabbit_pids: Vec<u32> = rabbit
        .as_ref()
        .and_then(|r| cpu::erlang_vm_pid(r.node()))
        .into_iter()
        .collect();
    if let Some(r) = &rabbit {
        eprintln!(
            "RabbitMQ {} up in {:.1} s (VM pid {rabbit_pids:?})",
            r.node(),
            started.elapsed().as_secs_f64()
        );
    }
    let (single, cluster) = match options.cluster {
        false => (Some(nats_tests::NatsServer::jetstream()), None),
        true => (None, Some(nats_tests::Cluster::start(3))),
    };
    let (nats_url, nats_pids) = match (&single, &cluster) {
        (Some(s), _) => (s.url(), vec![s.pid()]),
        (_, Some(c)) => (
            c.urls().join(","),
            c.nodes().iter().map(nats_tests::NatsServer::pid).collect(),
        ),
        _ => unreachable!("one of the two is started"),
    };
    let targets = Targets {
        nats_url,
        nats_pids,
        rabbit_url: rabbit.as_ref().map(|r| r.url()).unwrap_or_default(),
        rabbit_pids,
        replicas: if options.cluster { 3 } else { 1 },
    };
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
    let opts = options.clone();
    let outcome = runtime.block_on(async move {
        tokio::spawn(async move { run_all(&opts, &targets).await })
            .await
            .map_err(|e| -> BenchError { format!("benchmark task failed: {e}").into() })?
    });
    drop(runtime);
    drop(single);
    drop(cluster);
    drop(rabbit);
    match outcome {
        Ok(measured) => {
            print!("{}", table::text(&measured, &options));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("AMQP benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_all(options: &Options, t: &Targets) -> Result<Vec<Measured>, BenchError> {
    let mut all = Vec::new();
    for case in Case::ALL {
        if !options.filters.is_empty()
            && !options.filters.iter().any(|f| f == "amqp")
            && !selected(case.name(), &options.filters)
        {
            continue;
        }
        let sides: Vec<Side> = case
            .sides()
            .iter()
            .copied()
            .filter(|s| options.sides.is_empty() || options.sides.contains(s))
            .collect();
        if options.warmup {
            for &side in &sides {
                let spec = spec(t, case, side, "w", (case.messages() / 10).max(1));
                run_one(case, side, spec).await?;
            }
        }
        let mut rows: Vec<Measured> = sides
            .iter()
            .map(|&side| Measured {
                case,
                side,
                runs: Vec::new(),
            })
            .collect();
        for round in 0..options.runs {
            for i in 0..sides.len() {
                let side = sides[(round + i) % sides.len()];
                let spec = spec(t, case, side, &round.to_string(), case.messages());
                let o = run_one(case, side, spec).await?;
                eprintln!(
                    "{:<13} {:<12} run {}: {:>9.0}/s in {:.2} s{}  cpu client {:.1} us, broker {:.1} us per msg",
                    case.name(),
                    side.label(),
                    round + 1,
                    o.per_second(),
                    o.cost.elapsed.as_secs_f64(),
                    o.percentiles
                        .map(|(a, b)| format!("  p50 {a:.0} us p99 {b:.0} us"))
                        .unwrap_or_default(),
                    o.client_us(),
                    o.broker_us(),
                );
                if let Some(row) = rows.iter_mut().find(|r| r.side == side) {
                    row.runs.push(o);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        all.extend(rows);
    }
    Ok(all)
}

fn spec(t: &Targets, case: Case, side: Side, run: &str, messages: u64) -> Spec {
    let text = |s: &str| AMQPValue::LongString(s.into());
    let mut fanout_args = FieldTable::default();
    if side == Side::Compat {
        // Wire's client queues on NATS: a light consumer on the exchange's stream (design D,
        // docs/amqp-mapping.md §4), as examples/wire.rs declares them.
        fanout_args.insert("x-nats-tier".into(), text("consumer"));
    }
    let (url, broker_pids) = match side {
        Side::Lapin => (t.rabbit_url.clone(), t.rabbit_pids.clone()),
        Side::Compat | Side::Direct => (t.nats_url.clone(), t.nats_pids.clone()),
    };
    let side_tag = match side {
        Side::Compat => "c",
        Side::Lapin => "l",
        Side::Direct => "d",
    };
    Spec {
        url,
        tag: format!("{side_tag}{run}-{}", case.name()),
        messages,
        rate: LATENCY_RATE,
        queue_args: FieldTable::default(),
        fanout_args,
        replicas: t.replicas,
        broker_pids,
    }
}

async fn run_one(case: Case, side: Side, spec: Spec) -> Result<Outcome, BenchError> {
    use sides::{compat_side as c, lapin_side as l};
    let run = async move {
        match (side, case) {
            (Side::Compat, Case::PublishConfirm) => c::publish_confirm(spec).await,
            (Side::Compat, Case::PublishConsumeAck) => c::publish_consume_ack(spec).await,
            (Side::Compat, Case::Fanout) => c::fanout(spec).await,
            (Side::Compat, Case::Rpc) => c::rpc(spec).await,
            (Side::Compat, Case::RpcDirect) => c::rpc_direct(spec).await,
            (Side::Compat, Case::Latency) => c::latency(spec).await,
            (Side::Lapin, Case::PublishConfirm) => l::publish_confirm(spec).await,
            (Side::Lapin, Case::PublishConsumeAck) => l::publish_consume_ack(spec).await,
            (Side::Lapin, Case::Fanout) => l::fanout(spec).await,
            (Side::Lapin, Case::Rpc) => l::rpc(spec).await,
            (Side::Lapin, Case::RpcDirect) => l::rpc_direct(spec).await,
            (Side::Lapin, Case::Latency) => l::latency(spec).await,
            (Side::Direct, Case::PublishConsumeAck) => direct::publish_consume_ack(spec).await,
            (Side::Direct, _) => {
                Err("the direct jetstream flow is publish + consume + ack only".into())
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .map_err(|_| -> BenchError { format!("{} {} hung", side.label(), case.name()).into() })?
}
