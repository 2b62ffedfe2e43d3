// The AMQP cases, written once against lapin's API: included by sides.rs twice, with `amqp` =
// lapin (against RabbitMQ) and `amqp` = amqp_compat (against nats-server), so both sides run
// the very same code.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use amqp::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use amqp::types::{AMQPValue, FieldTable, ShortString};
use amqp::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use futures_util::StreamExt;

use crate::amqp::cpu::Meter;
use crate::amqp::{CONFIRM_WINDOW, FANOUT_CLIENTS, IDLE, Outcome, PREFETCH, Spec, now_ns, stamp};
use crate::common::BenchError;

async fn connect(s: &Spec, name: &str) -> Result<Connection, BenchError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Ok(Connection::connect(&s.url, props).await?)
}

/// Persistent, as every durable case publishes.
fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

/// A durable quorum queue, plus the side's extra arguments (`extra`).
async fn declare(ch: &Channel, name: &str, extra: &FieldTable) -> Result<(), BenchError> {
    let mut args = extra.clone();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(name.into(), durable, args).await?;
    Ok(())
}

async fn delete(ch: &Channel, name: &str) -> Result<(), BenchError> {
    ch.queue_delete(name.into(), QueueDeleteOptions::default())
        .await?;
    Ok(())
}

/// A channel with prefetch 500 consuming `queue`.
async fn consume(
    conn: &Connection,
    queue: &str,
    no_ack: bool,
) -> Result<(Channel, Consumer), BenchError> {
    let ch = conn.create_channel().await?;
    ch.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
    let options = BasicConsumeOptions {
        no_ack,
        ..BasicConsumeOptions::default()
    };
    let consumer = ch
        .basic_consume(queue.into(), "".into(), options, FieldTable::default())
        .await?;
    Ok((ch, consumer))
}

/// Confirms outstanding on one channel, at most [`CONFIRM_WINDOW`]: the oldest is awaited
/// when the window is full.
struct Publisher {
    ch: Channel,
    confirms: VecDeque<amqp::PublisherConfirm>,
}

impl Publisher {
    async fn open(conn: &Connection) -> Result<Self, BenchError> {
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Publisher {
            ch,
            confirms: VecDeque::with_capacity(CONFIRM_WINDOW),
        })
    }

    async fn publish(
        &mut self,
        exchange: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<(), BenchError> {
        if self.confirms.len() >= CONFIRM_WINDOW
            && let Some(c) = self.confirms.pop_front()
        {
            check(c.await?)?;
        }
        let confirm = self
            .ch
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                payload,
                persistent(),
            )
            .await?;
        self.confirms.push_back(confirm);
        Ok(())
    }

    async fn wait_all(&mut self) -> Result<(), BenchError> {
        while let Some(c) = self.confirms.pop_front() {
            check(c.await?)?;
        }
        Ok(())
    }
}

fn check(c: amqp::Confirmation) -> Result<(), BenchError> {
    match c.is_ack() {
        true => Ok(()),
        false => Err(format!("publish not confirmed: {c:?}").into()),
    }
}

/// What a consumer task hands back: when it acked the last delivery, each delivery's latency
/// when its payload carries a send stamp, and its channel and consumer (to cancel them).
struct Acked {
    end: Instant,
    latencies: Vec<u64>,
    ch: Channel,
    consumer: Consumer,
}

impl Acked {
    /// Cancels the consumer (before its queue is deleted, as a service shutting down would).
    async fn cancel(self) -> Result<(), BenchError> {
        self.ch
            .basic_cancel(self.consumer.tag(), BasicCancelOptions::default())
            .await?;
        Ok(())
    }
}

/// Takes `n` deliveries, acking each by tag (cannon's way).
fn ack_all(
    ch: Channel,
    mut consumer: Consumer,
    n: u64,
    latencies: bool,
) -> tokio::task::JoinHandle<Result<Acked, BenchError>> {
    tokio::spawn(async move {
        let mut got = 0;
        let mut lat = Vec::with_capacity(if latencies { n as usize } else { 0 });
        while got < n {
            let d = match tokio::time::timeout(IDLE, consumer.next()).await {
                Ok(Some(d)) => d?,
                Ok(None) => return Err("consumer ended".into()),
                Err(_) => return Err(format!("only {got} of {n} delivered").into()),
            };
            if latencies && let Some(sent) = stamp(&d.data) {
                lat.push(now_ns().saturating_sub(sent));
            }
            ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                .await?;
            got += 1;
        }
        Ok(Acked {
            end: Instant::now(),
            latencies: lat,
            ch,
            consumer,
        })
    })
}

/// Durable publish with confirms: N persistent messages to a quorum queue through the default
/// exchange, at most 1000 confirms outstanding; ends with the last confirm.
pub async fn publish_confirm(s: Spec) -> Result<Outcome, BenchError> {
    let conn = connect(&s, "bench-publisher").await?;
    let q = s.name("pc");
    let mut p = Publisher::open(&conn).await?;
    declare(&p.ch, &q, &s.queue_args).await?;
    let payload = s.payload();
    let meter = Meter::start(&s.broker_pids);
    for _ in 0..s.messages {
        p.publish("", &q, &payload).await?;
    }
    p.wait_all().await?;
    let cost = meter.stop();
    delete(&p.ch, &q).await?;
    conn.close(200, "done".into()).await?;
    Ok(Outcome::rate(s.messages, cost))
}

/// Publish + consume + ack: the same publisher, and a consumer on another connection (prefetch
/// 500) that acks every delivery; ends with the last ack.
pub async fn publish_consume_ack(s: Spec) -> Result<Outcome, BenchError> {
    let pconn = connect(&s, "bench-publisher").await?;
    let cconn = connect(&s, "bench-consumer").await?;
    let q = s.name("pca");
    let mut p = Publisher::open(&pconn).await?;
    declare(&p.ch, &q, &s.queue_args).await?;
    let (cch, consumer) = consume(&cconn, &q, false).await?;
    let payload = s.payload();
    let meter = Meter::start(&s.broker_pids);
    let acker = ack_all(cch, consumer, s.messages, false);
    for _ in 0..s.messages {
        p.publish("", &q, &payload).await?;
    }
    p.wait_all().await?;
    let acked = acker.await??;
    let cost = meter.stop_at(acked.end);
    acked.cancel().await?;
    delete(&p.ch, &q).await?;
    cconn.close(200, "done".into()).await?;
    pconn.close(200, "done".into()).await?;
    Ok(Outcome::rate(s.messages, cost))
}

/// Wire's fan-out: direct exchange `user-notifications-<run>`, five client queues
/// `<exchange>.<uid>.<cid>` each bound with `<uid>` and `<uid>.<cid>` and consumed on a channel
/// of its own (prefetch 500, ack by tag); N persistent publishes with key `<uid>`, confirmed.
/// Counts deliveries (5 N); ends with the last ack of the last queue.
pub async fn fanout(s: Spec) -> Result<Outcome, BenchError> {
    let pconn = connect(&s, "gundeck").await?;
    let cconn = connect(&s, "cannon").await?;
    let exchange = s.name("user-notifications");
    let uid = "u0001";
    let mut p = Publisher::open(&pconn).await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    p.ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await?;
    let mut queues = Vec::new();
    for c in 0..FANOUT_CLIENTS {
        let cid = format!("c{c}");
        let q = format!("{exchange}.{uid}.{cid}");
        declare(&p.ch, &q, &s.fanout_args).await?;
        for key in [uid.to_owned(), format!("{uid}.{cid}")] {
            p.ch.queue_bind(
                q.as_str().into(),
                exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        queues.push(q);
    }
    let mut consumers = Vec::new();
    for q in &queues {
        consumers.push(consume(&cconn, q, false).await?);
    }
    let payload = s.payload();
    let meter = Meter::start(&s.broker_pids);
    let ackers: Vec<_> = consumers
        .into_iter()
        .map(|(ch, c)| ack_all(ch, c, s.messages, false))
        .collect();
    for _ in 0..s.messages {
        p.publish(&exchange, uid, &payload).await?;
    }
    p.wait_all().await?;
    let mut done = Vec::new();
    for a in ackers {
        done.push(a.await??);
    }
    let end = done
        .iter()
        .map(|a| a.end)
        .max()
        .unwrap_or_else(Instant::now);
    let cost = meter.stop_at(end);
    for acked in done {
        acked.cancel().await?;
    }
    for q in &queues {
        delete(&p.ch, q).await?;
    }
    p.ch.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await?;
    cconn.close(200, "done".into()).await?;
    pconn.close(200, "done".into()).await?;
    Ok(Outcome::rate(s.messages * FANOUT_CLIENTS as u64, cost))
}

/// RPC, the shape of RabbitMQ's RPC tutorial: a server consumes a (classic, non-durable)
/// request queue and answers each request to its `reply_to` with the same `correlation_id`,
/// then acks it; the client sends N transient requests one at a time and waits for each reply
/// on its exclusive server-named queue (`no_ack`). Latency per round trip.
pub async fn rpc(s: Spec) -> Result<Outcome, BenchError> {
    let sconn = connect(&s, "rpc-server").await?;
    let cconn = connect(&s, "rpc-client").await?;
    let q = s.name("rpc");
    let server = rpc_server(&sconn, &q).await?;
    let cch = cconn.create_channel().await?;
    let temp = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let reply_q = cch
        .queue_declare("".into(), temp, FieldTable::default())
        .await?
        .name()
        .clone();
    let (_rch, replies) = consume(&cconn, reply_q.as_str(), true).await?;
    let outcome = round_trips(&s, &cch, &q, reply_q, replies).await;
    server.abort();
    delete(&cch, &q).await?;
    cconn.close(200, "done".into()).await?;
    sconn.close(200, "done".into()).await?;
    outcome
}

/// RPC over direct reply-to: the same server, and a client that consumes the pseudo-queue
/// `amq.rabbitmq.reply-to` (`no_ack`) on the channel it publishes its requests on, with
/// `reply_to = "amq.rabbitmq.reply-to"`: no reply queue (RabbitMQ delivers the reply straight
/// to the channel; amqp-compat over core NATS). Latency per round trip.
pub async fn rpc_direct(s: Spec) -> Result<Outcome, BenchError> {
    const DIRECT: &str = "amq.rabbitmq.reply-to";
    let sconn = connect(&s, "rpc-server").await?;
    let cconn = connect(&s, "rpc-client").await?;
    let q = s.name("rpc-direct");
    let server = rpc_server(&sconn, &q).await?;
    let cch = cconn.create_channel().await?;
    let options = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let replies = cch
        .basic_consume(DIRECT.into(), "".into(), options, FieldTable::default())
        .await?;
    let outcome = round_trips(&s, &cch, &q, DIRECT.into(), replies).await;
    server.abort();
    delete(&cch, &q).await?;
    cconn.close(200, "done".into()).await?;
    sconn.close(200, "done".into()).await?;
    outcome
}

/// The RPC server: consumes `q` (declared here), answers each request to its `reply_to` with
/// the same `correlation_id`, then acks it.
async fn rpc_server(
    sconn: &Connection,
    q: &str,
) -> Result<tokio::task::JoinHandle<Result<(), BenchError>>, BenchError> {
    let (sch, mut requests) = consume_after_declare(sconn, q).await?;
    Ok(tokio::spawn(async move {
        while let Some(d) = requests.next().await {
            let d = d?;
            let Some(reply_to) = d.properties.reply_to().clone() else {
                continue;
            };
            let mut props = BasicProperties::default();
            if let Some(id) = d.properties.correlation_id().clone() {
                props = props.with_correlation_id(id);
            }
            // Not in confirm mode: the confirm is `NotRequested` at once.
            sch.basic_publish(
                "".into(),
                reply_to,
                BasicPublishOptions::default(),
                &d.data,
                props,
            )
            .await?
            .await?;
            sch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                .await?;
        }
        Ok::<_, BenchError>(())
    }))
}

/// The RPC client: N transient requests to `q` on `cch`, one at a time, each answered to
/// `reply_to` and awaited on `replies` (matched by `correlation_id`).
async fn round_trips(
    s: &Spec,
    cch: &Channel,
    q: &str,
    reply_to: ShortString,
    mut replies: Consumer,
) -> Result<Outcome, BenchError> {
    let payload = s.payload();
    let mut latencies = Vec::with_capacity(s.messages as usize);
    let meter = Meter::start(&s.broker_pids);
    for i in 0..s.messages {
        let id: ShortString = i.to_string().into();
        let props = BasicProperties::default()
            .with_reply_to(reply_to.clone())
            .with_correlation_id(id.clone());
        let t = Instant::now();
        cch.basic_publish(
            "".into(),
            q.into(),
            BasicPublishOptions::default(),
            &payload,
            props,
        )
        .await?
        .await?;
        loop {
            let d = match tokio::time::timeout(IDLE, replies.next()).await {
                Ok(Some(d)) => d?,
                _ => return Err(format!("no reply to request {i}").into()),
            };
            if d.properties.correlation_id().as_ref() == Some(&id) {
                break;
            }
        }
        latencies.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    let cost = meter.stop();
    Ok(Outcome::latency(latencies, cost))
}

async fn consume_after_declare(
    conn: &Connection,
    q: &str,
) -> Result<(Channel, Consumer), BenchError> {
    let ch = conn.create_channel().await?;
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    drop(ch);
    consume(conn, q, false).await
}

/// Delivery latency at a fixed offered load: a paced publisher (confirms, window 1000) sends
/// `rate` persistent messages per second carrying their send time; a consumer (prefetch 500)
/// acks each and records now - send time.
pub async fn latency(s: Spec) -> Result<Outcome, BenchError> {
    let pconn = connect(&s, "bench-publisher").await?;
    let cconn = connect(&s, "bench-consumer").await?;
    let q = s.name("lat");
    let mut p = Publisher::open(&pconn).await?;
    declare(&p.ch, &q, &s.queue_args).await?;
    let (cch, consumer) = consume(&cconn, &q, false).await?;
    let mut payload = s.payload();
    let meter = Meter::start(&s.broker_pids);
    let acker = ack_all(cch, consumer, s.messages, true);
    let start = Instant::now();
    let per_msg = Duration::from_secs(1).as_secs_f64() / f64::from(s.rate);
    for i in 0..s.messages {
        // Paced on the schedule, not on the previous send: a late tick sends its backlog.
        let due = start + Duration::from_secs_f64(per_msg * i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        payload[..8].copy_from_slice(&now_ns().to_le_bytes());
        p.publish("", &q, &payload).await?;
    }
    p.wait_all().await?;
    let mut acked = acker.await??;
    let cost = meter.stop_at(acked.end);
    let lat = std::mem::take(&mut acked.latencies);
    acked.cancel().await?;
    delete(&p.ch, &q).await?;
    cconn.close(200, "done".into()).await?;
    pconn.close(200, "done".into()).await?;
    Ok(Outcome::latency(lat, cost))
}
