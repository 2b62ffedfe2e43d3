// The scenarios through a lapin-shaped client: included by lapin_backend.rs (`amqp` = lapin,
// against RabbitMQ) and nats_backend.rs (`amqp` = amqp_compat, against nats-server), so both
// run the very same code.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt;
use amqp::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    options as lo,
};

use crate::ops::{Backend, FullMsg, Msg, Obs, Op, Reply, render, token_form};

pub struct ClientBackend {
    name: &'static str,
    url: String,
    conns: HashMap<usize, (Connection, Channel)>,
    consumers: HashMap<String, Consumer>,
    /// The `reply_to` the last `Serve` saw.
    last_reply_to: Option<String>,
}

impl ClientBackend {
    pub fn new(url: String, name: &'static str) -> Self {
        Self {
            name,
            url,
            conns: HashMap::new(),
            consumers: HashMap::new(),
            last_reply_to: None,
        }
    }

    /// The channel of connection `conn`, opening (or re-opening after an error) as needed.
    async fn channel(&mut self, conn: usize) -> Result<Channel, Obs> {
        if let Some((c, ch)) = self.conns.get_mut(&conn) {
            if c.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
            if c.status().connected() {
                // A soft error closed the channel: the connection lives on with a new one.
                *ch = open_channel(c).await?;
                return Ok(ch.clone());
            }
        }
        let c = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .map_err(obs_err)?;
        let ch = open_channel(&c).await?;
        self.conns.insert(conn, (c, ch.clone()));
        Ok(ch)
    }
}

async fn open_channel(c: &Connection) -> Result<Channel, Obs> {
    let ch = c.create_channel().await.map_err(obs_err)?;
    ch.confirm_select(lo::ConfirmSelectOptions::default())
        .await
        .map_err(obs_err)?;
    Ok(ch)
}

pub fn obs_err(e: amqp::Error) -> Obs {
    match e.kind() {
        amqp::ErrorKind::ProtocolError(a) => Obs::Error {
            code: a.get_id(),
            hard: e.is_amqp_hard_error(),
        },
        other => Obs::Failure(format!("{other:?}")),
    }
}

fn done<T>(r: amqp::Result<T>) -> Obs {
    r.map_or_else(obs_err, |_| Obs::Ok)
}

/// Publishes and observes the confirm.
async fn publish(
    ch: &Channel,
    exchange: &str,
    key: &str,
    options: lo::BasicPublishOptions,
    body: &str,
    props: BasicProperties,
) -> Obs {
    let confirm = match ch
        .basic_publish(exchange.into(), key.into(), options, body.as_bytes(), props)
        .await
    {
        Ok(c) => c,
        Err(e) => return obs_err(e),
    };
    match confirm.await {
        Ok(Confirmation::Ack(ret)) => Obs::Published {
            ack: true,
            returned: ret.map(|r| r.reply_code),
        },
        Ok(Confirmation::Nack(ret)) => Obs::Published {
            ack: false,
            returned: ret.map(|r| r.reply_code),
        },
        Ok(Confirmation::NotRequested) => Obs::Failure("confirms not on".into()),
        Err(e) => obs_err(e),
    }
}

fn kind(k: &amqp_compat::ExchangeKind) -> amqp::ExchangeKind {
    use amqp_compat::ExchangeKind as K;
    match k {
        K::Direct => amqp::ExchangeKind::Direct,
        K::Fanout => amqp::ExchangeKind::Fanout,
        K::Topic => amqp::ExchangeKind::Topic,
        K::Headers => amqp::ExchangeKind::Headers,
        K::Custom(c) => amqp::ExchangeKind::Custom(c.clone()),
    }
}

fn msg(d: &amqp::message::Delivery, tag: bool, message_count: Option<u32>) -> Msg {
    Msg {
        routing_key: d.routing_key.to_string(),
        body: String::from_utf8_lossy(&d.data).into_owned(),
        redelivered: d.redelivered,
        delivery_tag: tag.then_some(d.delivery_tag),
        message_count,
    }
}

impl Backend for ClientBackend {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn run(&mut self, op: &Op) -> Obs {
        let conn = match op {
            Op::Receive { .. } | Op::ReceiveReplies { .. } => None,
            Op::DeclareExchange { conn, .. }
            | Op::DeleteExchange { conn, .. }
            | Op::DeclareQueue { conn, .. }
            | Op::DeleteQueue { conn, .. }
            | Op::PurgeQueue { conn, .. }
            | Op::Bind { conn, .. }
            | Op::Unbind { conn, .. }
            | Op::BindExchange { conn, .. }
            | Op::Publish { conn, .. }
            | Op::Get { conn, .. }
            | Op::Drain { conn, .. }
            | Op::GetReject { conn, .. }
            | Op::WaitFor { conn, .. }
            | Op::DrainFull { conn, .. }
            | Op::Qos { conn, .. }
            | Op::Consume { conn, .. }
            | Op::Ack { conn, .. }
            | Op::Nack { conn, .. }
            | Op::Reject { conn, .. }
            | Op::Cancel { conn, .. }
            | Op::ConsumeReplies { conn, .. }
            | Op::Request { conn, .. }
            | Op::Serve { conn, .. }
            | Op::ReplyAgain { conn, .. }
            | Op::CloseConnection { conn } => Some(*conn),
        };
        if let Op::CloseConnection { conn } = op {
            if let Some((c, _)) = self.conns.remove(conn) {
                let _ = c.close(200, "bye".into()).await;
            }
            return Obs::Ok;
        }
        let ch = match conn {
            Some(n) => match self.channel(n).await {
                Ok(ch) => Some(ch),
                Err(obs) => return obs,
            },
            None => None,
        };
        let Some(ch) = ch.as_ref() else {
            return self.receive(op).await;
        };
        match op {
            Op::DeclareExchange {
                name,
                kind: k,
                opts,
                args,
                ..
            } => {
                let o = lo::ExchangeDeclareOptions {
                    passive: opts.passive,
                    durable: opts.durable,
                    auto_delete: opts.auto_delete,
                    internal: opts.internal,
                    nowait: false,
                };
                done(
                    ch.exchange_declare(name.as_str().into(), kind(k), o, args.clone())
                        .await,
                )
            }
            Op::DeleteExchange {
                name, if_unused, ..
            } => {
                let o = lo::ExchangeDeleteOptions {
                    if_unused: *if_unused,
                    nowait: false,
                };
                done(ch.exchange_delete(name.as_str().into(), o).await)
            }
            Op::DeclareQueue {
                name, opts, args, ..
            } => {
                let o = lo::QueueDeclareOptions {
                    passive: opts.passive,
                    durable: opts.durable,
                    exclusive: opts.exclusive,
                    auto_delete: opts.auto_delete,
                    nowait: false,
                };
                match ch
                    .queue_declare(name.as_str().into(), o, args.clone())
                    .await
                {
                    Ok(q) => Obs::Queue {
                        generated: name.is_empty() && q.name().as_str().starts_with("amq.gen-"),
                        message_count: q.message_count(),
                        consumer_count: q.consumer_count(),
                    },
                    Err(e) => obs_err(e),
                }
            }
            Op::DeleteQueue {
                name,
                if_unused,
                if_empty,
                ..
            } => {
                let o = lo::QueueDeleteOptions {
                    if_unused: *if_unused,
                    if_empty: *if_empty,
                    nowait: false,
                };
                ch.queue_delete(name.as_str().into(), o)
                    .await
                    .map_or_else(obs_err, Obs::Count)
            }
            Op::PurgeQueue { name, .. } => ch
                .queue_purge(name.as_str().into(), lo::QueuePurgeOptions::default())
                .await
                .map_or_else(obs_err, Obs::Count),
            Op::Bind {
                queue,
                exchange,
                key,
                args,
                ..
            } => done(
                ch.queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    key.as_str().into(),
                    lo::QueueBindOptions::default(),
                    args.clone(),
                )
                .await,
            ),
            Op::Unbind {
                queue,
                exchange,
                key,
                args,
                ..
            } => done(
                ch.queue_unbind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    key.as_str().into(),
                    args.clone(),
                )
                .await,
            ),
            Op::BindExchange {
                destination,
                source,
                key,
                args,
                ..
            } => done(
                ch.exchange_bind(
                    destination.as_str().into(),
                    source.as_str().into(),
                    key.as_str().into(),
                    lo::ExchangeBindOptions::default(),
                    args.clone(),
                )
                .await,
            ),
            Op::Publish {
                exchange,
                key,
                body,
                headers,
                expiration,
                mandatory,
                immediate,
                priority,
                ..
            } => {
                let mut props = BasicProperties::default();
                if let Some(h) = headers {
                    props = props.with_headers(h.clone());
                }
                if let Some(e) = expiration {
                    props = props.with_expiration(e.as_str().into());
                }
                if let Some(p) = priority {
                    props = props.with_priority(*p);
                }
                let o = lo::BasicPublishOptions {
                    mandatory: *mandatory,
                    immediate: *immediate,
                };
                publish(ch, exchange, key, o, body, props).await
            }
            Op::ConsumeReplies { tag, no_ack, .. } => {
                let o = lo::BasicConsumeOptions {
                    no_ack: *no_ack,
                    ..Default::default()
                };
                let queue = "amq.rabbitmq.reply-to";
                match ch
                    .basic_consume(queue.into(), tag.as_str().into(), o, Default::default())
                    .await
                {
                    Ok(c) => {
                        self.consumers.insert(tag.clone(), c);
                        Obs::Ok
                    }
                    Err(e) => obs_err(e),
                }
            }
            Op::Request {
                queue,
                body,
                correlation_id,
                reply_to,
                ..
            } => {
                let reply_to = reply_to.as_deref().unwrap_or("amq.rabbitmq.reply-to");
                let props = BasicProperties::default()
                    .with_reply_to(reply_to.into())
                    .with_correlation_id(correlation_id.as_str().into());
                publish(ch, "", queue, Default::default(), body, props).await
            }
            Op::Serve {
                queue, mandatory, ..
            } => {
                let o = lo::BasicGetOptions { no_ack: true };
                let d = match ch.basic_get(queue.as_str().into(), o).await {
                    Ok(Some(m)) => m.delivery,
                    Ok(None) => return Obs::Got(None),
                    Err(e) => return obs_err(e),
                };
                let body = String::from_utf8_lossy(&d.data).into_owned();
                let reply_to = d.properties.reply_to().as_ref().map(|r| r.to_string());
                let correlation_id = d.properties.correlation_id().clone();
                self.last_reply_to.clone_from(&reply_to);
                let mut props = BasicProperties::default();
                if let Some(id) = &correlation_id {
                    props = props.with_correlation_id(id.clone());
                }
                let o = lo::BasicPublishOptions {
                    mandatory: *mandatory,
                    immediate: false,
                };
                let key = reply_to.clone().unwrap_or_default();
                let reply = publish(ch, "", &key, o, &format!("re:{body}"), props).await;
                Obs::Served {
                    body,
                    correlation_id: correlation_id.map(|c| c.to_string()),
                    reply_to: reply_to.as_deref().map(token_form),
                    reply: Box::new(reply),
                }
            }
            Op::ReplyAgain { body, .. } => {
                let Some(key) = self.last_reply_to.clone() else {
                    return Obs::Failure("no request served yet".into());
                };
                let props = BasicProperties::default();
                publish(ch, "", &key, Default::default(), body, props).await
            }
            Op::Get { queue, no_ack, .. } => {
                match ch
                    .basic_get(
                        queue.as_str().into(),
                        lo::BasicGetOptions { no_ack: *no_ack },
                    )
                    .await
                {
                    Ok(Some(m)) => {
                        if !no_ack
                            && let Err(e) = ch
                                .basic_ack(m.delivery.delivery_tag, lo::BasicAckOptions::default())
                                .await
                        {
                            return obs_err(e);
                        }
                        Obs::Got(Some(msg(&m.delivery, false, Some(m.message_count))))
                    }
                    Ok(None) => Obs::Got(None),
                    Err(e) => obs_err(e),
                }
            }
            Op::Drain { queue, .. } => {
                let mut out = Vec::new();
                loop {
                    match ch
                        .basic_get(queue.as_str().into(), lo::BasicGetOptions { no_ack: true })
                        .await
                    {
                        Ok(Some(m)) => out.push(msg(&m.delivery, false, None)),
                        Ok(None) => return Obs::Drained(out),
                        Err(e) => return obs_err(e),
                    }
                }
            }
            Op::WaitFor {
                queue, messages, ..
            } => {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                let passive = lo::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                loop {
                    match ch
                        .queue_declare(queue.as_str().into(), passive, Default::default())
                        .await
                    {
                        Ok(q) if q.message_count() >= *messages => return Obs::Ok,
                        Ok(q) if tokio::time::Instant::now() >= deadline => {
                            return Obs::Failure(format!(
                                "{} messages after 10 s",
                                q.message_count()
                            ));
                        }
                        Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        Err(e) => return obs_err(e),
                    }
                }
            }
            Op::GetReject { queue, .. } => {
                let o = lo::BasicGetOptions { no_ack: false };
                match ch.basic_get(queue.as_str().into(), o).await {
                    Ok(Some(m)) => {
                        let reject = lo::BasicRejectOptions { requeue: false };
                        if let Err(e) = ch.basic_reject(m.delivery.delivery_tag, reject).await {
                            return obs_err(e);
                        }
                        Obs::Got(Some(msg(&m.delivery, false, Some(m.message_count))))
                    }
                    Ok(None) => Obs::Got(None),
                    Err(e) => obs_err(e),
                }
            }
            Op::DrainFull { queue, .. } => {
                let mut out = Vec::new();
                let o = lo::BasicGetOptions { no_ack: true };
                loop {
                    match ch.basic_get(queue.as_str().into(), o).await {
                        Ok(Some(m)) => {
                            let d = &m.delivery;
                            out.push(FullMsg {
                                exchange: d.exchange.to_string(),
                                routing_key: d.routing_key.to_string(),
                                body: String::from_utf8_lossy(&d.data).into_owned(),
                                headers: d
                                    .properties
                                    .headers()
                                    .as_ref()
                                    .map_or_else(String::new, render),
                            });
                        }
                        Ok(None) => return Obs::DrainedFull(out),
                        Err(e) => return obs_err(e),
                    }
                }
            }
            Op::Qos { prefetch, .. } => done(
                ch.basic_qos(*prefetch, lo::BasicQosOptions::default())
                    .await,
            ),
            Op::Consume {
                queue,
                tag,
                exclusive,
                ..
            } => {
                let o = lo::BasicConsumeOptions {
                    exclusive: *exclusive,
                    ..Default::default()
                };
                match ch
                    .basic_consume(
                        queue.as_str().into(),
                        tag.as_str().into(),
                        o,
                        Default::default(),
                    )
                    .await
                {
                    Ok(c) => {
                        self.consumers.insert(tag.clone(), c);
                        Obs::Ok
                    }
                    Err(e) => obs_err(e),
                }
            }
            Op::Ack {
                delivery_tag,
                multiple,
                ..
            } => done(
                ch.basic_ack(
                    *delivery_tag,
                    lo::BasicAckOptions {
                        multiple: *multiple,
                    },
                )
                .await,
            ),
            Op::Nack {
                delivery_tag,
                multiple,
                requeue,
                ..
            } => done(
                ch.basic_nack(
                    *delivery_tag,
                    lo::BasicNackOptions {
                        multiple: *multiple,
                        requeue: *requeue,
                    },
                )
                .await,
            ),
            Op::Reject {
                delivery_tag,
                requeue,
                ..
            } => done(
                ch.basic_reject(*delivery_tag, lo::BasicRejectOptions { requeue: *requeue })
                    .await,
            ),
            Op::Cancel { tag, .. } => {
                self.consumers.remove(tag);
                done(
                    ch.basic_cancel(tag.as_str().into(), lo::BasicCancelOptions::default())
                        .await,
                )
            }
            Op::Receive { .. } | Op::ReceiveReplies { .. } | Op::CloseConnection { .. } => {
                unreachable!("handled above")
            }
        }
    }

    async fn finish(&mut self) {
        self.consumers.clear();
        for (_, (c, _)) in self.conns.drain() {
            let _ = c.close(200, "scenario done".into()).await;
        }
    }
}

impl ClientBackend {
    async fn receive(&mut self, op: &Op) -> Obs {
        let (Op::Receive { tag, max, wait_ms } | Op::ReceiveReplies { tag, max, wait_ms }) = op
        else {
            return Obs::Failure(format!("not a receive: {op:?}"));
        };
        let Some(consumer) = self.consumers.get_mut(tag) else {
            return Obs::Failure(format!("no consumer {tag}"));
        };
        if let Op::ReceiveReplies { .. } = op {
            let mut out = Vec::new();
            while out.len() < *max {
                let wait = Duration::from_millis(*wait_ms);
                match tokio::time::timeout(wait, consumer.next()).await {
                    Ok(Some(Ok(d))) => out.push(Reply {
                        exchange: d.exchange.to_string(),
                        routing_key: token_form(d.routing_key.as_str()),
                        body: String::from_utf8_lossy(&d.data).into_owned(),
                        correlation_id: d.properties.correlation_id().as_ref().map(|c| c.to_string()),
                        redelivered: d.redelivered,
                        delivery_tag: d.delivery_tag,
                    }),
                    Ok(Some(Err(e))) => return obs_err(e),
                    Ok(None) | Err(_) => break,
                }
            }
            return Obs::Replies(out);
        }
        let mut out = Vec::new();
        while out.len() < *max {
            match tokio::time::timeout(Duration::from_millis(*wait_ms), consumer.next()).await {
                Ok(Some(Ok(d))) => out.push(msg(&d, true, None)),
                Ok(Some(Err(e))) => return obs_err(e),
                Ok(None) | Err(_) => break,
            }
        }
        Obs::Received(out)
    }
}
