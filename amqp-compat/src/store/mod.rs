//! [`TopologyStore`]: the shared topology kept in a JetStream KV bucket, one key per object,
//! changed with compare-and-set and followed by a watch, so every process of a service sees
//! the same exchanges, queues and bindings (`docs/amqp-mapping.md` §3).
//!
//! - `x.<tok(name)>`: an exchange ([`ExchangeEntry`]: its declaration and the
//!   exchange-to-exchange bindings leading to it);
//! - `q.<tok(name)>`: a queue ([`QueueEntry`]: declaration, owner, consumers, and every binding
//!   leading to it), so declaring, binding, unbinding, consuming and deleting a queue is one
//!   compare-and-set on one key, and a deleted queue takes its bindings with it atomically;
//! - `c.<connection id>`: a connection's lease (exclusive queues of a crashed process are
//!   reaped when it is stale).
//!
//! A change ([`TopologyStore::modify`]) loads the keys its [`Scope`] names into a partial
//! [`Topology`], runs the AMQP operation on it (RabbitMQ's rules stay in one place, the routing
//! engine) and writes back the entries that changed, in an order that is safe when a process
//! dies between two writes. Every connection keeps the whole topology in memory from a watch
//! of the bucket: publish routing reads it without I/O.

mod change;
mod key;
mod migrate;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use jetstream::kv::{self, KvError, WatchEvent};

pub use change::Scope;
pub use key::{Key, exchange_key, parse_key, queue_key, tok, untok};

use crate::error::{Error, Result};
use crate::routing::{ExchangeEntry, QueueEntry, Topology};

/// How long [`TopologyStore::sync`] waits for the watch before it gives up waiting.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// The cached topology, and the revision of what the watch delivered.
#[derive(Debug)]
struct Cached {
    /// The revision of each key as cached (a stale watch event never overwrites a newer
    /// value this process wrote itself).
    revisions: HashMap<String, u64>,
    topology: Topology,
}

/// The shared topology of one namespace; cheap to clone.
#[derive(Clone, Debug)]
pub struct TopologyStore {
    kv: kv::Store,
    /// The same bucket read on the stream leader (checks that must see the latest write).
    leader: kv::Store,
    cache: Arc<RwLock<Cached>>,
    /// The highest revision the watch delivered (`None`: this store does not watch).
    seen: Option<tokio::sync::watch::Receiver<u64>>,
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

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value)
        .map_err(|e| nats_error(format!("bad topology value '{key}': {e}")))
}

impl TopologyStore {
    /// Binds to (or creates: three replicas when the cluster has them, else one) the bucket of
    /// `namespace`, converts a bucket of the first design (one `topology` key), loads the
    /// topology and starts watching it.
    pub async fn open(js: &jetstream::Context, namespace: Option<&str>) -> Result<Self> {
        let bucket = bucket_name(namespace);
        let kv = match js.key_value(&bucket).await {
            Ok(kv) => kv,
            Err(KvError::BucketNotFound { .. }) => {
                create_bucket(js, &bucket, "amqp-compat topology").await?
            }
            Err(e) => return Err(nats_error(e)),
        };
        migrate::convert(&kv).await?;
        let mut store = Self::unwatched(kv);
        store.start_watch().await?;
        Ok(store)
    }

    /// Binds to the bucket of `namespace` when it exists, without creating it and without
    /// watching it: for tools that read ([`queue_names`](Self::queue_names),
    /// [`queue_entry`](Self::queue_entry)) and change ([`modify`](Self::modify)) a few objects
    /// without serving AMQP. `None` when no process ever declared anything in the namespace.
    /// The cache of such a store stays empty, and its changes never auto-delete an exchange
    /// (it cannot see the other queues' bindings).
    pub async fn bind(js: &jetstream::Context, namespace: Option<&str>) -> Result<Option<Self>> {
        let kv = match js.key_value(&bucket_name(namespace)).await {
            Ok(kv) => kv,
            Err(KvError::BucketNotFound { .. }) => return Ok(None),
            Err(e) => return Err(nats_error(e)),
        };
        if kv
            .entry(key::LEGACY_KEY)
            .await
            .map_err(nats_error)?
            .is_some_and(|e| !e.operation.is_removal())
        {
            return Err(migrate::unconverted(kv.name()));
        }
        Ok(Some(Self::unwatched(kv)))
    }

    fn unwatched(kv: kv::Store) -> Self {
        Self {
            leader: kv.clone().read_from_leader(),
            kv,
            cache: Arc::new(RwLock::new(Cached {
                revisions: HashMap::new(),
                topology: Topology::new(),
            })),
            seen: None,
        }
    }

    /// The names of every queue, read from the server (keys only, no values), unsorted.
    pub async fn queue_names(&self) -> Result<Vec<String>> {
        let mut keys = self.kv.keys_matching(&["q.>"]).await.map_err(nats_error)?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            if let Key::Queue(name) = parse_key(&k.map_err(nats_error)?) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Queue `name` as stored now (read from the server).
    pub async fn queue_entry(&self, name: &str) -> Result<Option<QueueEntry>> {
        Ok(self.load(&queue_key(name)).await?.1)
    }

    /// Exchange `name` as stored now (read from the server; `None` also for a built-in
    /// exchange nothing is bound to).
    pub async fn exchange_entry(&self, name: &str) -> Result<Option<ExchangeEntry>> {
        Ok(self.load(&exchange_key(name)).await?.1)
    }

    /// The latest revision of `key` (0: never written) and its value when it has one, read
    /// from any replica (a replica may lag the latest write by a moment).
    async fn load<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<(u64, Option<T>)> {
        load_from(&self.kv, key).await
    }

    /// [`load`](Self::load) on the stream leader: what a change must start from (a lagging
    /// replica would make a queue declared a moment ago look absent to the next bind).
    async fn load_latest<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<(u64, Option<T>)> {
        load_from(&self.leader, key).await
    }

    /// The whole topology as stored now, read from the server (one pass over every key; for
    /// tools and tests, not for a hot path).
    pub async fn latest(&self) -> Result<Topology> {
        let mut watch = self
            .kv
            .watch_with(&["x.>", "q.>"], kv::WatchOptions::default())
            .await
            .map_err(nats_error)?;
        let mut t = Topology::new();
        while let Some(event) = watch.next().await {
            match event {
                Ok(WatchEvent::CaughtUp) => break,
                Ok(WatchEvent::Entry(e)) => apply_to(&mut t, &e),
                Err(e) if e.is_transient() => continue,
                Err(e) => return Err(nats_error(e)),
            }
        }
        Ok(t)
    }

    async fn start_watch(&mut self) -> Result<()> {
        let mut watch = self.kv.watch_all().await.map_err(nats_error)?;
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        // Apply the initial values before returning, so a new connection starts current.
        let mut seen = 0;
        loop {
            match watch.next().await {
                Some(Ok(WatchEvent::CaughtUp)) | None => break,
                Some(Ok(WatchEvent::Entry(e))) => {
                    seen = seen.max(e.revision);
                    apply(&self.cache, &e);
                }
                Some(Err(e)) if e.is_transient() => continue,
                Some(Err(e)) => return Err(nats_error(e)),
            }
        }
        tx.send_replace(seen);
        self.seen = Some(rx);
        let cache = Arc::downgrade(&self.cache);
        tokio::spawn(async move {
            while let Some(event) = watch.next().await {
                let Some(cache) = cache.upgrade() else { return };
                if let Ok(WatchEvent::Entry(e)) = event {
                    apply(&cache, &e);
                    tx.send_if_modified(|s| {
                        let newer = e.revision > *s;
                        *s = (*s).max(e.revision);
                        newer
                    });
                }
            }
        });
        Ok(())
    }

    /// Waits until the cache holds every change stored before this call (a barrier: the
    /// watch delivers in revision order). Gives up waiting after a few seconds (the cache
    /// is then as current as the watch could make it). No-op for a store that does not watch.
    pub async fn sync(&self) -> Result<()> {
        let Some(seen) = &self.seen else {
            return Ok(());
        };
        let status = self.kv.status().await.map_err(nats_error)?;
        let last = status.stream_info().state.last_seq;
        let mut seen = seen.clone();
        let _ = tokio::time::timeout(SYNC_WAIT, seen.wait_for(|s| *s >= last)).await;
        Ok(())
    }

    /// Whether this store follows the bucket with a watch (opened, not bound).
    pub fn is_watching(&self) -> bool {
        self.seen.is_some()
    }

    /// A copy of the whole cached topology (kept current by the watch; no I/O, but it copies
    /// every object: prefer [`read`](Self::read)).
    pub fn cached(&self) -> Topology {
        self.read(|t| t.clone())
    }

    /// Reads the cached topology.
    pub fn read<T>(&self, f: impl FnOnce(&Topology) -> T) -> T {
        let guard = self.cache.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.topology)
    }

    /// The part of the cached topology a queue's operations need: the queue and the
    /// exchanges its bindings come from.
    pub fn cached_queue(&self, queue: &str) -> Topology {
        self.read(|t| {
            let mut part = Topology::new();
            let Some(entry) = t.queue_entry(queue) else {
                return part;
            };
            for b in &entry.bindings {
                part.set_exchange_entry(&b.source, t.exchange_entry(&b.source));
            }
            part.set_queue_entry(queue, Some(entry));
            part
        })
    }

    /// The highest revision the watch delivered (0 before anything was stored, and for a
    /// store that does not watch).
    pub fn revision(&self) -> u64 {
        self.seen.as_ref().map_or(0, |s| *s.borrow())
    }

    /// Renews connection `id`'s lease (key `c.<id>`): its exclusive queues live while it is
    /// fresh.
    pub async fn renew_lease(&self, id: &str) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        self.kv
            .put(&format!("{}{id}", key::LEASE_PREFIX), now.to_string())
            .await
            .map(drop)
            .map_err(nats_error)
    }

    /// Removes connection `id`'s lease (it closed).
    pub async fn drop_lease(&self, id: &str) -> Result<()> {
        self.kv
            .purge(&format!("{}{id}", key::LEASE_PREFIX))
            .await
            .map_err(nats_error)
    }

    /// How long ago connection `id` last renewed its lease (`None`: no lease).
    pub async fn lease_age(&self, id: &str) -> Result<Option<Duration>> {
        let entry = self
            .kv
            .entry(&format!("{}{id}", key::LEASE_PREFIX))
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

    /// Puts what this process just wrote into its cache (read-your-writes), unless the watch
    /// already brought something newer.
    fn cache_written(&self, key: &str, revision: u64, apply: impl FnOnce(&mut Topology)) {
        let mut guard = self.cache.write().unwrap_or_else(|p| p.into_inner());
        let cur = guard.revisions.get(key).copied().unwrap_or(0);
        if revision > cur {
            guard.revisions.insert(key.to_owned(), revision);
            apply(&mut guard.topology);
        }
    }
}

async fn load_from<T: serde::de::DeserializeOwned>(
    kv: &kv::Store,
    key: &str,
) -> Result<(u64, Option<T>)> {
    match kv.entry(key).await.map_err(nats_error)? {
        Some(e) if !e.operation.is_removal() => Ok((e.revision, Some(decode(key, &e.value)?))),
        Some(e) => Ok((e.revision, None)),
        None => Ok((0, None)),
    }
}

/// Applies one watched entry to the cache (ignoring it when the cache holds a newer value).
fn apply(cache: &RwLock<Cached>, e: &kv::Entry) {
    if matches!(parse_key(&e.key), Key::Other) {
        return;
    }
    let mut guard = cache.write().unwrap_or_else(|p| p.into_inner());
    let cur = guard.revisions.get(&e.key).copied().unwrap_or(0);
    if e.revision <= cur {
        return;
    }
    guard.revisions.insert(e.key.clone(), e.revision);
    apply_to(&mut guard.topology, e);
}

/// Puts the object of entry `e` into `t` (a value that does not decode is skipped: it is
/// not ours to interpret, and one bad key must not blind a process to the others).
fn apply_to(t: &mut Topology, e: &kv::Entry) {
    let removed = e.operation.is_removal();
    match parse_key(&e.key) {
        Key::Queue(name) => {
            let entry = match removed {
                true => None,
                false => match decode::<QueueEntry>(&e.key, &e.value) {
                    Ok(q) => Some(q),
                    Err(_) => return,
                },
            };
            t.set_queue_entry(&name, entry);
        }
        Key::Exchange(name) => {
            let entry = match removed {
                true => None,
                false => match decode::<ExchangeEntry>(&e.key, &e.value) {
                    Ok(x) => Some(x),
                    Err(_) => return,
                },
            };
            t.set_exchange_entry(&name, entry);
        }
        Key::Other => {}
    }
}

/// Creates KV bucket `bucket` (history 1, no expiry): three replicas where the cluster has
/// them, else one.
pub(crate) async fn create_bucket(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
) -> Result<kv::Store> {
    let config = |replicas| kv::Config {
        bucket: bucket.to_owned(),
        description: Some(description.to_owned()),
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
