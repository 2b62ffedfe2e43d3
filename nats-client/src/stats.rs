//! Connection statistics: lock-free counters, readable at any time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one client (every connection it has had). The publish counters live
/// in the write buffer's state, under the lock publishing takes anyway, and the received
/// ones in the session (see `session::Received`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
    pub dropped_events: AtomicU64,
}

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Messages received for subscriptions.
    pub in_msgs: u64,
    /// Payload plus header bytes received.
    pub in_bytes: u64,
    /// Messages published.
    pub out_msgs: u64,
    /// Payload plus header bytes published.
    pub out_bytes: u64,
    /// Messages dropped because a subscription was over its pending limits.
    pub dropped_msgs: u64,
    /// Successful connections (the first one included).
    pub connects: u64,
    /// Successful reconnections.
    pub reconnects: u64,
    /// Events not delivered because no listener kept up.
    pub dropped_events: u64,
    /// Well-framed messages that could not be represented as a [`Message`](crate::Message)
    /// (a subject that is not UTF-8, a malformed header block): not delivered, but the
    /// connection kept (see [`SubscriptionError::Undeliverable`](crate::SubscriptionError)).
    pub undeliverable_msgs: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Statistics {
        Statistics {
            connects: self.connects.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            dropped_events: self.dropped_events.load(Relaxed),
            ..Statistics::default()
        }
    }
}
