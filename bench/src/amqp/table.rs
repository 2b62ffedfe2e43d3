//! The `--amqp` table: each side's median with the range over runs, the ratio per round
//! (median [min-max]), the floor and whether it is met; then CPU per message.

use std::fmt::Write as _;

use super::{Case, Measured, Options, Outcome, Side};

/// What a floor compares.
#[derive(Clone, Copy)]
enum Floor {
    /// ours / theirs rate at least this.
    AtLeast(f64),
    /// ours / theirs latency at most this.
    AtMost(f64),
    /// Shown, not judged.
    None,
}

impl Floor {
    fn met(self, ratio: f64) -> bool {
        match self {
            Floor::AtLeast(f) => ratio >= f,
            Floor::AtMost(f) => ratio <= f,
            Floor::None => true,
        }
    }

    fn text(self) -> String {
        match self {
            Floor::AtLeast(f) => format!(">= {f}x"),
            Floor::AtMost(f) => format!("<= {f}x"),
            Floor::None => "-".to_owned(),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn spread(v: &[f64]) -> (f64, f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(v.to_vec()), min, max)
}

fn runs(all: &[Measured], case: Case, side: Side) -> Option<&[Outcome]> {
    all.iter()
        .find(|m| m.case == case && m.side == side)
        .map(|m| m.runs.as_slice())
}

/// A figure with its range: `25.1k [24.0k-26.3k]`.
fn figure(v: &[f64], unit_k: bool) -> String {
    let (m, lo, hi) = spread(v);
    let f = |x: f64| match unit_k {
        true => format!("{:.1}k", x / 1000.0),
        false => format!("{x:.0}"),
    };
    format!("{} [{}-{}]", f(m), f(lo), f(hi))
}

/// One row comparing `ours` with `theirs` on `metric`, the ratio taken per round.
fn row(
    out: &mut String,
    label: &str,
    ours: &[Outcome],
    theirs: &[Outcome],
    metric: impl Fn(&Outcome) -> f64,
    unit_k: bool,
    floor: Floor,
) {
    let a: Vec<f64> = ours.iter().map(&metric).collect();
    let b: Vec<f64> = theirs.iter().map(&metric).collect();
    let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
    let (r, lo, hi) = spread(&ratios);
    let _ = writeln!(
        out,
        "{label:<30} {:<22} {:<22} {:<20} {:<8} {}",
        figure(&a, unit_k),
        figure(&b, unit_k),
        format!("{r:.2}x [{lo:.2}-{hi:.2}]"),
        floor.text(),
        match (floor, floor.met(r)) {
            (Floor::None, _) => "-",
            (_, true) => "yes",
            (_, false) => "NO",
        }
    );
}

pub fn text(all: &[Measured], options: &Options) -> String {
    let mut out = String::new();
    let nats = match options.cluster {
        true => "3-node nats-server cluster (R3 streams)",
        false => "one nats-server (R1 streams)",
    };
    let _ = writeln!(
        out,
        "\namqp-compat on {nats} vs lapin 4.12 on RabbitMQ (quorum queues); persistent, \
         confirms (window 1000), prefetch 500; {} run(s): median [min-max]; ratio per round",
        options.runs
    );
    let _ = writeln!(
        out,
        "{:<30} {:<22} {:<22} {:<20} {:<8} met",
        "case", "amqp-compat", "lapin", "ratio", "floor"
    );
    let rate = |o: &Outcome| o.per_second();
    let p50 = |o: &Outcome| o.percentiles.map_or(f64::NAN, |p| p.0);
    let p99 = |o: &Outcome| o.percentiles.map_or(f64::NAN, |p| p.1);
    for case in Case::ALL {
        let (Some(ours), Some(theirs)) =
            (runs(all, case, Side::Compat), runs(all, case, Side::Lapin))
        else {
            continue;
        };
        match case {
            Case::PublishConfirm => row(
                &mut out,
                "publish+confirm msgs/s",
                ours,
                theirs,
                rate,
                true,
                Floor::AtLeast(3.0),
            ),
            Case::PublishConsumeAck => row(
                &mut out,
                "publish+consume+ack msgs/s",
                ours,
                theirs,
                rate,
                true,
                Floor::AtLeast(3.0),
            ),
            Case::Fanout => row(
                &mut out,
                "wire fan-out x5 deliveries/s",
                ours,
                theirs,
                rate,
                true,
                Floor::AtLeast(3.0),
            ),
            Case::Rpc => {
                row(
                    &mut out,
                    "rpc round trip p50 us",
                    ours,
                    theirs,
                    p50,
                    false,
                    Floor::AtMost(0.6),
                );
                row(
                    &mut out,
                    "rpc round trip p99 us",
                    ours,
                    theirs,
                    p99,
                    false,
                    Floor::None,
                );
            }
            Case::RpcDirect => {
                row(
                    &mut out,
                    "rpc direct reply-to p50 us",
                    ours,
                    theirs,
                    p50,
                    false,
                    Floor::AtMost(0.6),
                );
                row(
                    &mut out,
                    "rpc direct reply-to p99 us",
                    ours,
                    theirs,
                    p99,
                    false,
                    Floor::None,
                );
            }
            Case::Latency => {
                row(
                    &mut out,
                    "latency @5k/s p50 us",
                    ours,
                    theirs,
                    p50,
                    false,
                    Floor::AtMost(0.5),
                );
                row(
                    &mut out,
                    "latency @5k/s p99 us",
                    ours,
                    theirs,
                    p99,
                    false,
                    Floor::AtMost(0.5),
                );
            }
        }
    }
    if let (Some(ours), Some(direct)) = (
        runs(all, Case::PublishConsumeAck, Side::Compat),
        runs(all, Case::PublishConsumeAck, Side::Direct),
    ) {
        let _ = writeln!(
            out,
            "{:<30} {:<22} {:<22} {:<20} {:<8} met",
            "facade", "amqp-compat", "jetstream", "ratio", "floor"
        );
        row(
            &mut out,
            "publish+consume+ack msgs/s",
            ours,
            direct,
            rate,
            true,
            Floor::AtLeast(0.7),
        );
    }
    let _ = writeln!(
        out,
        "\nCPU per message, us (median; client = this process, broker = the server processes; \
         both share the same 2 cores)"
    );
    let _ = writeln!(
        out,
        "{:<16} {:<24} {:<24} {:<24}",
        "case", "amqp-compat client/broker", "lapin client/broker", "jetstream client/broker"
    );
    for case in Case::ALL {
        let cell = |side| {
            runs(all, case, side).map_or_else(
                || "-".to_owned(),
                |r| {
                    let c = median(r.iter().map(Outcome::client_us).collect());
                    let b = median(r.iter().map(Outcome::broker_us).collect());
                    format!("{c:.1} / {b:.1}")
                },
            )
        };
        if all.iter().any(|m| m.case == case) {
            let _ = writeln!(
                out,
                "{:<16} {:<24} {:<24} {:<24}",
                case.name(),
                cell(Side::Compat),
                cell(Side::Lapin),
                cell(Side::Direct)
            );
        }
    }
    out
}
