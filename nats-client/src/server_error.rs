//! `-ERR` texts as typed values, and what the client does about each.
//!
//! Classification happens once, here, so that programs match on kinds, never on text.

use std::fmt;

/// An `-ERR` from the server: what kind it is, and its text.
///
/// ```
/// use nats_client::{PermissionOperation, ServerError, ServerErrorKind};
/// let e = ServerError::parse("Permissions Violation for Subscription to \"orders.>\" using queue \"q\"");
/// assert_eq!(
///     e.kind,
///     ServerErrorKind::PermissionsViolation {
///         operation: PermissionOperation::Subscribe,
///         subject: "orders.>".into(),
///         queue: Some("q".into()),
///     }
/// );
/// assert_eq!(ServerError::parse("'Stale Connection'").kind, ServerErrorKind::StaleConnection);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {text:?}")]
pub struct ServerError {
    /// What the error means to the client.
    pub kind: ServerErrorKind,
    /// The server's text, quotes removed (empty for a bare `-ERR`).
    pub text: String,
}

/// The kinds of `-ERR` the client tells apart, and what it does about each.
///
/// The server's error texts are not an enum on the wire: the client classifies them, so that
/// programs match on [`ServerErrorKind`] instead of on free text (the text is kept in
/// [`ServerError::text`]). The policy follows nats.go's `processErr`, with the differences
/// marked:
///
/// | `-ERR` text (case-insensitive)                    | kind                          | the client |
/// |---------------------------------------------------|-------------------------------|------------|
/// | `Stale Connection`                                | [`StaleConnection`]           | reconnects |
/// | `Maximum Connections Exceeded`                    | [`MaxConnectionsExceeded`]    | tries another server |
/// | `Maximum Account Active Connections Exceeded`     | [`MaxConnectionsExceeded`]    | tries another server |
/// | `Authorization Violation`                         | [`AuthorizationViolation`]    | reconnects (see below) |
/// | `User Authentication Expired`                     | [`AuthenticationExpired`]     | reconnects (see below) |
/// | `User Authentication Revoked`                     | [`AuthenticationRevoked`]     | reconnects (see below) |
/// | `Account Authentication Expired`                  | [`AccountAuthenticationExpired`] | reconnects (see below) |
/// | `Permissions Violation for Publish to "s"`        | [`PermissionsViolation`]      | keeps the connection |
/// | `Permissions Violation for Subscription to "s"`   | [`PermissionsViolation`]      | keeps the connection; that subscription ends with the error |
/// | `Maximum Subscriptions Exceeded`                  | [`MaxSubscriptionsExceeded`]  | keeps the connection |
/// | anything else, and a bare `-ERR`                  | [`Other`]                     | keeps the connection (nats.go closes the client) |
///
/// Every `-ERR` is also an [`Event::ServerError`](crate::Event::ServerError).
///
/// Auth errors: nats.go closes the whole client when one server gives the same auth error
/// twice in a row. Here that server is dropped from the pool instead (a cluster may have
/// other servers that accept us); when no server is left, the client closes after
/// [`Event::ReconnectsExhausted`](crate::Event::ReconnectsExhausted). "Twice in a row" spans
/// reconnect attempts without a successful connection in between.
///
/// Unknown texts: a server that wants us gone closes the socket after its `-ERR` (the
/// reconnect follows from that); one that does not (e.g. `Invalid Subject` on a SUB the
/// server refused) has left the connection working, so closing it ourselves, as nats.go does,
/// would only turn a refused op into an outage.
///
/// [`StaleConnection`]: ServerErrorKind::StaleConnection
/// [`MaxConnectionsExceeded`]: ServerErrorKind::MaxConnectionsExceeded
/// [`AuthorizationViolation`]: ServerErrorKind::AuthorizationViolation
/// [`AuthenticationExpired`]: ServerErrorKind::AuthenticationExpired
/// [`AuthenticationRevoked`]: ServerErrorKind::AuthenticationRevoked
/// [`AccountAuthenticationExpired`]: ServerErrorKind::AccountAuthenticationExpired
/// [`PermissionsViolation`]: ServerErrorKind::PermissionsViolation
/// [`MaxSubscriptionsExceeded`]: ServerErrorKind::MaxSubscriptionsExceeded
/// [`Other`]: ServerErrorKind::Other
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// The server found the connection unresponsive.
    StaleConnection,
    /// The server (or the account) has as many connections as it allows.
    MaxConnectionsExceeded,
    /// The credentials were refused.
    AuthorizationViolation,
    /// The user's credentials (JWT) expired.
    AuthenticationExpired,
    /// The user's credentials were revoked.
    AuthenticationRevoked,
    /// The account's credentials expired.
    AccountAuthenticationExpired,
    /// The connection may not publish or subscribe to a subject.
    PermissionsViolation {
        /// What was refused.
        operation: PermissionOperation,
        /// The subject (for [`PermissionOperation::PublishReply`], the reply subject).
        subject: String,
        /// The queue group of a refused subscription.
        queue: Option<String>,
    },
    /// The connection has as many subscriptions as it may.
    MaxSubscriptionsExceeded,
    /// Any other text (and a bare `-ERR`).
    Other,
}

/// The operation a permissions violation refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermissionOperation {
    /// Publishing to the subject.
    Publish,
    /// Publishing with the subject as reply subject.
    PublishReply,
    /// Subscribing to the subject.
    Subscribe,
}

impl ServerError {
    /// Classifies an `-ERR` text (surrounding spaces and quotes are removed first).
    pub fn parse(text: &str) -> ServerError {
        let text = text.trim().trim_matches('\'').trim().to_owned();
        let lower = text.to_ascii_lowercase();
        let kind = match lower.as_str() {
            "stale connection" => ServerErrorKind::StaleConnection,
            "maximum connections exceeded" | "maximum account active connections exceeded" => {
                ServerErrorKind::MaxConnectionsExceeded
            }
            l if l.starts_with("permissions violation") => permissions(&text),
            l if l.starts_with("maximum subscriptions exceeded") => {
                ServerErrorKind::MaxSubscriptionsExceeded
            }
            l if l.starts_with("authorization violation") => {
                ServerErrorKind::AuthorizationViolation
            }
            l if l.starts_with("user authentication expired") => {
                ServerErrorKind::AuthenticationExpired
            }
            l if l.starts_with("user authentication revoked") => {
                ServerErrorKind::AuthenticationRevoked
            }
            l if l.starts_with("account authentication expired") => {
                ServerErrorKind::AccountAuthenticationExpired
            }
            _ => ServerErrorKind::Other,
        };
        ServerError { kind, text }
    }

    /// Whether the server refused our credentials (any of the four auth kinds).
    pub fn is_auth_error(&self) -> bool {
        matches!(
            self.kind,
            ServerErrorKind::AuthorizationViolation
                | ServerErrorKind::AuthenticationExpired
                | ServerErrorKind::AuthenticationRevoked
                | ServerErrorKind::AccountAuthenticationExpired
        )
    }

    /// Whether the client leaves this connection because of it (stale connection, maximum
    /// connections, auth errors); the others leave the connection as it is.
    pub fn ends_connection(&self) -> bool {
        self.is_auth_error()
            || matches!(
                self.kind,
                ServerErrorKind::StaleConnection | ServerErrorKind::MaxConnectionsExceeded
            )
    }
}

/// `Permissions Violation for <Publish to|Publish with Reply of|Subscription to> "s"
/// [using queue "q"]`. A text in another shape still is a permissions violation, with an
/// empty subject.
fn permissions(text: &str) -> ServerErrorKind {
    let lower = text.to_ascii_lowercase();
    let operation = if lower.contains("for subscription") {
        PermissionOperation::Subscribe
    } else if lower.contains("with reply") {
        PermissionOperation::PublishReply
    } else {
        PermissionOperation::Publish
    };
    let mut quoted = text.split('"').skip(1).step_by(2);
    let subject = quoted.next().unwrap_or_default().to_owned();
    let queue = lower
        .contains("using queue")
        .then(|| quoted.next().map(str::to_owned))
        .flatten();
    ServerErrorKind::PermissionsViolation {
        operation,
        subject,
        queue,
    }
}

impl fmt::Display for ServerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerErrorKind::StaleConnection => f.write_str("stale connection"),
            ServerErrorKind::MaxConnectionsExceeded => f.write_str("maximum connections exceeded"),
            ServerErrorKind::AuthorizationViolation => f.write_str("authorization violation"),
            ServerErrorKind::AuthenticationExpired => f.write_str("authentication expired"),
            ServerErrorKind::AuthenticationRevoked => f.write_str("authentication revoked"),
            ServerErrorKind::AccountAuthenticationExpired => {
                f.write_str("account authentication expired")
            }
            ServerErrorKind::PermissionsViolation {
                operation,
                subject,
                queue,
            } => {
                let op = match operation {
                    PermissionOperation::Publish => "publish to",
                    PermissionOperation::PublishReply => "publish with reply",
                    PermissionOperation::Subscribe => "subscription to",
                };
                write!(f, "permissions violation: {op} {subject:?}")?;
                match queue {
                    Some(q) => write!(f, " in queue group {q:?}"),
                    None => Ok(()),
                }
            }
            ServerErrorKind::MaxSubscriptionsExceeded => {
                f.write_str("maximum subscriptions exceeded")
            }
            ServerErrorKind::Other => f.write_str("server error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> ServerErrorKind {
        ServerError::parse(text).kind
    }

    #[test]
    fn the_table() {
        use ServerErrorKind::*;
        assert_eq!(kind("Stale Connection"), StaleConnection);
        assert_eq!(
            kind("'maximum connections exceeded'"),
            MaxConnectionsExceeded
        );
        assert_eq!(
            kind("Maximum Account Active Connections Exceeded"),
            MaxConnectionsExceeded
        );
        assert_eq!(kind("Authorization Violation"), AuthorizationViolation);
        assert_eq!(kind("User Authentication Expired"), AuthenticationExpired);
        assert_eq!(kind("User Authentication Revoked"), AuthenticationRevoked);
        assert_eq!(
            kind("Account Authentication Expired"),
            AccountAuthenticationExpired
        );
        assert_eq!(
            kind("Maximum Subscriptions Exceeded"),
            MaxSubscriptionsExceeded
        );
        assert_eq!(kind("Unknown Protocol Operation"), Other);
        let bare = ServerError::parse("");
        assert_eq!((bare.kind, bare.text.as_str()), (Other, ""));
    }

    #[test]
    fn permissions_name_the_subject() {
        let publish = kind("Permissions Violation for Publish to \"secret.x\"");
        assert_eq!(
            publish,
            ServerErrorKind::PermissionsViolation {
                operation: PermissionOperation::Publish,
                subject: "secret.x".into(),
                queue: None,
            }
        );
        let reply = kind("Permissions Violation for Publish with Reply of \"_INBOX.x\"");
        assert!(matches!(
            reply,
            ServerErrorKind::PermissionsViolation {
                operation: PermissionOperation::PublishReply,
                ref subject,
                ..
            } if subject == "_INBOX.x"
        ));
        let sub = kind("Permissions Violation for Subscription to \"a.>\"");
        assert!(matches!(
            sub,
            ServerErrorKind::PermissionsViolation {
                operation: PermissionOperation::Subscribe,
                queue: None,
                ..
            }
        ));
        let odd = kind("permissions violation");
        assert!(matches!(
            odd,
            ServerErrorKind::PermissionsViolation { ref subject, .. } if subject.is_empty()
        ));
    }

    #[test]
    fn what_ends_a_connection() {
        assert!(ServerError::parse("Stale Connection").ends_connection());
        assert!(ServerError::parse("User Authentication Expired").ends_connection());
        assert!(
            !ServerError::parse("Permissions Violation for Publish to \"x\"").ends_connection()
        );
        assert!(!ServerError::parse("Invalid Subject").ends_connection());
    }
}
