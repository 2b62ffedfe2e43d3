//! Priority groups in pull requests (server 2.11+): the group a pull belongs to, the overflow
//! thresholds, the priority, and the pin a [`PriorityPolicy::PinnedClient`] consumer hands to
//! the one client it serves.
//!
//! The pin flow, as nats-server runs it: the first pull of a group that meets a message gets
//! pinned, and every message it receives carries `Nats-Pin-Id`. Pulls carrying that id keep
//! the pin alive; the pin moves when no such pull has arrived for `priority_timeout`. Pulls
//! without an id wait (a standby sees `408` as they expire) until the pin moves; a pull with
//! a stale id gets `423` and must pull again without it. So a pinned client must pull again
//! well inside `priority_timeout`, which [`Consumer::consume`] does by keeping each pull
//! shorter than a third of it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::consumer::Consumer;
use crate::models::{ConsumerConfig, PriorityPolicy};

/// Header on messages of a pinned-client consumer: the pin of the client receiving them.
pub const PIN_ID_HEADER: &str = "Nats-Pin-Id";

/// The server's `priority_timeout` when the consumer does not set one.
pub(crate) const DEFAULT_PRIORITY_TIMEOUT: Duration = Duration::from_secs(120);

/// The priority-group part of a pull ([`FetchOptions::priority_group`](crate::FetchOptions),
/// [`ConsumeOptions::priority_group`](crate::ConsumeOptions)).
///
/// ```
/// let standby = jetstream::PriorityGroup::new("workers").min_pending(100);
/// assert_eq!(standby.group, "workers");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriorityGroup {
    /// The group, one of the consumer's `priority_groups`.
    pub group: String,
    /// [`PriorityPolicy::Overflow`]: serve this pull only while the consumer has at least this
    /// many messages pending (0: always).
    pub min_pending: i64,
    /// [`PriorityPolicy::Overflow`]: serve this pull only while at least this many messages
    /// are delivered and unacknowledged (0: always).
    pub min_ack_pending: i64,
    /// [`PriorityPolicy::Prioritized`]: 0 (served first) to 9.
    pub priority: u8,
}

impl PriorityGroup {
    /// A pull in `group` with no thresholds and priority 0.
    pub fn new(group: impl Into<String>) -> Self {
        PriorityGroup {
            group: group.into(),
            ..PriorityGroup::default()
        }
    }

    /// Sets [`min_pending`](Self::min_pending).
    pub fn min_pending(mut self, n: i64) -> Self {
        self.min_pending = n;
        self
    }

    /// Sets [`min_ack_pending`](Self::min_ack_pending).
    pub fn min_ack_pending(mut self, n: i64) -> Self {
        self.min_ack_pending = n;
        self
    }

    /// Sets [`priority`](Self::priority).
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }
}

/// The priority fields of a pull request on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PullPriority {
    pub(crate) group: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) min_pending: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) min_ack_pending: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub(crate) priority: u8,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

/// The pin this process holds on a pinned-client consumer, shared by the clones of a
/// [`Consumer`] handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pin(Arc<Mutex<Option<String>>>);

impl Pin {
    pub(crate) fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Remembers the pin a message came with.
    pub(crate) fn observe(&self, msg: &nats_client::Message) {
        if let Some(id) = msg.headers.as_ref().and_then(|h| h.get(PIN_ID_HEADER)) {
            let mut pin = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if pin.as_deref() != Some(id) {
                tracing::debug!(pin = id, "pinned");
                *pin = Some(id.to_owned());
            }
        }
    }

    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// How long a pinned client may wait between pulls: a third of `priority_timeout`, so a late
/// pull or two still keeps the pin.
pub(crate) fn repin_interval(config: &ConsumerConfig) -> Option<Duration> {
    (config.priority_policy == PriorityPolicy::PinnedClient).then(|| {
        let timeout = if config.priority_timeout.is_zero() {
            DEFAULT_PRIORITY_TIMEOUT
        } else {
            config.priority_timeout
        };
        (timeout / 3).max(Duration::from_millis(100))
    })
}

impl Consumer {
    /// The pin this handle (and its clones) holds on a [`PriorityPolicy::PinnedClient`]
    /// consumer: `Some` once a message arrived with `Nats-Pin-Id`. Dropped when the server
    /// says the pin moved (`423`).
    pub fn pin_id(&self) -> Option<String> {
        self.pin.get()
    }

    /// The priority fields of a pull: the group asked for, else the consumer's first group
    /// when it has a priority policy (the server refuses pulls without a group then), plus
    /// the pin held.
    pub(crate) fn pull_priority(&self, asked: Option<&PriorityGroup>) -> Option<PullPriority> {
        let config = &self.cached_info().config;
        let group = match asked {
            Some(g) => g.clone(),
            None if config.priority_policy != PriorityPolicy::None => {
                PriorityGroup::new(config.priority_groups.first()?.clone())
            }
            None => return None,
        };
        let id = (config.priority_policy == PriorityPolicy::PinnedClient)
            .then(|| self.pin.get())
            .flatten();
        Some(PullPriority {
            group: group.group,
            min_pending: group.min_pending,
            min_ack_pending: group.min_ack_pending,
            id,
            priority: group.priority,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repin_interval_is_a_third_of_the_timeout() {
        let mut c = ConsumerConfig::default();
        assert_eq!(repin_interval(&c), None);
        c.priority_policy = PriorityPolicy::PinnedClient;
        assert_eq!(repin_interval(&c), Some(Duration::from_secs(40)));
        c.priority_timeout = Duration::from_secs(3);
        assert_eq!(repin_interval(&c), Some(Duration::from_secs(1)));
    }

    #[test]
    fn wire_form() {
        let p = PullPriority {
            group: "g".into(),
            id: Some("pin".into()),
            ..PullPriority::default()
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"group":"g","id":"pin"}"#
        );
    }
}
