//! Medians, ratios, targets, and the two output forms (table, JSON).

use std::fmt::Write as _;

use serde::Serialize;

use crate::scenario::{JS_BATCH, JS_WINDOW, Kind, Sample};
use crate::{ClientKind, Measured, Results};

/// One table row: the median of a client's runs in one scenario.
#[derive(Debug, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub kind: Kind,
    pub payload_bytes: usize,
    pub client: &'static str,
    pub messages: u64,
    pub msgs_per_s: f64,
    /// Payload megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// The largest loss of any run (pub->sub).
    pub lost_max: Option<u64>,
    /// ours / async-nats, msgs/s (on our row).
    pub ratio_vs_async_nats: Option<f64>,
    /// ours / async-nats, p50 latency (request/reply, on our row; lower is better).
    pub p50_ratio_vs_async_nats: Option<f64>,
    /// msgs/s / the limit client's msgs/s.
    pub fraction_of_limit: Option<f64>,
    pub runs: Vec<Sample>,
}

/// One of the targets.
#[derive(Debug, Serialize)]
pub struct Target {
    pub what: &'static str,
    pub measured: f64,
    pub goal: &'static str,
    pub met: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn rows(measured: &[Measured]) -> Vec<Row> {
    let mut rows: Vec<Row> = measured
        .iter()
        .map(|m| {
            let msgs_per_s = median(m.samples.iter().map(Sample::msgs_per_s).collect());
            let pct = |f: fn(&Sample) -> Option<f64>| {
                let v: Vec<f64> = m.samples.iter().filter_map(f).collect();
                (!v.is_empty()).then(|| median(v))
            };
            Row {
                scenario: m.scenario.name,
                kind: m.scenario.kind,
                payload_bytes: m.scenario.payload,
                client: m.client.label(),
                messages: m.messages,
                msgs_per_s,
                mb_per_s: msgs_per_s * m.scenario.payload as f64 / 1e6,
                p50_us: pct(|s| s.p50_us),
                p99_us: pct(|s| s.p99_us),
                lost_max: (m.scenario.kind == Kind::PubSub)
                    .then(|| m.samples.iter().map(Sample::lost).max().unwrap_or(0)),
                ratio_vs_async_nats: None,
                p50_ratio_vs_async_nats: None,
                fraction_of_limit: None,
                runs: m.samples.clone(),
            }
        })
        .collect();
    let find = |rows: &[Row], scenario: &str, client: ClientKind| {
        rows.iter()
            .position(|r| r.scenario == scenario && r.client == client.label())
    };
    for i in 0..rows.len() {
        let scenario = rows[i].scenario;
        if let Some(l) = find(&rows, scenario, ClientKind::Limit) {
            rows[i].fraction_of_limit = Some(rows[i].msgs_per_s / rows[l].msgs_per_s);
        }
        if rows[i].client == ClientKind::Ours.label()
            && let Some(a) = find(&rows, scenario, ClientKind::AsyncNats)
        {
            rows[i].ratio_vs_async_nats = Some(rows[i].msgs_per_s / rows[a].msgs_per_s);
            if let (Some(ours), Some(theirs)) = (rows[i].p50_us, rows[a].p50_us) {
                rows[i].p50_ratio_vs_async_nats = Some(ours / theirs);
            }
        }
    }
    rows
}

fn targets(rows: &[Row]) -> Vec<Target> {
    let ours = |scenario: &str| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.client == ClientKind::Ours.label())
    };
    let mut out = Vec::new();
    if let Some(r) = ours("pub-16")
        && let Some(ratio) = r.ratio_vs_async_nats
    {
        out.push(Target {
            what: "publish 16 B, msgs/s ours/async-nats",
            measured: ratio,
            goal: ">= 1.5",
            met: ratio >= 1.5,
        });
    }
    if let Some(r) = ours("pubsub-128")
        && let Some(ratio) = r.ratio_vs_async_nats
    {
        out.push(Target {
            what: "pub->sub 128 B, msgs/s ours/async-nats",
            measured: ratio,
            goal: ">= 1.2",
            met: ratio >= 1.2,
        });
        let lost = r.runs.iter().map(Sample::lost).sum::<u64>() as f64;
        out.push(Target {
            what: "pub->sub 128 B, our messages lost (all runs)",
            measured: lost,
            goal: "== 0",
            met: lost == 0.0,
        });
    }
    if let Some(r) = ours("reqrep-16")
        && let Some(ratio) = r.p50_ratio_vs_async_nats
    {
        out.push(Target {
            what: "request/reply 16 B, p50 ours/async-nats",
            measured: ratio,
            goal: "<= 0.9",
            met: ratio <= 0.9,
        });
    }
    for (scenario, what, goal, min) in [
        (
            "js-pub-128",
            "js publish 128 B, msgs/s ours/async-nats",
            ">= 1.2",
            1.2,
        ),
        (
            "js-consume-128",
            "js consume 128 B, msgs/s ours/async-nats",
            ">= 1.0",
            1.0,
        ),
        (
            "kv-put-par-128",
            "kv put 128 B, 64 in flight, msgs/s ours/async-nats",
            ">= 1.0",
            1.0,
        ),
        (
            "ordered-128",
            "ordered consumer replay 128 B, msgs/s ours/async-nats",
            ">= 1.0",
            1.0,
        ),
    ] {
        if let Some(r) = ours(scenario)
            && let Some(ratio) = r.ratio_vs_async_nats
        {
            out.push(Target {
                what,
                measured: ratio,
                goal,
                met: ratio >= min,
            });
        }
    }
    for (scenario, what) in [
        ("kv-put-128", "kv put 128 B, p50 ours/async-nats"),
        ("kv-get-128", "kv get 128 B, p50 ours/async-nats"),
    ] {
        if let Some(r) = ours(scenario)
            && let Some(ratio) = r.p50_ratio_vs_async_nats
        {
            out.push(Target {
                what,
                measured: ratio,
                goal: "<= 1.0",
                met: ratio <= 1.0,
            });
        }
    }
    out
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// The table, the targets and the memory figures, for people.
pub fn text(results: &Results) -> String {
    let rows = rows(&results.measured);
    let mut s = String::new();
    let _ = writeln!(s, "\nnats-server {}", results.server_version);
    if !rows.is_empty() {
        let _ = writeln!(
            s,
            "median of {} run(s) per client and scenario; the clients' order rotates each round",
            results.runs
        );
        let _ = writeln!(
            s,
            "{:<14} {:<12} {:>10} {:>13} {:>10} {:>9} {:>9} {:>8} {:>12} {:>8}",
            "scenario",
            "client",
            "messages",
            "msgs/s",
            "MB/s",
            "p50 us",
            "p99 us",
            "loss",
            "ours/async",
            "of limit"
        );
        let _ = writeln!(s, "{}", "-".repeat(112));
    }
    let mut last = "";
    for r in &rows {
        if !last.is_empty() && last != r.scenario {
            let _ = writeln!(s);
        }
        last = r.scenario;
        let ratio = match (r.kind, r.ratio_vs_async_nats, r.p50_ratio_vs_async_nats) {
            (k, _, Some(p)) if k.is_latency() => format!("p50 {p:.2}x"),
            (_, Some(t), _) => format!("{t:.2}x"),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "{:<14} {:<12} {:>10} {:>13.0} {:>10.1} {:>9} {:>9} {:>8} {:>12} {:>8}",
            r.scenario,
            r.client,
            r.messages,
            r.msgs_per_s,
            r.mb_per_s,
            opt(r.p50_us, 1),
            opt(r.p99_us, 1),
            r.lost_max.map_or_else(|| "-".to_owned(), |l| l.to_string()),
            ratio,
            r.fraction_of_limit
                .map_or_else(|| "-".to_owned(), |f| format!("{:.1}%", f * 100.0)),
        );
    }
    if !rows.is_empty() {
        let _ = writeln!(
            s,
            "\nmsgs/s: published (pub-*, until the flush returned), received (pubsub-*, until the \
             subscriber had all N), answered (reqrep-*, sequential), acked by the stream (js-pub-*, \
             {JS_WINDOW} acks in flight at most, until the last ack), received and acked \
             (js-consume-*, pull batches of {JS_BATCH}, until a round trip after the last ack). \
             MB/s counts payload bytes. \
             loss: the worst run. async-nats subscribers use subscription_capacity = N + 1024 \
             (at least 65536) so they never drop; nats-client uses its default pending limits. \
             The limit is what the server takes from the simplest possible client: a client near \
             or above 100% of it saturates the server as well (above 100% is run-to-run noise)."
        );
    }
    let targets = targets(&rows);
    if !targets.is_empty() {
        let _ = writeln!(s, "\nTargets (issue 5; JetStream):");
        for t in &targets {
            let _ = writeln!(
                s,
                "  {:<46} {:>8.3}  goal {:<7} {}",
                t.what,
                t.measured,
                t.goal,
                if t.met { "MET" } else { "MISSED" }
            );
        }
    }
    if let Some(m) = &results.memory {
        let _ = writeln!(s, "\nMemory (nats-client):");
        let _ = writeln!(
            s,
            "  {} subscriptions: RSS {} KiB -> {} KiB (+{:.0} bytes each); after unsubscribing all: {} KiB",
            m.subscriptions,
            m.rss_before_subscribe_kib,
            m.rss_after_subscribe_kib,
            m.bytes_per_subscription,
            m.rss_after_unsubscribe_kib
        );
        let points: Vec<String> = m
            .rss_at
            .iter()
            .map(|(n, kib)| format!("{}k: {kib} KiB", n / 1000))
            .collect();
        let _ = writeln!(
            s,
            "  {} requests ({} in flight, {:.0} req/s): RSS at {}",
            m.requests,
            m.concurrency,
            m.requests_per_s,
            points.join(", ")
        );
        let _ = writeln!(
            s,
            "  growth from 10% to 100% of the run: {:+} KiB; pending_requests() at the end: {}",
            m.growth_kib, m.pending_requests_at_end
        );
    }
    s
}

/// Everything as one JSON document, for scripts.
pub fn json(results: &Results) -> String {
    let rows = rows(&results.measured);
    let targets = targets(&rows);
    let doc = serde_json::json!({
        "server_version": results.server_version,
        "runs": results.runs,
        "async_nats_subscription_capacity": "messages + 1024, at least 65536",
        "rows": rows,
        "targets": targets,
        "memory": results.memory,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
