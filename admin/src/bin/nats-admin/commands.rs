//! What each command does: ask, then print a table or JSON.

use std::time::Instant;

use admin::models::Varz;
use admin::options::{HealthzOptions, NoOptions};
use admin::report::{self, Replica};
use admin::{QueueAdmin, ServerKind, SysClient, VhostMapping};
use serde::Serialize;

use crate::args::{Command, ConnectionCommand, ServerCommand};
use crate::connect::admin_error;
use crate::render::{self, absent, bytes, opt, table, when};

/// What a command ended with: success, or `health` finding the cluster unhealthy.
pub enum Outcome {
    /// Done.
    Ok,
    /// `health` found a problem.
    Unhealthy,
}

/// Runs `command` over `sys`.
pub async fn run(sys: &SysClient, command: &Command, json: bool) -> Result<Outcome, String> {
    let e = |e: admin::AdminError| admin_error(&e);
    match command {
        Command::Server(ServerCommand::List) => {
            let o = report::overview(sys).await.map_err(e)?;
            if json {
                return render::json(&o).map(|_| Outcome::Ok);
            }
            let mut t = table(&[
                "NAME",
                "CLUSTER",
                "VERSION",
                "UPTIME",
                "CONNS",
                "ROUTES",
                "MEM",
                "CPU %",
                "SLOW",
                "JS",
                "META LEADER",
                "HEALTH",
            ]);
            for s in &o.servers {
                t.add_row(vec![
                    s.name.clone(),
                    opt(s.cluster.as_deref()),
                    s.version.clone(),
                    s.uptime.clone(),
                    s.connections.to_string(),
                    s.route_peers.len().to_string(),
                    bytes(s.mem as f64),
                    format!("{:.1}", s.cpu),
                    s.slow_consumers.to_string(),
                    if s.jetstream { "yes" } else { "no" }.to_string(),
                    opt(s.meta_leader.as_deref()),
                    s.health.clone(),
                ]);
            }
            println!("{t}");
            println!(
                "{} server(s), meta leader {}",
                o.servers.len(),
                opt(o.meta_leader.as_deref())
            );
            absent(&o.missing, o.unnamed_missing, &o.failed);
            Ok(Outcome::Ok)
        }
        Command::Server(ServerCommand::Ping) => {
            let started = Instant::now();
            let g = sys.statsz().await.map_err(e)?;
            let took = started.elapsed();
            #[derive(Serialize)]
            struct Ping<'a> {
                servers: Vec<(&'a str, &'a str, &'a str)>,
                missing: &'a [String],
                elapsed_ms: f64,
            }
            let ping = Ping {
                servers: g
                    .replies
                    .iter()
                    .map(|r| {
                        (
                            r.server.name.as_str(),
                            r.server.id.as_str(),
                            r.server.version.as_str(),
                        )
                    })
                    .collect(),
                missing: &g.missing,
                elapsed_ms: took.as_secs_f64() * 1000.0,
            };
            if json {
                return render::json(&ping).map(|_| Outcome::Ok);
            }
            let mut t = table(&["NAME", "ID", "VERSION"]);
            for (name, id, version) in &ping.servers {
                t.add_row(vec![*name, *id, *version]);
            }
            println!("{t}");
            println!(
                "{} answered in {:.1} ms",
                ping.servers.len(),
                ping.elapsed_ms
            );
            absent(&g.missing, g.unnamed_missing, &[]);
            Ok(Outcome::Ok)
        }
        Command::Server(ServerCommand::Info { name }) => {
            let reply = sys
                .server_request::<Varz>(name, ServerKind::Varz, &NoOptions::default())
                .await
                .map_err(e)?;
            if json {
                return render::json(&reply).map(|_| Outcome::Ok);
            }
            let v = &reply.data;
            let mut t = table(&["FIELD", "VALUE"]);
            let rows: Vec<(&str, String)> = vec![
                ("name", v.server_name.clone()),
                ("id", v.server_id.clone()),
                ("version", v.version.clone()),
                ("cluster", opt(v.cluster.name.as_deref())),
                ("host:port", format!("{}:{}", v.host, v.port)),
                ("started", when(v.start)),
                ("uptime", v.uptime.clone()),
                ("memory", bytes(v.mem as f64)),
                ("cpu %", format!("{:.1}", v.cpu)),
                ("cores", v.cores.to_string()),
                ("connections", v.connections.to_string()),
                ("total connections", v.total_connections.to_string()),
                ("route connections", v.routes.to_string()),
                ("leaf nodes", v.leafnodes.to_string()),
                ("subscriptions", v.subscriptions.to_string()),
                ("slow consumers", v.slow_consumers.to_string()),
                ("messages in/out", format!("{} / {}", v.in_msgs, v.out_msgs)),
                (
                    "bytes in/out",
                    format!(
                        "{} / {}",
                        bytes(v.in_bytes as f64),
                        bytes(v.out_bytes as f64)
                    ),
                ),
                ("max payload", bytes(v.max_payload as f64)),
                (
                    "meta leader",
                    opt(v.jetstream.meta.as_ref().and_then(|m| m.leader())),
                ),
                ("system account", opt(v.system_account.as_deref())),
            ];
            for (k, val) in rows {
                t.add_row(vec![k.to_string(), val]);
            }
            println!("{t}");
            Ok(Outcome::Ok)
        }
        Command::Connections { sort, top, account } => {
            let r = report::top_connections(sys, (*sort).into(), *top, account.as_deref())
                .await
                .map_err(e)?;
            if json {
                return render::json(&r).map(|_| Outcome::Ok);
            }
            let mut t = table(&[
                "SERVER",
                "CID",
                "NAME",
                "ACCOUNT",
                "PEER",
                "RTT",
                "PENDING",
                "MSGS IN",
                "MSGS OUT",
                "BYTES IN",
                "BYTES OUT",
                "SUBS",
                "UPTIME",
            ]);
            for c in &r.connections {
                t.add_row(vec![
                    c.server.clone(),
                    c.cid.to_string(),
                    opt(c.name.as_deref()),
                    opt(c.account.as_deref()),
                    c.peer.clone(),
                    opt(c.rtt.as_deref()),
                    bytes(c.pending_bytes as f64),
                    c.in_msgs.to_string(),
                    c.out_msgs.to_string(),
                    bytes(c.in_bytes as f64),
                    bytes(c.out_bytes as f64),
                    c.subscriptions.to_string(),
                    c.uptime.clone(),
                ]);
            }
            println!("{t}");
            println!("{} of {} connection(s)", r.connections.len(), r.total);
            absent(&r.missing, 0, &r.failed);
            Ok(Outcome::Ok)
        }
        Command::Connection(ConnectionCommand::List {
            vhost,
            default_account,
        }) => {
            let q = QueueAdmin::new(sys, VhostMapping::new(default_account.clone()));
            let conns = q.list_connections(vhost).await.map_err(e)?;
            if json {
                return render::json(&conns).map(|_| Outcome::Ok);
            }
            let mut t = table(&[
                "NAME",
                "USER PROVIDED NAME",
                "ACCOUNT",
                "USER",
                "PEER",
                "SINCE",
            ]);
            for c in &conns {
                t.add_row(vec![
                    c.name.clone(),
                    opt(c.user_provided_name.as_deref()),
                    opt(c.account.as_deref()),
                    opt(c.user.as_deref()),
                    c.peer.clone(),
                    when(c.connected_at),
                ]);
            }
            println!("{t}");
            Ok(Outcome::Ok)
        }
        Command::Connection(ConnectionCommand::Close { name }) => {
            let q = QueueAdmin::new(sys, VhostMapping::new("$G"));
            let closed = q.close_connection(name).await.map_err(e)?;
            if json {
                return render::json(&closed).map(|_| Outcome::Ok);
            }
            for c in &closed {
                println!(
                    "closed {}/{} ({})",
                    c.server,
                    c.cid,
                    c.user_provided_name.as_deref().unwrap_or("unnamed")
                );
            }
            Ok(Outcome::Ok)
        }
        Command::Streams { account } => {
            let r = report::streams(sys, account.as_deref()).await.map_err(e)?;
            if json {
                return render::json(&serde_json::json!({
                    "streams": r.streams,
                    "missing": r.missing,
                    "failed": r.failed,
                }))
                .map(|_| Outcome::Ok);
            }
            let mut t = table(&[
                "ACCOUNT",
                "STREAM",
                "MESSAGES",
                "BYTES",
                "CONSUMERS",
                "REPLICAS",
                "LEADER",
                "LAGGING",
                "LAST MESSAGE",
            ]);
            for s in &r.streams {
                t.add_row(vec![
                    s.account.clone(),
                    s.name.clone(),
                    s.messages.to_string(),
                    bytes(s.bytes as f64),
                    s.consumers.to_string(),
                    s.replicas.to_string(),
                    opt(s.leader.as_deref()),
                    lag_text(&s.lagging()),
                    when(s.last_activity),
                ]);
            }
            println!("{t}");
            absent(&r.missing, 0, &r.failed);
            Ok(Outcome::Ok)
        }
        Command::Consumers { stream, account } => {
            let r = report::streams(sys, account.as_deref()).await.map_err(e)?;
            if !r.streams.iter().any(|s| &s.name == stream) {
                return Err(format!("no stream named {stream:?}"));
            }
            let rows: Vec<_> = r.consumers.iter().filter(|c| &c.stream == stream).collect();
            if json {
                return render::json(&serde_json::json!({
                    "consumers": rows,
                    "missing": r.missing,
                    "failed": r.failed,
                }))
                .map(|_| Outcome::Ok);
            }
            let mut t = table(&[
                "ACCOUNT",
                "STREAM",
                "CONSUMER",
                "PENDING",
                "ACK PENDING",
                "REDELIVERED",
                "WAITING",
                "LAST DELIVERY",
                "LEADER",
                "LAGGING",
            ]);
            for c in rows {
                t.add_row(vec![
                    c.account.clone(),
                    c.stream.clone(),
                    c.name.clone(),
                    c.num_pending.to_string(),
                    c.ack_pending.to_string(),
                    c.redelivered.to_string(),
                    c.waiting.to_string(),
                    when(c.last_activity),
                    opt(c.leader.as_deref()),
                    lag_text(&c.lagging()),
                ]);
            }
            println!("{t}");
            absent(&r.missing, 0, &r.failed);
            Ok(Outcome::Ok)
        }
        Command::Queues { .. } | Command::Queue(_) => {
            Err("the queue commands run over JetStream, not $SYS".to_string())
        }
        Command::Kick { server, cid } => {
            sys.kick(server, *cid).await.map_err(e)?;
            if json {
                return render::json(
                    &serde_json::json!({"kicked": {"server": server, "cid": cid}}),
                )
                .map(|_| Outcome::Ok);
            }
            println!("kicked connection {cid} on {server}");
            Ok(Outcome::Ok)
        }
        Command::Health => {
            let o = report::overview(sys).await.map_err(e)?;
            let details = sys
                .healthz(&HealthzOptions {
                    details: true,
                    ..HealthzOptions::default()
                })
                .await
                .map_err(e)?;
            let outcome = if o.healthy {
                Outcome::Ok
            } else {
                Outcome::Unhealthy
            };
            if json {
                return render::json(&serde_json::json!({
                    "healthy": o.healthy,
                    "meta_leader": o.meta_leader,
                    "servers": details.replies,
                    "missing": o.missing,
                    "failed": o.failed,
                }))
                .map(|_| outcome);
            }
            let mut t = table(&["NAME", "STATUS", "PROBLEMS"]);
            for r in &details.replies {
                let problems: Vec<String> = r
                    .data
                    .errors
                    .iter()
                    .map(|p| {
                        let what = [&p.account, &p.stream, &p.consumer]
                            .into_iter()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("/");
                        format!("{} {what}: {}", p.kind, p.error.as_deref().unwrap_or(""))
                    })
                    .collect();
                t.add_row(vec![
                    r.server.name.clone(),
                    r.data.status.clone(),
                    problems.join("; "),
                ]);
            }
            for m in &o.missing {
                t.add_row(vec![
                    m.clone(),
                    "missing".to_string(),
                    "did not answer".to_string(),
                ]);
            }
            println!("{t}");
            println!(
                "cluster {}; meta leader {}",
                if o.healthy { "healthy" } else { "NOT healthy" },
                opt(o.meta_leader.as_deref())
            );
            absent(&[], o.unnamed_missing, &o.failed);
            Ok(outcome)
        }
    }
}

fn lag_text(lagging: &[&Replica]) -> String {
    if lagging.is_empty() {
        return "-".to_string();
    }
    lagging
        .iter()
        .map(|r| {
            if r.offline {
                format!("{} (offline)", r.name)
            } else {
                format!("{} (lag {})", r.name, r.lag)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
