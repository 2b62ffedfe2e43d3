//! Streams and consumers across the cluster (the management API's queue listing, in
//! JetStream terms), with the health of their replica groups.
//!
//! `JSZ` reports each stream and consumer once per server holding a replica; the leader's
//! view is the authoritative one (followers may be behind), so each is taken from the server
//! that is its leader, or from any replica while it has none.

use std::collections::BTreeMap;

use jetstream::models::{ClusterInfo, ConsumerInfo};
use serde::Serialize;
use time::OffsetDateTime;

use super::failed_names;
use crate::models::StreamDetail;
use crate::options::JszOptions;
use crate::{AdminError, SysClient};

/// A follower of a replica group, as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replica {
    /// The server name.
    pub name: String,
    /// Caught up with the leader.
    pub current: bool,
    /// Not heard from recently.
    pub offline: bool,
    /// Operations behind the leader.
    pub lag: u64,
}

/// One stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamRow {
    /// The account.
    pub account: String,
    /// The stream name.
    pub name: String,
    /// Its subjects.
    pub subjects: Vec<String>,
    /// Configured replicas.
    pub replicas: usize,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Consumers.
    pub consumers: usize,
    /// When the last message was stored.
    pub last_activity: Option<OffsetDateTime>,
    /// The leader's name; `None` while there is none.
    pub leader: Option<String>,
    /// The followers, as the leader sees them.
    pub followers: Vec<Replica>,
}

impl StreamRow {
    /// Followers that are behind or offline.
    pub fn lagging(&self) -> Vec<&Replica> {
        lagging(&self.followers)
    }
}

/// One consumer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerRow {
    /// The account.
    pub account: String,
    /// The stream.
    pub stream: String,
    /// The consumer name.
    pub name: String,
    /// Messages not yet delivered.
    pub num_pending: u64,
    /// Delivered and not yet acknowledged.
    pub ack_pending: u64,
    /// Delivered more than once.
    pub redelivered: u64,
    /// Pull requests waiting.
    pub waiting: u64,
    /// When it last delivered.
    pub last_activity: Option<OffsetDateTime>,
    /// The leader's name; `None` while there is none.
    pub leader: Option<String>,
    /// The followers, as the leader sees them.
    pub followers: Vec<Replica>,
}

impl ConsumerRow {
    /// Followers that are behind or offline.
    pub fn lagging(&self) -> Vec<&Replica> {
        lagging(&self.followers)
    }
}

/// Streams and consumers, and who did not answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamsReport {
    /// Streams, by account then name.
    pub streams: Vec<StreamRow>,
    /// Consumers, by account, stream, name.
    pub consumers: Vec<ConsumerRow>,
    /// Servers that did not answer (their replicas' views are absent; a stream led there
    /// shows a follower's view).
    pub missing: Vec<String>,
    /// Servers that answered with an error.
    pub failed: Vec<String>,
}

/// Every stream and consumer (of one account, or all), from `JSZ` on every server.
pub async fn streams(sys: &SysClient, account: Option<&str>) -> Result<StreamsReport, AdminError> {
    let options = JszOptions {
        account: account.map(str::to_string),
        accounts: true,
        streams: true,
        consumer: true,
        config: true,
        ..JszOptions::default()
    };
    let gathered = sys.jsz(&options).await?;
    // (account, stream) -> (is the leader's view, detail)
    let mut streams: BTreeMap<(String, String), (bool, StreamDetail)> = BTreeMap::new();
    let mut consumers: BTreeMap<(String, String, String), (bool, ConsumerInfo)> = BTreeMap::new();
    for reply in &gathered.replies {
        let server = reply.server.name.as_str();
        for acc in &reply.data.account_details {
            for detail in &acc.stream_detail {
                let led_here = leads(detail.cluster.as_ref(), server);
                for ci in &detail.consumer_detail {
                    let key = (acc.name.clone(), detail.name.clone(), ci.name.clone());
                    let here = leads(ci.cluster.as_ref(), server);
                    match consumers.get(&key) {
                        Some((true, _)) => {}
                        Some((false, _)) if !here => {}
                        _ => {
                            consumers.insert(key, (here, ci.clone()));
                        }
                    }
                }
                let key = (acc.name.clone(), detail.name.clone());
                match streams.get(&key) {
                    Some((true, _)) => {}
                    Some((false, _)) if !led_here => {}
                    _ => {
                        streams.insert(key, (led_here, detail.clone()));
                    }
                }
            }
        }
    }
    let streams = streams
        .into_iter()
        .map(|((account, name), (_, d))| {
            let (leader, followers) = replica_view(d.cluster.as_ref());
            let config = d.config.unwrap_or_default();
            StreamRow {
                account,
                name,
                subjects: config.subjects,
                replicas: config.num_replicas.max(1),
                messages: d.state.messages,
                bytes: d.state.bytes,
                consumers: d.state.consumers,
                last_activity: d.state.last_time,
                leader,
                followers,
            }
        })
        .collect();
    let consumers = consumers
        .into_iter()
        .map(|((account, stream, name), (_, c))| {
            let (leader, followers) = replica_view(c.cluster.as_ref());
            ConsumerRow {
                account,
                stream,
                name,
                num_pending: c.num_pending,
                ack_pending: c.num_ack_pending,
                redelivered: c.num_redelivered,
                waiting: c.num_waiting,
                last_activity: c.delivered.last_active,
                leader,
                followers,
            }
        })
        .collect();
    Ok(StreamsReport {
        streams,
        consumers,
        missing: gathered.missing.clone(),
        failed: failed_names(&gathered),
    })
}

/// `server` leads the group (a stream outside a cluster has no cluster info: its one server
/// leads it).
fn leads(cluster: Option<&ClusterInfo>, server: &str) -> bool {
    match cluster.and_then(|c| c.leader.as_deref()) {
        Some(leader) => leader == server,
        None => cluster.is_none(),
    }
}

fn replica_view(cluster: Option<&ClusterInfo>) -> (Option<String>, Vec<Replica>) {
    let Some(cluster) = cluster else {
        return (None, Vec::new());
    };
    let leader = cluster.leader.clone().filter(|l| !l.is_empty());
    let followers = cluster
        .replicas
        .iter()
        .map(|p| Replica {
            name: p.name.clone(),
            current: p.current,
            offline: p.offline,
            lag: p.lag,
        })
        .collect();
    (leader, followers)
}

fn lagging(followers: &[Replica]) -> Vec<&Replica> {
    followers
        .iter()
        .filter(|r| !r.current || r.offline || r.lag > 0)
        .collect()
}
