//! Prints what an operator looks at first: every server, the busiest connections, and the
//! streams with their replica health; then the connections of the default vhost.
//!
//! ```sh
//! NATS_URL=nats://sys:sys-secret@127.0.0.1:4222 cargo run -p admin --example cluster_report
//! ```
//! The user must be in the system account.

use admin::report::{overview, streams, top_connections};
use admin::{ConnSort, QueueAdmin, SysClient, VhostMapping};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL")
        .unwrap_or_else(|_| "nats://sys:sys-secret@127.0.0.1:4222".to_string());
    let client = nats_client::connect(url.as_str()).await?;
    let sys = SysClient::new(client).await?;

    let cluster = overview(&sys).await?;
    println!(
        "meta leader: {:?}, healthy: {}",
        cluster.meta_leader, cluster.healthy
    );
    for s in &cluster.servers {
        println!(
            "  {:<8} {:<8} up {:<10} {:>5} conns  routes to {:?}  health {}",
            s.name, s.version, s.uptime, s.connections, s.route_peers, s.health
        );
    }
    for name in &cluster.missing {
        println!("  {name}: did not answer");
    }

    let top = top_connections(&sys, ConnSort::Pending, 5, None).await?;
    println!("busiest of {} connections (by pending bytes):", top.total);
    for c in &top.connections {
        println!(
            "  {}/{} {:?} account {:?} pending {} rtt {:?}",
            c.server, c.cid, c.name, c.account, c.pending_bytes, c.rtt
        );
    }

    let js = streams(&sys, None).await?;
    for s in &js.streams {
        let lagging: Vec<&str> = s.lagging().iter().map(|r| r.name.as_str()).collect();
        println!(
            "stream {}/{}: {} msgs, {} consumers, leader {:?}, lagging {:?}",
            s.account, s.name, s.messages, s.consumers, s.leader, lagging
        );
    }

    // The management API's connection listing: vhost "/" is the global account here.
    let queues = QueueAdmin::new(&sys, VhostMapping::new("$G"));
    for c in queues.list_connections("/").await? {
        println!("{} {:?}", c.name, c.user_provided_name);
    }
    Ok(())
}
