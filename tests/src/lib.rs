//! The test ground: real `nats-server` topologies on 127.0.0.1 for integration tests and benches.
//!
//! Every crate's integration tests use this crate as a dev-dependency. It finds the server binary
//! ([`binary`]: `$NATS_SERVER`, else `.tools/venv/bin/nats-server` as installed by
//! `bash scripts/setup`, else `PATH`), picks free loopback ports ([`ports`]), writes a config
//! ([`config`]) into a temporary directory, starts the server and waits on its monitoring
//! `/healthz` ([`health`], [`http`]), and kills it on drop ([`server`]). [`cluster`] runs several
//! nodes with routes and clustered JetStream, [`tls`] makes certificates at test time, [`accounts`]
//! is the `APP`/`SYS` accounts preset, and [`raw`] is a raw protocol connection for looking at
//! exactly what the server sends. [`rabbitmq`] starts a throwaway RabbitMQ for the AMQP
//! conformance suite.
//!
//! Failures panic with a message that says what went wrong (the server's log, or the install
//! command when `nats-server` is missing): a missing server fails the tests, it never skips them.
//!
//! The harness is blocking (std processes, sockets and sleeps). In tokio tests, start servers
//! before the client, and call what waits (`stop`, `restart`, `Cluster::restart_node`) from a
//! `#[tokio::test(flavor = "multi_thread")]` test or inside `tokio::task::spawn_blocking`, so
//! the client's tasks keep running (and reconnecting) meanwhile.
//!
//! ```no_run
//! use nats_tests::{Cluster, NatsServer, SYS_USER};
//!
//! let server = NatsServer::jetstream();
//! let mut conn = server.raw_connection();
//! assert_eq!(conn.info()["jetstream"], true);
//!
//! let cluster = Cluster::start(3);
//! let sys_urls = cluster.urls_as(&SYS_USER);
//! # let _ = sys_urls;
//! ```

pub mod accounts;
pub mod binary;
pub mod cluster;
pub mod config;
pub mod health;
pub mod http;
pub mod ports;
pub mod rabbitmq;
pub mod raw;
pub mod server;
pub mod tls;

pub use accounts::{APP_ACCOUNT, APP_USER, Credentials, SYS_ACCOUNT, SYS_USER};
pub use binary::{INSTALL_COMMAND, nats_server_binary, workspace_root};
pub use cluster::{Cluster, ClusterOptions};
pub use config::{ServerOptions, TlsOptions};
pub use health::wait_until;
pub use http::{http_get, monitor_json};
pub use ports::{free_port, free_ports};
pub use rabbitmq::{RABBITMQ_INSTALL_COMMAND, RabbitMq};
pub use raw::{RawConnection, RawMsg};
pub use server::NatsServer;
pub use tls::TlsFiles;
