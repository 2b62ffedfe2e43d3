//! Error types of the client layer: one enum per kind of call.

use std::time::Duration;

use nats_proto::ProtoError;

use thiserror::Error;

/// Why a connection could not be established.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A server URL could not be parsed.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// No server URL was given.
    #[error("no server to connect to")]
    NoServers,
    /// A socket error.
    #[error("I/O error talking to {server}: {message}")]
    Io {
        /// The server address.
        server: String,
        /// The error text.
        message: String,
        /// The error kind.
        kind: std::io::ErrorKind,
    },
    /// The handshake did not finish in time.
    #[error("connecting to {server} timed out after {timeout:?}")]
    TimedOut {
        /// The server address.
        server: String,
        /// The configured connection timeout.
        timeout: Duration,
    },
    /// The TLS handshake or TLS configuration failed (untrusted certificate, bad key file...).
    #[error("TLS error with {server}: {message}")]
    Tls {
        /// The server address.
        server: String,
        /// What failed.
        message: String,
    },
    /// The server requires TLS and the client was not configured for it, or the reverse.
    #[error("TLS mismatch with {server}: {message}")]
    TlsMismatch {
        /// The server address.
        server: String,
        /// What mismatched.
        message: String,
    },
    /// The server rejected our credentials.
    #[error("authorization violation: {0}")]
    AuthorizationViolation(String),
    /// Credentials could not be loaded or used (bad seed, unreadable creds file, callback error).
    #[error("credentials error: {0}")]
    Credentials(String),
    /// The server answered the handshake with another `-ERR`.
    #[error("server error during handshake: {0}")]
    Server(String),
    /// The server sent something that is not NATS protocol.
    #[error("protocol error during handshake: {0}")]
    Protocol(#[from] ProtoError),
    /// The server closed the connection during the handshake.
    #[error("{server} closed the connection during the handshake")]
    ClosedDuringHandshake {
        /// The server address.
        server: String,
    },
}

/// Errors of general client calls (subscribe, flush, drain, close...).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The client was closed; no further call can succeed.
    #[error("the client is closed")]
    Closed,
    /// A subject, queue group or header was refused before anything was sent.
    #[error(transparent)]
    Protocol(#[from] ProtoError),
    /// The call did not complete in time.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The connection was lost while the call was in flight.
    #[error("the connection was lost while the call was in flight")]
    Disconnected,
    /// The client is disconnected and its reconnect buffer cannot take what the call had to
    /// send (a message published through a call that returns `ClientError`).
    #[error("reconnect buffer full ({buffered} of {limit} bytes used; message of {size} bytes)")]
    ReconnectBufferFull {
        /// Bytes already buffered.
        buffered: usize,
        /// The configured limit.
        limit: usize,
        /// Encoded size of the refused message.
        size: usize,
    },
    /// A reply was to be sent for a message that has no reply subject.
    #[error("the message on {subject:?} has no reply subject to respond to")]
    NoReplySubject {
        /// The subject of the message that was to be answered.
        subject: String,
    },
}

/// Errors of publishing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// The subject, reply subject or headers are invalid, or the payload is larger than the
    /// server's `max_payload`. Nothing was sent.
    #[error(transparent)]
    Protocol(#[from] ProtoError),
    /// The client is disconnected and its reconnect buffer cannot take this message.
    #[error("reconnect buffer full ({buffered} of {limit} bytes used; message of {size} bytes)")]
    ReconnectBufferFull {
        /// Bytes already buffered.
        buffered: usize,
        /// The configured limit.
        limit: usize,
        /// Encoded size of the refused message.
        size: usize,
    },
    /// [`Client::respond`](crate::Client::respond) to a message that has no reply subject
    /// (it was published, not sent as a request). Nothing was sent.
    #[error("the message on {subject:?} has no reply subject to respond to")]
    NoReplySubject {
        /// The subject of the message that was to be answered.
        subject: String,
    },
}

impl From<PublishError> for ClientError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Protocol(p) => ClientError::Protocol(p),
            PublishError::Closed => ClientError::Closed,
            PublishError::ReconnectBufferFull {
                buffered,
                limit,
                size,
            } => ClientError::ReconnectBufferFull {
                buffered,
                limit,
                size,
            },
            PublishError::NoReplySubject { subject } => ClientError::NoReplySubject { subject },
        }
    }
}

/// Errors of request/reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Nobody subscribes to the subject (the server answered 503).
    #[error("no responders on {subject:?}")]
    NoResponders {
        /// The request subject.
        subject: String,
    },
    /// No reply arrived in time.
    #[error("request on {subject:?} timed out after {timeout:?}")]
    TimedOut {
        /// The request subject.
        subject: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The request could not be published.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The client was closed while waiting.
    #[error("the client is closed")]
    Closed,
    /// The connection was lost while waiting for the reply.
    #[error("the connection was lost while waiting for the reply on {subject:?}")]
    Disconnected {
        /// The request subject.
        subject: String,
    },
    /// The server refused the request: the client may not publish to its subject
    /// (`-ERR 'Permissions Violation for Publish to "<subject>"'`). The request fails as soon
    /// as the error arrives instead of waiting for its timeout, as in nats.go.
    #[error("permission denied: the client may not publish the request to {subject:?}")]
    PermissionDenied {
        /// The request subject.
        subject: String,
    },
}

impl ConnectError {
    pub(crate) fn io(server: &str, e: &std::io::Error) -> Self {
        ConnectError::Io {
            server: server.to_owned(),
            message: e.to_string(),
            kind: e.kind(),
        }
    }
}
