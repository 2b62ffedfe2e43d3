//! A lapin-shaped AMQP layer over NATS and JetStream, so services leaving RabbitMQ port with
//! little more than new imports: `use lapin as amqp` becomes `use amqp_compat as amqp`.
//!
//! Built so far (the pure foundations; `docs/amqp-mapping.md` has the whole design):
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
pub mod confirmation;
pub mod connection_properties;
pub mod dead_letter;
pub mod error;
pub mod exchange;
pub mod expiration;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod options;
pub mod routing;
pub mod subject;
pub mod uri;

pub use confirmation::Confirmation;
pub use connection_properties::ConnectionProperties;
pub use error::{ChannelState, ConnectionState, Error, ErrorKind, Result};
pub use exchange::ExchangeKind;
pub use message::{Acker, BasicGetMessage, BasicReturnMessage, Delivery};
pub use subject::SubjectMapper;
pub use uri::ConnectionUri;
