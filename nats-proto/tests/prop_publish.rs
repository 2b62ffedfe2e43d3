//! Property: what `Encoder::publish` writes is exactly the PUB/HPUB frame a server expects, and
//! a server-side reader gets back the subject, reply, headers and payload that went in. Also:
//! arbitrary (mostly invalid) strings are either rejected with the buffer untouched, or read
//! back unchanged; nothing can smuggle a second op onto the wire.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use nats_proto::fuzzing::read_client_op;
use nats_proto::{ClientOp, Encoder, HeaderMap};
use proptest::prelude::*;

/// The frame the NATS protocol documentation describes, built independently of the encoder.
fn expected_frame(
    subject: &str,
    reply: Option<&str>,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Vec<u8> {
    let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
    match headers {
        None => [
            format!("PUB {subject}{reply} {}\r\n", payload.len()).as_bytes(),
            payload,
            b"\r\n",
        ]
        .concat(),
        Some(h) => {
            let mut block = String::from("NATS/1.0\r\n");
            for (n, v) in h.iter() {
                block.push_str(&format!("{n}: {v}\r\n"));
            }
            block.push_str("\r\n");
            let line = format!(
                "HPUB {subject}{reply} {} {}\r\n",
                block.len(),
                block.len() + payload.len()
            );
            [line.as_bytes(), block.as_bytes(), payload, b"\r\n"].concat()
        }
    }
}

fn read_all(mut wire: BytesMut) -> Vec<ClientOp> {
    let mut ops = Vec::new();
    while let Some(frame) = read_client_op(&mut wire).expect("the server can read it") {
        ops.push(frame.op);
    }
    assert!(wire.is_empty(), "trailing bytes");
    ops
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn publish_writes_the_expected_frame(
        subject in subject(),
        reply in prop::option::of(subject()),
        headers in prop::option::of(headers()),
        payload in payload(),
    ) {
        let headers: Option<HeaderMap> = headers.map(|h| h.into_iter().collect());
        let mut buf = BytesMut::from(&b"PING\r\n"[..]);
        Encoder::default()
            .publish(&mut buf, &subject, reply.as_deref(), headers.as_ref(), &payload)
            .expect("valid publish");
        let expected = expected_frame(&subject, reply.as_deref(), headers.as_ref(), &payload);
        prop_assert_eq!(&buf[6..], &expected[..]);
        let ops = read_all(buf);
        prop_assert_eq!(ops, vec![
            ClientOp::Ping,
            ClientOp::Pub { subject, reply, headers, payload: Bytes::from(payload) },
        ]);
    }

    #[test]
    fn arbitrary_strings_never_inject(
        subject in "\\PC{0,12}|[a. \t\r\n*>]{0,8}",
        reply in prop::option::of("\\PC{0,12}|[a. \t\r\n]{0,8}"),
        name in "\\PC{0,6}|[A-Z: \r\n]{0,4}",
        value in "\\PC{0,12}|[a: \t\r\n]{0,6}",
        payload in payload(),
    ) {
        let mut headers = HeaderMap::new();
        headers.append(name.as_str(), value.as_str());
        for h in [None, Some(&headers)] {
            let mut buf = BytesMut::new();
            match Encoder::default().publish(&mut buf, &subject, reply.as_deref(), h, &payload) {
                Err(_) => prop_assert!(buf.is_empty()),
                Ok(()) => {
                    let expected_headers = h.map(|h| {
                        h.iter().map(|(n, v)| (n, v.trim_matches([' ', '\t']))).collect::<HeaderMap>()
                    });
                    prop_assert_eq!(read_all(buf), vec![ClientOp::Pub {
                        subject: subject.clone(),
                        reply: reply.clone(),
                        headers: expected_headers,
                        payload: Bytes::from(payload.clone()),
                    }]);
                }
            }
        }
    }

    #[test]
    fn subscribe_and_unsubscribe_read_back(
        sid in any::<u64>(),
        filter in prop::collection::vec(prop_oneof![token(), Just("*".to_string())], 1..4),
        tail in any::<bool>(),
        queue in prop::option::of("[a-zA-Z0-9_.]{1,12}"),
        max in prop::option::of(any::<u64>()),
    ) {
        let mut subject = filter.join(".");
        if tail {
            subject.push_str(".>");
        }
        let mut buf = BytesMut::new();
        let e = Encoder::default();
        e.subscribe(&mut buf, sid, &subject, queue.as_deref()).expect("valid filter");
        e.unsubscribe(&mut buf, sid, max);
        prop_assert_eq!(read_all(buf), vec![
            ClientOp::Sub { sid, subject, queue },
            ClientOp::Unsub { sid, max },
        ]);
    }
}
