//! Content errors: a well-framed MSG/HMSG whose subject, reply or header block cannot be read
//! is a `ServerOp::BadMsg` (frame consumed, stream in step), never a parse error; header
//! values and names that are not UTF-8 are kept as bytes.

use super::*;
use crate::{HeaderValue, encode_server_op};

/// Parses `input` whole and split at every byte; both must agree and neither may fail.
fn parse_everywhere(input: &[u8]) -> Vec<ServerOp> {
    let mut p = Parser::new();
    let mut buf = BytesMut::from(input);
    let mut whole = Vec::new();
    while let Some(op) = p
        .parse(&mut buf)
        .expect("content errors are not parse errors")
    {
        whole.push(op);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    for cut in 0..=input.len() {
        let mut p = Parser::new();
        let mut buf = BytesMut::from(&input[..cut]);
        let mut out = Vec::new();
        while let Some(op) = p.parse(&mut buf).unwrap() {
            out.push(op);
        }
        buf.extend_from_slice(&input[cut..]);
        while let Some(op) = p.parse(&mut buf).unwrap() {
            out.push(op);
        }
        assert_eq!(out, whole, "split at {cut}");
    }
    whole
}

fn bad(op: &ServerOp) -> &BadMsg {
    match op {
        ServerOp::BadMsg(b) => b,
        other => panic!("expected a BadMsg, got {other:?}"),
    }
}

/// An HMSG frame for sid 7 with the lengths computed.
fn hmsg(subject: &[u8], block: &[u8], payload: &[u8]) -> Vec<u8> {
    let lens = format!(" 7 {} {}\r\n", block.len(), block.len() + payload.len());
    [b"HMSG ", subject, lens.as_bytes(), block, payload, b"\r\n"].concat()
}

/// Each bad frame is followed by a PING and a good MSG: both must come through.
#[test]
fn a_bad_message_costs_only_itself() {
    let cases: [(Vec<u8>, &str); 6] = [
        (b"MSG \xffa 7 2\r\nhi\r\n".to_vec(), "subject"),
        (b"MSG a 7 r\xfe 2\r\nhi\r\n".to_vec(), "reply subject"),
        (hmsg(b"\xff", b"NATS/1.0\r\n\r\n", b"hi"), "subject"),
        (hmsg(b"a", b"XXXX\r\n", b"hi"), "header block"),
        (
            hmsg(b"a", b"NATS/1.0\r\nno colon\r\n\r\n", b"hi"),
            "header block",
        ),
        (
            hmsg(b"a", b"NATS/1.0 503 \xff\r\n\r\n", b"hi"),
            "header block",
        ),
    ];
    for (frame, what) in cases {
        let input = [&frame[..], b"PING\r\nMSG ok 8 3\r\nyes\r\n"].concat();
        let ops = parse_everywhere(&input);
        assert_eq!(ops.len(), 3, "{what}: {ops:?}");
        let b = bad(&ops[0]);
        let line_len = frame.iter().position(|&c| c == b'\n').unwrap() + 1;
        assert_eq!(
            (b.sid, &b.payload[..], b.size),
            (7, &b"hi"[..], frame.len() - line_len - 2),
            "{what}"
        );
        match what {
            "header block" => {
                assert!(
                    matches!(b.error, ProtoError::InvalidHeaders { .. }),
                    "{b:?}"
                );
            }
            field => {
                assert!(
                    matches!(b.error, ProtoError::InvalidUtf8 { field: f, offset: 0 } if f == field),
                    "{b:?}"
                );
            }
        }
        assert_eq!(ops[1], ServerOp::Ping);
        let ServerOp::Msg(m) = &ops[2] else {
            panic!("{ops:?}")
        };
        assert_eq!((&*m.subject, m.sid, &m.payload[..]), ("ok", 8, &b"yes"[..]));
    }
}

#[test]
fn the_raw_parts_are_kept() {
    let frame = b"HMSG s\xff 7 r.1 12 17\r\nNATS/1.0\r\n\r\nhello\r\n";
    let ops = parse_everywhere(frame);
    let b = bad(&ops[0]);
    assert_eq!(&b.subject[..], b"s\xff");
    assert_eq!(b.reply.as_deref(), Some(&b"r.1"[..]));
    assert_eq!(b.headers.as_deref(), Some(&b"NATS/1.0\r\n\r\n"[..]));
    assert_eq!((&b.payload[..], b.size), (&b"hello"[..], 17));
    // Written back, it is the same frame.
    let mut out = BytesMut::new();
    encode_server_op(&mut out, &ops[0]);
    assert_eq!(&out[..], &frame[..]);
    let mut out = BytesMut::new();
    let plain = parse_everywhere(b"MSG \xfe 4 1\r\nx\r\n");
    encode_server_op(&mut out, &plain[0]);
    assert_eq!(&out[..], b"MSG \xfe 4 1\r\nx\r\n");
}

#[test]
fn header_values_that_are_not_utf8_are_kept_as_bytes() {
    let block = b"NATS/1.0\r\nX-Raw: caf\xe9\r\nX-Text: ok\r\nN\xffme: v\r\n\r\n";
    let line = format!("HMSG a 1 {} {}\r\n", block.len(), block.len() + 2);
    let input = [line.as_bytes(), block, b"hi\r\n"].concat();
    let ops = parse_everywhere(&input);
    let ServerOp::Msg(m) = &ops[0] else {
        panic!("{ops:?}")
    };
    let h = m.headers.as_ref().unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(
        h.get("X-Raw"),
        None,
        "no text view of bytes that are not text"
    );
    assert!(h.contains("X-Raw"));
    let raw = h.get_value("X-Raw").unwrap();
    assert_eq!((raw.as_bytes(), raw.is_utf8()), (&b"caf\xe9"[..], false));
    assert_eq!(h.get("X-Text"), Some("ok"));
    assert_eq!(h.iter().collect::<Vec<_>>(), [("X-Text", "ok")]);
    let names: Vec<&[u8]> = h.entries().map(|(n, _)| n.as_bytes()).collect();
    assert_eq!(names, [&b"X-Raw"[..], b"X-Text", b"N\xffme"]);
    assert!(!h.is_utf8());
    // Encoded again, the bytes go out unchanged.
    let mut out = BytesMut::new();
    h.encode(&mut out);
    assert_eq!(&out[..], &block[..]);
    assert_eq!(HeaderValue::from_bytes(&b"caf\xe9"[..]), *raw);
}
