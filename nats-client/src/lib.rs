//! A tokio NATS client on the sans-IO [`nats_proto`] crate.
//!
//! - [`Client`]: a cheap, cloneable handle: publish, subscribe, request, flush, drain, close.
//! - [`ConnectOptions`]: builder for names, credentials, TLS, limits and reconnect policy.
//! - [`Subscriber`]: a `Stream` of [`Message`]s with bounded pending limits.
//! - [`Publish`] and [`Request`]: a message or request as a value (subject, payload, headers,
//!   reply subject, timeout) for [`Client::send`] and [`Client::request_value`].
//! - Request/reply through one inbox per client: [`Client::request`], [`Client::send_request`]
//!   (pipelining), [`RequestWindow`] (a bounded number in flight, with expiry) and
//!   [`Client::request_many`] (scatter-gather: a stream of replies that ends at a count, a
//!   stall or a deadline).
//! - [`Pool`]: several connections; [`Pool::get_for`] keeps one key on one connection.
//! - Errors: one enum per kind of call, all answering the same questions through
//!   [`ErrorKind`] (`kind()`, `is_timeout()`, `is_closed()`, `is_no_responders()`,
//!   `is_connection_lost()`, `is_buffer_full()`, `is_permission()`).
//! - [`Event`] / [`Statistics`]: what happened to the connection, and counters. Events are
//!   typed ([`DisconnectReason`], [`ServerError`] for every `-ERR`, classified and handled as
//!   the table in [`ServerErrorKind`]'s docs says); [`ConnectOptions::event_callback`] sees
//!   them all, the first `Connected` included.
//! - Faults: only a broken byte stream costs the connection. A well-framed message the client
//!   cannot represent (a subject that is not UTF-8) is counted, reported and handed to its
//!   subscription ([`Subscriber::take_errors`]); header values that are not UTF-8 are
//!   delivered as bytes ([`HeaderValue`]).
//!
//! Publishing encodes straight into the connection's shared write buffer (no channel, no
//! per-message allocation); a full buffer makes publishers wait. One task per connection owns
//! the socket, parses, routes messages, and reconnects through the server pool without losing
//! what was accepted.
//!
//! # Design: the session and its drivers
//! The session's bookkeeping is one plain value with no tokio, sockets or locks in it
//! (`session.rs`, quinn-proto style; its module docs hold the design notes: states, inputs,
//! outputs): the sid table and what is re-sent on a new connection, the PONG FIFO with the
//! flush calls each PING answers for, the keep-alive count, the server's INFO, and, per
//! connection retired after a lame-duck move, its phases and PONG accounting. Its inputs are
//! the events of a connection's life (a user's SUB/UNSUB, "connected", a server op, "the
//! keep-alive timer fired", "the connection is lost", "closed"); its outputs are bytes to
//! write (through nats-proto's `Encoder`), deliveries, events, timers and "close". The
//! connection task (`connection.rs`) and the lame-duck move (`lame_duck.rs`) are drivers:
//! they move bytes and timers and carry out what the session answers. The modules form no
//! import cycle: the drivers depend on the session, never the other way round. The same
//! drivers run over in-memory pipes against scripted servers in the unit tests (`memory.rs`),
//! under tokio's paused clock.
//!
//! # Conventions
//! - **`async` or not**: a call that sends something to the server or waits for it is
//!   `async` (publish, send, respond, subscribe, unsubscribe, request, flush, drain, close).
//!   The exceptions are the handler-subscription calls
//!   ([`Client::subscribe_with_handler`], [`HandlerSubscription::unsubscribe`]), which are
//!   synchronous so that a handler, which runs on the connection task and cannot await, may
//!   use them; they never wait (a SUB or UNSUB is written even past the buffer limit).
//!   Builders and accessors ([`Client::request_many`], [`Client::request_window`],
//!   [`Client::new_inbox`], [`Client::statistics`]) are synchronous.
//! - **Payloads**: the positional calls borrow (`impl AsRef<[u8]>`): the bytes are copied into
//!   the write buffer at once, so any slice, `Vec`, `String` or `Bytes` will do. The values
//!   ([`Publish`], [`Request`], [`Client::request_many`]) own theirs as
//!   [`Bytes`](bytes::Bytes) (`impl Into<Bytes>`: no copy from a `Vec`, `String` or `Bytes`),
//!   as does the `jetstream` crate, which keeps a payload to send it again.
//!   [`Client::publish_bytes`] takes a `Bytes` positionally. A payload handed over as `Bytes`
//!   of [`Client::SHARED_PAYLOAD_MIN`] (8 KiB) or more is not copied into the write buffer:
//!   it is held by reference count and written from where it is (vectored writes).
//! - **Subjects**: [`subject::matches`] is the matcher the server uses (`*` one token, `>` the
//!   rest), for the layers above that route by subject.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use nats_client::Publish;
//! let client = nats_client::connect("nats://127.0.0.1:4222").await?;
//! let mut sub = client.subscribe("greet.*").await?;
//! client.publish("greet.joe", "hello").await?;
//! client.send(Publish::new("greet.ann", "hi").header("X-Lang", "en")).await?;
//! let msg = sub.next().await.unwrap();
//! assert_eq!(&msg.payload[..], b"hello");
//! # Ok(()) }
//! ```

mod addr;
mod auth;
mod chunk;
mod client;
mod connection;
mod error;
mod error_kind;
mod events;
mod handler;
mod handshake;
mod inbox;
mod lame_duck;
#[cfg(test)]
mod memory;
#[cfg(test)]
mod memory_tests;
mod message;
mod options;
mod outbound;
mod pool;
mod publish;
mod reconnect;
mod request;
mod request_many;
mod rope;
mod server_error;
mod server_pool;
mod session;
mod shared;
mod stats;
mod sub_queue;
mod subscription;
mod tls;
mod transport;

pub use addr::{DEFAULT_PORT, ServerAddr, ToServerAddrs};
pub use auth::{Auth, AuthCallback, AuthFuture};
pub use client::{Client, State};
pub use error::{ClientError, ConnectError, PublishError, RequestError};
pub use error_kind::ErrorKind;
pub use events::{DisconnectReason, Event};
pub use handler::HandlerSubscription;
pub use message::Message;
pub use nats_proto::{self, BadMsg, HeaderMap, HeaderValue, ServerInfo, StatusCode, subject};
pub use options::ConnectOptions;
pub use pool::{Pool, PoolStatistics};
pub use publish::Publish;
pub use reconnect::Backoff;
pub use request::{ReplyFuture, Request, RequestWindow};
pub use request_many::{Replies, RepliesEnd, RequestMany};
pub use server_error::{PermissionOperation, ServerError, ServerErrorKind};
pub use stats::Statistics;
pub use sub_queue::SubscriptionError;
pub use subscription::Subscriber;

/// Connects with default options to the given server(s): a URL such as
/// `nats://127.0.0.1:4222`, a comma-separated list, or a list.
pub async fn connect<A: ToServerAddrs + ?Sized>(addrs: &A) -> Result<Client, ConnectError> {
    ConnectOptions::new().connect(addrs).await
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data consistent
/// at each step, so a panic elsewhere must not wedge the connection.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
