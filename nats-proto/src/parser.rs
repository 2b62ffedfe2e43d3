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

use bytes::{Buf, BytesMut};
use bytestring::ByteString;

use crate::ServerInfo;
use crate::error::{ProtoError, excerpt};
use crate::headers::parse_block_in;
use crate::op::{Msg, ServerOp};

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
#[derive(Debug, Clone, Copy)]
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
    /// Returns `Ok(None)` when more bytes are needed; call again after the next read. After an
    /// error the stream is out of sync: every later call returns [`ProtoError::Poisoned`].
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
        let Some(newline) = memchr::memchr(b'\n', &buf[self.scanned..]) else {
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
        let op = match op_of(line) {
            Some(Op::Msg) => return self.start_msg(buf, end, line_len, false),
            Some(Op::Hmsg) => return self.start_msg(buf, end, line_len, true),
            Some(Op::Ping) => ServerOp::Ping,
            Some(Op::Pong) => ServerOp::Pong,
            Some(Op::Ok) => ServerOp::Ok,
            Some(Op::Err) => ServerOp::Err(err_text(&line[4..])),
            Some(Op::Info) => {
                let info: ServerInfo =
                    serde_json::from_slice(&line[4..]).map_err(|e| ProtoError::InvalidInfo {
                        reason: e.to_string(),
                    })?;
                ServerOp::Info(Box::new(info))
            }
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
        let (name, skip): (&'static str, usize) = if headers { ("HMSG", 4) } else { ("MSG", 3) };
        let line = &buf[..end];
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
        if total_len > self.limits.max_payload {
            return Err(ProtoError::PayloadTooLarge {
                size: total_len,
                limit: self.limits.max_payload,
                offset: self.offset,
            });
        }
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
    #[inline]
    fn take_msg(&mut self, buf: &mut BytesMut, m: MsgLine) -> Result<Option<ServerOp>, ProtoError> {
        let frame_len = m.frame_len();
        if &buf[frame_len - 2..frame_len] != b"\r\n" {
            return Err(ProtoError::MissingPayloadTerminator {
                offset: self.offset,
            });
        }
        let offset = self.offset;
        // Past this point an error poisons the parser, so what it leaves of the buffer does
        // not matter.
        let frame = buf.split_to(frame_len).freeze();
        self.offset += frame_len as u64;
        let subject = frame.slice(m.subject_start..m.subject_end);
        let reply = (m.reply_end > m.reply_start).then(|| frame.slice(m.reply_start..m.reply_end));
        let body_start = m.line_len;
        let (block, payload_start) = match m.header_len {
            None => (None, body_start),
            Some(h) => (
                Some(parse_block_in(&frame, body_start..body_start + h)?),
                body_start + h,
            ),
        };
        // The frame handle itself becomes the payload: narrowed in place, no new refcount.
        let mut payload = frame;
        payload.truncate(body_start + m.total_len);
        payload.advance(payload_start);
        let Ok(subject) = ByteString::try_from(subject) else {
            return Err(ProtoError::InvalidUtf8 {
                field: "subject",
                offset,
            });
        };
        let reply = match reply.map(ByteString::try_from) {
            None => None,
            Some(Ok(reply)) => Some(reply),
            Some(Err(_)) => {
                return Err(ProtoError::InvalidUtf8 {
                    field: "reply subject",
                    offset,
                });
            }
        };
        let (headers, status, description) = match block {
            None => (None, None, None),
            Some(b) => (Some(b.headers), b.status, b.description),
        };
        Ok(Some(ServerOp::Msg(Msg {
            subject,
            sid: m.sid,
            reply,
            headers,
            status,
            description,
            payload,
            size: m.total_len,
        })))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Msg,
    Hmsg,
    Ping,
    Pong,
    Ok,
    Err,
    Info,
}

fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Recognises the op word case-insensitively. An op with arguments must be followed by a
/// separator; one without may be followed by nothing else but separators.
fn op_of(line: &[u8]) -> Option<Op> {
    let word_is = |word: &[u8], with_args: bool| {
        line.len() >= word.len()
            && line[..word.len()].eq_ignore_ascii_case(word)
            && match line.get(word.len()) {
                None => !with_args,
                Some(&b) if is_sep(b) => with_args || line[word.len()..].iter().all(|&b| is_sep(b)),
                Some(_) => false,
            }
    };
    match line.first()? | 0x20 {
        b'm' if word_is(b"MSG", true) => Some(Op::Msg),
        b'h' if word_is(b"HMSG", true) => Some(Op::Hmsg),
        b'p' if word_is(b"PING", false) => Some(Op::Ping),
        b'p' if word_is(b"PONG", false) => Some(Op::Pong),
        b'i' if word_is(b"INFO", true) => Some(Op::Info),
        b'+' if word_is(b"+OK", false) => Some(Op::Ok),
        b'-' if word_is(b"-ERR", true) || word_is(b"-ERR", false) => Some(Op::Err),
        _ => None,
    }
}

/// The text of `-ERR 'text'`, surrounding whitespace and quotes removed.
fn err_text(rest: &[u8]) -> String {
    let mut t = rest;
    while let [b, tail @ ..] = t {
        if is_sep(*b) { t = tail } else { break }
    }
    while let [head @ .., b] = t {
        if is_sep(*b) { t = head } else { break }
    }
    if let [b'\'', inner @ .., b'\''] = t {
        t = inner;
    }
    String::from_utf8_lossy(t).into_owned()
}

/// Splits the arguments after the op word, writing the i-th one's bounds to `starts[i]` and
/// `ends[i]`; returns how many there were (a count above the arrays' length means "too many";
/// their bounds are not kept).
///
/// This is the hottest loop of MSG parsing. Lines of up to 63 bytes after the op word (nearly
/// all MSG lines) are classified eight bytes at a time into one bitmask of separators, and the
/// tokens are read off the mask's edges; longer lines take the plain byte loop.
fn split_args(line: &[u8], from: usize, starts_out: &mut [usize], ends_out: &mut [usize]) -> usize {
    let args = &line[from..];
    if args.len() >= 64 {
        return split_args_bytewise(line, from, starts_out, ends_out);
    }
    // Bit i set when args[i] is a space or tab.
    let mut seps = 0;
    let mut pos = from;
    while pos + 8 <= line.len() {
        seps |= separator_bits(word_at(line, pos)) << (pos - from);
        pos += 8;
    }
    if pos < line.len() {
        let len = line.len() - pos;
        let tail = if line.len() >= 8 {
            // The line's last eight bytes, shifted so that `pos` comes first: one load instead
            // of a copy loop (which would become a `memcpy` call).
            word_at(line, line.len() - 8) >> (8 * (8 - len))
        } else {
            line[pos..]
                .iter()
                .rev()
                .fold(0, |w, &b| (w << 8) | u64::from(b))
        };
        seps |= (separator_bits(tail) & ((1 << len) - 1)) << (pos - from);
    }
    // Past the end counts as a separator, so the last token ends.
    seps |= u64::MAX << args.len();
    // The op word is followed by a separator, so "the byte before" bit 0 is one.
    let before = (seps << 1) | 1;
    let mut starts = !seps & before;
    let mut ends = seps & !before;
    let mut n = 0;
    while starts != 0 {
        let start = starts.trailing_zeros() as usize;
        // Every token ends: bit 63 is padding, since args.len() < 64.
        let end = ends.trailing_zeros() as usize;
        if n < starts_out.len() && n < ends_out.len() {
            starts_out[n] = from + start;
            ends_out[n] = from + end;
        }
        n += 1;
        starts &= starts - 1;
        ends &= ends - 1;
    }
    n
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `bytes` from `pos` as a little-endian word (`pos + 8` must be in range).
#[inline]
fn word_at(bytes: &[u8], pos: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[pos..pos + 8]);
    u64::from_le_bytes(w)
}

/// Bit 7 of each byte set exactly where that byte of `v` equals the byte repeated in `pattern`
/// (the carry-free form: no false positives next to a real match, unlike the classic
/// `(x - 0x01..) & !x & 0x80..`).
#[inline]
fn matching_bytes(v: u64, pattern: u64) -> u64 {
    let x = v ^ pattern;
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// One bit per byte of `v`, set for a space or a tab.
#[inline]
fn separator_bits(v: u64) -> u64 {
    let high = matching_bytes(v, 0x2020_2020_2020_2020) | matching_bytes(v, 0x0909_0909_0909_0909);
    // Gather bit 7 of byte i into bit i: the products land on distinct bits, so no carries.
    (high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// [`split_args`] one byte at a time, for long lines.
fn split_args_bytewise(
    line: &[u8],
    from: usize,
    starts_out: &mut [usize],
    ends_out: &mut [usize],
) -> usize {
    let mut n = 0;
    let mut i = from;
    loop {
        while i < line.len() && is_sep(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return n;
        }
        let start = i;
        while i < line.len() && !is_sep(line[i]) {
            i += 1;
        }
        if n < starts_out.len() && n < ends_out.len() {
            starts_out[n] = start;
            ends_out[n] = i;
        }
        n += 1;
    }
}

/// Parses a non-empty run of ASCII digits; `None` on any other byte or on overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests;
