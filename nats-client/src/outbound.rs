//! The shared write buffer: publishers encode straight into it under a short lock, and the
//! connection's writer swaps it out whole. No channel send and no allocation per message.
//!
//! While connected, a full buffer makes publishers wait (back-pressure); while disconnected
//! the same buffer is the reconnect buffer, bounded by its own limit, and a publish that does
//! not fit fails with a typed error instead of waiting or growing without bound.

use bytes::BytesMut;
use nats_proto::Encoder;
use nats_proto::client_frame::{cut_frame_end, frame_start_at};
use tokio::sync::oneshot;

/// A flush waiter: resolved when the server's PONG for the PING sent after its data arrives.
pub(crate) type FlushWaiter = oneshot::Sender<()>;

/// Where the connection stands, as publishers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    Connected,
    Disconnected,
    /// `close()` was called: nothing new is accepted; the writer sends what is buffered.
    Closing,
    Closed,
}

/// State behind the write-buffer mutex.
pub(crate) struct Outbound {
    pub buf: BytesMut,
    pub state: LinkState,
    pub encoder: Encoder,
    /// Flush calls registered since the writer last took the buffer.
    pub flush_waiters: Vec<FlushWaiter>,
    /// A keep-alive PING is wanted with the next chunk even without flush waiters.
    pub ping_wanted: bool,
    pub write_limit: usize,
    pub reconnect_limit: usize,
    /// The writer found nothing to do and waits: the next producer must wake it. Producers
    /// that find it busy skip the wake-up (it re-checks the buffer before waiting).
    pub writer_idle: bool,
    /// Messages and payload bytes accepted (counted here, under the lock already held).
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl Outbound {
    pub fn new(write_limit: usize, reconnect_limit: usize) -> Self {
        Outbound {
            buf: BytesMut::with_capacity(64 * 1024),
            state: LinkState::Disconnected,
            encoder: Encoder::default(),
            flush_waiters: Vec::new(),
            ping_wanted: false,
            write_limit,
            reconnect_limit,
            writer_idle: false,
            out_msgs: 0,
            out_bytes: 0,
        }
    }

    /// Whether the writer has anything to do.
    pub fn has_work(&self) -> bool {
        !self.buf.is_empty() || !self.flush_waiters.is_empty() || self.ping_wanted
    }
}

/// The chunk the writer is sending, kept outside the write future so that, when the socket
/// fails, the supervisor knows exactly which bytes never left.
#[derive(Default)]
pub(crate) struct Chunk {
    pub bytes: BytesMut,
    pub written: usize,
    /// Flush waiters whose PING ends this chunk; they move to the PONG queue once it is sent.
    pub waiters: Option<Vec<FlushWaiter>>,
    /// Where that PING starts in `bytes` (it is left out when the chunk is sent again).
    pub ping_at: Option<usize>,
}

impl Chunk {
    pub fn is_done(&self) -> bool {
        self.written >= self.bytes.len()
    }

    /// When the socket stopped inside an op (part of it written): the range of bytes that
    /// completes it.
    pub fn cut_frame_rest(&self) -> Option<std::ops::Range<usize>> {
        cut_frame_end(&self.bytes, self.written).map(|end| self.written..end)
    }

    /// The unsent part of the chunk, starting at the first op that was not completely written
    /// (an op cut in half by the failure is sent again whole: the server dropped its part).
    pub fn take_unsent(&mut self) -> BytesMut {
        let from = frame_start_at(&self.bytes, self.written);
        let mut rest = self.bytes.split_off(0);
        // The trailing PING of flush waiters, when not fully sent: they ride the next one.
        if let Some(at) = self.ping_at.take()
            && at >= from
        {
            rest.truncate(at);
        }
        let _ = rest.split_to(from);
        self.written = 0;
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_unsent_keeps_the_cut_frame() {
        let mut chunk = Chunk {
            bytes: BytesMut::from(&b"PUB a 1\r\nx\r\nPUB b 1\r\ny\r\n"[..]),
            written: 15,
            waiters: None,
            ping_at: None,
        };
        assert_eq!(&chunk.take_unsent()[..], b"PUB b 1\r\ny\r\n");
    }

    #[test]
    fn take_unsent_leaves_out_a_cut_flush_ping() {
        let mut chunk = Chunk {
            bytes: BytesMut::from(&b"PUB a 1\r\nx\r\nPING\r\n"[..]),
            written: 5,
            waiters: None,
            ping_at: Some(12),
        };
        assert_eq!(&chunk.take_unsent()[..], b"PUB a 1\r\nx\r\n");
        chunk.bytes = BytesMut::from(&b"PUB a 1\r\nx\r\nPING\r\n"[..]);
        chunk.written = 14;
        chunk.ping_at = Some(12);
        assert!(chunk.take_unsent().is_empty());
    }

    #[test]
    fn cut_frame_rest_completes_the_op_in_progress() {
        let buf = &b"PUB a 3\r\nabc\r\nPING\r\n"[..];
        let mut chunk = Chunk {
            bytes: BytesMut::from(buf),
            written: 0,
            waiters: None,
            ping_at: None,
        };
        for written in 0..=buf.len() {
            chunk.written = written;
            let expected = match written {
                1..=13 => Some(written..14),
                15..=19 => Some(written..20),
                _ => None, // 0, 14, 20: op boundaries
            };
            assert_eq!(chunk.cut_frame_rest(), expected, "written {written}");
        }
    }
}
