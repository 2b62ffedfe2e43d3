//! Where client ops begin and end in a buffer of them (what the [`Encoder`](crate::Encoder)
//! wrote), without building the ops.
//!
//! A client that writes its buffer to a socket may be stopped part-way (the connection fails,
//! or it moves to another server). It must then know which op the cut fell in: the rest of that
//! op completes it on a healthy connection, or the whole op is sent again on a new one. Only
//! the control line is read: PUB and HPUB carry their total size as the last argument; every
//! other op is one line.

/// Length of the client op at the front of `buf`, found from its control line alone: the line,
/// plus payload and CRLF for PUB/HPUB. The op itself may extend past the end of `buf`.
///
/// `None` when the control line is not complete, or when a PUB/HPUB line has no readable size
/// (not something the encoder writes). Ops are matched case-insensitively and arguments may be
/// separated by tabs, as the server reads them.
///
/// ```
/// use nats_proto::client_frame::client_frame_len;
/// assert_eq!(client_frame_len(b"PUB a 3\r\nabc\r\nPING\r\n"), Some(14));
/// assert_eq!(client_frame_len(b"PING\r\nPUB a 3\r\n"), Some(6));
/// assert_eq!(client_frame_len(b"HPUB a 12 14\r\n"), Some(14 + 14 + 2));
/// assert_eq!(client_frame_len(b"PUB a 3"), None);
/// ```
pub fn client_frame_len(buf: &[u8]) -> Option<usize> {
    let nl = memchr::memchr(b'\n', buf)?;
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let word_end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let word = &line[..word_end];
    if !word.eq_ignore_ascii_case(b"PUB") && !word.eq_ignore_ascii_case(b"HPUB") {
        return Some(nl + 1);
    }
    let size_text = line
        .rsplit(|&b| b == b' ' || b == b'\t')
        .find(|a| !a.is_empty())?;
    if size_text.is_empty() || !size_text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size: usize = std::str::from_utf8(size_text).ok()?.parse().ok()?;
    // Checked: a size from a hostile buffer must not wrap around.
    (nl + 1).checked_add(size)?.checked_add(2)
}

/// Offset of the op that contains byte `pos` of `buf` (a buffer of whole client ops), or
/// `buf.len()` when `pos` is at or past the end.
///
/// When a control line cannot be read (not encoder output), the answer is the start of that
/// line: a caller resending from there loses nothing.
///
/// ```
/// use nats_proto::client_frame::frame_start_at;
/// let buf = b"PUB a 3\r\nabc\r\nPING\r\n";
/// assert_eq!(frame_start_at(buf, 0), 0);
/// assert_eq!(frame_start_at(buf, 13), 0);
/// assert_eq!(frame_start_at(buf, 14), 14);
/// assert_eq!(frame_start_at(buf, 20), 20);
/// ```
pub fn frame_start_at(buf: &[u8], pos: usize) -> usize {
    let mut start = 0;
    while start < buf.len() {
        let Some(end) = client_frame_len(&buf[start..]).and_then(|len| start.checked_add(len))
        else {
            return start;
        };
        if end > pos {
            return start;
        }
        start = end;
    }
    buf.len()
}

/// When byte `pos` of `buf` lies strictly inside an op (the op began before it): where that op
/// ends. `None` at an op boundary, at the end, or when the op cannot be read.
///
/// ```
/// use nats_proto::client_frame::cut_frame_end;
/// let buf = b"PUB a 3\r\nabc\r\nPING\r\n";
/// assert_eq!(cut_frame_end(buf, 5), Some(14));
/// assert_eq!(cut_frame_end(buf, 14), None);
/// assert_eq!(cut_frame_end(buf, 16), Some(20));
/// ```
pub fn cut_frame_end(buf: &[u8], pos: usize) -> Option<usize> {
    let start = frame_start_at(buf, pos);
    if start >= pos {
        return None;
    }
    start.checked_add(client_frame_len(&buf[start..])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_point_is_a_frame_boundary() {
        let buf = b"PUB a 3\r\nabc\r\nSUB b 1\r\nHPUB c 12 14\r\nNATS/1.0\r\n\r\nxy\r\nPING\r\n";
        let boundaries = [0usize, 14, 23, 53];
        for pos in 0..buf.len() {
            let start = frame_start_at(buf, pos);
            assert!(boundaries.contains(&start), "pos {pos} -> {start}");
            assert!(start <= pos);
            let next = boundaries
                .iter()
                .find(|&&b| b > start)
                .copied()
                .unwrap_or(buf.len());
            assert!(pos < next, "pos {pos} must lie in the frame at {start}");
        }
        assert_eq!(frame_start_at(buf, buf.len()), buf.len());
    }

    #[test]
    fn case_and_tabs_as_the_server_reads_them() {
        assert_eq!(client_frame_len(b"pub\ta\t3\r\nabc\r\n"), Some(14));
        assert_eq!(client_frame_len(b"Hpub a 0 2\r\n\r\n\r\n"), Some(12 + 4));
        assert_eq!(client_frame_len(b"PUBLISH x\r\n"), Some(11));
    }

    #[test]
    fn unreadable_sizes_are_not_guessed() {
        assert_eq!(client_frame_len(b"PUB a x\r\n"), None);
        assert_eq!(client_frame_len(b"PUB a -1\r\n"), None);
        assert_eq!(
            client_frame_len(b"PUB a 99999999999999999999999999\r\n"),
            None
        );
        assert_eq!(
            client_frame_len(format!("PUB a {}\r\n", usize::MAX).as_bytes()),
            None
        );
        assert_eq!(frame_start_at(b"PING\r\nPUB a x\r\nPING\r\n", 12), 6);
    }
}
