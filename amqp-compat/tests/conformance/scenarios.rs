//! The scenarios, written once as steps; each names what RabbitMQ must answer where that is
//! the point of the scenario.

use amqp_compat::{
    ExchangeKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
};

use super::ops::{Expect, Msg, Obs, Op, Scenario, Step};

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
    fn step(mut self, op: Op, expect: Expect) -> Self {
        self.steps.push(Step { op, expect });
        self
    }
    fn exchange(self, name: &str, kind: ExchangeKind) -> Self {
        let conn = self.conn;
        let op = Op::DeclareExchange {
            conn,
            name: name.into(),
            kind,
            opts: ExchangeDeclareOptions::default(),
            args: FieldTable::default(),
        };
        self.step(op, Expect::Is(Obs::Ok))
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
        self.step(
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
    fn queue(self, name: &str) -> Self {
        self.queue_x(
            name,
            QueueDeclareOptions::default(),
            FieldTable::default(),
            Expect::Any,
        )
    }
    fn queue_x(
        self,
        name: &str,
        opts: QueueDeclareOptions,
        args: FieldTable,
        expect: Expect,
    ) -> Self {
        let conn = self.conn;
        self.step(
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
        self.bind_x(
            queue,
            exchange,
            key,
            FieldTable::default(),
            Expect::Is(Obs::Ok),
        )
    }
    fn bind_x(
        self,
        queue: &str,
        exchange: &str,
        key: &str,
        args: FieldTable,
        expect: Expect,
    ) -> Self {
        let conn = self.conn;
        self.step(
            Op::Bind {
                conn,
                queue: queue.into(),
                exchange: exchange.into(),
                key: key.into(),
                args,
            },
            expect,
        )
    }
    fn publish(self, exchange: &str, key: &str, body: &str) -> Self {
        self.publish_x(exchange, key, body, None, false, Expect::Any)
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
        let conn = self.conn;
        let op = Op::Publish {
            conn,
            exchange: exchange.into(),
            key: key.into(),
            body: body.into(),
            headers,
            mandatory,
        };
        self.step(op, expect)
    }
    fn drain(self, queue: &str) -> Self {
        let conn = self.conn;
        self.step(
            Op::Drain {
                conn,
                queue: queue.into(),
            },
            Expect::Any,
        )
    }
    fn op(self, op: Op, expect: Expect) -> Self {
        self.step(op, expect)
    }
    fn done(self, name: &'static str) -> Scenario {
        Scenario {
            name,
            steps: self.steps,
        }
    }
}

fn got(key: &str, body: &str, left: u32) -> Obs {
    Obs::Got(Some(Msg {
        routing_key: key.into(),
        body: body.into(),
        redelivered: false,
        delivery_tag: None,
        message_count: Some(left),
    }))
}

fn delivered(tag: u64, key: &str, body: &str, redelivered: bool) -> Msg {
    Msg {
        routing_key: key.into(),
        body: body.into(),
        redelivered,
        delivery_tag: Some(tag),
        message_count: None,
    }
}

pub fn all() -> Vec<Scenario> {
    vec![
        exchange_kinds(),
        topic_edge_cases(),
        headers_exchange(),
        enqueued_once(),
        e2e_and_alternate(),
        redeclare_and_406(),
        queue_arguments(),
        passive_404(),
        exclusive_405(),
        reserved_names(),
        idempotent_deletes(),
        mandatory_returns(),
        basic_get_counts(),
        prefetch(),
        nack_requeue(),
        auto_delete(),
        server_named(),
    ]
}

fn exchange_kinds() -> Scenario {
    let mut b = B::new()
        .exchange("ek.direct", ExchangeKind::Direct)
        .exchange("ek.topic", ExchangeKind::Topic)
        .exchange("ek.fanout", ExchangeKind::Fanout);
    for q in ["ek.q1", "ek.q2", "ek.q3"] {
        b = b.queue(q).op(
            Op::PurgeQueue {
                conn: 0,
                name: q.into(),
            },
            Expect::Any,
        );
    }
    b.bind("ek.q1", "ek.direct", "k1")
        .bind("ek.q2", "ek.direct", "k1")
        .bind("ek.q3", "ek.direct", "")
        .bind("ek.q1", "ek.topic", "a.*")
        .bind("ek.q2", "ek.topic", "#")
        .bind("ek.q3", "ek.fanout", "ignored")
        .publish("ek.direct", "k1", "d1")
        .publish("ek.direct", "", "d-empty")
        .publish("ek.direct", "K1", "d-case")
        .publish("ek.topic", "a.b", "t1")
        .publish("ek.topic", "a", "t2")
        .publish("ek.fanout", "whatever", "f1")
        .publish("", "ek.q3", "default")
        .publish("", "ek.nope", "default-nowhere")
        .drain("ek.q1")
        .drain("ek.q2")
        .drain("ek.q3")
        .done("exchanges of each kind")
}

fn topic_edge_cases() -> Scenario {
    let patterns = [
        "*", "#", "", "*.*", "a.#", "#.a", "a.#.b", "a.*.b", "#.#", "a*", "*.", ".*", "a..b",
        "a.#.#.b", "# .x", "~",
    ];
    let keys = [
        "", "a", ".", "a.", ".a", "a.b", "a..b", "a.x.y.b", "a*", "*", "#", "a.*.b", "# .x", "~",
        "x.a", "a.b.a",
    ];
    let mut b = B::new().exchange("te.topic", ExchangeKind::Topic);
    for (i, p) in patterns.iter().enumerate() {
        let q = format!("te.q{i}");
        b = b
            .queue(&q)
            .op(
                Op::PurgeQueue {
                    conn: 0,
                    name: q.clone(),
                },
                Expect::Any,
            )
            .bind(&q, "te.topic", p);
    }
    for (i, k) in keys.iter().enumerate() {
        b = b.publish("te.topic", k, &format!("m{i}"));
    }
    for i in 0..patterns.len() {
        b = b.drain(&format!("te.q{i}"));
    }
    b.done("topic: empty words, literal wildcards, # in the middle")
}

fn headers_exchange() -> Scenario {
    let all = t(&[
        ("x-match", s("all")),
        ("k", s("v")),
        ("n", AMQPValue::LongInt(1)),
        ("x-extra", s("ignored")),
    ]);
    let any = t(&[
        ("x-match", s("any")),
        ("k", s("v")),
        ("n", AMQPValue::LongInt(2)),
    ]);
    let present = t(&[("p", AMQPValue::Void)]);
    let none = t(&[("x-match", s("all"))]);
    B::new()
        .exchange("he.x", ExchangeKind::Headers)
        .queue("he.all")
        .queue("he.any")
        .queue("he.present")
        .queue("he.none")
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "he.all".into(),
            },
            Expect::Any,
        )
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "he.any".into(),
            },
            Expect::Any,
        )
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "he.present".into(),
            },
            Expect::Any,
        )
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "he.none".into(),
            },
            Expect::Any,
        )
        .bind_x("he.all", "he.x", "", all, Expect::Is(Obs::Ok))
        .bind_x("he.any", "he.x", "", any, Expect::Is(Obs::Ok))
        .bind_x("he.present", "he.x", "", present, Expect::Is(Obs::Ok))
        .bind_x("he.none", "he.x", "", none, Expect::Is(Obs::Ok))
        .bind_x(
            "he.all",
            "he.x",
            "",
            t(&[("x-match", s("most"))]),
            Expect::Code(406),
        )
        .publish_x(
            "he.x",
            "",
            "h1",
            Some(t(&[("k", s("v")), ("n", AMQPValue::LongLongInt(1))])),
            false,
            Expect::Any,
        )
        .publish_x(
            "he.x",
            "",
            "h2",
            Some(t(&[("n", AMQPValue::ShortShortInt(2))])),
            false,
            Expect::Any,
        )
        .publish_x(
            "he.x",
            "",
            "h3",
            Some(t(&[("p", AMQPValue::Boolean(false)), ("x-extra", s("no"))])),
            false,
            Expect::Any,
        )
        .publish_x("he.x", "", "h4", None, false, Expect::Any)
        .drain("he.all")
        .drain("he.any")
        .drain("he.present")
        .drain("he.none")
        .done("headers exchange: x-match all/any, x- keys ignored, void = presence")
}

fn enqueued_once() -> Scenario {
    B::new()
        .exchange("eo.topic", ExchangeKind::Topic)
        .exchange("eo.fanout", ExchangeKind::Fanout)
        .queue("eo.q")
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "eo.q".into(),
            },
            Expect::Any,
        )
        .bind("eo.q", "eo.topic", "a.*")
        .bind("eo.q", "eo.topic", "*.b")
        .bind("eo.q", "eo.topic", "#")
        .bind("eo.q", "eo.fanout", "1")
        .bind("eo.q", "eo.fanout", "2")
        .bind("eo.q", "eo.fanout", "1")
        .publish("eo.topic", "a.b", "once-topic")
        .publish("eo.fanout", "", "once-fanout")
        .drain("eo.q")
        .done("a message matching several bindings of one queue is enqueued once")
}

fn e2e_and_alternate() -> Scenario {
    let ae = t(&[("alternate-exchange", s("ea.ae"))]);
    B::new()
        .exchange("ea.ae", ExchangeKind::Fanout)
        .exchange_x(
            "ea.front",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            ae,
            Expect::Is(Obs::Ok),
        )
        .exchange("ea.inner", ExchangeKind::Topic)
        .queue("ea.q")
        .queue("ea.lost")
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "ea.q".into(),
            },
            Expect::Any,
        )
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "ea.lost".into(),
            },
            Expect::Any,
        )
        .op(
            Op::BindExchange {
                conn: 0,
                destination: "ea.inner".into(),
                source: "ea.front".into(),
                key: "k".into(),
                args: FieldTable::default(),
            },
            Expect::Is(Obs::Ok),
        )
        .op(
            Op::BindExchange {
                conn: 0,
                destination: "ea.front".into(),
                source: "ea.inner".into(),
                key: "#".into(),
                args: FieldTable::default(),
            },
            Expect::Is(Obs::Ok),
        )
        .bind("ea.q", "ea.inner", "k")
        .bind("ea.q", "ea.front", "k")
        .bind("ea.lost", "ea.ae", "")
        .publish_x(
            "ea.front",
            "k",
            "via-both",
            None,
            true,
            Expect::Is(Obs::Published {
                ack: true,
                returned: None,
            }),
        )
        .publish_x(
            "ea.front",
            "other",
            "to-ae",
            None,
            true,
            Expect::Is(Obs::Published {
                ack: true,
                returned: None,
            }),
        )
        .drain("ea.q")
        .drain("ea.lost")
        .done("exchange-to-exchange bindings (with a cycle) and alternate exchanges")
}

fn redeclare_and_406() -> Scenario {
    let ttl = |v: AMQPValue| t(&[("x-message-ttl", v)]);
    B::new()
        .op(
            Op::DeleteQueue {
                conn: 0,
                name: "rd.q".into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Any,
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::durable(),
            ttl(AMQPValue::LongInt(60000)),
            Expect::Any,
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::durable(),
            ttl(AMQPValue::LongLongInt(60000)),
            Expect::Is(Obs::Queue {
                generated: false,
                message_count: 0,
                consumer_count: 0,
            }),
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::default(),
            ttl(AMQPValue::LongInt(60000)),
            Expect::Code(406),
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::durable().auto_delete(),
            ttl(AMQPValue::LongInt(60000)),
            Expect::Code(406),
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::durable(),
            ttl(AMQPValue::LongInt(1)),
            Expect::Code(406),
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::durable(),
            FieldTable::default(),
            Expect::Code(406),
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::durable(),
            t(&[
                ("x-message-ttl", AMQPValue::LongInt(60000)),
                ("x-unknown", s("x")),
            ]),
            Expect::Any,
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::durable(),
            t(&[
                ("x-message-ttl", AMQPValue::LongInt(60000)),
                ("x-queue-type", s("classic")),
            ]),
            Expect::Any,
        )
        .exchange("rd.x", ExchangeKind::Direct)
        .exchange("rd.x", ExchangeKind::Direct)
        .exchange_x(
            "rd.x",
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
            Expect::Code(406),
        )
        .exchange_x(
            "rd.x",
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
            Expect::Code(406),
        )
        .op(
            Op::DeleteQueue {
                conn: 0,
                name: "rd.q".into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Any,
        )
        .done("idempotent re-declare, 406 PRECONDITION_FAILED on mismatch")
}

fn queue_arguments() -> Scenario {
    let mut b = B::new();
    let good = t(&[
        ("x-message-ttl", AMQPValue::LongInt(1000)),
        ("x-expires", AMQPValue::LongInt(600_000)),
        ("x-max-length", AMQPValue::LongInt(10)),
        ("x-max-length-bytes", AMQPValue::LongInt(100_000)),
        ("x-overflow", s("reject-publish")),
        ("x-dead-letter-exchange", s("qa.dlx")),
        ("x-dead-letter-routing-key", s("dead")),
        ("x-max-priority", AMQPValue::LongInt(9)),
        ("x-single-active-consumer", AMQPValue::Boolean(true)),
    ]);
    b = b.queue_x(
        "qa.good",
        QueueDeclareOptions::default(),
        good,
        Expect::Is(Obs::Queue {
            generated: false,
            message_count: 0,
            consumer_count: 0,
        }),
    );
    let quorum = t(&[
        ("x-queue-type", s("quorum")),
        ("x-dead-letter-exchange", s("qa.dlx")),
    ]);
    b = b.queue_x(
        "qa.quorum",
        QueueDeclareOptions::durable(),
        quorum.clone(),
        Expect::Any,
    );
    b = b.queue_x(
        "qa.quorum-nd",
        QueueDeclareOptions::default(),
        quorum.clone(),
        Expect::Code(406),
    );
    b = b.queue_x(
        "qa.quorum-ex",
        QueueDeclareOptions {
            durable: true,
            exclusive: true,
            ..Default::default()
        },
        quorum,
        Expect::Code(406),
    );
    for (i, (k, v)) in [
        ("x-message-ttl", AMQPValue::LongInt(-1)),
        ("x-message-ttl", s("1000")),
        ("x-expires", AMQPValue::LongInt(0)),
        ("x-max-length", AMQPValue::LongInt(-1)),
        ("x-overflow", s("drop-tail")),
        ("x-max-priority", AMQPValue::LongInt(256)),
        ("x-max-priority", AMQPValue::LongInt(-1)),
        ("x-single-active-consumer", s("yes")),
        ("x-queue-type", s("fancy")),
        ("x-dead-letter-exchange", AMQPValue::LongInt(5)),
        ("x-dead-letter-routing-key", s("no-dlx")),
    ]
    .into_iter()
    .enumerate()
    {
        b = b.queue_x(
            &format!("qa.bad{i}"),
            QueueDeclareOptions::default(),
            t(&[(k, v)]),
            Expect::Code(406),
        );
    }
    for q in ["qa.good", "qa.quorum"] {
        b = b.op(
            Op::DeleteQueue {
                conn: 0,
                name: q.into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Any,
        );
    }
    b.done("queue arguments: accepted, validated (406), stored")
}

fn passive_404() -> Scenario {
    B::new()
        .queue_x(
            "p4.none",
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
            Expect::Code(404),
        )
        .exchange_x(
            "p4.none",
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
            Expect::Code(404),
        )
        .exchange_x(
            "",
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
            Expect::Code(403),
        )
        .queue("p4.q")
        .queue_x(
            "p4.q",
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
            Expect::Is(Obs::Queue {
                generated: false,
                message_count: 0,
                consumer_count: 0,
            }),
        )
        .bind_x(
            "p4.none",
            "amq.direct",
            "k",
            FieldTable::default(),
            Expect::Code(404),
        )
        .bind_x(
            "p4.q",
            "p4.none",
            "k",
            FieldTable::default(),
            Expect::Code(404),
        )
        .publish_x("p4.none", "k", "x", None, false, Expect::Code(404))
        .op(
            Op::Get {
                conn: 0,
                queue: "p4.none".into(),
                no_ack: false,
            },
            Expect::Code(404),
        )
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "p4.none".into(),
            },
            Expect::Code(404),
        )
        .op(
            Op::DeleteQueue {
                conn: 0,
                name: "p4.q".into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Any,
        )
        .done("passive declares and missing objects: 404")
}

fn exclusive_405() -> Scenario {
    B::new()
        .queue_x(
            "x5.q",
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
            Expect::Any,
        )
        .queue_x(
            "x5.q",
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
            Expect::Any,
        )
        .on(1)
        .queue_x(
            "x5.q",
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
            Expect::Code(405),
        )
        .queue_x(
            "x5.q",
            QueueDeclareOptions::default(),
            FieldTable::default(),
            Expect::Code(405),
        )
        .queue_x(
            "x5.q",
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
            Expect::Code(405),
        )
        .bind_x(
            "x5.q",
            "amq.direct",
            "k",
            FieldTable::default(),
            Expect::Code(405),
        )
        .op(
            Op::Get {
                conn: 1,
                queue: "x5.q".into(),
                no_ack: false,
            },
            Expect::Code(405),
        )
        .op(
            Op::Consume {
                conn: 1,
                queue: "x5.q".into(),
                tag: "x5.c".into(),
                exclusive: false,
            },
            Expect::Code(405),
        )
        .op(
            Op::PurgeQueue {
                conn: 1,
                name: "x5.q".into(),
            },
            Expect::Code(405),
        )
        .op(
            Op::DeleteQueue {
                conn: 1,
                name: "x5.q".into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Code(405),
        )
        .on(0)
        .queue_x(
            "x5.q",
            QueueDeclareOptions::default(),
            FieldTable::default(),
            Expect::Code(405),
        )
        .op(Op::CloseConnection { conn: 0 }, Expect::Is(Obs::Ok))
        .on(1)
        .queue_x(
            "x5.q",
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
            Expect::Code(404),
        )
        .done("exclusive queues: 405 RESOURCE_LOCKED for other connections, gone with the owner")
}

fn reserved_names() -> Scenario {
    let o = ExchangeDeclareOptions::default();
    let none = FieldTable::default;
    B::new()
        .exchange_x("", ExchangeKind::Direct, o, none(), Expect::Code(403))
        .exchange_x(
            "amq.custom",
            ExchangeKind::Direct,
            o,
            none(),
            Expect::Code(403),
        )
        .exchange_x(
            "amq.direct",
            ExchangeKind::Direct,
            ExchangeDeclareOptions { durable: true, ..o },
            none(),
            Expect::Is(Obs::Ok),
        )
        .queue_x(
            "amq.myqueue",
            QueueDeclareOptions::default(),
            none(),
            Expect::Code(403),
        )
        .queue("rn.q")
        .bind_x("rn.q", "", "rn.q", none(), Expect::Code(403))
        .op(
            Op::DeleteExchange {
                conn: 0,
                name: "".into(),
                if_unused: false,
            },
            Expect::Code(403),
        )
        .op(
            Op::DeleteExchange {
                conn: 0,
                name: "amq.direct".into(),
                if_unused: false,
            },
            Expect::Code(403),
        )
        .exchange_x(
            "rn.custom",
            ExchangeKind::Custom("x-nonexistent".into()),
            o,
            none(),
            Expect::Is(Obs::Error {
                code: 503,
                hard: true,
            }),
        )
        .op(
            Op::DeleteQueue {
                conn: 0,
                name: "rn.q".into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Any,
        )
        .done("reserved names and the default exchange: 403; unknown exchange type: 503")
}

fn idempotent_deletes() -> Scenario {
    B::new()
        .op(
            Op::DeleteQueue {
                conn: 0,
                name: "id.never".into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Is(Obs::Count(0)),
        )
        .op(
            Op::DeleteExchange {
                conn: 0,
                name: "id.never".into(),
                if_unused: false,
            },
            Expect::Is(Obs::Ok),
        )
        .exchange("id.x", ExchangeKind::Direct)
        .queue("id.q")
        .op(
            Op::Unbind {
                conn: 0,
                queue: "id.q".into(),
                exchange: "id.x".into(),
                key: "never-bound".into(),
                args: FieldTable::default(),
            },
            Expect::Is(Obs::Ok),
        )
        .bind("id.q", "id.x", "k")
        .op(
            Op::DeleteExchange {
                conn: 0,
                name: "id.x".into(),
                if_unused: true,
            },
            Expect::Code(406),
        )
        .publish("", "id.q", "one")
        .op(
            Op::DeleteQueue {
                conn: 0,
                name: "id.q".into(),
                if_unused: false,
                if_empty: true,
            },
            Expect::Code(406),
        )
        .op(
            Op::DeleteQueue {
                conn: 0,
                name: "id.q".into(),
                if_unused: false,
                if_empty: false,
            },
            Expect::Is(Obs::Count(1)),
        )
        .op(
            Op::DeleteExchange {
                conn: 0,
                name: "id.x".into(),
                if_unused: true,
            },
            Expect::Is(Obs::Ok),
        )
        .done("deletes and unbinds of absent things succeed; if_unused/if_empty: 406")
}

fn mandatory_returns() -> Scenario {
    B::new()
        .exchange("mr.x", ExchangeKind::Direct)
        .publish_x(
            "mr.x",
            "nobody",
            "lost",
            None,
            true,
            Expect::Is(Obs::Published {
                ack: true,
                returned: Some(312),
            }),
        )
        .publish_x(
            "mr.x",
            "nobody",
            "dropped",
            None,
            false,
            Expect::Is(Obs::Published {
                ack: true,
                returned: None,
            }),
        )
        .publish_x(
            "",
            "mr.no-queue",
            "lost2",
            None,
            true,
            Expect::Is(Obs::Published {
                ack: true,
                returned: Some(312),
            }),
        )
        .exchange_x(
            "mr.internal",
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                internal: true,
                ..Default::default()
            },
            FieldTable::default(),
            Expect::Is(Obs::Ok),
        )
        .publish_x("mr.internal", "", "refused", None, false, Expect::Code(403))
        .done("mandatory publishes with no route are returned (312) then acked")
}

fn basic_get_counts() -> Scenario {
    B::new()
        .queue("bg.q")
        .op(
            Op::PurgeQueue {
                conn: 0,
                name: "bg.q".into(),
            },
            Expect::Any,
        )
        .publish("", "bg.q", "1")
        .publish("", "bg.q", "2")
        .publish("", "bg.q", "3")
        .queue_x(
            "bg.q",
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
            Expect::Is(Obs::Queue {
                generated: false,
                message_count: 3,
                consumer_count: 0,
            }),
        )
        .op(
            Op::Get {
                conn: 0,
                queue: "bg.q".into(),
                no_ack: false,
            },
            Expect::Is(got("bg.q", "1", 2)),
        )
        .op(
            Op::Get {
                conn: 0,
                queue: "bg.q".into(),
                no_ack: true,
            },
            Expect::Is(got("bg.q", "2", 1)),
        )
        .op(
            Op::Get {
                conn: 0,
                queue: "bg.q".into(),
                no_ack: false,
            },
            Expect::Is(got("bg.q", "3", 0)),
        )
        .op(
            Op::Get {
                conn: 0,
                queue: "bg.q".into(),
                no_ack: false,
            },
            Expect::Is(Obs::Got(None)),
        )
        .done("basic_get: message_count is what is left")
}

fn prefetch() -> Scenario {
    let mut b = B::new().queue("pf.q").op(
        Op::PurgeQueue {
            conn: 0,
            name: "pf.q".into(),
        },
        Expect::Any,
    );
    for i in 1..=5 {
        b = b.publish("", "pf.q", &format!("m{i}"));
    }
    b.op(
        Op::Qos {
            conn: 0,
            prefetch: 2,
        },
        Expect::Any,
    )
    .op(
        Op::Consume {
            conn: 0,
            queue: "pf.q".into(),
            tag: "pf.c".into(),
            exclusive: false,
        },
        Expect::Is(Obs::Ok),
    )
    .op(
        Op::Receive {
            tag: "pf.c".into(),
            max: 5,
            wait_ms: 400,
        },
        Expect::Is(Obs::Received(vec![
            delivered(1, "pf.q", "m1", false),
            delivered(2, "pf.q", "m2", false),
        ])),
    )
    .op(
        Op::Ack {
            conn: 0,
            delivery_tag: 1,
            multiple: false,
        },
        Expect::Is(Obs::Ok),
    )
    .op(
        Op::Receive {
            tag: "pf.c".into(),
            max: 5,
            wait_ms: 400,
        },
        Expect::Is(Obs::Received(vec![delivered(3, "pf.q", "m3", false)])),
    )
    .op(
        Op::Ack {
            conn: 0,
            delivery_tag: 3,
            multiple: true,
        },
        Expect::Is(Obs::Ok),
    )
    .op(
        Op::Receive {
            tag: "pf.c".into(),
            max: 5,
            wait_ms: 400,
        },
        Expect::Is(Obs::Received(vec![
            delivered(4, "pf.q", "m4", false),
            delivered(5, "pf.q", "m5", false),
        ])),
    )
    .op(
        Op::Ack {
            conn: 0,
            delivery_tag: 5,
            multiple: true,
        },
        Expect::Is(Obs::Ok),
    )
    .op(
        Op::Cancel {
            conn: 0,
            tag: "pf.c".into(),
        },
        Expect::Is(Obs::Ok),
    )
    .done("prefetch bounds unacked deliveries; ack multiple")
}

fn nack_requeue() -> Scenario {
    B::new()
        .queue("nr.q")
        .op(Op::PurgeQueue { conn: 0, name: "nr.q".into() }, Expect::Any)
        .publish("", "nr.q", "again")
        .publish("", "nr.q", "bad")
        .op(Op::Qos { conn: 0, prefetch: 1 }, Expect::Any)
        .op(Op::Consume { conn: 0, queue: "nr.q".into(), tag: "nr.c".into(), exclusive: false }, Expect::Is(Obs::Ok))
        .op(Op::Receive { tag: "nr.c".into(), max: 1, wait_ms: 2000 }, Expect::Is(Obs::Received(vec![delivered(1, "nr.q", "again", false)])))
        .op(Op::Nack { conn: 0, delivery_tag: 1, multiple: false, requeue: true }, Expect::Is(Obs::Ok))
        .op(Op::Receive { tag: "nr.c".into(), max: 1, wait_ms: 2000 }, Expect::Is(Obs::Received(vec![delivered(2, "nr.q", "again", true)])))
        .op(Op::Ack { conn: 0, delivery_tag: 2, multiple: false }, Expect::Is(Obs::Ok))
        .op(Op::Receive { tag: "nr.c".into(), max: 1, wait_ms: 2000 }, Expect::Is(Obs::Received(vec![delivered(3, "nr.q", "bad", false)])))
        .op(Op::Reject { conn: 0, delivery_tag: 3, requeue: false }, Expect::Is(Obs::Ok))
        .op(Op::Receive { tag: "nr.c".into(), max: 1, wait_ms: 300 }, Expect::Is(Obs::Received(vec![])))
        // basic.ack of an unknown tag "succeeds"; RabbitMQ closes the channel (406) and lapin
        // reports it on the channel's consumers (and its next call).
        .op(Op::Ack { conn: 0, delivery_tag: 99, multiple: false }, Expect::Is(Obs::Ok))
        .op(Op::Receive { tag: "nr.c".into(), max: 1, wait_ms: 5000 }, Expect::Code(406))
        .done("nack requeue redelivers with redelivered=true; reject drops; a bad tag closes the channel later")
}

fn auto_delete() -> Scenario {
    B::new()
        .queue_x("ad.q", QueueDeclareOptions::default().auto_delete(), FieldTable::default(), Expect::Any)
        .op(Op::Consume { conn: 0, queue: "ad.q".into(), tag: "ad.c1".into(), exclusive: false }, Expect::Is(Obs::Ok))
        .on(1)
        .op(Op::Consume { conn: 1, queue: "ad.q".into(), tag: "ad.c2".into(), exclusive: true }, Expect::Code(403))
        .on(0)
        .queue_x("ad.q", QueueDeclareOptions::default().passive(), FieldTable::default(), Expect::Is(Obs::Queue { generated: false, message_count: 0, consumer_count: 1 }))
        .op(Op::Cancel { conn: 0, tag: "ad.c1".into() }, Expect::Is(Obs::Ok))
        .queue_x("ad.q", QueueDeclareOptions::default().passive(), FieldTable::default(), Expect::Code(404))
        .done("auto-delete: deleted when the last consumer goes; exclusive consume on a used queue: 403")
}

fn server_named() -> Scenario {
    B::new()
        .queue_x(
            "",
            QueueDeclareOptions::exclusive().auto_delete(),
            FieldTable::default(),
            Expect::Is(Obs::Queue {
                generated: true,
                message_count: 0,
                consumer_count: 0,
            }),
        )
        .done("server-named queues: amq.gen-…")
}
