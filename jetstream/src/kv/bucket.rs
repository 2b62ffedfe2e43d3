//! [`Store`]: the operations on one bucket.

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream as FuturesStream;
use futures_util::StreamExt;
use nats_client::HeaderMap;

use super::entry::{
    Entry, KV_OPERATION, KV_OPERATION_DELETE, KV_OPERATION_PURGE, NATS_ROLLUP, Operation,
};
use super::error::{KvError, current_sequence, is_wrong_last_sequence};
use super::watch::{WatchEvent, WatchOptions};
use super::{check_key, check_shape};
use crate::context::{Context, DEFAULT_API_PREFIX};
use crate::error::{ErrorCode, JetStreamError};
use crate::models::{StorageType, StreamInfo};
use crate::publish::PublishOptions;
use crate::stored::StoredMessage;

/// A handle to one bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) context: Context,
    pub(crate) bucket: String,
    pub(crate) stream: String,
    /// `$KV.<bucket>.`: a key's subject is this plus the key.
    pub(crate) prefix: String,
    /// Where writes go: [`Store::prefix`], behind the API prefix when the context has a
    /// non-default one (as nats.go does, for imported or domain-routed buckets).
    put_prefix: String,
    /// The stream serves direct gets.
    direct: bool,
}

impl Store {
    pub(crate) fn from_info(context: Context, info: &StreamInfo) -> Result<Store, KvError> {
        check_shape(info)?;
        let stream = info.config.name.clone();
        let bucket = stream
            .strip_prefix("KV_")
            .ok_or(KvError::NotABucket {
                stream: stream.clone(),
                reason: "the name does not start with KV_",
            })?
            .to_owned();
        let prefix = format!("$KV.{bucket}.");
        let put_prefix = if context.prefix() == DEFAULT_API_PREFIX {
            prefix.clone()
        } else {
            format!("{}.{prefix}", context.prefix())
        };
        Ok(Store {
            direct: info.config.allow_direct,
            context,
            bucket,
            stream,
            prefix,
            put_prefix,
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// The stream behind it (`KV_<bucket>`).
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The context this handle uses.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// This handle, reading through the stream leader (`STREAM.MSG.GET`) instead of direct
    /// gets. A direct get is answered by any replica, so on a replicated bucket it may return
    /// a revision older than the latest acknowledged write (a compare-and-set based on it then
    /// fails with [`KvError::WrongRevision`], it never overwrites). Leader reads see every
    /// acknowledged write, at the cost of going through one server.
    pub fn read_from_leader(mut self) -> Store {
        self.direct = false;
        self
    }

    fn put_subject(&self, key: &str) -> Result<String, KvError> {
        check_key(key, false)?;
        Ok(format!("{}{key}", self.put_prefix))
    }

    /// The latest value of `key`; `None` when it has none or was deleted or purged.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        Ok(self
            .entry(key)
            .await?
            .filter(|e| e.operation == Operation::Put)
            .map(|e| e.value))
    }

    /// The latest revision of `key`, delete and purge markers included (see
    /// [`Entry::operation`]); `None` when it has none. Served by any replica unless the handle
    /// is [`read_from_leader`](Store::read_from_leader).
    pub async fn entry(&self, key: &str) -> Result<Option<Entry>, KvError> {
        check_key(key, false)?;
        let subject = format!("{}{key}", self.prefix);
        let found = if self.direct {
            self.context.direct_get_last(&self.stream, &subject).await
        } else {
            self.context.get_last_message(&self.stream, &subject).await
        };
        self.found(found)
    }

    /// Revision `revision` of `key`; `None` when that revision is gone or belongs to
    /// another key.
    pub async fn entry_at(&self, key: &str, revision: u64) -> Result<Option<Entry>, KvError> {
        check_key(key, false)?;
        let found = if self.direct {
            self.context.direct_get(&self.stream, revision).await
        } else {
            self.context.get_message(&self.stream, revision).await
        };
        // The sequence may hold another key.
        Ok(self.found(found)?.filter(|e| e.key == key))
    }

    fn found(
        &self,
        found: Result<StoredMessage, JetStreamError>,
    ) -> Result<Option<Entry>, KvError> {
        let m = match found {
            Ok(m) => m,
            Err(e) if e.is_api(ErrorCode::NO_MESSAGE_FOUND) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let key = m
            .subject
            .strip_prefix(&self.prefix)
            .unwrap_or(&m.subject)
            .to_owned();
        Ok(Some(Entry {
            bucket: self.bucket.clone(),
            key,
            operation: Operation::from_headers(m.headers.as_ref()),
            value: m.payload,
            revision: m.sequence,
            created: m.time,
            delta: 0,
        }))
    }

    /// Writes a value; returns its revision.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, KvError> {
        let subject = self.put_subject(key)?;
        Ok(self.context.publish(&subject, value).await?.seq)
    }

    /// Writes a value only if `key` has none (never written, deleted or purged); fails with
    /// [`KvError::KeyExists`] otherwise. Returns the new revision.
    pub async fn create(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, KvError> {
        let value = value.into();
        let first = self.write_expecting(key, value.clone(), 0).await;
        let Err(KvError::WrongRevision { .. }) = first else {
            return first;
        };
        // Over a delete or purge marker: expect the marker's revision.
        if let Some(e) = self.entry(key).await?
            && e.operation.is_removal()
        {
            return match self.write_expecting(key, value, e.revision).await {
                Err(KvError::WrongRevision { .. }) => Err(self.exists(key)),
                other => other,
            };
        }
        Err(self.exists(key))
    }

    fn exists(&self, key: &str) -> KvError {
        KvError::KeyExists {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
        }
    }

    /// Writes a value only if the latest revision of `key` is `revision` (compare and set);
    /// fails with [`KvError::WrongRevision`] otherwise. Returns the new revision.
    pub async fn update(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        revision: u64,
    ) -> Result<u64, KvError> {
        self.write_expecting(key, value.into(), revision).await
    }

    async fn write_expecting(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> Result<u64, KvError> {
        let subject = self.put_subject(key)?;
        let options = PublishOptions::new().expected_last_subject_sequence(revision);
        self.publish(key, &subject, value, &options, Some(revision))
            .await
    }

    async fn publish(
        &self,
        key: &str,
        subject: &str,
        value: Bytes,
        options: &PublishOptions,
        expected: Option<u64>,
    ) -> Result<u64, KvError> {
        match self.context.publish_with(subject, value, options).await {
            Ok(ack) => Ok(ack.seq),
            Err(e) if is_wrong_last_sequence(&e) => Err(KvError::WrongRevision {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                expected: expected.unwrap_or_default(),
                current: current_sequence(&e),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `key`: writes a delete marker; earlier revisions stay in the history.
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.remove(key, Operation::Delete, None).await
    }

    /// Deletes `key` only if its latest revision is `revision`.
    pub async fn delete_expect_revision(&self, key: &str, revision: u64) -> Result<(), KvError> {
        self.remove(key, Operation::Delete, Some(revision)).await
    }

    /// Purges `key`: writes a purge marker that makes the stream drop every earlier revision.
    pub async fn purge(&self, key: &str) -> Result<(), KvError> {
        self.remove(key, Operation::Purge, None).await
    }

    /// Purges `key` only if its latest revision is `revision`.
    pub async fn purge_expect_revision(&self, key: &str, revision: u64) -> Result<(), KvError> {
        self.remove(key, Operation::Purge, Some(revision)).await
    }

    async fn remove(&self, key: &str, op: Operation, revision: Option<u64>) -> Result<(), KvError> {
        let subject = self.put_subject(key)?;
        let mut headers = HeaderMap::new();
        if op == Operation::Purge {
            headers.insert(KV_OPERATION, KV_OPERATION_PURGE);
            headers.insert(NATS_ROLLUP, "sub");
        } else {
            headers.insert(KV_OPERATION, KV_OPERATION_DELETE);
        }
        let mut options = PublishOptions::new().headers(headers);
        if let Some(r) = revision {
            options = options.expected_last_subject_sequence(r);
        }
        self.publish(key, &subject, Bytes::new(), &options, revision)
            .await
            .map(drop)
    }

    /// Every revision of `key` still stored, oldest first, markers included (empty when
    /// there is none).
    pub async fn history(&self, key: &str) -> Result<Vec<Entry>, KvError> {
        check_key(key, false)?;
        let options = WatchOptions {
            include_history: true,
            ..WatchOptions::default()
        };
        let mut watch = self.watch_with(&[key], options).await?;
        let mut entries = Vec::new();
        while let Some(event) = watch.next().await {
            match event {
                Ok(WatchEvent::Entry(e)) => entries.push(e),
                Ok(WatchEvent::CaughtUp) => break,
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(entries)
    }

    /// The keys that have a value (deleted and purged keys left out), as a stream. Runs a
    /// headers-only watch of the last revision of every key, as nats.go does; a key written
    /// during the listing is listed once.
    pub async fn keys(&self) -> Result<Keys, KvError> {
        self.keys_matching(&[">"]).await
    }

    /// The keys matching any of `patterns` (`q.*`, `q.>`...) that have a value; see
    /// [`Store::keys`].
    pub async fn keys_matching(&self, patterns: &[&str]) -> Result<Keys, KvError> {
        let options = WatchOptions {
            ignore_deletes: true,
            meta_only: true,
            ..WatchOptions::default()
        };
        let watch = self.watch_with(patterns, options).await?;
        let stream = futures_util::stream::unfold(
            (watch, HashSet::new(), false),
            |(mut watch, mut seen, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match watch.next().await? {
                        Ok(WatchEvent::Entry(e)) => {
                            if seen.insert(e.key.clone()) {
                                return Some((Ok(e.key), (watch, seen, false)));
                            }
                        }
                        Ok(WatchEvent::CaughtUp) => return None,
                        Err(e) if e.is_transient() => {}
                        Err(e) => return Some((Err(e), (watch, seen, true))),
                    }
                }
            },
        );
        Ok(Keys {
            inner: Box::pin(stream),
        })
    }

    /// Removes delete and purge markers, and with them every revision of the keys they
    /// removed: markers older than `older_than` go entirely, newer ones stay as the key's only
    /// revision (so watches that are behind still learn of the removal). nats.go's default for
    /// `older_than` is 30 minutes; zero removes every marker.
    pub async fn purge_deletes(&self, older_than: Duration) -> Result<(), KvError> {
        let mut watch = self.watch_all().await?;
        let mut markers = Vec::new();
        while let Some(event) = watch.next().await {
            match event {
                Ok(WatchEvent::Entry(e)) if e.operation.is_removal() => markers.push(e),
                Ok(WatchEvent::Entry(_)) => {}
                Ok(WatchEvent::CaughtUp) => break,
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
        drop(watch);
        let limit = time::OffsetDateTime::now_utc() - older_than;
        for marker in markers {
            let mut purge =
                crate::Purge::default().filter(format!("{}{}", self.prefix, marker.key));
            if !older_than.is_zero() && marker.created.is_some_and(|t| t > limit) {
                purge = purge.keep(1);
            }
            self.context.purge_stream(&self.stream, &purge).await?;
        }
        Ok(())
    }

    /// The bucket's configuration and state.
    pub async fn status(&self) -> Result<Status, KvError> {
        let info = self.context.stream_info(&self.stream).await?;
        Ok(Status {
            bucket: self.bucket.clone(),
            info,
        })
    }
}

/// The keys of a bucket ([`Store::keys`]).
pub struct Keys {
    inner: Pin<Box<dyn FuturesStream<Item = Result<String, KvError>> + Send>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

impl FuturesStream for Keys {
    type Item = Result<String, KvError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A bucket's configuration and state ([`Store::status`]).
#[derive(Debug, Clone)]
pub struct Status {
    bucket: String,
    info: StreamInfo,
}

impl Status {
    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Values stored, every kept revision and marker counted.
    pub fn values(&self) -> u64 {
        self.info.state.messages
    }

    /// Revisions kept per key.
    pub fn history(&self) -> i64 {
        self.info.config.max_msgs_per_subject
    }

    /// How long values are kept (zero: forever).
    pub fn max_age(&self) -> Duration {
        self.info.config.max_age
    }

    /// Bytes stored.
    pub fn bytes(&self) -> u64 {
        self.info.state.bytes
    }

    /// Where values are kept.
    pub fn storage(&self) -> StorageType {
        self.info.config.storage
    }

    /// Replicas.
    pub fn replicas(&self) -> usize {
        self.info.config.num_replicas
    }

    /// The stream info behind it.
    pub fn stream_info(&self) -> &StreamInfo {
        &self.info
    }
}
