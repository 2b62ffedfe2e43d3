//! Encoding client ops (and, for tests and tools, server ops) into a `BytesMut`.
//!
//! Everything is validated before the first byte is written, so a failed call leaves the
//! buffer untouched: a shared write buffer never holds half an op.

use bytes::{BufMut, BytesMut};

use crate::error::ProtoError;
use crate::headers::encode_block;
use crate::op::{ClientOp, Msg, ServerOp};
use crate::subject::{validate_filter, validate_queue_group, validate_subject};
use crate::{ConnectInfo, HeaderMap, ServerInfo};

/// The server's limits on what a client may send, as announced in INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    /// Largest payload plus headers the server accepts (INFO `max_payload`).
    pub max_payload: usize,
    /// Longest control line the server accepts (its `max_control_line`, 4 KiB by default;
    /// not announced in INFO).
    pub max_control_line: usize,
}

impl Default for Encoder {
    /// The server defaults: 1 MiB payloads, 4 KiB control lines.
    fn default() -> Self {
        Encoder {
            max_payload: 1024 * 1024,
            max_control_line: 4096,
        }
    }
}

impl Encoder {
    /// An encoder with the limits of the given server INFO (defaults for absent values).
    pub fn for_server(info: &ServerInfo) -> Self {
        let mut e = Encoder::default();
        if info.max_payload > 0 {
            e.max_payload = info.max_payload;
        }
        e
    }

    /// Writes `PUB` (or `HPUB` when `headers` is given).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use nats_proto::Encoder;
    /// let mut buf = BytesMut::new();
    /// Encoder::default().publish(&mut buf, "orders.eu", Some("_INBOX.1"), None, b"hi").unwrap();
    /// assert_eq!(&buf[..], b"PUB orders.eu _INBOX.1 2\r\nhi\r\n");
    /// assert!(Encoder::default().publish(&mut buf, "bad subject", None, None, b"").is_err());
    /// ```
    pub fn publish(
        &self,
        buf: &mut BytesMut,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<(), ProtoError> {
        self.head(buf, subject, reply, headers, payload.len(), true)?;
        buf.put_slice(payload);
        buf.put_slice(b"\r\n");
        Ok(())
    }

    /// Writes the part of a `PUB`/`HPUB` before its payload (the control line and the header
    /// block), for a writer that sends the payload from where it is, followed by `\r\n`.
    /// Validates as [`Encoder::publish`] does; a failed call writes nothing. Room for the
    /// payload and its `\r\n` is not reserved.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use nats_proto::Encoder;
    /// let mut buf = BytesMut::new();
    /// Encoder::default().publish_head(&mut buf, "orders.eu", None, None, 5).unwrap();
    /// assert_eq!(&buf[..], b"PUB orders.eu 5\r\n");
    /// ```
    pub fn publish_head(
        &self,
        buf: &mut BytesMut,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload_len: usize,
    ) -> Result<(), ProtoError> {
        self.head(buf, subject, reply, headers, payload_len, false)
    }

    /// The control line and header block of a PUB/HPUB; with `room_for_payload`, the buffer
    /// is grown once for the whole op. Inlined into both callers: the hot path is `publish`.
    #[inline(always)]
    fn head(
        &self,
        buf: &mut BytesMut,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload_len: usize,
        room_for_payload: bool,
    ) -> Result<(), ProtoError> {
        validate_subject(subject)?;
        if let Some(reply) = reply {
            validate_subject(reply)?;
        }
        let header_len = match headers {
            Some(h) => {
                h.validate()?;
                Some(h.encoded_len())
            }
            None => None,
        };
        let total = payload_len.saturating_add(header_len.unwrap_or(0));
        if total > self.max_payload {
            return Err(ProtoError::MaxPayloadExceeded {
                size: total,
                limit: self.max_payload,
            });
        }
        let mut total_digits = itoa::Buffer::new();
        let total_digits = total_digits.format(total).as_bytes();
        let mut header_digits = itoa::Buffer::new();
        let header_digits = header_len.map(|h| header_digits.format(h).as_bytes());
        let line_len = 4
            + usize::from(header_len.is_some())
            + subject.len()
            + reply.map_or(0, |r| r.len() + 1)
            + header_digits.map_or(0, |d| d.len() + 1)
            + 1
            + total_digits.len()
            + 2;
        if line_len > self.max_control_line {
            return Err(ProtoError::MaxControlLineExceeded {
                len: line_len,
                limit: self.max_control_line,
            });
        }
        let payload_room = if room_for_payload { payload_len + 2 } else { 0 };
        buf.reserve(line_len + header_len.unwrap_or(0) + payload_room);
        buf.put_slice(if header_len.is_some() {
            b"HPUB "
        } else {
            b"PUB "
        });
        buf.put_slice(subject.as_bytes());
        if let Some(reply) = reply {
            buf.put_u8(b' ');
            buf.put_slice(reply.as_bytes());
        }
        if let Some(d) = header_digits {
            buf.put_u8(b' ');
            buf.put_slice(d);
        }
        buf.put_u8(b' ');
        buf.put_slice(total_digits);
        buf.put_slice(b"\r\n");
        if let Some(h) = headers {
            h.encode(buf);
        }
        Ok(())
    }

    /// Writes `SUB <subject> [queue] <sid>`.
    pub fn subscribe(
        &self,
        buf: &mut BytesMut,
        sid: u64,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<(), ProtoError> {
        validate_filter(subject)?;
        if let Some(q) = queue {
            validate_queue_group(q)?;
        }
        let mut sid_digits = itoa::Buffer::new();
        let sid_digits = sid_digits.format(sid).as_bytes();
        let line_len =
            4 + subject.len() + queue.map_or(0, |q| q.len() + 1) + 1 + sid_digits.len() + 2;
        if line_len > self.max_control_line {
            return Err(ProtoError::MaxControlLineExceeded {
                len: line_len,
                limit: self.max_control_line,
            });
        }
        buf.reserve(line_len);
        buf.put_slice(b"SUB ");
        buf.put_slice(subject.as_bytes());
        if let Some(q) = queue {
            buf.put_u8(b' ');
            buf.put_slice(q.as_bytes());
        }
        buf.put_u8(b' ');
        buf.put_slice(sid_digits);
        buf.put_slice(b"\r\n");
        Ok(())
    }

    /// Writes `UNSUB <sid> [max]`.
    pub fn unsubscribe(&self, buf: &mut BytesMut, sid: u64, max: Option<u64>) {
        buf.put_slice(b"UNSUB ");
        buf.put_slice(itoa::Buffer::new().format(sid).as_bytes());
        if let Some(max) = max {
            buf.put_u8(b' ');
            buf.put_slice(itoa::Buffer::new().format(max).as_bytes());
        }
        buf.put_slice(b"\r\n");
    }

    /// Writes `CONNECT {json}`.
    pub fn connect(&self, buf: &mut BytesMut, info: &ConnectInfo) {
        buf.put_slice(b"CONNECT ");
        write_json(buf, info);
        buf.put_slice(b"\r\n");
    }

    /// Writes `PING`.
    pub fn ping(&self, buf: &mut BytesMut) {
        buf.put_slice(b"PING\r\n");
    }

    /// Writes `PONG`.
    pub fn pong(&self, buf: &mut BytesMut) {
        buf.put_slice(b"PONG\r\n");
    }

    /// Writes any client op.
    pub fn encode(&self, buf: &mut BytesMut, op: &ClientOp) -> Result<(), ProtoError> {
        match op {
            ClientOp::Connect(info) => self.connect(buf, info),
            ClientOp::Pub {
                subject,
                reply,
                headers,
                payload,
            } => self.publish(buf, subject, reply.as_deref(), headers.as_ref(), payload)?,
            ClientOp::Sub {
                sid,
                subject,
                queue,
            } => self.subscribe(buf, *sid, subject, queue.as_deref())?,
            ClientOp::Unsub { sid, max } => self.unsubscribe(buf, *sid, *max),
            ClientOp::Ping => self.ping(buf),
            ClientOp::Pong => self.pong(buf),
        }
        Ok(())
    }
}

/// Writes a server op the way nats-server does. For in-memory tests, fuzzing and tools that
/// play the server side; the parser reads back exactly what this writes.
pub fn encode_server_op(buf: &mut BytesMut, op: &ServerOp) {
    match op {
        ServerOp::Info(info) => {
            buf.put_slice(b"INFO ");
            write_json(buf, info);
            buf.put_slice(b"\r\n");
        }
        ServerOp::Msg(msg) => encode_msg(buf, msg),
        ServerOp::BadMsg(msg) => encode_raw_msg(
            buf,
            &msg.subject,
            msg.sid,
            msg.reply.as_deref(),
            msg.headers.as_deref(),
            &msg.payload,
        ),
        ServerOp::Ping => buf.put_slice(b"PING\r\n"),
        ServerOp::Pong => buf.put_slice(b"PONG\r\n"),
        ServerOp::Ok => buf.put_slice(b"+OK\r\n"),
        ServerOp::Err(text) => {
            buf.put_slice(b"-ERR '");
            buf.put_slice(text.as_bytes());
            buf.put_slice(b"'\r\n");
        }
    }
}

fn encode_msg(buf: &mut BytesMut, msg: &Msg) {
    let mut block = BytesMut::new();
    if msg.headers.is_some() || msg.status.is_some() {
        let empty = HeaderMap::new();
        let status = msg.status.map(|s| (s, msg.description.as_deref()));
        encode_block(&mut block, status, msg.headers.as_ref().unwrap_or(&empty));
    }
    let has_headers = !block.is_empty();
    encode_raw_msg(
        buf,
        msg.subject.as_bytes(),
        msg.sid,
        msg.reply.as_ref().map(|r| r.as_bytes().as_ref()),
        has_headers.then_some(&block[..]),
        &msg.payload,
    );
}

/// A MSG (or, with a header block, an HMSG) from its parts as bytes.
fn encode_raw_msg(
    buf: &mut BytesMut,
    subject: &[u8],
    sid: u64,
    reply: Option<&[u8]>,
    block: Option<&[u8]>,
    payload: &[u8],
) {
    buf.put_slice(if block.is_some() { b"HMSG " } else { b"MSG " });
    buf.put_slice(subject);
    buf.put_u8(b' ');
    buf.put_slice(itoa::Buffer::new().format(sid).as_bytes());
    if let Some(reply) = reply {
        buf.put_u8(b' ');
        buf.put_slice(reply);
    }
    if let Some(block) = block {
        buf.put_u8(b' ');
        buf.put_slice(itoa::Buffer::new().format(block.len()).as_bytes());
    }
    let block = block.unwrap_or_default();
    buf.put_u8(b' ');
    let total = block.len() + payload.len();
    buf.put_slice(itoa::Buffer::new().format(total).as_bytes());
    buf.put_slice(b"\r\n");
    buf.put_slice(block);
    buf.put_slice(payload);
    buf.put_slice(b"\r\n");
}

fn write_json<T: serde::Serialize>(buf: &mut BytesMut, value: &T) {
    // Serialising these plain structs into memory cannot fail: no maps with non-string keys,
    // no custom Serialize impls, and the writer never returns an error.
    let _ = serde_json::to_writer(buf.writer(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc() -> Encoder {
        Encoder::default()
    }

    #[test]
    fn pub_and_hpub() {
        let mut buf = BytesMut::new();
        enc()
            .publish(&mut buf, "a.b", None, None, b"hello")
            .unwrap();
        assert_eq!(&buf[..], b"PUB a.b 5\r\nhello\r\n");
        buf.clear();
        let mut h = HeaderMap::new();
        h.insert("K", "v");
        enc()
            .publish(&mut buf, "a", Some("r"), Some(&h), b"xy")
            .unwrap();
        assert_eq!(
            &buf[..],
            b"HPUB a r 18 20\r\nNATS/1.0\r\nK: v\r\n\r\nxy\r\n"
        );
    }

    #[test]
    fn sub_unsub_ping_pong_connect() {
        let mut buf = BytesMut::new();
        enc().subscribe(&mut buf, 9, "a.*", Some("q")).unwrap();
        enc().subscribe(&mut buf, 10, "a.>", None).unwrap();
        enc().unsubscribe(&mut buf, 9, Some(5));
        enc().unsubscribe(&mut buf, 10, None);
        enc().ping(&mut buf);
        enc().pong(&mut buf);
        assert_eq!(
            &buf[..],
            b"SUB a.* q 9\r\nSUB a.> 10\r\nUNSUB 9 5\r\nUNSUB 10\r\nPING\r\nPONG\r\n"
        );
        buf.clear();
        enc().connect(
            &mut buf,
            &ConnectInfo {
                verbose: false,
                ..Default::default()
            },
        );
        assert!(buf.starts_with(b"CONNECT {\"verbose\":false"));
        assert!(buf.ends_with(b"}\r\n"));
    }

    #[test]
    fn publish_head_is_publish_up_to_the_payload() {
        let mut headers = HeaderMap::new();
        headers.insert("A", "1");
        for h in [None, Some(&headers)] {
            let (mut whole, mut head) = (BytesMut::new(), BytesMut::new());
            enc()
                .publish(&mut whole, "s", Some("r"), h, b"abc")
                .unwrap();
            enc().publish_head(&mut head, "s", Some("r"), h, 3).unwrap();
            head.extend_from_slice(b"abc\r\n");
            assert_eq!(whole, head);
        }
        let mut buf = BytesMut::new();
        let too_big = enc().max_payload + 1;
        assert!(
            enc()
                .publish_head(&mut buf, "s", None, None, too_big)
                .is_err()
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn failures_leave_the_buffer_untouched() {
        let mut buf = BytesMut::new();
        let e = enc();
        assert!(
            e.publish(&mut buf, "a\r\nPUB b 0", None, None, b"")
                .is_err()
        );
        assert!(e.publish(&mut buf, "a", Some("r r"), None, b"").is_err());
        assert!(e.publish(&mut buf, "a.*", None, None, b"").is_err());
        assert!(e.subscribe(&mut buf, 1, "a b", None).is_err());
        assert!(e.subscribe(&mut buf, 1, "a", Some("q\n")).is_err());
        let mut h = HeaderMap::new();
        h.insert("K", "v\r\nX: injected");
        assert!(e.publish(&mut buf, "a", None, Some(&h), b"").is_err());
        let small = Encoder {
            max_payload: 4,
            max_control_line: 4096,
        };
        assert_eq!(
            small.publish(&mut buf, "a", None, None, b"12345"),
            Err(ProtoError::MaxPayloadExceeded { size: 5, limit: 4 })
        );
        let long = "a".repeat(5000);
        assert!(matches!(
            e.publish(&mut buf, &long, None, None, b""),
            Err(ProtoError::MaxControlLineExceeded { .. })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn max_payload_counts_headers() {
        let mut h = HeaderMap::new();
        h.insert("K", "v");
        let e = Encoder {
            max_payload: h.encoded_len() + 1,
            max_control_line: 4096,
        };
        let mut buf = BytesMut::new();
        assert!(e.publish(&mut buf, "a", None, Some(&h), b"1").is_ok());
        assert!(e.publish(&mut buf, "a", None, Some(&h), b"12").is_err());
    }
}
