//! The chunk the writer has taken from the write buffer and is sending: its bytes, how far
//! the socket took them, and where the PING and the PONGs at its end start, so that when the
//! connection fails (or moves, lame duck) it is known exactly which ops never left.

use bytes::BytesMut;
use nats_proto::client_frame::{cut_frame_end, frame_start_at};

use crate::rope::Rope;

/// `PONG\r\n`: the PONGs owed to the server go out together at the end of a chunk.
const PONG_LEN: usize = 6;

/// The chunk the writer is sending, kept outside the write future so that, when the socket
/// fails, the supervisor knows exactly which bytes never left.
pub(crate) struct Chunk<W> {
    pub bytes: Rope,
    pub written: usize,
    /// Flush waiters whose PING ends this chunk; they move to the PONG queue once it is sent.
    pub waiters: Option<Vec<W>>,
    /// Where that PING starts in `bytes` (it is left out when the chunk is sent again).
    pub ping_at: Option<usize>,
    /// Where the PONGs owed to the server start, and how many (never sent to another).
    pub pongs: Option<(usize, usize)>,
}

impl<W> Default for Chunk<W> {
    fn default() -> Self {
        Chunk {
            bytes: Rope::default(),
            written: 0,
            waiters: None,
            ping_at: None,
            pongs: None,
        }
    }
}

/// What a connection never sent (see [`Chunk::take_unsent`]).
#[derive(Debug, Default)]
pub(crate) struct Unsent {
    /// Ops to send on the next connection, whole.
    pub bytes: BytesMut,
    /// PONGs owed to the server that were not (completely) sent.
    pub pongs: usize,
}

impl<W> Chunk<W> {
    /// Ready for the next chunk: the flush waiters of the PING just sent, if any.
    pub fn finished(&mut self) -> Option<Vec<W>> {
        self.bytes.clear();
        self.written = 0;
        self.ping_at = None;
        self.pongs = None;
        self.waiters.take()
    }

    pub fn is_done(&self) -> bool {
        self.written >= self.bytes.len()
    }

    /// When the socket stopped inside an op (part of it written): the range of bytes that
    /// completes it, in [`Chunk::contiguous`] (the chunk is made contiguous: a rare path).
    pub fn cut_frame_rest(&mut self) -> Option<std::ops::Range<usize>> {
        let bytes = self.bytes.make_contiguous();
        cut_frame_end(bytes, self.written).map(|end| self.written..end)
    }

    /// The chunk's bytes as one slice (copied together if they were segments).
    pub fn contiguous(&mut self) -> &[u8] {
        self.bytes.make_contiguous()
    }

    /// The unsent part of the chunk, starting at the first op that was not completely written
    /// (an op cut in half by the failure is sent again whole: the server dropped its part).
    /// The PING and PONGs at its end are not in it: they were for this connection's server.
    pub fn take_unsent(&mut self) -> Unsent {
        let bytes = self.bytes.make_contiguous();
        let from = frame_start_at(bytes, self.written);
        let mut rest = bytes.split_off(0);
        // The trailing PING of flush waiters, when not fully sent: they ride the next one.
        if let Some(at) = self.ping_at.take()
            && at >= from
        {
            rest.truncate(at);
        }
        let mut pongs = 0;
        if let Some((at, count)) = self.pongs.take() {
            let end = at + count * PONG_LEN;
            let start = at.max(from);
            if start < end {
                pongs = (end - start) / PONG_LEN;
                rest.truncate(start);
            }
        }
        let _ = rest.split_to(from.min(rest.len()));
        self.written = 0;
        Unsent { bytes: rest, pongs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Chunk = super::Chunk<u32>;

    #[test]
    fn take_unsent_keeps_the_cut_frame() {
        let mut chunk = Chunk {
            bytes: BytesMut::from(&b"PUB a 1\r\nx\r\nPUB b 1\r\ny\r\n"[..]).into(),
            written: 15,
            waiters: None,
            ping_at: None,
            pongs: None,
        };
        assert_eq!(&chunk.take_unsent().bytes[..], b"PUB b 1\r\ny\r\n");
    }

    #[test]
    fn take_unsent_leaves_out_a_cut_flush_ping() {
        let mut chunk = Chunk {
            bytes: BytesMut::from(&b"PUB a 1\r\nx\r\nPING\r\n"[..]).into(),
            written: 5,
            waiters: None,
            ping_at: Some(12),
            pongs: None,
        };
        assert_eq!(&chunk.take_unsent().bytes[..], b"PUB a 1\r\nx\r\n");
        chunk.bytes = BytesMut::from(&b"PUB a 1\r\nx\r\nPING\r\n"[..]).into();
        chunk.written = 14;
        chunk.ping_at = Some(12);
        assert!(chunk.take_unsent().bytes.is_empty());
    }

    #[test]
    fn cut_frame_rest_completes_the_op_in_progress() {
        let buf = &b"PUB a 3\r\nabc\r\nPING\r\n"[..];
        let mut chunk = Chunk {
            bytes: BytesMut::from(buf).into(),
            written: 0,
            waiters: None,
            ping_at: None,
            pongs: None,
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
