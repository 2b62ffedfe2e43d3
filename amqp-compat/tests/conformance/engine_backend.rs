//! The scenarios through amqp-compat's pure routing engine (`routing::Topology`) plus an
//! in-memory FIFO per queue: enough to observe declares, bindings, routing, returns and
//! `basic_get`. Consumers, acks and prefetch need the NATS-backed channel (not built yet):
//! those steps are `NotApplicable` here.

use std::collections::{HashMap, HashSet, VecDeque};

use amqp_compat::{
    BasicProperties, Error,
    dead_letter::{self, Death, DeathReason},
    expiration::{check_publish, effective_ttl},
    options::{ExchangeDeleteOptions, QueueDeleteOptions},
    routing::{Admission, Topology},
};

use super::ops::{Backend, FullMsg, Msg, Obs, Op, render};

/// A stored message: what `basic_get` shows, plus what dead-lettering needs.
struct Stored {
    msg: Msg,
    exchange: String,
    props: BasicProperties,
}

#[derive(Default)]
pub struct EngineBackend {
    topology: Topology,
    queues: HashMap<String, VecDeque<Stored>>,
    /// Consumer tag -> (connection, queue).
    consumers: HashMap<String, (usize, String)>,
    /// Queues consumed at some point: their contents are no longer modelled (deliveries
    /// and acks are not), so their counts and gets are `NotApplicable`.
    consumed: HashSet<String>,
}

fn owner(conn: usize) -> String {
    format!("conn-{conn}")
}

fn obs_err(e: Error) -> Obs {
    match e.reply_code() {
        Some(code) => Obs::Error {
            code,
            hard: e.is_amqp_hard_error(),
        },
        None => Obs::Failure(e.to_string()),
    }
}

fn done(r: amqp_compat::Result<()>) -> Obs {
    r.map_or_else(obs_err, |()| Obs::Ok)
}

impl EngineBackend {
    fn route(
        &self,
        exchange: &str,
        key: &str,
        headers: Option<&amqp_compat::types::FieldTable>,
        expiration: Option<&str>,
        immediate: bool,
    ) -> amqp_compat::Result<(amqp_compat::routing::Route, Option<u64>)> {
        let mut props = amqp_compat::BasicProperties::default();
        if let Some(e) = expiration {
            props = props.with_expiration(e.into());
        }
        let o = amqp_compat::options::BasicPublishOptions {
            mandatory: false,
            immediate,
        };
        let ttl = check_publish(&o, &props)?;
        Ok((self.topology.route(exchange, key, headers)?, ttl))
    }

    /// Drops the storage of queues the topology no longer has (deleted, auto-deleted, owner gone).
    fn sync(&mut self) {
        let t = &self.topology;
        self.queues.retain(|q, _| t.queue(q).is_some());
    }

    fn check_queue(&self, queue: &str, conn: usize) -> amqp_compat::Result<()> {
        if self.topology.queue(queue).is_none() {
            return Err(Error::not_found(format!("no queue '{queue}' in vhost '/'")));
        }
        self.topology.check_exclusive_access(queue, &owner(conn))
    }

    fn pop(&mut self, queue: &str) -> Option<Msg> {
        let q = self.queues.entry(queue.to_owned()).or_default();
        let mut m = q.pop_front()?.msg;
        m.message_count = Some(u32::try_from(q.len()).unwrap_or(u32::MAX));
        Some(m)
    }

    /// Puts a message in a queue under its length limits; false when the queue refused it.
    fn enqueue(&mut self, queue: &str, stored: Stored) -> bool {
        let Some(args) = self.topology.queue(queue).map(|d| d.arguments.clone()) else {
            return true;
        };
        let q = self.queues.entry(queue.to_owned()).or_default();
        let size = |s: &Stored| s.msg.body.len() as u64;
        let (len, bytes) = (q.len() as u64, q.iter().map(size).sum::<u64>());
        match args.admit(len, bytes, size(&stored)) {
            Admission::Reject { dead_letter } => {
                if dead_letter {
                    self.dead_letter(queue, &stored, DeathReason::Maxlen);
                }
                false
            }
            Admission::Enqueue => {
                // Higher priority first, FIFO within a priority (all 0 without x-max-priority).
                let prio = |s: &Stored| args.effective_priority(*s.props.priority()).unwrap_or(0);
                let p = prio(&stored);
                let at = q.iter().rposition(|s| prio(s) >= p).map_or(0, |i| i + 1);
                q.insert(at, stored);
                loop {
                    let q = self.queues.entry(queue.to_owned()).or_default();
                    let (len, bytes) = (q.len() as u64, q.iter().map(size).sum::<u64>());
                    if !args.exceeds(len, bytes) {
                        return true;
                    }
                    let Some(head) = q.pop_front() else {
                        return true;
                    };
                    self.dead_letter(queue, &head, DeathReason::Maxlen);
                }
            }
        }
    }

    /// A message died in `queue`: the copy goes to the queue's dead-letter exchange.
    fn dead_letter(&mut self, queue: &str, stored: &Stored, reason: DeathReason) {
        let Some(decl) = self.topology.queue(queue) else {
            return;
        };
        let Some(target) = dead_letter::target(decl, &stored.msg.routing_key) else {
            return;
        };
        let death = Death {
            queue: queue.to_owned(),
            reason,
            exchange: stored.exchange.clone(),
            routing_keys: vec![stored.msg.routing_key.clone()],
            time: 0,
        };
        let props = dead_letter::dead_letter_properties(&stored.props, &death);
        // A missing dead-letter exchange drops the message, as in RabbitMQ.
        let Ok(route) = self.topology.route(
            &target.exchange,
            &target.routing_key,
            props.headers().as_ref(),
        ) else {
            return;
        };
        for q in route.queues {
            // Dead letters obey the target queue's limits too.
            let msg = Msg {
                routing_key: target.routing_key.clone(),
                ..stored.msg.clone()
            };
            let copy = Stored {
                msg,
                exchange: target.exchange.clone(),
                props: props.clone(),
            };
            self.enqueue(&q, copy);
        }
    }

    fn depth(&self, q: &str) -> u32 {
        self.queues
            .get(q)
            .map_or(0, |m| u32::try_from(m.len()).unwrap_or(u32::MAX))
    }
}

impl Backend for EngineBackend {
    fn name(&self) -> &'static str {
        "routing engine"
    }

    async fn run(&mut self, op: &Op) -> Obs {
        let obs = match op {
            // Direct reply-to's pseudo-queue lives in the channel, not in the topology.
            Op::DeclareQueue { name, .. } if name.starts_with("amq.rabbitmq.reply-to") => {
                Obs::NotApplicable
            }
            Op::DeclareExchange {
                name,
                kind,
                opts,
                args,
                ..
            } => done(
                self.topology
                    .declare_exchange(name, kind.clone(), *opts, args),
            ),
            Op::DeleteExchange {
                name, if_unused, ..
            } => done(self.topology.delete_exchange(
                name,
                ExchangeDeleteOptions {
                    if_unused: *if_unused,
                    nowait: false,
                },
            )),
            Op::DeclareQueue {
                conn,
                name,
                opts,
                args,
            } => {
                match self
                    .topology
                    .declare_queue(name, *opts, args, &owner(*conn))
                {
                    Ok(_) if self.consumed.contains(name) => Obs::NotApplicable,
                    Ok(d) => {
                        self.queues.entry(d.name.clone()).or_default();
                        Obs::Queue {
                            generated: name.is_empty() && d.name.starts_with("amq.gen-"),
                            message_count: self.depth(&d.name),
                            consumer_count: d.consumer_count,
                        }
                    }
                    Err(e) => obs_err(e),
                }
            }
            Op::DeleteQueue {
                conn,
                name,
                if_unused,
                if_empty,
            } => {
                let depth = self.depth(name);
                let o = QueueDeleteOptions {
                    if_unused: *if_unused,
                    if_empty: *if_empty,
                    nowait: false,
                };
                match self.topology.delete_queue(name, o, &owner(*conn), depth) {
                    Ok(()) => Obs::Count(depth),
                    Err(e) => obs_err(e),
                }
            }
            Op::PurgeQueue { conn, name } => {
                if self.topology.queue(name).is_none() {
                    obs_err(Error::not_found(format!("no queue '{name}' in vhost '/'")))
                } else if let Err(e) = self.topology.check_exclusive_access(name, &owner(*conn)) {
                    obs_err(e)
                } else {
                    let n = self.depth(name);
                    self.queues.insert(name.clone(), VecDeque::new());
                    Obs::Count(n)
                }
            }
            Op::Bind {
                conn,
                queue,
                exchange,
                key,
                args,
            } => done(
                self.topology
                    .bind_queue(queue, exchange, key, args, &owner(*conn)),
            ),
            Op::Unbind {
                conn,
                queue,
                exchange,
                key,
                args,
            } => done(
                self.topology
                    .unbind_queue(queue, exchange, key, args, &owner(*conn)),
            ),
            Op::BindExchange {
                destination,
                source,
                key,
                args,
                ..
            } => done(self.topology.bind_exchange(destination, source, key, args)),
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
            } => match self.route(
                exchange,
                key,
                headers.as_ref(),
                expiration.as_deref(),
                *immediate,
            ) {
                Ok((route, ttl)) => {
                    let mut rejected = false;
                    for q in &route.queues {
                        // TTL 0: "now or never"; with no consumer to take it, it is gone.
                        let queue_ttl =
                            self.topology.queue(q).and_then(|d| d.arguments.message_ttl);
                        let no_consumer = self.topology.consumers(q).count == 0;
                        if effective_ttl(ttl, queue_ttl) == Some(0) && no_consumer {
                            continue;
                        }
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
                        let msg = Msg {
                            routing_key: key.clone(),
                            body: body.clone(),
                            redelivered: false,
                            delivery_tag: None,
                            message_count: None,
                        };
                        let stored = Stored {
                            msg,
                            exchange: exchange.clone(),
                            props,
                        };
                        if !self.enqueue(q, stored) {
                            rejected = true;
                        }
                    }
                    let returned = (*mandatory && route.is_unroutable()).then_some(312);
                    Obs::Published {
                        ack: !rejected,
                        returned,
                    }
                }
                Err(e) => obs_err(e),
            },
            Op::Get { queue, .. } if self.consumed.contains(queue) => Obs::NotApplicable,
            Op::Get { conn, queue, .. } => {
                if self.topology.queue(queue).is_none() {
                    obs_err(Error::not_found(format!("no queue '{queue}' in vhost '/'")))
                } else if let Err(e) = self.topology.check_exclusive_access(queue, &owner(*conn)) {
                    obs_err(e)
                } else {
                    Obs::Got(self.pop(queue))
                }
            }
            Op::Drain { conn, queue } => {
                if self.topology.queue(queue).is_none() {
                    obs_err(Error::not_found(format!("no queue '{queue}' in vhost '/'")))
                } else if let Err(e) = self.topology.check_exclusive_access(queue, &owner(*conn)) {
                    obs_err(e)
                } else {
                    let q = self.queues.entry(queue.clone()).or_default();
                    Obs::Drained(q.drain(..).map(|s| s.msg).collect())
                }
            }
            Op::Consume {
                conn,
                queue,
                tag,
                exclusive,
            } => {
                match self.topology.add_consumer(queue, &owner(*conn), *exclusive) {
                    // Deliveries need the channel over NATS: only the topology effect is modelled.
                    Ok(()) => {
                        self.consumed.insert(queue.clone());
                        self.consumers.insert(tag.clone(), (*conn, queue.clone()));
                        Obs::Ok
                    }
                    Err(e) => obs_err(e),
                }
            }
            Op::Cancel { tag, .. } => {
                if let Some((_, q)) = self.consumers.remove(tag) {
                    self.topology.remove_consumer(&q);
                }
                Obs::Ok
            }
            Op::CloseConnection { conn } => {
                let tags: Vec<String> = self
                    .consumers
                    .iter()
                    .filter(|(_, (c, _))| c == conn)
                    .map(|(t, _)| t.clone())
                    .collect();
                for t in tags {
                    if let Some((_, q)) = self.consumers.remove(&t) {
                        self.topology.remove_consumer(&q);
                    }
                }
                self.topology.connection_closed(&owner(*conn));
                Obs::Ok
            }
            Op::WaitFor { queue, .. } if self.consumed.contains(queue) => Obs::NotApplicable,
            Op::WaitFor {
                conn,
                queue,
                messages,
            } => match self.check_queue(queue, *conn) {
                Err(e) => obs_err(e),
                // Dead-lettering is synchronous here: the copies are there or never will be.
                Ok(()) if self.depth(queue) >= *messages => Obs::Ok,
                Ok(()) => Obs::Failure(format!("{} messages after 10 s", self.depth(queue))),
            },
            Op::GetReject { conn, queue } => match self.check_queue(queue, *conn) {
                Err(e) => obs_err(e),
                Ok(()) => {
                    let Some(stored) = self.queues.get_mut(queue).and_then(VecDeque::pop_front)
                    else {
                        return Obs::Got(None);
                    };
                    let left = self.depth(queue);
                    self.dead_letter(queue, &stored, DeathReason::Rejected);
                    let mut msg = stored.msg;
                    msg.message_count = Some(left);
                    Obs::Got(Some(msg))
                }
            },
            Op::DrainFull { conn, queue } => match self.check_queue(queue, *conn) {
                Err(e) => obs_err(e),
                Ok(()) => {
                    let q = self.queues.entry(queue.clone()).or_default();
                    let full = |s: Stored| FullMsg {
                        exchange: s.exchange,
                        routing_key: s.msg.routing_key,
                        body: s.msg.body,
                        headers: s.props.headers().as_ref().map_or_else(String::new, render),
                    };
                    Obs::DrainedFull(q.drain(..).map(full).collect())
                }
            },
            Op::Qos { .. }
            | Op::ConsumeReplies { .. }
            | Op::Request { .. }
            | Op::Serve { .. }
            | Op::ReplyAgain { .. }
            | Op::ReceiveReplies { .. }
            | Op::Receive { .. }
            | Op::Ack { .. }
            | Op::Nack { .. }
            | Op::Reject { .. } => Obs::NotApplicable,
        };
        self.sync();
        obs
    }

    async fn finish(&mut self) {}
}
