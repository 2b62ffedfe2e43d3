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

use crate::checkpoint::{Checkpoints, Floor, Mark, read_mark};
use crate::connection::ConnectionInner;
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
/// How long a durable D queue's consumer lives without pulls (the server removes it; the
/// queue's position is in its checkpoint). Longer than the ack wait (30 minutes): a consumer loop does not
/// pull while its prefetch window is full, and its deliveries must not come again early.
pub const IDLE_CONSUMER: Duration = Duration::from_secs(35 * 60);

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
    let Some(mut s) = sources.pop() else {
        return Ok(None);
    };
    let kind = t.exchange(&s.exchange).map(|x| x.kind.clone());
    if !s.exact || matches!(kind, Some(ExchangeKind::Headers) | None) {
        return refuse(
            "its bindings need exact subject filters (no headers exchange, no '#' inside a pattern)",
        );
    }
    // Copies addressed to the queue by name (default exchange, exchange-to-exchange).
    s.subjects
        .push(mapper.direct_queue_subject(&s.exchange, queue));
    Ok(Some(s))
}

/// True when `decl` is a design-D queue.
pub fn is_d(decl: &QueueDecl) -> bool {
    decl.tier == StorageTier::Consumer
}

fn not_found(e: &JetStreamError) -> bool {
    e.is_api(ErrorCode::STREAM_NOT_FOUND) || e.is_api(ErrorCode::CONSUMER_NOT_FOUND)
}

/// Creates the stream of `exchange` if absent (or adds the subjects of copies addressed to
/// its queues by name to a stream made before them).
pub(crate) async fn ensure_exchange_stream(
    js: &jetstream::Context,
    mapper: &SubjectMapper,
    exchange: &str,
) -> Result<String> {
    let name = exchange_stream(mapper.namespace(), exchange);
    let direct = format!("{}.>", mapper.direct_queue_root(exchange));
    match js.stream_info(&name).await {
        // A stream made before copies were addressed to queues by name gets their subjects.
        Ok(info) if !info.config.subjects.contains(&direct) => {
            let mut config = info.config.clone();
            config.subjects.push(direct);
            js.update_stream(config).await.map_err(nats_error)?;
            return Ok(name);
        }
        Ok(_) => return Ok(name),
        Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => {}
        Err(e) => return Err(nats_error(e)),
    }
    let prefix = mapper.exchange_prefix(exchange);
    let config = |replicas| StreamConfig {
        name: name.clone(),
        description: Some(format!("amqp-compat exchange {exchange}")),
        subjects: vec![prefix.clone(), format!("{prefix}.>"), direct.clone()],
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

/// The configuration of `decl`'s consumer reading `source`, starting at `start`.
///
/// The consumer keeps its state in memory (`crate::checkpoint` says why and how a reset is
/// repaired). A new one starts at a time, not with `DeliverPolicy::New`: a restarted server
/// re-creates it at its configured start, and "new" would then skip what was published
/// before the restart and not yet delivered.
fn consumer_config(
    checkpoints: &Checkpoints,
    decl: &QueueDecl,
    source: &SourceFilters,
    start: Start,
) -> ConsumerConfig {
    let (deliver_policy, opt_start_seq, opt_start_time) = start.policy(|| checkpoints.server_now());
    ConsumerConfig {
        durable_name: Some(queue_consumer(&decl.name)),
        deliver_policy,
        opt_start_seq,
        opt_start_time,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: -1,
        max_waiting: 4096,
        filter_subjects: source.subjects.clone(),
        num_replicas: 1,
        memory_storage: true,
        // A checkpointed consumer nobody pulls from goes (its position is in the checkpoint;
        // it is created again at the next consume).
        inactive_threshold: if checkpointed(decl) {
            IDLE_CONSUMER
        } else {
            Duration::ZERO
        },
        ..ConsumerConfig::default()
    }
}

/// Where a created consumer starts in its exchange's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// With what is published from now on (a new binding, a purge).
    New,
    /// Right after a checkpointed ack floor (a lost consumer re-created).
    After(u64),
    /// From the stream's first message (a lost durable consumer without a checkpoint).
    All,
    /// From a time (a queue bound before its consumer was created).
    Since(time::OffsetDateTime),
}

impl From<Mark> for Start {
    /// Where a queue's consumer starts from its checkpoint.
    fn from(mark: Mark) -> Start {
        match mark {
            Mark::Floor(floor) => Start::After(floor.seq),
            Mark::Since(t) => Start::Since(t),
        }
    }
}

impl Start {
    /// The consumer's deliver policy, start sequence and start time; `New` starts at `now`
    /// (the servers' time), not with `DeliverPolicy::New` (see [`consumer_config`]).
    fn policy(
        self,
        now: impl FnOnce() -> time::OffsetDateTime,
    ) -> (DeliverPolicy, Option<u64>, Option<time::OffsetDateTime>) {
        match self {
            Start::New => (DeliverPolicy::ByStartTime, None, Some(now())),
            Start::Since(t) => (DeliverPolicy::ByStartTime, None, Some(t)),
            Start::After(floor) => (DeliverPolicy::ByStartSequence, Some(floor + 1), None),
            Start::All => (DeliverPolicy::All, None, None),
        }
    }
}

/// Creates `decl`'s consumer reading `source` from `start` and checkpoints its start point.
async fn create_consumer(
    conn: &ConnectionInner,
    stream: &str,
    decl: &QueueDecl,
    source: &SourceFilters,
    start: Start,
) -> Result<jetstream::Consumer> {
    let config = consumer_config(&conn.checkpoints, decl, source, start);
    let consumer = match conn.js.create_consumer(stream, config.clone()).await {
        Ok(c) => c,
        // The stream predates the subjects of copies addressed by name: add them, again.
        Err(e) if e.is_api(ErrorCode::CONSUMER_FILTER_NOT_SUBSET) => {
            ensure_exchange_stream(&conn.js, &conn.mapper, &source.exchange).await?;
            conn.js
                .create_consumer(stream, config)
                .await
                .map_err(nats_error)?
        }
        // Created by another process meanwhile.
        Err(e) if e.is_api(ErrorCode::CONSUMER_ALREADY_EXISTS) => conn
            .js
            .get_consumer(stream, &queue_consumer(&decl.name))
            .await
            .map_err(nats_error)?,
        Err(e) => return Err(nats_error(e)),
    };
    if checkpointed(decl) {
        // A consumer re-created after its checkpoint keeps the mark of what was delivered.
        let before = match start {
            Start::After(_) => conn.checkpoints.known_floor(&decl.name),
            _ => None,
        };
        let floor = Floor::of(consumer.cached_info()).keeping_delivered(before);
        conn.checkpoints.save(&decl.name, floor).await?;
    }
    Ok(consumer)
}

/// True when `decl`'s position is checkpointed (durable, not exclusive).
fn checkpointed(decl: &QueueDecl) -> bool {
    decl.durable && decl.exclusive_owner.is_none()
}

/// Moves the D queue's consumer back to its checkpoint when its server re-created it empty
/// (its ack floor is below the checkpoint of the same incarnation); returns the checkpoint
/// (`None`: the queue has none).
pub(crate) async fn repair(
    conn: &ConnectionInner,
    queue: &str,
    stream: &str,
) -> Result<Option<Floor>> {
    match conn.js.consumer_info(stream, &queue_consumer(queue)).await {
        Ok(info) => rewind(conn, queue, stream, &Floor::of(&info)).await,
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(nats_error(e)),
    }
}

/// [`repair`] for a consumer whose floor is `current`.
async fn rewind(
    conn: &ConnectionInner,
    queue: &str,
    stream: &str,
    current: &Floor,
) -> Result<Option<Floor>> {
    let Some(saved) = conn.checkpoints.floor(queue).await? else {
        return Ok(None);
    };
    if !saved.same_consumer(current) || saved.seq <= current.seq {
        return Ok(Some(saved));
    }
    let name = queue_consumer(queue);
    tracing::warn!(
        queue,
        checkpoint = saved.seq,
        consumer = current.seq,
        "design-D queue consumer was reset by a server restart; moving it to its checkpoint"
    );
    match conn
        .js
        .reset_consumer(stream, &name, Some(saved.seq + 1))
        .await
    {
        Ok(_) => Ok(Some(saved)),
        // A consumer created before D consumers started at a time ("new" cannot be reset):
        // re-create it after the checkpoint.
        Err(e) if e.is_api(ErrorCode::CONSUMER_INVALID_RESET) => {
            delete_and_recreate(conn, queue, stream, Start::After(saved.seq)).await?;
            Ok(Some(saved))
        }
        Err(e) if not_found(&e) => Ok(Some(saved)),
        Err(e) => Err(nats_error(e)),
    }
}

/// The declaration of D queue `queue` and its source, when it exists and is bound.
fn bound_d_queue(conn: &ConnectionInner, queue: &str) -> Option<(QueueDecl, SourceFilters)> {
    conn.store.read(|t| {
        let decl = t.queue(queue).cloned()?;
        let source = d_source(t, queue, &conn.mapper).ok().flatten()?;
        Some((decl, source))
    })
}

/// Deletes the queue's consumer and creates it again at `start`.
async fn delete_and_recreate(
    conn: &ConnectionInner,
    queue: &str,
    stream: &str,
    start: Start,
) -> Result<()> {
    match conn
        .js
        .delete_consumer(stream, &queue_consumer(queue))
        .await
    {
        Ok(_) => {}
        Err(e) if not_found(&e) => {}
        Err(e) => return Err(nats_error(e)),
    }
    if let Some((decl, source)) = bound_d_queue(conn, queue) {
        create_consumer(conn, stream, &decl, &source, start).await?;
    }
    Ok(())
}

/// Makes the queue's consumer match `source` (created at the first binding, delivering only
/// what is published from then on; filters updated in place; deleted when unbound).
pub(crate) async fn sync_consumer(
    conn: &ConnectionInner,
    decl: &QueueDecl,
    source: Option<&SourceFilters>,
) -> Result<()> {
    let Some(source) = source else {
        return Ok(());
    };
    let js = &conn.js;
    // No STREAM.INFO per bind: on a stream with thousands of consumers it is the costliest
    // request of all (32 binds at once timed out on the 3-node cluster); the stream is
    // created when the consumer lookup finds it missing.
    let stream = exchange_stream(conn.mapper.namespace(), &source.exchange);
    match js.get_consumer(&stream, &queue_consumer(&decl.name)).await {
        Ok(c) => {
            let mut config = c.cached_info().config.clone();
            if config.filter_subjects == source.subjects {
                return Ok(());
            }
            config.filter_subjects = source.subjects.clone();
            js.update_consumer(&stream, config)
                .await
                .map(drop)
                .map_err(nats_error)
        }
        Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => {
            ensure_exchange_stream(js, &conn.mapper, &source.exchange).await?;
            first_binding(conn, &stream, decl, source).await
        }
        Err(e) if not_found(&e) => first_binding(conn, &stream, decl, source).await,
        Err(e) => Err(nats_error(e)),
    }
}

/// A binding of a queue without a consumer. A durable queue's consumer is created at its
/// first consume (from its checkpoint: a queue nobody consumes costs no consumer); the first
/// binding checkpoints the time from which the queue receives. Others get theirs now.
async fn first_binding(
    conn: &ConnectionInner,
    stream: &str,
    decl: &QueueDecl,
    source: &SourceFilters,
) -> Result<()> {
    if !checkpointed(decl) {
        return create_consumer(conn, stream, decl, source, Start::New)
            .await
            .map(drop);
    }
    if conn.checkpoints.mark(&decl.name).await?.is_none() {
        let now = conn.checkpoints.server_now();
        conn.checkpoints.save_since(&decl.name, now).await?;
    }
    Ok(())
}

/// The D queue's consumer on `exchange`'s stream. A consumer that is missing or offline
/// (its server lost: 10119) is re-created right after the queue's checkpointed ack floor
/// (`crate::checkpoint`); `None` when the queue is gone or unbound.
pub(crate) async fn queue_puller(
    conn: &ConnectionInner,
    queue: &str,
    exchange: &str,
) -> Result<Option<jetstream::Consumer>> {
    let js = &conn.js;
    let stream = exchange_stream(conn.mapper.namespace(), exchange);
    let name = queue_consumer(queue);
    let mut unanswered = 0;
    loop {
        match js.get_consumer(&stream, &name).await {
            Ok(c) => {
                let durable = conn
                    .store
                    .read(|t| t.queue(queue).is_some_and(checkpointed));
                if durable {
                    rewind(conn, queue, &stream, &Floor::of(c.cached_info())).await?;
                }
                return Ok(Some(c));
            }
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => return Ok(None),
            Err(e) if e.is_api(ErrorCode::CONSUMER_NOT_FOUND) => break,
            // An R1 consumer whose server is down is reported offline, or does not answer
            // at all (twice in a row, so one slow answer is not taken for a loss).
            Err(e) if e.is_api(ErrorCode::CONSUMER_OFFLINE) || e.is_timeout() => {
                unanswered += 1;
                if unanswered < 2 && !e.is_api(ErrorCode::CONSUMER_OFFLINE) {
                    continue;
                }
                // Drop the assignment, then re-create the consumer where the stream lives
                // now. The meta leader removes the assignment without the consumer's
                // server, but the answer would come from that server: no answer is normal.
                match js.delete_consumer(&stream, &name).await {
                    Ok(_) => break,
                    Err(e) if not_found(&e) || e.is_timeout() => break,
                    Err(e) => return Err(nats_error(e)),
                }
            }
            Err(e) => return Err(nats_error(e)),
        }
    }
    let Some((decl, source)) = bound_d_queue(conn, queue) else {
        return Ok(None);
    };
    let start = match conn.checkpoints.mark(queue).await? {
        Some(mark) => Start::from(mark),
        None if checkpointed(&decl) => Start::All,
        None => Start::New,
    };
    if checkpointed(&decl) {
        tracing::debug!(queue, ?start, "creating the design-D queue's consumer");
    } else {
        tracing::warn!(
            queue,
            ?start,
            "design-D queue consumer was lost; re-creating it"
        );
    }
    create_consumer(conn, &stream, &decl, &source, start)
        .await
        .map(Some)
}

/// The consumer that delivers a design-B queue's stream (`storage::queue_stream`) to its
/// AMQP consumers.
pub const QUEUE_STREAM_CONSUMER: &str = "amqp";

/// Messages ready for the D queue (its consumer's pending count; the consumer is created
/// from the checkpoint when it has none yet).
pub(crate) async fn message_count(
    conn: &ConnectionInner,
    queue: &str,
    exchange: &str,
) -> Result<u32> {
    let stream = exchange_stream(conn.mapper.namespace(), exchange);
    let info = match conn.js.consumer_info(&stream, &queue_consumer(queue)).await {
        Ok(info) => info,
        Err(e) if not_found(&e) => match queue_puller(conn, queue, exchange).await? {
            Some(c) => c.cached_info().clone(),
            None => return Ok(0),
        },
        Err(e) => return Err(nats_error(e)),
    };
    Ok(u32::try_from(info.num_pending).unwrap_or(u32::MAX))
}

/// Moves the D queue's consumer past the end of its exchange's stream (`queue.purge`) and
/// checkpoints it there; returns how many messages were ready. A consumer that cannot be
/// moved (created before D consumers started at a time) is re-created at the end.
pub(crate) async fn purge_consumer(
    conn: &ConnectionInner,
    t: &Topology,
    queue: &str,
    exchange: &str,
) -> Result<u32> {
    let count = message_count(conn, queue, exchange).await?;
    let stream = exchange_stream(conn.mapper.namespace(), exchange);
    let last = match conn.js.stream_info(&stream).await {
        Ok(info) => info.state.last_seq,
        Err(e) if not_found(&e) => return Ok(0),
        Err(e) => return Err(nats_error(e)),
    };
    let name = queue_consumer(queue);
    let info = match conn.js.reset_consumer(&stream, &name, Some(last + 1)).await {
        Ok(reset) => reset.info,
        Err(e) if not_found(&e) => return Ok(0),
        Err(e) if e.is_api(ErrorCode::CONSUMER_INVALID_RESET) => {
            delete_and_recreate(conn, queue, &stream, Start::After(last)).await?;
            return Ok(count);
        }
        Err(e) => return Err(nats_error(e)),
    };
    if t.queue(queue).is_some_and(checkpointed) {
        conn.checkpoints.save(queue, Floor::of(&info)).await?;
    }
    Ok(count)
}

/// Messages ready for a durable D queue that has no consumer now (none created yet, or
/// removed while idle): a short-lived consumer with the queue's filters, started at its
/// checkpoint, counts them and is deleted. For tools that must not create the queue's own
/// consumer (`nats-admin queues`); `None` when the queue has no checkpoint or is unbound.
pub async fn ready_without_consumer(
    js: &jetstream::Context,
    t: &Topology,
    mapper: &SubjectMapper,
    queue: &str,
) -> Result<Option<u64>> {
    let Some(source) = d_source(t, queue, mapper).ok().flatten() else {
        return Ok(None);
    };
    let Some(mark) = read_mark(js, mapper.namespace(), queue).await? else {
        return Ok(None);
    };
    // A checkpoint names a sequence or a time; "new" does not occur.
    let (deliver_policy, opt_start_seq, opt_start_time) =
        Start::from(mark).policy(time::OffsetDateTime::now_utc);
    let stream = exchange_stream(mapper.namespace(), &source.exchange);
    let config = ConsumerConfig {
        deliver_policy,
        opt_start_seq,
        opt_start_time,
        ack_policy: AckPolicy::None,
        filter_subjects: source.subjects,
        num_replicas: 1,
        memory_storage: true,
        inactive_threshold: Duration::from_secs(5),
        ..ConsumerConfig::default()
    };
    let counter = match js.create_consumer(&stream, config).await {
        Ok(c) => c,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(nats_error(e)),
    };
    let ready = counter.cached_info().num_pending;
    // Removed by the server after its inactivity threshold anyway.
    let _ = js.delete_consumer(&stream, counter.name()).await;
    Ok(Some(ready))
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
