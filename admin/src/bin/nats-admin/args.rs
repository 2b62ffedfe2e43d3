//! The command line: global connection options and the commands.

use std::path::PathBuf;
use std::time::Duration;

use admin::ConnSort;
use admin::models::go_duration;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Administration of a NATS cluster over the system account.
#[derive(Debug, Parser)]
#[command(
    name = "nats-admin",
    version,
    after_help = "`queues` and `queue delete` work on amqp-compat's queues and connect as a \
                  user of the services' account (not the system account): the vhost is \
                  amqp-compat's namespace (`/` is none).\n\
                  Exit codes: 0 success; 1 error (unreachable server, refused credentials, \
                  user outside the system account, ...) or `health` found the cluster \
                  unhealthy; 2 usage error."
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the cluster. Flags win over the environment, which wins over `--context`.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Server URL(s), comma-separated.
    #[arg(short = 's', long = "server", env = "NATS_URL", global = true)]
    pub url: Option<String>,
    /// User name.
    #[arg(long, env = "NATS_USER", global = true)]
    pub user: Option<String>,
    /// Password.
    #[arg(long, env = "NATS_PASSWORD", global = true, hide_env_values = true)]
    pub password: Option<String>,
    /// A `.creds` file (JWT and NKey seed).
    #[arg(long, env = "NATS_CREDS", global = true)]
    pub creds: Option<PathBuf>,
    /// A file holding an NKey seed.
    #[arg(long, env = "NATS_NKEY", global = true)]
    pub nkey: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long = "tlscert", env = "NATS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long = "tlskey", env = "NATS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) to trust.
    #[arg(long = "tlsca", env = "NATS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Start with the TLS handshake (servers with `handshake_first`).
    #[arg(long = "tlsfirst", global = true)]
    pub tls_first: bool,
    /// A context: a JSON file with `url`, `user`, `password`, `creds`, `nkey`, `cert`,
    /// `key`, `ca` (as the `nats` CLI writes them), by path or by the name the `nats` CLI
    /// saved it under; it fills in what flags and environment leave unset.
    #[arg(long, env = "NATS_CONTEXT", global = true)]
    pub context: Option<PathBuf>,
    /// How long to wait for the servers' answers (Go duration: `5s`, `1500ms`).
    #[arg(long, default_value = "5s", value_parser = duration, global = true)]
    pub timeout: Duration,
    /// Stop waiting this long after the last answer when fewer servers than known answered.
    #[arg(long = "quiet-period", default_value = "500ms", value_parser = duration, global = true)]
    pub quiet: Duration,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Servers: overview, ping, one server's details.
    #[command(subcommand)]
    Server(ServerCommand),
    /// The busiest client connections across the cluster.
    Connections {
        /// What to rank by.
        #[arg(long, value_enum, default_value_t = SortBy::Pending)]
        sort: SortBy,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Client connections by vhost, and closing them.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// JetStream streams with their replica health.
    Streams {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
    },
    /// The consumers of a stream.
    Consumers {
        /// The stream.
        stream: String,
        /// Only this account (when several have a stream of that name).
        #[arg(long)]
        account: Option<String>,
    },
    /// Disconnect a client (it may reconnect).
    Kick {
        /// The server's name or id.
        server: String,
        /// The client's connection id on that server.
        cid: u64,
    },
    /// Health of every server; exits 1 when the cluster is not healthy.
    Health,
    /// amqp-compat queues of a vhost (connect as a user of the services' account), sorted by
    /// name, one page at a time as the management API pages them.
    Queues {
        /// The vhost (amqp-compat's namespace; `/` is none).
        #[arg(long, default_value = "/")]
        vhost: String,
        /// Only queues whose name matches this regular expression.
        #[arg(long = "name-regex")]
        name_regex: Option<String>,
        /// The page, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// Queues per page.
        #[arg(long = "page-size", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        page_size: u64,
    },
    /// Deleting an amqp-compat queue.
    #[command(subcommand)]
    Queue(QueueCommand),
}

impl Command {
    /// True for the commands that work in the services' account rather than over `$SYS`.
    pub fn is_queue_command(&self) -> bool {
        matches!(self, Command::Queues { .. } | Command::Queue(_))
    }
}

/// `queue ...`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Delete a queue and its messages; connected amqp-compat processes see it gone.
    Delete {
        /// The queue's name.
        name: String,
        /// The vhost (amqp-compat's namespace; `/` is none).
        #[arg(long, default_value = "/")]
        vhost: String,
    },
}

/// `server ...`
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// One row per server: version, uptime, connections, routes, memory, CPU, health.
    List,
    /// Which servers answer, and how long the cluster took.
    Ping,
    /// One server's details.
    Info {
        /// The server's name or id.
        name: String,
    },
}

/// `connection ...`
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// The connections of a vhost (an account; `/` is `--default-account`).
    List {
        /// The vhost.
        #[arg(long, default_value = "/")]
        vhost: String,
        /// The account the vhost `/` stands for.
        #[arg(long, env = "NATS_ADMIN_DEFAULT_ACCOUNT", default_value = "$G")]
        default_account: String,
    },
    /// Close connections by `<server>/<cid>` or by the name the client gave.
    Close {
        /// The connection's name.
        name: String,
    },
}

/// `connections --sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// Bytes waiting to be written to the client.
    Pending,
    /// Messages sent to the client.
    MsgsTo,
    /// Messages received from the client.
    MsgsFrom,
    /// Bytes sent to the client.
    BytesTo,
    /// Bytes received from the client.
    BytesFrom,
    /// Subscriptions.
    Subs,
    /// Round-trip time.
    Rtt,
    /// Uptime.
    Uptime,
    /// Idle time.
    Idle,
    /// Connection id.
    Cid,
}

impl From<SortBy> for ConnSort {
    fn from(s: SortBy) -> ConnSort {
        match s {
            SortBy::Pending => ConnSort::Pending,
            SortBy::MsgsTo => ConnSort::MsgsTo,
            SortBy::MsgsFrom => ConnSort::MsgsFrom,
            SortBy::BytesTo => ConnSort::BytesTo,
            SortBy::BytesFrom => ConnSort::BytesFrom,
            SortBy::Subs => ConnSort::Subs,
            SortBy::Rtt => ConnSort::Rtt,
            SortBy::Uptime => ConnSort::Uptime,
            SortBy::Idle => ConnSort::Idle,
            SortBy::Cid => ConnSort::Cid,
        }
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    go_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as 5s or 500ms"))
}
