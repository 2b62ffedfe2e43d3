//! A cluster of `nats-server` nodes on 127.0.0.1: full-mesh routes and clustered JetStream, for
//! failover and chaos tests.

use std::collections::HashSet;

use serde_json::Value;

use crate::accounts::{APP_USER, Credentials, SYS_USER};
use crate::config::{ClusterLink, ServerOptions};
use crate::health::{CLUSTER_TIMEOUT, START_TIMEOUT, poll_until};
use crate::http::try_http_get;
use crate::ports::free_ports;
use crate::server::{NatsServer, START_ATTEMPTS};

/// What to run as a cluster; [`Cluster::start`] uses the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Number of nodes (at least 2). Default 3.
    pub nodes: usize,
    /// The cluster `name`. Default `"c"`.
    pub name: String,
    /// Clustered JetStream (each node has its own store). Default true.
    pub jetstream: bool,
    /// The [`accounts`](crate::accounts) preset, with `no_auth_user: app` so clients without
    /// credentials land in `APP` while [`SYS_USER`] can reach `$SYS`. Default true.
    pub accounts: bool,
    /// Config text appended to every node's config.
    pub extra_config: String,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            name: "c".to_string(),
            jetstream: true,
            accounts: true,
            extra_config: String::new(),
        }
    }
}

/// A running cluster; node `i` is named `n{i+1}`. Dropping it kills every node.
///
/// ```no_run
/// let mut cluster = nats_tests::Cluster::start(3);
/// let urls = cluster.urls().join(",");
/// cluster.stop_node(0);
/// cluster.restart_node(0); // waits until routes and the JetStream meta leader are back
/// # let _ = urls;
/// ```
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<NatsServer>,
    options: ClusterOptions,
}

impl Cluster {
    /// Starts `nodes` nodes with the default [`ClusterOptions`] and waits until the cluster has
    /// formed (see [`wait_formed`](Self::wait_formed)).
    ///
    /// # Panics
    /// When `nodes < 2`, `nats-server` is missing, or the cluster does not form in 30 s.
    #[track_caller]
    pub fn start(nodes: usize) -> Cluster {
        Cluster::start_with(ClusterOptions {
            nodes,
            ..ClusterOptions::default()
        })
    }

    /// Starts a cluster as `options` describe and waits until it has formed.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    #[track_caller]
    pub fn start_with(options: ClusterOptions) -> Cluster {
        assert!(options.nodes >= 2, "a cluster needs at least 2 nodes");
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let mut cluster = Cluster::spawn(&options);
            match cluster.wait_nodes_ready() {
                Ok(()) => {
                    cluster.wait_formed();
                    return cluster;
                }
                Err(failure) if failure.address_in_use => failures.push(failure.message),
                Err(failure) => panic!("{}", failure.message),
            }
        }
        panic!(
            "the cluster could not start after {START_ATTEMPTS} attempts with different ports:\n{}",
            failures.join("\n")
        )
    }

    fn spawn(options: &ClusterOptions) -> Cluster {
        let n = options.nodes;
        let ports = free_ports(3 * n);
        let route_ports = ports[2 * n..].to_vec();
        let mut extra_config = String::new();
        if options.accounts {
            extra_config.push_str(&format!("no_auth_user: {}\n", APP_USER.user));
        }
        extra_config.push_str(&options.extra_config);
        let mut nodes: Vec<NatsServer> = (0..n)
            .map(|i| {
                NatsServer::prepare(
                    ServerOptions {
                        name: Some(format!("n{}", i + 1)),
                        jetstream: options.jetstream,
                        accounts: options.accounts,
                        extra_config: extra_config.clone(),
                        ..ServerOptions::default()
                    },
                    ports[i],
                    ports[n + i],
                    Some(ClusterLink {
                        name: options.name.clone(),
                        port: route_ports[i],
                        routes: route_ports.clone(),
                    }),
                )
            })
            .collect();
        // All nodes must run before any can be healthy: clustered JetStream needs a quorum.
        for node in &mut nodes {
            node.spawn();
        }
        Cluster {
            nodes,
            options: options.clone(),
        }
    }

    fn wait_nodes_ready(&mut self) -> Result<(), crate::server::StartFailure> {
        for node in &mut self.nodes {
            node.wait_ready(START_TIMEOUT)?;
        }
        Ok(())
    }

    /// Waits until every running node has a route to every other running node and, with
    /// JetStream, all running nodes agree on a meta leader.
    ///
    /// Routes are counted by distinct remote server name: since 2.10 a server keeps a pool of
    /// several route connections per peer (plus per-account routes), so `/routez` `num_routes`
    /// is larger than the number of peers.
    ///
    /// # Panics
    /// When that does not happen within 30 s; the message quotes each node's `/routez` and
    /// `/jsz` and the end of its log.
    #[track_caller]
    pub fn wait_formed(&mut self) {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let nodes = &self.nodes;
        let jetstream = self.options.jetstream;
        let formed = poll_until(CLUSTER_TIMEOUT, || {
            let routes_ok = running.iter().all(|&i| {
                route_peers(nodes[i].monitor_port()).is_some_and(|p| p.len() + 1 >= running.len())
            });
            routes_ok && (!jetstream || agreed_leader(nodes, &running).is_some())
        });
        if formed {
            return;
        }
        let mut report = String::new();
        for &i in &running {
            let node = &self.nodes[i];
            let get = |path| {
                try_http_get(node.monitor_port(), path)
                    .map(|(status, body)| format!("{status} {body}"))
                    .unwrap_or_else(|e| e.to_string())
            };
            let log = node.logs();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            report.push_str(&format!(
                "--- {} routes: {:?}\n/jsz: {}\nlog tail:\n{}\n",
                node.name(),
                route_peers(node.monitor_port()),
                get("/jsz"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        panic!(
            "the cluster did not form within {CLUSTER_TIMEOUT:?} (running nodes {running:?}):\n{report}"
        );
    }

    /// The JetStream meta leader's server name, as all running nodes report it; `None` while
    /// there is none or the nodes disagree.
    pub fn meta_leader(&mut self) -> Option<String> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        agreed_leader(&self.nodes, &running)
    }

    /// Every node's client URL (`nats://127.0.0.1:<port>`), in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// Every node's client URL with credentials, e.g. `cluster.urls_as(&SYS_USER)`.
    pub fn urls_as(&self, credentials: &Credentials) -> Vec<String> {
        self.nodes.iter().map(|n| n.url_as(credentials)).collect()
    }

    /// The system user's URL of node 0 (only meaningful with the accounts preset).
    pub fn sys_url(&self) -> String {
        self.nodes[0].url_as(&SYS_USER)
    }

    /// Node `i`.
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn node(&self, i: usize) -> &NatsServer {
        &self.nodes[i]
    }

    /// Node `i`, mutably (for [`NatsServer::kill`], [`NatsServer::set_extra_config`], ...).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn node_mut(&mut self, i: usize) -> &mut NatsServer {
        &mut self.nodes[i]
    }

    /// All nodes.
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
    }

    /// The number of nodes (running or not).
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// The options the cluster was started with.
    pub fn options(&self) -> &ClusterOptions {
        &self.options
    }

    /// Stops node `i` gracefully (SIGTERM); see [`NatsServer::stop`].
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// Kills node `i` with SIGKILL (a crash).
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Restarts node `i` on the same ports with the same store, then waits until the cluster
    /// has formed again.
    ///
    /// # Panics
    /// When the node does not come back healthy or the cluster does not re-form.
    #[track_caller]
    pub fn restart_node(&mut self, i: usize) {
        self.nodes[i].restart();
        self.wait_formed();
    }

    /// Puts node `i` into lame-duck mode; see [`NatsServer::lame_duck`].
    #[track_caller]
    pub fn lame_duck(&self, i: usize) {
        self.nodes[i].lame_duck();
    }
}

/// The distinct server names node's `/routez` reports routes to.
fn route_peers(monitor_port: u16) -> Option<HashSet<String>> {
    let (status, body) = try_http_get(monitor_port, "/routez").ok()?;
    if status != 200 {
        return None;
    }
    let routez: Value = serde_json::from_str(&body).ok()?;
    Some(
        routez["routes"]
            .as_array()?
            .iter()
            .filter_map(|r| r["remote_name"].as_str().map(str::to_string))
            .collect(),
    )
}

/// The meta leader all `running` nodes report via `/jsz`, if they agree.
fn agreed_leader(nodes: &[NatsServer], running: &[usize]) -> Option<String> {
    let mut leader: Option<String> = None;
    for &i in running {
        let (status, body) = try_http_get(nodes[i].monitor_port(), "/jsz").ok()?;
        if status != 200 {
            return None;
        }
        let jsz: Value = serde_json::from_str(&body).ok()?;
        let this = jsz["meta_cluster"]["leader"]
            .as_str()
            .filter(|l| !l.is_empty())?;
        match &leader {
            Some(l) if l != this => return None,
            _ => leader = Some(this.to_string()),
        }
    }
    leader
}
