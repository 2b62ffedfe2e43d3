//! RabbitMQ's topology and routing rules as pure values: no I/O, so every rule is unit-tested
//! and the same value can be stored in a JetStream KV bucket (it is serde) and shared by every
//! process of a service (`docs/amqp-mapping.md` §3).
//!
//! - [`Topology`]: exchanges, queues (with validated [`QueueArguments`]), bindings, consumers;
//!   the AMQP operations with RabbitMQ's answers (idempotent re-declare, 406 on mismatch, 404,
//!   405 for another connection's exclusive queue, 403 for `amq.*` and the default exchange).
//! - [`Topology::route`]: where a publish goes ([`Route`]): direct, topic, fanout, headers
//!   (`x-match` all/any), the default exchange, exchange-to-exchange bindings and alternate
//!   exchanges, each queue once; an empty route is what `mandatory` returns (312).
//! - [`Topology::queue_filters`]: a queue's NATS filters on each exchange stream (design D).
//!
//! ```
//! use amqp_compat::{ExchangeKind, options::*, routing::Topology, types::FieldTable};
//!
//! let mut t = Topology::new();
//! let none = FieldTable::default();
//! t.declare_exchange("logs", ExchangeKind::Topic, ExchangeDeclareOptions::default(), &none).unwrap();
//! t.declare_queue("errors", QueueDeclareOptions::durable(), &none, "conn-1").unwrap();
//! t.bind_queue("errors", "logs", "*.error", &none, "conn-1").unwrap();
//! t.bind_queue("errors", "logs", "db.#", &none, "conn-1").unwrap();
//! let route = t.route("logs", "db.error", None).unwrap();
//! assert_eq!(route.queues.len(), 1); // two bindings match: enqueued once
//! assert!(t.route("logs", "web.info", None).unwrap().is_unroutable());
//! ```

mod args;
mod bindings;
mod entries;
mod filters;
mod headers;
mod index;
mod topology;

pub use args::{Admission, ArgValue, Overflow, QueueArguments, QueueType, StorageTier};
pub use bindings::Route;
pub use entries::{ExchangeEntry, QueueEntry};
pub use filters::SourceFilters;
pub use headers::{headers_match, validate_binding};
pub use topology::{
    Binding, Destination, ExchangeDecl, QueueConsumers, QueueDecl, QueueDeclared, Topology,
    generated_name,
};
