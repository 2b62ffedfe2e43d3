//! The [`Subscriber`] stream: a subscription's messages, read in batches from its queue
//! ([`crate::sub_queue`]), and the calls that subscribe and unsubscribe.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::client::Client;
use crate::error::ClientError;
use crate::message::Message;
use crate::sub_queue::{SubQueue, SubscriptionError, Target};

impl Client {
    /// Subscribes to a subject (wildcards allowed).
    pub async fn subscribe(&self, subject: impl Into<String>) -> Result<Subscriber, ClientError> {
        self.subscribe_inner(subject.into(), None)
    }

    /// Subscribes as a member of a queue group: each message goes to one member.
    pub async fn queue_subscribe(
        &self,
        subject: impl Into<String>,
        queue_group: impl Into<String>,
    ) -> Result<Subscriber, ClientError> {
        self.subscribe_inner(subject.into(), Some(queue_group.into()))
    }

    fn subscribe_inner(
        &self,
        subject: String,
        queue_group: Option<String>,
    ) -> Result<Subscriber, ClientError> {
        let shared = self.shared();
        let queue = SubQueue::new(
            shared.opts().pending_msgs_limit,
            shared.opts().pending_bytes_limit,
        );
        let sid = self.add_subscription(&subject, queue_group, Target::Queue(queue.clone()))?;
        Ok(Subscriber::new(sid, subject, queue, self.clone()))
    }
}

/// A subscription: a [`Stream`] of [`Message`]s. Dropping it unsubscribes.
///
/// ```no_run
/// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::ClientError> {
/// use futures::StreamExt;
/// let mut sub = client.subscribe("orders.>").await?;
/// while let Some(msg) = sub.next().await {
///     println!("{}: {:?}", msg.subject, msg.payload);
/// }
/// # Ok(()) }
/// ```
pub struct Subscriber {
    sid: u64,
    subject: String,
    queue: Arc<SubQueue>,
    local: VecDeque<Message>,
    client: Client,
    active: bool,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("sid", &self.sid)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    pub(crate) fn new(sid: u64, subject: String, queue: Arc<SubQueue>, client: Client) -> Self {
        Subscriber {
            sid,
            subject,
            queue,
            local: VecDeque::new(),
            client,
            active: true,
        }
    }

    /// The subscription id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The subject filter.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Messages dropped because this subscription was over its pending limits.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Errors recorded for this subscription since the last call, oldest first: messages that
    /// could not be delivered, and why the stream ended early when the server refused the
    /// subscription. A stream that ends while the client is open has its reason here. At most
    /// the last 64 are kept; every one is also an [`Event`](crate::Event) and counted in
    /// [`Statistics`](crate::Statistics).
    ///
    /// ```no_run
    /// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::ClientError> {
    /// use futures::StreamExt;
    /// let mut sub = client.subscribe("orders.>").await?;
    /// while let Some(msg) = sub.next().await {
    ///     println!("{}", msg.subject);
    /// }
    /// for error in sub.take_errors() {
    ///     eprintln!("orders.>: {error}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn take_errors(&mut self) -> Vec<SubscriptionError> {
        self.queue.take_errors()
    }

    /// Messages and bytes waiting to be read.
    pub fn pending(&self) -> (usize, usize) {
        self.queue.pending()
    }

    /// Unsubscribes now; messages already queued can still be read.
    pub async fn unsubscribe(&mut self) -> Result<(), ClientError> {
        self.active = false;
        self.client.unsubscribe_sid(self.sid, None)
    }

    /// Unsubscribes after `max` messages in total have been delivered to this subscription
    /// (the server stops sending after that many, too).
    pub async fn unsubscribe_after(&mut self, max: u64) -> Result<(), ClientError> {
        self.client.unsubscribe_sid(self.sid, Some(max))
    }

    /// Unsubscribes, waits until the server has sent everything it had for this subscription,
    /// and ends the stream after those messages.
    pub async fn drain(&mut self) -> Result<(), ClientError> {
        self.client.unsubscribe_sid_keep_queue(self.sid)?;
        self.client.flush().await?;
        self.queue.close();
        self.active = false;
        Ok(())
    }
}

impl Stream for Subscriber {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let this = &mut *self;
        if this.local.is_empty() {
            match this.queue.poll_take(&mut this.local, cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        let msg = this.local.pop_front();
        if let Some(m) = &msg {
            this.queue.handed_out(m);
        }
        Poll::Ready(msg)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if self.active && !self.queue.is_closed() {
            let _ = self.client.unsubscribe_sid(self.sid, None);
        }
    }
}
