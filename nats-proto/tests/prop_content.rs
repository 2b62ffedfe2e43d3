//! Property: the content of a well-framed MSG/HMSG never breaks the stream. Whatever bytes a
//! publisher put in the subject, reply subject, header names and values (the server passes
//! them through; only separators and line ends cannot occur), the frame comes back as one
//! `Msg` or `BadMsg` with its bytes, and the op after it parses, however the bytes arrive.

use bytes::BytesMut;
use nats_proto::{Parser, ServerOp};
use proptest::prelude::*;

/// A token the server could pass through: no separator, no line end.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no separator", |b| {
            !matches!(b, b' ' | b'\t' | b'\r' | b'\n')
        }),
        1..12,
    )
}

/// A header value: anything but a line end (surrounding blanks are trimmed by the reader).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no line end", |b| {
            !matches!(b, b'\r' | b'\n' | b' ' | b'\t')
        }),
        0..12,
    )
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("a name byte", |b| *b > b' ' && *b != b':'),
        1..8,
    )
}

proptest! {
    #[test]
    fn any_content_keeps_the_stream(
        subject in token(),
        reply in proptest::option::of(token()),
        fields in proptest::option::of(prop::collection::vec((name(), value()), 0..4)),
        payload in prop::collection::vec(any::<u8>(), 0..32),
        cut in any::<prop::sample::Index>(),
    ) {
        let block = fields.as_ref().map(|fields| {
            let mut b = b"NATS/1.0\r\n".to_vec();
            for (n, v) in fields {
                b.extend_from_slice(n);
                b.extend_from_slice(b": ");
                b.extend_from_slice(v);
                b.extend_from_slice(b"\r\n");
            }
            b.extend_from_slice(b"\r\n");
            b
        });
        let mut frame = Vec::new();
        frame.extend_from_slice(if block.is_some() { b"HMSG " } else { b"MSG " });
        frame.extend_from_slice(&subject);
        frame.extend_from_slice(b" 9");
        if let Some(r) = &reply {
            frame.push(b' ');
            frame.extend_from_slice(r);
        }
        let hlen = block.as_ref().map_or(0, Vec::len);
        if block.is_some() {
            frame.extend_from_slice(format!(" {hlen}").as_bytes());
        }
        frame.extend_from_slice(format!(" {}\r\n", hlen + payload.len()).as_bytes());
        frame.extend_from_slice(block.as_deref().unwrap_or_default());
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(b"\r\nPING\r\n");

        let at = cut.index(frame.len() + 1);
        let mut parser = Parser::new();
        let mut buf = BytesMut::from(&frame[..at]);
        let mut ops = Vec::new();
        while let Some(op) = parser.parse(&mut buf).expect("never a parse error") {
            ops.push(op);
        }
        buf.extend_from_slice(&frame[at..]);
        while let Some(op) = parser.parse(&mut buf).expect("never a parse error") {
            ops.push(op);
        }
        prop_assert_eq!(ops.len(), 2);
        prop_assert_eq!(&ops[1], &ServerOp::Ping);
        let utf8 = |b: &[u8]| std::str::from_utf8(b).is_ok();
        match &ops[0] {
            ServerOp::Msg(m) => {
                prop_assert!(utf8(&subject) && reply.as_deref().is_none_or(utf8));
                prop_assert_eq!(m.subject.as_bytes(), &subject[..]);
                prop_assert_eq!(&m.payload[..], &payload[..]);
                let got: Vec<(Vec<u8>, Vec<u8>)> = m
                    .headers
                    .iter()
                    .flat_map(|h| h.entries())
                    .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect();
                prop_assert_eq!(got, fields.unwrap_or_default(), "header bytes kept");
            }
            ServerOp::BadMsg(b) => {
                prop_assert!(!utf8(&subject) || !reply.as_deref().is_none_or(utf8));
                prop_assert_eq!(&b.subject[..], &subject[..]);
                prop_assert_eq!(b.reply.as_deref(), reply.as_deref());
                prop_assert_eq!(b.headers.as_deref(), block.as_deref());
                prop_assert_eq!(&b.payload[..], &payload[..]);
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
