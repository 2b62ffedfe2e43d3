use super::*;
use crate::{HeaderMap, StatusCode, encode_server_op};
use bytes::Bytes;
use std::ops::Range;

fn parse_all(input: &[u8]) -> Result<Vec<ServerOp>, ProtoError> {
    let mut p = Parser::new();
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(op) = p.parse(&mut buf)? {
        out.push(op);
    }
    assert!(buf.is_empty(), "left over: {:?}", buf);
    Ok(out)
}

/// Feeds `input` one split at a time: every prefix boundary must give the same ops.
fn parse_split_everywhere(input: &[u8]) -> Vec<ServerOp> {
    let whole = parse_all(input).unwrap();
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

fn msg(op: &ServerOp) -> &Msg {
    match op {
        ServerOp::Msg(m) => m,
        other => panic!("expected MSG, got {other:?}"),
    }
}

#[test]
fn simple_ops_any_case() {
    let ops = parse_split_everywhere(
        b"PING\r\npong\r\n+ok\r\n-ERR 'Unknown Protocol Operation'\r\nPiNg\r\n",
    );
    assert_eq!(
        ops,
        [
            ServerOp::Ping,
            ServerOp::Pong,
            ServerOp::Ok,
            ServerOp::Err("Unknown Protocol Operation".into()),
            ServerOp::Ping
        ]
    );
}

#[test]
fn info() {
    let ops = parse_split_everywhere(
        b"INFO {\"server_id\":\"NABC\",\"max_payload\":1048576,\"headers\":true,\"x\":1}\r\n",
    );
    let ServerOp::Info(info) = &ops[0] else {
        panic!()
    };
    assert_eq!(info.server_id, "NABC");
    assert_eq!(info.max_payload, 1048576);
    assert!(info.headers);
    assert!(matches!(
        parse_all(b"INFO {not json\r\n"),
        Err(ProtoError::InvalidInfo { .. })
    ));
}

#[test]
fn msg_with_and_without_reply_tabs_and_case() {
    let ops = parse_split_everywhere(
        b"MSG a.b 1 5\r\nhello\r\nmsg\ta.b\t\t2  reply.to 0\r\n\r\nMsG x 3 2\r\n\r\n\r\n",
    );
    let m = msg(&ops[0]);
    assert_eq!(
        (&*m.subject, m.sid, m.reply.as_deref(), &m.payload[..]),
        ("a.b", 1, None, &b"hello"[..])
    );
    assert_eq!(m.size, 5);
    let m = msg(&ops[1]);
    assert_eq!(
        (m.sid, m.reply.as_deref(), m.payload.len()),
        (2, Some("reply.to"), 0)
    );
    let m = msg(&ops[2]);
    assert_eq!(&m.payload[..], b"\r\n");
}

#[test]
fn hmsg_headers_and_status() {
    let hdr = "NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n";
    let frame = format!(
        "HMSG s 4 r {} {}\r\n{hdr}body\r\n",
        hdr.len(),
        hdr.len() + 4
    );
    let ops = parse_split_everywhere(frame.as_bytes());
    let m = msg(&ops[0]);
    let h = m.headers.as_ref().unwrap();
    assert_eq!((h.get("A"), h.get("B")), (Some("1"), Some("2")));
    assert_eq!(&m.payload[..], b"body");
    assert_eq!(m.reply.as_deref(), Some("r"));
    assert_eq!(m.status, None);

    let hdr = "NATS/1.0 503\r\n\r\n";
    let frame = format!("HMSG _INBOX.x.1 1 {} {}\r\n{hdr}\r\n", hdr.len(), hdr.len());
    let m = msg(&parse_split_everywhere(frame.as_bytes())[0]).clone();
    assert_eq!(m.status, Some(StatusCode::NO_RESPONDERS));
    assert!(m.headers.unwrap().is_empty());
    assert!(m.payload.is_empty());
}

#[test]
fn payload_is_zero_copy() {
    let mut p = Parser::new();
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"MSG a 1 3\r\nabc\r\n");
    let base = buf.as_ptr() as usize;
    let Some(ServerOp::Msg(m)) = p.parse(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(m.payload.as_ptr() as usize, base + 11);
}

#[test]
fn errors() {
    type Check = fn(&ProtoError) -> bool;
    let cases: &[(&[u8], Check)] = &[
        (
            b"FOO bar\r\n",
            |e| matches!(e, ProtoError::UnknownOp { op, .. } if op == "FOO"),
        ),
        (b"PINGX\r\n", |e| matches!(e, ProtoError::UnknownOp { .. })),
        (b"\r\n", |e| matches!(e, ProtoError::UnknownOp { .. })),
        (b"MSG a 1\r\n", |e| {
            matches!(e, ProtoError::ArgumentCount { got: 2, .. })
        }),
        (b"MSG a 1 b c 3\r\n", |e| {
            matches!(e, ProtoError::ArgumentCount { got: 5, .. })
        }),
        (b"HMSG a 1 3\r\n", |e| {
            matches!(e, ProtoError::ArgumentCount { op: "HMSG", .. })
        }),
        (b"MSG a x 3\r\n", |e| {
            matches!(e, ProtoError::InvalidNumber { field: "sid", .. })
        }),
        (b"MSG a 1 -3\r\n", |e| {
            matches!(e, ProtoError::InvalidNumber { field: "size", .. })
        }),
        (b"MSG a 1 99999999999999999999999\r\n", |e| {
            matches!(e, ProtoError::InvalidNumber { .. })
        }),
        (b"MSG a 1 18446744073709551615\r\n", |e| {
            matches!(e, ProtoError::PayloadTooLarge { .. })
        }),
        (b"HMSG a 1 5 3\r\n", |e| {
            matches!(
                e,
                ProtoError::HeaderLengthExceedsTotal {
                    header_len: 5,
                    total_len: 3,
                    ..
                }
            )
        }),
        (b"MSG a 1 3\r\nabcXY", |e| {
            matches!(e, ProtoError::MissingPayloadTerminator { .. })
        }),
    ];
    for (input, check) in cases {
        let err = parse_all(input).unwrap_err();
        assert!(
            check(&err),
            "{:?} gave {err:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn error_offsets_point_at_the_frame() {
    let err = parse_all(b"PING\r\nBAD\r\n").unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnknownOp {
            op: "BAD".into(),
            offset: 6
        }
    );
}

#[test]
fn poisoned_after_error() {
    let mut p = Parser::new();
    let mut buf = BytesMut::from(&b"BAD\r\nPING\r\n"[..]);
    assert!(p.parse(&mut buf).is_err());
    assert_eq!(p.parse(&mut buf), Err(ProtoError::Poisoned));
}

#[test]
fn control_line_limit_bounds_the_buffer() {
    let mut p = Parser::with_limits(ParserLimits {
        max_control_line: 16,
        max_payload: 8,
    });
    let mut buf = BytesMut::from(&b"MSG aaaaaaaaaaa"[..]);
    assert_eq!(p.parse(&mut buf), Ok(None));
    buf.extend_from_slice(b"aaaa");
    assert!(matches!(
        p.parse(&mut buf),
        Err(ProtoError::ControlLineTooLong { limit: 16, .. })
    ));

    let mut p = Parser::with_limits(ParserLimits {
        max_control_line: 16,
        max_payload: 8,
    });
    let mut buf = BytesMut::from(&b"MSG a 1 9\r\n"[..]);
    assert!(matches!(
        p.parse(&mut buf),
        Err(ProtoError::PayloadTooLarge {
            size: 9,
            limit: 8,
            ..
        })
    ));
}

#[test]
fn bytes_needed_reports_pending_frame() {
    let mut p = Parser::new();
    let mut buf = BytesMut::from(&b"MSG a 1 100\r\n"[..]);
    assert_eq!(p.parse(&mut buf), Ok(None));
    assert_eq!(p.bytes_needed(), Some(13 + 100 + 2));
}

#[test]
fn encode_server_op_roundtrip() {
    let mut headers = HeaderMap::new();
    headers.append("Nats-Msg-Id", "1");
    let ops = vec![
        ServerOp::Ping,
        ServerOp::Msg(Msg {
            subject: "s.1".into(),
            sid: 42,
            reply: Some("r".into()),
            headers: Some(headers),
            status: Some(StatusCode::NOT_FOUND),
            description: Some("No Messages".into()),
            payload: Bytes::from_static(b"data"),
            size: 0,
        }),
        ServerOp::Err("Authorization Violation".into()),
    ];
    let mut buf = BytesMut::new();
    for op in &ops {
        encode_server_op(&mut buf, op);
    }
    let mut parsed = parse_split_everywhere(&buf);
    if let ServerOp::Msg(m) = &mut parsed[1] {
        m.size = 0;
    }
    assert_eq!(parsed, ops);
}

/// The word-at-a-time splitter against the obvious byte loop.
#[test]
fn split_args_matches_naive_splitting() {
    fn naive(line: &[u8], from: usize) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut i = from;
        while i < line.len() {
            while i < line.len() && is_sep(line[i]) {
                i += 1;
            }
            let start = i;
            while i < line.len() && !is_sep(line[i]) {
                i += 1;
            }
            if start < i {
                out.push(start..i);
            }
        }
        out
    }
    let alphabet = [
        b' ',
        b'\t',
        b'a',
        b'1',
        0x80,
        0x09 ^ 0x80,
        0x20 ^ 0x80,
        0x00,
        b'\r',
    ];
    let mut seed = 0x2545_f491_u64;
    for len in 0..170 {
        for _ in 0..200 {
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            for from in 0..=len.min(4) {
                let (mut starts, mut ends) = ([0; 5], [0; 5]);
                let n = split_args(&line, from, &mut starts, &mut ends);
                let got: Vec<Range<usize>> = (0..n.min(5)).map(|i| starts[i]..ends[i]).collect();
                let want = naive(&line, from);
                assert_eq!(n, want.len(), "{line:?} from {from}");
                assert_eq!(&got[..], &want[..n.min(5)], "{line:?} from {from}");
            }
        }
    }
}

/// Random control lines of `op` and 2 to 6 arguments, with odd separators and tokens mixed in;
/// asserts that wherever `fast` answers, it gives the general path's answer, and that it
/// answers often.
fn fast_path_agrees(op: &[u8], headers: bool, fast: fn(&[u8], usize) -> Option<MsgLine>) {
    let parser = Parser::new();
    let seps: [&[u8]; 6] = [b" ", b" ", b" ", b"\t", b"  ", b""];
    let tokens: [&[u8]; 11] = [
        // Long enough that lines run past 64 and 128 bytes (the mask paths' bounds).
        b"$JS.ACK.ORDERS.worker.1.20.20.1764460800000000000.0",
        b"7",
        b"42",
        b"a.b",
        b"_INBOX.x",
        b"",
        b"\r",
        b"\xff",
        b"0",
        b"99999999999999999999",
        b"16",
    ];
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let mut answered = 0;
    for _ in 0..200_000 {
        let mut line = op.to_vec();
        for _ in 0..2 + next() % 5 {
            line.extend_from_slice(seps[next() % seps.len()]);
            line.extend_from_slice(tokens[next() % tokens.len()]);
        }
        if let Some(found) = fast(&line, line.len() + 2) {
            answered += 1;
            assert_eq!(
                Ok(found),
                parser.msg_line(&line, line.len() + 2, headers),
                "{line:?}"
            );
        }
    }
    assert!(
        answered > 100,
        "the fast path answered only {answered} times"
    );
}

/// Wherever the MSG fast path answers, it gives the general path's answer; and it does answer
/// for the lines servers send.
#[test]
fn simple_msg_agrees_with_the_general_path() {
    fast_path_agrees(b"MSG", false, line::simple_msg);
    for common in [
        &b"MSG a.b 1 5"[..],
        b"MSG _INBOX.abc.1 42 reply.to 1048576",
        b"MSG orders.eu.new 3 $JS.ACK.ORDERS.worker-pool.1.123456.123456.1764460800123456789.99 128",
    ] {
        assert!(line::simple_msg(common, common.len() + 2).is_some());
    }
}

/// The same for the HMSG fast path; a header size above the total is left to the general
/// path, which reports it.
#[test]
fn simple_hmsg_agrees_with_the_general_path() {
    fast_path_agrees(b"HMSG", true, line::simple_hmsg);
    for common in [
        &b"HMSG a.b 1 12 17"[..],
        b"HMSG _INBOX.abc.1 42 reply.to 30 1048576",
    ] {
        assert!(line::simple_hmsg(common, common.len() + 2).is_some());
    }
    assert_eq!(line::simple_hmsg(b"HMSG a 1 18 17", 16), None);
    assert!(matches!(
        parse_all(b"HMSG a 1 18 17\r\n"),
        Err(ProtoError::HeaderLengthExceedsTotal { .. })
    ));
}
