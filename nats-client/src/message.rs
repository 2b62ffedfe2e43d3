//! A received message.

use bytes::Bytes;
use nats_proto::{ByteString, HeaderMap, StatusCode};

/// A message delivered to a subscription or as a reply. Subject, reply, headers and payload
/// share the memory they were read into; cloning is cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The subject it was published to.
    pub subject: ByteString,
    /// Where to send a reply, if the publisher asked for one.
    pub reply: Option<ByteString>,
    /// The payload.
    pub payload: Bytes,
    /// Header fields, if it was sent with headers.
    pub headers: Option<HeaderMap>,
    /// Status code from the header status line (server-generated messages such as 503).
    pub status: Option<StatusCode>,
    /// Status description from the header status line.
    pub description: Option<ByteString>,
    /// Wire size of headers plus payload.
    pub length: usize,
}

impl From<nats_proto::Msg> for Message {
    fn from(m: nats_proto::Msg) -> Self {
        Message {
            subject: m.subject,
            reply: m.reply,
            payload: m.payload,
            headers: m.headers,
            status: m.status,
            description: m.description,
            length: m.size,
        }
    }
}
