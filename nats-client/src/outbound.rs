//! The shared write buffer: publishers encode straight into it under a short lock, and the
//! connection's writer swaps it out whole. No channel send and no allocation per message.
//! A large payload handed over as `Bytes` is not copied in: it joins the buffer as a segment
//! of its [`Rope`], written out with vectored I/O.
//!
//! While connected, a full buffer makes publishers wait (back-pressure); while disconnected
//! the same buffer is the reconnect buffer, bounded by its own limit, and a publish that does
//! not fit fails with a typed error instead of waiting or growing without bound.

use bytes::{Bytes, BytesMut};
use nats_proto::{Encoder, HeaderMap};

use crate::error::PublishError;
use crate::rope::Rope;

pub(crate) use crate::chunk::{Chunk, Unsent};

/// Payloads handed over as `Bytes` from this size on are kept as segments rather than copied
/// into the buffer (below it, a segment costs more than the copy it saves).
pub(crate) const SHARE_PAYLOADS_FROM: usize = 8 * 1024;

/// A payload to publish: borrowed (copied into the buffer) or shared (a large one is kept as
/// it is, see [`SHARE_PAYLOADS_FROM`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload<'a> {
    Borrowed(&'a [u8]),
    Shared(&'a Bytes),
}

/// Where the connection stands, as publishers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    Connected,
    Disconnected,
    /// `close()` was called: nothing new is accepted; the writer sends what is buffered.
    Closing,
    Closed,
}

/// State behind the write-buffer mutex: a plain value (no I/O), changed only through its
/// methods by publishers, the writer and the connection task. `W` is a flush waiter (a
/// oneshot sender in the client: resolved by the PONG of the PING sent after its data).
pub(crate) struct Outbound<W> {
    buf: Rope,
    state: LinkState,
    encoder: Encoder,
    /// Flush calls registered since the writer last took the buffer.
    flush_waiters: Vec<W>,
    /// A keep-alive PING is wanted with the next chunk even without flush waiters.
    ping_wanted: bool,
    /// PINGs of the server not answered yet: the PONGs go with the next chunk, counted, so
    /// that a lame-duck move can tell which are owed to the old server.
    pongs_owed: usize,
    write_limit: usize,
    reconnect_limit: usize,
    /// The writer found nothing to do and waits: the next producer must wake it. Producers
    /// that find it busy skip the wake-up (it re-checks the buffer before waiting).
    writer_idle: bool,
    /// Messages and payload bytes accepted (counted here, under the lock already held).
    out_msgs: u64,
    out_bytes: u64,
    /// Shared payloads from this size on become segments (see [`SHARE_PAYLOADS_FROM`]).
    share_from: usize,
}

/// The client is closing or closed: nothing new is accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

/// What the writer found (see [`Outbound::take_chunk`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// A chunk to write.
    Chunk,
    /// Nothing buffered and the client is closing: stop.
    Closing,
    /// Nothing to do: wait for a wake-up (the next producer sends one).
    Idle,
}

impl<W> Outbound<W> {
    pub fn new(write_limit: usize, reconnect_limit: usize) -> Self {
        Outbound {
            buf: Rope::with_capacity(64 * 1024),
            state: LinkState::Disconnected,
            encoder: Encoder::default(),
            flush_waiters: Vec::new(),
            ping_wanted: false,
            pongs_owed: 0,
            write_limit,
            reconnect_limit,
            writer_idle: false,
            out_msgs: 0,
            out_bytes: 0,
            share_from: SHARE_PAYLOADS_FROM,
        }
    }

    /// Keeps shared payloads of `size` bytes and more as segments (tests use small ones).
    #[cfg(test)]
    pub fn share_payloads_from(mut self, size: usize) -> Self {
        self.share_from = size;
        self
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// Messages and payload bytes accepted so far.
    pub fn counters(&self) -> (u64, u64) {
        (self.out_msgs, self.out_bytes)
    }

    /// Bytes waiting for the writer.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// `close()`: stops accepting. `false` when it was closing already.
    pub fn close(&mut self) -> bool {
        match self.state {
            LinkState::Closing | LinkState::Closed => false,
            _ => {
                self.state = LinkState::Closing;
                true
            }
        }
    }

    /// Encodes a publish. `Ok(None)`: the buffer is full (connected), wait for space;
    /// `Ok(Some(wake))`: accepted, and the writer must be woken when `wake`. While
    /// disconnected, a publish that does not fit the reconnect buffer fails and leaves it as
    /// it was.
    #[inline]
    pub fn publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: Payload<'_>,
    ) -> Result<Option<bool>, PublishError> {
        let before = self.buf.len();
        let over = match self.state {
            LinkState::Closing | LinkState::Closed => return Err(PublishError::Closed),
            LinkState::Connected => before != 0 && before >= self.write_limit,
            LinkState::Disconnected => false,
        };
        if over {
            return Ok(None);
        }
        let payload = match payload {
            Payload::Shared(b) if b.len() >= self.share_from => {
                return self.publish_shared(subject, reply, headers, b, before);
            }
            Payload::Shared(b) => &b[..],
            Payload::Borrowed(b) => b,
        };
        self.encoder
            .publish(self.buf.tail_mut(), subject, reply, headers, payload)?;
        let size = self.buf.len() - before;
        self.check_reconnect_room(before, size)?;
        Ok(self.accepted(payload.len()))
    }

    /// [`Outbound::publish`] of a large shared payload: its control line (and headers) are
    /// encoded, the payload itself joins the buffer as a segment. Kept out of line, so that
    /// [`Outbound::publish`] stays small enough to inline for small payloads.
    #[inline(never)]
    fn publish_shared(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: &Bytes,
        before: usize,
    ) -> Result<Option<bool>, PublishError> {
        self.encoder
            .publish_head(self.buf.tail_mut(), subject, reply, headers, payload.len())?;
        let size = self.buf.len() - before + payload.len() + 2;
        self.check_reconnect_room(before, size)?;
        self.buf.push_shared(payload.clone());
        self.buf.tail_mut().extend_from_slice(b"\r\n");
        Ok(self.accepted(payload.len()))
    }

    /// While disconnected, an op of `size` bytes (encoded into the tail from `before` on, or
    /// about to be) must fit the reconnect buffer; if not, the tail is cut back to `before`.
    #[inline]
    fn check_reconnect_room(&mut self, before: usize, size: usize) -> Result<(), PublishError> {
        if self.state == LinkState::Disconnected && before + size > self.reconnect_limit {
            self.buf.truncate_tail(before);
            return Err(PublishError::ReconnectBufferFull {
                buffered: before,
                limit: self.reconnect_limit,
                size,
            });
        }
        Ok(())
    }

    /// Counts an accepted message; answers whether the writer must be woken.
    fn accepted(&mut self, payload_len: usize) -> Option<bool> {
        self.out_msgs += 1;
        self.out_bytes += payload_len as u64;
        Some(std::mem::take(&mut self.writer_idle))
    }

    /// Where a SUB or UNSUB goes: the buffer while connected, nowhere while disconnected (the
    /// next connection's re-SUB covers it), and never once closing.
    pub fn control(&mut self) -> Result<(Encoder, Option<&mut BytesMut>), Closed> {
        match self.state {
            LinkState::Closing | LinkState::Closed => Err(Closed),
            LinkState::Connected => Ok((self.encoder, Some(self.buf.tail_mut()))),
            LinkState::Disconnected => Ok((self.encoder, None)),
        }
    }

    /// A flush: its waiter rides the next chunk's PING. Given back once closing.
    pub fn add_flush_waiter(&mut self, waiter: W) -> Result<(), W> {
        if matches!(self.state, LinkState::Closing | LinkState::Closed) {
            return Err(waiter);
        }
        self.flush_waiters.push(waiter);
        Ok(())
    }

    /// A keep-alive PING goes with the next chunk.
    pub fn want_ping(&mut self) {
        self.ping_wanted = true;
    }

    /// Answers a server PING (with the next chunk).
    pub fn pong(&mut self) {
        self.pongs_owed += 1;
    }

    /// The PONGs owed to the current server and not taken by the writer yet: the connection
    /// is handed over, they are the old server's (and lost with a lost connection).
    pub fn take_owed_pongs(&mut self) -> usize {
        std::mem::take(&mut self.pongs_owed)
    }

    /// A new connection is live: `fresh` (its re-SUBs and the last connection's unsent
    /// bytes) goes first, then what was buffered meanwhile, under the new server's limits.
    pub fn go_live(&mut self, encoder: Encoder, fresh: BytesMut) {
        self.encoder = encoder;
        self.buf.prepend(fresh);
        if self.state == LinkState::Disconnected {
            self.state = LinkState::Connected;
        }
    }

    /// The connection is lost: publishes go to the reconnect buffer.
    pub fn go_offline(&mut self) {
        if self.state == LinkState::Connected {
            self.state = LinkState::Disconnected;
        }
    }

    /// Flush calls not proven on the last connection ride the next PING, before newer ones.
    pub fn requeue_flushes(&mut self, mut waiters: Vec<W>) {
        waiters.append(&mut self.flush_waiters);
        self.flush_waiters = waiters;
    }

    /// The writer takes everything buffered into `chunk` (which it has finished), then the
    /// PONGs owed, and a PING at the end when flush calls wait or the keep-alive wants one.
    pub fn take_chunk(&mut self, chunk: &mut Chunk<W>) -> Take {
        if self.has_work() {
            self.writer_idle = false;
            std::mem::swap(&mut self.buf, &mut chunk.bytes);
            let pongs = std::mem::take(&mut self.pongs_owed);
            if pongs > 0 {
                chunk.pongs = Some((chunk.bytes.len(), pongs));
                for _ in 0..pongs {
                    self.encoder.pong(chunk.bytes.tail_mut());
                }
            }
            if !self.flush_waiters.is_empty() || self.ping_wanted {
                chunk.ping_at = Some(chunk.bytes.len());
                self.encoder.ping(chunk.bytes.tail_mut());
                chunk.waiters = Some(std::mem::take(&mut self.flush_waiters));
                self.ping_wanted = false;
            }
            return Take::Chunk;
        }
        if self.state == LinkState::Closing {
            return Take::Closing;
        }
        self.writer_idle = true;
        Take::Idle
    }

    /// The client is closed: nothing is sent any more, flush calls fail.
    pub fn finish(&mut self) {
        self.state = LinkState::Closed;
        self.buf.clear();
        self.flush_waiters.clear();
        self.pongs_owed = 0;
    }

    /// Whether the writer has anything to do.
    fn has_work(&self) -> bool {
        !self.buf.is_empty()
            || !self.flush_waiters.is_empty()
            || self.ping_wanted
            || self.pongs_owed > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outbound = super::Outbound<u32>;
    type Chunk = super::Chunk<u32>;

    fn connected() -> Outbound {
        let mut out = Outbound::new(32, 64);
        out.go_live(Encoder::default(), BytesMut::new());
        out
    }

    #[test]
    fn a_full_buffer_makes_publishers_wait_and_the_writer_frees_it() {
        let mut out = connected();
        assert_eq!(out.take_chunk(&mut Chunk::default()), Take::Idle);
        assert_eq!(
            out.publish("a", None, None, Payload::Borrowed(b"0123456789")),
            Ok(Some(true))
        );
        assert_eq!(
            out.publish("a", None, None, Payload::Borrowed(b"0123456789")),
            Ok(Some(false))
        );
        assert_eq!(
            out.publish("a", None, None, Payload::Borrowed(b"x")),
            Ok(None),
            "over the write limit"
        );
        let mut chunk = Chunk::default();
        assert_eq!(out.take_chunk(&mut chunk), Take::Chunk);
        assert_eq!(chunk.bytes.len(), 2 * b"PUB a 10\r\n0123456789\r\n".len());
        assert!(chunk.waiters.is_none(), "no PING without flush calls");
        assert_eq!(
            out.publish("a", None, None, Payload::Borrowed(b"x")),
            Ok(Some(false))
        );
    }

    #[test]
    fn the_reconnect_buffer_refuses_what_does_not_fit_and_keeps_the_rest() {
        let mut out = Outbound::new(32, 20);
        assert_eq!(
            out.publish("a", None, None, Payload::Borrowed(b"x")),
            Ok(Some(false))
        );
        let before = out.buffered();
        assert!(matches!(
            out.publish("a", None, None, Payload::Borrowed(b"0123456789")),
            Err(PublishError::ReconnectBufferFull { buffered, limit: 20, .. }) if buffered == before
        ));
        assert_eq!(out.buffered(), before);
        assert_eq!(out.counters(), (1, 1));
    }

    #[test]
    fn flush_calls_ride_a_ping_and_unproven_ones_go_first_next_time() {
        let mut out = connected();
        assert!(out.add_flush_waiter(1).is_ok());
        out.publish("a", None, None, Payload::Borrowed(b"x"))
            .expect("accepted");
        let mut chunk = Chunk::default();
        assert_eq!(out.take_chunk(&mut chunk), Take::Chunk);
        assert_eq!(chunk.bytes.tail(), b"PUB a 1\r\nx\r\nPING\r\n");
        assert_eq!(chunk.ping_at, Some(12));
        let unproven = chunk.waiters.take().expect("the flush call rides the PING");
        assert!(out.add_flush_waiter(2).is_ok());
        out.go_offline();
        out.requeue_flushes(unproven);
        assert_eq!(out.flush_waiters, vec![1, 2]);
        assert!(out.close());
        assert!(!out.close());
        assert!(out.add_flush_waiter(3).is_err());
        assert_eq!(out.take_chunk(&mut Chunk::default()), Take::Chunk);
        assert_eq!(out.take_chunk(&mut Chunk::default()), Take::Closing);
    }

    #[test]
    fn go_live_puts_resubscriptions_before_what_was_buffered() {
        let mut out = Outbound::new(1024, 1024);
        out.publish("a", None, None, Payload::Borrowed(b"x"))
            .expect("buffered offline");
        assert!(matches!(out.control(), Ok((_, None))));
        out.go_live(Encoder::default(), BytesMut::from(&b"SUB s 1\r\n"[..]));
        assert_eq!(out.state(), LinkState::Connected);
        let mut chunk = Chunk::default();
        assert_eq!(out.take_chunk(&mut chunk), Take::Chunk);
        assert_eq!(chunk.bytes.tail(), b"SUB s 1\r\nPUB a 1\r\nx\r\n");
    }

    #[test]
    fn a_large_shared_payload_is_a_segment_and_small_ones_are_copied() {
        let mut out = connected().share_payloads_from(8);
        let large = Bytes::from_static(b"0123456789");
        let small = Bytes::from_static(b"abc");
        out.publish("a", None, None, Payload::Shared(&large))
            .expect("accepted");
        out.publish("b", None, None, Payload::Shared(&small))
            .expect("accepted");
        assert!(out.add_flush_waiter(1).is_ok());
        let mut chunk = Chunk::default();
        assert_eq!(out.take_chunk(&mut chunk), Take::Chunk);
        assert!(chunk.bytes.is_segmented());
        let mut slices = [std::io::IoSlice::new(&[]); 8];
        let n = chunk.bytes.slices(0, &mut slices);
        assert_eq!(n, 3, "head, payload, then the tail");
        assert!(
            std::ptr::eq(slices[1].as_ptr(), large.as_ptr()),
            "written from the publisher's Bytes"
        );
        let wire = b"PUB a 10\r\n0123456789\r\nPUB b 3\r\nabc\r\nPING\r\n";
        assert_eq!(chunk.ping_at, Some(wire.len() - 6));
        assert_eq!(chunk.contiguous(), wire);
        assert_eq!(out.counters(), (2, 13));
    }

    #[test]
    fn a_shared_payload_counts_against_the_reconnect_buffer() {
        let mut out = Outbound::new(32, 20).share_payloads_from(8);
        let large = Bytes::from_static(b"0123456789");
        assert!(matches!(
            out.publish("a", None, None, Payload::Shared(&large)),
            Err(PublishError::ReconnectBufferFull {
                buffered: 0,
                limit: 20,
                size: 22
            })
        ));
        assert_eq!(out.buffered(), 0, "nothing of it kept");
        let fits = Bytes::from_static(b"01234567");
        out.publish("a", None, None, Payload::Shared(&fits))
            .expect("fits");
        assert_eq!(out.buffered(), 19);
    }

    #[test]
    fn take_unsent_reads_across_segments() {
        let mut out = connected().share_payloads_from(2);
        for p in [&b"xy"[..], b"zw"] {
            out.publish("a", None, None, Payload::Shared(&Bytes::copy_from_slice(p)))
                .expect("accepted");
        }
        let mut chunk = Chunk::default();
        assert_eq!(out.take_chunk(&mut chunk), Take::Chunk);
        chunk.written = 10; // inside the first payload
        assert_eq!(chunk.cut_frame_rest(), Some(10..13));
        assert_eq!(
            &chunk.take_unsent().bytes[..],
            b"PUB a 2\r\nxy\r\nPUB a 2\r\nzw\r\n"
        );
    }

    #[test]
    fn owed_pongs_end_the_chunk_and_unsent_ones_are_counted_not_resent() {
        let mut out = connected();
        out.publish("a", None, None, Payload::Borrowed(b"x"))
            .expect("accepted");
        out.pong();
        out.pong();
        out.want_ping();
        let mut chunk = Chunk::default();
        assert_eq!(out.take_chunk(&mut chunk), Take::Chunk);
        assert_eq!(
            chunk.bytes.tail(),
            b"PUB a 1\r\nx\r\nPONG\r\nPONG\r\nPING\r\n"
        );
        assert_eq!(out.take_owed_pongs(), 0, "taken with the chunk");
        chunk.written = 15; // inside the first PONG
        let unsent = chunk.take_unsent();
        assert!(
            unsent.bytes.is_empty(),
            "the PUB went out; PONGs are never resent"
        );
        assert_eq!(unsent.pongs, 2);
        out.pong();
        assert_eq!(out.take_owed_pongs(), 1);
        assert_eq!(out.take_chunk(&mut Chunk::default()), Take::Idle);
    }
}
