//! The cluster overview: one row per server.

use serde::Serialize;

use super::{failed_names, missing_of_all};
use crate::models::{HealthStatus, Routez, Varz};
use crate::options::{HealthzOptions, NoOptions, ServerKind};
use crate::{AdminError, SysClient};

/// One server in the overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSummary {
    /// The server name.
    pub name: String,
    /// The server id.
    pub id: String,
    /// The cluster name.
    pub cluster: Option<String>,
    /// The server version.
    pub version: String,
    /// Uptime as the server writes it.
    pub uptime: String,
    /// Client connections.
    pub connections: u64,
    /// Distinct route peers (by name).
    pub route_peers: Vec<String>,
    /// Resident memory in bytes.
    pub mem: i64,
    /// CPU use in percent.
    pub cpu: f64,
    /// Slow consumers since start.
    pub slow_consumers: i64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// JetStream runs on this server.
    pub jetstream: bool,
    /// The JetStream meta leader as this server sees it.
    pub meta_leader: Option<String>,
    /// `ok`, or what `HEALTHZ` reported wrong (`missing` when it did not answer `HEALTHZ`).
    pub health: String,
}

/// The whole cluster at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterOverview {
    /// The servers that answered, sorted by name.
    pub servers: Vec<ServerSummary>,
    /// Known servers that did not answer.
    pub missing: Vec<String>,
    /// Servers the meta group's size implies that nobody named and that did not answer.
    pub unnamed_missing: usize,
    /// Servers that answered with an error (name and error).
    pub failed: Vec<String>,
    /// The meta leader, when the servers that answered agree on one.
    pub meta_leader: Option<String>,
    /// Every server answered, every one is healthy, and (with JetStream) they agree on a
    /// meta leader.
    pub healthy: bool,
}

/// Builds the overview from `VARZ`, `ROUTEZ` and `HEALTHZ`, asked concurrently.
pub async fn overview(sys: &SysClient) -> Result<ClusterOverview, AdminError> {
    let (none, health_options) = (NoOptions::default(), HealthzOptions::default());
    let (varz, routez, healthz) = futures::join!(
        sys.ping::<Varz>(ServerKind::Varz, &none),
        sys.ping::<Routez>(ServerKind::Routez, &none),
        sys.ping::<HealthStatus>(ServerKind::Healthz, &health_options),
    );
    let (varz, routez, healthz) = (varz?, routez?, healthz?);
    let servers: Vec<ServerSummary> = varz
        .replies
        .iter()
        .map(|reply| {
            let v = &reply.data;
            let name = &reply.server.name;
            let health = match healthz.get(name) {
                Some(h) if h.is_ok() => "ok".to_string(),
                Some(h) => h.error.clone().unwrap_or_else(|| h.status.clone()),
                None => "missing".to_string(),
            };
            ServerSummary {
                name: name.clone(),
                id: reply.server.id.clone(),
                cluster: reply.server.cluster.clone().or(v.cluster.name.clone()),
                version: v.version.clone(),
                uptime: v.uptime.clone(),
                connections: v.connections,
                route_peers: routez.get(name).map(Routez::peers).unwrap_or_default(),
                mem: v.mem,
                cpu: v.cpu,
                slow_consumers: v.slow_consumers,
                subscriptions: v.subscriptions,
                jetstream: reply.server.jetstream,
                meta_leader: v
                    .jetstream
                    .meta
                    .as_ref()
                    .and_then(|m| m.leader())
                    .map(str::to_string),
                health,
            }
        })
        .collect();
    let jetstream: Vec<&ServerSummary> = servers.iter().filter(|s| s.jetstream).collect();
    let meta_leader = jetstream
        .first()
        .and_then(|s| s.meta_leader.clone())
        .filter(|l| jetstream.iter().all(|s| s.meta_leader.as_ref() == Some(l)));
    let missing = missing_of_all(&[&varz.missing, &routez.missing, &healthz.missing]);
    let mut failed = failed_names(&varz);
    failed.extend(failed_names(&routez));
    failed.extend(failed_names(&healthz));
    let healthy = missing.is_empty()
        && failed.is_empty()
        && varz.unnamed_missing == 0
        && servers.iter().all(|s| s.health == "ok")
        && (jetstream.is_empty() || meta_leader.is_some());
    Ok(ClusterOverview {
        servers,
        missing,
        unnamed_missing: varz.unnamed_missing,
        failed,
        meta_leader,
        healthy,
    })
}
