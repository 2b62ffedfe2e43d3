//! Errors of the JetStream layer: the server's typed [`ApiError`] and one [`JetStreamError`] enum
//! whose variants carry the facts (subject, stream, consumer, server text).

use std::fmt;
use std::time::Duration;

use nats_client::{ClientError, ErrorKind, PublishError, RequestError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A JetStream error code (`err_code` in API responses), as listed in nats-server's
/// `server/errors.json`. Unknown codes are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// 10008: the JetStream system is temporarily unavailable (cluster, no quorum).
    pub const CLUSTER_NOT_AVAILABLE: ErrorCode = ErrorCode(10008);
    /// 10013: consumer name already in use.
    pub const CONSUMER_NAME_EXISTS: ErrorCode = ErrorCode(10013);
    /// 10014: consumer not found.
    pub const CONSUMER_NOT_FOUND: ErrorCode = ErrorCode(10014);
    /// 10026: the stream has as many consumers as it may (`max_consumers`; on 2.15 a stream
    /// without an explicit limit stops at the server's `default_max_consumers`, 1000).
    pub const MAXIMUM_CONSUMERS_LIMIT: ErrorCode = ErrorCode(10026);
    /// 10037: no message found.
    pub const NO_MESSAGE_FOUND: ErrorCode = ErrorCode(10037);
    /// 10039: JetStream not enabled for the account.
    pub const NOT_ENABLED_FOR_ACCOUNT: ErrorCode = ErrorCode(10039);
    /// 10058: stream name already in use with a different configuration.
    pub const STREAM_NAME_EXISTS: ErrorCode = ErrorCode(10058);
    /// 10059: stream not found.
    pub const STREAM_NOT_FOUND: ErrorCode = ErrorCode(10059);
    /// 10060: the expected stream (`Nats-Expected-Stream`) does not match.
    pub const STREAM_NOT_MATCH: ErrorCode = ErrorCode(10060);
    /// 10065: the subjects overlap with those of another stream (two streams may not capture
    /// one subject).
    pub const STREAM_SUBJECT_OVERLAP: ErrorCode = ErrorCode(10065);
    /// 10070: wrong last message id (`Nats-Expected-Last-Msg-Id`).
    pub const STREAM_WRONG_LAST_MSG_ID: ErrorCode = ErrorCode(10070);
    /// 10071: wrong last sequence (`Nats-Expected-Last-Sequence` or
    /// `Nats-Expected-Last-Subject-Sequence`).
    pub const STREAM_WRONG_LAST_SEQUENCE: ErrorCode = ErrorCode(10071);
    /// 10076: JetStream not enabled.
    pub const NOT_ENABLED: ErrorCode = ErrorCode(10076);
    /// 10077: the stream could not store the message. With `discard: new` this is a full
    /// stream refusing a publish ("maximum messages exceeded", "maximum bytes exceeded",
    /// "maximum messages per subject exceeded"): AMQP's `x-overflow: reject-publish`. The
    /// server answers `503` with it, so [`JetStreamError::is_transient`] says true; check
    /// `is_api(ErrorCode::STREAM_STORE_FAILED)` first.
    pub const STREAM_STORE_FAILED: ErrorCode = ErrorCode(10077);
    /// 10100: on a work-queue stream, a consumer's filter overlaps another consumer's.
    pub const CONSUMER_WQ_NOT_UNIQUE: ErrorCode = ErrorCode(10100);
    /// 10093: a consumer's filter subject is not within the stream's subjects.
    pub const CONSUMER_FILTER_NOT_SUBSET: ErrorCode = ErrorCode(10093);
    /// 10119: the consumer is offline (an R1 consumer whose server is down, for example).
    pub const CONSUMER_OFFLINE: ErrorCode = ErrorCode(10119);
    /// 10134: on an Interest stream, a consumer must have as many replicas as the stream (an
    /// R1 or memory consumer on an R3 Interest stream is refused).
    pub const CONSUMER_REPLICAS_SHOULD_MATCH_STREAM: ErrorCode = ErrorCode(10134);
    /// 10138: a consumer's `filter_subjects` overlap (one is a subset of another).
    pub const CONSUMER_OVERLAPPING_SUBJECT_FILTERS: ErrorCode = ErrorCode(10138);
    /// 10148: consumer already exists (create with a different configuration).
    pub const CONSUMER_ALREADY_EXISTS: ErrorCode = ErrorCode(10148);
    /// 10149: consumer does not exist (update of a missing consumer).
    pub const CONSUMER_DOES_NOT_EXIST: ErrorCode = ErrorCode(10149);
    /// 10158: a message with this `Nats-Msg-Id` is being stored right now (an earlier copy is
    /// still in the stream's replication): send it again shortly.
    pub const STREAM_DUPLICATE_MESSAGE_CONFLICT: ErrorCode = ErrorCode(10158);
    /// 10164: wrong last sequence (newer servers, no sequence in the text).
    pub const STREAM_WRONG_LAST_SEQUENCE_CONSTANT: ErrorCode = ErrorCode(10164);
    /// 10165: invalid per-message TTL (`Nats-TTL` not a whole number of seconds >= 1 s, or
    /// `never`).
    pub const MESSAGE_TTL_INVALID: ErrorCode = ErrorCode(10165);
    /// 10166: a `Nats-TTL` was sent to a stream without `allow_msg_ttl`.
    pub const MESSAGE_TTL_DISABLED: ErrorCode = ErrorCode(10166);
    /// 10204: a consumer reset was refused (e.g. below the consumer's start sequence, or a
    /// sequence given to a consumer whose deliver policy is not `all`/`by_start_*`).
    pub const CONSUMER_INVALID_RESET: ErrorCode = ErrorCode(10204);
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An error reported by the JetStream API: an HTTP-like `code`, a JetStream-specific
/// `err_code`, and the server's text.
///
/// ```
/// use jetstream::{ApiError, ErrorCode};
/// let e: ApiError = serde_json::from_str(
///     r#"{"code":404,"err_code":10059,"description":"stream not found"}"#,
/// ).unwrap();
/// assert_eq!(e.err_code, ErrorCode::STREAM_NOT_FOUND);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("JetStream API error {code} ({err_code}): {description}")]
pub struct ApiError {
    /// HTTP-like status (400, 404, 500, 503).
    #[serde(default)]
    pub code: u16,
    /// The JetStream error code; 0 when the server did not send one.
    #[serde(default = "zero_code")]
    pub err_code: ErrorCode,
    /// The server's description.
    #[serde(default)]
    pub description: String,
}

fn zero_code() -> ErrorCode {
    ErrorCode(0)
}

/// Everything that can go wrong in the JetStream layer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JetStreamError {
    /// The server answered with an API error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request could not be made or got no reply (timeout, closed, disconnected).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A message could not be published (invalid subject, closed, reconnect buffer full).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A client call failed (subscribe, flush).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A reply could not be decoded.
    #[error("invalid JSON in the reply on {subject:?}: {reason}")]
    Json {
        /// The subject the request went to.
        subject: String,
        /// What serde said.
        reason: String,
    },
    /// A reply was well-formed JSON but not what the API promises (bad base64, headers...).
    #[error("invalid reply on {subject:?}: {reason}")]
    InvalidResponse {
        /// The subject the request went to.
        subject: String,
        /// What was wrong.
        reason: String,
    },
    /// No stream captures the subject: the publish got `503 no responders`.
    #[error("no stream captures subject {subject:?}")]
    NoStream {
        /// The subject published to.
        subject: String,
    },
    /// The publish acknowledgement did not arrive in time, after every retry.
    #[error(
        "no publish acknowledgement for {subject:?} after {attempts} attempt(s) of {timeout:?}"
    )]
    Timeout {
        /// The subject published to.
        subject: String,
        /// The timeout of each attempt.
        timeout: Duration,
        /// How many times the message was sent.
        attempts: u32,
    },
    /// A pull consumer stopped sending idle heartbeats: the server, the route to it, or the
    /// consumer is gone. Consumption goes on with a fresh pull request.
    #[error(
        "missed idle heartbeats of consumer {consumer:?} on stream {stream:?} (interval {interval:?})"
    )]
    HeartbeatMissed {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The idle heartbeat interval asked for.
        interval: Duration,
    },
    /// The consumer was deleted while a pull was waiting (`409 Consumer Deleted`).
    #[error("consumer {consumer:?} on stream {stream:?} was deleted")]
    ConsumerDeleted {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
    },
    /// A pull request was refused or cut short with a status the caller should know about
    /// (`409 Exceeded MaxWaiting`, `409 Exceeded MaxRequestBatch of 10`, `400 Bad Request`,
    /// `503` when nobody serves the consumer...).
    #[error("pull from consumer {consumer:?} on stream {stream:?}: status {code} {description}")]
    PullStatus {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The status code.
        code: u16,
        /// The status description.
        description: String,
    },
    /// A stream or consumer name cannot be used in an API subject.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// `"stream"` or `"consumer"`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A message's reply subject is not a JetStream ack subject, so it has no metadata and
    /// cannot be acknowledged.
    #[error("not a JetStream message ({subject:?}): {reason}")]
    NotJetStreamMessage {
        /// The reply subject, or the message's own subject when it has no reply subject
        /// (the reason says which).
        subject: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The direct get API does not answer for this stream (`allow_direct` is off).
    #[error("direct get is not available for stream {stream:?} (allow_direct is off?)")]
    DirectGetUnavailable {
        /// The stream.
        stream: String,
    },
    /// An advisory captured by the dead-letter worker could not be understood.
    #[error("invalid advisory on {subject:?}: {reason}")]
    InvalidAdvisory {
        /// The advisory's subject.
        subject: String,
        /// What was wrong.
        reason: String,
    },
}

impl JetStreamError {
    /// The API error, when the server sent one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            JetStreamError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is the API error `code`.
    ///
    /// ```
    /// use jetstream::{ApiError, ErrorCode, JetStreamError};
    /// let e = JetStreamError::Api(ApiError {
    ///     code: 404,
    ///     err_code: ErrorCode::STREAM_NOT_FOUND,
    ///     description: "stream not found".into(),
    /// });
    /// assert!(e.is_api(ErrorCode::STREAM_NOT_FOUND));
    /// ```
    pub fn is_api(&self, code: ErrorCode) -> bool {
        self.api_error().is_some_and(|e| e.err_code == code)
    }

    /// Whether waiting and trying again may succeed (timeouts, lost connections, a cluster
    /// without a leader for the moment).
    pub fn is_transient(&self) -> bool {
        match self {
            JetStreamError::Request(
                RequestError::TimedOut { .. }
                | RequestError::Disconnected { .. }
                | RequestError::NoResponders { .. },
            )
            | JetStreamError::Timeout { .. }
            | JetStreamError::NoStream { .. }
            | JetStreamError::HeartbeatMissed { .. } => true,
            JetStreamError::Api(e) => {
                e.code == 503
                    || e.err_code == ErrorCode::CLUSTER_NOT_AVAILABLE
                    || e.err_code == ErrorCode::STREAM_DUPLICATE_MESSAGE_CONFLICT
            }
            _ => false,
        }
    }

    pub(crate) fn json(subject: &str, e: &serde_json::Error) -> Self {
        JetStreamError::Json {
            subject: subject.to_owned(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn invalid(subject: &str, reason: impl Into<String>) -> Self {
        JetStreamError::InvalidResponse {
            subject: subject.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Checks a stream or consumer name: it becomes one token of an API subject, so it must be
/// non-empty and free of `.`, `*`, `>`, whitespace and path separators.
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<(), JetStreamError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > 255 {
        Some("longer than 255 bytes")
    } else if name.bytes().any(|b| {
        matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\') || b.is_ascii_whitespace() || b < 0x20
    }) {
        Some("contains '.', '*', '>', a path separator, whitespace or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(JetStreamError::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The questions every error of the stack answers (see [`nats_client::ErrorKind`]): the
/// client's errors inside keep their kind; JetStream's own map as documented on each variant
/// group below.
impl JetStreamError {
    /// What kind of failure this is: the client's kind for a wrapped client error;
    /// [`NoStream`](JetStreamError::NoStream) is `NoResponders`,
    /// [`Timeout`](JetStreamError::Timeout) is `TimedOut`,
    /// [`HeartbeatMissed`](JetStreamError::HeartbeatMissed) is `ConnectionLost`, an API error or
    /// a pull status is `Server`, a bad name or a message without an ack subject is
    /// `InvalidInput`, an undecodable reply or advisory is `Protocol`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JetStreamError::Request(e) => e.kind(),
            JetStreamError::Publish(e) => e.kind(),
            JetStreamError::Client(e) => e.kind(),
            JetStreamError::NoStream { .. } => ErrorKind::NoResponders,
            JetStreamError::Timeout { .. } => ErrorKind::TimedOut,
            JetStreamError::HeartbeatMissed { .. } => ErrorKind::ConnectionLost,
            JetStreamError::Api(_)
            | JetStreamError::ConsumerDeleted { .. }
            | JetStreamError::PullStatus { .. }
            | JetStreamError::DirectGetUnavailable { .. } => ErrorKind::Server,
            JetStreamError::InvalidName { .. } | JetStreamError::NotJetStreamMessage { .. } => {
                ErrorKind::InvalidInput
            }
            JetStreamError::Json { .. }
            | JetStreamError::InvalidResponse { .. }
            | JetStreamError::InvalidAdvisory { .. } => ErrorKind::Protocol,
        }
    }

    /// The client is closed.
    pub fn is_closed(&self) -> bool {
        self.kind() == ErrorKind::Closed
    }

    /// Something did not complete in time (an API reply, a publish ack after every retry).
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::TimedOut
    }

    /// Nobody answered: no stream captures the subject, or the API is not served.
    pub fn is_no_responders(&self) -> bool {
        self.kind() == ErrorKind::NoResponders
    }

    /// A permissions violation.
    pub fn is_permission(&self) -> bool {
        self.kind() == ErrorKind::Permission
    }

    /// The connection (or the consumer's heartbeat) was lost in flight.
    pub fn is_connection_lost(&self) -> bool {
        self.kind() == ErrorKind::ConnectionLost
    }

    /// The client's reconnect buffer is full.
    pub fn is_buffer_full(&self) -> bool {
        self.kind() == ErrorKind::BufferFull
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("stream", "ORDERS").is_ok());
        assert!(check_name("stream", "orders-1_x").is_ok());
        for bad in ["", "a.b", "a*", "a>", "a b", "a\tb", "a/b", "a\r\n"] {
            assert!(check_name("stream", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn api_error_tolerates_missing_fields() {
        let e: ApiError = serde_json::from_str(r#"{"code":503}"#).unwrap();
        assert_eq!(e.err_code, ErrorCode(0));
        assert_eq!(e.description, "");
    }

    #[test]
    fn kinds_go_through_every_layer() {
        let full = PublishError::ReconnectBufferFull {
            buffered: 1,
            limit: 2,
            size: 3,
        };
        assert!(JetStreamError::Publish(full.clone()).is_buffer_full());
        assert!(JetStreamError::Request(RequestError::Publish(full.clone())).is_buffer_full());
        assert!(JetStreamError::Client(ClientError::from(full)).is_buffer_full());
        let timed_out = JetStreamError::Timeout {
            subject: "s".into(),
            timeout: Duration::from_secs(1),
            attempts: 2,
        };
        assert!(timed_out.is_timeout());
        assert!(
            JetStreamError::NoStream {
                subject: "s".into()
            }
            .is_no_responders()
        );
        assert!(JetStreamError::Request(RequestError::Closed).is_closed());
        assert!(JetStreamError::Client(ClientError::Closed).is_closed());
        assert!(
            JetStreamError::Request(RequestError::Disconnected {
                subject: "s".into()
            })
            .is_connection_lost()
        );
        let api = JetStreamError::Api(ApiError {
            code: 404,
            err_code: ErrorCode::STREAM_NOT_FOUND,
            description: "stream not found".into(),
        });
        assert_eq!(api.kind(), ErrorKind::Server);
        assert!(!api.is_timeout() && !api.is_closed() && !api.is_permission());
    }
}
