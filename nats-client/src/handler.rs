//! Handler subscriptions: messages delivered by calling a function on the connection task,
//! with no queue and no task switch in between.

use std::sync::Arc;

use crate::client::Client;
use crate::error::ClientError;
use crate::message::Message;
use crate::sub_queue::{Handler, Target};

/// A subscription whose messages go to a handler function, created by
/// [`Client::subscribe_with_handler`]. Dropping it unsubscribes.
pub struct HandlerSubscription {
    sid: u64,
    subject: String,
    client: Client,
}

impl std::fmt::Debug for HandlerSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerSubscription")
            .field("sid", &self.sid)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl HandlerSubscription {
    /// The subject (or pattern) subscribed to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Unsubscribes now; messages already read from the socket may still reach the handler
    /// until the server has the UNSUB.
    pub fn unsubscribe(self) -> Result<(), ClientError> {
        // Drop runs afterwards and finds the subscription gone: nothing is sent twice.
        self.client.unsubscribe_sid(self.sid, None)
    }
}

impl Drop for HandlerSubscription {
    fn drop(&mut self) {
        let _ = self.client.unsubscribe_sid(self.sid, None);
    }
}

impl Client {
    /// Subscribes with a handler that the connection task calls for every message, in the
    /// order they arrive. No queue sits in between, so no message is ever dropped as a slow
    /// consumer and no task switch separates the read from the handler: the handler holds up
    /// the connection's reading while it runs, so it must be quick and must never block
    /// (send the work to a channel or a task when there is more to do). It may use the
    /// client: synchronous calls directly, asynchronous ones (publish) from a spawned task.
    ///
    /// ```no_run
    /// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::ClientError> {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let counter = seen.clone();
    /// let _sub = client.subscribe_with_handler("metrics.>", move |_msg| {
    ///     counter.fetch_add(1, Ordering::Relaxed);
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn subscribe_with_handler(
        &self,
        subject: impl Into<String>,
        handler: impl Fn(Message) + Send + Sync + 'static,
    ) -> Result<HandlerSubscription, ClientError> {
        self.handler_subscription(subject.into(), None, Arc::new(handler))
    }

    /// [`subscribe_with_handler`](Client::subscribe_with_handler) as a member of a queue
    /// group: the server gives each message to one member of the group.
    pub fn queue_subscribe_with_handler(
        &self,
        subject: impl Into<String>,
        queue_group: impl Into<String>,
        handler: impl Fn(Message) + Send + Sync + 'static,
    ) -> Result<HandlerSubscription, ClientError> {
        self.handler_subscription(subject.into(), Some(queue_group.into()), Arc::new(handler))
    }

    fn handler_subscription(
        &self,
        subject: String,
        queue_group: Option<String>,
        handler: Handler,
    ) -> Result<HandlerSubscription, ClientError> {
        let sid = self.add_subscription(&subject, queue_group, Target::Handler(handler))?;
        Ok(HandlerSubscription {
            sid,
            subject,
            client: self.clone(),
        })
    }
}
