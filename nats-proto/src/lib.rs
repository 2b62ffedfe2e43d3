//! Sans-IO NATS wire protocol: bytes in, [`ServerOp`] values out; client ops in, bytes out.
//!
//! This crate has no tokio and no sockets. The connection task in `nats-client` feeds the
//! [`Parser`] the bytes it reads and writes out what the [`Encoder`] puts in its buffer.
//!
//! - [`parser`]: the resumable, zero-copy server-op parser, with limits. Only framing errors
//!   are errors; a well-framed message whose content cannot be read is a
//!   [`ServerOp::BadMsg`] with its bytes, and the stream goes on.
//! - [`encoder`]: PUB/HPUB/SUB/UNSUB/CONNECT/PING/PONG into a `BytesMut`, validated first.
//! - [`client_frame`]: where client ops begin and end in an encoded buffer (to resume or
//!   complete a write cut short).
//! - [`headers`]: [`HeaderMap`] (names and values held losslessly as [`HeaderValue`]) and the
//!   `NATS/1.0 <code> <description>` status line.
//! - [`subject`]: subject, filter and queue-group validation (no protocol injection).
//! - [`info`] / [`connect`]: the INFO and CONNECT JSON bodies.
//! - [`error`]: [`ProtoError`], the one error type.
//!
//! ```
//! use bytes::BytesMut;
//! use nats_proto::{Encoder, Parser, ServerOp};
//!
//! let mut out = BytesMut::new();
//! Encoder::default().publish(&mut out, "greet.joe", None, None, b"hi").unwrap();
//! assert_eq!(&out[..], b"PUB greet.joe 2\r\nhi\r\n");
//!
//! let mut input = BytesMut::from(&b"PING\r\nmsg greet.joe 1 2\r\nhi\r\n"[..]);
//! let mut parser = Parser::new();
//! assert_eq!(parser.parse(&mut input).unwrap(), Some(ServerOp::Ping));
//! assert!(matches!(parser.parse(&mut input).unwrap(), Some(ServerOp::Msg(_))));
//! ```

pub mod client_frame;
pub mod connect;
pub mod encoder;
pub mod error;
pub mod headers;
pub mod info;
pub mod op;
pub mod parser;
pub mod subject;

#[cfg(feature = "arbitrary")]
#[doc(hidden)]
pub mod fuzzing;

pub use bytes;
pub use bytestring::ByteString;
pub use connect::ConnectInfo;
pub use encoder::{Encoder, encode_server_op};
pub use error::ProtoError;
pub use headers::{HeaderBlock, HeaderMap, HeaderValue, StatusCode};
pub use info::ServerInfo;
pub use op::{BadMsg, ClientOp, Msg, ServerOp};
pub use parser::{Parser, ParserLimits};
