//! Cluster-wide NATS administration over `$SYS` and JetStream: the RabbitMQ management-API
//! equivalent for the services being migrated, and the `nats-admin` command-line tool.
//!
//! - [`SysClient`]: scatter-gather `$SYS.REQ.SERVER.PING.<KIND>` requests (VARZ, CONNZ,
//!   ROUTEZ, GATEWAYZ, LEAFZ, SUBSZ, JSZ, HEALTHZ, ACCOUNTZ, STATSZ) with one answer per
//!   server, the servers that did not answer named in [`Gathered::missing`]; per-server and
//!   per-account requests; kick a client or send it lame duck.
//! - [`options`]: what each request can filter on; [`models`]: what the servers answer.
//! - [`report`]: the cluster overview, the busiest connections, streams and consumers.
//! - [`QueueAdmin`]: the management calls the services make: a vhost's connections and
//!   closing one by name (over `$SYS`); listing amqp-compat's queues with a name regex and
//!   paging, and deleting one (over the vhost account's JetStream and amqp-compat's topology).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = nats_client::ConnectOptions::new()
//!     .user_and_password("sys", "sys-secret")
//!     .connect("nats://127.0.0.1:4222")
//!     .await?;
//! let sys = admin::SysClient::new(client).await?;
//! let overview = admin::report::overview(&sys).await?;
//! for server in &overview.servers {
//!     println!("{} {} {} connections", server.name, server.version, server.connections);
//! }
//! for name in &overview.missing {
//!     println!("{name} did not answer");
//! }
//! # Ok(()) }
//! ```

mod error;
mod gather;
mod known;
pub mod models;
pub mod options;
mod queue_admin;
mod queues;
mod reply;
pub mod report;
mod sys;

pub use error::AdminError;
pub use options::{AccountKind, ConnSort, ConnState, ConnzOptions, JszOptions, ServerKind};
pub use queue_admin::{ClosedConnection, ConnectionInfo, GLOBAL_ACCOUNT, QueueAdmin, VhostMapping};
pub use queues::{Page, QueueDesign, QueueInfo, QueueStorageInfo, vhost_namespace};
pub use reply::{Gathered, ServerFailure, ServerReply};
pub use sys::{SysClient, Timing, UserInfo};

/// Locks a mutex, ignoring poisoning: the data behind it is consistent at every step.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
