//! The scenarios, written once as steps; each states what RabbitMQ must answer where that is
//! the point of the scenario. Helpers keep the steps short.

mod consume;
mod declare;
mod exclusive;
mod routing;
mod rpc;

use amqp_compat::{
    ExchangeKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
};

use super::ops::{Expect, Msg, Obs, Op, Scenario, Step};

pub fn all() -> Vec<Scenario> {
    vec![
        routing::exchange_kinds(),
        routing::topic_edge_cases(),
        routing::headers_exchange(),
        routing::enqueued_once(),
        routing::e2e_and_alternate(),
        routing::mandatory_returns(),
        routing::wire(),
        declare::redeclare_and_406(),
        declare::queue_arguments(),
        declare::passive_404(),
        declare::exclusive_405(),
        declare::reserved_names(),
        declare::idempotent_deletes(),
        declare::server_named(),
        consume::basic_get_counts(),
        consume::prefetch(),
        consume::nack_requeue(),
        consume::auto_delete(),
        consume::expiration(),
        consume::dead_letters(),
        consume::length_limits(),
        consume::single_active_consumer(),
        consume::priorities(),
        consume::ack_rules(),
        rpc::direct_reply_to(),
        exclusive::counts_get_purge_delete(),
        exclusive::prefetch_requeue_cancel(),
        exclusive::rpc_tutorial(),
    ]
}

fn t(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn none() -> FieldTable {
    FieldTable::default()
}

fn ok() -> Expect {
    Expect::Is(Obs::Ok)
}

fn code(c: u16) -> Expect {
    Expect::Code(c)
}

fn queue_info(message_count: u32, consumer_count: u32) -> Expect {
    Expect::Is(Obs::Queue {
        generated: false,
        message_count,
        consumer_count,
    })
}

fn published(returned: Option<u16>) -> Expect {
    Expect::Is(Obs::Published {
        ack: true,
        returned,
    })
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions::default().passive()
}

fn x_opts(durable: bool, internal: bool, passive: bool) -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable,
        internal,
        passive,
        ..Default::default()
    }
}

fn purge(q: &str) -> Op {
    Op::PurgeQueue {
        conn: 0,
        name: q.into(),
    }
}

fn delete_queue(conn: usize, q: &str, if_unused: bool, if_empty: bool) -> Op {
    Op::DeleteQueue {
        conn,
        name: q.into(),
        if_unused,
        if_empty,
    }
}

fn delete_exchange(x: &str, if_unused: bool) -> Op {
    Op::DeleteExchange {
        conn: 0,
        name: x.into(),
        if_unused,
    }
}

fn get(conn: usize, q: &str, no_ack: bool) -> Op {
    Op::Get {
        conn,
        queue: q.into(),
        no_ack,
    }
}

fn drain(q: &str) -> Op {
    Op::Drain {
        conn: 0,
        queue: q.into(),
    }
}

fn consume(conn: usize, q: &str, tag: &str, exclusive: bool) -> Op {
    Op::Consume {
        conn,
        queue: q.into(),
        tag: tag.into(),
        exclusive,
    }
}

fn receive(tag: &str, max: usize, wait_ms: u64) -> Op {
    Op::Receive {
        tag: tag.into(),
        max,
        wait_ms,
    }
}

fn bind_exchange(destination: &str, source: &str, key: &str) -> Op {
    let (destination, source, key) = (destination.into(), source.into(), key.into());
    Op::BindExchange {
        conn: 0,
        destination,
        source,
        key,
        args: none(),
    }
}

fn got(key: &str, body: &str, left: u32) -> Expect {
    let m = Msg {
        routing_key: key.into(),
        body: body.into(),
        redelivered: false,
        delivery_tag: None,
        message_count: Some(left),
    };
    Expect::Is(Obs::Got(Some(m)))
}

fn drained(msgs: &[(&str, &str)]) -> Expect {
    let msg = |(k, b): &(&str, &str)| Msg {
        routing_key: (*k).into(),
        body: (*b).into(),
        redelivered: false,
        delivery_tag: None,
        message_count: None,
    };
    Expect::Is(Obs::Drained(msgs.iter().map(msg).collect()))
}

/// Deliveries to a consumer: (tag, routing key, body, redelivered).
fn received(msgs: &[(u64, &str, &str, bool)]) -> Expect {
    let msg = |(tag, k, b, r): &(u64, &str, &str, bool)| Msg {
        routing_key: (*k).into(),
        body: (*b).into(),
        redelivered: *r,
        delivery_tag: Some(*tag),
        message_count: None,
    };
    Expect::Is(Obs::Received(msgs.iter().map(msg).collect()))
}

/// A small builder: every step runs on connection 0 unless `on(conn)` says otherwise.
struct B {
    steps: Vec<Step>,
    conn: usize,
}

impl B {
    fn new() -> Self {
        Self {
            steps: Vec::new(),
            conn: 0,
        }
    }

    fn on(mut self, conn: usize) -> Self {
        self.conn = conn;
        self
    }

    fn op(mut self, op: Op, expect: Expect) -> Self {
        self.steps.push(Step { op, expect });
        self
    }

    fn exchange(self, name: &str, kind: ExchangeKind) -> Self {
        self.exchange_x(name, kind, ExchangeDeclareOptions::default(), none(), ok())
    }

    fn exchange_x(
        self,
        name: &str,
        kind: ExchangeKind,
        opts: ExchangeDeclareOptions,
        args: FieldTable,
        expect: Expect,
    ) -> Self {
        let conn = self.conn;
        self.op(
            Op::DeclareExchange {
                conn,
                name: name.into(),
                kind,
                opts,
                args,
            },
            expect,
        )
    }

    /// A plain queue, emptied (it may survive from an earlier run on a reused broker).
    fn queue(self, name: &str) -> Self {
        self.queue_x(name, QueueDeclareOptions::default(), none(), Expect::Any)
            .op(purge(name), Expect::Any)
    }

    fn queue_x(
        self,
        name: &str,
        opts: QueueDeclareOptions,
        args: FieldTable,
        expect: Expect,
    ) -> Self {
        let conn = self.conn;
        self.op(
            Op::DeclareQueue {
                conn,
                name: name.into(),
                opts,
                args,
            },
            expect,
        )
    }

    fn bind(self, queue: &str, exchange: &str, key: &str) -> Self {
        self.bind_x(queue, exchange, key, none(), ok())
    }

    fn bind_x(
        self,
        queue: &str,
        exchange: &str,
        key: &str,
        args: FieldTable,
        expect: Expect,
    ) -> Self {
        let (conn, queue, exchange, key) = (self.conn, queue.into(), exchange.into(), key.into());
        self.op(
            Op::Bind {
                conn,
                queue,
                exchange,
                key,
                args,
            },
            expect,
        )
    }

    fn unbind(self, queue: &str, exchange: &str, key: &str, expect: Expect) -> Self {
        let (conn, queue, exchange, key) = (self.conn, queue.into(), exchange.into(), key.into());
        self.op(
            Op::Unbind {
                conn,
                queue,
                exchange,
                key,
                args: none(),
            },
            expect,
        )
    }

    fn publish(self, exchange: &str, key: &str, body: &str) -> Self {
        self.publish_x(exchange, key, body, None, false, Expect::Any)
    }

    /// A mandatory publish with the confirm it must get.
    fn publish_m(self, exchange: &str, key: &str, body: &str, expect: Expect) -> Self {
        self.publish_x(exchange, key, body, None, true, expect)
    }

    fn publish_h(self, exchange: &str, body: &str, headers: Option<FieldTable>) -> Self {
        self.publish_x(exchange, "", body, headers, false, Expect::Any)
    }

    /// A publish with an `expiration` property.
    fn publish_e(
        self,
        exchange: &str,
        key: &str,
        body: &str,
        expiration: &str,
        expect: Expect,
    ) -> Self {
        let (conn, exchange, key, body) = (self.conn, exchange.into(), key.into(), body.into());
        let expiration = Some(expiration.to_owned());
        let op = Op::Publish {
            conn,
            exchange,
            key,
            body,
            headers: None,
            expiration,
            mandatory: false,
            immediate: false,
            priority: None,
        };
        self.op(op, expect)
    }

    fn publish_x(
        self,
        exchange: &str,
        key: &str,
        body: &str,
        headers: Option<FieldTable>,
        mandatory: bool,
        expect: Expect,
    ) -> Self {
        let (conn, exchange, key, body) = (self.conn, exchange.into(), key.into(), body.into());
        self.op(
            Op::Publish {
                conn,
                exchange,
                key,
                body,
                headers,
                expiration: None,
                mandatory,
                immediate: false,
                priority: None,
            },
            expect,
        )
    }

    fn drain(self, queue: &str) -> Self {
        self.op(drain(queue), Expect::Any)
    }

    fn done(self, name: &'static str) -> Scenario {
        Scenario {
            name,
            steps: self.steps,
        }
    }
}
