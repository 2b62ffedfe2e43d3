//! Sans-IO NATS wire protocol: bytes in, [`ServerOp`](crate) values out; client ops in, bytes out.
//!
//! This crate has no tokio and no sockets. The connection task in `nats-client` feeds it the
//! bytes it reads and writes out the bytes it encodes.
