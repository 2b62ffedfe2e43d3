//! [`HeaderValue`]: a header name or value held losslessly.

use bytes::Bytes;
use bytestring::ByteString;

/// A header name or value as received: its bytes, losslessly, with a `&str` view when they
/// are UTF-8 (nats.go and the server pass any bytes but CR and LF through, so a peer may send
/// values this client cannot show as text; they are kept, not refused).
///
/// ```
/// use nats_proto::HeaderValue;
/// let text = HeaderValue::from("eu-west");
/// assert_eq!(text.as_str(), Some("eu-west"));
/// let raw = HeaderValue::from_bytes(&b"caf\xe9"[..]);
/// assert_eq!((raw.as_str(), raw.as_bytes()), (None, &b"caf\xe9"[..]));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeaderValue(Repr);

/// Which form a [`HeaderValue`] holds: `Text` exactly when the bytes are UTF-8, so equal bytes
/// are always equal values.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Text(ByteString),
    Bytes(Bytes),
}

impl HeaderValue {
    /// A value from any bytes (zero-copy; checked once for UTF-8).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> HeaderValue {
        let bytes: Bytes = bytes.into();
        // Checked before the conversion, which would consume the bytes when they are not text
        // (and cloning them to keep a copy costs two atomic operations per header).
        if !bytes.is_ascii() && std::str::from_utf8(&bytes).is_err() {
            return HeaderValue(Repr::Bytes(bytes));
        }
        match ByteString::try_from(bytes) {
            Ok(text) => HeaderValue(Repr::Text(text)),
            // Cannot happen: the bytes were just found to be UTF-8.
            Err(_) => HeaderValue(Repr::Bytes(Bytes::new())),
        }
    }

    /// `bytes[range]`, zero-copy. The parser's path: one UTF-8 check, and only bytes that are
    /// not text are sliced a second time.
    #[inline(always)]
    pub(super) fn slice_of(bytes: &Bytes, range: std::ops::Range<usize>) -> HeaderValue {
        match ByteString::try_from(bytes.slice(range.clone())) {
            Ok(text) => HeaderValue(Repr::Text(text)),
            Err(_) => HeaderValue(Repr::Bytes(bytes.slice(range))),
        }
    }

    /// The value as text, when it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Text(t) => Some(t),
            Repr::Bytes(_) => None,
        }
    }

    /// The value's bytes, exactly as received.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Text(t) => t.as_bytes(),
            Repr::Bytes(b) => b,
        }
    }

    /// The value's bytes as a cheap (reference-counted) `Bytes`.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Text(t) => t.as_bytes().clone(),
            Repr::Bytes(b) => b.clone(),
        }
    }

    /// Whether the value is UTF-8 (then [`HeaderValue::as_str`] is `Some`).
    pub fn is_utf8(&self) -> bool {
        matches!(self.0, Repr::Text(_))
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl std::fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Text(t) => std::fmt::Debug::fmt(&**t, f),
            Repr::Bytes(b) => std::fmt::Debug::fmt(b, f),
        }
    }
}

/// Text as is; bytes that are not UTF-8 with replacement characters.
impl std::fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Text(t) => f.write_str(t),
            Repr::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
        }
    }
}

impl From<ByteString> for HeaderValue {
    fn from(text: ByteString) -> Self {
        HeaderValue(Repr::Text(text))
    }
}

impl From<&str> for HeaderValue {
    fn from(text: &str) -> Self {
        HeaderValue(Repr::Text(ByteString::from(text)))
    }
}

impl From<String> for HeaderValue {
    fn from(text: String) -> Self {
        HeaderValue(Repr::Text(ByteString::from(text)))
    }
}

impl From<&String> for HeaderValue {
    fn from(text: &String) -> Self {
        HeaderValue::from(text.as_str())
    }
}

impl From<&HeaderValue> for HeaderValue {
    fn from(value: &HeaderValue) -> Self {
        value.clone()
    }
}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
