//! Protocol operation values: what a server sends ([`ServerOp`]) and what a client sends
//! ([`ClientOp`]).

use bytes::Bytes;
use bytestring::ByteString;

use crate::{ConnectInfo, HeaderMap, ProtoError, ServerInfo, StatusCode};

/// One operation received from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// `INFO {json}`: sent on connect and whenever the cluster changes.
    Info(Box<ServerInfo>),
    /// `MSG` or `HMSG`: a message for one of our subscriptions.
    Msg(Msg),
    /// A well-framed `MSG` or `HMSG` whose content cannot be read as a [`Msg`]: its subject or
    /// reply subject is not UTF-8, or its header block does not parse. Such bytes come from a
    /// publisher, not from a broken stream (the server passes them through), so this is not an
    /// error: the whole frame was consumed, the parser is in step, and the next op parses
    /// normally. Boxed: rare, and it keeps [`ServerOp`] small on the hot path.
    BadMsg(Box<BadMsg>),
    /// `PING`: the server checks we are alive; answer with PONG.
    Ping,
    /// `PONG`: the answer to one of our PINGs, in order.
    Pong,
    /// `+OK`: acknowledgement in verbose mode.
    Ok,
    /// `-ERR 'text'`: the server's error text, quotes removed.
    Err(String),
}

/// A message delivered by MSG or HMSG. Subject, reply, header values and payload are zero-copy
/// slices of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The subject it was published to.
    pub subject: ByteString,
    /// The subscription id it is for.
    pub sid: u64,
    /// Reply subject, if the publisher gave one.
    pub reply: Option<ByteString>,
    /// Header fields (HMSG only; `Some` even when the block held only a status line).
    pub headers: Option<HeaderMap>,
    /// Status code from the header status line (e.g. 503 no responders).
    pub status: Option<StatusCode>,
    /// Status description from the header status line.
    pub description: Option<ByteString>,
    /// The payload.
    pub payload: Bytes,
    /// Bytes the message occupied on the wire after its control line: header block plus
    /// payload. This is what pending-byte limits count.
    pub size: usize,
}

/// A well-framed message whose content cannot be represented as a [`Msg`], with its bytes
/// exactly as received (zero-copy slices of the read buffer) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMsg {
    /// The subscription id it is for.
    pub sid: u64,
    /// The subject's bytes.
    pub subject: Bytes,
    /// The reply subject's bytes, if there is one.
    pub reply: Option<Bytes>,
    /// The header block as received (`HMSG` only).
    pub headers: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
    /// Bytes the message occupied on the wire after its control line (header block plus
    /// payload), as [`Msg::size`].
    pub size: usize,
    /// What could not be read: [`ProtoError::InvalidUtf8`] for a subject or reply subject,
    /// [`ProtoError::InvalidHeaders`] for a header block.
    pub error: ProtoError,
}

/// One operation a client sends, as an owned value. The client's hot path calls the
/// [`Encoder`](crate::Encoder) methods with borrowed data instead; this form is for tests,
/// tools and fuzzing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// `CONNECT {json}`.
    Connect(Box<ConnectInfo>),
    /// `PUB` (no headers) or `HPUB` (headers present).
    Pub {
        /// Subject.
        subject: String,
        /// Reply subject.
        reply: Option<String>,
        /// Headers; `Some` selects HPUB.
        headers: Option<HeaderMap>,
        /// Payload.
        payload: Bytes,
    },
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        /// Subscription id.
        sid: u64,
        /// Subject filter.
        subject: String,
        /// Queue group.
        queue: Option<String>,
    },
    /// `UNSUB <sid> [max]`.
    Unsub {
        /// Subscription id.
        sid: u64,
        /// Unsubscribe after this many more messages.
        max: Option<u64>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
}
