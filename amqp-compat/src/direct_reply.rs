//! RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`) on core NATS (`docs/amqp-mapping.md`
//! §8): RPC replies that go straight to the requester, never through a stream.
//!
//! - A channel consumes the pseudo-queue [`QUEUE`] (only with `no_ack`; at most one such
//!   consumer per channel): it subscribes to an inbox of its own, `_INBOX.<nuid>`.
//! - A publish on that channel with `reply_to = "amq.rabbitmq.reply-to"` reaches its receiver
//!   with `reply_to = "amq.rabbitmq.reply-to.<token>"`, the token being the inbox in base64url
//!   (without padding); on a channel without the consumer it is 406, as RabbitMQ.
//! - A publish to the default exchange with a routing key of that form is one core NATS
//!   message to the inbox (the envelope header carries the properties), nothing stored; a
//!   reply to a requester that is gone, or with a token that does not decode, is dropped
//!   silently, as RabbitMQ drops it. It routes to no queue: confirmed at once, and returned
//!   (312) when `mandatory`, as RabbitMQ 3.10 does.
//!
//! Why a token cannot reach another subject: it must decode to exactly `_INBOX.` followed by
//! one token of letters and digits ([`decode_token`]); anything else is dropped before a
//! subject is built.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{Stream, StreamExt};
use nats_proto::HeaderMap;
use tokio::sync::oneshot;

use crate::BasicProperties;
use crate::channel::{Channel, ChannelInner};
use crate::consume::Consumer;
use crate::envelope::{ENVELOPE_HEADER, Envelope};
use crate::error::{Error, Result};
use crate::message::{Acker, Delivery};
use crate::options::BasicConsumeOptions;
use crate::queue::Queue;
use crate::routing::generated_name;
use crate::store::nats_error;
use crate::types::ShortString;

/// The pseudo-queue a requester consumes its replies from, and the `reply_to` it publishes
/// requests with.
pub const QUEUE: &str = "amq.rabbitmq.reply-to";
/// What a rewritten `reply_to` (and so a reply's routing key) starts with.
const PREFIX: &str = "amq.rabbitmq.reply-to.";
/// The subject prefix of every reply inbox.
const INBOX: &str = "_INBOX.";
/// Longest inbox id accepted from a token (ours are 22 characters).
const MAX_ID: usize = 64;

/// A channel's reply consumer (RabbitMQ allows one per channel).
#[derive(Debug)]
pub(crate) struct ReplyConsumer {
    tag: String,
    /// `amq.rabbitmq.reply-to.<token>`: what requests carry as `reply_to`.
    reply_to: ShortString,
    /// Dropped to end the consumer's stream; sent an error when the channel fails.
    end: oneshot::Sender<Error>,
    /// The inbox subscription, shared with the stream: taken (and so unsubscribed) when the
    /// consumer ends, even if its stream is never polled again.
    sub: Inbox,
}

/// A reply consumer's inbox subscription, `None` once it ended.
type Inbox = Arc<Mutex<Option<nats_client::Subscriber>>>;

impl ReplyConsumer {
    /// Ends the consumer: no more replies reach this process; its stream gets `err`, if any,
    /// and ends.
    fn end(self, err: Option<&Error>) {
        // The stream hears first, so it reports the error rather than a plain end.
        match err {
            Some(e) => drop(self.end.send(e.clone())),
            None => drop(self.end),
        }
        self.sub.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl ChannelInner {
    /// The channel's reply consumer, if it has one.
    pub(crate) fn reply_consumer(&self) -> MutexGuard<'_, Option<ReplyConsumer>> {
        self.reply.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a channel keeps its reply consumer.
pub(crate) type ReplySlot = Mutex<Option<ReplyConsumer>>;

/// The token of `inbox`: base64url without padding.
pub fn encode_token(inbox: &str) -> String {
    URL_SAFE_NO_PAD.encode(inbox)
}

/// The inbox a token names, when it is one of ours: `_INBOX.` and one token of 1 to 64
/// ASCII letters and digits. Anything else (bad base64, other subjects, wildcards, dots,
/// whitespace) is `None`.
pub fn decode_token(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let subject = String::from_utf8(bytes).ok()?;
    let id = subject.strip_prefix(INBOX)?;
    let valid = (1..=MAX_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then_some(subject)
}

/// True for a publish that is a direct reply: the default exchange and a routing key
/// `amq.rabbitmq.reply-to.<token>` (no queue can have such a name: `amq.` is reserved).
pub(crate) fn is_reply(exchange: &str, routing_key: &str) -> bool {
    exchange.is_empty() && routing_key.starts_with(PREFIX)
}

/// A publish's properties as its receiver sees them: `reply_to = "amq.rabbitmq.reply-to"`
/// becomes the channel's `amq.rabbitmq.reply-to.<token>`; 406 "fast reply consumer does not
/// exist" when the channel has no reply consumer (RabbitMQ's text).
pub(crate) fn rewrite_reply_to(
    channel: &ChannelInner,
    properties: BasicProperties,
) -> Result<BasicProperties> {
    if properties.reply_to().as_ref().map(ShortString::as_str) != Some(QUEUE) {
        return Ok(properties);
    }
    let reply_to = channel
        .reply_consumer()
        .as_ref()
        .map(|r| r.reply_to.clone());
    match reply_to {
        Some(r) => Ok(properties.with_reply_to(r)),
        None => Err(Error::precondition_failed(
            "fast reply consumer does not exist",
        )),
    }
}

/// Sends a direct reply (see [`is_reply`]) to the inbox its routing key names, as one core
/// NATS message; a token that does not decode is dropped, as RabbitMQ drops it.
pub(crate) async fn send(
    channel: &ChannelInner,
    routing_key: &str,
    payload: &[u8],
    properties: &BasicProperties,
) -> Result<()> {
    let Some(inbox) = routing_key.strip_prefix(PREFIX).and_then(decode_token) else {
        return Ok(());
    };
    let envelope = Envelope {
        exchange: String::new(),
        routing_key: routing_key.to_owned(),
        properties: properties.clone(),
    };
    let mut headers = HeaderMap::new();
    headers.insert(ENVELOPE_HEADER, envelope.encode());
    channel
        .conn
        .client
        .publish_with_headers(&inbox, &headers, payload)
        .await
        .map_err(nats_error)
}

/// `queue.declare` of the pseudo-queue or of a reply name: RabbitMQ answers every such
/// declare as a passive one, with no messages and one consumer. `None` for other names.
/// A reply name whose token does not decode is 404; one that decodes is taken as present
/// (whether its requester still consumes is not checked: difference, §8).
pub(crate) fn declare(channel: &ChannelInner, name: &str) -> Option<Result<Queue>> {
    let known = match name.strip_prefix(PREFIX) {
        _ if name == QUEUE => true,
        Some(token) => decode_token(token).is_some(),
        None => return None,
    };
    Some(match known {
        true => Ok(Queue::new(name.into(), 0, 1)),
        false => Err(channel.fail(Error::not_found(format!("no queue '{name}' in vhost '/'")))),
    })
}

/// `basic.consume` of [`QUEUE`]: 530 for a tag in use on the channel, 406 "reply consumer
/// cannot acknowledge" without `no_ack`, 406 "reply consumer already set" for a second one
/// (RabbitMQ's checks, in its order).
pub(crate) async fn consume(
    channel: &Channel,
    consumer_tag: ShortString,
    options: BasicConsumeOptions,
) -> Result<Consumer> {
    let inner = &channel.inner;
    let tag = match consumer_tag.as_str() {
        "" => generated_name("amq.ctag-"),
        t => t.to_owned(),
    };
    if inner.has_consumer(&tag) {
        return Err(inner.fail(Error::not_allowed(format!(
            "attempt to reuse consumer tag '{tag}'"
        ))));
    }
    if !options.no_ack {
        return Err(inner.fail(Error::precondition_failed(
            "reply consumer cannot acknowledge",
        )));
    }
    if inner.reply_consumer().is_some() {
        return Err(inner.fail(Error::precondition_failed("reply consumer already set")));
    }
    let inbox = format!("{INBOX}{}", nuid::next());
    let reply_to: ShortString = format!("{PREFIX}{}", encode_token(&inbox)).into();
    let sub = inner
        .conn
        .client
        .subscribe(inbox)
        .await
        .map_err(nats_error)?;
    let sub: Inbox = Arc::new(Mutex::new(Some(sub)));
    let (end, ended) = oneshot::channel();
    {
        let mut slot = inner.reply_consumer();
        // Another call may have set one meanwhile.
        if slot.is_some() {
            return Err(inner.fail(Error::precondition_failed("reply consumer already set")));
        }
        *slot = Some(ReplyConsumer {
            tag: tag.clone(),
            reply_to: reply_to.clone(),
            end,
            sub: sub.clone(),
        });
    }
    let replies = Replies {
        channel: inner.clone(),
        reply_to,
        sub,
        ended,
        done: false,
    };
    Ok(Consumer::replies(tag.into(), QUEUE.into(), replies))
}

/// `basic.cancel` of the reply consumer: its stream ends (replies still on their way are
/// dropped, as RabbitMQ drops them). False when `tag` is not the reply consumer.
pub(crate) fn cancel(channel: &ChannelInner, tag: &str) -> bool {
    let gone = {
        let mut slot = channel.reply_consumer();
        match slot.as_ref().is_some_and(|r| r.tag == tag) {
            true => slot.take(),
            false => None,
        }
    };
    match gone {
        Some(r) => {
            r.end(None);
            true
        }
        None => false,
    }
}

/// The channel closed: the reply consumer's stream gets `err` (when it failed) and ends.
pub(crate) fn release(channel: &ChannelInner, err: Option<&Error>) {
    let gone = channel.reply_consumer().take();
    if let Some(r) = gone {
        r.end(err);
    }
}

/// The deliveries of a reply consumer: the inbox subscription, read by the consumer's own
/// stream (no task in between). Each reply carries the delivery tag the channel's next
/// delivery will have, without using it up, and `redelivered = false`, as RabbitMQ 3.10
/// delivers replies.
#[derive(Debug)]
pub(crate) struct Replies {
    channel: Arc<ChannelInner>,
    /// The consumer's `amq.rabbitmq.reply-to.<token>`: the routing key of a message sent to
    /// the inbox by a plain NATS publisher (no envelope).
    reply_to: ShortString,
    sub: Inbox,
    ended: oneshot::Receiver<Error>,
    done: bool,
}

impl Replies {
    fn delivery(&self, msg: nats_client::Message) -> Delivery {
        let envelope = Envelope::of_headers(msg.headers.as_ref(), self.reply_to.as_str());
        let tag = self.channel.consume_state().unacked.peek_next_tag();
        Delivery {
            delivery_tag: tag,
            exchange: envelope.exchange.into(),
            routing_key: envelope.routing_key.into(),
            redelivered: false,
            properties: envelope.properties,
            data: msg.payload.to_vec(),
            acker: Acker::for_channel(&self.channel, tag),
        }
    }
}

impl Stream for Replies {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        // The channel's word first: an error ends the stream after it, a cancel at once.
        match Pin::new(&mut self.ended).poll(cx) {
            Poll::Ready(Ok(e)) => {
                self.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            Poll::Ready(Err(_)) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        let next = match self.sub.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(sub) => sub.poll_next_unpin(cx),
            None => Poll::Ready(None),
        };
        match next {
            Poll::Ready(Some(msg)) => Poll::Ready(Some(Ok(self.delivery(msg)))),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a decoded token may name: `_INBOX.` and one token of letters and digits.
    fn a_reply_inbox(s: &str) -> bool {
        s.strip_prefix(INBOX).is_some_and(|id| {
            (1..=MAX_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    }

    proptest! {
        #[test]
        fn no_token_names_anything_but_a_reply_inbox(token in "\\PC{0,90}|[A-Za-z0-9_-]{0,90}") {
            if let Some(subject) = decode_token(&token) {
                prop_assert!(a_reply_inbox(&subject), "{subject:?}");
            }
        }

        #[test]
        fn any_subject_decodes_only_if_it_is_a_reply_inbox(subject in "\\PC{0,70}|_INBOX\\.[A-Za-z0-9.*> ]{0,70}") {
            let decoded = decode_token(&encode_token(&subject));
            prop_assert_eq!(decoded.is_some(), a_reply_inbox(&subject));
            if let Some(d) = decoded {
                prop_assert_eq!(d, subject);
            }
        }
    }

    #[test]
    fn a_token_round_trips_and_only_names_a_reply_inbox() {
        let inbox = format!("{INBOX}{}", nuid::next());
        let token = encode_token(&inbox);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_token(&token), Some(inbox));
        for subject in [
            "_INBOX.",
            "_INBOX.a.b",
            "_INBOX.*",
            "_INBOX.>",
            "_INBOX.a b",
            "_INBOX.a\r\nPUB x 1",
            "$JS.API.STREAM.DELETE.x",
            "x._INBOX.abc",
            "_inbox.abc",
        ] {
            assert_eq!(decode_token(&encode_token(subject)), None, "{subject:?}");
        }
        let long = format!("{INBOX}{}", "a".repeat(MAX_ID + 1));
        assert_eq!(decode_token(&encode_token(&long)), None);
        for token in ["", "garbage!", "a.b", "=", "X19JTkJPWC5hYmM="] {
            assert_eq!(decode_token(token), None, "{token:?}");
        }
    }

    #[test]
    fn only_the_default_exchange_with_the_prefix_is_a_reply() {
        assert!(is_reply("", "amq.rabbitmq.reply-to.abc"));
        assert!(is_reply("", "amq.rabbitmq.reply-to."));
        assert!(!is_reply("", "amq.rabbitmq.reply-to"));
        assert!(!is_reply("x", "amq.rabbitmq.reply-to.abc"));
        assert!(!is_reply("", "q"));
    }
}
