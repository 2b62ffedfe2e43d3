//! A tokio NATS client on the sans-IO [`nats_proto`] crate.
//!
//! - [`Client`]: a cheap, cloneable handle: publish, subscribe, request, flush, drain, close.
//! - [`ConnectOptions`]: builder for names, credentials, TLS, limits and reconnect policy.
//! - [`Subscriber`]: a `Stream` of [`Message`]s with bounded pending limits.
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
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! let client = nats_client::connect("nats://127.0.0.1:4222").await?;
//! let mut sub = client.subscribe("greet.*").await?;
//! client.publish("greet.joe", "hello").await?;
//! let msg = sub.next().await.unwrap();
//! assert_eq!(&msg.payload[..], b"hello");
//! # Ok(()) }
//! ```

mod addr;
mod auth;
mod client;
mod connection;
mod error;
mod events;
mod handler;
mod handshake;
mod lame_duck;
mod message;
mod options;
mod outbound;
mod pool;
mod reconnect;
mod request;
mod server_error;
mod server_pool;
mod shared;
mod stats;
mod subscription;
mod tls;
mod transport;

pub use addr::{DEFAULT_PORT, ServerAddr, ToServerAddrs};
pub use auth::{Auth, AuthCallback, AuthFuture};
pub use client::{Client, State};
pub use error::{ClientError, ConnectError, PublishError, RequestError};
pub use events::{DisconnectReason, Event};
pub use handler::HandlerSubscription;
pub use message::Message;
pub use nats_proto::{self, BadMsg, HeaderMap, HeaderValue, ServerInfo, StatusCode};
pub use options::ConnectOptions;
pub use pool::{Pool, PoolStatistics};
pub use reconnect::Backoff;
pub use request::ReplyFuture;
pub use server_error::{PermissionOperation, ServerError, ServerErrorKind};
pub use stats::Statistics;
pub use subscription::{Subscriber, SubscriptionError};

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
