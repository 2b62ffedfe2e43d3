//! The resumable server-op parser.
//!
//! Call [`Parser::parse`] with the connection's read buffer after every read; it returns
//! `Ok(None)` when the buffered bytes do not yet hold a whole op, and never re-scans what it has
//! already looked at: the newline search resumes where it stopped, and a MSG whose payload is
//! still arriving keeps its parsed control line. Complete frames are split off the front of the
//! buffer and frozen, so payloads, subjects and header values are zero-copy slices.
//!
//! ```
//! use bytes::BytesMut;
//! use nats_proto::{Parser, ServerOp};
//!
//! let mut parser = Parser::new();
//! let mut buf = BytesMut::from(&b"MSG orders.eu 7 5\r\nhel"[..]);
//! assert_eq!(parser.parse(&mut buf).unwrap(), None); // payload still arriving
//! buf.extend_from_slice(b"lo\r\nPING\r\n");
//! let Some(ServerOp::Msg(msg)) = parser.parse(&mut buf).unwrap() else { panic!() };
//! assert_eq!((&*msg.subject, msg.sid, &msg.payload[..]), ("orders.eu", 7, &b"hello"[..]));
//! assert_eq!(parser.parse(&mut buf).unwrap(), Some(ServerOp::Ping));
//! ```

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;

use crate::ServerInfo;
use crate::error::{ProtoError, excerpt};
use crate::headers::parse_block_in;
use crate::op::{BadMsg, Msg, ServerOp};

mod line;
pub(crate) use line::find_newline;
use line::{Op, err_text, is_sep, op_of, parse_decimal, simple_hmsg, simple_msg, split_args};

/// Limits on what the parser accepts from a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// Longest control line (op and arguments, CRLF included). The server's own
    /// `max_control_line` (4 KiB) binds what clients send; lines a server sends can be longer
    /// (long JetStream reply subjects, big INFO with many `connect_urls`), so the default is
    /// a generous 64 KiB. It exists so a peer that never sends a newline cannot grow the
    /// buffer without bound.
    pub max_control_line: usize,
    /// Largest MSG/HMSG total size (headers plus payload) accepted.
    pub max_payload: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_control_line: 64 * 1024,
            max_payload: 64 * 1024 * 1024,
        }
    }
}

/// The parsed control line of a MSG/HMSG, kept while its payload is still arriving.
///
/// Plain offsets rather than `Range`s and `Option`s: this is copied on the hottest path, and
/// scalar fields are copied with scalar moves (wide copies of fields that were just written
/// piecewise stall the CPU's store forwarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MsgLine {
    /// Control line length including its line terminator.
    line_len: usize,
    subject_start: usize,
    subject_end: usize,
    sid: u64,
    /// Equal (both 0) when there is no reply subject; a reply is never empty.
    reply_start: usize,
    reply_end: usize,
    /// HMSG: header block length; MSG: `None`.
    header_len: Option<usize>,
    total_len: usize,
}

impl MsgLine {
    /// Whole frame length: control line, payload, CRLF. Cannot overflow: both parts are
    /// bounded by the limits, far below `usize::MAX`.
    fn frame_len(&self) -> usize {
        self.line_len + self.total_len + 2
    }
}

/// Resumable parser state for one connection.
#[derive(Debug, Clone, Default)]
pub struct Parser {
    limits: ParserLimits,
    /// How many bytes at the front of the buffer are known to hold no newline.
    scanned: usize,
    pending: Option<MsgLine>,
    /// Stream offset of the buffer's first byte, for error messages.
    offset: u64,
    poisoned: bool,
}

impl Parser {
    /// A parser with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: ParserLimits) -> Self {
        Parser {
            limits,
            ..Self::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ParserLimits {
        self.limits
    }

    /// Changes the limits; takes effect from the next op.
    pub fn set_limits(&mut self, limits: ParserLimits) {
        self.limits = limits;
    }

    /// Total number of bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// When a message is partly buffered: how many bytes the buffer must hold for it to
    /// complete. Lets the reader reserve capacity once for a large payload.
    pub fn bytes_needed(&self) -> Option<usize> {
        self.pending.as_ref().map(MsgLine::frame_len)
    }

    /// Parses the next op from the front of `buf`, removing its bytes.
    ///
    /// Returns `Ok(None)` when more bytes are needed; call again after the next read.
    ///
    /// Errors are framing errors only (an unknown op, bad lengths, a missing CRLF, a line or
    /// message over the limits): the byte stream is lost, and every later call returns
    /// [`ProtoError::Poisoned`]. A well-framed message whose content cannot be read (a subject
    /// that is not UTF-8, a malformed header block) is not an error: it comes back as
    /// [`ServerOp::BadMsg`], its frame consumed, and parsing goes on.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtoError> {
        if self.poisoned {
            return Err(ProtoError::Poisoned);
        }
        let result = self.parse_inner(buf);
        if result.is_err() {
            self.poisoned = true;
            self.pending = None;
        }
        result
    }

    fn parse_inner(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtoError> {
        if self.pending.is_some() {
            return self.finish_msg(buf);
        }
        let Some(newline) = find_newline(&buf[self.scanned..]) else {
            self.scanned = buf.len();
            if buf.len() > self.limits.max_control_line {
                return Err(ProtoError::ControlLineTooLong {
                    len: buf.len(),
                    limit: self.limits.max_control_line,
                    offset: self.offset,
                });
            }
            return Ok(None);
        };
        let newline = self.scanned + newline;
        self.scanned = 0;
        let line_len = newline + 1;
        if line_len > self.limits.max_control_line {
            return Err(ProtoError::ControlLineTooLong {
                len: line_len,
                limit: self.limits.max_control_line,
                offset: self.offset,
            });
        }
        let end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let line = &buf[..end];
        if let Some(msg) = simple_msg(line, line_len) {
            debug_assert_eq!(Ok(msg), self.msg_line(line, line_len, false));
            return self.complete_msg(buf, msg);
        }
        let op = match op_of(line) {
            Some(Op::Msg) => return self.start_msg(buf, end, line_len, false),
            Some(Op::Hmsg) => {
                if let Some(msg) = simple_hmsg(line, line_len) {
                    debug_assert_eq!(Ok(msg), self.msg_line(line, line_len, true));
                    return self.complete_msg(buf, msg);
                }
                return self.start_msg(buf, end, line_len, true);
            }
            Some(Op::Ping) => ServerOp::Ping,
            Some(Op::Pong) => ServerOp::Pong,
            Some(Op::Ok) => ServerOp::Ok,
            Some(Op::Err) => ServerOp::Err(err_text(&line[4..])),
            Some(Op::Info) => ServerOp::Info(parse_info(&line[4..])?),
            None => {
                let word = line
                    .iter()
                    .position(|&b| is_sep(b))
                    .map_or(line, |p| &line[..p]);
                return Err(ProtoError::UnknownOp {
                    op: excerpt(word),
                    offset: self.offset,
                });
            }
        };
        self.consume(buf, line_len);
        Ok(Some(op))
    }

    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.offset += n as u64;
    }

    /// Parses the arguments of a MSG/HMSG control line, then tries to complete it.
    fn start_msg(
        &mut self,
        buf: &mut BytesMut,
        end: usize,
        line_len: usize,
        headers: bool,
    ) -> Result<Option<ServerOp>, ProtoError> {
        let msg = self.msg_line(&buf[..end], line_len, headers)?;
        self.complete_msg(buf, msg)
    }

    /// The arguments of a MSG/HMSG control line (`line` without its terminator).
    fn msg_line(&self, line: &[u8], line_len: usize, headers: bool) -> Result<MsgLine, ProtoError> {
        let (name, skip): (&'static str, usize) = if headers { ("HMSG", 4) } else { ("MSG", 3) };
        let mut starts = [0usize; 5];
        let mut ends = [0usize; 5];
        let n = split_args(line, skip, &mut starts, &mut ends);
        let fixed = if headers { 4 } else { 3 };
        if n != fixed && n != fixed + 1 {
            return Err(ProtoError::ArgumentCount {
                op: name,
                got: n,
                line: excerpt(line),
                offset: self.offset,
            });
        }
        let number = |field: &'static str, i: usize| {
            let digits = &line[starts[i]..ends[i]];
            parse_decimal(digits).ok_or_else(|| ProtoError::InvalidNumber {
                op: name,
                field,
                text: excerpt(digits),
                offset: self.offset,
            })
        };
        let sid = number("sid", 1)?;
        let total_len = number("size", n - 1)?;
        let header_len = if headers {
            Some(number("header size", n - 2)?)
        } else {
            None
        };
        let total_len = usize::try_from(total_len).unwrap_or(usize::MAX);
        let header_len = header_len.map(|h| usize::try_from(h).unwrap_or(usize::MAX));
        if let Some(h) = header_len
            && h > total_len
        {
            return Err(ProtoError::HeaderLengthExceedsTotal {
                header_len: h,
                total_len,
                offset: self.offset,
            });
        }
        let (reply_start, reply_end) = if n == fixed + 1 {
            (starts[2], ends[2])
        } else {
            (0, 0)
        };
        let msg = MsgLine {
            line_len,
            subject_start: starts[0],
            subject_end: ends[0],
            sid,
            reply_start,
            reply_end,
            header_len,
            total_len,
        };
        Ok(msg)
    }

    /// Checks the size limit, then takes the message if its frame is complete, else keeps its
    /// control line for later.
    fn complete_msg(
        &mut self,
        buf: &mut BytesMut,
        msg: MsgLine,
    ) -> Result<Option<ServerOp>, ProtoError> {
        if msg.total_len > self.limits.max_payload {
            return Err(ProtoError::PayloadTooLarge {
                size: msg.total_len,
                limit: self.limits.max_payload,
                offset: self.offset,
            });
        }
        if buf.len() < msg.frame_len() {
            self.pending = Some(msg);
            return Ok(None);
        }
        self.take_msg(buf, msg)
    }

    /// Completes the pending message once its payload and trailing CRLF are buffered.
    fn finish_msg(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtoError> {
        match &self.pending {
            Some(p) if buf.len() >= p.frame_len() => {}
            _ => return Ok(None),
        }
        let Some(msg) = self.pending.take() else {
            return Ok(None);
        };
        self.take_msg(buf, msg)
    }

    /// Splits a whole buffered message off the front of `buf`.
    ///
    /// One `split_to` + `freeze` takes the frame; subject and reply are slices of it, and the
    /// frame itself, narrowed to the payload, becomes the payload. So a MSG costs two refcount
    /// increments (three with a reply) and no decrement.
    #[inline(always)]
    fn take_msg(&mut self, buf: &mut BytesMut, m: MsgLine) -> Result<Option<ServerOp>, ProtoError> {
        let frame_len = m.frame_len();
        if &buf[frame_len - 2..frame_len] != b"\r\n" {
            return Err(ProtoError::MissingPayloadTerminator {
                offset: self.offset,
            });
        }
        let offset = self.offset;
        // Past this point the frame is consumed whatever its content: a content error is a
        // `BadMsg`, not a parse error, so the stream stays in step. The CRLF stays out of the
        // frame, so narrowing the frame to the payload is a single `advance`.
        let frame = buf.split_to(frame_len - 2);
        // Between the split and the freeze: the freeze reads the split-off handle with wide
        // loads, which stall if the stores that wrote it are still in flight.
        buf.advance(2);
        self.offset += frame_len as u64;
        let frame = frame.freeze();
        if let Some(header_len) = m.header_len {
            return Ok(Some(with_headers(frame, &m, header_len, offset)));
        }
        let Some((subject, reply)) = names(&frame, &m) else {
            let error = names_error(&frame, &m, offset);
            return Ok(Some(bad_msg(frame, &m, error)));
        };
        // The frame handle itself becomes the payload: narrowed in place, no new refcount.
        let mut payload = frame;
        payload.advance(m.line_len);
        Ok(Some(ServerOp::Msg(Msg {
            subject,
            sid: m.sid,
            reply,
            headers: None,
            status: None,
            description: None,
            payload,
            size: m.total_len,
        })))
    }
}

/// Subject and reply subject of a message, as slices of its frame; `None` when either is
/// not UTF-8 ([`names_error`] says which, off the hot path).
#[inline(always)]
fn names(frame: &Bytes, m: &MsgLine) -> Option<(ByteString, Option<ByteString>)> {
    let subject = ByteString::try_from(frame.slice(m.subject_start..m.subject_end)).ok()?;
    if m.reply_end == m.reply_start {
        return Some((subject, None));
    }
    let reply = ByteString::try_from(frame.slice(m.reply_start..m.reply_end)).ok()?;
    Some((subject, Some(reply)))
}

/// Why [`names`] failed.
#[cold]
fn names_error(frame: &Bytes, m: &MsgLine, offset: u64) -> ProtoError {
    let field = if std::str::from_utf8(&frame[m.subject_start..m.subject_end]).is_err() {
        "subject"
    } else {
        "reply subject"
    };
    ProtoError::InvalidUtf8 { field, offset }
}

/// An HMSG frame (without its trailing CRLF) as a message, or as a [`BadMsg`] when its header
/// block or names cannot be read. Out of line: it parses the header block, and keeping that off
/// the MSG path keeps the MSG path's stack frame small.
#[inline(never)]
fn with_headers(mut frame: Bytes, m: &MsgLine, header_len: usize, offset: u64) -> ServerOp {
    let body_start = m.line_len;
    let block = match parse_block_in(&frame, body_start..body_start + header_len) {
        Ok(block) => block,
        Err(error) => return bad_msg(frame, m, error),
    };
    let Some((subject, reply)) = names(&frame, m) else {
        let error = names_error(&frame, m, offset);
        return bad_msg(frame, m, error);
    };
    frame.advance(body_start + header_len);
    ServerOp::Msg(Msg {
        subject,
        sid: m.sid,
        reply,
        headers: Some(block.headers),
        status: block.status,
        description: block.description,
        payload: frame,
        size: m.total_len,
    })
}

/// A well-framed message whose content could not be read: its parts as raw slices of the
/// frame (without its trailing CRLF), and the error.
#[cold]
#[inline(never)]
fn bad_msg(frame: Bytes, m: &MsgLine, error: ProtoError) -> ServerOp {
    let body = m.line_len;
    let (headers, payload_start) = match m.header_len {
        Some(h) => (Some(frame.slice(body..body + h)), body + h),
        None => (None, body),
    };
    ServerOp::BadMsg(Box::new(BadMsg {
        sid: m.sid,
        subject: frame.slice(m.subject_start..m.subject_end),
        reply: (m.reply_end != m.reply_start).then(|| frame.slice(m.reply_start..m.reply_end)),
        headers,
        payload: frame.slice(payload_start..),
        size: m.total_len,
        error,
    }))
}

/// The INFO body. Out of line: rare, and its JSON machinery would otherwise bloat the stack
/// frame of every `parse` call.
#[inline(never)]
fn parse_info(json: &[u8]) -> Result<Box<ServerInfo>, ProtoError> {
    serde_json::from_slice(json)
        .map(Box::new)
        .map_err(|e| ProtoError::InvalidInfo {
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod content_tests;
#[cfg(test)]
mod tests;
