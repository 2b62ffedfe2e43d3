//! JetStream over [`nats_client`]: streams, consumers, publish acks, pull consumers, message
//! acks, and a dead-letter worker.
//!
//! - [`Context`] ([`new`]): the API prefix or domain, timeouts, account info; stream and
//!   consumer administration ([`Context::create_stream`], [`Context::create_consumer`], ...).
//! - Publishing: [`Context::publish`] waits for the [`PubAck`]; [`Context::publish_async`]
//!   keeps a bounded window of acks in flight; [`PublishOptions`] sets the dedup id and the
//!   expectations the stream checks; [`PublishOptions::ttl`] gives one message its own time
//!   to live (`Nats-TTL`).
//! - Pulling: [`Consumer::fetch`] for a batch, [`Consumer::messages`] for a stream with idle
//!   heartbeats and re-pulls after reconnects and consumer leader changes; [`JsMessage`]
//!   acks (`ack`, `double_ack`, `nak`, `in_progress`, `term`) and carries [`MessageInfo`].
//! - Priority groups ([`PriorityPolicy`], [`PriorityGroup`]): a pinned-client consumer is
//!   RabbitMQ's single active consumer ([`Consumer::pin_id`], [`Consumer::unpin`]).
//! - Consumer controls: [`Consumer::reset`] (a per-queue purge), [`Consumer::pause`],
//!   [`Consumer::resume`].
//! - [`kv`]: key-value buckets interoperable with nats.go and nats-py (get, put, create,
//!   compare-and-set update, delete, purge, history, keys, watch).
//! - [`Context::ordered_messages`]: an ordered consumer, every message once and in order,
//!   re-created on gaps, missed heartbeats and reconnects.
//! - Reads: [`Context::stream_info_with`] / [`Context::stream_subjects`] (per-subject counts),
//!   [`Context::direct_get_next`] and [`Context::direct_get_batch`].
//! - [`DeadLetter`]: moves messages that exceeded `max_deliver` or were terminated to a
//!   dead-letter subject, exactly once, for one consumer or every consumer of a stream, with
//!   a [`DeadLetterRouter`] that decides each copy's subject and headers.
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

mod ack_tracker;
mod consume;
mod consumer;
mod consumer_control;
mod context;
mod direct;
mod dlq;
mod error;
pub mod kv;
mod message;
pub mod models;
mod ordered;
mod priority;
mod publish;
mod publisher;
mod pull;
mod puller;
mod stored;
mod stream;

pub use consume::{ConsumeOptions, Messages};
pub use consumer::Consumer;
pub use consumer_control::{ConsumerPause, ConsumerReset};
pub use context::{
    Context, DEFAULT_API_PREFIX, DEFAULT_PUBLISH_RETRY_FOR, DEFAULT_PUBLISH_WINDOW, DEFAULT_TIMEOUT,
};
pub use direct::DirectGet;
pub use dlq::{
    DeadLetter, DeadLetterConfig, DeadLetterHandle, DeadLetterOutcome, DeadLetterReason,
    DeadLetterRecord, DeadLetterRouter, DeadLetterStats, Route, StandardRoute,
    headers as dlq_headers,
};
pub use error::{ApiError, ErrorCode, JetStreamError};
pub use message::{AckKind, JsMessage, MessageInfo};
pub use models::{
    AccountInfo, AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, DiscardPolicy, Page,
    PriorityGroupState, PriorityPolicy, ReplayPolicy, RetentionPolicy, StorageType, StreamConfig,
    StreamInfo, StreamState,
};
pub use ordered::{OrderedConsumerConfig, OrderedMessages};
pub use priority::{PIN_ID_HEADER, PriorityGroup};
pub use publish::{InvalidTtl, PubAck, PublishOptions};
pub use publisher::{PublishAckFuture, STREAM_LEADER_ELECTED};
pub use pull::FetchOptions;
pub use stored::StoredMessage;
pub use stream::{Purge, Stream, StreamInfoOptions};

/// A JetStream [`Context`] with the default API prefix over `client`.
pub fn new(client: nats_client::Client) -> Context {
    Context::new(client)
}
