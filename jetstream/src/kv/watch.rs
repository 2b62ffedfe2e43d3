//! Watching keys: [`Store::watch`] delivers the current values, then [`WatchEvent::CaughtUp`],
//! then every change as it happens, on an ordered consumer.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::Stream as FuturesStream;
use time::OffsetDateTime;

use super::bucket::Store;
use super::check_key;
use super::entry::{Entry, Operation};
use super::error::KvError;
use crate::message::JsMessage;
use crate::models::DeliverPolicy;
use crate::ordered::{OrderedConsumerConfig, OrderedMessages};

/// Options of [`Store::watch_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Deliver every stored revision, not only the latest of each key.
    pub include_history: bool,
    /// Leave out delete and purge markers.
    pub ignore_deletes: bool,
    /// Only changes made after the watch starts (no initial values).
    pub updates_only: bool,
    /// Headers only: entries come without their values.
    pub meta_only: bool,
    /// Start at this revision (every revision from it on, like `include_history`).
    pub resume_from_revision: Option<u64>,
}

/// One item of a [`Watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A revision of a key: a put, or a delete or purge marker (see [`Entry::operation`]).
    Entry(Entry),
    /// Every value stored when the watch started has been delivered; what follows are live
    /// updates. Comes exactly once, also when there were no values (then first) and with
    /// [`WatchOptions::updates_only`] (then first).
    CaughtUp,
}

impl Store {
    /// Watches `key`, which may be a pattern (`q.*`, `q.>`, `>`): the latest value of each
    /// matching key, [`WatchEvent::CaughtUp`], then every change, delete markers included.
    /// `Err` items report trouble the watch recovers from (it re-creates its consumer and
    /// misses nothing); the stream ends when the bucket is deleted or the client closes.
    pub async fn watch(&self, key: &str) -> Result<Watch, KvError> {
        self.watch_with(&[key], WatchOptions::default()).await
    }

    /// Watches every key; see [`Store::watch`].
    pub async fn watch_all(&self) -> Result<Watch, KvError> {
        self.watch(">").await
    }

    /// Watches the keys matching any of `keys` (patterns allowed; none means all).
    pub async fn watch_with(&self, keys: &[&str], options: WatchOptions) -> Result<Watch, KvError> {
        for key in keys {
            check_key(key, true)?;
        }
        let mut filters: Vec<String> = keys.iter().map(|k| format!("{}{k}", self.prefix)).collect();
        if filters.is_empty() {
            filters.push(format!("{}>", self.prefix));
        }
        let mut config = OrderedConsumerConfig {
            filter_subjects: filters,
            deliver_policy: if options.include_history {
                DeliverPolicy::All
            } else {
                DeliverPolicy::LastPerSubject
            },
            headers_only: options.meta_only,
            ..OrderedConsumerConfig::default()
        };
        if options.updates_only {
            config.deliver_policy = DeliverPolicy::New;
        } else if let Some(rev) = options.resume_from_revision {
            config.deliver_policy = DeliverPolicy::ByStartSequence;
            config.opt_start_seq = Some(rev.max(1));
        }
        let messages = self
            .context
            .ordered_messages(&self.stream, config)
            .await
            .map_err(|e| match e {
                e if e.is_api(crate::ErrorCode::STREAM_NOT_FOUND) => KvError::BucketNotFound {
                    bucket: self.bucket.clone(),
                },
                e => e.into(),
            })?;
        let initial = if options.updates_only {
            0
        } else {
            messages.initial_pending()
        };
        Ok(Watch {
            messages,
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            ignore_deletes: options.ignore_deletes,
            initial,
            received: 0,
            caught_up: false,
            announce: initial == 0,
        })
    }
}

/// The stream of a watch ([`Store::watch`]). Dropping it stops watching.
pub struct Watch {
    messages: OrderedMessages,
    bucket: String,
    prefix: String,
    ignore_deletes: bool,
    /// Messages stored when the watch started, and how many of them were received.
    initial: u64,
    received: u64,
    caught_up: bool,
    /// [`WatchEvent::CaughtUp`] is due before the next message.
    announce: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("bucket", &self.bucket)
            .field("initial", &self.initial)
            .field("received", &self.received)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// Whether [`WatchEvent::CaughtUp`] has been delivered.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// The ordered consumer underneath (its name, resets, last revision seen).
    pub fn consumer(&self) -> &OrderedMessages {
        &self.messages
    }

    fn entry(&self, msg: &JsMessage) -> Result<Entry, KvError> {
        let info = msg.info()?;
        let key = msg
            .subject
            .strip_prefix(self.prefix.as_str())
            .unwrap_or(&msg.subject);
        Ok(Entry {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            value: msg.payload.clone(),
            revision: info.stream_sequence,
            created: OffsetDateTime::from_unix_timestamp_nanos(i128::from(info.timestamp_nanos))
                .ok(),
            delta: info.pending,
            operation: Operation::from_headers(msg.headers.as_ref()),
        })
    }
}

impl FuturesStream for Watch {
    type Item = Result<WatchEvent, KvError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.announce && !this.caught_up {
                this.announce = false;
                this.caught_up = true;
                return Poll::Ready(Some(Ok(WatchEvent::CaughtUp)));
            }
            let msg = match ready!(Pin::new(&mut this.messages).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(msg)) => msg,
            };
            let entry = match this.entry(&msg) {
                Ok(e) => e,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            if !this.caught_up {
                this.received += 1;
                if this.received >= this.initial || entry.delta == 0 {
                    this.announce = true;
                }
            }
            if this.ignore_deletes && entry.operation.is_removal() {
                continue;
            }
            return Poll::Ready(Some(Ok(WatchEvent::Entry(entry))));
        }
    }
}
