//! Publishing on design B (`docs/amqp-mapping.md` §7): `basic_publish` routes from the shared
//! topology and stores one copy per matched queue in the queue's stream (resent on a lost ack,
//! so a copy may be stored twice after a fault; with the URL's `publish_dedupe`, a
//! `Nats-Msg-Id` per publish stores it once); [`PublisherConfirm`] resolves when every copy is
//! stored (`confirm_select`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use jetstream::{ErrorCode, PublishOptions};

use crate::BasicProperties;
use crate::channel::{Channel, ChannelInner};
use crate::confirmation::Confirmation;
use crate::envelope::{ENVELOPE_HEADER, Envelope};
use crate::error::{Error, Result};
use crate::exchange_storage as xs;
use crate::expiration::{check_publish, effective_ttl};
use crate::message::{BasicReturnMessage, Delivery};
use crate::options::{BasicPublishOptions, ConfirmSelectOptions};
use crate::routing::{Route, StorageTier};
use crate::store::nats_error;
use crate::types::ShortString;

/// The publish side of a channel.
#[derive(Debug, Default)]
pub(crate) struct PublishState {
    confirm: bool,
    inflight: usize,
    returned: Vec<BasicReturnMessage>,
}

/// The answer to come for one copy of a confirmed publish.
pub(crate) struct CopyAck {
    pub(crate) ack: jetstream::PublishAckFuture,
    /// Sent to a local (design E) queue's owner rather than a stream.
    local: bool,
}

/// The copies of one publish on their way, and whether the route named a design-D queue
/// this publish cannot reach: one not bound yet has no exchange stream to be stored in
/// (`docs/amqp-mapping.md` §4), so the message is not stored there.
pub(crate) struct Copies {
    pub(crate) acks: Vec<CopyAck>,
    pub(crate) unreachable: bool,
}

/// What `basic_publish` returns, lapin's `PublisherConfirm`: a future of the broker's answer
/// ([`Confirmation::Ack`]/[`Confirmation::Nack`] in confirm mode, with the message when it
/// was returned; [`Confirmation::NotRequested`] otherwise), or of the error that closed the
/// channel meanwhile. Awaiting it awaits the copies' PubAcks in place; dropping it first hands
/// them to a task, so `wait_for_confirms` still waits for them.
pub struct PublisherConfirm {
    inner: ConfirmState,
}

// A ready answer stays inline (no allocation for unconfirmed or unroutable publishes); the
// pending state is boxed.
#[allow(clippy::large_enum_variant)]
enum ConfirmState {
    Ready(Option<Result<Confirmation>>),
    Pending(Box<Outstanding>),
}

/// The PubAcks of one confirmed publish still to come; counted in the channel's `inflight`
/// until they are all in (or this is dropped and a task finishes them).
struct Outstanding {
    channel: Arc<ChannelInner>,
    acks: std::vec::IntoIter<CopyAck>,
    current: Option<CopyAck>,
    answer: Result<Confirmation>,
    done: bool,
}

impl Outstanding {
    /// `stored`: false when a copy could not even be sent (the answer is a nack whatever
    /// the acks say).
    fn new(channel: Arc<ChannelInner>, acks: Vec<CopyAck>, stored: bool) -> Self {
        channel.publish_state().inflight += 1;
        let mut acks = acks.into_iter();
        Outstanding {
            channel,
            current: acks.next(),
            acks,
            answer: Ok(match stored {
                true => Confirmation::Ack(None),
                false => Confirmation::Nack(None),
            }),
            done: false,
        }
    }

    fn poll_acks(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Confirmation>> {
        while let Some(copy) = self.current.as_mut() {
            match Pin::new(&mut copy.ack).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(_)) => {}
                // A local queue whose owner is gone: deleted with its connection, so the
                // copy is dropped as RabbitMQ drops a message to a queue deleted meanwhile.
                Poll::Ready(Err(e)) if copy.local && e.is_no_responders() => {}
                // The stream refused the copy or stayed unreachable through every resend:
                // not stored, which RabbitMQ says with a nack (the channel stays open).
                Poll::Ready(Err(e))
                    if e.is_api(ErrorCode::STREAM_STORE_FAILED) || e.is_transient() =>
                {
                    self.answer = Ok(Confirmation::Nack(None));
                }
                Poll::Ready(Err(e)) => self.answer = Err(nats_error(e)),
            }
            self.current = self.acks.next();
        }
        if let Some(e) = self.channel.closed_error() {
            self.answer = Err(e);
        }
        self.finish();
        Poll::Ready(std::mem::replace(
            &mut self.answer,
            Ok(Confirmation::NotRequested),
        ))
    }

    /// Counts this publish out of the channel's outstanding confirms (once).
    fn finish(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            self.channel.publish_state().inflight -= 1;
            self.channel.confirmed.notify_waiters();
        }
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped unawaited: a task waits for the PubAcks, so `wait_for_confirms` still
        // covers this publish.
        let rest = Outstanding {
            channel: self.channel.clone(),
            acks: std::mem::take(&mut self.acks),
            current: self.current.take(),
            answer: Ok(Confirmation::Ack(None)),
            done: false,
        };
        self.done = true;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let mut rest = rest;
                    std::future::poll_fn(|cx| rest.poll_acks(cx)).await
                });
            }
            // No runtime left to wait in: count it out now.
            Err(_) => {
                let mut rest = rest;
                rest.finish();
            }
        }
    }
}

impl std::fmt::Debug for PublisherConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherConfirm").finish_non_exhaustive()
    }
}

impl PublisherConfirm {
    fn ready(result: Result<Confirmation>) -> Self {
        Self {
            inner: ConfirmState::Ready(Some(result)),
        }
    }
}

impl Future for PublisherConfirm {
    type Output = Result<Confirmation>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            ConfirmState::Ready(r) => Poll::Ready(
                r.take()
                    .unwrap_or_else(|| Err(nats_error("the confirm was already taken"))),
            ),
            ConfirmState::Pending(o) => o.poll_acks(cx),
        }
    }
}

fn returned(
    exchange: &ShortString,
    routing_key: &ShortString,
    payload: &[u8],
    properties: &BasicProperties,
) -> BasicReturnMessage {
    let mut delivery = Delivery::mock(
        0,
        exchange.clone(),
        routing_key.clone(),
        false,
        payload.to_vec(),
    );
    delivery.properties = properties.clone();
    BasicReturnMessage {
        delivery,
        reply_code: 312,
        reply_text: "NO_ROUTE".into(),
    }
}

impl ChannelInner {
    fn publish_state(&self) -> std::sync::MutexGuard<'_, PublishState> {
        self.publish.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the channel with `err` (asynchronously, as AMQP does) and returns a confirm
    /// that reports it.
    fn refuse(self: &Arc<Self>, err: Error) -> PublisherConfirm {
        self.fail_async(err.clone());
        PublisherConfirm::ready(Err(err))
    }

    /// Routes from the cache; a miss is checked again once the cache holds everything stored
    /// before (it may lag another process's declare by the watch delay).
    async fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: &BasicProperties,
    ) -> Result<Route> {
        // A direct reply goes to no queue (`direct_reply::send` takes it to its inbox).
        if crate::direct_reply::is_reply(exchange, routing_key) {
            return Ok(Route::default());
        }
        let headers = properties.headers().as_ref();
        let cached = self
            .conn
            .store
            .read(|t| t.route(exchange, routing_key, headers));
        match cached {
            Ok(r) if !r.is_unroutable() => Ok(r),
            _ => {
                self.conn.store.sync().await?;
                self.conn
                    .store
                    .read(|t| t.route(exchange, routing_key, headers))
            }
        }
    }
}

impl ChannelInner {
    /// Stores one copy per design-B queue of `route`, in its stream, and one copy in the
    /// exchange's stream for all the design-D queues bound to it (their consumers filter it);
    /// sends one copy to the owner of each design-E queue, on the subject its stream would
    /// have; returns the pending PubAcks (none unless `acked`: an unconfirmed publish asks for
    /// no PubAck, one message less each way; the stream stores what arrives on its subjects).
    pub(crate) async fn store_copies(
        &self,
        exchange: &str,
        routing_key: &str,
        route: &Route,
        payload: &[u8],
        publish: &PublishOptions,
        acked: bool,
    ) -> Result<Copies> {
        let conn = &self.conn;
        let mut unreachable = false;
        let subjects = conn.store.read(|t| {
            let mut subjects = Vec::new();
            let mut to_exchange = false;
            for q in &route.queues {
                match t.queue(q) {
                    Some(decl) if xs::is_d(decl) => {
                        match t.bindings_of(q).any(|b| b.source == exchange) {
                            true => to_exchange = true,
                            // Reached by name (the default exchange) or through another
                            // exchange: a copy of its own, on its exchange's stream.
                            false => match t.bindings_of(q).next().map(|b| b.source.as_str()) {
                                Some(x) => subjects
                                    .push((conn.mapper.direct_queue_subject(x, q).into(), false)),
                                None => unreachable = true,
                            },
                        }
                    }
                    Some(decl) => subjects.push((
                        conn.queue_subjects.get(&conn.mapper, q),
                        decl.tier == StorageTier::Local,
                    )),
                    None => {}
                }
            }
            if to_exchange {
                let subject = conn.mapper.publish_subject(exchange, routing_key).into();
                subjects.push((subject, false));
            }
            subjects
        });
        let mut acks = Vec::with_capacity(subjects.len());
        if !acked {
            let headers = publish.build_headers().unwrap_or_default();
            for (subject, _) in subjects {
                let sent = conn
                    .client
                    .publish_with_headers(&subject, &headers, payload);
                sent.await.map_err(nats_error)?;
            }
            return Ok(Copies { acks, unreachable });
        }
        for (subject, local) in subjects {
            // A local queue answers at once or not at all (its owner is gone): no retries,
            // and no resend on a stream leader change (it would enqueue the copy twice).
            let retries;
            let options = match local {
                true => {
                    retries = publish
                        .clone()
                        .retry_for(Duration::ZERO)
                        .retry_attempts(0)
                        .at_most_once();
                    &retries
                }
                false => publish,
            };
            let ack = conn
                .js
                .publish_async_with(&subject, payload.to_vec(), options)
                .await
                .map_err(nats_error)?;
            acks.push(CopyAck { ack, local });
        }
        Ok(Copies { acks, unreachable })
    }

    /// Routes and stores a copy made by the facade (a dead letter), waiting until it is
    /// stored. A missing exchange drops it, as RabbitMQ does.
    pub(crate) async fn republish(
        &self,
        envelope: &Envelope,
        payload: &[u8],
        msg_id: String,
    ) -> Result<()> {
        let (x, key) = (envelope.exchange.as_str(), envelope.routing_key.as_str());
        let Ok(route) = self.route(x, key, &envelope.properties).await else {
            return Ok(());
        };
        let publish = PublishOptions::new()
            .header(ENVELOPE_HEADER, envelope.encode())
            .msg_id(msg_id);
        let copies = self
            .store_copies(x, key, &route, payload, &publish, true)
            .await?;
        if copies.unreachable {
            tracing::warn!(
                exchange = x,
                routing_key = key,
                "a dead letter routed to a design-D queue bound nowhere is not stored there"
            );
        }
        for copy in copies.acks {
            match copy.ack.await {
                Err(e) if copy.local && e.is_no_responders() => {}
                done => drop(done.map_err(nats_error)?),
            }
        }
        Ok(())
    }
}

impl Channel {
    /// `confirm.select`: from now on every publish is confirmed.
    pub async fn confirm_select(&self, _options: ConfirmSelectOptions) -> Result<()> {
        self.inner.check("confirm.select")?;
        self.inner.publish_state().confirm = true;
        Ok(())
    }

    /// `basic.publish`. A missing exchange (404), a bad `expiration` (406) or `immediate`
    /// (540) close the channel (or connection) asynchronously, as with RabbitMQ: this call
    /// succeeds and the error comes from the returned confirm and the next call. A
    /// `mandatory` message no queue receives is returned (312 NO_ROUTE) in the confirm.
    pub async fn basic_publish(
        &self,
        exchange: ShortString,
        routing_key: ShortString,
        options: BasicPublishOptions,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<PublisherConfirm> {
        self.inner.check("basic.publish")?;
        let ttl = match check_publish(&options, &properties) {
            Ok(t) => t,
            Err(e) => return Ok(self.inner.refuse(e)),
        };
        let route = match self
            .inner
            .route(exchange.as_str(), routing_key.as_str(), &properties)
            .await
        {
            Ok(r) => r,
            Err(e) => return Ok(self.inner.refuse(e)),
        };
        let properties = match crate::direct_reply::rewrite_reply_to(&self.inner, properties) {
            Ok(p) => p,
            Err(e) => return Ok(self.inner.refuse(e)),
        };
        if crate::direct_reply::is_reply(exchange.as_str(), routing_key.as_str()) {
            crate::direct_reply::send(&self.inner, routing_key.as_str(), payload, &properties)
                .await?;
        }
        let confirm = self.inner.publish_state().confirm;
        if route.is_unroutable() {
            if !options.mandatory {
                return Ok(PublisherConfirm::ready(Ok(match confirm {
                    true => Confirmation::Ack(None),
                    false => Confirmation::NotRequested,
                })));
            }
            let msg = returned(&exchange, &routing_key, payload, &properties);
            self.inner.publish_state().returned.push(msg);
            let msg = returned(&exchange, &routing_key, payload, &properties);
            return Ok(PublisherConfirm::ready(Ok(match confirm {
                true => Confirmation::Ack(Some(msg)),
                false => Confirmation::NotRequested,
            })));
        }
        let envelope = Envelope {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            properties,
        }
        .encode();
        // A copy caught by a stream leader change is resent: with an id (`publish_dedupe`)
        // it is stored once; without, it may be stored twice, and the stream is spared the
        // dedup work on every message (a fifth of its publish rate).
        let publish = PublishOptions::new().header(ENVELOPE_HEADER, &envelope);
        let mut publish = match self.inner.conn.publish_dedupe {
            true => publish.msg_id(nuid::next().to_string()),
            false => publish.at_least_once(),
        };
        if let Some(ms) = ttl {
            let secs = ms.div_ceil(1000).max(1);
            publish = publish
                .ttl(Duration::from_secs(secs))
                .map_err(|e| self.inner.fail(nats_error(e)))?;
        }
        // Expiration "0": deliver now or never: queues without a consumer do not get it.
        let mut route = route;
        self.inner.conn.store.read(|t| {
            route.queues.retain(|q| {
                let queue_ttl = t.queue(q).and_then(|d| d.arguments.message_ttl);
                effective_ttl(ttl, queue_ttl) != Some(0) || t.consumers(q).count > 0
            })
        });
        let copies = self
            .inner
            .store_copies(
                exchange.as_str(),
                routing_key.as_str(),
                &route,
                payload,
                &publish,
                confirm,
            )
            .await?;
        if copies.unreachable {
            // Not stored where RabbitMQ would have enqueued it: said with a nack, never
            // confirmed as if it had been.
            tracing::warn!(
                exchange = exchange.as_str(),
                routing_key = routing_key.as_str(),
                "a design-D queue not bound to any exchange cannot receive this publish: \
                 not stored there"
            );
        }
        if !confirm {
            return Ok(PublisherConfirm::ready(Ok(Confirmation::NotRequested)));
        }
        let stored = !copies.unreachable;
        let outstanding = Outstanding::new(self.inner.clone(), copies.acks, stored);
        Ok(PublisherConfirm {
            inner: ConfirmState::Pending(Box::new(outstanding)),
        })
    }

    /// Waits until every publish so far is confirmed; returns the messages returned
    /// meanwhile (mandatory, unroutable).
    pub async fn wait_for_confirms(&self) -> Result<Vec<BasicReturnMessage>> {
        loop {
            let notified = self.inner.confirmed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self.inner.closed_error() {
                return Err(e);
            }
            if self.inner.publish_state().inflight == 0 {
                return Ok(std::mem::take(&mut self.inner.publish_state().returned));
            }
            notified.await;
        }
    }
}
