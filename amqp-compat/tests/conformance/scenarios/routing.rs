//! Routing: each exchange kind, topic edge cases, headers, enqueued-once, exchange-to-exchange
//! and alternate exchanges, mandatory returns, and Wire's topology.

use amqp_compat::{ExchangeKind, options::QueueDeclareOptions, types::AMQPValue};

use super::{B, bind_exchange, code, drain, drained, none, ok, published, s, t, x_opts};
use crate::ops::{Expect, Obs, Op, Scenario};

pub fn exchange_kinds() -> Scenario {
    B::new()
        .exchange("ek.direct", ExchangeKind::Direct)
        .exchange("ek.topic", ExchangeKind::Topic)
        .exchange("ek.fanout", ExchangeKind::Fanout)
        .queue("ek.q1")
        .queue("ek.q2")
        .queue("ek.q3")
        .bind("ek.q1", "ek.direct", "k1")
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
        .op(drain("ek.q1"), drained(&[("k1", "d1"), ("a.b", "t1")]))
        .drain("ek.q2")
        .drain("ek.q3")
        .done("exchanges of each kind")
}

pub fn topic_edge_cases() -> Scenario {
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
        b = b.queue(&q).bind(&q, "te.topic", p);
    }
    for (i, k) in keys.iter().enumerate() {
        b = b.publish("te.topic", k, &format!("m{i}"));
    }
    for i in 0..patterns.len() {
        b = b.drain(&format!("te.q{i}"));
    }
    b.done("topic: empty words, literal wildcards, # in the middle")
}

pub fn headers_exchange() -> Scenario {
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
    let h1 = t(&[("k", s("v")), ("n", AMQPValue::LongLongInt(1))]);
    let h2 = t(&[("n", AMQPValue::ShortShortInt(2))]);
    let h3 = t(&[("p", AMQPValue::Boolean(false)), ("x-extra", s("no"))]);
    B::new()
        .exchange("he.x", ExchangeKind::Headers)
        .queue("he.all")
        .queue("he.any")
        .queue("he.present")
        .queue("he.none")
        .bind_x("he.all", "he.x", "", all, ok())
        .bind_x("he.any", "he.x", "", any, ok())
        .bind_x("he.present", "he.x", "", present, ok())
        .bind_x("he.none", "he.x", "", t(&[("x-match", s("all"))]), ok())
        .bind_x(
            "he.all",
            "he.x",
            "",
            t(&[("x-match", s("most"))]),
            code(406),
        )
        .publish_h("he.x", "h1", Some(h1))
        .publish_h("he.x", "h2", Some(h2))
        .publish_h("he.x", "h3", Some(h3))
        .publish_h("he.x", "h4", None)
        .op(drain("he.all"), drained(&[("", "h1")]))
        .drain("he.any")
        .drain("he.present")
        .drain("he.none")
        .done("headers exchange: x-match all/any, x- keys ignored, void = presence")
}

pub fn enqueued_once() -> Scenario {
    B::new()
        .exchange("eo.topic", ExchangeKind::Topic)
        .exchange("eo.fanout", ExchangeKind::Fanout)
        .queue("eo.q")
        .bind("eo.q", "eo.topic", "a.*")
        .bind("eo.q", "eo.topic", "*.b")
        .bind("eo.q", "eo.topic", "#")
        .bind("eo.q", "eo.fanout", "1")
        .bind("eo.q", "eo.fanout", "2")
        .bind("eo.q", "eo.fanout", "1")
        .publish("eo.topic", "a.b", "once-topic")
        .publish("eo.fanout", "", "once-fanout")
        .op(
            drain("eo.q"),
            drained(&[("a.b", "once-topic"), ("", "once-fanout")]),
        )
        .done("a message matching several bindings of one queue is enqueued once")
}

pub fn e2e_and_alternate() -> Scenario {
    let ae = t(&[("alternate-exchange", s("ea.ae"))]);
    B::new()
        .exchange("ea.ae", ExchangeKind::Fanout)
        .exchange_x(
            "ea.front",
            ExchangeKind::Direct,
            x_opts(false, false, false),
            ae,
            ok(),
        )
        .exchange("ea.inner", ExchangeKind::Topic)
        .queue("ea.q")
        .queue("ea.lost")
        .op(bind_exchange("ea.inner", "ea.front", "k"), ok())
        .op(bind_exchange("ea.front", "ea.inner", "#"), ok())
        .bind("ea.q", "ea.inner", "k")
        .bind("ea.q", "ea.front", "k")
        .bind("ea.lost", "ea.ae", "")
        .publish_m("ea.front", "k", "via-both", published(None))
        .publish_m("ea.front", "other", "to-ae", published(None))
        .op(drain("ea.q"), drained(&[("k", "via-both")]))
        .op(drain("ea.lost"), drained(&[("other", "to-ae")]))
        .done("exchange-to-exchange bindings (with a cycle) and alternate exchanges")
}

fn immediate(exchange: &str, key: &str) -> Op {
    let (exchange, key, body) = (exchange.into(), key.into(), "immediate".into());
    let (headers, expiration, mandatory, immediate, priority) = (None, None, false, true, None);
    Op::Publish {
        conn: 0,
        exchange,
        key,
        body,
        headers,
        expiration,
        mandatory,
        immediate,
        priority,
    }
}

pub fn mandatory_returns() -> Scenario {
    B::new()
        .exchange("mr.x", ExchangeKind::Direct)
        .publish_m("mr.x", "nobody", "lost", published(Some(312)))
        .publish_x("mr.x", "nobody", "dropped", None, false, published(None))
        .publish_m("", "mr.no-queue", "lost2", published(Some(312)))
        .exchange_x(
            "mr.internal",
            ExchangeKind::Fanout,
            x_opts(false, true, false),
            none(),
            ok(),
        )
        .publish_x("mr.internal", "", "refused", None, false, code(403))
        .op(
            immediate("mr.x", "nobody"),
            Expect::Is(Obs::Error {
                code: 540,
                hard: true,
            }),
        )
        .done("mandatory publishes with no route are returned (312) then acked; immediate: 540")
}

/// Wire's topology (gundeck, cannon, federation): a direct exchange with durable quorum client
/// queues bound with both `<uid>` and `<uid>.<cid>`, a temporary client's exclusive queue bound
/// with `<uid>` and `<uid>.temporary`, and federation queues on the default exchange.
pub fn wire() -> Scenario {
    let ex = "wr.user-notifications";
    let fed = "wr.backend-notifications.example.com";
    let client_args = || {
        t(&[
            ("x-queue-type", s("quorum")),
            ("x-dead-letter-exchange", s("wr.dead")),
        ])
    };
    let fed_args = t(&[("x-single-active-consumer", AMQPValue::Boolean(true))]);
    let mut b = B::new().exchange(ex, ExchangeKind::Direct);
    for (uid, cid) in [("u1", "c1"), ("u1", "c2"), ("u2", "c1")] {
        let q = format!("wr.user-notifications.{uid}.{cid}");
        b = b
            .queue_x(
                &q,
                QueueDeclareOptions::durable(),
                client_args(),
                Expect::Any,
            )
            .op(super::purge(&q), Expect::Any)
            .bind(&q, ex, uid)
            .bind(&q, ex, &format!("{uid}.{cid}"));
    }
    let temp = QueueDeclareOptions::exclusive().auto_delete();
    b = b
        .queue_x("wr.temp", temp, none(), Expect::Any)
        .bind("wr.temp", ex, "u1")
        .bind("wr.temp", ex, "u1.temporary")
        .queue_x(
            fed,
            QueueDeclareOptions::durable(),
            fed_args.clone(),
            Expect::Any,
        )
        .queue_x(fed, QueueDeclareOptions::durable(), fed_args, Expect::Any)
        .op(super::purge(fed), Expect::Any)
        .publish_m(ex, "u1", "to-all-u1", published(None))
        .publish_m(ex, "u1.c2", "to-u1-c2", published(None))
        .publish_m(ex, "u1.temporary", "to-u1-temp", published(None))
        .publish_m(ex, "u3", "nobody", published(Some(312)))
        .publish_m("", fed, "fed", published(None))
        .op(
            drain("wr.user-notifications.u1.c1"),
            drained(&[("u1", "to-all-u1")]),
        )
        .op(
            drain("wr.user-notifications.u1.c2"),
            drained(&[("u1", "to-all-u1"), ("u1.c2", "to-u1-c2")]),
        )
        .op(drain("wr.user-notifications.u2.c1"), drained(&[]))
        .op(
            drain("wr.temp"),
            drained(&[("u1", "to-all-u1"), ("u1.temporary", "to-u1-temp")]),
        )
        .op(drain(fed), drained(&[(fed, "fed")]));
    for q in ["u1.c1", "u1.c2", "u2.c1"] {
        let name = format!("wr.user-notifications.{q}");
        b = b.op(super::delete_queue(0, &name, false, false), Expect::Any);
    }
    b.done("Wire: user-notifications fan-out to client queues, temporary clients, federation")
}
