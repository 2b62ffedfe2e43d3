//! Exclusive queues, which amqp-compat keeps in the owning connection's memory (design E,
//! docs/amqp-mapping.md §4): counts on declare, basic_get, purge and delete; publishes
//! (confirmed) from the owner and from another connection; prefetch; a nack's requeue back
//! to the queue's head; cancel leaving deliveries unacked; RabbitMQ's RPC tutorial.

use amqp_compat::options::QueueDeclareOptions;

use super::rpc::{request_to, serve};
use super::{B, code, consume, get, got, none, ok, passive, published, queue_info, received};
use crate::ops::{Expect, Msg, Obs, Op, Scenario};

fn ex() -> QueueDeclareOptions {
    QueueDeclareOptions::exclusive()
}

fn nack(delivery_tag: u64, multiple: bool) -> Op {
    Op::Nack {
        conn: 0,
        delivery_tag,
        multiple,
        requeue: true,
    }
}

fn ack(delivery_tag: u64, multiple: bool) -> Op {
    Op::Ack {
        conn: 0,
        delivery_tag,
        multiple,
    }
}

fn count(n: u32) -> Expect {
    Expect::Is(Obs::Count(n))
}

/// A `basic_get` answer that was delivered before.
fn got_again(key: &str, body: &str, left: u32) -> Expect {
    Expect::Is(Obs::Got(Some(Msg {
        routing_key: key.into(),
        body: body.into(),
        redelivered: true,
        delivery_tag: None,
        message_count: Some(left),
    })))
}

pub fn counts_get_purge_delete() -> Scenario {
    let q = "eq.a";
    B::new()
        .queue_x(q, ex(), none(), queue_info(0, 0))
        .publish_x("", q, "1", None, false, published(None))
        .publish_x("", q, "2", None, false, published(None))
        // Another connection may publish to it (confirmed), not use it: 405.
        .on(1)
        .publish_x("", q, "3", None, false, published(None))
        .queue_x(q, passive(), none(), code(405))
        .on(0)
        .queue_x(q, passive(), none(), queue_info(3, 0))
        .queue_x(q, ex(), none(), queue_info(3, 0))
        .op(get(0, q, false), got(q, "1", 2))
        .op(get(0, q, true), got(q, "2", 1))
        .publish_x("", q, "4", None, false, published(None))
        .op(super::purge(q), count(2))
        .queue_x(q, passive(), none(), queue_info(0, 0))
        .op(get(0, q, true), Expect::Is(Obs::Got(None)))
        .publish_x("", q, "5", None, false, published(None))
        .op(super::delete_queue(0, q, false, false), count(1))
        .queue_x(q, passive(), none(), code(404))
        .done("exclusive queue: counts on declare, get, purge, delete")
}

pub fn prefetch_requeue_cancel() -> Scenario {
    let q = "eq.b";
    let mut b = B::new().queue_x(q, ex(), none(), Expect::Any);
    for m in ["a", "b", "c", "d"] {
        b = b.publish_x("", q, m, None, false, published(None));
    }
    b.op(
        Op::Qos {
            conn: 0,
            prefetch: 2,
        },
        Expect::Any,
    )
    .op(consume(0, q, "eq.c1", false), ok())
    .op(
        super::receive("eq.c1", 2, 5000),
        received(&[(1, q, "a", false), (2, q, "b", false)]),
    )
    .op(super::receive("eq.c1", 1, 400), received(&[]))
    // A requeued message goes back to its place: before c.
    .op(nack(1, false), ok())
    .op(
        super::receive("eq.c1", 1, 5000),
        received(&[(3, q, "a", true)]),
    )
    .op(ack(2, false), ok())
    .op(
        super::receive("eq.c1", 1, 5000),
        received(&[(4, q, "c", false)]),
    )
    .op(super::receive("eq.c1", 1, 400), received(&[]))
    // Cancel: the stream ends; its deliveries (3 and 4) stay unacknowledged.
    .op(
        Op::Cancel {
            conn: 0,
            tag: "eq.c1".into(),
        },
        ok(),
    )
    .queue_x(q, passive(), none(), queue_info(1, 0))
    .op(get(0, q, false), got(q, "d", 0))
    // Both back, in their order. RabbitMQ applies a nack's requeue asynchronously (a count
    // right after it may still say 0): wait for the two.
    .op(nack(4, true), ok())
    .op(
        Op::WaitFor {
            conn: 0,
            queue: q.into(),
            messages: 2,
        },
        ok(),
    )
    .queue_x(q, passive(), none(), queue_info(2, 0))
    .op(get(0, q, true), got_again(q, "a", 1))
    .op(get(0, q, true), got_again(q, "c", 0))
    // Two consumers share it round robin, in the order they came.
    .op(consume(0, q, "eq.c2", false), ok())
    .op(consume(0, q, "eq.c3", false), ok())
    .publish_x("", q, "e", None, false, published(None))
    .publish_x("", q, "f", None, false, published(None))
    .publish_x("", q, "g", None, false, published(None))
    .op(
        super::receive("eq.c2", 2, 5000),
        received(&[(8, q, "e", false), (10, q, "g", false)]),
    )
    .op(
        super::receive("eq.c3", 1, 5000),
        received(&[(9, q, "f", false)]),
    )
    .op(ack(0, true), ok())
    .queue_x(q, passive(), none(), queue_info(0, 2))
    .done("exclusive queue: prefetch, requeue to its place, cancel, round robin")
}

pub fn rpc_tutorial() -> Scenario {
    let (q, reply) = ("eq.rpc", "eq.rpc.reply");
    let served = |body: &str, id: &str| {
        Expect::Is(Obs::Served {
            body: body.into(),
            correlation_id: Some(id.into()),
            reply_to: Some(reply.into()),
            reply: Box::new(Obs::Published {
                ack: true,
                returned: None,
            }),
        })
    };
    B::new()
        .on(1)
        .queue(q)
        .on(0)
        .queue_x(reply, ex().auto_delete(), none(), queue_info(0, 0))
        .op(consume(0, reply, "eq.rc", false), ok())
        .op(request_to(0, q, "q1", "c1", reply), published(None))
        .op(request_to(0, q, "q2", "c2", reply), published(None))
        .op(serve(1, q, false), served("q1", "c1"))
        .op(serve(1, q, true), served("q2", "c2"))
        .op(
            super::receive("eq.rc", 2, 5000),
            received(&[(1, reply, "re:q1", false), (2, reply, "re:q2", false)]),
        )
        .op(ack(2, true), ok())
        // The last consumer goes: the auto-delete queue with it; a late reply routes nowhere.
        .op(
            Op::Cancel {
                conn: 0,
                tag: "eq.rc".into(),
            },
            ok(),
        )
        .queue_x(reply, passive(), none(), code(404))
        .op(
            Op::ReplyAgain {
                conn: 1,
                body: "late".into(),
            },
            published(None),
        )
        .done("RPC tutorial: an exclusive auto-delete reply queue")
}
