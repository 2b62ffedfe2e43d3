//! Connection events. They go to the [`event_callback`](crate::ConnectOptions::event_callback),
//! if one is set (called on the connection task, so it sees the first `Connected` too), and
//! out on a broadcast channel ([`Client::events`](crate::Client::events)): sending never blocks
//! the connection task, and a listener that falls behind loses the oldest events (counted in
//! statistics).

use std::fmt;
use std::time::Duration;

use nats_proto::ProtoError;

use crate::server_error::ServerError;

/// Something that happened to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Connected to a server (the first time).
    Connected {
        /// The server's address.
        server: String,
    },
    /// The connection was lost.
    Disconnected {
        /// The server it was connected to.
        server: String,
        /// Why.
        reason: DisconnectReason,
    },
    /// About to try a server again, after `delay`.
    Reconnecting {
        /// Attempt number for this server since it last accepted us (1-based).
        attempt: usize,
        /// The server to be tried.
        server: String,
        /// The wait before the attempt.
        delay: Duration,
    },
    /// Connected again after a loss.
    Reconnected {
        /// The server now connected to.
        server: String,
    },
    /// No server is left to reconnect to (each ran out of its
    /// [`max_reconnects`](crate::ConnectOptions::max_reconnects) attempts, or refused our
    /// credentials twice in a row): the client closes ([`Event::Closed`] follows).
    ReconnectsExhausted,
    /// The server announced lame-duck mode: it is about to shut down.
    LameDuck {
        /// The server in lame-duck mode.
        server: String,
    },
    /// A subscription went over its pending limits and started dropping messages. Sent once
    /// per episode: again only after the subscription has caught up.
    SlowConsumer {
        /// The subscription id.
        sid: u64,
        /// Its subject.
        subject: String,
    },
    /// The server sent `-ERR` (during a live connection or a reconnect handshake). What the
    /// client does about it depends on its kind: see [`ServerErrorKind`](crate::ServerErrorKind).
    ServerError {
        /// The server that sent it.
        server: String,
        /// The error, classified.
        error: ServerError,
    },
    /// A well-framed message arrived that cannot be represented as a
    /// [`Message`](crate::Message) (its subject or reply subject is not UTF-8, or its header
    /// block does not parse). The connection is kept; a stream subscription is told (see
    /// [`Subscriber::take_errors`](crate::Subscriber::take_errors); a handler subscription
    /// hears only this event) and the message is counted in
    /// [`Statistics::undeliverable_msgs`](crate::Statistics::undeliverable_msgs).
    UndeliverableMessage {
        /// The subscription it was for.
        sid: u64,
        /// What was wrong with it.
        error: ProtoError,
    },
    /// The client was closed.
    Closed,
}

/// Why a connection was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server closed the connection.
    ServerClosed,
    /// Reading or writing the socket failed.
    Io {
        /// The error kind.
        kind: std::io::ErrorKind,
        /// The error text.
        message: String,
    },
    /// The server's byte stream broke the NATS framing (bad lengths, a missing CRLF, an
    /// unknown op, a message over the announced `max_payload`): the stream cannot be
    /// resynchronised.
    Protocol(ProtoError),
    /// Keep-alive PINGs went unanswered.
    PingTimeout {
        /// PINGs without a PONG.
        unanswered: usize,
    },
    /// The server sent an `-ERR` that ends the connection (stale connection, maximum
    /// connections, auth errors).
    ServerError(ServerError),
}

impl DisconnectReason {
    pub(crate) fn io(e: &std::io::Error) -> Self {
        DisconnectReason::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::ServerClosed => f.write_str("the server closed the connection"),
            DisconnectReason::Io { message, .. } => write!(f, "I/O error: {message}"),
            DisconnectReason::Protocol(e) => write!(f, "protocol error: {e}"),
            DisconnectReason::PingTimeout { unanswered } => {
                write!(
                    f,
                    "{unanswered} keep-alive PINGs unanswered: stale connection"
                )
            }
            DisconnectReason::ServerError(e) => write!(f, "server error: {e}"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Connected { server } => write!(f, "connected to {server}"),
            Event::Disconnected { server, reason } => {
                write!(f, "disconnected from {server}: {reason}")
            }
            Event::Reconnecting {
                attempt,
                server,
                delay,
            } => write!(
                f,
                "reconnecting to {server} (attempt {attempt}) in {delay:?}"
            ),
            Event::Reconnected { server } => write!(f, "reconnected to {server}"),
            Event::ReconnectsExhausted => f.write_str("no server left to reconnect to"),
            Event::LameDuck { server } => write!(f, "{server} entered lame-duck mode"),
            Event::SlowConsumer { sid, subject } => {
                write!(
                    f,
                    "slow consumer: subscription {sid} on {subject:?} dropped messages"
                )
            }
            Event::ServerError { server, error } => write!(f, "{server}: {error}"),
            Event::UndeliverableMessage { sid, error } => {
                write!(f, "undeliverable message for subscription {sid}: {error}")
            }
            Event::Closed => f.write_str("closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_what_happened() {
        let e = Event::Reconnecting {
            attempt: 3,
            server: "127.0.0.1:4222".into(),
            delay: Duration::from_millis(200),
        };
        assert_eq!(
            e.to_string(),
            "reconnecting to 127.0.0.1:4222 (attempt 3) in 200ms"
        );
        let e = Event::ServerError {
            server: "s".into(),
            error: ServerError::parse("Permissions Violation for Publish to \"x\""),
        };
        assert_eq!(
            e.to_string(),
            "s: permissions violation: publish to \"x\": \"Permissions Violation for Publish to \\\"x\\\"\""
        );
        let e = Event::Disconnected {
            server: "s".into(),
            reason: DisconnectReason::PingTimeout { unanswered: 2 },
        };
        assert!(e.to_string().contains("stale connection"));
    }
}
