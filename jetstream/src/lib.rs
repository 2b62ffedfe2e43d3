//! JetStream over [`nats_client`]: streams, consumers, publish acks, pull consumers, message
//! acks, and a dead-letter worker.
//!
//! - [`Context`] ([`new`]): the API prefix or domain, timeouts, account info; stream and
//!   consumer administration ([`Context::create_stream`], [`Context::create_consumer`], ...).
//! - Publishing: [`Context::publish`] waits for the [`PubAck`]; [`Context::publish_async`]
//!   keeps a bounded window of acks in flight; [`PublishOptions`] sets the dedup id and the
//!   expectations the stream checks.
//! - Pulling: [`Consumer::fetch`] for a batch, [`Consumer::messages`] for a stream with idle
//!   heartbeats and re-pulls after reconnects; [`JsMessage`] acks (`ack`, `double_ack`,
//!   `nak`, `in_progress`, `term`) and carries [`MessageInfo`].
//! - [`DeadLetter`]: moves messages that exceeded `max_deliver` or were terminated to a
//!   dead-letter subject, exactly once.
//! - Models of the wire API in [`models`]; errors in [`JetStreamError`] and [`ApiError`].
//!   [`JetStreamError::kind`] and its predicates (`is_timeout`, `is_no_responders`,
//!   `is_closed`, ...) answer as the client's errors do ([`nats_client::ErrorKind`]), whatever
//!   layer the failure came from.
//!
//! Payloads are `impl Into<Bytes>` here (a `Vec`, `String` or `Bytes` is kept without a copy,
//! to send it again on a retry), where the client's positional publish borrows
//! (`impl AsRef<[u8]>`, copied into the write buffer at once); the client's
//! [`Publish`](nats_client::Publish) and [`Request`](nats_client::Request) values own
//! `Bytes` too.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use jetstream::{ConsumerConfig, StreamConfig};
//!
//! let client = nats_client::connect("nats://127.0.0.1:4222").await?;
//! let js = jetstream::new(client);
//! let stream = js.create_stream(StreamConfig::new("ORDERS", ["orders.>"])).await?;
//! js.publish("orders.eu", "order 1").await?;
//!
//! let consumer = stream.create_consumer(ConsumerConfig::durable("billing")).await?;
//! let mut messages = consumer.messages().await?;
//! while let Some(msg) = messages.next().await {
//!     let msg = msg?;
//!     println!("{}: {:?}", msg.subject, msg.payload);
//!     msg.ack().await?;
//! }
//! # Ok(()) }
//! ```

mod consume;
mod consumer;
mod context;
mod dlq;
mod error;
mod message;
pub mod models;
mod publish;
mod publisher;
mod pull;
mod stored;
mod stream;

pub use consume::{ConsumeOptions, Messages};
pub use consumer::Consumer;
pub use context::{Context, DEFAULT_API_PREFIX, DEFAULT_PUBLISH_WINDOW, DEFAULT_TIMEOUT};
pub use dlq::{
    DeadLetter, DeadLetterConfig, DeadLetterOutcome, DeadLetterReason, headers as dlq_headers,
};
pub use error::{ApiError, ErrorCode, JetStreamError};
pub use message::{AckKind, JsMessage, MessageInfo};
pub use models::{
    AccountInfo, AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, DiscardPolicy, Page,
    ReplayPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo, StreamState,
};
pub use publish::{PubAck, PublishOptions};
pub use publisher::PublishAckFuture;
pub use pull::FetchOptions;
pub use stored::StoredMessage;
pub use stream::{Purge, Stream};

/// A JetStream [`Context`] with the default API prefix over `client`.
pub fn new(client: nats_client::Client) -> Context {
    Context::new(client)
}
