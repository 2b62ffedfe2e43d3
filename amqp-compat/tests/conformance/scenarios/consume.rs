//! Consuming: basic_get counts, prefetch, nack/reject, the asynchronous 406 of a bad delivery
//! tag, auto-delete and exclusive consumers.

use amqp_compat::options::QueueDeclareOptions;

use super::{B, code, consume, get, got, none, ok, passive, queue_info, received};
use crate::ops::{Expect, Obs, Op, Scenario};

fn ack(delivery_tag: u64, multiple: bool) -> Op {
    Op::Ack {
        conn: 0,
        delivery_tag,
        multiple,
    }
}

pub fn basic_get_counts() -> Scenario {
    B::new()
        .queue("bg.q")
        .publish("", "bg.q", "1")
        .publish("", "bg.q", "2")
        .publish("", "bg.q", "3")
        .queue_x("bg.q", passive(), none(), queue_info(3, 0))
        .op(get(0, "bg.q", false), got("bg.q", "1", 2))
        .op(get(0, "bg.q", true), got("bg.q", "2", 1))
        .op(get(0, "bg.q", false), got("bg.q", "3", 0))
        .op(get(0, "bg.q", false), Expect::Is(Obs::Got(None)))
        .done("basic_get: message_count is what is left")
}

pub fn prefetch() -> Scenario {
    let mut b = B::new().queue("pf.q");
    for i in 1..=5 {
        b = b.publish("", "pf.q", &format!("m{i}"));
    }
    let r = |tag: u64| {
        (
            tag,
            "pf.q",
            ["", "m1", "m2", "m3", "m4", "m5"][tag as usize],
            false,
        )
    };
    b.op(
        Op::Qos {
            conn: 0,
            prefetch: 2,
        },
        Expect::Any,
    )
    .op(consume(0, "pf.q", "pf.c", false), ok())
    // The expected deliveries are awaited generously (a loaded machine is slow); then a short
    // wait shows that no more come while the window is full.
    .op(super::receive("pf.c", 2, 5000), received(&[r(1), r(2)]))
    .op(super::receive("pf.c", 1, 400), received(&[]))
    .op(ack(1, false), ok())
    .op(super::receive("pf.c", 1, 5000), received(&[r(3)]))
    .op(super::receive("pf.c", 1, 400), received(&[]))
    .op(ack(3, true), ok())
    .op(super::receive("pf.c", 2, 5000), received(&[r(4), r(5)]))
    .op(ack(5, true), ok())
    .op(
        Op::Cancel {
            conn: 0,
            tag: "pf.c".into(),
        },
        ok(),
    )
    .done("prefetch bounds unacked deliveries; ack multiple")
}

pub fn nack_requeue() -> Scenario {
    let nack = Op::Nack {
        conn: 0,
        delivery_tag: 1,
        multiple: false,
        requeue: true,
    };
    let reject = Op::Reject {
        conn: 0,
        delivery_tag: 3,
        requeue: false,
    };
    B::new()
        .queue("nr.q")
        .publish("", "nr.q", "again")
        .publish("", "nr.q", "bad")
        .op(Op::Qos { conn: 0, prefetch: 1 }, Expect::Any)
        .op(consume(0, "nr.q", "nr.c", false), ok())
        .op(super::receive("nr.c", 1, 5000), received(&[(1, "nr.q", "again", false)]))
        .op(nack, ok())
        .op(super::receive("nr.c", 1, 5000), received(&[(2, "nr.q", "again", true)]))
        .op(ack(2, false), ok())
        .op(super::receive("nr.c", 1, 5000), received(&[(3, "nr.q", "bad", false)]))
        .op(reject, ok())
        .op(super::receive("nr.c", 1, 300), received(&[]))
        // basic.ack of an unknown tag "succeeds"; RabbitMQ closes the channel (406) and lapin
        // reports it on the channel's consumers (and its next call).
        .op(ack(99, false), ok())
        .op(super::receive("nr.c", 1, 5000), code(406))
        .done("nack requeue redelivers with redelivered=true; reject drops; a bad tag closes the channel later")
}

pub fn auto_delete() -> Scenario {
    let opts = QueueDeclareOptions::default().auto_delete();
    B::new()
        .queue_x("ad.q", opts, none(), Expect::Any)
        .op(consume(0, "ad.q", "ad.c1", false), ok())
        .on(1)
        .op(consume(1, "ad.q", "ad.c2", true), code(403))
        .on(0)
        .queue_x("ad.q", passive(), none(), queue_info(0, 1))
        .op(Op::Cancel { conn: 0, tag: "ad.c1".into() }, ok())
        .queue_x("ad.q", passive(), none(), code(404))
        .done("auto-delete: deleted when the last consumer goes; exclusive consume on a used queue: 403")
}

pub fn expiration() -> Scenario {
    let mut b = B::new().queue("ex.idle");
    // Values between 2^38 and about 3.1e11 ms are accepted by RabbitMQ and refused by
    // amqp-compat (docs/amqp-mapping.md §11): not used here.
    let cases = [
        "60000",
        "0",
        "-1",
        "abc",
        "1.5",
        "+60000",
        " 5",
        "5 ",
        "",
        "00",
        "0060000",
        "-0",
        "+0",
        "4294967296",
        "9223372036854775807",
        "99999999999999999999",
    ];
    for (i, e) in cases.iter().enumerate() {
        b = b.publish_e("", "ex.idle", &format!("e{i}:{e}"), e, Expect::Any);
    }
    let kept = [
        ("ex.idle", "e0:60000"),
        ("ex.idle", "e5:+60000"),
        ("ex.idle", "e10:0060000"),
        ("ex.idle", "e13:4294967296"),
    ];
    let ttl0 = super::t(&[("x-message-ttl", amqp_compat::types::AMQPValue::LongInt(0))]);
    b.op(super::drain("ex.idle"), super::drained(&kept))
        // x-message-ttl 0 and no consumer: dropped too.
        .queue_x("ex.ttl0", QueueDeclareOptions::default(), ttl0, Expect::Any)
        .publish("", "ex.ttl0", "gone")
        .op(super::drain("ex.ttl0"), super::drained(&[]))
        // Wire's transient notifications: expiration "0" reaches a waiting consumer.
        .queue("ex.live")
        .op(consume(0, "ex.live", "ex.c", false), ok())
        .publish_e("", "ex.live", "now", "0", super::published(None))
        // Tag 5: the channel's four basic_gets above took tags 1 to 4.
        .op(
            super::receive("ex.c", 1, 5000),
            received(&[(5, "ex.live", "now", false)]),
        )
        .op(ack(5, false), ok())
        .op(super::delete_queue(0, "ex.ttl0", false, false), Expect::Any)
        .done("per-message expiration: what parses, and \"0\" on a queue without consumers")
}

pub fn dead_letters() -> Scenario {
    use amqp_compat::ExchangeKind;
    let with_dlx = super::t(&[("x-dead-letter-exchange", super::s("dl.dlx"))]);
    let with_dlrk = super::t(&[
        ("x-dead-letter-exchange", super::s("dl.dlx")),
        ("x-dead-letter-routing-key", super::s("rk")),
    ]);
    let back = super::t(&[("x-dead-letter-exchange", super::s("dl.work"))]);
    let full = |q: &str| Op::DrainFull {
        conn: 0,
        queue: q.into(),
    };
    let reject = |q: &str| Op::GetReject {
        conn: 0,
        queue: q.into(),
    };
    let wait = |q: &str, messages: u32| Op::WaitFor {
        conn: 0,
        queue: q.into(),
        messages,
    };
    B::new()
        .exchange("dl.dlx", ExchangeKind::Topic)
        .exchange("dl.work", ExchangeKind::Direct)
        .queue_x(
            "dl.q1",
            QueueDeclareOptions::default(),
            with_dlx,
            Expect::Any,
        )
        .queue_x(
            "dl.q2",
            QueueDeclareOptions::default(),
            with_dlrk,
            Expect::Any,
        )
        .queue_x("dl.dead", QueueDeclareOptions::default(), back, Expect::Any)
        .op(super::purge("dl.q1"), Expect::Any)
        .op(super::purge("dl.q2"), Expect::Any)
        .op(super::purge("dl.dead"), Expect::Any)
        .bind("dl.q1", "dl.work", "job")
        .bind("dl.dead", "dl.dlx", "#")
        .publish("dl.work", "job", "first")
        .publish_e("", "dl.q2", "second", "60000", Expect::Any)
        // One at a time: dead letters from two queues may arrive in either order.
        .op(reject("dl.q1"), Expect::Any)
        .op(wait("dl.dead", 1), ok())
        .op(reject("dl.q2"), Expect::Any)
        .op(wait("dl.dead", 2), ok())
        // Dead-lettered twice: from dl.q1 (rejected), then from dl.dead back to dl.work -> dl.q1.
        .op(reject("dl.dead"), Expect::Any)
        .op(wait("dl.q1", 1), ok())
        .op(reject("dl.q1"), Expect::Any)
        .op(wait("dl.dead", 2), ok())
        .op(full("dl.dead"), Expect::Any)
        .op(full("dl.q1"), Expect::Any)
        .done("dead letters: x-death, x-first-death-*, routing key, repeated deaths")
}

pub fn length_limits() -> Scenario {
    use amqp_compat::{ExchangeKind, types::AMQPValue};
    let (t, s) = (super::t, super::s);
    let limit = |n: i32| ("x-max-length", AMQPValue::LongInt(n));
    let dlx = ("x-dead-letter-exchange", s("ml.dlx"));
    let drop = t(&[limit(2), dlx.clone()]);
    let reject = t(&[limit(1), ("x-overflow", s("reject-publish"))]);
    let reject_dlx = t(&[
        limit(1),
        ("x-overflow", s("reject-publish-dlx")),
        dlx.clone(),
    ]);
    let bytes = t(&[("x-max-length-bytes", AMQPValue::LongInt(10))]);
    let full = |q: &str| Op::DrainFull {
        conn: 0,
        queue: q.into(),
    };
    let nack = Expect::Is(Obs::Published {
        ack: false,
        returned: None,
    });
    let mut b = B::new().exchange("ml.dlx", ExchangeKind::Fanout);
    for (q, args) in [
        ("ml.drop", drop),
        ("ml.reject", reject),
        ("ml.rdlx", reject_dlx),
        ("ml.bytes", bytes),
    ] {
        b = b
            .queue_x(q, QueueDeclareOptions::default(), args, Expect::Any)
            .op(super::purge(q), Expect::Any);
    }
    b = b.queue("ml.dead").bind("ml.dead", "ml.dlx", "");
    for i in 1..=4 {
        b = b.publish_m("", "ml.drop", &format!("d{i}"), super::published(None));
    }
    b.publish_m("", "ml.reject", "r1", super::published(None))
        .publish_m("", "ml.reject", "r2", nack.clone())
        .op(
            // d1 and d2 are dead-lettered before x2, so ml.dead's order is fixed.
            Op::WaitFor { conn: 0, queue: "ml.dead".into(), messages: 2 },
            ok(),
        )
        .publish_m("", "ml.rdlx", "x1", super::published(None))
        .publish_m("", "ml.rdlx", "x2", nack)
        .publish("", "ml.bytes", "12345")
        .publish("", "ml.bytes", "67890")
        .publish("", "ml.bytes", "abc")
        .op(super::drain("ml.drop"), super::drained(&[("ml.drop", "d3"), ("ml.drop", "d4")]))
        .op(super::drain("ml.reject"), super::drained(&[("ml.reject", "r1")]))
        .op(super::drain("ml.rdlx"), super::drained(&[("ml.rdlx", "x1")]))
        .op(super::drain("ml.bytes"), super::drained(&[("ml.bytes", "67890"), ("ml.bytes", "abc")]))
        .op(Op::WaitFor { conn: 0, queue: "ml.dead".into(), messages: 3 }, ok())
        .op(full("ml.dead"), Expect::Any)
        .done("x-max-length(-bytes) with drop-head, reject-publish, reject-publish-dlx; maxlen dead letters")
}

pub fn single_active_consumer() -> Scenario {
    use amqp_compat::types::AMQPValue;
    let sac = super::t(&[("x-single-active-consumer", AMQPValue::Boolean(true))]);
    let cancel = |conn: usize, tag: &str| Op::Cancel {
        conn,
        tag: tag.into(),
    };
    B::new()
        .queue_x("sa.q", QueueDeclareOptions::default(), sac, Expect::Any)
        .op(super::purge("sa.q"), Expect::Any)
        .op(consume(0, "sa.q", "sa.a", false), ok())
        .on(1)
        .op(consume(1, "sa.q", "sa.b", false), ok())
        .on(0)
        .queue_x("sa.q", passive(), none(), queue_info(0, 2))
        .publish("", "sa.q", "1")
        .publish("", "sa.q", "2")
        .op(
            super::receive("sa.a", 2, 5000),
            received(&[(1, "sa.q", "1", false), (2, "sa.q", "2", false)]),
        )
        .op(super::receive("sa.b", 1, 300), received(&[]))
        .op(ack(2, true), ok())
        // The active consumer is cancelled: its unacked delivery stays with its channel (still
        // ackable there), and the other consumer takes over for new messages.
        .publish("", "sa.q", "3")
        .op(
            super::receive("sa.a", 1, 5000),
            received(&[(3, "sa.q", "3", false)]),
        )
        .op(cancel(0, "sa.a"), ok())
        .op(super::receive("sa.b", 1, 300), received(&[]))
        .op(ack(3, false), ok())
        .publish("", "sa.q", "4")
        .op(
            super::receive("sa.b", 1, 5000),
            received(&[(1, "sa.q", "4", false)]),
        )
        // The active consumer's connection closes with two deliveries unacked: they come back,
        // redelivered, to the next consumer.
        .publish("", "sa.q", "5")
        .op(
            super::receive("sa.b", 1, 5000),
            received(&[(2, "sa.q", "5", false)]),
        )
        .op(consume(0, "sa.q", "sa.c", false), ok())
        .op(Op::CloseConnection { conn: 1 }, ok())
        .op(
            super::receive("sa.c", 2, 5000),
            received(&[(4, "sa.q", "4", true), (5, "sa.q", "5", true)]),
        )
        .done("single active consumer: one consumer gets everything; the next takes over on cancel")
}

pub fn priorities() -> Scenario {
    use amqp_compat::types::AMQPValue;
    let max5 = super::t(&[("x-max-priority", AMQPValue::LongInt(5))]);
    let to = |queue: &str, body: &str, priority: Option<u8>| Op::Publish {
        conn: 0,
        exchange: String::new(),
        key: queue.into(),
        body: body.into(),
        headers: None,
        expiration: None,
        mandatory: false,
        immediate: false,
        priority,
    };
    let publish = |body: &str, priority| to("pr.q", body, priority);
    let plain = |body: &str, priority| to("pr.plain", body, priority);
    let mut b = B::new()
        .queue_x("pr.q", QueueDeclareOptions::default(), max5, Expect::Any)
        .op(super::purge("pr.q"), Expect::Any)
        .queue("pr.plain");
    for (body, p) in [
        ("none", None),
        ("p1", Some(1)),
        ("p9", Some(9)),
        ("p5", Some(5)),
        ("p1b", Some(1)),
        ("p0", Some(0)),
    ] {
        b = b
            .op(publish(body, p), super::published(None))
            .op(plain(body, p), super::published(None));
    }
    let q = |body| ("pr.q", body);
    let plain_q = |body| ("pr.plain", body);
    b.op(
        super::drain("pr.q"),
        super::drained(&[q("p9"), q("p5"), q("p1"), q("p1b"), q("none"), q("p0")]),
    )
    .op(
        super::drain("pr.plain"),
        super::drained(&[
            plain_q("none"),
            plain_q("p1"),
            plain_q("p9"),
            plain_q("p5"),
            plain_q("p1b"),
            plain_q("p0"),
        ]),
    )
    .done("x-max-priority: higher first, capped at the maximum, FIFO within; no effect without it")
}

pub fn ack_rules() -> Scenario {
    let r = |tag: u64, body: &'static str| (tag, "ar.q", body, false);
    B::new()
        .queue("ar.q")
        .publish("", "ar.q", "1")
        .publish("", "ar.q", "2")
        .publish("", "ar.q", "3")
        .op(consume(0, "ar.q", "ar.c", false), ok())
        .op(
            super::receive("ar.c", 3, 5000),
            received(&[r(1, "1"), r(2, "2"), r(3, "3")]),
        )
        .op(ack(2, false), ok())
        // multiple up to 3 settles 1 and 3 (2 is gone already).
        .op(ack(3, true), ok())
        .publish("", "ar.q", "4")
        .op(super::receive("ar.c", 1, 5000), received(&[r(4, "4")]))
        // multiple up to an already-settled tag: 406 (asynchronous), as `acks::Unacked` says.
        .op(ack(3, true), ok())
        .op(super::receive("ar.c", 1, 5000), code(406))
        .done("ack multiple settles every outstanding tag up to N; N itself must be outstanding")
}
