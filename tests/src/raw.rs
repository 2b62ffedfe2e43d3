//! A raw NATS protocol connection over a blocking `TcpStream`, for tests that must see exactly
//! what the server sends (the `INFO` line, lame-duck `INFO` updates, `$SYS` replies) without
//! going through the client under test.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// How long a read waits before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A message delivered by `MSG` or `HMSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMsg {
    /// The subject it was published to.
    pub subject: String,
    /// The subscription id it was delivered on.
    pub sid: String,
    /// The reply subject, if any.
    pub reply: Option<String>,
    /// The header block of an `HMSG` (`NATS/1.0...\r\n\r\n`), `None` for `MSG`.
    pub headers: Option<Vec<u8>>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A connection that has read the server's first `INFO` line.
///
/// ```no_run
/// let server = nats_tests::NatsServer::single();
/// let mut conn = server.raw_connection();
/// conn.send("CONNECT {\"verbose\":false,\"protocol\":1}\r\nSUB demo 1\r\nPUB demo 2\r\nhi\r\n");
/// assert_eq!(conn.read_msg().payload, b"hi");
/// ```
#[derive(Debug)]
pub struct RawConnection {
    reader: BufReader<TcpStream>,
    info: Value,
}

impl RawConnection {
    /// Connects to `127.0.0.1:port` and reads the `INFO` line.
    ///
    /// # Panics
    /// When the connection fails or the first line is not `INFO {json}`.
    #[track_caller]
    pub fn connect(port: u16) -> RawConnection {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .unwrap_or_else(|e| panic!("cannot set a read timeout: {e}"));
        let mut conn = RawConnection {
            reader: BufReader::new(stream),
            info: Value::Null,
        };
        let line = conn.read_line();
        conn.info = parse_info_line(&line);
        conn
    }

    /// The server's first `INFO`, parsed.
    pub fn info(&self) -> &Value {
        &self.info
    }

    /// Changes how long reads wait (for tests that expect silence, a short timeout).
    ///
    /// # Panics
    /// When the socket rejects the timeout.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap_or_else(|e| panic!("cannot set a read timeout: {e}"));
    }

    /// Writes `text` as is (include the `\r\n`s).
    ///
    /// # Panics
    /// When the write fails.
    #[track_caller]
    pub fn send(&mut self, text: &str) {
        self.reader
            .get_mut()
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write {text:?}: {e}"));
    }

    /// Sends `CONNECT` with the given JSON fields plus `"verbose":false,"protocol":1` (protocol
    /// 1 is what makes the server send `INFO` updates such as lame duck), then a `PING`, and
    /// waits for the `PONG`.
    ///
    /// # Panics
    /// When the server answers `-ERR` (e.g. bad credentials) or closes the connection.
    #[track_caller]
    pub fn handshake(&mut self, fields: Value) {
        let mut connect = serde_json::json!({"verbose": false, "pedantic": false, "protocol": 1});
        if let (Some(connect), Value::Object(extra)) = (connect.as_object_mut(), fields) {
            connect.extend(extra);
        }
        self.send(&format!("CONNECT {connect}\r\n"));
        self.ping();
    }

    /// Sends `PING` and reads until the `PONG` (answering pings, skipping `INFO` and `+OK`).
    ///
    /// # Panics
    /// On `-ERR`, a message in between, or a closed connection.
    #[track_caller]
    pub fn ping(&mut self) {
        self.send("PING\r\n");
        loop {
            let line = self.read_line();
            match op(&line).as_str() {
                "PONG" => return,
                "PING" => self.send("PONG\r\n"),
                "INFO" | "+OK" => {}
                _ => panic!("expected PONG, got {line:?}"),
            }
        }
    }

    /// Reads one line, without its `\r\n`; `None` when the server closed the connection.
    pub fn try_read_line(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(Some(String::from_utf8_lossy(&line).into_owned()))
    }

    /// Reads one line, without its `\r\n`.
    ///
    /// # Panics
    /// When the read times out or the server closed the connection.
    #[track_caller]
    pub fn read_line(&mut self) -> String {
        match self.try_read_line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the server closed the connection"),
            Err(e) => panic!("reading from the server failed: {e}"),
        }
    }

    /// Reads until the next `INFO` line and returns it parsed (answering pings, skipping other
    /// lines except `-ERR` and messages).
    ///
    /// # Panics
    /// On timeout, a closed connection, `-ERR`, or a message.
    #[track_caller]
    pub fn read_info(&mut self) -> Value {
        loop {
            let line = self.read_line();
            match op(&line).as_str() {
                "INFO" => return parse_info_line(&line),
                "PING" => self.send("PONG\r\n"),
                "PONG" | "+OK" => {}
                _ => panic!("expected INFO, got {line:?}"),
            }
        }
    }

    /// Reads until the next `MSG` or `HMSG` and returns it (answering pings, skipping `INFO`,
    /// `PONG` and `+OK`).
    ///
    /// # Panics
    /// On timeout, a closed connection, `-ERR`, or a malformed message.
    #[track_caller]
    pub fn read_msg(&mut self) -> RawMsg {
        loop {
            let line = self.read_line();
            match op(&line).as_str() {
                "MSG" | "HMSG" => return self.read_msg_body(&line),
                "PING" => self.send("PONG\r\n"),
                "INFO" | "PONG" | "+OK" => {}
                _ => panic!("expected MSG, got {line:?}"),
            }
        }
    }

    #[track_caller]
    fn read_msg_body(&mut self, line: &str) -> RawMsg {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let with_headers = op(line) == "HMSG";
        let number = |s: &str| -> usize {
            s.parse()
                .unwrap_or_else(|_| panic!("bad length {s:?} in {line:?}"))
        };
        let (subject, sid, reply, header_len, total_len) = match (with_headers, parts.as_slice()) {
            (false, [_, subject, sid, len]) => (subject, sid, None, 0, number(len)),
            (false, [_, subject, sid, reply, len]) => (subject, sid, Some(reply), 0, number(len)),
            (true, [_, subject, sid, hlen, len]) => (subject, sid, None, number(hlen), number(len)),
            (true, [_, subject, sid, reply, hlen, len]) => {
                (subject, sid, Some(reply), number(hlen), number(len))
            }
            _ => panic!("malformed message line {line:?}"),
        };
        assert!(header_len <= total_len, "header length > total in {line:?}");
        let mut body = vec![0; total_len + 2];
        self.reader
            .read_exact(&mut body)
            .unwrap_or_else(|e| panic!("reading the payload of {line:?} failed: {e}"));
        body.truncate(total_len);
        let payload = body.split_off(header_len);
        RawMsg {
            subject: (*subject).to_string(),
            sid: (*sid).to_string(),
            reply: reply.map(|r| (*r).to_string()),
            headers: with_headers.then_some(body),
            payload,
        }
    }

    /// The underlying socket (for example to start a TLS handshake after the `INFO`).
    pub fn into_stream(self) -> TcpStream {
        self.reader.into_inner()
    }
}

/// The upper-cased operation name of a protocol line.
fn op(line: &str) -> String {
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// Parses an `INFO {json}` line.
///
/// # Panics
/// When the line is not `INFO` followed by a JSON object.
#[track_caller]
pub fn parse_info_line(line: &str) -> Value {
    let json = match line.split_once([' ', '\t']) {
        Some((op, json)) if op.eq_ignore_ascii_case("INFO") => json.trim(),
        _ => panic!("expected an INFO line, got {line:?}"),
    };
    let info: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("INFO is not valid JSON ({e}): {json}"));
    assert!(info.is_object(), "INFO is not a JSON object: {json}");
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info() {
        let info = parse_info_line("INFO {\"port\":4222,\"tls_required\":true}");
        assert_eq!(info["port"], 4222);
        assert_eq!(info["tls_required"], true);
    }

    #[test]
    #[should_panic(expected = "expected an INFO line")]
    fn rejects_other_lines() {
        parse_info_line("PING");
    }
}
