//! A lapin-shaped AMQP layer over NATS and JetStream, so services leaving RabbitMQ port with
//! little more than new imports: `use lapin as amqp` becomes `use amqp_compat as amqp`.
//!
//! Over NATS: [`Connection`] (`connect(uri, ConnectionProperties)`, `create_channel`, `close`),
//! [`Channel`] (exchanges, queues, bindings, `basic_publish` -> [`PublisherConfirm`],
//! `basic_consume` -> [`Consumer`], qos, ack/nack/reject, get, cancel, confirms), [`Queue`];
//! the topology shared through a KV bucket ([`store`]), a stream per queue ([`storage`], design
//! B) or a consumer on an exchange stream ([`exchange_storage`], design D); RabbitMQ's direct
//! reply-to on core NATS ([`direct_reply`]). `examples/wire.rs` runs Wire's usage end to end.
//!
//! The pure foundations (`docs/amqp-mapping.md` has the whole design):
//! - lapin 4.12's data types: [`types`] (amq-protocol-types), [`BasicProperties`], the option
//!   structs in [`options`], [`ExchangeKind`], [`Confirmation`], the messages in [`message`],
//!   [`Error`]/[`ErrorKind`] with AMQP reply codes, [`ConnectionProperties`];
//! - [`uri`]: `amqp://` and `nats://` URLs -> NATS servers, credentials, namespace;
//! - [`expiration`]: the `expiration` property as RabbitMQ parses it, and effective TTLs;
//! - [`dead_letter`]: dead-letter targets and `x-death` headers, as RabbitMQ writes them;
//! - [`acks`]: a channel's delivery tags and RabbitMQ's ack/nack/reject rules;
//! - [`subject`]: the [`SubjectMapper`] from AMQP names to NATS subjects and filters;
//! - [`routing`]: RabbitMQ's topology and routing rules as pure values.
//!
//! ```
//! use amqp_compat::{ExchangeKind, SubjectMapper};
//!
//! let m = SubjectMapper::wire(None).unwrap();
//! assert_eq!(m.publish_subject("user-notifications", "u1.c1"), "user.notifications.u1.c1");
//! assert_eq!(m.publish_subject("logs", "a..*"), "x.logs.a.~.~2A");
//! let f = m.binding_filter("logs", &ExchangeKind::Topic, "a.#");
//! assert_eq!(f.subjects, ["x.logs.a", "x.logs.a.>"]);
//! ```

/// lapin's AMQP value types (`FieldTable`, `AMQPValue`, `ShortString`, `LongString`, ...):
/// the `amq-protocol-types` crate, re-exported as lapin does.
pub use amq_protocol_types as types;

/// lapin's message properties (`with_content_type`, `with_expiration`, ...).
pub use amq_protocol::protocol::BasicProperties;
/// AMQP errors with reply codes, as carried by [`ErrorKind::ProtocolError`].
pub use amq_protocol::protocol::{AMQPError, AMQPErrorKind, AMQPHardError, AMQPSoftError};

pub mod acks;
pub mod channel;
mod checkpoint;
pub mod confirmation;
pub mod connection;
pub mod connection_properties;
pub mod consume;
pub mod dead_letter;
pub mod direct_reply;
pub mod envelope;
pub mod error;
pub mod exchange;
pub mod exchange_storage;
pub mod expiration;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod local_consume;
mod local_queue;
pub mod message;
pub mod options;
mod placement;
pub mod publish;
mod pull_loop;
pub mod queue;
pub mod routing;
pub mod storage;
pub mod store;
pub mod subject;
pub mod uri;

pub use channel::Channel;
pub use confirmation::Confirmation;
pub use connection::Connection;
pub use connection_properties::ConnectionProperties;
pub use consume::Consumer;
pub use error::{ChannelState, ConnectionState, Error, ErrorKind, Result};
pub use exchange::ExchangeKind;
pub use message::{Acker, BasicGetMessage, BasicReturnMessage, Delivery};
pub use publish::PublisherConfirm;
pub use queue::Queue;
pub use subject::SubjectMapper;
pub use uri::ConnectionUri;
