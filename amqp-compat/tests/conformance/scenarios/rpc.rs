//! RPC over direct reply-to (`amq.rabbitmq.reply-to`): the pseudo-queue, the reply_to
//! rewrite, replies with their properties and delivery tags, and RabbitMQ's errors.

use super::{B, code, consume, none, ok, published, queue_info, received};
use crate::ops::{Expect, Obs, Op, Reply, Scenario};

const TOKEN: &str = "amq.rabbitmq.reply-to.<token>";

fn replies_consumer(conn: usize, tag: &str, no_ack: bool) -> Op {
    let tag = tag.into();
    Op::ConsumeReplies { conn, tag, no_ack }
}

fn request(conn: usize, queue: &str, body: &str, correlation_id: &str) -> Op {
    let (queue, body, correlation_id) = (queue.into(), body.into(), correlation_id.into());
    Op::Request {
        conn,
        queue,
        body,
        correlation_id,
        reply_to: None,
    }
}

/// A request answered to a queue of the requester's (RabbitMQ's RPC tutorial).
pub(super) fn request_to(conn: usize, queue: &str, body: &str, id: &str, reply_to: &str) -> Op {
    let (queue, body, correlation_id) = (queue.into(), body.into(), id.into());
    Op::Request {
        conn,
        queue,
        body,
        correlation_id,
        reply_to: Some(reply_to.into()),
    }
}

pub(super) fn serve(conn: usize, queue: &str, mandatory: bool) -> Op {
    let queue = queue.into();
    Op::Serve {
        conn,
        queue,
        mandatory,
    }
}

fn served(body: &str, correlation_id: &str, returned: Option<u16>) -> Expect {
    Expect::Is(Obs::Served {
        body: body.into(),
        correlation_id: Some(correlation_id.into()),
        reply_to: Some(TOKEN.into()),
        reply: Box::new(Obs::Published {
            ack: true,
            returned,
        }),
    })
}

fn receive_replies(tag: &str, max: usize, wait_ms: u64) -> Op {
    let tag = tag.into();
    Op::ReceiveReplies { tag, max, wait_ms }
}

/// Replies: (delivery tag, body, correlation id).
fn replies(msgs: &[(u64, &str, &str)]) -> Expect {
    let reply = |(tag, body, id): &(u64, &str, &str)| Reply {
        exchange: String::new(),
        routing_key: TOKEN.into(),
        body: (*body).into(),
        correlation_id: Some((*id).into()),
        redelivered: false,
        delivery_tag: *tag,
    };
    Expect::Is(Obs::Replies(msgs.iter().map(reply).collect()))
}

fn reply_again(conn: usize, body: &str) -> Op {
    let body = body.into();
    Op::ReplyAgain { conn, body }
}

pub fn direct_reply_to() -> Scenario {
    let q = "drt.q";
    B::new()
        .on(1)
        .queue(q)
        .queue("drt.w")
        // A request asking for a reply on a channel without the reply consumer: 406.
        .op(request(0, q, "q0", "c0"), code(406))
        // The reply consumer must not ack: 406.
        .op(replies_consumer(0, "drt.bad", false), code(406))
        .op(replies_consumer(0, "drt.r", true), ok())
        // No declare needed; a declare answers as a passive one with one consumer.
        .queue_x(
            "amq.rabbitmq.reply-to",
            Default::default(),
            none(),
            queue_info(0, 1),
        )
        .op(request(0, q, "q1", "c1"), published(None))
        .op(request(0, q, "q2", "c2"), published(None))
        // The server sees the rewritten reply_to; a reply is confirmed at once, and a
        // mandatory one is also returned (it routes to no queue).
        .op(serve(1, q, false), served("q1", "c1", None))
        .op(serve(1, q, true), served("q2", "c2", Some(312)))
        // Both arrive, with their correlation ids, the channel's next tag (not used up),
        // not redelivered, from the default exchange with the reply name as routing key.
        .op(
            receive_replies("drt.r", 2, 5000),
            replies(&[(1, "re:q1", "c1"), (1, "re:q2", "c2")]),
        )
        // A reply name that names no requester is dropped (returned when mandatory).
        .publish_x(
            "",
            "amq.rabbitmq.reply-to.garbage",
            "x",
            None,
            false,
            published(None),
        )
        .publish_m(
            "",
            "amq.rabbitmq.reply-to.garbage",
            "x",
            published(Some(312)),
        )
        .op(receive_replies("drt.r", 1, 400), replies(&[]))
        // The replies left tag 1 to the next delivery.
        .on(0)
        .publish("", "drt.w", "w1")
        .op(consume(0, "drt.w", "drt.c", false), ok())
        .op(
            super::receive("drt.c", 1, 5000),
            received(&[(1, "drt.w", "w1", false)]),
        )
        .op(
            Op::Ack {
                conn: 0,
                delivery_tag: 1,
                multiple: false,
            },
            ok(),
        )
        // The requester goes: a late reply is dropped without an error, and does not reach
        // the channel's next reply consumer.
        .op(
            Op::Cancel {
                conn: 0,
                tag: "drt.r".into(),
            },
            ok(),
        )
        .op(reply_again(1, "late"), published(None))
        .op(replies_consumer(0, "drt.r2", true), ok())
        .op(reply_again(1, "stale"), published(None))
        .op(receive_replies("drt.r2", 1, 400), replies(&[]))
        // One reply consumer per channel: 406.
        .op(replies_consumer(0, "drt.r3", true), code(406))
        // A reply name that does not decode: 404 on declare.
        .queue_x(
            "amq.rabbitmq.reply-to.garbage",
            Default::default(),
            none(),
            code(404),
        )
        .done("direct reply-to: amq.rabbitmq.reply-to, rewritten reply_to, replies, 406s")
}
