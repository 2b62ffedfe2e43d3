//! Parses bytes a real nats-server (v2.15.1) sent, recorded by `tests/data/record_session.py`
//! (see `tests/data/README.md`): whole, and split at every byte boundary.
//!
//! The session: INFO, CONNECT + PING, then SUB `greet.*` (sid 1) and `_INBOX.rec.*` (sid 2),
//! PUB, PUB with a reply and no payload, HPUB with two headers, a 3 KiB payload holding every
//! byte value, a request to a subject without responders (503 status), and a final PING.

use bytes::BytesMut;
use nats_proto::{Msg, Parser, ServerInfo, ServerOp, StatusCode};
use serde_json::Value;

const SESSION: &[u8] = include_bytes!("data/session.bin");

fn parse(chunks: &[&[u8]]) -> Vec<ServerOp> {
    let mut parser = Parser::new();
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(op) = parser.parse(&mut buf).expect("a real server's bytes parse") {
            ops.push(op);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    assert_eq!(parser.offset(), SESSION.len() as u64);
    ops
}

/// The JSON of the n-th INFO line, read without the parser under test.
fn raw_info(n: usize) -> Value {
    let text = String::from_utf8_lossy(SESSION);
    let line = text
        .split("\r\n")
        .filter(|l| l.starts_with("INFO "))
        .nth(n)
        .expect("INFO line");
    serde_json::from_str(&line[5..]).expect("INFO JSON")
}

fn check_info(info: &ServerInfo, raw: &Value) {
    // Every field the server sent that ServerInfo knows must come through unchanged.
    assert_eq!(info.server_id, raw["server_id"].as_str().unwrap());
    assert_eq!(info.server_name, raw["server_name"].as_str().unwrap());
    assert_eq!(info.version, raw["version"].as_str().unwrap());
    assert_eq!(info.git_commit, raw["git_commit"].as_str().unwrap());
    assert_eq!(info.go, raw["go"].as_str().unwrap());
    assert_eq!(info.host, raw["host"].as_str().unwrap());
    assert_eq!(u64::from(info.port), raw["port"].as_u64().unwrap());
    assert_eq!(
        info.max_payload as u64,
        raw["max_payload"].as_u64().unwrap()
    );
    assert_eq!(i64::from(info.proto), raw["proto"].as_i64().unwrap());
    assert_eq!(info.client_id, raw["client_id"].as_u64().unwrap());
    assert_eq!(info.client_ip, raw["client_ip"].as_str().unwrap());
    assert_eq!(info.headers, raw["headers"].as_bool().unwrap());
    // And what the recording pins, independently of the JSON.
    assert_eq!(info.version, "2.15.1");
    assert_eq!(info.server_id.len(), 56);
    assert!(info.server_id.starts_with('N'));
    assert_eq!(info.server_name, info.server_id);
    assert_eq!(info.host, "127.0.0.1");
    assert_eq!(info.client_ip, "127.0.0.1");
    assert_ne!(info.port, 0);
    assert!(info.headers);
    assert_eq!(info.max_payload, 1024 * 1024);
    assert_eq!(info.proto, 1);
    assert!(info.client_id > 0);
    assert!(info.go.starts_with("go"));
    assert!(!info.auth_required && !info.tls_required && !info.jetstream && !info.ldm);
    assert!(info.connect_urls.is_empty());
    assert_eq!(info.nonce, None);
}

fn msg(op: &ServerOp) -> &Msg {
    match op {
        ServerOp::Msg(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn check_session(ops: &[ServerOp]) {
    assert_eq!(ops.len(), 9, "{ops:#?}");

    let ServerOp::Info(first) = &ops[0] else {
        panic!("first op is not INFO: {:?}", ops[0]);
    };
    check_info(first, &raw_info(0));
    assert_eq!(ops[1], ServerOp::Pong);
    // After the first PONG the server repeats INFO with `connect_info` (ignored field).
    let ServerOp::Info(second) = &ops[2] else {
        panic!("third op is not INFO: {:?}", ops[2]);
    };
    check_info(second, &raw_info(1));
    assert_eq!(second.server_id, first.server_id);
    assert_eq!(raw_info(1)["connect_info"], Value::Bool(true));

    let m = msg(&ops[3]);
    assert_eq!(
        (&*m.subject, m.sid, m.reply.as_deref()),
        ("greet.joe", 1, None)
    );
    assert_eq!((&m.payload[..], m.size), (&b"hello"[..], 5));
    assert_eq!((&m.headers, m.status, &m.description), (&None, None, &None));

    let m = msg(&ops[4]);
    assert_eq!(
        (&*m.subject, m.sid, m.reply.as_deref()),
        ("greet.ann", 1, Some("_INBOX.rec.1"))
    );
    assert_eq!((m.payload.len(), m.size, &m.headers), (0, 0, &None));

    let m = msg(&ops[5]);
    assert_eq!(
        (&*m.subject, m.sid, m.reply.as_deref()),
        ("greet.hdr", 1, None)
    );
    let h = m.headers.as_ref().expect("HMSG headers");
    assert_eq!(
        h.iter().collect::<Vec<_>>(),
        [("Nats-Msg-Id", "id-1"), ("X-Trace", "a b c")]
    );
    assert_eq!((m.status, &m.description), (None, &None));
    assert_eq!(&m.payload[..], b"with headers");
    assert_eq!(m.size, 59);

    let m = msg(&ops[6]);
    assert_eq!(
        (&*m.subject, m.sid, m.reply.as_deref()),
        ("greet.big", 1, None)
    );
    let big: Vec<u8> = (0..12).flat_map(|_| 0..=255u8).collect();
    assert_eq!(&m.payload[..], &big[..]);
    assert_eq!((m.size, &m.headers), (3072, &None));

    let m = msg(&ops[7]);
    assert_eq!(
        (&*m.subject, m.sid, m.reply.as_deref()),
        ("_INBOX.rec.2", 2, None)
    );
    assert_eq!(m.status, Some(StatusCode::NO_RESPONDERS));
    assert_eq!(m.description, None);
    let h = m.headers.as_ref().expect("503 header map");
    assert_eq!(
        h.iter().collect::<Vec<_>>(),
        [("Nats-Subject", "nobody.home")]
    );
    assert!(m.payload.is_empty());
    assert_eq!(m.size, 43);

    assert_eq!(ops[8], ServerOp::Pong);
}

#[test]
fn whole_session() {
    check_session(&parse(&[SESSION]));
}

#[test]
fn split_at_every_byte() {
    let whole = parse(&[SESSION]);
    for cut in 0..=SESSION.len() {
        let (a, b) = SESSION.split_at(cut);
        assert_eq!(parse(&[a, b]), whole, "split at {cut}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let chunks: Vec<&[u8]> = SESSION.chunks(1).collect();
    check_session(&parse(&chunks));
}
