//! [`TopologyStore`]: the shared [`Topology`] kept in a JetStream KV bucket, changed with
//! compare-and-set and followed by a watch, so every process of a service sees the same
//! exchanges, queues and bindings.
//!
//! The whole topology is one value (key `topology`, JSON). A change reads the latest revision
//! from the server, applies the AMQP operation to it and writes it back expecting that revision;
//! a conflict (another process wrote first) retries on the newer value. Topology methods are
//! therefore linearizable across processes; publish routing reads the watched cache.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use jetstream::kv::{self, KvError, WatchEvent};

use crate::error::{Error, Result};
use crate::routing::Topology;

/// The key holding the topology in its bucket.
const KEY: &str = "topology";

/// How many compare-and-set conflicts a change retries before giving up.
const MAX_CONFLICTS: usize = 64;

/// The cached topology and the KV revision it came from.
#[derive(Debug, Default)]
struct Cached {
    revision: u64,
    topology: Topology,
}

/// The shared topology of one namespace; cheap to clone.
#[derive(Clone, Debug)]
pub struct TopologyStore {
    kv: kv::Store,
    cache: Arc<RwLock<Cached>>,
}

/// The bucket name for a namespace: `AMQP_TOPOLOGY`, or `AMQP_TOPOLOGY_<ns>` with every
/// character a bucket name cannot hold replaced by `_`.
pub fn bucket_name(namespace: Option<&str>) -> String {
    match namespace {
        None => "AMQP_TOPOLOGY".to_owned(),
        Some(ns) => {
            let ns: String = ns
                .chars()
                .map(
                    |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        true => c,
                        false => '_',
                    },
                )
                .collect();
            format!("AMQP_TOPOLOGY_{ns}")
        }
    }
}

pub(crate) fn nats_error(e: impl std::fmt::Display) -> Error {
    std::io::Error::other(e.to_string()).into()
}

fn decode(value: &[u8]) -> Result<Topology> {
    serde_json::from_slice(value).map_err(|e| nats_error(format!("bad topology value: {e}")))
}

impl TopologyStore {
    /// Binds to (or creates: three replicas when the cluster has them, else one) the bucket of
    /// `namespace`, loads the topology and starts watching it.
    pub async fn open(js: &jetstream::Context, namespace: Option<&str>) -> Result<Self> {
        let bucket = bucket_name(namespace);
        let kv = match js.key_value(&bucket).await {
            Ok(kv) => kv,
            Err(KvError::BucketNotFound { .. }) => create_bucket(js, &bucket).await?,
            Err(e) => return Err(nats_error(e)),
        }
        .read_from_leader();
        let store = Self {
            kv,
            cache: Arc::new(RwLock::new(Cached {
                revision: 0,
                topology: Topology::new(),
            })),
        };
        store.start_watch().await?;
        Ok(store)
    }

    /// Binds to the bucket of `namespace` when it exists, without creating it and without
    /// watching it: for tools that read ([`latest`](Self::latest)) and change
    /// ([`modify`](Self::modify)) the topology without serving AMQP. `None` when no process
    /// ever declared anything in the namespace. The cache of such a store stays empty.
    pub async fn bind(js: &jetstream::Context, namespace: Option<&str>) -> Result<Option<Self>> {
        let kv = match js.key_value(&bucket_name(namespace)).await {
            Ok(kv) => kv,
            Err(KvError::BucketNotFound { .. }) => return Ok(None),
            Err(e) => return Err(nats_error(e)),
        }
        .read_from_leader();
        Ok(Some(Self {
            kv,
            cache: Arc::new(RwLock::new(Cached::default())),
        }))
    }

    /// The topology as stored now and its KV revision (read from the server, not the cache;
    /// a namespace where nothing was declared yet gives the initial topology and 0). Read
    /// through the bucket's stream leader: a direct get may be answered by a lagging replica,
    /// and an operation that fails on a stale value (a bind's 404 right after the queue's
    /// declare-ok) writes nothing, so compare-and-set would not catch it.
    pub async fn latest(&self) -> Result<(u64, Topology)> {
        match self.kv.entry(KEY).await.map_err(nats_error)? {
            Some(e) if !e.operation.is_removal() => Ok((e.revision, decode(&e.value)?)),
            Some(e) => Ok((e.revision, Topology::new())),
            None => Ok((0, Topology::new())),
        }
    }

    async fn start_watch(&self) -> Result<()> {
        let mut watch = self.kv.watch(KEY).await.map_err(nats_error)?;
        // Apply the initial value before returning, so a new connection starts current.
        loop {
            match watch.next().await {
                Some(Ok(WatchEvent::CaughtUp)) | None => break,
                Some(Ok(WatchEvent::Entry(e))) => self.apply_entry(&e),
                Some(Err(e)) if e.is_transient() => continue,
                Some(Err(e)) => return Err(nats_error(e)),
            }
        }
        let cache = Arc::downgrade(&self.cache);
        tokio::spawn(async move {
            while let Some(event) = watch.next().await {
                let Some(cache) = cache.upgrade() else { return };
                if let Ok(WatchEvent::Entry(e)) = event {
                    apply(&cache, &e);
                }
            }
        });
        Ok(())
    }

    fn apply_entry(&self, e: &kv::Entry) {
        apply(&self.cache, e);
    }

    /// The topology as last seen (the watch keeps it current; no I/O).
    pub fn cached(&self) -> Topology {
        self.read(|t| t.clone())
    }

    /// Reads the cached topology.
    pub fn read<T>(&self, f: impl FnOnce(&Topology) -> T) -> T {
        let guard = self.cache.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.topology)
    }

    /// The KV revision of the cached topology (0 before the first write).
    pub fn revision(&self) -> u64 {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .revision
    }

    /// Applies `op` to the latest topology and stores the result with compare-and-set,
    /// retrying on conflicts. `op` may run several times. Nothing is written when it leaves
    /// the topology unchanged or fails (its error is returned).
    pub async fn modify<T>(&self, mut op: impl FnMut(&mut Topology) -> Result<T>) -> Result<T> {
        for _ in 0..MAX_CONFLICTS {
            let (revision, current) = self.latest().await?;
            let mut next = current.clone();
            let out = op(&mut next)?;
            if next == current {
                self.store_cache(revision, current);
                return Ok(out);
            }
            let value = serde_json::to_vec(&next).map_err(nats_error)?;
            let written = match revision {
                0 => self.kv.create(KEY, value).await,
                r => self.kv.update(KEY, value, r).await,
            };
            match written {
                Ok(rev) => {
                    self.store_cache(rev, next);
                    return Ok(out);
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(nats_error(e)),
            }
        }
        Err(nats_error(format!(
            "topology update conflicted {MAX_CONFLICTS} times in a row"
        )))
    }

    /// Renews connection `id`'s lease (key `c.<id>`): its exclusive queues live while it is
    /// fresh.
    pub async fn renew_lease(&self, id: &str) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        self.kv
            .put(&format!("c.{id}"), now.to_string())
            .await
            .map(drop)
            .map_err(nats_error)
    }

    /// Removes connection `id`'s lease (it closed).
    pub async fn drop_lease(&self, id: &str) -> Result<()> {
        self.kv.purge(&format!("c.{id}")).await.map_err(nats_error)
    }

    /// How long ago connection `id` last renewed its lease (`None`: no lease).
    pub async fn lease_age(&self, id: &str) -> Result<Option<Duration>> {
        let entry = self
            .kv
            .entry(&format!("c.{id}"))
            .await
            .map_err(nats_error)?;
        let Some(e) = entry.filter(|e| !e.operation.is_removal()) else {
            return Ok(None);
        };
        let renewed: u128 = std::str::from_utf8(&e.value)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let age = u64::try_from(now.saturating_sub(renewed)).unwrap_or(u64::MAX);
        Ok(Some(Duration::from_millis(age)))
    }

    fn store_cache(&self, revision: u64, topology: Topology) {
        let mut guard = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if revision >= guard.revision {
            *guard = Cached { revision, topology };
        }
    }
}

fn apply(cache: &RwLock<Cached>, e: &kv::Entry) {
    let topology = match e.operation.is_removal() {
        true => Topology::new(),
        false => match decode(&e.value) {
            Ok(t) => t,
            Err(_) => return,
        },
    };
    let mut guard = cache.write().unwrap_or_else(|p| p.into_inner());
    if e.revision > guard.revision {
        *guard = Cached {
            revision: e.revision,
            topology,
        };
    }
}

async fn create_bucket(js: &jetstream::Context, bucket: &str) -> Result<kv::Store> {
    let config = |replicas| kv::Config {
        bucket: bucket.to_owned(),
        description: Some("amqp-compat topology".to_owned()),
        history: 1,
        num_replicas: replicas,
        max_consumers: 100_000,
        max_age: Duration::ZERO,
        ..kv::Config::default()
    };
    // Three replicas where the cluster has them; a single server refuses and gets one.
    match js.create_or_update_key_value(config(3)).await {
        Ok(kv) => Ok(kv),
        Err(_) => js
            .create_or_update_key_value(config(1))
            .await
            .map_err(nats_error),
    }
}
