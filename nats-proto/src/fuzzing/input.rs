//! The structured input of the `roundtrip` target and the checks run on it.
//!
//! Raw `String`s go into the encoders unfiltered: whatever [`Encoder`] accepts must be read back
//! unchanged, so an injection hole (a value that ends the line early) shows up as a mismatch.
//! `encode_server_op` does not validate (it plays a trusted server), so server ops are first
//! filtered to what a server can send. Expected values are normalised the way the receiving
//! side legitimately changes them: header values and status descriptions lose surrounding
//! spaces and tabs (as in nats.go), an empty description is absent, a status without fields
//! still yields an (empty) header map.

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};

use super::{ClientFrame, parse_chunked, read_client_op};
use crate::client_frame::{client_frame_len, cut_frame_end, frame_start_at};
use crate::headers::encode_block;
use crate::op::{ClientOp, Msg, ServerOp};
use crate::parser::ParserLimits;
use crate::{ConnectInfo, Encoder, HeaderMap, ServerInfo, StatusCode, encode_server_op};

/// One roundtrip case.
#[derive(Debug, Clone, Arbitrary)]
pub struct RoundtripInput {
    /// Ops written as a server would, then parsed.
    pub server_ops: Vec<FuzzServerOp>,
    /// Chunk sizes (each plus one) for the chunked parse, cycled; empty means byte by byte.
    pub chunks: Vec<u8>,
    /// Encoder limits (`max_payload`, `max_control_line`); `None` for the server defaults.
    pub encoder_limits: Option<(u16, u16)>,
    /// Ops written by the client's encoder, then read back as a server would.
    pub client_ops: Vec<FuzzClientOp>,
}

/// Header fields as (name, value) pairs, in order.
pub type FuzzHeaders = Vec<(String, String)>;

/// A server op to encode.
#[derive(Debug, Clone, Arbitrary)]
#[allow(missing_docs)]
pub enum FuzzServerOp {
    Info(FuzzInfo),
    Msg(FuzzMsg),
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// A subset of INFO's fields, enough to exercise the JSON line.
#[derive(Debug, Clone, Arbitrary)]
#[allow(missing_docs)]
pub struct FuzzInfo {
    pub server_id: String,
    pub version: String,
    pub port: u16,
    pub max_payload: u32,
    pub headers: bool,
    pub client_id: u64,
    pub connect_urls: Vec<String>,
    pub nonce: Option<String>,
}

/// A MSG/HMSG to encode.
#[derive(Debug, Clone, Arbitrary)]
#[allow(missing_docs)]
pub struct FuzzMsg {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    pub headers: Option<FuzzHeaders>,
    pub status: Option<(u16, Option<String>)>,
    pub payload: Vec<u8>,
}

/// A client op to encode.
#[derive(Debug, Clone, Arbitrary)]
#[allow(missing_docs)]
pub enum FuzzClientOp {
    Pub {
        subject: String,
        reply: Option<String>,
        headers: Option<FuzzHeaders>,
        payload: Vec<u8>,
    },
    Sub {
        sid: u64,
        subject: String,
        queue: Option<String>,
    },
    Unsub {
        sid: u64,
        max: Option<u64>,
    },
    Connect {
        verbose: bool,
        headers: bool,
        no_responders: bool,
        echo: bool,
        protocol: u8,
        name: Option<String>,
        user: Option<String>,
        pass: Option<String>,
        lang: String,
    },
    Ping,
    Pong,
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn header_map(fields: &FuzzHeaders, normalise: bool) -> HeaderMap {
    fields
        .iter()
        .map(|(n, v)| (n.as_str(), if normalise { trim(v) } else { v.as_str() }))
        .collect()
}

/// What the parser splits on or ends a line with; a server never puts these in a subject.
fn is_wire_token(s: &str) -> bool {
    !s.is_empty() && !s.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n'))
}

/// A server op as it goes on the wire, and as the parser must give it back. `None` for ops a
/// server cannot send.
fn server_op(op: &FuzzServerOp) -> Option<(ServerOp, ServerOp)> {
    Some(match op {
        FuzzServerOp::Ping => (ServerOp::Ping, ServerOp::Ping),
        FuzzServerOp::Pong => (ServerOp::Pong, ServerOp::Pong),
        FuzzServerOp::Ok => (ServerOp::Ok, ServerOp::Ok),
        FuzzServerOp::Err(text) => {
            if text.contains('\n') {
                return None;
            }
            (ServerOp::Err(text.clone()), ServerOp::Err(text.clone()))
        }
        FuzzServerOp::Info(i) => {
            let info = ServerInfo {
                server_id: i.server_id.clone(),
                version: i.version.clone(),
                port: i.port,
                max_payload: i.max_payload as usize,
                headers: i.headers,
                client_id: i.client_id,
                connect_urls: i.connect_urls.clone(),
                nonce: i.nonce.clone(),
                ..ServerInfo::default()
            };
            let op = ServerOp::Info(Box::new(info));
            (op.clone(), op)
        }
        FuzzServerOp::Msg(m) => {
            let (sent, expected) = server_msg(m)?;
            (ServerOp::Msg(sent), ServerOp::Msg(expected))
        }
    })
}

fn server_msg(m: &FuzzMsg) -> Option<(Msg, Msg)> {
    if !is_wire_token(&m.subject) || !m.reply.as_deref().is_none_or(is_wire_token) {
        return None;
    }
    let status = match &m.status {
        None => None,
        Some((code, desc)) => {
            if desc.as_deref().is_some_and(|d| d.contains('\n')) {
                return None;
            }
            Some((StatusCode::from_u16(*code)?, desc.clone()))
        }
    };
    if let Some(fields) = &m.headers {
        let name_ok = |n: &str| is_wire_token(n) && !n.bytes().any(|b| b <= b' ' || b == b':');
        if fields.iter().any(|(n, v)| !name_ok(n) || v.contains('\n')) {
            return None;
        }
    }
    let sent = Msg {
        subject: m.subject.as_str().into(),
        sid: m.sid,
        reply: m.reply.as_deref().map(Into::into),
        headers: m.headers.as_ref().map(|h| header_map(h, false)),
        status: status.as_ref().map(|(code, _)| *code),
        description: status
            .as_ref()
            .and_then(|(_, d)| d.as_deref())
            .map(Into::into),
        payload: Bytes::copy_from_slice(&m.payload),
        size: 0,
    };
    let has_block = sent.headers.is_some() || sent.status.is_some();
    let expected_headers =
        has_block.then(|| header_map(m.headers.as_ref().unwrap_or(&vec![]), true));
    let mut block = BytesMut::new();
    if has_block {
        let status = sent.status.map(|s| (s, sent.description.as_deref()));
        encode_block(
            &mut block,
            status,
            &header_map(m.headers.as_ref().unwrap_or(&vec![]), false),
        );
    }
    let expected = Msg {
        headers: expected_headers,
        description: sent
            .description
            .as_deref()
            .map(trim)
            .filter(|d| !d.is_empty())
            .map(Into::into),
        size: block.len() + m.payload.len(),
        ..sent.clone()
    };
    Some((sent, expected))
}

pub(super) fn check_server_ops(input: &RoundtripInput) {
    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    for op in &input.server_ops {
        if let Some((sent, exp)) = server_op(op) {
            encode_server_op(&mut wire, &sent);
            expected.push(exp);
        }
    }
    let limits = ParserLimits::default();
    let whole = parse_chunked(&wire, limits, std::iter::once(wire.len()));
    assert_eq!(whole.error, None, "valid server ops failed to parse");
    assert_eq!(whole.ops, expected, "server ops changed on the way");
    assert_eq!(whole.leftover, 0);
    let chunks: Vec<usize> = if input.chunks.is_empty() {
        vec![1]
    } else {
        input.chunks.iter().map(|&c| usize::from(c) + 1).collect()
    };
    let chunked = parse_chunked(&wire, limits, chunks.into_iter().cycle());
    assert_eq!(
        chunked.error, None,
        "valid server ops failed to parse in chunks"
    );
    assert_eq!(chunked.ops, expected, "chunking changed the server ops");
    assert_eq!(chunked.leftover, 0);
}

/// A client op as given to the encoder, and as a server must read it back.
fn client_op(op: &FuzzClientOp) -> (ClientOp, ClientOp) {
    match op {
        FuzzClientOp::Pub {
            subject,
            reply,
            headers,
            payload,
        } => {
            let sent = ClientOp::Pub {
                subject: subject.clone(),
                reply: reply.clone(),
                headers: headers.as_ref().map(|h| header_map(h, false)),
                payload: Bytes::copy_from_slice(payload),
            };
            let expected = ClientOp::Pub {
                subject: subject.clone(),
                reply: reply.clone(),
                headers: headers.as_ref().map(|h| header_map(h, true)),
                payload: Bytes::copy_from_slice(payload),
            };
            (sent, expected)
        }
        FuzzClientOp::Sub {
            sid,
            subject,
            queue,
        } => {
            let op = ClientOp::Sub {
                sid: *sid,
                subject: subject.clone(),
                queue: queue.clone(),
            };
            (op.clone(), op)
        }
        FuzzClientOp::Unsub { sid, max } => {
            let op = ClientOp::Unsub {
                sid: *sid,
                max: *max,
            };
            (op.clone(), op)
        }
        FuzzClientOp::Connect {
            verbose,
            headers,
            no_responders,
            echo,
            protocol,
            name,
            user,
            pass,
            lang,
        } => {
            let op = ClientOp::Connect(Box::new(ConnectInfo {
                verbose: *verbose,
                headers: *headers,
                no_responders: *no_responders,
                echo: *echo,
                protocol: *protocol,
                name: name.clone(),
                user: user.clone(),
                pass: pass.clone(),
                lang: lang.clone(),
                ..ConnectInfo::default()
            }));
            (op.clone(), op)
        }
        FuzzClientOp::Ping => (ClientOp::Ping, ClientOp::Ping),
        FuzzClientOp::Pong => (ClientOp::Pong, ClientOp::Pong),
    }
}

pub(super) fn check_client_ops(input: &RoundtripInput) {
    let encoder = match input.encoder_limits {
        Some((max_payload, max_control_line)) => Encoder {
            max_payload: max_payload.into(),
            max_control_line: max_control_line.into(),
        },
        None => Encoder::default(),
    };
    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    for op in &input.client_ops {
        let (sent, exp) = client_op(op);
        let before = wire.clone();
        match encoder.encode(&mut wire, &sent) {
            Ok(()) => expected.push(exp),
            Err(_) => assert_eq!(wire, before, "a rejected op left bytes behind"),
        }
    }
    let encoded = wire.clone().freeze();
    let mut frames = Vec::new();
    loop {
        match read_client_op(&mut wire) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break,
            Err(e) => panic!("encoded client ops do not read back: {e}"),
        }
    }
    assert!(wire.is_empty(), "trailing bytes after the client ops");
    check_frame_boundaries(&encoded, &frames);
    let ops: Vec<ClientOp> = frames.iter().map(|f| f.op.clone()).collect();
    assert_eq!(ops, expected, "client ops changed on the way");
    for ClientFrame { op, line_len, size } in &frames {
        if matches!(op, ClientOp::Pub { .. } | ClientOp::Sub { .. }) {
            assert!(
                *line_len <= encoder.max_control_line,
                "control line over the limit"
            );
        }
        assert!(*size <= encoder.max_payload, "payload over the limit");
    }
}

/// [`client_frame_len`] must find exactly the frames the strict reader read, and every byte of
/// the buffer must map to the frame it lies in.
fn check_frame_boundaries(encoded: &[u8], frames: &[ClientFrame]) {
    let mut start = 0;
    for frame in frames {
        let len = frame.line_len
            + match frame.op {
                ClientOp::Pub { .. } => frame.size + 2,
                _ => 0,
            };
        assert_eq!(
            client_frame_len(&encoded[start..]),
            Some(len),
            "frame length at {start}"
        );
        for pos in start..start + len {
            assert_eq!(
                frame_start_at(encoded, pos),
                start,
                "frame start of byte {pos}"
            );
            let cut = cut_frame_end(encoded, pos);
            assert_eq!(cut, (pos > start).then_some(start + len), "cut at {pos}");
        }
        start += len;
    }
    assert_eq!(start, encoded.len());
    assert_eq!(frame_start_at(encoded, encoded.len()), encoded.len());
}
