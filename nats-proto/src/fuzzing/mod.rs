//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by this crate's tests.
//!
//! Not part of the public API (hidden, behind the `arbitrary` feature). The logic lives here
//! rather than in `fuzz/` so that a plain `cargo test` replays every corpus file and every kept
//! crash input through exactly the code the fuzzer ran (`tests/fuzz_corpus.rs`), without
//! cargo-fuzz or a nightly compiler.
//!
//! - [`parse_server_ops`]: arbitrary bytes, parsed whole and in chunks; must never panic, both
//!   ways must agree, and the buffer must stay within the limits while the parser waits.
//! - [`roundtrip`]: structured values ([`RoundtripInput`]) encoded and read back; what the
//!   encoders accept must come back unchanged (modulo the documented normalisations).

mod client_reader;
mod input;

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;

use crate::error::ProtoError;
use crate::op::ServerOp;
use crate::parser::{Parser, ParserLimits};

pub use client_reader::{ClientFrame, read_client_op};
pub use input::{FuzzClientOp, FuzzHeaders, FuzzInfo, FuzzMsg, FuzzServerOp, RoundtripInput};

/// What parsing a byte stream produced: the ops up to the first error, and that error.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Ops parsed before the stream ended or failed.
    pub ops: Vec<ServerOp>,
    /// The first error, if any.
    pub error: Option<ProtoError>,
    /// Bytes still buffered when the stream ended without error.
    pub leftover: usize,
}

/// Parses `stream` fed in chunks of the sizes `chunks` yields (each at least 1), checking the
/// parser's invariants after every call. Stops at the first error.
pub fn parse_chunked(
    stream: &[u8],
    limits: ParserLimits,
    mut chunks: impl Iterator<Item = usize>,
) -> Outcome {
    let mut parser = Parser::with_limits(limits);
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    let mut rest = stream;
    loop {
        let n = chunks
            .next()
            .unwrap_or(rest.len())
            .clamp(1, rest.len().max(1));
        let n = n.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(op)) => {
                    let sizes = match &op {
                        ServerOp::Msg(m) => Some((m.payload.len(), m.size)),
                        ServerOp::BadMsg(b) => Some((b.payload.len(), b.size)),
                        _ => None,
                    };
                    if let Some((payload, size)) = sizes {
                        assert!(payload <= size, "payload longer than size");
                        assert!(size <= limits.max_payload, "size over the limit");
                    }
                    ops.push(op);
                }
                Ok(None) => {
                    check_waiting(&parser, &buf, limits);
                    break;
                }
                Err(error) => {
                    assert_eq!(parser.parse(&mut buf), Err(ProtoError::Poisoned));
                    return Outcome {
                        ops,
                        error: Some(error),
                        leftover: buf.len(),
                    };
                }
            }
        }
        if rest.is_empty() {
            let consumed = stream.len() - buf.len();
            assert_eq!(parser.offset(), consumed as u64, "offset out of step");
            return Outcome {
                ops,
                error: None,
                leftover: buf.len(),
            };
        }
    }
}

/// While the parser waits for more bytes, the buffer must stay bounded: by the control-line
/// limit while a control line is incomplete, by the announced frame otherwise.
fn check_waiting(parser: &Parser, buf: &BytesMut, limits: ParserLimits) {
    match parser.bytes_needed() {
        None => assert!(
            buf.len() <= limits.max_control_line,
            "{} bytes buffered without a complete control line (limit {})",
            buf.len(),
            limits.max_control_line
        ),
        Some(needed) => {
            assert!(buf.len() < needed, "a complete frame was left unparsed");
            assert!(
                needed <= limits.max_control_line + limits.max_payload + 2,
                "pending frame of {needed} bytes exceeds the limits"
            );
        }
    }
}

/// Errors compared between two runs: how long the buffered part of an overlong line was
/// depends on how the bytes arrived, nothing else may.
fn comparable(e: Option<ProtoError>) -> Option<ProtoError> {
    match e {
        Some(ProtoError::ControlLineTooLong { limit, offset, .. }) => {
            Some(ProtoError::ControlLineTooLong {
                len: 0,
                limit,
                offset,
            })
        }
        other => other,
    }
}

/// Fuzz target `parse_server_ops`: the first two bytes choose the limits and the chunking, the
/// rest is the stream. Parsed whole and chunked, the results must be the same.
pub fn parse_server_ops(data: &[u8]) {
    let [a, b, stream @ ..] = data else {
        return;
    };
    let limits = if a & 1 == 1 {
        // Small limits reach the limit paths with short inputs.
        ParserLimits {
            max_control_line: 16 + usize::from(*b),
            max_payload: usize::from(*b) * 4,
        }
    } else {
        ParserLimits::default()
    };
    let max_chunk = [1usize, 3, 16, 512][usize::from((a >> 1) & 3)];
    let mut state = u32::from(*a) << 8 | u32::from(*b) | 1;
    let chunks = std::iter::from_fn(move || {
        // xorshift32: cheap, deterministic chunk sizes derived from the input.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Some(1 + state as usize % max_chunk)
    });
    check_client_frames(stream);
    let whole = parse_chunked(stream, limits, std::iter::once(stream.len()));
    let chunked = parse_chunked(stream, limits, chunks);
    assert_eq!(whole.ops, chunked.ops, "chunking changed the ops");
    assert_eq!(
        comparable(whole.error),
        comparable(chunked.error),
        "chunking changed the error"
    );
}

/// The client-op boundary functions on arbitrary bytes: no panic, and every answer lies
/// where it must (a start at or before the position, an end after it).
fn check_client_frames(stream: &[u8]) {
    let step = (stream.len() / 64).max(1);
    for pos in (0..=stream.len()).step_by(step) {
        let start = crate::client_frame::frame_start_at(stream, pos);
        assert!(start <= pos, "start {start} after {pos}");
        if let Some(end) = crate::client_frame::cut_frame_end(stream, pos) {
            assert!(
                start < pos && pos < end,
                "cut {start}..{end} does not hold {pos}"
            );
        }
    }
}

/// Fuzz target `roundtrip`, from raw bytes (what the corpus files hold): decodes a
/// [`RoundtripInput`] exactly as libFuzzer's typed targets do, then checks it.
pub fn roundtrip(data: &[u8]) {
    if let Ok(input) = RoundtripInput::arbitrary_take_rest(Unstructured::new(data)) {
        check_roundtrip(&input);
    }
}

/// Checks one structured input: server ops through `encode_server_op` and the parser (whole
/// and chunked), client ops through the [`Encoder`](crate::Encoder) and [`read_client_op`].
pub fn check_roundtrip(input: &RoundtripInput) {
    input::check_server_ops(input);
    input::check_client_ops(input);
}
