//! [`BindingIndex`]: the bindings of a [`Topology`](super::Topology), kept by destination
//! (how they are stored: a queue's bindings live in its own KV key) and indexed by source and
//! key (how routing reads them), so a publish to a direct exchange with 300,000 bound queues
//! looks up its key instead of scanning every binding, and replacing one queue's bindings
//! costs only that queue's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The destinations bound from one source with one key: a handful at most in practice (a
/// user's clients), so a vector (a B-tree node would cost ten times the memory at 300,000
/// queues).
type Dests = Vec<Destination>;

use super::topology::{Binding, Destination};

/// Bindings by destination, indexed by (source, binding key).
#[derive(Clone, Debug, Default)]
pub(super) struct BindingIndex {
    by_dest: BTreeMap<Destination, Vec<Binding>>,
    by_source: HashMap<String, HashMap<String, Dests>>,
    len: usize,
}

/// Equal when the bindings are (the source index is derived from them; its order is not).
impl PartialEq for BindingIndex {
    fn eq(&self, other: &Self) -> bool {
        self.by_dest == other.by_dest
    }
}

impl BindingIndex {
    /// How many bindings there are.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Every binding, by destination.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.by_dest.values().flatten()
    }

    /// Whether `b` is there.
    pub(super) fn contains(&self, b: &Binding) -> bool {
        self.by_dest
            .get(&b.destination)
            .is_some_and(|v| v.contains(b))
    }

    /// Adds `b`; false when it was there already.
    pub(super) fn insert(&mut self, b: Binding) -> bool {
        if self.contains(&b) {
            return false;
        }
        let dests = self
            .by_source
            .entry(b.source.clone())
            .or_default()
            .entry(b.routing_key.clone())
            .or_default();
        if !dests.contains(&b.destination) {
            dests.push(b.destination.clone());
        }
        self.by_dest
            .entry(b.destination.clone())
            .or_default()
            .push(b);
        self.len += 1;
        true
    }

    /// The bindings leading to `dest`.
    pub(super) fn to_dest(&self, dest: &Destination) -> &[Binding] {
        self.by_dest.get(dest).map_or(&[], Vec::as_slice)
    }

    /// Whether any binding comes from `source`.
    pub(super) fn any_from(&self, source: &str) -> bool {
        self.by_source.get(source).is_some_and(|k| !k.is_empty())
    }

    /// The destinations bound from `source` (each once).
    pub(super) fn dests_from(&self, source: &str) -> BTreeSet<&Destination> {
        self.by_source
            .get(source)
            .map(|keys| keys.values().flatten().collect())
            .unwrap_or_default()
    }

    /// The bindings from `source`; with `key`, only those with that binding key (what a
    /// direct exchange matches, without scanning the others).
    pub(super) fn of_source<'a>(
        &'a self,
        source: &'a str,
        key: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Binding> + 'a {
        let keys = self.by_source.get(source);
        let chosen: Vec<(&String, &Dests)> = match (keys, key) {
            (None, _) => Vec::new(),
            (Some(k), Some(key)) => k.get_key_value(key).into_iter().collect(),
            (Some(k), None) => k.iter().collect(),
        };
        chosen.into_iter().flat_map(move |(rk, dests)| {
            dests.iter().flat_map(move |d| {
                self.to_dest(d)
                    .iter()
                    .filter(move |b| b.source == source && &b.routing_key == rk)
            })
        })
    }

    /// Removes and returns the bindings `which` selects.
    pub(super) fn remove_where(&mut self, which: impl Fn(&Binding) -> bool) -> Vec<Binding> {
        let hit: Vec<Binding> = self.iter().filter(|b| which(b)).cloned().collect();
        for b in &hit {
            self.remove(b);
        }
        hit
    }

    /// Removes and returns every binding leading to `dest`.
    pub(super) fn remove_dest(&mut self, dest: &Destination) -> Vec<Binding> {
        let gone = self.by_dest.remove(dest).unwrap_or_default();
        for b in &gone {
            self.unindex(b, &[]);
        }
        self.len -= gone.len();
        gone
    }

    fn remove(&mut self, b: &Binding) {
        let Some(list) = self.by_dest.get_mut(&b.destination) else {
            return;
        };
        let Some(at) = list.iter().position(|x| x == b) else {
            return;
        };
        list.remove(at);
        self.len -= 1;
        let rest = match list.is_empty() {
            true => {
                self.by_dest.remove(&b.destination);
                Vec::new()
            }
            false => list.clone(),
        };
        self.unindex(b, &rest);
    }

    /// Drops `b` from the source index unless `rest` (the destination's other bindings)
    /// still has one with the same source and key (headers bindings differ by arguments).
    fn unindex(&mut self, b: &Binding, rest: &[Binding]) {
        if rest
            .iter()
            .any(|x| x.source == b.source && x.routing_key == b.routing_key)
        {
            return;
        }
        let Some(keys) = self.by_source.get_mut(&b.source) else {
            return;
        };
        if let Some(dests) = keys.get_mut(&b.routing_key) {
            dests.retain(|d| d != &b.destination);
            if dests.is_empty() {
                keys.remove(&b.routing_key);
            }
        }
        if keys.is_empty() {
            self.by_source.remove(&b.source);
        }
    }
}
