//! The one error type of the protocol layer.

use thiserror::Error;

/// Everything that can be wrong with bytes read from a server or with a value we were asked to
/// encode. Each variant carries the facts needed to find the fault: the op, the field, the
/// offending text (truncated to a readable length) and, for inbound data, the stream offset of
/// the frame that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The control line does not start with a known server op.
    #[error("unknown protocol operation {op:?} at stream offset {offset}")]
    UnknownOp {
        /// The first bytes of the line, lossily decoded.
        op: String,
        /// Stream offset of the line.
        offset: u64,
    },
    /// A control line is longer than the configured limit (checked before its end is found,
    /// so a peer that never sends a newline cannot grow our buffer without bound).
    #[error(
        "control line of at least {len} bytes exceeds the limit of {limit} at stream offset {offset}"
    )]
    ControlLineTooLong {
        /// Bytes seen so far on the line.
        len: usize,
        /// The configured limit.
        limit: usize,
        /// Stream offset of the line.
        offset: u64,
    },
    /// An op has the wrong number of arguments.
    #[error("{op} with {got} arguments at stream offset {offset}: {line:?}")]
    ArgumentCount {
        /// The op.
        op: &'static str,
        /// How many arguments were found.
        got: usize,
        /// The offending line (truncated).
        line: String,
        /// Stream offset of the line.
        offset: u64,
    },
    /// A numeric field is not a decimal number, or overflows.
    #[error("invalid {field} {text:?} in {op} at stream offset {offset}")]
    InvalidNumber {
        /// The op.
        op: &'static str,
        /// Which field (`sid`, `size`, `header size`).
        field: &'static str,
        /// The offending text (truncated).
        text: String,
        /// Stream offset of the line.
        offset: u64,
    },
    /// A message payload exceeds the configured inbound limit.
    #[error("payload of {size} bytes exceeds the limit of {limit} at stream offset {offset}")]
    PayloadTooLarge {
        /// Declared size.
        size: usize,
        /// The limit.
        limit: usize,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// An HMSG declares more header bytes than total bytes.
    #[error(
        "header length {header_len} exceeds total length {total_len} at stream offset {offset}"
    )]
    HeaderLengthExceedsTotal {
        /// Declared header length.
        header_len: usize,
        /// Declared total length.
        total_len: usize,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// The bytes after a payload are not CRLF.
    #[error("payload not terminated by CRLF at stream offset {offset}")]
    MissingPayloadTerminator {
        /// Stream offset of the frame.
        offset: u64,
    },
    /// A field that must be UTF-8 is not.
    #[error("{field} is not valid UTF-8 at stream offset {offset}")]
    InvalidUtf8 {
        /// Which field.
        field: &'static str,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// The JSON of an INFO line does not parse.
    #[error("invalid INFO JSON: {reason}")]
    InvalidInfo {
        /// The JSON parser's message.
        reason: String,
    },
    /// A header block does not parse.
    #[error("invalid header block: {reason}")]
    InvalidHeaders {
        /// What was wrong.
        reason: String,
    },
    /// A subject we were asked to publish, subscribe or reply to is not valid.
    #[error("invalid subject {subject:?}: {reason}")]
    InvalidSubject {
        /// The subject (truncated).
        subject: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// A queue group name is not valid.
    #[error("invalid queue group {queue:?}: {reason}")]
    InvalidQueueGroup {
        /// The queue group (truncated).
        queue: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// A header name or value we were asked to encode is not valid.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name (truncated).
        name: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// An outbound payload exceeds the server's `max_payload`.
    #[error("payload of {size} bytes exceeds the server's max_payload of {limit}")]
    MaxPayloadExceeded {
        /// Payload plus headers size.
        size: usize,
        /// The server's limit.
        limit: usize,
    },
    /// An outbound control line exceeds the server's `max_control_line`.
    #[error("control line of {len} bytes exceeds the server's max_control_line of {limit}")]
    MaxControlLineExceeded {
        /// Control line length including CRLF.
        len: usize,
        /// The server's limit.
        limit: usize,
    },
    /// The parser failed earlier; the stream is out of sync and must be dropped.
    #[error("parser is poisoned by an earlier error; the connection must be reset")]
    Poisoned,
}

/// Truncates untrusted text for an error message, so a hostile peer cannot make us keep
/// megabytes in an error value.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}
