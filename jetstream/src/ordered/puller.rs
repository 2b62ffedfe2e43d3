//! The pull loop behind [`OrderedMessages`](super::OrderedMessages): pull requests, heartbeats,
//! and replacing the consumer when it is lost.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use nats_client::{Client, Event, Message, PublishError, RequestError, StatusCode, Subscriber};
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use super::status::{Cursor, Status, Verdict, classify};
use super::{OrderedConsumerConfig, Progress};
use crate::context::Context;
use crate::error::{ErrorCode, JetStreamError};
use crate::message::{JsMessage, MessageInfo};
use crate::models::{AckPolicy, ConsumerConfig, DeliverPolicy, nanos};

/// How long past `expires` the consumer waits for the server's `408` before pulling again.
const EXPIRY_GRACE: Duration = Duration::from_secs(1);

/// Longest pause between attempts to re-create a lost consumer.
const MAX_RESET_BACKOFF: Duration = Duration::from_secs(5);

/// A pull request of the ordered consumer.
#[derive(Serialize)]
struct OrderedPull {
    batch: usize,
    #[serde(with = "nanos")]
    expires: Duration,
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    idle_heartbeat: Duration,
}

/// The state behind [`OrderedMessages`].
pub(crate) struct Ordered {
    context: Context,
    stream: String,
    config: OrderedConsumerConfig,
    /// Consumer names are `<prefix>_<serial>`.
    prefix: String,
    serial: u64,
    name: String,
    next_subject: String,
    inbox: String,
    sub: Option<Subscriber>,
    client: Client,
    events: Option<broadcast::Receiver<Event>>,
    /// The last stream and consumer sequences delivered.
    cursor: Cursor,
    /// Messages asked for and not yet received.
    pending: usize,
    /// When two heartbeat intervals (or the request's expiry) will have passed in silence.
    watchdog: Instant,
    /// Do not pull before this (after a refusal).
    pull_after: Option<Instant>,
    /// The consumer must be replaced, not before this instant.
    reset: Option<Instant>,
    /// Failed re-creations in a row.
    failures: u32,
    done: bool,
    progress: Arc<Progress>,
}

impl Ordered {
    pub(crate) fn new(
        context: Context,
        stream: &str,
        config: OrderedConsumerConfig,
        progress: Arc<Progress>,
    ) -> Ordered {
        let client = context.client.clone();
        let events = client.events();
        // The server refuses a heartbeat longer than half the expiry.
        let idle_heartbeat = config.idle_heartbeat.min(config.expires / 2);
        Ordered {
            context,
            stream: stream.to_owned(),
            config: OrderedConsumerConfig {
                max_messages: config.max_messages.max(1),
                idle_heartbeat,
                ..config
            },
            prefix: nuid::next().to_string(),
            serial: 0,
            name: String::new(),
            next_subject: String::new(),
            inbox: String::new(),
            sub: None,
            client,
            events: Some(events),
            cursor: Cursor::default(),
            pending: 0,
            watchdog: Instant::now(),
            pull_after: None,
            reset: None,
            failures: 0,
            done: false,
            progress,
        }
    }

    fn consumer_config(&self) -> ConsumerConfig {
        let c = &self.config;
        let mut config = ConsumerConfig {
            name: Some(format!("{}_{}", self.prefix, self.serial)),
            ack_policy: AckPolicy::None,
            inactive_threshold: c.inactive_threshold,
            num_replicas: 1,
            memory_storage: true,
            headers_only: c.headers_only,
            metadata: c.metadata.clone(),
            ..ConsumerConfig::default()
        };
        match c.filter_subjects.as_slice() {
            [] => {}
            [one] => config.filter_subject = one.clone(),
            many => config.filter_subjects = many.to_vec(),
        }
        if self.cursor.stream_seq > 0 {
            config.deliver_policy = DeliverPolicy::ByStartSequence;
            config.opt_start_seq = Some(self.cursor.stream_seq + 1);
        } else {
            config.deliver_policy = c.deliver_policy;
            match c.deliver_policy {
                DeliverPolicy::ByStartSequence => config.opt_start_seq = c.opt_start_seq,
                DeliverPolicy::ByStartTime => config.opt_start_time = c.opt_start_time,
                DeliverPolicy::LastPerSubject if c.filter_subjects.is_empty() => {
                    config.filter_subject = ">".into();
                }
                _ => {}
            }
        }
        config
    }

    /// Replaces the consumer with a fresh one that starts after the last message delivered;
    /// returns its `num_pending`.
    pub(crate) async fn recreate(&mut self) -> Result<u64, JetStreamError> {
        self.serial += 1;
        let config = self.consumer_config();
        let consumer = self
            .context
            .create_consumer(&self.stream, config)
            .await
            .inspect_err(|_| self.serial -= 1)?;
        let inbox = self.client.new_inbox();
        let sub = self.client.subscribe(inbox.clone()).await?;
        let old = std::mem::replace(&mut self.name, consumer.name().to_owned());
        if !old.is_empty() {
            // Best effort: an ephemeral consumer would go by itself after its threshold.
            let context = self.context.clone();
            let stream = self.stream.clone();
            tokio::spawn(async move {
                let _ = context.delete_consumer(&stream, &old).await;
            });
        }
        self.next_subject = consumer.next_subject();
        self.inbox = inbox;
        self.sub = Some(sub);
        self.cursor.consumer_seq = 0;
        self.pending = 0;
        self.pull_after = None;
        *self
            .progress
            .consumer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = self.name.clone();
        if self.serial > 1 {
            self.progress.resets.fetch_add(1, Ordering::Relaxed);
        }
        Ok(consumer.cached_info().num_pending)
    }

    pub(crate) async fn pull(&mut self) -> Result<(), JetStreamError> {
        let batch = self.config.max_messages.saturating_sub(self.pending).max(1);
        let request = OrderedPull {
            batch,
            expires: self.config.expires,
            idle_heartbeat: self.config.idle_heartbeat,
        };
        let body = serde_json::to_vec(&request).map_err(|e| JetStreamError::json("pull", &e))?;
        self.client
            .publish_message(&self.next_subject, Some(&self.inbox), None, &body)
            .await?;
        self.pending += batch;
        self.feed_watchdog();
        Ok(())
    }

    fn feed_watchdog(&mut self) {
        let hb = self.config.idle_heartbeat;
        self.watchdog = if hb.is_zero() {
            Instant::now() + self.config.expires + EXPIRY_GRACE
        } else {
            Instant::now() + 2 * hb
        };
    }

    fn lose(&mut self) {
        if self.reset.is_none() {
            self.reset = Some(Instant::now());
        }
    }

    fn wants_pull(&self) -> bool {
        self.pending <= self.config.max_messages / 2
            && self.pull_after.is_none_or(|t| Instant::now() >= t)
    }

    /// Handles one message from the inbox; `Some` is an item for the caller.
    fn handle(&mut self, msg: Message) -> Option<Result<JsMessage, JetStreamError>> {
        self.feed_watchdog();
        let Some(status) = classify(&msg) else {
            self.pending = self.pending.saturating_sub(1);
            return self.deliver(msg);
        };
        match status {
            Status::Heartbeat => None,
            Status::Ended(pending) => {
                self.settle(pending);
                None
            }
            Status::Repull => {
                self.pending = 0;
                None
            }
            Status::Lost => {
                self.lose();
                None
            }
            Status::Report(pending) => {
                self.settle(pending);
                self.pull_after = Some(Instant::now() + Duration::from_secs(1));
                Some(Err(self.status_error(&msg)))
            }
            Status::Fatal => {
                self.done = true;
                Some(Err(self.status_error(&msg)))
            }
        }
    }

    fn settle(&mut self, pending: Option<usize>) {
        self.pending = match pending {
            Some(n) => self.pending.saturating_sub(n),
            None => 0,
        };
    }

    fn deliver(&mut self, msg: Message) -> Option<Result<JsMessage, JetStreamError>> {
        let reply = msg.reply.as_deref().unwrap_or_default();
        let info = match MessageInfo::parse(reply) {
            Ok(info) => info,
            Err(e) => return Some(Err(e)),
        };
        match self.cursor.check(&self.name, &info) {
            Verdict::Deliver => {}
            Verdict::Stale => return None,
            Verdict::Gap => {
                // Something was lost in between: start again after the last one delivered.
                self.lose();
                return None;
            }
        }
        self.progress
            .stream_sequence
            .store(self.cursor.stream_seq, Ordering::Relaxed);
        Some(Ok(JsMessage::new(
            msg,
            self.client.clone(),
            self.context.timeout,
        )))
    }

    fn status_error(&self, msg: &Message) -> JetStreamError {
        JetStreamError::PullStatus {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
            code: msg.status.map_or(0, StatusCode::as_u16),
            description: msg.description.as_deref().unwrap_or_default().to_owned(),
        }
    }

    /// Replaces a lost consumer; `Some` is an item for the caller (a failure).
    async fn reset_now(&mut self) -> Option<Result<JsMessage, JetStreamError>> {
        match self.recreate().await {
            Ok(_) => {
                self.reset = None;
                self.failures = 0;
                if let Err(e) = self.pull().await {
                    return self.failed(e);
                }
                None
            }
            Err(e) => self.failed(e),
        }
    }

    fn failed(&mut self, e: JetStreamError) -> Option<Result<JsMessage, JetStreamError>> {
        let closed = matches!(
            e,
            JetStreamError::Publish(PublishError::Closed)
                | JetStreamError::Request(RequestError::Closed)
                | JetStreamError::Client(nats_client::ClientError::Closed)
        );
        if closed || e.is_api(ErrorCode::STREAM_NOT_FOUND) {
            self.done = true;
            return Some(Err(e));
        }
        self.failures = self.failures.saturating_add(1);
        let pause = Duration::from_millis(250)
            .saturating_mul(1 << self.failures.min(5))
            .min(MAX_RESET_BACKOFF);
        self.reset = Some(Instant::now() + pause);
        Some(Err(e))
    }

    pub(crate) async fn next(&mut self) -> Option<Result<JsMessage, JetStreamError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(at) = self.reset {
                if Instant::now() >= at {
                    if let Some(item) = self.reset_now().await {
                        return Some(item);
                    }
                    continue;
                }
            } else if self.wants_pull()
                && let Err(e) = self.pull().await
            {
                if matches!(e, JetStreamError::Publish(PublishError::Closed)) {
                    self.done = true;
                }
                self.pull_after = Some(Instant::now() + Duration::from_secs(1));
                return Some(Err(e));
            }
            let mut wake = self.reset.unwrap_or(self.watchdog);
            if let Some(t) = self.pull_after {
                wake = wake.min(t);
            }
            let sub = self.sub.as_mut()?;
            tokio::select! {
                biased;
                msg = sub.next() => match msg {
                    Some(msg) => {
                        if self.reset.is_none()
                            && let Some(item) = self.handle(msg)
                        {
                            return Some(item);
                        }
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                event = recv_event(&mut self.events) => match event {
                    // The server behind the connection may have forgotten the consumer.
                    Ok(Event::Reconnected { .. }) | Err(RecvError::Lagged(_)) => self.lose(),
                    Ok(_) => {}
                    Err(RecvError::Closed) => self.events = None,
                },
                () = tokio::time::sleep_until(wake) => {
                    if self.reset.is_none() && Instant::now() >= self.watchdog {
                        let hb = self.config.idle_heartbeat;
                        if hb.is_zero() {
                            // The request just ran out: pull again.
                            self.pending = 0;
                            self.feed_watchdog();
                        } else {
                            self.lose();
                            return Some(Err(JetStreamError::HeartbeatMissed {
                                stream: self.stream.clone(),
                                consumer: self.name.clone(),
                                interval: hb,
                            }));
                        }
                    }
                }
            }
        }
    }
}

async fn recv_event(events: &mut Option<broadcast::Receiver<Event>>) -> Result<Event, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_json() {
        let p = OrderedPull {
            batch: 5,
            expires: Duration::from_secs(1),
            idle_heartbeat: Duration::ZERO,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"batch":5,"expires":1000000000}"#
        );
    }
}
