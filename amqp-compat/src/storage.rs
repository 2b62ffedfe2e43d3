//! Where a queue's messages live on JetStream (design B, `docs/amqp-mapping.md` §4): a
//! WorkQueue stream per queue, named from the namespace and the queue name, listening on the
//! queue's default-exchange subject. Every message routed to the queue, from any exchange, is
//! stored there.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jetstream::models::{DiscardPolicy, RetentionPolicy, StorageType, StreamConfig};
use jetstream::{ErrorCode, Purge};

use crate::error::Result;
use crate::routing::{Overflow, QueueDecl};
use crate::store::nats_error;
use crate::subject::SubjectMapper;

/// A request with this header to a design-E queue's subject asks its owner for the queue's
/// depth instead of enqueuing (value `depth`, see [`local_queue_depth`]), or to drop the
/// queue (value `delete`: its consumers end; answered with the depth it had).
pub const LOCAL_QUERY_HEADER: &str = "Amqp-Local-Query";

/// A design-E queue's depth as its owner reports it (`docs/amqp-mapping.md` §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct LocalDepth {
    /// Messages ready for delivery.
    pub ready: u64,
    /// Messages delivered and not yet settled.
    pub unacked: u64,
    /// Consumers attached.
    pub consumers: u32,
}

/// Asks the owning connection of design-E queue `queue` for its depth: `None` when nobody
/// answers within `timeout` (the owner is gone or slow) or the answer is not a depth.
pub async fn local_queue_depth(
    client: &nats_client::Client,
    mapper: &SubjectMapper,
    queue: &str,
    timeout: std::time::Duration,
) -> Option<LocalDepth> {
    local_query(client, mapper, queue, "depth", timeout).await
}

/// Tells the owning connection of design-E queue `queue` that the queue was deleted (by an
/// administrator: its topology entry is gone): it drops its messages and ends its
/// consumers. Returns the depth it had, `None` when nobody answered.
pub async fn local_queue_delete(
    client: &nats_client::Client,
    mapper: &SubjectMapper,
    queue: &str,
    timeout: std::time::Duration,
) -> Option<LocalDepth> {
    local_query(client, mapper, queue, "delete", timeout).await
}

async fn local_query(
    client: &nats_client::Client,
    mapper: &SubjectMapper,
    queue: &str,
    what: &str,
    timeout: std::time::Duration,
) -> Option<LocalDepth> {
    let mut headers = nats_proto::HeaderMap::new();
    headers.insert(LOCAL_QUERY_HEADER, what);
    let subject = mapper.queue_subject(queue);
    let reply = client
        .request_with(&subject, Some(&headers), b"", timeout)
        .await
        .ok()?;
    serde_json::from_slice(&reply.payload).ok()
}

/// Longest escaped name kept as is; longer names are hashed (stream names stop at 255).
const MAX_READABLE: usize = 160;

/// Escapes `s` into characters a stream or consumer name may hold: ASCII letters, digits and `-` stay,
/// every other byte becomes `=HH`, so distinct inputs give distinct outputs.
pub fn escape_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b.is_ascii_alphanumeric() || b == b'-' {
            true => out.push(char::from(b)),
            false => out.push_str(&format!("={b:02X}")),
        }
    }
    out
}

/// FNV-1a, 64 bits: a stable name for queues too long to spell out.
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The stream of queue `queue` in `namespace`: `AMQPQ_<ns>_<queue>` (escaped).
pub fn queue_stream(namespace: Option<&str>, queue: &str) -> String {
    let ns = escape_name(namespace.unwrap_or(""));
    let q = escape_name(queue);
    match ns.len() + q.len() > MAX_READABLE {
        false => format!("AMQPQ_{ns}_{q}"),
        true => format!(
            "AMQPQ_H{:016x}{:016x}",
            fnv(namespace.unwrap_or("")),
            fnv(queue)
        ),
    }
}

/// The subjects of design-B queues by name, for the publish path: working one out from the
/// mapper's rules and escaping the name cost ~4% of the client's CPU per publish. A subject
/// depends only on the connection's mapper and the queue's name, so an entry never goes stale;
/// the map is emptied when it reaches [`QueueSubjects::MAX`] names, so the names of deleted
/// queues (server-named reply queues, say) do not pile up.
#[derive(Debug, Default)]
pub(crate) struct QueueSubjects(RwLock<HashMap<String, Arc<str>>>);

impl QueueSubjects {
    /// The most names kept.
    pub(crate) const MAX: usize = 4096;

    /// The subject of queue `queue` (what [`SubjectMapper::queue_subject`] says).
    pub(crate) fn get(&self, mapper: &SubjectMapper, queue: &str) -> Arc<str> {
        let cached = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
            .cloned();
        if let Some(subject) = cached {
            return subject;
        }
        let subject: Arc<str> = mapper.queue_subject(queue).into();
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(queue.to_owned(), subject.clone());
        subject
    }
}

/// The storage of one queue.
#[derive(Clone, Debug)]
pub(crate) struct QueueStorage {
    pub(crate) stream: String,
    pub(crate) subject: String,
}

impl QueueStorage {
    pub(crate) fn of(mapper: &SubjectMapper, queue: &str) -> Self {
        Self {
            stream: queue_stream(mapper.namespace(), queue),
            subject: mapper.queue_subject(queue),
        }
    }

    /// Creates the queue's stream if it does not exist yet.
    pub(crate) async fn ensure(&self, js: &jetstream::Context, decl: &QueueDecl) -> Result<()> {
        let transient = decl.exclusive_owner.is_some() || !decl.durable;
        let config = |replicas| StreamConfig {
            name: self.stream.clone(),
            description: Some(format!("amqp-compat queue {}", decl.name)),
            subjects: vec![self.subject.clone()],
            retention: RetentionPolicy::WorkQueue,
            storage: match transient {
                true => StorageType::Memory,
                false => StorageType::File,
            },
            num_replicas: replicas,
            max_consumers: 1024,
            max_msgs: decl.arguments.max_length.map_or(-1, clamp),
            max_bytes: decl.arguments.max_length_bytes.map_or(-1, clamp),
            discard: match decl.arguments.overflow {
                Some(Overflow::RejectPublish | Overflow::RejectPublishDlx) => DiscardPolicy::New,
                _ => DiscardPolicy::Old,
            },
            allow_msg_ttl: true,
            ..StreamConfig::default()
        };
        match js.stream_info(&self.stream).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => {}
            Err(e) => return Err(nats_error(e)),
        }
        if transient {
            return js
                .create_stream(config(1))
                .await
                .map(drop)
                .map_err(nats_error);
        }
        match js.create_stream(config(3)).await {
            Ok(_) => Ok(()),
            Err(_) => js
                .create_stream(config(1))
                .await
                .map(drop)
                .map_err(nats_error),
        }
    }

    /// Messages in the queue (0 when its stream is gone).
    pub(crate) async fn message_count(&self, js: &jetstream::Context) -> Result<u32> {
        match js.stream_info(&self.stream).await {
            Ok(info) => Ok(saturate(info.state.messages)),
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => Ok(0),
            Err(e) => Err(nats_error(e)),
        }
    }

    /// Removes every message; returns how many there were.
    pub(crate) async fn purge(&self, js: &jetstream::Context) -> Result<u32> {
        match js.purge_stream(&self.stream, &Purge::default()).await {
            Ok(n) => Ok(saturate(n)),
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => Ok(0),
            Err(e) => Err(nats_error(e)),
        }
    }

    /// Deletes the stream (absent is fine).
    pub(crate) async fn delete(&self, js: &jetstream::Context) -> Result<()> {
        match js.delete_stream(&self.stream).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_api(ErrorCode::STREAM_NOT_FOUND) => Ok(()),
            Err(e) => Err(nats_error(e)),
        }
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_valid_and_distinct() {
        assert_eq!(queue_stream(None, "jobs"), "AMQPQ__jobs");
        assert_eq!(queue_stream(Some("p"), "a.b c"), "AMQPQ_p_a=2Eb=20c");
        assert_ne!(queue_stream(None, "a_b"), queue_stream(Some("a"), "b"));
        let long = "x".repeat(300);
        let name = queue_stream(None, &long);
        assert!(name.len() < 64 && name.starts_with("AMQPQ_H"));
        for name in [queue_stream(None, "*>/\\ ."), name] {
            assert!(!name.contains(['.', '*', '>', '/', '\\', ' ']));
        }
    }

    #[test]
    fn cached_queue_subjects_are_the_mappers_and_stay_bounded() {
        let mapper = SubjectMapper::new(Some("ns")).unwrap();
        let subjects = QueueSubjects::default();
        for name in ["jobs", "a.b c", "amq.gen-1", ""] {
            let expected = mapper.queue_subject(name);
            assert_eq!(&*subjects.get(&mapper, name), expected);
            assert_eq!(&*subjects.get(&mapper, name), expected, "cached");
        }
        for i in 0..2 * QueueSubjects::MAX {
            let name = format!("reply-{i}");
            assert_eq!(&*subjects.get(&mapper, &name), mapper.queue_subject(&name));
        }
        let held = subjects.0.read().unwrap().len();
        assert!(held <= QueueSubjects::MAX, "{held}");
    }
}
