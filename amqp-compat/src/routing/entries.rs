//! A [`Topology`] cut into the per-object values the store keeps, one KV key each
//! (`docs/amqp-mapping.md` §3): a [`QueueEntry`] holds everything one queue operation changes
//! (its declaration, owner, consumers and the bindings leading to it), an [`ExchangeEntry`] an
//! exchange and the exchange-to-exchange bindings leading to it. Reading an entry out of a
//! topology and putting it back are exact inverses, so the store can load a few keys into a
//! partial topology, run the AMQP operation on it and write back the entries that changed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::topology::{Binding, Destination, ExchangeDecl, QueueConsumers, QueueDecl, Topology};

/// One queue as stored under its own key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Its declaration (owner included).
    pub decl: QueueDecl,
    /// Its consumers.
    #[serde(default)]
    pub consumers: QueueConsumers,
    /// Every binding whose destination is this queue.
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

/// One exchange as stored under its own key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeEntry {
    /// Its declaration.
    pub decl: ExchangeDecl,
    /// Every exchange-to-exchange binding whose destination is this exchange.
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

impl Topology {
    /// The entry of queue `name` (`None`: no such queue).
    pub fn queue_entry(&self, name: &str) -> Option<QueueEntry> {
        let decl = self.queues.get(name)?.clone();
        Some(QueueEntry {
            decl,
            consumers: self.consumers(name),
            bindings: self
                .bindings
                .to_dest(&Destination::Queue(name.to_owned()))
                .to_vec(),
        })
    }

    /// Replaces queue `name` (declaration, consumers, bindings to it) by `entry`, or removes
    /// it. Auto-delete rules do not run: this mirrors what is stored.
    pub fn set_queue_entry(&mut self, name: &str, entry: Option<QueueEntry>) {
        self.bindings
            .remove_dest(&Destination::Queue(name.to_owned()));
        let Some(e) = entry else {
            self.queues.remove(name);
            self.consumers.remove(name);
            return;
        };
        for b in e.bindings {
            self.bindings.insert(b);
        }
        match e.consumers == QueueConsumers::default() {
            true => self.consumers.remove(name),
            false => self.consumers.insert(name.to_owned(), e.consumers),
        };
        self.queues.insert(name.to_owned(), e.decl);
    }

    /// The entry of exchange `name`: `None` when it does not exist, and for a built-in
    /// (`amq.*`) exchange nothing binds to (it needs no key).
    pub fn exchange_entry(&self, name: &str) -> Option<ExchangeEntry> {
        let decl = self.exchanges.get(name)?.clone();
        let bindings = self
            .bindings
            .to_dest(&Destination::Exchange(name.to_owned()))
            .to_vec();
        if bindings.is_empty() && builtin(name).as_ref() == Some(&decl) {
            return None;
        }
        Some(ExchangeEntry { decl, bindings })
    }

    /// Replaces exchange `name` and the bindings to it by `entry`, or removes them (a
    /// built-in exchange then goes back to its built-in declaration).
    pub fn set_exchange_entry(&mut self, name: &str, entry: Option<ExchangeEntry>) {
        self.bindings
            .remove_dest(&Destination::Exchange(name.to_owned()));
        match entry {
            Some(e) => {
                for b in e.bindings {
                    self.bindings.insert(b);
                }
                self.exchanges.insert(name.to_owned(), e.decl);
            }
            None => match builtin(name) {
                Some(decl) => {
                    self.exchanges.insert(name.to_owned(), decl);
                }
                None => {
                    self.exchanges.remove(name);
                }
            },
        }
    }

    /// Marks `exchanges` as sources of bindings outside this partial view: auto-delete and
    /// `if_unused` then treat them as bound.
    pub fn set_external_sources(&mut self, exchanges: BTreeSet<String>) {
        self.external_sources = exchanges;
    }

    /// The exchanges that are sources of bindings to `dest`.
    pub fn sources_of(&self, dest: &Destination) -> BTreeSet<String> {
        self.bindings
            .to_dest(dest)
            .iter()
            .map(|b| b.source.clone())
            .collect()
    }

    /// The destinations of the bindings from `exchange`.
    pub fn destinations_from(&self, exchange: &str) -> Vec<Destination> {
        self.bindings
            .dests_from(exchange)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Removes the bindings from `exchange` when that exchange does not exist (what a deleted
    /// exchange left in other objects' keys; routing already ignores them). Auto-delete
    /// exchanges left unused go too.
    pub fn drop_bindings_from_missing(&mut self, exchange: &str) {
        if !self.exchanges.contains_key(exchange) {
            self.remove_bindings(|b| b.source == exchange);
        }
    }

    /// The name of every exchange (built-ins included).
    pub fn exchange_names(&self) -> impl Iterator<Item = &String> {
        self.exchanges.keys()
    }
}

/// The declaration of built-in exchange `name`, if it is one.
fn builtin(name: &str) -> Option<ExchangeDecl> {
    match name.starts_with("amq.") {
        true => Topology::new().exchanges.remove(name),
        false => None,
    }
}
