//! Proptest strategies shared by the property tests.

#![allow(dead_code)]

use proptest::prelude::*;

/// One subject token: the usual characters plus some non-ASCII.
pub fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_$\\-ü€]{1,8}"
}

/// A valid literal subject (also valid as a reply subject).
pub fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
}

/// Header names: visible ASCII without ':'.
pub fn header_name() -> impl Strategy<Value = String> {
    "[!-9;-~]{1,16}"
}

/// Header values as they survive the trip: no CR/LF, no surrounding spaces or tabs (the
/// receiver trims them, as nats.go does).
pub fn header_value() -> impl Strategy<Value = String> {
    "[^\r\n]{0,24}".prop_map(|v| v.trim_matches([' ', '\t']).to_string())
}

pub fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((header_name(), header_value()), 0..5)
}

pub fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

/// Chunk sizes for feeding a stream piecewise.
pub fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..16)
}

/// Splits `bytes` into pieces of the given sizes, cycled.
pub fn split<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}
