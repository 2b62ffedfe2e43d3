//! A strict, test-only reader of client ops: what a server sees of our encoder's output.
//!
//! Modelled on nats-server's parser (ops case-insensitive, arguments separated by spaces or
//! tabs), but stricter where that helps a test: every line must end in CRLF.

use bytes::{Buf, BytesMut};

use crate::headers::parse_block;
use crate::op::ClientOp;

/// One client op read back, with what the server would check it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// The op.
    pub op: ClientOp,
    /// Length of its control line, CRLF included (the server's `max_control_line` bound).
    pub line_len: usize,
    /// Headers plus payload for PUB/HPUB (the server's `max_payload` bound), else 0.
    pub size: usize,
}

/// Reads one client op off the front of `buf`; `Ok(None)` when it is not complete yet.
pub fn read_client_op(buf: &mut BytesMut) -> Result<Option<ClientFrame>, String> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return Ok(None);
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return Err("control line not terminated by CRLF".into());
    }
    let line_len = nl + 1;
    let line = std::str::from_utf8(&buf[..nl - 1]).map_err(|e| e.to_string())?;
    let (word, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    let args: Vec<&str> = rest.split([' ', '\t']).filter(|a| !a.is_empty()).collect();
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad number {s:?}"));
        }
        s.parse::<u64>().map_err(|e| e.to_string())
    };
    let word = word.to_ascii_uppercase();
    let (op, size) = match (word.as_str(), args.as_slice()) {
        ("PING", []) => (ClientOp::Ping, 0),
        ("PONG", []) => (ClientOp::Pong, 0),
        ("CONNECT", _) => {
            let info = serde_json::from_str(rest).map_err(|e| e.to_string())?;
            (ClientOp::Connect(Box::new(info)), 0)
        }
        ("SUB", [subject, rest @ ..]) if matches!(rest.len(), 1 | 2) => {
            let op = ClientOp::Sub {
                sid: number(rest[rest.len() - 1])?,
                subject: (*subject).into(),
                queue: (rest.len() == 2).then(|| rest[0].into()),
            };
            (op, 0)
        }
        ("UNSUB", [sid, max @ ..]) if max.len() <= 1 => {
            let op = ClientOp::Unsub {
                sid: number(sid)?,
                max: max.first().map(|m| number(m)).transpose()?,
            };
            (op, 0)
        }
        ("PUB" | "HPUB", [subject, rest @ ..]) => {
            let hpub = word == "HPUB";
            let sizes = if hpub { 2 } else { 1 };
            if rest.len() != sizes && rest.len() != sizes + 1 {
                return Err(format!("{word} with {} arguments", args.len()));
            }
            let reply = (rest.len() == sizes + 1).then(|| rest[0].to_string());
            let total = number(rest[rest.len() - 1])? as usize;
            let header_len = if hpub {
                Some(number(rest[rest.len() - 2])? as usize)
            } else {
                None
            };
            if header_len.is_some_and(|h| h > total) {
                return Err("header size over total size".into());
            }
            let frame_len = line_len + total + 2;
            if buf.len() < frame_len {
                return Ok(None);
            }
            if &buf[frame_len - 2..frame_len] != b"\r\n" {
                return Err("payload not terminated by CRLF".into());
            }
            let subject = (*subject).to_string();
            let frame = buf.split_to(frame_len).freeze();
            let body = frame.slice(line_len..line_len + total);
            let h = header_len.unwrap_or(0);
            let headers = match header_len {
                Some(h) => Some(parse_block(&body.slice(..h)).map_err(|e| e.to_string())?),
                None => None,
            };
            if headers.as_ref().is_some_and(|b| b.status.is_some()) {
                return Err("a client sent a status line".into());
            }
            let op = ClientOp::Pub {
                subject,
                reply,
                headers: headers.map(|b| b.headers),
                payload: body.slice(h..),
            };
            return Ok(Some(ClientFrame {
                op,
                line_len,
                size: total,
            }));
        }
        _ => return Err(format!("unknown or malformed client op {line:?}")),
    };
    buf.advance(line_len);
    Ok(Some(ClientFrame { op, line_len, size }))
}
