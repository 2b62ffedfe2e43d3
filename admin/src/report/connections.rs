//! The busiest connections across the cluster.

use std::cmp::Reverse;

use serde::Serialize;

use super::failed_names;
use crate::models::{ConnInfo, go_duration};
use crate::options::{ConnSort, ConnzOptions};
use crate::{AdminError, SysClient};

/// One connection in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionRow {
    /// The server it is on.
    pub server: String,
    /// Its connection id there.
    pub cid: u64,
    /// The name the client gave.
    pub name: Option<String>,
    /// Its account.
    pub account: Option<String>,
    /// Its user.
    pub user: Option<String>,
    /// `ip:port`.
    pub peer: String,
    /// Round-trip time as the server writes it.
    pub rtt: Option<String>,
    /// Bytes waiting to be written to it.
    pub pending_bytes: u64,
    /// Messages it sent.
    pub in_msgs: i64,
    /// Messages it was sent.
    pub out_msgs: i64,
    /// Bytes it sent.
    pub in_bytes: i64,
    /// Bytes it was sent.
    pub out_bytes: i64,
    /// Its subscriptions.
    pub subscriptions: u64,
    /// How long it has been connected.
    pub uptime: String,
    /// Its client library and version.
    pub client: String,
}

/// The top connections and who did not answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopConnections {
    /// The rows, in the requested order.
    pub connections: Vec<ConnectionRow>,
    /// Open connections on the servers that answered, in all accounts (the server counts
    /// before it filters by account).
    pub total: u64,
    /// Servers that did not answer.
    pub missing: Vec<String>,
    /// Servers that answered with an error.
    pub failed: Vec<String>,
}

/// The `n` connections with the most of `by` across the cluster (each server sends its top
/// `n`, and they are merged), optionally in one account.
pub async fn top_connections(
    sys: &SysClient,
    by: ConnSort,
    n: usize,
    account: Option<&str>,
) -> Result<TopConnections, AdminError> {
    let options = ConnzOptions {
        sort: Some(by),
        auth: true,
        limit: n.max(1) as u64,
        account: account.map(str::to_string),
        ..ConnzOptions::default()
    };
    let gathered = sys.connz(&options).await?;
    let mut all: Vec<(String, ConnInfo)> = Vec::new();
    let mut total = 0;
    for reply in &gathered.replies {
        total += reply.data.total;
        all.extend(
            reply
                .data
                .connections
                .iter()
                .map(|c| (reply.server.name.clone(), c.clone())),
        );
    }
    sort_connections(&mut all, by);
    all.truncate(n);
    Ok(TopConnections {
        connections: all.into_iter().map(|(s, c)| row(s, c)).collect(),
        total,
        missing: gathered.missing.clone(),
        failed: failed_names(&gathered),
    })
}

/// The order the server uses, applied to the merged lists (cid and start ascending, the rest
/// descending); ties by server and cid so the output is stable.
fn sort_connections(all: &mut [(String, ConnInfo)], by: ConnSort) {
    let rtt = |c: &ConnInfo| c.rtt.as_deref().and_then(go_duration).unwrap_or_default();
    let idle = |c: &ConnInfo| go_duration(&c.idle).unwrap_or_default();
    let up = |c: &ConnInfo| go_duration(&c.uptime).unwrap_or_default();
    all.sort_by(|(sa, a), (sb, b)| {
        let primary = match by {
            ConnSort::Cid => a.cid.cmp(&b.cid),
            ConnSort::Start => a.start.cmp(&b.start),
            ConnSort::Subs => Reverse(a.subscriptions).cmp(&Reverse(b.subscriptions)),
            ConnSort::Pending => Reverse(a.pending_bytes).cmp(&Reverse(b.pending_bytes)),
            ConnSort::MsgsTo => Reverse(a.out_msgs).cmp(&Reverse(b.out_msgs)),
            ConnSort::MsgsFrom => Reverse(a.in_msgs).cmp(&Reverse(b.in_msgs)),
            ConnSort::BytesTo => Reverse(a.out_bytes).cmp(&Reverse(b.out_bytes)),
            ConnSort::BytesFrom => Reverse(a.in_bytes).cmp(&Reverse(b.in_bytes)),
            ConnSort::Last => Reverse(a.last_activity).cmp(&Reverse(b.last_activity)),
            ConnSort::Idle => Reverse(idle(a)).cmp(&Reverse(idle(b))),
            ConnSort::Uptime => Reverse(up(a)).cmp(&Reverse(up(b))),
            ConnSort::Rtt => Reverse(rtt(a)).cmp(&Reverse(rtt(b))),
        };
        primary.then_with(|| (sa, a.cid).cmp(&(sb, b.cid)))
    });
}

fn row(server: String, c: ConnInfo) -> ConnectionRow {
    let client = match (&c.lang, &c.version) {
        (Some(l), Some(v)) => format!("{l} {v}"),
        (Some(l), None) => l.clone(),
        _ => String::new(),
    };
    ConnectionRow {
        server,
        cid: c.cid,
        name: c.name.filter(|n| !n.is_empty()),
        // The server leaves the global account's name out.
        account: Some(
            c.account
                .unwrap_or_else(|| crate::GLOBAL_ACCOUNT.to_string()),
        ),
        user: c.authorized_user,
        peer: format!("{}:{}", c.ip, c.port),
        rtt: c.rtt,
        pending_bytes: c.pending_bytes,
        in_msgs: c.in_msgs,
        out_msgs: c.out_msgs,
        in_bytes: c.in_bytes,
        out_bytes: c.out_bytes,
        subscriptions: c.subscriptions,
        uptime: c.uptime,
        client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(cid: u64, out_msgs: i64, rtt: &str) -> ConnInfo {
        ConnInfo {
            cid,
            out_msgs,
            rtt: Some(rtt.into()),
            ..ConnInfo::default()
        }
    }

    #[test]
    fn merged_lists_sort_like_the_server() {
        let mut all = vec![
            ("n1".to_string(), conn(1, 5, "2ms")),
            ("n2".to_string(), conn(1, 50, "150µs")),
            ("n1".to_string(), conn(2, 50, "1.5s")),
        ];
        sort_connections(&mut all, ConnSort::MsgsTo);
        let order: Vec<(&str, u64)> = all.iter().map(|(s, c)| (s.as_str(), c.cid)).collect();
        assert_eq!(order, [("n1", 2), ("n2", 1), ("n1", 1)]);
        sort_connections(&mut all, ConnSort::Rtt);
        let order: Vec<(&str, u64)> = all.iter().map(|(s, c)| (s.as_str(), c.cid)).collect();
        assert_eq!(order, [("n1", 2), ("n1", 1), ("n2", 1)]);
    }
}
