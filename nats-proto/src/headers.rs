//! Message headers: the `NATS/1.0 [code [description]]` status line and MIME-style fields.
//!
//! Names keep the case the sender used. Lookup by [`HeaderMap::get`] is exact, as in nats.go;
//! [`HeaderMap::get_ignore_case`] is there for peers that vary the case.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{ProtoError, excerpt};
use crate::parser::find_newline;

mod value;
pub use value::HeaderValue;

const VERSION_LINE: &[u8] = b"NATS/1.0";

/// A status code carried on the header status line of a server message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100: idle heartbeat or flow control request (JetStream push and pull consumers).
    pub const IDLE_HEARTBEAT: StatusCode = StatusCode(100);
    /// 200: OK.
    pub const OK: StatusCode = StatusCode(200);
    /// 400: bad request.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 404: no messages (JetStream pull with `no_wait`).
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 408: request timeout (JetStream pull expired).
    pub const TIMEOUT: StatusCode = StatusCode(408);
    /// 409: conflict (JetStream: consumer deleted, max bytes exceeded, leadership change...).
    pub const CONFLICT: StatusCode = StatusCode(409);
    /// 503: no responders for a request.
    pub const NO_RESPONDERS: StatusCode = StatusCode(503);

    /// Builds a status code from its number; any three-digit code is accepted.
    pub fn from_u16(code: u16) -> Option<StatusCode> {
        (100..=999).contains(&code).then_some(StatusCode(code))
    }

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A multi-valued, insertion-ordered header map.
///
/// Small maps are the norm (a handful of fields), so a vector beats hashing here; values are
/// zero-copy slices of the received frame. Names and values are held losslessly as
/// [`HeaderValue`]s: the `&str` methods ([`get`](HeaderMap::get), [`iter`](HeaderMap::iter),
/// ...) see what is UTF-8, the `*_value` methods and [`entries`](HeaderMap::entries) see
/// everything.
///
/// ```
/// use nats_proto::HeaderMap;
/// let mut h = HeaderMap::new();
/// h.append("Nats-Msg-Id", "42");
/// h.append("X-Tag", "a");
/// h.append("X-Tag", "b");
/// assert_eq!(h.get("Nats-Msg-Id"), Some("42"));
/// assert_eq!(h.get("nats-msg-id"), None);
/// assert_eq!(h.get_ignore_case("nats-msg-id"), Some("42"));
/// assert_eq!(h.get_all("X-Tag").collect::<Vec<_>>(), ["a", "b"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(HeaderValue, HeaderValue)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value stored under exactly `name`, when that value is UTF-8 (see
    /// [`HeaderMap::get_value`] for any bytes).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_value(name).and_then(HeaderValue::as_str)
    }

    /// The first value stored under exactly `name`, as received.
    pub fn get_value(&self, name: &str) -> Option<&HeaderValue> {
        self.entries
            .iter()
            .find(|(n, _)| n.as_bytes() == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// The first value whose name equals `name` ignoring ASCII case, when that value is UTF-8.
    pub fn get_ignore_case(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| v.as_str())
    }

    /// Every UTF-8 value stored under exactly `name`, in insertion order (values that are not
    /// UTF-8 are left out here; [`HeaderMap::get_all_values`] has them all).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all_values(name).filter_map(HeaderValue::as_str)
    }

    /// Every value stored under exactly `name`, in insertion order, as received.
    pub fn get_all_values<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a HeaderValue> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.as_bytes() == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// Replaces every value of `name` with one value.
    pub fn insert(&mut self, name: impl Into<HeaderValue>, value: impl Into<HeaderValue>) {
        let name = name.into();
        self.entries.retain(|(n, _)| *n != name);
        self.entries.push((name, value.into()));
    }

    /// Adds a value to `name`, keeping the ones already there.
    pub fn append(&mut self, name: impl Into<HeaderValue>, value: impl Into<HeaderValue>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Removes every value of `name`; returns whether any was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|(n, _)| n.as_bytes() != name.as_bytes());
        before != self.entries.len()
    }

    /// Whether `name` has at least one value (UTF-8 or not).
    pub fn contains(&self, name: &str) -> bool {
        self.get_value(name).is_some()
    }

    /// Number of (name, value) pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no field.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every (name, value) pair whose name and value are UTF-8, in insertion order
    /// ([`HeaderMap::entries`] has them all).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .filter_map(|(n, v)| Some((n.as_str()?, v.as_str()?)))
    }

    /// Every (name, value) pair in insertion order, as received.
    pub fn entries(&self) -> impl Iterator<Item = (&HeaderValue, &HeaderValue)> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    /// Whether every name and value is UTF-8 (then [`HeaderMap::iter`] sees every pair).
    pub fn is_utf8(&self) -> bool {
        self.entries.iter().all(|(n, v)| n.is_utf8() && v.is_utf8())
    }

    /// Checks every name and value can go on the wire unchanged: names are non-empty visible
    /// ASCII without `:`; values have no CR or LF (header injection otherwise).
    pub fn validate(&self) -> Result<(), ProtoError> {
        for (name, value) in &self.entries {
            let reason = if name.is_empty() {
                Some("empty name")
            } else if name
                .as_bytes()
                .iter()
                .any(|&b| !(b'!'..=b'~').contains(&b) || b == b':')
            {
                Some("name must be visible ASCII without ':'")
            } else if value.as_bytes().iter().any(|&b| b == b'\r' || b == b'\n') {
                Some("value contains CR or LF")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(ProtoError::InvalidHeader {
                    name: excerpt(name.as_bytes()),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// The exact number of bytes [`HeaderMap::encode`] writes (without a status).
    pub fn encoded_len(&self) -> usize {
        let fields: usize = self
            .entries
            .iter()
            .map(|(n, v)| n.len() + 2 + v.len() + 2)
            .sum();
        VERSION_LINE.len() + 2 + fields + 2
    }

    /// Writes the header block (version line, fields, blank line). Call [`HeaderMap::validate`]
    /// first: this writes whatever it holds.
    pub fn encode(&self, buf: &mut BytesMut) {
        encode_block(buf, None, self);
    }
}

impl<'a> IntoIterator for &'a HeaderMap {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<K: Into<HeaderValue>, V: Into<HeaderValue>> FromIterator<(K, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = HeaderMap::new();
        for (k, v) in iter {
            map.append(k, v);
        }
        map
    }
}

/// A parsed header block: the optional status line parts and the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    /// Status code from the version line, if any.
    pub status: Option<StatusCode>,
    /// Description after the status code, if any.
    pub description: Option<ByteString>,
    /// The fields.
    pub headers: HeaderMap,
}

/// Writes a header block, with a status line when `status` is given (server side, tests).
pub fn encode_block(
    buf: &mut BytesMut,
    status: Option<(StatusCode, Option<&str>)>,
    headers: &HeaderMap,
) {
    buf.put_slice(VERSION_LINE);
    if let Some((code, description)) = status {
        buf.put_u8(b' ');
        buf.put_slice(itoa::Buffer::new().format(code.as_u16()).as_bytes());
        if let Some(d) = description {
            buf.put_u8(b' ');
            buf.put_slice(d.as_bytes());
        }
    }
    buf.put_slice(b"\r\n");
    for (name, value) in &headers.entries {
        buf.put_slice(name.as_bytes());
        buf.put_slice(b": ");
        buf.put_slice(value.as_bytes());
        buf.put_slice(b"\r\n");
    }
    buf.put_slice(b"\r\n");
}

/// Parses a header block; `block` is the exact header section of an HMSG (a zero-copy slice of
/// the frame), so the returned strings share its memory.
pub fn parse_block(block: &Bytes) -> Result<HeaderBlock, ProtoError> {
    parse_block_in(block, 0..block.len())
}

/// [`parse_block`] for the header section `range` of a larger buffer (the parser's frame), so
/// the section itself need not be sliced off first: names and values are slices of `block`.
pub(crate) fn parse_block_in(
    block: &Bytes,
    range: std::ops::Range<usize>,
) -> Result<HeaderBlock, ProtoError> {
    let invalid = |reason: String| ProtoError::InvalidHeaders { reason };
    let mut lines = Lines {
        bytes: &block[..range.end],
        pos: range.start,
    };
    let first = lines
        .next()
        .ok_or_else(|| invalid("missing version line".into()))?;
    let version = &block[first.clone()];
    if version.len() < VERSION_LINE.len() || !version[..VERSION_LINE.len()].eq(VERSION_LINE) {
        return Err(invalid(format!(
            "version line {:?} does not start with NATS/1.0",
            excerpt(version)
        )));
    }
    let mut out = HeaderBlock::default();
    let rest = trim(block, first.start + VERSION_LINE.len()..first.end);
    if !rest.is_empty() {
        if !matches!(version[VERSION_LINE.len()], b' ' | b'\t') {
            return Err(invalid(format!(
                "malformed version line {:?}",
                excerpt(version)
            )));
        }
        let code_end = block[rest.clone()]
            .iter()
            .position(|b| matches!(b, b' ' | b'\t'))
            .map_or(rest.end, |p| rest.start + p);
        let code = &block[rest.start..code_end];
        let status = (code.len() == 3 && code.iter().all(u8::is_ascii_digit))
            .then(|| code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
            .and_then(StatusCode::from_u16)
            .ok_or_else(|| invalid(format!("invalid status code {:?}", excerpt(code))))?;
        out.status = Some(status);
        let desc = trim(block, code_end..rest.end);
        if !desc.is_empty() {
            out.description = Some(utf8(block.slice(desc), "status description")?);
        }
    }
    let mut ended = false;
    for line in lines.by_ref() {
        if line.is_empty() {
            ended = true;
            break;
        }
        let text = &block[line.clone()];
        let colon = text
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| invalid(format!("header line {:?} has no ':'", excerpt(text))))?;
        let name = line.start..line.start + colon;
        if name.is_empty() || block[name.clone()].iter().any(|&b| b <= b' ') {
            return Err(invalid(format!(
                "invalid header name in {:?}",
                excerpt(text)
            )));
        }
        let value = trim(block, line.start + colon + 1..line.end);
        // Names and values are kept as received, UTF-8 or not (see `HeaderValue`).
        out.headers.entries.push((
            HeaderValue::slice_of(block, name),
            HeaderValue::slice_of(block, value),
        ));
    }
    // The server always ends the block with an empty line; tolerate its absence only when
    // nothing follows (some peers omit the final CRLF of an empty block).
    if lines.pos < range.end {
        let reason = if ended {
            "bytes after the end of the header block"
        } else {
            "header block not terminated"
        };
        return Err(invalid(reason.into()));
    }
    Ok(out)
}

/// Inlined, so the string stays in registers on its way into the map (returned through memory,
/// it is reloaded with wide loads right after the narrow stores that wrote it, a store-forwarding
/// stall); the error is built out of line.
#[inline(always)]
fn utf8(bytes: Bytes, what: &'static str) -> Result<ByteString, ProtoError> {
    ByteString::try_from(bytes).map_err(|_| not_utf8(what))
}

#[cold]
fn not_utf8(what: &'static str) -> ProtoError {
    ProtoError::InvalidHeaders {
        reason: format!("{what} is not valid UTF-8"),
    }
}

fn trim(bytes: &[u8], mut r: std::ops::Range<usize>) -> std::ops::Range<usize> {
    while r.start < r.end && matches!(bytes[r.start], b' ' | b'\t') {
        r.start += 1;
    }
    while r.end > r.start && matches!(bytes[r.end - 1], b' ' | b'\t') {
        r.end -= 1;
    }
    r
}

/// Yields the byte ranges of CRLF- (or LF-) terminated lines, without their terminators.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = std::ops::Range<usize>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let (end, next) = match find_newline(&self.bytes[start..]) {
            Some(p) => (start + p, start + p + 1),
            None => (self.bytes.len(), self.bytes.len()),
        };
        self.pos = next;
        let end = if end > start && self.bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        Some(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<HeaderBlock, ProtoError> {
        parse_block(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn plain_block() {
        let b = parse("NATS/1.0\r\nA: 1\r\nb: two words \r\nA: 3\r\n\r\n").unwrap();
        assert_eq!(b.status, None);
        assert_eq!(b.headers.get_all("A").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(b.headers.get("b"), Some("two words"));
        assert_eq!(b.headers.get("B"), None);
        assert_eq!(b.headers.get_ignore_case("B"), Some("two words"));
    }

    #[test]
    fn status_lines() {
        let b = parse("NATS/1.0 503\r\n\r\n").unwrap();
        assert_eq!(b.status, Some(StatusCode::NO_RESPONDERS));
        assert_eq!(b.description, None);
        let b = parse("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n").unwrap();
        assert_eq!(b.status, Some(StatusCode::TIMEOUT));
        assert_eq!(b.description.as_deref(), Some("Request Timeout"));
        assert_eq!(b.headers.get("Nats-Pending-Messages"), Some("1"));
        for code in [100, 404, 409] {
            let b = parse(&format!("NATS/1.0 {code} x\r\n\r\n")).unwrap();
            assert_eq!(b.status.unwrap().as_u16(), code);
        }
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "HTTP/1.1\r\n\r\n",
            "NATS/1.0 5x3\r\n\r\n",
            "NATS/1.0 99\r\n\r\n",
            "NATS/1.0\r\nno colon\r\n\r\n",
            "NATS/1.0\r\n: empty\r\n\r\n",
            "NATS/1.0\r\nA: 1\r\n\r\ntrailing",
            "NATS/1.0X\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encode_roundtrip() {
        let mut h = HeaderMap::new();
        h.append("Nats-Msg-Id", "abc");
        h.append("X", "");
        h.append("X", "y z");
        h.validate().unwrap();
        let mut buf = BytesMut::new();
        h.encode(&mut buf);
        assert_eq!(buf.len(), h.encoded_len());
        let b = parse_block(&buf.freeze()).unwrap();
        assert_eq!(b.headers, h);
    }

    #[test]
    fn validation_blocks_injection() {
        let mut h = HeaderMap::new();
        h.insert("X", "a\r\nPUB evil 0\r\n");
        assert!(h.validate().is_err());
        let mut h = HeaderMap::new();
        h.insert("X Y", "a");
        assert!(h.validate().is_err());
        let mut h = HeaderMap::new();
        h.insert("X:Y", "a");
        assert!(h.validate().is_err());
    }
}
