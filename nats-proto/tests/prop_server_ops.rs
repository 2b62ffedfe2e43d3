//! Property: server ops written by `encode_server_op` parse back to the same values, whole and
//! fed in arbitrary pieces.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use nats_proto::headers::encode_block;
use nats_proto::{HeaderMap, Msg, Parser, ServerInfo, ServerOp, StatusCode, encode_server_op};
use proptest::prelude::*;

fn status() -> impl Strategy<Value = Option<(u16, Option<String>)>> {
    let description = "[^\r\n]{0,24}".prop_map(|d| {
        let d = d.trim_matches([' ', '\t']);
        (!d.is_empty()).then(|| d.to_string())
    });
    prop::option::of((100u16..=999, description))
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        subject(),
        any::<u64>(),
        prop::option::of(subject()),
        prop::option::of(headers()),
        status(),
        payload(),
    )
        .prop_map(|(subject, sid, reply, headers, status, payload)| {
            let headers: Option<HeaderMap> = headers.map(|h| h.into_iter().collect::<HeaderMap>());
            // A status line without fields still yields an (empty) map.
            let headers = headers.or_else(|| status.as_ref().map(|_| HeaderMap::new()));
            let status_code = status.as_ref().and_then(|(c, _)| StatusCode::from_u16(*c));
            let mut block = BytesMut::new();
            if let Some(h) = &headers {
                let s = status_code.map(|c| (c, status.as_ref().and_then(|(_, d)| d.as_deref())));
                encode_block(&mut block, s, h);
            }
            Msg {
                subject: subject.into(),
                sid,
                reply: reply.map(Into::into),
                headers,
                status: status_code,
                description: status.and_then(|(_, d)| d).map(Into::into),
                size: block.len() + payload.len(),
                payload: Bytes::from(payload),
            }
        })
}

fn info() -> impl Strategy<Value = ServerInfo> {
    (
        "[A-Z0-9]{1,56}",
        "[^\r\n]{0,12}",
        any::<u16>(),
        any::<u32>(),
        any::<bool>(),
        prop::collection::vec("[a-z0-9.:]{1,20}", 0..3),
        prop::option::of("\\PC{0,16}"),
    )
        .prop_map(
            |(server_id, version, port, max_payload, headers, connect_urls, nonce)| ServerInfo {
                server_id,
                version,
                port,
                max_payload: max_payload as usize,
                headers,
                connect_urls,
                nonce,
                ..ServerInfo::default()
            },
        )
}

fn server_op() -> impl Strategy<Value = ServerOp> {
    prop_oneof![
        4 => msg().prop_map(ServerOp::Msg),
        1 => info().prop_map(|i| ServerOp::Info(Box::new(i))),
        1 => Just(ServerOp::Ping),
        1 => Just(ServerOp::Pong),
        1 => Just(ServerOp::Ok),
        1 => "[^\r\n]{0,30}".prop_map(ServerOp::Err),
    ]
}

fn parse_pieces(pieces: &[&[u8]]) -> Vec<ServerOp> {
    let mut parser = Parser::new();
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(op) = parser.parse(&mut buf).expect("valid frames parse") {
            ops.push(op);
        }
    }
    assert!(buf.is_empty());
    ops
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_server_ops_parse_back(ops in prop::collection::vec(server_op(), 1..12), sizes in chunks()) {
        let mut wire = BytesMut::new();
        for op in &ops {
            encode_server_op(&mut wire, op);
        }
        prop_assert_eq!(&parse_pieces(&[&wire]), &ops);
        prop_assert_eq!(&parse_pieces(&split(&wire, &sizes)), &ops);
    }

    #[test]
    fn one_byte_at_a_time(op in server_op()) {
        let mut wire = BytesMut::new();
        encode_server_op(&mut wire, &op);
        prop_assert_eq!(parse_pieces(&split(&wire, &[1])), vec![op]);
    }
}
