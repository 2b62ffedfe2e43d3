//! Property: no input makes the parser panic, and while it waits for more bytes the buffer
//! never grows past the control-line limit (or, inside a message, past the frame it announced).

mod common;

use bytes::BytesMut;
use common::*;
use nats_proto::{Parser, ParserLimits, ProtoError, ServerOp, fuzzing};
use proptest::prelude::*;

/// Bytes built from protocol fragments, so that the deep paths (arguments, sizes, header
/// blocks) are reached far more often than by uniform random bytes.
fn protocol_soup() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just(&b"MSG "[..]),
        Just(&b"HMSG "[..]),
        Just(&b"msg\t"[..]),
        Just(&b"PING"[..]),
        Just(&b"PONG"[..]),
        Just(&b"+OK"[..]),
        Just(&b"-ERR '"[..]),
        Just(&b"INFO {}"[..]),
        Just(&b" "[..]),
        Just(&b"\t"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"a.b"[..]),
        Just(&b"1"[..]),
        Just(&b"0"[..]),
        Just(&b"12"[..]),
        Just(&b"99999999999999999999"[..]),
        Just(&b"NATS/1.0"[..]),
        Just(&b" 503"[..]),
        Just(&b"K: v"[..]),
        Just(&b":"[..]),
        Just(&b"\xff"[..]),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|f| f.concat())
}

fn limits() -> impl Strategy<Value = ParserLimits> {
    prop_oneof![
        Just(ParserLimits::default()),
        (1usize..64, 0usize..64).prop_map(|(max_control_line, max_payload)| ParserLimits {
            max_control_line,
            max_payload,
        }),
    ]
}

/// Feeds `pieces`, checking the bound after every `Ok(None)`; returns the ops and whether the
/// parser failed.
fn feed(pieces: &[&[u8]], limits: ParserLimits) -> (Vec<ServerOp>, Option<ProtoError>) {
    let mut parser = Parser::with_limits(limits);
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => {
                    match parser.bytes_needed() {
                        None => assert!(buf.len() <= limits.max_control_line),
                        Some(n) => {
                            assert!(buf.len() < n);
                            assert!(n <= limits.max_control_line + limits.max_payload + 2);
                        }
                    }
                    break;
                }
                Err(e) => {
                    assert_eq!(parser.parse(&mut buf), Err(ProtoError::Poisoned));
                    return (ops, Some(e));
                }
            }
        }
    }
    (ops, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), limits in limits(), sizes in chunks()) {
        feed(&split(&bytes, &sizes), limits);
    }

    #[test]
    fn garbage_after_valid_frames(garbage in prop::collection::vec(any::<u8>(), 0..256), sizes in chunks()) {
        let valid = b"INFO {\"server_id\":\"S\"}\r\nMSG a.b 1 3\r\nabc\r\nHMSG c 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n";
        let input = [&valid[..], &garbage].concat();
        let (ops, _) = feed(&split(&input, &sizes), ParserLimits::default());
        // Whatever follows, the valid frames come out first and intact.
        prop_assert!(ops.len() >= 4);
        let (reference, error) = feed(&[valid], ParserLimits::default());
        prop_assert!(error.is_none());
        prop_assert_eq!(&ops[..4], &reference[..]);
    }
}

proptest! {
    // Each case runs the input twice (whole and in small chunks): fewer cases.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn protocol_soup_whole_and_chunked_agree(bytes in protocol_soup(), control in any::<[u8; 2]>()) {
        // The fuzz target: whole vs chunked, bounds, poisoning.
        fuzzing::parse_server_ops(&[&control[..], &bytes].concat());
    }
}
