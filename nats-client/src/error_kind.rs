//! [`ErrorKind`]: the facts every error of the client (and of the layers above) can be asked
//! about, so a caller maps failures without matching each enum's variants.

use crate::error::{ClientError, ConnectError, PublishError, RequestError};
use crate::server_error::{ServerError, ServerErrorKind};
use crate::sub_queue::SubscriptionError;

/// What kind of failure an error is, the same for [`ConnectError`], [`ClientError`],
/// [`PublishError`] and [`RequestError`] (and for `jetstream::JetStreamError`).
///
/// ```
/// use nats_client::{ErrorKind, PublishError, RequestError};
/// let e = RequestError::Publish(PublishError::ReconnectBufferFull { buffered: 10, limit: 16, size: 8 });
/// assert_eq!(e.kind(), ErrorKind::BufferFull);
/// assert!(e.is_buffer_full());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client is closed; no later call can succeed.
    Closed,
    /// The call (or the reply, or the handshake) did not complete in time.
    TimedOut,
    /// Nobody subscribes to the subject (the server answered `503`).
    NoResponders,
    /// The server refused the subject for this user (permissions violation).
    Permission,
    /// The server refused the credentials, or they could not be used.
    Authorization,
    /// The connection was lost while the call was in flight.
    ConnectionLost,
    /// The client is disconnected and its reconnect buffer is full.
    BufferFull,
    /// The caller's input was refused before anything was sent: invalid subject, queue group
    /// or header, payload over `max_payload`, a reply without a reply subject.
    InvalidInput,
    /// The server sent something that is not NATS protocol.
    Protocol,
    /// A socket error.
    Io,
    /// TLS failed or was configured differently on each side.
    Tls,
    /// The server reported an error (a `-ERR`, a JetStream API error).
    Server,
    /// Anything else (see the error itself).
    Other,
}

/// The predicates every error enum has, in terms of its `kind()`.
macro_rules! kind_predicates {
    ($($ty:ty),*) => {$(
        impl $ty {
            /// The client is closed ([`ErrorKind::Closed`]).
            pub fn is_closed(&self) -> bool {
                self.kind() == ErrorKind::Closed
            }
            /// Something did not complete in time ([`ErrorKind::TimedOut`]).
            pub fn is_timeout(&self) -> bool {
                self.kind() == ErrorKind::TimedOut
            }
            /// Nobody listens on the subject ([`ErrorKind::NoResponders`]).
            pub fn is_no_responders(&self) -> bool {
                self.kind() == ErrorKind::NoResponders
            }
            /// A permissions violation ([`ErrorKind::Permission`]).
            pub fn is_permission(&self) -> bool {
                self.kind() == ErrorKind::Permission
            }
            /// The connection was lost in flight ([`ErrorKind::ConnectionLost`]).
            pub fn is_connection_lost(&self) -> bool {
                self.kind() == ErrorKind::ConnectionLost
            }
            /// The reconnect buffer is full ([`ErrorKind::BufferFull`]).
            pub fn is_buffer_full(&self) -> bool {
                self.kind() == ErrorKind::BufferFull
            }
        }
    )*};
}

kind_predicates!(
    ConnectError,
    ClientError,
    PublishError,
    RequestError,
    SubscriptionError
);

impl ConnectError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::InvalidUrl { .. } | ConnectError::NoServers => ErrorKind::InvalidInput,
            ConnectError::Io { .. } => ErrorKind::Io,
            ConnectError::TimedOut { .. } => ErrorKind::TimedOut,
            ConnectError::Tls { .. } | ConnectError::TlsMismatch { .. } => ErrorKind::Tls,
            ConnectError::AuthorizationViolation(_) | ConnectError::Credentials(_) => {
                ErrorKind::Authorization
            }
            ConnectError::Server(_) => ErrorKind::Server,
            ConnectError::Protocol(_) => ErrorKind::Protocol,
            ConnectError::ClosedDuringHandshake { .. } => ErrorKind::ConnectionLost,
        }
    }
}

impl ClientError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Closed => ErrorKind::Closed,
            ClientError::Protocol(_) | ClientError::NoReplySubject { .. } => {
                ErrorKind::InvalidInput
            }
            ClientError::TimedOut(_) => ErrorKind::TimedOut,
            ClientError::Disconnected => ErrorKind::ConnectionLost,
            ClientError::ReconnectBufferFull { .. } => ErrorKind::BufferFull,
        }
    }
}

impl PublishError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PublishError::Closed => ErrorKind::Closed,
            PublishError::Protocol(_) | PublishError::NoReplySubject { .. } => {
                ErrorKind::InvalidInput
            }
            PublishError::ReconnectBufferFull { .. } => ErrorKind::BufferFull,
        }
    }
}

impl RequestError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RequestError::NoResponders { .. } => ErrorKind::NoResponders,
            RequestError::TimedOut { .. } => ErrorKind::TimedOut,
            RequestError::Publish(p) => p.kind(),
            RequestError::Closed => ErrorKind::Closed,
            RequestError::Disconnected { .. } => ErrorKind::ConnectionLost,
            RequestError::PermissionDenied { .. } => ErrorKind::Permission,
        }
    }

    /// The subject of the request, when the error names one.
    pub fn subject(&self) -> Option<&str> {
        match self {
            RequestError::NoResponders { subject }
            | RequestError::TimedOut { subject, .. }
            | RequestError::Disconnected { subject }
            | RequestError::PermissionDenied { subject } => Some(subject),
            RequestError::Publish(PublishError::NoReplySubject { subject }) => Some(subject),
            RequestError::Publish(_) | RequestError::Closed => None,
        }
    }
}

impl SubscriptionError {
    /// What kind of failure this is: a refused subscription is the server error's kind
    /// (a permissions violation is [`ErrorKind::Permission`]); a message the client cannot
    /// represent is [`ErrorKind::Protocol`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            SubscriptionError::Undeliverable(_) => ErrorKind::Protocol,
            SubscriptionError::Refused(e) => e.error_kind(),
        }
    }
}

impl ServerError {
    /// The [`ErrorKind`] of this `-ERR` (named so beside the [`kind`](ServerError::kind)
    /// field, which is the finer [`ServerErrorKind`]).
    pub fn error_kind(&self) -> ErrorKind {
        match self.kind {
            ServerErrorKind::PermissionsViolation { .. } => ErrorKind::Permission,
            ServerErrorKind::AuthorizationViolation
            | ServerErrorKind::AuthenticationExpired
            | ServerErrorKind::AuthenticationRevoked
            | ServerErrorKind::AccountAuthenticationExpired => ErrorKind::Authorization,
            ServerErrorKind::StaleConnection => ErrorKind::ConnectionLost,
            ServerErrorKind::MaxConnectionsExceeded
            | ServerErrorKind::MaxSubscriptionsExceeded
            | ServerErrorKind::Other => ErrorKind::Server,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_proto::ProtoError;
    use std::time::Duration;

    fn full() -> PublishError {
        PublishError::ReconnectBufferFull {
            buffered: 1,
            limit: 2,
            size: 3,
        }
    }

    #[test]
    fn every_enum_answers_the_same_questions() {
        let t = Duration::from_secs(1);
        let cases: Vec<(ErrorKind, ErrorKind)> = vec![
            (ClientError::Closed.kind(), ErrorKind::Closed),
            (PublishError::Closed.kind(), ErrorKind::Closed),
            (RequestError::Closed.kind(), ErrorKind::Closed),
            (ClientError::TimedOut(t).kind(), ErrorKind::TimedOut),
            (
                RequestError::TimedOut {
                    subject: "s".into(),
                    timeout: t,
                }
                .kind(),
                ErrorKind::TimedOut,
            ),
            (
                ConnectError::TimedOut {
                    server: "x".into(),
                    timeout: t,
                }
                .kind(),
                ErrorKind::TimedOut,
            ),
            (
                RequestError::NoResponders {
                    subject: "s".into(),
                }
                .kind(),
                ErrorKind::NoResponders,
            ),
            (ClientError::Disconnected.kind(), ErrorKind::ConnectionLost),
            (
                RequestError::Disconnected {
                    subject: "s".into(),
                }
                .kind(),
                ErrorKind::ConnectionLost,
            ),
            (full().kind(), ErrorKind::BufferFull),
            (ClientError::from(full()).kind(), ErrorKind::BufferFull),
            (RequestError::from(full()).kind(), ErrorKind::BufferFull),
            (
                ConnectError::AuthorizationViolation("x".into()).kind(),
                ErrorKind::Authorization,
            ),
            (
                PublishError::NoReplySubject {
                    subject: "a".into(),
                }
                .kind(),
                ErrorKind::InvalidInput,
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert!(ClientError::Closed.is_closed());
        assert!(RequestError::from(full()).is_buffer_full());
        assert!(!RequestError::Closed.is_timeout());
        assert!(ClientError::TimedOut(t).is_timeout());
        assert!(
            RequestError::NoResponders {
                subject: "s".into()
            }
            .is_no_responders()
        );
        assert!(ClientError::Disconnected.is_connection_lost());
        assert!(!ClientError::Disconnected.is_permission());
    }

    #[test]
    fn a_full_reconnect_buffer_stays_that_across_conversions() {
        assert_eq!(
            ClientError::from(full()),
            ClientError::ReconnectBufferFull {
                buffered: 1,
                limit: 2,
                size: 3
            }
        );
        let no_reply = PublishError::NoReplySubject {
            subject: "a.b".into(),
        };
        assert_eq!(
            ClientError::from(no_reply),
            ClientError::NoReplySubject {
                subject: "a.b".into()
            }
        );
        let p = ProtoError::InvalidSubject {
            subject: "a b".into(),
            reason: "x",
        };
        assert_eq!(
            ClientError::from(PublishError::Protocol(p.clone())),
            ClientError::Protocol(p)
        );
    }

    #[test]
    fn request_errors_name_their_subject() {
        assert_eq!(
            RequestError::TimedOut {
                subject: "svc".into(),
                timeout: Duration::ZERO
            }
            .subject(),
            Some("svc")
        );
        assert_eq!(RequestError::Closed.subject(), None);
    }

    #[test]
    fn server_errors_and_refused_subscriptions_have_kinds() {
        let denied = ServerError::parse("'Permissions Violation for Subscription to \"secret.>\"'");
        assert_eq!(denied.error_kind(), ErrorKind::Permission);
        let refused = SubscriptionError::Refused(denied);
        assert!(refused.is_permission());
        assert_eq!(
            ServerError::parse("'Authorization Violation'").error_kind(),
            ErrorKind::Authorization
        );
        assert_eq!(
            ServerError::parse("'Stale Connection'").error_kind(),
            ErrorKind::ConnectionLost
        );
        assert_eq!(ServerError::parse("").error_kind(), ErrorKind::Server);
    }
}
