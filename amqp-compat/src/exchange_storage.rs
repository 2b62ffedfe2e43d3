//! Design D (`docs/amqp-mapping.md` §4): one Limits stream per exchange, holding every
//! message published to it once, and one light R1 consumer per queue whose `filter_subjects`
//! are the queue's bindings mapped by the [`SubjectMapper`]. A queue uses it when declared with
//! `x-nats-tier: consumer`; it may then be bound to one direct, fanout or topic exchange with
//! exact filters (Wire's client queues: a direct exchange, keys `<uid>` and `<uid>.<cid>`).

use std::time::Duration;

use jetstream::models::{
    AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig,
};
use jetstream::{ErrorCode, JetStreamError};

use crate::error::{Error, Result};
use crate::exchange::ExchangeKind;
use crate::routing::{QueueDecl, SourceFilters, StorageTier, Topology};
use crate::storage::{escape_name, queue_stream};
use crate::store::nats_error;
use crate::subject::SubjectMapper;

/// How long an exchange stream keeps messages (RabbitMQ keeps unconsumed messages forever;
/// a D queue's messages live in the shared stream until this age).
pub const EXCHANGE_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Consumers (D queues) an exchange stream allows: set explicitly, since 2.15 caps the
/// default at 1000.
pub const EXCHANGE_MAX_CONSUMERS: i64 = 1_000_000;
/// How long an unacked delivery of a crashed process stays with it.
const ACK_WAIT: Duration = Duration::from_secs(30 * 60);

/// The stream of exchange `exchange` in `namespace`: `AMQPX_<ns>_<exchange>` (escaped).
pub fn exchange_stream(namespace: Option<&str>, exchange: &str) -> String {
    queue_stream(namespace, exchange).replacen("AMQPQ_", "AMQPX_", 1)
}

/// The consumer of queue `queue` on its exchange's stream.
pub fn queue_consumer(queue: &str) -> String {
    let name = escape_name(queue);
    match name.len() > 200 {
        false => format!("q_{name}"),
        true => format!("q_H{:016x}", crate::storage::fnv(queue)),
    }
}

/// The single source of a D queue after a binding change, or 406 when the bindings need
/// what a D queue cannot do (several exchanges, inexact filters, headers exchanges).
pub fn d_source(
    t: &Topology,
    queue: &str,
    mapper: &SubjectMapper,
) -> Result<Option<SourceFilters>> {
    let mut sources = t.queue_filters(queue, mapper);
    let refuse = |why: &str| {
        Err(Error::precondition_failed(format!(
            "queue '{queue}' in vhost '/' has x-nats-tier 'consumer': {why}"
        )))
    };
    if sources.len() > 1 {
        return refuse("it can be bound to one exchange only");
    }
    let Some(s) = sources.pop() else {
        return Ok(None);
    };
    let kind = t.exchange(&s.exchange).map(|x| x.kind.clone());
    if !s.exact || matches!(kind, Some(ExchangeKind::Headers) | None) {
        return refuse(
            "its bindings need exact subject filters (no headers exchange, no '#' inside a pattern)",
        );
    }
    Ok(Some(s))
}

/// True when `decl` is a design-D queue.
pub fn is_d(decl: &QueueDecl) -> bool {
    decl.tier == StorageTier::Consumer
}

fn not_found(e: &JetStreamError) -> bool {
    e.is_api(ErrorCode::STREAM_NOT_FOUND) || e.is_api(ErrorCode::CONSUMER_NOT_FOUND)
}

/// Creates the stream of `exchange` if absent.
pub(crate) async fn ensure_exchange_stream(
    js: &jetstream::Context,
    mapper: &SubjectMapper,
    exchange: &str,
) -> Result<String> {
    let name = exchange_stream(mapper.namespace(), exchange);
    match js.stream_info(&name).await {
        Ok(_) => return Ok(name),
        Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => {}
        Err(e) => return Err(nats_error(e)),
    }
    let prefix = mapper.exchange_prefix(exchange);
    let config = |replicas| StreamConfig {
        name: name.clone(),
        description: Some(format!("amqp-compat exchange {exchange}")),
        subjects: vec![prefix.clone(), format!("{prefix}.>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: replicas,
        max_consumers: EXCHANGE_MAX_CONSUMERS,
        max_age: EXCHANGE_MAX_AGE,
        allow_msg_ttl: true,
        ..StreamConfig::default()
    };
    match js.create_stream(config(3)).await {
        Ok(_) => Ok(name),
        Err(_) => match js.create_stream(config(1)).await {
            Ok(_) => Ok(name),
            // Another process created it meanwhile.
            Err(_) if js.stream_info(&name).await.is_ok() => Ok(name),
            Err(e) => Err(nats_error(e)),
        },
    }
}

/// Makes the queue's consumer match `source` (created at the first binding, delivering only
/// what is published from then on; filters updated in place; deleted when unbound).
pub(crate) async fn sync_consumer(
    js: &jetstream::Context,
    mapper: &SubjectMapper,
    decl: &QueueDecl,
    source: Option<&SourceFilters>,
) -> Result<()> {
    let name = queue_consumer(&decl.name);
    let Some(source) = source else {
        return Ok(());
    };
    let stream = exchange_stream(mapper.namespace(), &source.exchange);
    let config = ConsumerConfig {
        durable_name: Some(name.clone()),
        deliver_policy: DeliverPolicy::New,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: -1,
        max_waiting: 4096,
        filter_subjects: source.subjects.clone(),
        num_replicas: 1,
        memory_storage: decl.exclusive_owner.is_some() || !decl.durable,
        ..ConsumerConfig::default()
    };
    // One request whether the consumer exists or not (only `filter_subjects` changes on a
    // rebind); the exchange's stream is created when the first binding finds it missing.
    match js.create_or_update_consumer(&stream, config.clone()).await {
        Ok(_) => return Ok(()),
        Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => {}
        Err(e) => return Err(nats_error(e)),
    }
    ensure_exchange_stream(js, mapper, &source.exchange).await?;
    js.create_or_update_consumer(&stream, config)
        .await
        .map(drop)
        .map_err(nats_error)
}

/// The D queue's consumer on `exchange`'s stream, if it exists.
pub(crate) async fn queue_puller(
    js: &jetstream::Context,
    mapper: &SubjectMapper,
    queue: &str,
    exchange: &str,
) -> Result<Option<jetstream::Consumer>> {
    let stream = exchange_stream(mapper.namespace(), exchange);
    match js.get_consumer(&stream, &queue_consumer(queue)).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(nats_error(e)),
    }
}

/// The consumer that delivers a design-B queue's stream (`storage::queue_stream`) to its
/// AMQP consumers.
pub const QUEUE_STREAM_CONSUMER: &str = "amqp";

/// Messages ready for the D queue (its consumer's pending count).
pub(crate) async fn message_count(
    js: &jetstream::Context,
    mapper: &SubjectMapper,
    queue: &str,
    exchange: &str,
) -> Result<u32> {
    let stream = exchange_stream(mapper.namespace(), exchange);
    match js.consumer_info(&stream, &queue_consumer(queue)).await {
        Ok(info) => Ok(u32::try_from(info.num_pending).unwrap_or(u32::MAX)),
        Err(e) if not_found(&e) => Ok(0),
        Err(e) => Err(nats_error(e)),
    }
}

/// Deletes the D queue's consumer (absent is fine).
pub(crate) async fn delete_consumer(
    js: &jetstream::Context,
    mapper: &SubjectMapper,
    queue: &str,
    exchange: &str,
) -> Result<()> {
    let stream = exchange_stream(mapper.namespace(), exchange);
    match js.delete_consumer(&stream, &queue_consumer(queue)).await {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(nats_error(e)),
    }
}
