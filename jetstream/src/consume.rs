//! The continuous pull: [`Consumer::consume`] / [`Consumer::messages`] keep a pull request
//! open, top it up as messages are taken, watch idle heartbeats, and pull afresh after a
//! reconnect, a missed heartbeat or a leader change.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Instant;

use crate::consumer::Consumer;
use crate::error::JetStreamError;
use crate::message::JsMessage;
use crate::priority::{PriorityGroup, repin_interval};
use crate::pull::PullRequest;
use crate::puller::Puller;

/// Options of [`Consumer::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Messages asked for per pull request; a new pull tops up when fewer than half are left.
    pub max_messages: usize,
    /// Bytes asked for per pull request (0: no limit).
    pub max_bytes: usize,
    /// Lifetime of each pull request.
    pub expires: Duration,
    /// Idle heartbeat interval; two missed are reported as
    /// [`JetStreamError::HeartbeatMissed`] and followed by a fresh pull. Zero disables them.
    pub idle_heartbeat: Duration,
    /// The priority group to pull in (server 2.11+); `None` on a consumer with priority
    /// groups pulls in its first group. On a [`PriorityPolicy::PinnedClient`] consumer the
    /// stream keeps the pin it is given (each pull carries it and pulls are kept shorter than
    /// a third of `priority_timeout`, so the pin does not lapse while this stream lives), and
    /// when the server says the pin moved (`423`) it drops it and pulls again as a candidate.
    /// A standby's pulls simply expire (`408`) until the pin comes to it.
    ///
    /// [`PriorityPolicy::PinnedClient`]: crate::PriorityPolicy::PinnedClient
    pub priority_group: Option<PriorityGroup>,
    /// Pull afresh when the consumer gets a new leader (on the
    /// `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.<stream>.<consumer>` advisory), so a
    /// consumer whose leader died does not wait for missed heartbeats (up to twice
    /// `idle_heartbeat`) to notice that its pull went with it. Only replicated consumers
    /// subscribe (one subscription per stream of messages); needs permission to subscribe to
    /// that subject. Default true.
    pub repull_on_leader_change: bool,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            max_messages: 500,
            max_bytes: 0,
            expires: Duration::from_secs(30),
            idle_heartbeat: Duration::from_secs(15),
            priority_group: None,
            repull_on_leader_change: true,
        }
    }
}

impl Consumer {
    /// A continuous stream of messages with the default [`ConsumeOptions`].
    pub async fn messages(&self) -> Result<Messages, JetStreamError> {
        self.consume(ConsumeOptions::default()).await
    }

    /// A continuous stream of messages: pulls in batches, tops up as messages are taken,
    /// watches idle heartbeats and pulls afresh after a reconnect or a missed heartbeat.
    ///
    /// `Err` items report trouble (missed heartbeats, `409` refusals such as
    /// `Exceeded MaxWaiting`) and the stream goes on; it ends after
    /// [`JetStreamError::ConsumerDeleted`] or another fatal status, or when the client closes.
    ///
    /// ```no_run
    /// # async fn demo(consumer: jetstream::Consumer) -> Result<(), jetstream::JetStreamError> {
    /// use futures::StreamExt;
    /// let mut messages = consumer.messages().await?;
    /// while let Some(item) = messages.next().await {
    ///     match item {
    ///         Ok(msg) => msg.ack().await?,
    ///         Err(e) => eprintln!("consumer trouble: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn consume(&self, options: ConsumeOptions) -> Result<Messages, JetStreamError> {
        let client = &self.context.client;
        let inbox = client.new_inbox();
        let sub = client.subscribe(inbox.clone()).await?;
        let events = client.events();
        // A pinned client must pull again inside `priority_timeout` to keep its pin; a pull
        // goes out at the latest when the previous one expires.
        let repin = repin_interval(&self.cached_info().config);
        let expires = match repin {
            Some(every) => options.expires.min(every),
            None => options.expires,
        };
        let replicated = self
            .cached_info()
            .cluster
            .as_ref()
            .is_some_and(|c| !c.replicas.is_empty());
        let leader_sub = if options.repull_on_leader_change && replicated {
            Some(
                client
                    .subscribe(format!(
                        "$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.{}.{}",
                        self.stream, self.name
                    ))
                    .await?,
            )
        } else {
            None
        };
        let options = ConsumeOptions {
            max_messages: options.max_messages.max(1),
            // The server refuses a heartbeat longer than half the expiry.
            idle_heartbeat: options.idle_heartbeat.min(expires / 2),
            expires,
            ..options
        };
        let mut puller = Puller::new(self.clone(), sub, inbox, leader_sub, events, options, repin);
        // The first pull goes out now, so messages flow while the caller gets ready.
        puller.pull().await?;
        let keepalive = repin.map(|every| {
            KeepPin(tokio::spawn(keep_pin(
                self.clone(),
                puller.options.priority_group.clone(),
                puller.next_subject.clone(),
                puller.inbox.clone(),
                every,
            )))
        });
        Ok(Messages {
            puller,
            _keepalive: keepalive,
        })
    }
}

/// The stream returned by [`Consumer::consume`] and [`Consumer::messages`]. Dropping it stops
/// pulling (the server lets the open pull request expire).
pub struct Messages {
    puller: Puller,
    _keepalive: Option<KeepPin>,
}

/// Stops the pin keeper when the [`Messages`] stream is dropped.
struct KeepPin(tokio::task::JoinHandle<()>);

impl Drop for KeepPin {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps the pin of a pinned-client consumer while the application is busy and does not poll
/// [`Messages`]: the server renews a pin only when a pull carrying it arrives, so this sends
/// a one-message pull with the pin every `every`. What it yields waits in the inbox for the
/// next poll, as any prefetched message does.
async fn keep_pin(
    consumer: Consumer,
    group: Option<PriorityGroup>,
    subject: String,
    inbox: String,
    every: Duration,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(priority) = consumer
            .pull_priority(group.as_ref())
            .filter(|p| p.id.is_some())
        else {
            continue;
        };
        let request = PullRequest {
            batch: 1,
            expires: every,
            max_bytes: 0,
            no_wait: false,
            idle_heartbeat: Duration::ZERO,
            priority: Some(priority),
        };
        if let Err(e) = consumer.send_pull(&subject, &inbox, &request).await {
            tracing::debug!(error = %e, "pin keep-alive pull failed");
        }
    }
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl Stream for Messages {
    type Item = Result<JsMessage, JetStreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.puller.poll_item(cx)
    }
}
