//! Control-line helpers for the parser: op recognition, argument splitting, numbers.
//!
//! Byte-level and hot: `simple_msg` and `split_args` run once per MSG.

use super::MsgLine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Msg,
    Hmsg,
    Ping,
    Pong,
    Ok,
    Err,
    Info,
}

pub(super) fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Recognises the op word case-insensitively. An op with arguments must be followed by a
/// separator; one without may be followed by nothing else but separators.
pub(super) fn op_of(line: &[u8]) -> Option<Op> {
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
pub(super) fn err_text(rest: &[u8]) -> String {
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
/// This is the hottest loop of MSG parsing. Lines of up to 127 bytes after the op word (nearly
/// all MSG lines, JetStream's with their long `$JS.ACK...` reply subjects included) are
/// classified eight bytes at a time into one bitmask of separators, and the tokens are read
/// off the mask's edges; longer lines take the plain byte loop.
pub(super) fn split_args(
    line: &[u8],
    from: usize,
    starts_out: &mut [usize],
    ends_out: &mut [usize],
) -> usize {
    match line.len() - from {
        // One word of mask for the short lines, so they pay nothing for the long ones.
        0..64 => split_args_64(line, from, starts_out, ends_out),
        64..MASK_BITS => split_args_128(line, from, starts_out, ends_out),
        _ => split_args_bytewise(line, from, starts_out, ends_out),
    }
}

/// [`split_args`] with a bitmask of type `$mask`, for argument text shorter than its bits.
macro_rules! split_args_masked {
    ($name:ident, $mask:ty) => {
        #[inline(always)]
        fn $name(
            line: &[u8],
            from: usize,
            starts_out: &mut [usize],
            ends_out: &mut [usize],
        ) -> usize {
            let args = &line[from..];
            // Bit i set when args[i] is a space or tab; past the end counts as a separator,
            // so the last token ends.
            let mut seps = <$mask>::MAX << args.len();
            let mut pos = from;
            while pos < line.len() {
                seps |= <$mask>::from(separator_bits(load_word(line, pos))) << (pos - from);
                pos += 8;
            }
            // The op word is followed by a separator, so "the byte before" bit 0 is one.
            let before = (seps << 1) | 1;
            let mut starts = !seps & before;
            let mut ends = seps & !before;
            let mut n = 0;
            while starts != 0 {
                let start = starts.trailing_zeros() as usize;
                // Every token ends: the top bit is padding, since args are shorter.
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
    };
}

split_args_masked!(split_args_64, u64);
split_args_masked!(split_args_128, u128);

/// The longest argument text (after the op word) the bitmask paths take, plus one.
const MASK_BITS: usize = 128;

/// The eight bytes of `bytes` from `pos` as a little-endian word, zero past the end.
#[inline]
fn load_word(bytes: &[u8], pos: usize) -> u64 {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let rest = bytes.len() - pos;
    if rest >= 8 {
        word(pos)
    } else if bytes.len() >= 8 {
        // The last eight bytes, shifted so that `pos` comes first: one load instead of a copy
        // loop (which would become a `memcpy` call).
        word(bytes.len() - 8) >> (8 * (8 - rest))
    } else {
        bytes[pos..]
            .iter()
            .rev()
            .fold(0, |w, &b| (w << 8) | u64::from(b))
    }
}

/// Position of the first `\n` in `bytes`. Control lines are short, and for a few dozen bytes
/// eight-at-a-time words in registers beat `memchr`'s dispatch to its vector routines; past
/// the first 64 bytes (long INFO lines, payloads still arriving) it hands over to `memchr`.
#[inline(always)]
pub(crate) fn find_newline(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while pos + 8 <= bytes.len() && pos < 64 {
        let found = matching_bytes(load_word(bytes, pos), 0x0a0a_0a0a_0a0a_0a0a);
        if found != 0 {
            return Some(pos + (found.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    memchr::memchr(b'\n', &bytes[pos..]).map(|i| pos + i)
}

/// Bit 7 of each byte set exactly where that byte of `v` equals the byte repeated in `pattern`
/// (the carry-free form: no false positives next to a real match, unlike the classic
/// `(x - 0x01..) & !x & 0x80..`).
#[inline]
fn matching_bytes(v: u64, pattern: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = v ^ pattern;
    !(((x & LOW7) + LOW7) | x) & 0x8080_8080_8080_8080
}

/// Gathers bit 7 of byte i into bit i (the products land on distinct bits, so no carries).
#[inline]
fn gather_high_bits(high: u64) -> u64 {
    (high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// One bit per byte of `v`, set for a space or a tab.
#[inline]
fn separator_bits(v: u64) -> u64 {
    gather_high_bits(
        matching_bytes(v, 0x2020_2020_2020_2020) | matching_bytes(v, 0x0909_0909_0909_0909),
    )
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
#[inline]
pub(super) fn parse_decimal(digits: &[u8]) -> Option<u64> {
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

/// The common MSG control line in one cheap pass: `MSG <subject> <sid> [reply] <size>`, upper
/// case, single spaces, as servers write it. `None` for anything else, and then the general
/// path decides (and reports errors); where this returns a value, it is the one the general
/// path gives (checked by a debug assertion on every call in debug builds and under fuzzing).
#[inline(always)]
pub(super) fn simple_msg(line: &[u8], line_len: usize) -> Option<MsgLine> {
    let args = line.strip_prefix(b"MSG ")?;
    let (spaces, n) = single_spaces::<3>(args)?;
    let token = |start: usize, end: usize| (start < end).then_some(4 + start..4 + end);
    let subject = token(0, spaces[0])?;
    let sid = token(spaces[0] + 1, spaces[1])?;
    let (reply, size) = match n {
        2 => (None, token(spaces[1] + 1, args.len())?),
        3 => (
            Some(token(spaces[1] + 1, spaces[2])?),
            token(spaces[2] + 1, args.len())?,
        ),
        _ => return None,
    };
    let reply = reply.unwrap_or(0..0);
    Some(MsgLine {
        line_len,
        subject_start: subject.start,
        subject_end: subject.end,
        sid: parse_decimal(&line[sid])?,
        reply_start: reply.start,
        reply_end: reply.end,
        header_len: None,
        total_len: usize::try_from(parse_decimal(&line[size])?).ok()?,
    })
}

/// [`simple_msg`] for `HMSG <subject> <sid> [reply] <header size> <total size>`, under the same
/// contract: `None` for anything unusual (including a header size above the total, which the
/// general path reports).
pub(super) fn simple_hmsg(line: &[u8], line_len: usize) -> Option<MsgLine> {
    let args = line.strip_prefix(b"HMSG ")?;
    let (spaces, n) = single_spaces::<4>(args)?;
    let token = |start: usize, end: usize| (start < end).then_some(5 + start..5 + end);
    let subject = token(0, spaces[0])?;
    let sid = token(spaces[0] + 1, spaces[1])?;
    let (reply, rest) = match n {
        3 => (None, 1),
        4 => (Some(token(spaces[1] + 1, spaces[2])?), 2),
        _ => return None,
    };
    let header = token(spaces[rest] + 1, spaces[rest + 1])?;
    let total = token(spaces[rest + 1] + 1, args.len())?;
    let header_len = usize::try_from(parse_decimal(&line[header])?).ok()?;
    let total_len = usize::try_from(parse_decimal(&line[total])?).ok()?;
    if header_len > total_len {
        return None;
    }
    let reply = reply.unwrap_or(0..0);
    Some(MsgLine {
        line_len,
        subject_start: subject.start,
        subject_end: subject.end,
        sid: parse_decimal(&line[sid])?,
        reply_start: reply.start,
        reply_end: reply.end,
        header_len: Some(header_len),
        total_len,
    })
}

/// The positions of the spaces in `args` and their count, for the fast paths: `None` when
/// `args` is 128 bytes or longer, holds a tab, or has more than `N` spaces. Whether tokens are
/// empty (double, leading or trailing spaces) is the caller's check.
#[inline(always)]
fn single_spaces<const N: usize>(args: &[u8]) -> Option<([usize; N], usize)> {
    match args.len() {
        0..64 => single_spaces_64(args),
        64..MASK_BITS => single_spaces_128(args),
        _ => None,
    }
}

/// [`single_spaces`] with a bitmask of type `$mask`, for `args` shorter than its bits.
macro_rules! single_spaces_masked {
    ($name:ident, $mask:ty) => {
        #[inline(always)]
        fn $name<const N: usize>(args: &[u8]) -> Option<([usize; N], usize)> {
            // Bit i set where args[i] is a space, eight bytes at a time; any tab: general
            // path.
            let mut mask: $mask = 0;
            let mut pos = 0;
            while pos < args.len() {
                let v = load_word(args, pos);
                if matching_bytes(v, 0x0909_0909_0909_0909) != 0 {
                    return None;
                }
                let spaces = gather_high_bits(matching_bytes(v, 0x2020_2020_2020_2020));
                mask |= <$mask>::from(spaces) << pos;
                pos += 8;
            }
            // Padding past the end of `args` is zero bytes, which match neither pattern.
            let mut spaces = [0usize; N];
            let mut n = 0;
            while mask != 0 {
                if n == N {
                    return None;
                }
                spaces[n] = mask.trailing_zeros() as usize;
                n += 1;
                mask &= mask - 1;
            }
            Some((spaces, n))
        }
    };
}

single_spaces_masked!(single_spaces_64, u64);
single_spaces_masked!(single_spaces_128, u128);
