//! Changing the topology: [`TopologyStore::modify`] loads the keys a [`Scope`] names into a
//! partial [`Topology`], runs an AMQP operation on it and writes back what changed, each key
//! with compare-and-set on the revision it was loaded at.
//!
//! Every operation changes ONE key for what it was asked (a queue's key for declare, bind,
//! unbind, consume, delete; an exchange's key for declare, delete, exchange-to-exchange
//! binds), so that write is atomic; what follows from it touches other keys afterwards, in
//! an order where a crash in between leaves nothing routable that should not be:
//! - an auto-delete exchange whose last binding went is deleted after the key that removed
//!   the binding (a crash leaves an unused exchange, as if it were not auto-delete);
//! - a deleted exchange's bindings in other objects' keys are removed after the exchange's
//!   key (routing ignores bindings from a missing exchange meanwhile);
//! - a binding is written to its queue's key after checking that the exchange exists, and
//!   the exchange is checked again (on the stream leader) after the write: when it was
//!   deleted in between, the binding is removed and the bind fails with 404, so a bind racing
//!   an exchange delete never leaves a binding behind (the deleting side removes the
//!   bindings written before its delete; it waits until its cache has them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

use futures_util::future::try_join_all;

use super::key::{exchange_key, queue_key};
use super::{TopologyStore, nats_error};
use crate::error::{Error, Result};
use crate::routing::{Binding, Destination, ExchangeEntry, QueueEntry, Topology};

/// How many compare-and-set conflicts a change retries before giving up.
const MAX_CONFLICTS: usize = 64;

/// The objects a change reads and may write: queues and exchanges by name. The exchanges a
/// loaded object's bindings come from are loaded with it.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    queues: BTreeSet<String>,
    exchanges: BTreeSet<String>,
    usage: bool,
}

impl Scope {
    /// Queue `name` (an empty name, which the operation replaces by a generated one, loads
    /// nothing).
    pub fn queue(name: &str) -> Self {
        Self::default().and_queue(name)
    }

    /// Exchange `name` (the default exchange `""` loads nothing).
    pub fn exchange(name: &str) -> Self {
        Self::default().and_exchange(name)
    }

    /// This scope and queue `name`.
    pub fn and_queue(mut self, name: &str) -> Self {
        if !name.is_empty() {
            self.queues.insert(name.to_owned());
        }
        self
    }

    /// Also find out whether the named exchanges are sources of bindings kept outside the
    /// scope (what `exchange.delete` with `if_unused` needs; it costs a scan of the cache).
    pub fn with_usage(mut self) -> Self {
        self.usage = true;
        self
    }

    /// This scope and exchange `name`.
    pub fn and_exchange(mut self, name: &str) -> Self {
        if !name.is_empty() {
            self.exchanges.insert(name.to_owned());
        }
        self
    }
}

/// A changed object: its new entry, `None` when removed.
#[derive(Clone, Debug)]
enum Change {
    Queue(String, Option<QueueEntry>),
    Exchange(String, Option<ExchangeEntry>),
}

impl Change {
    fn key(&self) -> String {
        match self {
            Change::Queue(n, _) => queue_key(n),
            Change::Exchange(n, _) => exchange_key(n),
        }
    }

    /// Write order: exchange puts, queue puts, queue deletes, exchange deletes.
    fn rank(&self) -> u8 {
        match self {
            Change::Exchange(_, Some(_)) => 0,
            Change::Queue(_, Some(_)) => 1,
            Change::Queue(_, None) => 2,
            Change::Exchange(_, None) => 3,
        }
    }

    fn value(&self) -> Result<Option<Vec<u8>>> {
        let v = match self {
            Change::Queue(_, Some(q)) => serde_json::to_vec(q),
            Change::Exchange(_, Some(x)) => serde_json::to_vec(x),
            _ => return Ok(None),
        };
        v.map(Some).map_err(nats_error)
    }

    fn apply(&self, t: &mut Topology) {
        match self {
            Change::Queue(n, e) => t.set_queue_entry(n, e.clone()),
            Change::Exchange(n, e) => t.set_exchange_entry(n, e.clone()),
        }
    }

    fn bindings(&self) -> &[Binding] {
        match self {
            Change::Queue(_, Some(q)) => &q.bindings,
            Change::Exchange(_, Some(x)) => &x.bindings,
            _ => &[],
        }
    }
}

/// The keys of a scope as loaded: the partial topology, each key's revision (0: never
/// written), and each object's entry before the operation.
struct Loaded {
    partial: Topology,
    revisions: HashMap<String, u64>,
    queues: BTreeMap<String, Option<QueueEntry>>,
    exchanges: BTreeMap<String, Option<ExchangeEntry>>,
}

impl Loaded {
    /// What the operation changed, in write order.
    fn changes(&self) -> Vec<Change> {
        let t = &self.partial;
        let mut out = Vec::new();
        for (name, before) in &self.queues {
            let after = t.queue_entry(name);
            if &after != before {
                out.push(Change::Queue(name.clone(), after));
            }
        }
        for q in t.queues().filter(|q| !self.queues.contains_key(&q.name)) {
            out.push(Change::Queue(q.name.clone(), t.queue_entry(&q.name)));
        }
        for (name, before) in &self.exchanges {
            let after = t.exchange_entry(name);
            if &after != before {
                out.push(Change::Exchange(name.clone(), after));
            }
        }
        for name in t
            .exchange_names()
            .filter(|n| !self.exchanges.contains_key(*n))
        {
            if let Some(x) = t.exchange_entry(name) {
                out.push(Change::Exchange(name.clone(), Some(x)));
            }
        }
        out.sort_by_key(Change::rank);
        out
    }

    /// The bindings `change` adds (not in the entry as loaded).
    fn added<'a>(&self, change: &'a Change) -> Vec<&'a Binding> {
        let before: &[Binding] = match change {
            Change::Queue(n, _) => self
                .queues
                .get(n)
                .and_then(Option::as_ref)
                .map_or(&[], |q| &q.bindings),
            Change::Exchange(n, _) => self
                .exchanges
                .get(n)
                .and_then(Option::as_ref)
                .map_or(&[], |x| &x.bindings),
        };
        change
            .bindings()
            .iter()
            .filter(|b| !before.contains(b))
            .collect()
    }
}

/// What writing the changes came to.
enum Written {
    /// A key changed since it was loaded: run the operation again.
    Conflict,
    /// Stored; these exchanges were deleted.
    Done(Vec<String>),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl TopologyStore {
    /// Loads the objects of `scope`, applies `op` to them and stores what changed with
    /// compare-and-set, retrying on conflicts (`op` may run several times). Nothing is
    /// written when `op` fails (its error is returned) or changes nothing. The objects read
    /// and written also refresh this process's cache.
    pub async fn modify<T>(
        &self,
        scope: &Scope,
        mut op: impl FnMut(&mut Topology) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..MAX_CONFLICTS {
            let mut loaded = self.load_scope(scope).await?;
            let out = op(&mut loaded.partial)?;
            let changes = loaded.changes();
            if changes.is_empty() {
                return Ok(out);
            }
            let deleted = match self.write(&loaded, &changes).await? {
                Written::Conflict => continue,
                Written::Done(deleted) => deleted,
            };
            for x in &deleted {
                self.cleanup_exchange(x).await?;
            }
            self.check_sources(&loaded, &changes).await?;
            return Ok(out);
        }
        Err(nats_error(format!(
            "topology update conflicted {MAX_CONFLICTS} times in a row"
        )))
    }

    async fn load_scope(&self, scope: &Scope) -> Result<Loaded> {
        // The named queues and exchanges at once, then (usually nothing left) the exchanges
        // the loaded bindings come from, in up to two more rounds.
        let (queues, mut exchanges) = tokio::try_join!(
            try_join_all(scope.queues.iter().map(|q| async move {
                let (rev, entry) = self.load_latest::<QueueEntry>(&queue_key(q)).await?;
                Ok::<_, Error>((q.clone(), rev, entry))
            })),
            self.load_exchanges(scope.exchanges.iter().cloned().collect()),
        )?;
        let mut want: BTreeSet<String> = queues
            .iter()
            .flat_map(|(_, _, e)| e.iter().flat_map(|q| q.bindings.iter()))
            .map(|b| b.source.clone())
            .collect();
        for _ in 0..2 {
            want.extend(
                exchanges
                    .iter()
                    .flat_map(|(_, _, e)| e.iter().flat_map(|x| x.bindings.iter()))
                    .map(|b| b.source.clone()),
            );
            want.retain(|s| !exchanges.iter().any(|(n, _, _)| n == s));
            if want.is_empty() {
                break;
            }
            exchanges.extend(self.load_exchanges(std::mem::take(&mut want)).await?);
        }
        let mut loaded = Loaded {
            partial: Topology::new(),
            revisions: HashMap::new(),
            queues: BTreeMap::new(),
            exchanges: BTreeMap::new(),
        };
        for (name, rev, entry) in exchanges {
            loaded.partial.set_exchange_entry(&name, entry);
            let key = exchange_key(&name);
            let change = Change::Exchange(name.clone(), loaded.partial.exchange_entry(&name));
            self.cache_written(&key, rev, |t| change.apply(t));
            loaded.revisions.insert(key, rev);
            loaded
                .exchanges
                .insert(name.clone(), loaded.partial.exchange_entry(&name));
        }
        for (name, rev, entry) in queues {
            let key = queue_key(&name);
            let change = Change::Queue(name.clone(), entry.clone());
            self.cache_written(&key, rev, |t| change.apply(t));
            loaded.partial.set_queue_entry(&name, entry.clone());
            loaded.revisions.insert(key, rev);
            loaded.queues.insert(name, entry);
        }
        let external = self.external_sources(scope, &loaded).await?;
        loaded.partial.set_external_sources(external);
        Ok(loaded)
    }

    async fn load_exchanges(
        &self,
        names: BTreeSet<String>,
    ) -> Result<Vec<(String, u64, Option<ExchangeEntry>)>> {
        try_join_all(names.into_iter().map(|x| async move {
            let (rev, entry) = self.load_latest::<ExchangeEntry>(&exchange_key(&x)).await?;
            Ok::<_, Error>((x, rev, entry))
        }))
        .await
    }

    /// The loaded exchanges that may be deleted as unused (auto-delete ones, and those named
    /// by a scope [`with_usage`](Scope::with_usage)) and have bindings in keys that were not
    /// loaded.
    async fn external_sources(&self, scope: &Scope, loaded: &Loaded) -> Result<BTreeSet<String>> {
        let candidates: Vec<&String> = loaded
            .exchanges
            .iter()
            .filter_map(|(n, e)| e.as_ref().map(|e| (n, e)))
            .filter(|(n, e)| e.decl.auto_delete || (scope.usage && scope.exchanges.contains(*n)))
            .map(|(n, _)| n)
            .collect();
        if candidates.is_empty() {
            return Ok(BTreeSet::new());
        }
        if !self.is_watching() {
            // Without the other keys in view, assume they bind it: never delete it as unused.
            return Ok(candidates.into_iter().cloned().collect());
        }
        self.sync().await?;
        Ok(self.read(|t| {
            candidates
                .into_iter()
                .filter(|x| {
                    t.destinations_from(x).iter().any(|d| match d {
                        Destination::Queue(q) => !loaded.queues.contains_key(q),
                        Destination::Exchange(e) => !loaded.exchanges.contains_key(e),
                    })
                })
                .cloned()
                .collect()
        }))
    }

    /// Writes `changes` in order; see the module docs.
    async fn write(&self, loaded: &Loaded, changes: &[Change]) -> Result<Written> {
        let mut deleted = Vec::new();
        for change in changes {
            let key = change.key();
            let expected = loaded.revisions.get(&key).copied();
            let written = match (change.value()?, expected) {
                (Some(v), Some(rev)) => self.kv.update(&key, v, rev).await,
                (Some(v), None) => self.kv.create(&key, v).await,
                (None, Some(rev)) => self
                    .kv
                    .delete_expect_revision(&key, rev)
                    .await
                    // The marker's revision is above the one loaded: enough to order the cache.
                    .map(|()| rev + 1),
                (None, None) => continue,
            };
            match written {
                Ok(rev) => {
                    self.cache_written(&key, rev, |t| change.apply(t));
                    if let Change::Exchange(name, None) = change {
                        deleted.push(name.clone());
                    }
                }
                // An auto-delete that lost a race (the exchange changed): it stays.
                Err(e) if e.is_conflict() && change.rank() == 3 => {}
                Err(e) if e.is_conflict() => return Ok(Written::Conflict),
                Err(e) => return Err(nats_error(e)),
            }
        }
        Ok(Written::Done(deleted))
    }

    /// Removes the bindings from deleted exchange `name` kept in other objects' keys.
    fn cleanup_exchange<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if !self.is_watching() {
                return Ok(());
            }
            // Every binding written before the delete is in the cache after this.
            self.sync().await?;
            for dest in self.read(|t| t.destinations_from(name)) {
                let scope = match &dest {
                    Destination::Queue(q) => Scope::queue(q),
                    Destination::Exchange(x) => Scope::exchange(x),
                };
                self.modify(&scope, |t| {
                    t.drop_bindings_from_missing(name);
                    Ok(())
                })
                .await?;
            }
            Ok(())
        })
    }

    /// After a write that added bindings: fails with 404 (and removes them) when a source
    /// exchange was deleted meanwhile.
    fn check_sources<'a>(
        &'a self,
        loaded: &'a Loaded,
        changes: &'a [Change],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for change in changes {
                let sources: BTreeSet<&str> = loaded
                    .added(change)
                    .into_iter()
                    .map(|b| b.source.as_str())
                    .filter(|s| !s.starts_with("amq."))
                    .collect();
                for source in sources {
                    let key = exchange_key(source);
                    let present = match self.leader.entry(&key).await.map_err(nats_error)? {
                        Some(e) => !e.operation.is_removal(),
                        None => false,
                    };
                    if present {
                        continue;
                    }
                    let scope = match change {
                        Change::Queue(q, _) => Scope::queue(q),
                        Change::Exchange(x, _) => Scope::exchange(x),
                    };
                    self.modify(&scope, |t| {
                        t.drop_bindings_from_missing(source);
                        Ok(())
                    })
                    .await?;
                    return Err(Error::not_found(format!(
                        "no exchange '{source}' in vhost '/'"
                    )));
                }
            }
            Ok(())
        })
    }
}
