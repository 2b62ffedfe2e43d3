//! The write buffer's bytes: a run of shared segments (large payloads kept as the `Bytes`
//! their publisher handed over, and the encoded bytes between them, frozen) followed by a
//! tail that small ops are encoded into. Logically one byte string: offsets into a rope
//! (what was written, where a PING starts) count from its first byte.
//!
//! A large payload costs a copy into the write buffer and another into the socket; kept as a
//! segment and written with vectored I/O it is copied once, by the kernel. Small ops are
//! still copied into the tail: one copy of a few bytes is cheaper than a segment.
//!
//! The rare paths that must read ops back (a connection lost or handed over mid-chunk) make
//! the rope contiguous first ([`Rope::make_contiguous`]): a copy, but only then.

use std::io::IoSlice;

use bytes::{Bytes, BytesMut};

#[derive(Debug, Default)]
pub(crate) struct Rope {
    /// Frozen segments, in order, before the tail; never empty ones.
    segments: Vec<Bytes>,
    /// Their total length.
    segments_len: usize,
    tail: BytesMut,
}

impl From<BytesMut> for Rope {
    fn from(tail: BytesMut) -> Self {
        Rope {
            segments: Vec::new(),
            segments_len: 0,
            tail,
        }
    }
}

impl Rope {
    pub fn with_capacity(capacity: usize) -> Self {
        BytesMut::with_capacity(capacity).into()
    }

    pub fn len(&self) -> usize {
        self.segments_len + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it holds shared segments (else it is all in the tail).
    pub fn is_segmented(&self) -> bool {
        !self.segments.is_empty()
    }

    /// Where new small ops are encoded (the end of the rope).
    pub fn tail_mut(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// The tail alone: the whole rope when it is not segmented.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// Appends a shared segment: what the tail holds is frozen before it (the tail keeps the
    /// rest of its allocation for what comes after).
    pub fn push_shared(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            let head = self.tail.split().freeze();
            self.segments_len += head.len();
            self.segments.push(head);
        }
        self.segments_len += bytes.len();
        self.segments.push(bytes);
    }

    /// Cuts the tail back to `len` bytes of the whole rope (`len` must not fall inside the
    /// segments: only what was just encoded into the tail is taken back).
    pub fn truncate_tail(&mut self, len: usize) {
        debug_assert!(len >= self.segments_len, "only the tail is taken back");
        self.tail.truncate(len.saturating_sub(self.segments_len));
    }

    /// Empties it, keeping the tail's allocation.
    pub fn clear(&mut self) {
        self.segments.clear();
        self.segments_len = 0;
        self.tail.clear();
    }

    /// Puts `front` before everything it holds.
    pub fn prepend(&mut self, mut front: BytesMut) {
        if front.is_empty() {
            return;
        }
        if self.segments.is_empty() {
            front.extend_from_slice(&self.tail);
            self.tail = front;
            return;
        }
        self.segments_len += front.len();
        self.segments.insert(0, front.freeze());
    }

    /// Copies the segments into the tail, so the rope is one slice (the rare paths that read
    /// ops back), and answers that slice.
    pub fn make_contiguous(&mut self) -> &mut BytesMut {
        if !self.segments.is_empty() {
            let mut all = BytesMut::with_capacity(self.len());
            for s in self.segments.drain(..) {
                all.extend_from_slice(&s);
            }
            all.extend_from_slice(&self.tail);
            self.tail = all;
            self.segments_len = 0;
        }
        &mut self.tail
    }

    /// Fills `dst` with the slices from byte `from` on, in order; answers how many.
    pub fn slices<'a>(&'a self, from: usize, dst: &mut [IoSlice<'a>]) -> usize {
        let mut skip = from;
        let mut n = 0;
        let parts = self
            .segments
            .iter()
            .map(|s| &s[..])
            .chain(std::iter::once(&self.tail[..]));
        for part in parts {
            if n == dst.len() {
                break;
            }
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            dst[n] = IoSlice::new(&part[skip..]);
            skip = 0;
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gather(rope: &Rope, from: usize, max: usize) -> Vec<u8> {
        let mut slices = vec![IoSlice::new(&[]); max];
        let n = rope.slices(from, &mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    fn sample() -> Rope {
        let mut rope = Rope::with_capacity(16);
        rope.tail_mut().extend_from_slice(b"PUB a 4\r\n");
        rope.push_shared(Bytes::from_static(b"abcd"));
        rope.tail_mut().extend_from_slice(b"\r\nPING\r\n");
        rope
    }

    #[test]
    fn segments_and_tail_read_as_one_byte_string_from_any_offset() {
        let rope = sample();
        let all = b"PUB a 4\r\nabcd\r\nPING\r\n";
        assert_eq!(rope.len(), all.len());
        assert!(rope.is_segmented());
        for from in 0..=all.len() {
            assert_eq!(gather(&rope, from, 8), &all[from..], "from {from}");
        }
        assert_eq!(
            gather(&rope, 0, 2),
            b"PUB a 4\r\nabcd",
            "at most `max` slices"
        );
    }

    #[test]
    fn make_contiguous_keeps_the_bytes_and_their_order() {
        let mut rope = sample();
        rope.prepend(BytesMut::from(&b"SUB s 1\r\n"[..]));
        assert_eq!(
            &rope.make_contiguous()[..],
            b"SUB s 1\r\nPUB a 4\r\nabcd\r\nPING\r\n"
        );
        assert!(!rope.is_segmented());
        rope.prepend(BytesMut::from(&b"X"[..]));
        assert_eq!(rope.tail()[..2], *b"XS");
    }

    #[test]
    fn truncate_tail_takes_back_only_the_tail() {
        let mut rope = sample();
        let before = rope.len();
        rope.tail_mut().extend_from_slice(b"PUB b 1\r\n");
        rope.truncate_tail(before);
        assert_eq!(rope.len(), before);
        rope.clear();
        assert!(rope.is_empty() && !rope.is_segmented());
        rope.push_shared(Bytes::new());
        assert!(!rope.is_segmented(), "no empty segments");
    }
}
