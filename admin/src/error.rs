//! The one error type of the admin layer.

use std::time::Duration;

use nats_client::{ClientError, ConnectError, PublishError, RequestError};
use thiserror::Error;

/// Why an administration call failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The connection could not be made (unreachable server, refused credentials, TLS).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The user is not in the system account, so `$SYS` requests reach nobody.
    #[error(
        "user {user:?} is in account {account:?}, not the system account: \
         $SYS requests need a system-account user"
    )]
    NotSystemAccount {
        /// The user as the server knows it, when it said.
        user: String,
        /// The user's account, when the server said.
        account: String,
    },
    /// Nobody subscribes to the subject (the server answered 503).
    #[error("no responders on {subject}")]
    NoResponders {
        /// The request subject.
        subject: String,
    },
    /// No server answered before the deadline.
    #[error("no server answered {subject} within {waited:?}")]
    NoReplies {
        /// The request subject.
        subject: String,
        /// How long the request waited.
        waited: Duration,
    },
    /// A subscribe, flush or close failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The request could not be published.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A single request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A server answered with an error.
    #[error("server {server} answered {code}: {description}")]
    Server {
        /// The server's name (or id).
        server: String,
        /// Its status code.
        code: u16,
        /// Its text.
        description: String,
    },
    /// An answer did not decode as the expected model.
    #[error("undecodable answer on {subject}: {message}")]
    Decode {
        /// The request subject.
        subject: String,
        /// The decoder's message.
        message: String,
    },
    /// The server is known (it answered before, or its peers name it) but does not answer:
    /// it is down, or cut off from the cluster.
    #[error("server {server} does not answer (down, or cut off from the cluster)")]
    ServerNotAnswering {
        /// The server's name or id as asked for.
        server: String,
    },
    /// Some servers did not answer, and a partial answer would be taken for the whole (a
    /// connection listing, a close by name).
    #[error("servers did not answer: {}; the answer would be partial", missing.join(", "))]
    Incomplete {
        /// The servers that did not answer.
        missing: Vec<String>,
    },
    /// No known server has this name or id.
    #[error("no server named {server:?} (known: {known})")]
    UnknownServer {
        /// What was asked for.
        server: String,
        /// The servers known, comma-separated.
        known: String,
    },
    /// No connection has this name.
    #[error("no connection named {name:?}")]
    ConnectionNotFound {
        /// The name asked for.
        name: String,
    },
    /// An argument was not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A connection call on a [`QueueAdmin`](crate::QueueAdmin) made without a `$SYS` client.
    #[error("connection calls need a system-account client")]
    NeedsSystemAccount,
    /// A queue call on a [`QueueAdmin`](crate::QueueAdmin) made without a JetStream context.
    #[error("queue calls need a JetStream context of the vhost's account")]
    NeedsJetStream,
    /// No queue has this name in the vhost (the management API's 404).
    #[error("no queue {name:?} in vhost {vhost:?}")]
    QueueNotFound {
        /// The vhost.
        vhost: String,
        /// The queue's name.
        name: String,
    },
    /// Reading or changing the topology or a queue's storage failed.
    #[error("JetStream: {0}")]
    JetStream(String),
}
