//! What a [`SysClient`](crate::SysClient) knows about the cluster's servers: the state behind
//! "who should have answered". A pure value, fed by answers, with unit tests.

use std::collections::{BTreeMap, BTreeSet};

use crate::models::{ServerIdentity, ServerStats};

/// The servers known by name (with their id once one has answered), and the largest count of
/// servers any answer gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KnownServers {
    /// name -> id; the id is empty for a server only named by its peers.
    servers: BTreeMap<String, String>,
    /// How many servers there are by any count seen: the JetStream meta group's size, the
    /// servers a server knows in the system account, a server's route peers plus itself.
    size_hint: usize,
}

impl KnownServers {
    /// Learns from one server's `STATSZ`: itself, its route peers, the meta group's peers
    /// (which the meta leader lists, offline ones included) and the counts.
    pub(crate) fn learn_stats(&mut self, server: &ServerIdentity, stats: &ServerStats) {
        let mut names: BTreeSet<String> =
            stats.routes.iter().filter_map(|r| r.name.clone()).collect();
        names.insert(server.name.clone());
        let mut hint = names.len().max(stats.active_servers as usize);
        if let Some(meta) = stats.jetstream.as_ref().and_then(|j| j.meta.as_ref()) {
            names.extend(meta.replicas.iter().map(|p| p.name.clone()));
            names.extend(meta.leader().map(str::to_string));
            hint = hint.max(meta.cluster_size as usize);
        }
        for name in names.into_iter().filter(|n| !n.is_empty()) {
            self.servers.entry(name).or_default();
        }
        self.record(server);
        self.size_hint = self.size_hint.max(hint);
    }

    /// Records a server that answered (a new one, or a known one with a new id after a
    /// restart).
    pub(crate) fn record(&mut self, server: &ServerIdentity) {
        if !server.name.is_empty() {
            self.servers.insert(server.name.clone(), server.id.clone());
        }
    }

    /// How many answers to wait for; `None` (wait for the quiet period) while nothing is known.
    pub(crate) fn expected(&self) -> Option<usize> {
        Some(self.servers.len().max(self.size_hint)).filter(|n| *n > 0)
    }

    /// The known servers not among `answered`, and how many more the counts imply.
    pub(crate) fn missing<'a>(
        &self,
        answered: impl IntoIterator<Item = &'a str>,
    ) -> (Vec<String>, usize) {
        let answered: BTreeSet<&str> = answered.into_iter().collect();
        let missing: Vec<String> = self
            .servers
            .keys()
            .filter(|n| !answered.contains(n.as_str()))
            .cloned()
            .collect();
        let accounted = answered.len() + missing.len();
        (missing, self.size_hint.saturating_sub(accounted))
    }

    /// The id of the server with this name, or the id itself when it is a known id.
    pub(crate) fn id_of(&self, name_or_id: &str) -> Option<String> {
        if let Some(id) = self.servers.get(name_or_id).filter(|id| !id.is_empty()) {
            return Some(id.clone());
        }
        self.servers
            .values()
            .any(|id| id == name_or_id)
            .then(|| name_or_id.to_string())
    }

    /// A server of this name is known (with or without an id).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        self.servers.contains_key(name)
    }

    /// (name, id) pairs, by name.
    pub(crate) fn list(&self) -> Vec<(String, String)> {
        self.servers
            .iter()
            .map(|(n, i)| (n.clone(), i.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use jetstream::models::PeerInfo;

    use super::*;
    use crate::models::{JetStreamVarz, MetaCluster, RouteStat};

    fn id(name: &str) -> ServerIdentity {
        ServerIdentity {
            name: name.into(),
            id: format!("ID-{name}"),
            ..ServerIdentity::default()
        }
    }

    fn stats(routes: &[&str], meta: Option<MetaCluster>) -> ServerStats {
        ServerStats {
            routes: routes
                .iter()
                .map(|r| RouteStat {
                    name: Some(r.to_string()),
                    ..RouteStat::default()
                })
                .collect(),
            active_servers: 0,
            jetstream: meta.map(|m| JetStreamVarz {
                meta: Some(m),
                ..JetStreamVarz::default()
            }),
            ..ServerStats::default()
        }
    }

    #[test]
    fn nothing_known_means_wait_for_quiet() {
        let known = KnownServers::default();
        assert_eq!(known.expected(), None);
        assert_eq!(known.missing([]), (vec![], 0));
    }

    #[test]
    fn route_peers_are_expected_before_they_answer() {
        let mut known = KnownServers::default();
        known.learn_stats(&id("n1"), &stats(&["n2", "n2", "n3"], None));
        assert_eq!(known.expected(), Some(3));
        assert_eq!(known.missing(["n1", "n2"]), (vec!["n3".to_string()], 0));
        // Only answering servers have ids.
        assert_eq!(known.id_of("n1").as_deref(), Some("ID-n1"));
        assert_eq!(known.id_of("ID-n1").as_deref(), Some("ID-n1"));
        assert_eq!(known.id_of("n3"), None);
    }

    #[test]
    fn the_meta_leader_names_offline_peers_and_the_size_counts_the_unnamed() {
        let mut known = KnownServers::default();
        let meta = MetaCluster {
            leader: Some("n1".into()),
            replicas: vec![PeerInfo {
                name: "n3".into(),
                offline: true,
                ..PeerInfo::default()
            }],
            cluster_size: 4,
            ..MetaCluster::default()
        };
        known.learn_stats(&id("n1"), &stats(&["n2"], Some(meta)));
        assert_eq!(known.expected(), Some(4));
        // n3 is named though no route leads to it; a fourth server is only counted.
        assert_eq!(known.missing(["n1", "n2"]), (vec!["n3".to_string()], 1));
    }

    #[test]
    fn a_restarted_server_keeps_its_name_with_a_new_id() {
        let mut known = KnownServers::default();
        known.record(&id("n1"));
        known.record(&ServerIdentity {
            name: "n1".into(),
            id: "NEW".into(),
            ..ServerIdentity::default()
        });
        assert_eq!(known.list(), [("n1".to_string(), "NEW".to_string())]);
    }
}
