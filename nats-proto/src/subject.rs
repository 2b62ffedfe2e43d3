//! Subject, filter and queue-group validation.
//!
//! Every subject we put on the wire passes through here first. A subject containing a space, a
//! tab, CR or LF would let a caller inject a second protocol op into the stream, so those are
//! rejected along with the other malformed shapes the server would refuse.

use crate::error::{ProtoError, excerpt};

/// Validates a subject to publish to (or a reply subject): tokens separated by `.`, none empty,
/// no whitespace or control characters, and no wildcards.
///
/// ```
/// use nats_proto::subject::validate_subject;
/// assert!(validate_subject("orders.eu.created").is_ok());
/// assert!(validate_subject("orders.*").is_err());
/// assert!(validate_subject("orders\r\nPUB x 1").is_err());
/// ```
pub fn validate_subject(subject: &str) -> Result<(), ProtoError> {
    check(subject, false).map_err(|reason| ProtoError::InvalidSubject {
        subject: excerpt(subject.as_bytes()),
        reason,
    })
}

/// Validates a subscription filter: like [`validate_subject`], but `*` may stand as a whole
/// token anywhere and `>` as the whole last token.
///
/// ```
/// use nats_proto::subject::validate_filter;
/// assert!(validate_filter("orders.*.created").is_ok());
/// assert!(validate_filter("orders.>").is_ok());
/// assert!(validate_filter("orders.>.x").is_err());
/// assert!(validate_filter("orders.eu*").is_err());
/// ```
pub fn validate_filter(filter: &str) -> Result<(), ProtoError> {
    check(filter, true).map_err(|reason| ProtoError::InvalidSubject {
        subject: excerpt(filter.as_bytes()),
        reason,
    })
}

/// Validates a queue group name: non-empty, no whitespace or control characters.
pub fn validate_queue_group(queue: &str) -> Result<(), ProtoError> {
    let reason = if queue.is_empty() {
        Some("empty")
    } else if queue.bytes().any(is_forbidden) {
        Some("contains whitespace or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ProtoError::InvalidQueueGroup {
            queue: excerpt(queue.as_bytes()),
            reason,
        }),
        None => Ok(()),
    }
}

/// Whether a subscription filter contains a wildcard token.
pub fn is_wildcard(filter: &str) -> bool {
    filter.split('.').any(|t| t == "*" || t == ">")
}

/// Whether a literal subject matches a subscription filter (`*` one token, `>` one or more).
///
/// ```
/// use nats_proto::subject::matches;
/// assert!(matches("a.*.c", "a.b.c"));
/// assert!(matches("a.>", "a.b.c"));
/// assert!(!matches("a.>", "a"));
/// ```
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(ft), Some(st)) if ft == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Byte classes for the one-pass check.
const PLAIN: u8 = 0;
const FORBIDDEN: u8 = 1;
const DOT: u8 = 2;
const WILDCARD: u8 = 3;

/// The class of every byte, so the common case (a plain subject) costs one table load and one
/// predictable branch per byte: subjects are checked on every publish.
static CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'.' => DOT,
            b'*' | b'>' => WILDCARD,
            x if is_forbidden(x) => FORBIDDEN,
            _ => PLAIN,
        };
        b += 1;
    }
    table
};

const fn is_forbidden(b: u8) -> bool {
    // Space, every C0 control (tab, CR, LF included) and DEL.
    b <= b' ' || b == 0x7f
}

/// One pass over the bytes; `wildcards` says whether `*`/`>` tokens are allowed. Subjects with
/// a `*` or `>` anywhere take the token-by-token check, which knows the wildcard rules.
fn check(s: &str, wildcards: bool) -> Result<(), &'static str> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err("empty");
    }
    if plain_words(bytes) {
        debug_assert_eq!(check_tokens(bytes, wildcards), Ok(()), "{s:?}");
        return Ok(());
    }
    let mut token_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match CLASS[usize::from(b)] {
            PLAIN => {}
            DOT => {
                if i == token_start {
                    return Err("empty token");
                }
                token_start = i + 1;
            }
            FORBIDDEN => return Err("contains whitespace or a control character"),
            _ => return check_tokens(bytes, wildcards),
        }
    }
    if token_start == bytes.len() {
        return Err("empty token");
    }
    Ok(())
}

/// Whether `bytes` (not empty) is a plain subject, eight bytes at a time: no whitespace,
/// control character, DEL or wildcard byte, no leading, trailing or doubled dot. `false` is no
/// verdict: the byte loop decides (and says why). Subjects are checked on every publish and
/// every ack, and an ack's `$JS.ACK...` subject is some 60 to 100 bytes long.
fn plain_words(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    /// Bit 7 of each byte set exactly where that byte of `v` is `b` (carry-free).
    fn equal(v: u64, b: u8) -> u64 {
        let x = v ^ (u64::from(b) * 0x0101_0101_0101_0101);
        !(((x & LOW7) + LOW7) | x) & HIGH
    }
    if bytes.first() == Some(&b'.') || bytes.last() == Some(&b'.') {
        return false;
    }
    // The previous word's last byte was a dot (its bit 7, moved to byte 0).
    let mut dot_before = 0u64;
    // One word; `valid` has bit 7 set for the bytes that belong to the subject (padding
    // zeros would read as control characters).
    let mut word_is_plain = |v: u64, valid: u64| {
        // Below 0x21 (space and the C0 controls): the low seven bits plus 0x5f stay below
        // 0x80, and bit 7 is clear (bytes from 0x80 on are UTF-8, plain).
        let low = !(((v & LOW7) + 0x5f5f_5f5f_5f5f_5f5f) | v);
        let bad = low | equal(v, 0x7f) | equal(v, b'*') | equal(v, b'>');
        let dots = equal(v, b'.') & valid;
        let doubled = dots & ((dots << 8) | dot_before);
        dot_before = dots >> 56;
        (bad & valid) | doubled == 0
    };
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if !word_is_plain(u64::from_le_bytes(word), HIGH) {
            return false;
        }
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return true;
    }
    let v = rest
        .iter()
        .rev()
        .fold(0u64, |w, &b| (w << 8) | u64::from(b));
    word_is_plain(v, HIGH >> (8 * (8 - rest.len())))
}

/// The full check, token by token, with the wildcard rules.
fn check_tokens(bytes: &[u8], wildcards: bool) -> Result<(), &'static str> {
    let mut token_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_forbidden(b) {
            return Err("contains whitespace or a control character");
        }
        if b == b'.' {
            check_token(&bytes[token_start..i], wildcards, false)?;
            token_start = i + 1;
        }
    }
    check_token(&bytes[token_start..], wildcards, true)
}

fn check_token(token: &[u8], wildcards: bool, last: bool) -> Result<(), &'static str> {
    match token {
        [] => Err("empty token"),
        [b'*'] if wildcards => Ok(()),
        [b'>'] if wildcards && last => Ok(()),
        [b'>'] if wildcards => Err("`>` is only allowed as the last token"),
        [b'*'] | [b'>'] => Err("wildcards are not allowed in a subject to publish to"),
        t if t.iter().any(|&b| b == b'*' || b == b'>') => {
            Err("`*` and `>` are only allowed as whole tokens")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_subjects() {
        for ok in ["a", "a.b", "_INBOX.abc.1", "$JS.API.INFO", "ünïcode.ok"] {
            assert!(validate_subject(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\r\nb", "a\nb", "a.*", "a.>", "a*",
            "a\u{7f}",
        ] {
            assert!(validate_subject(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters() {
        for ok in ["a", "*", ">", "a.*", "a.>", "*.b.>", "a.*.c"] {
            assert!(validate_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.>.b", ">.a", "a.b*", "a.>b", "a..*", "a *", "a.\r"] {
            assert!(validate_filter(bad).is_err(), "{bad:?}");
        }
    }

    /// The table-driven fast path gives exactly the answers of the token-by-token check.
    #[test]
    fn fast_path_matches_full_check() {
        let alphabet = [
            "a", ".", "*", ">", " ", "\t", "\r", "\n", "\u{7f}", "ü", "ab",
        ];
        let mut seed = 0x9e37_79b9_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 9) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((seed >> (4 * i + 8)) % alphabet.len() as u64) as usize])
                .collect();
            for wildcards in [false, true] {
                let full = if s.is_empty() {
                    Err("empty")
                } else {
                    check_tokens(s.as_bytes(), wildcards)
                };
                assert_eq!(check(&s, wildcards), full, "{s:?} wildcards={wildcards}");
            }
        }
    }

    /// The word-at-a-time pass answers `true` exactly for the plain subjects, whatever their
    /// length and wherever a dot or a bad byte falls against the word boundaries.
    #[test]
    fn plain_words_knows_plain_subjects() {
        let alphabet: [&[u8]; 12] = [
            b"a",
            b"a",
            b"a",
            b"ab",
            b".",
            b"*",
            b">",
            b" ",
            b"\t",
            b"\x7f",
            b"\xc3\xbc",
            b"\x00",
        ];
        let mut seed = 0x2545_f491_u64;
        for _ in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 1 + (seed % 40) as usize;
            let mut bytes = Vec::new();
            for i in 0..len {
                let r = seed.rotate_left(i as u32 * 7) ^ (i as u64).wrapping_mul(0x9e37_79b9);
                // Mostly plain, so that long plain subjects come up often.
                let pick = if r.is_multiple_of(4) {
                    r / 4 % 12
                } else {
                    r % 5
                };
                bytes.extend_from_slice(alphabet[pick as usize]);
            }
            let plain = check_tokens(&bytes, false).is_ok();
            assert_eq!(plain_words(&bytes), plain, "{bytes:?}");
        }
        let ack = b"$JS.ACK.ORDERS.worker.1.20.20.1764460800000000000.0";
        assert!(plain_words(ack));
    }

    #[test]
    fn queue_groups() {
        assert!(validate_queue_group("workers").is_ok());
        assert!(validate_queue_group("").is_err());
        assert!(validate_queue_group("a b").is_err());
        assert!(validate_queue_group("a\r\n").is_err());
    }

    #[test]
    fn matching() {
        assert!(matches("a", "a"));
        assert!(!matches("a", "a.b"));
        assert!(matches("*", "a"));
        assert!(!matches("*", "a.b"));
        assert!(matches(">", "a.b"));
        assert!(matches("a.*.>", "a.b.c.d"));
        assert!(!matches("a.*.>", "a.b"));
        assert!(is_wildcard("a.*"));
        assert!(!is_wildcard("a.b*"));
    }
}
