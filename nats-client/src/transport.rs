//! The byte stream under a connection: plain TCP or TLS over TCP.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A connected stream.
pub(crate) enum Transport {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// An in-memory pipe to a scripted server (tests only, see `crate::memory`).
    #[cfg(test)]
    Memory(tokio::io::DuplexStream),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            // rustls copies into its records either way.
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Tcp(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
            #[cfg(test)]
            Transport::Memory(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The reading side of a connected stream. Plain TCP shares the socket (no lock between the
/// halves); TLS needs one session for both directions, so it goes through tokio's split.
pub(crate) enum Reader {
    Tcp(Arc<TcpStream>),
    /// TLS (or an in-memory pipe): one stream for both directions, split by tokio.
    Split(ReadHalf<Transport>),
}

/// The writing side of a connected stream (see [`Reader`]).
pub(crate) enum Writer {
    Tcp(Arc<TcpStream>),
    Split(WriteHalf<Transport>),
}

impl Transport {
    /// Splits the stream.
    pub fn into_halves(self) -> (Reader, Writer) {
        match self {
            Transport::Tcp(s) => {
                let s = Arc::new(s);
                (Reader::Tcp(s.clone()), Writer::Tcp(s))
            }
            other => {
                let (rd, wr) = tokio::io::split(other);
                (Reader::Split(rd), Writer::Split(wr))
            }
        }
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let s = match self.get_mut() {
            Reader::Tcp(s) => s,
            Reader::Split(r) => return Pin::new(r).poll_read(cx, buf),
        };
        loop {
            ready!(s.poll_read_ready(cx))?;
            let want = buf.remaining();
            let mut got = 0;
            // A read that did not fill the buffer drained the socket: report "would block" to
            // the outer `try_io` so readiness is cleared now, sparing the next read's EAGAIN
            // system call (what tokio's own `TcpStream::poll_read` does).
            let result = s.try_io(Interest::READABLE, || {
                got = s.try_read_buf(buf)?;
                if got > 0 && got < want {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(())
                }
            });
            match result {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => {
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let s = match self.get_mut() {
            Writer::Tcp(s) => s,
            Writer::Split(w) => return Pin::new(w).poll_write(cx, buf),
        };
        loop {
            ready!(s.poll_write_ready(cx))?;
            match s.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let s = match self.get_mut() {
            Writer::Tcp(s) => s,
            Writer::Split(w) => return Pin::new(w).poll_write_vectored(cx, bufs),
        };
        loop {
            ready!(s.poll_write_ready(cx))?;
            match s.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Writer::Tcp(_) => true,
            Writer::Split(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            // TCP writes are not buffered in user space.
            Writer::Tcp(_) => Poll::Ready(Ok(())),
            Writer::Split(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            // The socket is shared with the reader: it closes when the last
            // handle is dropped, which the connection task does right after this.
            Writer::Tcp(_) => Poll::Ready(Ok(())),
            Writer::Split(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}
