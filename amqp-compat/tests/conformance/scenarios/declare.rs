//! Declaring and deleting: idempotent re-declare, 406 on mismatch, queue arguments, 404, 405,
//! reserved names, idempotent deletes, server-generated names.

use amqp_compat::{
    ExchangeKind,
    options::QueueDeclareOptions,
    types::{AMQPValue, FieldTable},
};

use super::{
    B, code, consume, delete_exchange, delete_queue, get, none, ok, passive, purge, queue_info, s,
    t, x_opts,
};
use crate::ops::{Expect, Obs, Op, Scenario};

pub fn redeclare_and_406() -> Scenario {
    let ttl = |v: AMQPValue| t(&[("x-message-ttl", v)]);
    let ttl_and =
        |k: &str, v: AMQPValue| t(&[("x-message-ttl", AMQPValue::LongInt(60000)), (k, v)]);
    let durable = QueueDeclareOptions::durable;
    B::new()
        .op(delete_queue(0, "rd.q", false, false), Expect::Any)
        .queue_x(
            "rd.q",
            durable(),
            ttl(AMQPValue::LongInt(60000)),
            Expect::Any,
        )
        // The same value in another integer width is equivalent.
        .queue_x(
            "rd.q",
            durable(),
            ttl(AMQPValue::LongLongInt(60000)),
            queue_info(0, 0),
        )
        .queue_x(
            "rd.q",
            QueueDeclareOptions::default(),
            ttl(AMQPValue::LongInt(60000)),
            code(406),
        )
        .queue_x(
            "rd.q",
            durable().auto_delete(),
            ttl(AMQPValue::LongInt(60000)),
            code(406),
        )
        .queue_x("rd.q", durable(), ttl(AMQPValue::LongInt(1)), code(406))
        .queue_x("rd.q", durable(), none(), code(406))
        // Arguments RabbitMQ does not check may differ; an absent x-queue-type is classic.
        .queue_x("rd.q", durable(), ttl_and("x-unknown", s("x")), Expect::Any)
        .queue_x(
            "rd.q",
            durable(),
            ttl_and("x-queue-type", s("classic")),
            Expect::Any,
        )
        .exchange("rd.x", ExchangeKind::Direct)
        .exchange("rd.x", ExchangeKind::Direct)
        .exchange_x(
            "rd.x",
            ExchangeKind::Topic,
            x_opts(false, false, false),
            none(),
            code(406),
        )
        .exchange_x(
            "rd.x",
            ExchangeKind::Direct,
            x_opts(true, false, false),
            none(),
            code(406),
        )
        .op(delete_queue(0, "rd.q", false, false), Expect::Any)
        .done("idempotent re-declare, 406 PRECONDITION_FAILED on mismatch")
}

pub fn queue_arguments() -> Scenario {
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
    let quorum = t(&[
        ("x-queue-type", s("quorum")),
        ("x-dead-letter-exchange", s("qa.dlx")),
    ]);
    let exclusive_durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::exclusive()
    };
    let mut b = B::new()
        .queue_x(
            "qa.good",
            QueueDeclareOptions::default(),
            good,
            queue_info(0, 0),
        )
        .queue_x(
            "qa.quorum",
            QueueDeclareOptions::durable(),
            quorum.clone(),
            Expect::Any,
        )
        .queue_x(
            "qa.quorum-nd",
            QueueDeclareOptions::default(),
            quorum.clone(),
            code(406),
        )
        .queue_x("qa.quorum-ex", exclusive_durable, quorum, code(406));
    let bad = [
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
    ];
    for (i, (k, v)) in bad.into_iter().enumerate() {
        let name = format!("qa.bad{i}");
        b = b.queue_x(
            &name,
            QueueDeclareOptions::default(),
            t(&[(k, v)]),
            code(406),
        );
    }
    for q in ["qa.good", "qa.quorum"] {
        b = b.op(delete_queue(0, q, false, false), Expect::Any);
    }
    b.done("queue arguments: accepted, validated (406), stored")
}

pub fn passive_404() -> Scenario {
    let passive_x = x_opts(false, false, true);
    B::new()
        .queue_x("p4.none", passive(), none(), code(404))
        .exchange_x(
            "p4.none",
            ExchangeKind::Direct,
            passive_x,
            none(),
            code(404),
        )
        .exchange_x("", ExchangeKind::Direct, passive_x, none(), code(403))
        .queue("p4.q")
        .queue_x("p4.q", passive(), none(), queue_info(0, 0))
        .bind_x("p4.none", "amq.direct", "k", none(), code(404))
        .bind_x("p4.q", "p4.none", "k", none(), code(404))
        .publish_x("p4.none", "k", "x", None, false, code(404))
        .op(get(0, "p4.none", false), code(404))
        .op(purge("p4.none"), code(404))
        .op(delete_queue(0, "p4.q", false, false), Expect::Any)
        .done("passive declares and missing objects: 404")
}

pub fn exclusive_405() -> Scenario {
    let x5 = || "x5.q";
    B::new()
        .queue_x(x5(), QueueDeclareOptions::exclusive(), none(), Expect::Any)
        .queue_x(x5(), QueueDeclareOptions::exclusive(), none(), Expect::Any)
        .on(1)
        .queue_x(x5(), QueueDeclareOptions::exclusive(), none(), code(405))
        .queue_x(x5(), QueueDeclareOptions::default(), none(), code(405))
        .queue_x(x5(), passive(), none(), code(405))
        .bind_x(x5(), "amq.direct", "k", none(), code(405))
        .op(get(1, x5(), false), code(405))
        .op(consume(1, x5(), "x5.c", false), code(405))
        .op(
            Op::PurgeQueue {
                conn: 1,
                name: x5().into(),
            },
            code(405),
        )
        .op(delete_queue(1, x5(), false, false), code(405))
        .on(0)
        .queue_x(x5(), QueueDeclareOptions::default(), none(), code(405))
        .op(Op::CloseConnection { conn: 0 }, ok())
        .on(1)
        .queue_x(x5(), passive(), none(), code(404))
        .done("exclusive queues: 405 RESOURCE_LOCKED for other connections, gone with the owner")
}

pub fn reserved_names() -> Scenario {
    let o = x_opts(false, false, false);
    let custom = ExchangeKind::Custom("x-nonexistent".into());
    B::new()
        .exchange_x("", ExchangeKind::Direct, o, none(), code(403))
        .exchange_x("amq.custom", ExchangeKind::Direct, o, none(), code(403))
        .exchange_x(
            "amq.direct",
            ExchangeKind::Direct,
            x_opts(true, false, false),
            none(),
            ok(),
        )
        .queue_x(
            "amq.myqueue",
            QueueDeclareOptions::default(),
            none(),
            code(403),
        )
        .queue("rn.q")
        .bind_x("rn.q", "", "rn.q", none(), code(403))
        .op(delete_exchange("", false), code(403))
        .op(delete_exchange("amq.direct", false), code(403))
        .exchange_x(
            "rn.custom",
            custom,
            o,
            none(),
            Expect::Is(Obs::Error {
                code: 503,
                hard: true,
            }),
        )
        .op(delete_queue(0, "rn.q", false, false), Expect::Any)
        .done("reserved names and the default exchange: 403; unknown exchange type: 503")
}

pub fn idempotent_deletes() -> Scenario {
    B::new()
        .op(
            delete_queue(0, "id.never", false, false),
            Expect::Is(Obs::Count(0)),
        )
        .op(delete_exchange("id.never", false), ok())
        .exchange("id.x", ExchangeKind::Direct)
        .queue("id.q")
        .unbind("id.q", "id.x", "never-bound", ok())
        .bind("id.q", "id.x", "k")
        .op(delete_exchange("id.x", true), code(406))
        .publish("", "id.q", "one")
        .op(delete_queue(0, "id.q", false, true), code(406))
        .op(
            delete_queue(0, "id.q", false, false),
            Expect::Is(Obs::Count(1)),
        )
        .op(delete_exchange("id.x", true), ok())
        .done("deletes and unbinds of absent things succeed; if_unused/if_empty: 406")
}

pub fn server_named() -> Scenario {
    let generated = Obs::Queue {
        generated: true,
        message_count: 0,
        consumer_count: 0,
    };
    let opts = QueueDeclareOptions::exclusive().auto_delete();
    B::new()
        .queue_x("", opts, FieldTable::default(), Expect::Is(generated))
        .done("server-named queues: amq.gen-…")
}
