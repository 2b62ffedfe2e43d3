//! [`Error`] and [`ErrorKind`] with lapin 4.12's shape: `kind()`, `is_amqp_soft_error()`,
//! `is_amqp_hard_error()`, and AMQP reply codes carried as [`AMQPError`] values.
//!
//! As in AMQP, a soft error (312, 403, 404, 405, 406) closes the channel it happened on and a
//! hard error (530, 540, 541...) closes the connection; [`Error::closes_connection`] says which.

use std::{io, sync::Arc};

use amq_protocol::protocol::{AMQPError, AMQPErrorKind, AMQPHardError, AMQPSoftError};

use crate::types::ShortString;

/// `Result` with this crate's [`Error`], as `lapin::Result`.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from amqp-compat; match on [`Error::kind`] as with lapin.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong (lapin's names for the kinds that exist here too).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The broker refused an operation with an AMQP reply code (404 NOT_FOUND, 406
    /// PRECONDITION_FAILED, ...). Soft errors closed the channel, hard ones the connection.
    #[error("protocol error: {0}")]
    ProtocolError(AMQPError),
    /// The channel cannot take this call: it was closed, by the application or by an error.
    #[error("invalid channel state: {0:?} ({1})")]
    InvalidChannelState(ChannelState, &'static str),
    /// The connection cannot take this call: it was closed, by the application or an error.
    #[error("invalid connection state: {0:?}")]
    InvalidConnectionState(ConnectionState),
    /// The connection URL could not be understood.
    #[error("invalid connection URL: {0}")]
    InvalidUri(String),
    /// An I/O error from the transport.
    #[error("IO error: {0}")]
    IOError(Arc<io::Error>),
}

impl PartialEq for ErrorKind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::ProtocolError(a), Self::ProtocolError(b)) => a == b,
            (Self::InvalidChannelState(a, x), Self::InvalidChannelState(b, y)) => a == b && x == y,
            (Self::InvalidConnectionState(a), Self::InvalidConnectionState(b)) => a == b,
            (Self::InvalidUri(a), Self::InvalidUri(b)) => a == b,
            // I/O errors carry no comparable identity, as in lapin.
            _ => false,
        }
    }
}

/// The state of a channel, lapin's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelState {
    /// Created, not yet open.
    #[default]
    Initial,
    /// Waiting for the connection to come back.
    Reconnecting,
    /// Open.
    Connected,
    /// Closing.
    Closing,
    /// Closed by the application.
    Closed,
    /// Closed by an error.
    Error,
}

/// The state of a connection, lapin's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConnectionState {
    /// Created, not yet connecting.
    #[default]
    Initial,
    /// Connecting.
    Connecting,
    /// Connected.
    Connected,
    /// Closing.
    Closing,
    /// Closed by the application.
    Closed,
    /// Reconnecting after a loss.
    Reconnecting,
    /// Closed by an error.
    Error,
}

impl ChannelState {
    /// True when the channel is open (lapin's `ChannelStatus::connected`).
    pub fn connected(&self) -> bool {
        *self == ChannelState::Connected
    }
}

impl ConnectionState {
    /// True when the connection is open (lapin's `ConnectionStatus::connected`).
    pub fn connected(&self) -> bool {
        *self == ConnectionState::Connected
    }
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// An AMQP error with this reply code and text. Codes that AMQP does not define give
    /// 541 INTERNAL_ERROR, with the code in the text.
    pub fn amqp(reply_code: u16, text: impl Into<String>) -> Self {
        let text = text.into();
        let err = AMQPError::from_id(reply_code, short(&text)).unwrap_or_else(|| {
            AMQPError::new(
                AMQPErrorKind::Hard(AMQPHardError::INTERNALERROR),
                short(&format!("reply code {reply_code}: {text}")),
            )
        });
        ErrorKind::ProtocolError(err).into()
    }

    /// 404 NOT_FOUND (closes the channel).
    pub fn not_found(text: impl Into<String>) -> Self {
        Self::soft(AMQPSoftError::NOTFOUND, text)
    }

    /// 406 PRECONDITION_FAILED (closes the channel).
    pub fn precondition_failed(text: impl Into<String>) -> Self {
        Self::soft(AMQPSoftError::PRECONDITIONFAILED, text)
    }

    /// 405 RESOURCE_LOCKED (closes the channel).
    pub fn resource_locked(text: impl Into<String>) -> Self {
        Self::soft(AMQPSoftError::RESOURCELOCKED, text)
    }

    /// 403 ACCESS_REFUSED (closes the channel).
    pub fn access_refused(text: impl Into<String>) -> Self {
        Self::soft(AMQPSoftError::ACCESSREFUSED, text)
    }

    /// 312 NO_ROUTE (a returned message; closes nothing).
    pub fn no_route(text: impl Into<String>) -> Self {
        Self::soft(AMQPSoftError::NOROUTE, text)
    }

    /// 530 NOT_ALLOWED (closes the connection).
    pub fn not_allowed(text: impl Into<String>) -> Self {
        Self::hard(AMQPHardError::NOTALLOWED, text)
    }

    /// 540 NOT_IMPLEMENTED (closes the connection).
    pub fn not_implemented(text: impl Into<String>) -> Self {
        Self::hard(AMQPHardError::NOTIMPLEMENTED, text)
    }

    fn soft(kind: AMQPSoftError, text: impl Into<String>) -> Self {
        ErrorKind::ProtocolError(AMQPError::new(kind.into(), short(&text.into()))).into()
    }

    fn hard(kind: AMQPHardError, text: impl Into<String>) -> Self {
        ErrorKind::ProtocolError(AMQPError::new(kind.into(), short(&text.into()))).into()
    }

    /// The AMQP reply code, when this is a protocol error.
    pub fn reply_code(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::ProtocolError(e) => Some(e.get_id()),
            _ => None,
        }
    }

    /// True for every AMQP protocol error.
    pub fn is_amqp_error(&self) -> bool {
        matches!(self.kind, ErrorKind::ProtocolError(_))
    }

    /// True for a soft AMQP error: the channel it happened on is closed.
    pub fn is_amqp_soft_error(&self) -> bool {
        matches!(&self.kind, ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Soft(_)))
    }

    /// True for a hard AMQP error: the whole connection is closed.
    pub fn is_amqp_hard_error(&self) -> bool {
        matches!(&self.kind, ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Hard(_)))
    }

    /// True when the error closed (or found closed) the connection rather than one channel.
    pub fn closes_connection(&self) -> bool {
        self.is_amqp_hard_error() || matches!(self.kind, ErrorKind::InvalidConnectionState(_))
    }

    /// True for I/O errors.
    pub fn is_io_error(&self) -> bool {
        matches!(self.kind, ErrorKind::IOError(_))
    }
}

/// AMQP reply texts are short strings (at most 255 bytes): cut longer texts on a char boundary.
fn short(text: &str) -> ShortString {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::from(&text[..end])
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        ErrorKind::IOError(Arc::new(err)).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_and_their_scope() {
        let cases = [
            (Error::no_route("x"), 312, false),
            (Error::access_refused("x"), 403, false),
            (Error::not_found("x"), 404, false),
            (Error::resource_locked("x"), 405, false),
            (Error::precondition_failed("x"), 406, false),
            (Error::not_allowed("x"), 530, true),
            (Error::not_implemented("x"), 540, true),
        ];
        for (err, code, hard) in cases {
            assert_eq!(err.reply_code(), Some(code));
            assert_eq!(err.is_amqp_hard_error(), hard, "{code}");
            assert_eq!(err.is_amqp_soft_error(), !hard, "{code}");
            assert_eq!(err.closes_connection(), hard, "{code}");
            assert_eq!(Error::amqp(code, "x"), err);
        }
    }

    #[test]
    fn unknown_codes_and_long_texts_do_not_panic() {
        let err = Error::amqp(999, "é".repeat(300));
        assert_eq!(err.reply_code(), Some(541));
        let ErrorKind::ProtocolError(inner) = err.kind() else {
            panic!("not a protocol error: {err:?}")
        };
        assert!(inner.get_message().as_str().len() <= 255);
        assert!(err.to_string().contains("999"));
    }

    #[test]
    fn state_errors_match_lapin_kinds() {
        let err: Error = ErrorKind::InvalidChannelState(ChannelState::Error, "closed").into();
        assert!(matches!(
            err.kind(),
            ErrorKind::InvalidChannelState(ChannelState::Error, _)
        ));
        assert!(!err.closes_connection());
        let err: Error = ErrorKind::InvalidConnectionState(ConnectionState::Closed).into();
        assert!(err.closes_connection());
        assert!(!err.is_amqp_error());
    }
}
