//! Converting a bucket of the first design, where the whole topology was one JSON value under
//! key `topology`, into one key per object. Runs when a connection opens the bucket: each
//! object is created under its own key unless a key for it exists already (a conversion that
//! another process started or finished), then the old key is deleted, expecting the revision
//! that was converted. A process of the old version that writes `topology` meanwhile makes the
//! delete fail, and the next open converts again; processes of both versions must not run
//! side by side for longer than that (the old one would not see the new keys).

use jetstream::kv::{self, KvError};

use super::key::{LEGACY_KEY, exchange_key, queue_key};
use super::{decode, nats_error};
use crate::error::{Error, Result};
use crate::routing::Topology;

/// Converts `kv` if it still holds the single `topology` value.
pub(super) async fn convert(kv: &kv::Store) -> Result<()> {
    let Some(e) = kv.entry(LEGACY_KEY).await.map_err(nats_error)? else {
        return Ok(());
    };
    if e.operation.is_removal() {
        return Ok(());
    }
    let old: Topology = decode(LEGACY_KEY, &e.value)?;
    let mut writes = Vec::new();
    for name in old.exchange_names() {
        if let Some(x) = old.exchange_entry(name) {
            writes.push((
                exchange_key(name),
                serde_json::to_vec(&x).map_err(nats_error)?,
            ));
        }
    }
    for q in old.queues() {
        if let Some(entry) = old.queue_entry(&q.name) {
            writes.push((
                queue_key(&q.name),
                serde_json::to_vec(&entry).map_err(nats_error)?,
            ));
        }
    }
    for (key, value) in writes {
        match kv.create(&key, value).await {
            Ok(_) | Err(KvError::KeyExists { .. }) => {}
            Err(e) => return Err(nats_error(e)),
        }
    }
    match kv.delete_expect_revision(LEGACY_KEY, e.revision).await {
        Ok(()) => Ok(()),
        // Another process converted it at the same time and deleted it first: done.
        Err(e) if e.is_conflict() && converted_by_another(kv).await? => Ok(()),
        Err(e) if e.is_conflict() => Err(nats_error(format!(
            "bucket '{}': the old 'topology' value changed while it was converted (a process \
             of the previous version is still running); open again to convert what it wrote",
            kv.name()
        ))),
        Err(e) => Err(nats_error(e)),
    }
}

async fn converted_by_another(kv: &kv::Store) -> Result<bool> {
    let leader = kv.clone().read_from_leader();
    let e = leader.entry(LEGACY_KEY).await.map_err(nats_error)?;
    Ok(e.is_none_or(|e| e.operation.is_removal()))
}

/// The error of a tool that finds an unconverted bucket (it does not convert: that is the
/// job of the services' connections).
pub(super) fn unconverted(bucket: &str) -> Error {
    nats_error(format!(
        "bucket '{bucket}' holds the topology in the old single-key form; open it once with \
         amqp_compat::Connection (which converts it) before using this tool"
    ))
}
