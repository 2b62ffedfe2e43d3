//! The "limit" client: plain blocking sockets, pre-encoded frames written in big batches, a
//! subscriber that only finds message boundaries. No client does less work per message, so its
//! numbers are what the server on this machine can take at all.

use std::hint::black_box;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::BenchError;
use crate::scenario::{IDLE_TIMEOUT, Sample, Workload};

/// Bytes of PUB frames per `write` call: the size of the server's largest read buffer, which
/// measured best here (256 KiB and 1 MiB batches were slower, 32 KiB no faster).
const BATCH_BYTES: usize = 64 * 1024;
/// How often a blocked reader looks at its stop flag.
const READ_POLL: Duration = Duration::from_millis(50);

/// A raw protocol connection: CONNECT {"verbose":false} and a PING/PONG, then bytes.
struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Payload bytes (plus CRLF) of the current MSG still to skip; lets a read that timed out
    /// resume exactly where it was.
    skip: usize,
    /// Reply subject of the last MSG, when asked for.
    reply: Vec<u8>,
}

impl RawConn {
    fn connect(port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        let mut conn = RawConn {
            stream,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
            skip: 0,
            reply: Vec::new(),
        };
        conn.read_line()?; // INFO
        conn.stream
            .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n")?;
        conn.ping_pong()?;
        Ok(conn)
    }

    /// Reads more bytes into the buffer (moving what is unread to the front first).
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.end..])? {
            0 => Err(ErrorKind::UnexpectedEof.into()),
            n => {
                self.end += n;
                Ok(())
            }
        }
    }

    /// The next control line without its CRLF, as a range of `buf`; consumed.
    fn read_line(&mut self) -> io::Result<(usize, usize)> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line_start = self.start;
                let mut line_end = line_start + nl;
                if line_end > line_start && self.buf[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                self.start += nl + 1;
                return Ok((line_start, line_end));
            }
            self.fill()?;
        }
    }

    fn ping_pong(&mut self) -> io::Result<()> {
        self.stream.write_all(b"PING\r\n")?;
        loop {
            let (s, e) = self.read_line()?;
            match &self.buf[s..e] {
                b"PONG" => return Ok(()),
                b"PING" => self.stream.write_all(b"PONG\r\n")?,
                line if line.starts_with(b"-ERR") => {
                    return Err(io::Error::other(String::from_utf8_lossy(line).into_owned()));
                }
                _ => {}
            }
        }
    }

    /// Consumes one whole MSG (answering PINGs on the way); with `want_reply` its reply
    /// subject lands in `self.reply`.
    fn read_msg(&mut self, want_reply: bool) -> io::Result<()> {
        while self.skip == 0 {
            let (s, e) = self.read_line()?;
            let line = &self.buf[s..e];
            if line.starts_with(b"MSG ") {
                let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
                let size_token = tokens.next_back().unwrap_or_default();
                let size: usize = std::str::from_utf8(size_token)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| io::Error::other("bad MSG size"))?;
                if want_reply {
                    // MSG <subject> <sid> [reply] <size>
                    let rest: Vec<&[u8]> = tokens.collect();
                    self.reply.clear();
                    if rest.len() == 4 {
                        self.reply.extend_from_slice(rest[3]);
                    }
                }
                self.skip = size + 2;
            } else if line == b"PING" {
                self.stream.write_all(b"PONG\r\n")?;
            } else if line.starts_with(b"-ERR") {
                return Err(io::Error::other(String::from_utf8_lossy(line).into_owned()));
            }
        }
        loop {
            let take = self.skip.min(self.end - self.start);
            black_box(&self.buf[self.start..self.start + take]);
            self.start += take;
            self.skip -= take;
            if self.skip == 0 {
                return Ok(());
            }
            self.fill()?;
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// `messages` PUB frames in writes of about [`BATCH_BYTES`], then PING/PONG.
fn publish_all(conn: &mut RawConn, w: &Workload) -> io::Result<()> {
    let mut frame = format!("PUB {} {}\r\n", w.subject, w.payload.len()).into_bytes();
    frame.extend_from_slice(&w.payload);
    frame.extend_from_slice(b"\r\n");
    let per_batch = (BATCH_BYTES / frame.len()).max(1) as u64;
    let batch = frame.repeat(per_batch as usize);
    let mut left = w.messages;
    while left >= per_batch {
        conn.stream.write_all(black_box(&batch))?;
        left -= per_batch;
    }
    conn.stream
        .write_all(&batch[..frame.len() * left as usize])?;
    conn.ping_pong()
}

pub fn publish(w: Workload) -> Result<Sample, BenchError> {
    let mut conn = RawConn::connect(w.port)?;
    let start = Instant::now();
    publish_all(&mut conn, &w)?;
    Ok(Sample::publish(w.messages, start.elapsed()))
}

pub fn pubsub(w: Workload) -> Result<Sample, BenchError> {
    let mut sub = RawConn::connect(w.port)?;
    sub.stream
        .write_all(format!("SUB {} 1\r\n", w.subject).as_bytes())?;
    sub.ping_pong()?;
    sub.stream.set_read_timeout(Some(READ_POLL))?;

    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let target = w.messages;
    let reader = {
        let (received, stop) = (received.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0;
            loop {
                match sub.read_msg(false) {
                    Ok(()) => {
                        n += 1;
                        received.store(n, Relaxed);
                        if n == target {
                            return Some(Instant::now());
                        }
                    }
                    Err(e) if is_timeout(&e) && !stop.load(Relaxed) => {}
                    Err(_) => return None,
                }
            }
        })
    };

    let mut publisher = RawConn::connect(w.port)?;
    let start = Instant::now();
    publish_all(&mut publisher, &w)?;

    let mut last = received.load(Relaxed);
    let mut last_change = Instant::now();
    let end = loop {
        if reader.is_finished() {
            let done = reader.join().map_err(|_| "limit subscriber panicked")?;
            break done.unwrap_or_else(Instant::now);
        }
        thread::sleep(Duration::from_millis(10));
        let now = received.load(Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= IDLE_TIMEOUT {
            stop.store(true, Relaxed);
            let _ = reader.join();
            break last_change;
        }
    };
    Ok(Sample::pubsub(
        w.messages,
        received.load(Relaxed),
        end - start,
    ))
}

pub fn reqrep(w: Workload) -> Result<Sample, BenchError> {
    let mut responder = RawConn::connect(w.port)?;
    responder
        .stream
        .write_all(format!("SUB {} 1\r\n", w.subject).as_bytes())?;
    responder.ping_pong()?;
    responder.stream.set_read_timeout(Some(READ_POLL))?;
    let stop = Arc::new(AtomicBool::new(false));
    let serve = {
        let stop = stop.clone();
        let payload = w.payload.clone();
        thread::spawn(move || -> io::Result<()> {
            let mut out = Vec::new();
            loop {
                match responder.read_msg(true) {
                    Ok(()) => {
                        out.clear();
                        out.extend_from_slice(b"PUB ");
                        out.extend_from_slice(&responder.reply);
                        out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
                        out.extend_from_slice(&payload);
                        out.extend_from_slice(b"\r\n");
                        responder.stream.write_all(&out)?;
                    }
                    Err(e) if is_timeout(&e) && !stop.load(Relaxed) => {}
                    Err(e) if is_timeout(&e) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        })
    };

    let inbox = format!("_INBOX.limit.{}", w.subject);
    let mut requester = RawConn::connect(w.port)?;
    requester
        .stream
        .write_all(format!("SUB {inbox} 1\r\n").as_bytes())?;
    requester.ping_pong()?;
    let mut frame = format!("PUB {} {inbox} {}\r\n", w.subject, w.payload.len()).into_bytes();
    frame.extend_from_slice(&w.payload);
    frame.extend_from_slice(b"\r\n");

    // Untimed, as the other clients' first request.
    requester.stream.write_all(&frame)?;
    requester.read_msg(false)?;
    let mut latencies = Vec::with_capacity(w.messages as usize);
    let start = Instant::now();
    for _ in 0..w.messages {
        let t = Instant::now();
        requester.stream.write_all(black_box(&frame))?;
        requester.read_msg(false)?;
        latencies.push(t.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    stop.store(true, Relaxed);
    serve.join().map_err(|_| "limit responder panicked")??;
    Ok(Sample::reqrep(latencies, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A RawConn over a local socket pair, past the handshake; returns the server side too.
    fn pair() -> (RawConn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"INFO {}\r\n").unwrap();
            let mut seen = Vec::new();
            let mut buf = [0; 256];
            while !seen.ends_with(b"PING\r\n") {
                let n = s.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            assert!(seen.starts_with(b"CONNECT {\"verbose\":false"));
            s.write_all(b"PONG\r\n").unwrap();
            s
        });
        let conn = RawConn::connect(port).unwrap();
        (conn, server.join().unwrap())
    }

    #[test]
    fn reads_messages_split_anywhere_and_resumes_after_timeouts() {
        let (mut conn, mut server) = pair();
        conn.stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let wire =
            b"+OK\r\nMSG a 1 5\r\nhello\r\nPING\r\nMSG b 1 _INBOX.x 3\r\nabc\r\nMSG c 1 0\r\n\r\n";
        let mut got = 0;
        // One byte at a time, with reads timing out in between: state must survive.
        for &b in wire.iter() {
            server.write_all(&[b]).unwrap();
            match conn.read_msg(true) {
                Ok(()) => {
                    got += 1;
                    if got == 2 {
                        assert_eq!(conn.reply, b"_INBOX.x");
                    }
                }
                Err(e) => assert!(is_timeout(&e), "{e}"),
            }
        }
        while got < 3 {
            conn.read_msg(false).unwrap();
            got += 1;
        }
        assert_eq!(got, 3);
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut pong = [0; 6];
        server.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"PONG\r\n");
    }
}
