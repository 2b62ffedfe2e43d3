//! A tiny HTTP/1.0 GET over a std `TcpStream` for the server's monitoring port: enough for
//! `/healthz`, `/varz`, `/routez`, `/jsz` without an HTTP client crate.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET path` on `127.0.0.1:port`: the status code and body, or the I/O error (for polling a
/// server that is still starting).
pub fn try_http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    // HTTP/1.0 without keep-alive: the server closes after the body, so "read to end" is the
    // whole response and there is no chunked encoding to undo.
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response"))
}

/// `GET path` on `127.0.0.1:port`: the status code and body.
///
/// # Panics
/// When the request fails (connection refused, timeout, malformed response).
#[track_caller]
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    try_http_get(port, path)
        .unwrap_or_else(|e| panic!("GET http://127.0.0.1:{port}{path} failed: {e}"))
}

/// `GET path` on a monitoring port, parsed as JSON.
///
/// # Panics
/// When the request fails, the status is not 200, or the body is not JSON.
#[track_caller]
pub fn monitor_json(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path);
    assert_eq!(
        status, 200,
        "GET http://127.0.0.1:{port}{path} returned {status}: {body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!("GET http://127.0.0.1:{port}{path} returned invalid JSON ({e}): {body}")
    })
}

fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let raw =
            b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"x\":1}";
        assert_eq!(parse_response(raw), Some((503, "{\"x\":1}".to_string())));
        assert_eq!(parse_response(b"garbage"), None);
    }
}
