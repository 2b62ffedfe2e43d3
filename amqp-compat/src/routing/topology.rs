//! [`Topology`]: exchanges, queues, bindings and queue consumers as one serde value, changed by
//! the AMQP operations with RabbitMQ's rules (idempotent re-declare, 406 on a mismatch, 404,
//! 405 for another connection's exclusive queue, 403 for reserved names).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::args::{QueueArguments, QueueType, StorageTier};
use super::index::BindingIndex;
use crate::{
    error::{Error, Result},
    exchange::ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};

/// A declared exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeDecl {
    /// Its name.
    pub name: String,
    /// Its routing algorithm.
    pub kind: ExchangeKind,
    /// Survives restarts.
    pub durable: bool,
    /// Deleted when its last binding (as a source) goes.
    pub auto_delete: bool,
    /// Refuses direct publishes.
    pub internal: bool,
    /// Its arguments (`alternate-exchange` is used and compared; the rest is stored).
    pub arguments: FieldTable,
}

impl ExchangeDecl {
    /// The `alternate-exchange` argument, if set to a string.
    pub fn alternate_exchange(&self) -> Option<String> {
        match self.arguments.inner().get("alternate-exchange")? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        }
    }
}

/// A declared queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueDecl {
    /// Its name.
    pub name: String,
    /// Survives restarts.
    pub durable: bool,
    /// The connection owning it when exclusive.
    pub exclusive_owner: Option<String>,
    /// Deleted when its last consumer is cancelled.
    pub auto_delete: bool,
    /// Its validated arguments.
    pub arguments: QueueArguments,
    /// Where its messages live, chosen at the first declare.
    pub tier: StorageTier,
}

/// Consumers attached to a queue (what auto-delete, `if_unused` and exclusive consume need).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConsumers {
    /// Consumers attached now.
    pub count: u32,
    /// One of them consumes exclusively.
    pub exclusive: bool,
    /// A consumer was attached at some point (auto-delete needs one before it deletes).
    pub ever: bool,
}

/// Where a binding leads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Destination {
    /// A queue.
    Queue(String),
    /// Another exchange (exchange-to-exchange binding).
    Exchange(String),
}

/// A binding from an exchange to a queue or exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The exchange messages come from.
    pub source: String,
    /// Where matching messages go.
    pub destination: Destination,
    /// The binding key (pattern for topic exchanges; ignored by fanout and headers).
    pub routing_key: String,
    /// The binding arguments (headers exchanges match on them).
    pub arguments: FieldTable,
}

/// What a successful `queue_declare` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDeclared {
    /// The queue's name (server-generated when the declared name was empty).
    pub name: String,
    /// Consumers attached now.
    pub consumer_count: u32,
}

/// The topology of one vhost (or the part of it one change needs); see the module docs.
///
/// Its serde form is the single JSON value of the first design (exchanges, queues, a list of
/// bindings, consumers), which the store still reads to convert an old bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "Repr", into = "Repr")]
pub struct Topology {
    pub(super) exchanges: BTreeMap<String, ExchangeDecl>,
    pub(super) queues: BTreeMap<String, QueueDecl>,
    pub(super) bindings: BindingIndex,
    pub(super) consumers: BTreeMap<String, QueueConsumers>,
    /// Exchanges with bindings outside this partial view (in queue keys not loaded): they
    /// are in use, so neither auto-delete nor `if_unused` may treat them as unbound.
    pub(super) external_sources: BTreeSet<String>,
}

/// The serde form of [`Topology`].
#[derive(Clone, Serialize, Deserialize)]
struct Repr {
    exchanges: BTreeMap<String, ExchangeDecl>,
    queues: BTreeMap<String, QueueDecl>,
    bindings: Vec<Binding>,
    #[serde(default)]
    consumers: BTreeMap<String, QueueConsumers>,
}

impl From<Repr> for Topology {
    fn from(r: Repr) -> Self {
        let mut bindings = BindingIndex::default();
        for b in r.bindings {
            bindings.insert(b);
        }
        Topology {
            exchanges: r.exchanges,
            queues: r.queues,
            bindings,
            consumers: r.consumers,
            external_sources: BTreeSet::new(),
        }
    }
}

impl From<Topology> for Repr {
    fn from(t: Topology) -> Self {
        Repr {
            bindings: t.bindings.iter().cloned().collect(),
            exchanges: t.exchanges,
            queues: t.queues,
            consumers: t.consumers,
        }
    }
}

impl Default for Topology {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) fn no_exchange(name: &str) -> Error {
    Error::not_found(format!("no exchange '{name}' in vhost '/'"))
}

pub(super) fn no_queue(name: &str) -> Error {
    Error::not_found(format!("no queue '{name}' in vhost '/'"))
}

pub(super) fn default_exchange_refused() -> Error {
    Error::access_refused("operation not permitted on the default exchange")
}

fn locked(name: &str) -> Error {
    Error::resource_locked(format!(
        "cannot obtain exclusive access to locked queue '{name}' in vhost '/'. It could be \
         originally declared on another connection or the exclusive property value does not \
         match that of the original declaration."
    ))
}

fn inequivalent(what: &str, field: &str, name: &str, got: &str, cur: &str) -> Error {
    Error::precondition_failed(format!(
        "inequivalent arg '{field}' for {what} '{name}' in vhost '/': received '{got}' but current is '{cur}'"
    ))
}

impl Topology {
    /// A vhost as RabbitMQ creates it: the default exchange plus `amq.direct`, `amq.fanout`,
    /// `amq.topic`, `amq.headers`, `amq.match` and `amq.rabbitmq.trace`.
    pub fn new() -> Self {
        let mut t = Self {
            exchanges: BTreeMap::new(),
            queues: BTreeMap::new(),
            bindings: BindingIndex::default(),
            consumers: BTreeMap::new(),
            external_sources: BTreeSet::new(),
        };
        for (name, kind, internal) in [
            ("amq.direct", ExchangeKind::Direct, false),
            ("amq.fanout", ExchangeKind::Fanout, false),
            ("amq.topic", ExchangeKind::Topic, false),
            ("amq.headers", ExchangeKind::Headers, false),
            ("amq.match", ExchangeKind::Headers, false),
            ("amq.rabbitmq.trace", ExchangeKind::Topic, true),
        ] {
            t.exchanges.insert(
                name.to_owned(),
                ExchangeDecl {
                    name: name.to_owned(),
                    kind,
                    durable: true,
                    auto_delete: false,
                    internal,
                    arguments: FieldTable::default(),
                },
            );
        }
        t
    }

    /// The exchange named `name` (`None` for the default exchange, which is implicit).
    pub fn exchange(&self, name: &str) -> Option<&ExchangeDecl> {
        self.exchanges.get(name)
    }

    /// The queue named `name`.
    pub fn queue(&self, name: &str) -> Option<&QueueDecl> {
        self.queues.get(name)
    }

    /// Every queue, by name.
    pub fn queues(&self) -> impl Iterator<Item = &QueueDecl> {
        self.queues.values()
    }

    /// Every binding, by destination (the default exchange's implicit ones are not listed).
    pub fn bindings(&self) -> Vec<&Binding> {
        self.bindings.iter().collect()
    }

    /// How many bindings there are.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    /// The consumers attached to `queue`.
    pub fn consumers(&self, queue: &str) -> QueueConsumers {
        self.consumers.get(queue).cloned().unwrap_or_default()
    }

    /// `exchange.declare`.
    pub fn declare_exchange(
        &mut self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeDeclareOptions,
        arguments: &FieldTable,
    ) -> Result<()> {
        // Even a passive declare of the default exchange is refused (RabbitMQ 3.10).
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if options.passive {
            return match self.exchanges.contains_key(name) {
                true => Ok(()),
                false => Err(no_exchange(name)),
            };
        }
        if let ExchangeKind::Custom(t) = &kind {
            return Err(Error::amqp(503, format!("unknown exchange type '{t}'")));
        }
        let Some(cur) = self.exchanges.get(name) else {
            if name.starts_with("amq.") {
                return Err(Error::access_refused(format!(
                    "exchange name '{name}' contains reserved prefix 'amq.*'"
                )));
            }
            self.exchanges.insert(
                name.to_owned(),
                ExchangeDecl {
                    name: name.to_owned(),
                    kind,
                    durable: options.durable,
                    auto_delete: options.auto_delete,
                    internal: options.internal,
                    arguments: arguments.clone(),
                },
            );
            return Ok(());
        };
        let field = |f: &str, got: bool, cur: bool| match got == cur {
            true => Ok(()),
            false => Err(inequivalent(
                "exchange",
                f,
                name,
                &got.to_string(),
                &cur.to_string(),
            )),
        };
        if cur.kind != kind {
            return Err(inequivalent(
                "exchange",
                "type",
                name,
                kind.as_str(),
                cur.kind.as_str(),
            ));
        }
        field("durable", options.durable, cur.durable)?;
        field("auto_delete", options.auto_delete, cur.auto_delete)?;
        field("internal", options.internal, cur.internal)?;
        let ae = |t: &FieldTable| t.inner().get("alternate-exchange").cloned();
        if ae(arguments) != ae(&cur.arguments) {
            return Err(Error::precondition_failed(format!(
                "inequivalent arg 'alternate-exchange' for exchange '{name}' in vhost '/'"
            )));
        }
        Ok(())
    }

    /// `exchange.delete`; deleting an absent exchange succeeds, as in RabbitMQ.
    pub fn delete_exchange(&mut self, name: &str, options: ExchangeDeleteOptions) -> Result<()> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(Error::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '/' not allowed"
            )));
        }
        if !self.exchanges.contains_key(name) {
            return Ok(());
        }
        if options.if_unused && self.in_use(name) {
            return Err(Error::precondition_failed(format!(
                "exchange '{name}' in vhost '/' in use"
            )));
        }
        self.exchanges.remove(name);
        let gone = Destination::Exchange(name.to_owned());
        self.remove_bindings(|b| b.source == name || b.destination == gone);
        Ok(())
    }

    /// `queue.declare` by connection `owner`. An empty name gets a server-generated
    /// `amq.gen-…` name. A new queue's tier is [`QueueArguments::tier`] with design D
    /// ([`StorageTier::Consumer`]) as the default.
    pub fn declare_queue(
        &mut self,
        name: &str,
        options: QueueDeclareOptions,
        arguments: &FieldTable,
        owner: &str,
    ) -> Result<QueueDeclared> {
        self.declare_queue_with_tier(name, options, arguments, owner, StorageTier::Consumer)
    }

    /// [`declare_queue`](Self::declare_queue) with another default tier for a new queue (the
    /// facade passes [`StorageTier::Stream`] for the mapper's work queues,
    /// `SubjectMapper::is_work_queue`).
    pub fn declare_queue_with_tier(
        &mut self,
        name: &str,
        options: QueueDeclareOptions,
        arguments: &FieldTable,
        owner: &str,
        default_tier: StorageTier,
    ) -> Result<QueueDeclared> {
        if options.passive {
            let q = self.queues.get(name).ok_or_else(|| no_queue(name))?;
            if q.exclusive_owner.as_deref().is_some_and(|o| o != owner) {
                return Err(locked(name));
            }
            return Ok(self.declared(name));
        }
        if name.starts_with("amq.") {
            return Err(Error::access_refused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        let name = match name {
            "" => generated_name("amq.gen-"),
            n => n.to_owned(),
        };
        let args = QueueArguments::parse(&name, arguments)?;
        let owner = options.exclusive.then(|| owner.to_owned());
        if let Some(cur) = self.queues.get(&name) {
            // RabbitMQ's order: exclusive ownership (strict), durable, auto_delete, arguments.
            if cur.exclusive_owner != owner {
                return Err(locked(&name));
            }
            let field = |f: &str, got: bool, cur: bool| match got == cur {
                true => Ok(()),
                false => Err(inequivalent(
                    "queue",
                    f,
                    &name,
                    &got.to_string(),
                    &cur.to_string(),
                )),
            };
            field("durable", options.durable, cur.durable)?;
            field("auto_delete", options.auto_delete, cur.auto_delete)?;
            cur.arguments.assert_equivalent(&name, &args)?;
            return Ok(self.declared(&name));
        }
        if args.queue_type == Some(QueueType::Quorum) {
            let bad = if options.exclusive {
                Some("exclusive")
            } else if !options.durable {
                Some("non-durable")
            } else if options.auto_delete {
                Some("auto-delete")
            } else {
                None
            };
            if let Some(p) = bad {
                return Err(Error::precondition_failed(format!(
                    "invalid property '{p}' for queue '{name}' in vhost '/'"
                )));
            }
        }
        // Design E for an exclusive queue that needs nothing per-queue storage gives.
        let tier = match owner.is_some() && args.local_ok() {
            true => StorageTier::Local,
            false => args.tier(default_tier),
        };
        self.queues.insert(
            name.clone(),
            QueueDecl {
                name: name.clone(),
                durable: options.durable,
                exclusive_owner: owner,
                auto_delete: options.auto_delete,
                tier,
                arguments: args,
            },
        );
        Ok(self.declared(&name))
    }

    fn declared(&self, name: &str) -> QueueDeclared {
        QueueDeclared {
            name: name.to_owned(),
            consumer_count: self.consumers(name).count,
        }
    }

    /// Fails with 405 when `queue` is another connection's exclusive queue.
    pub fn check_exclusive_access(&self, queue: &str, owner: &str) -> Result<()> {
        match self.queues.get(queue) {
            Some(q) if q.exclusive_owner.as_deref().is_some_and(|o| o != owner) => {
                Err(locked(queue))
            }
            _ => Ok(()),
        }
    }

    /// `queue.delete`; `message_count` is the queue's depth (for `if_empty`). Deleting an
    /// absent queue succeeds, as in RabbitMQ.
    pub fn delete_queue(
        &mut self,
        name: &str,
        options: QueueDeleteOptions,
        owner: &str,
        message_count: u32,
    ) -> Result<()> {
        if !self.queues.contains_key(name) {
            return Ok(());
        }
        self.check_exclusive_access(name, owner)?;
        if options.if_unused && self.consumers(name).count > 0 {
            return Err(Error::precondition_failed(format!(
                "queue '{name}' in vhost '/' in use"
            )));
        }
        if options.if_empty && message_count > 0 {
            return Err(Error::precondition_failed(format!(
                "queue '{name}' in vhost '/' is not empty"
            )));
        }
        self.remove_queue(name);
        Ok(())
    }

    fn remove_queue(&mut self, name: &str) {
        self.queues.remove(name);
        self.consumers.remove(name);
        let gone = self
            .bindings
            .remove_dest(&Destination::Queue(name.to_owned()));
        self.auto_delete_unused(gone.into_iter().map(|b| b.source).collect());
    }

    /// Whether `exchange` is the source of a binding, here or outside this partial view.
    pub(super) fn in_use(&self, exchange: &str) -> bool {
        self.bindings.any_from(exchange) || self.external_sources.contains(exchange)
    }

    /// Removes the bindings `which` selects, then every auto-delete exchange left without
    /// bindings as a source (RabbitMQ deletes those, cascading).
    pub(super) fn remove_bindings(&mut self, which: impl Fn(&Binding) -> bool) {
        let gone = self.bindings.remove_where(which);
        self.auto_delete_unused(gone.into_iter().map(|b| b.source).collect());
    }

    /// Deletes each auto-delete exchange of `touched` that no binding comes from any more,
    /// cascading through the exchange-to-exchange bindings that leave with it.
    fn auto_delete_unused(&mut self, mut touched: Vec<String>) {
        while let Some(source) = touched.pop() {
            let auto = self.exchanges.get(&source).is_some_and(|x| x.auto_delete);
            if auto && !self.in_use(&source) {
                self.exchanges.remove(&source);
                let gone = self
                    .bindings
                    .remove_dest(&Destination::Exchange(source.clone()));
                touched.extend(gone.into_iter().map(|b| b.source));
            }
        }
    }

    /// `basic.consume` on `queue` by `owner`: 404, 405 (another connection's exclusive queue),
    /// 403 when an exclusive consumer is there or is asked for while others are.
    pub fn add_consumer(&mut self, queue: &str, owner: &str, exclusive: bool) -> Result<()> {
        if !self.queues.contains_key(queue) {
            return Err(no_queue(queue));
        }
        self.check_exclusive_access(queue, owner)?;
        let c = self.consumers.entry(queue.to_owned()).or_default();
        if c.exclusive || (exclusive && c.count > 0) {
            return Err(Error::access_refused(format!(
                "queue '{queue}' in vhost '/' in exclusive use"
            )));
        }
        c.count += 1;
        c.exclusive = exclusive;
        c.ever = true;
        Ok(())
    }

    /// `basic.cancel` (or the channel closing): true when this deleted an auto-delete queue.
    pub fn remove_consumer(&mut self, queue: &str) -> bool {
        let Some(c) = self.consumers.get_mut(queue) else {
            return false;
        };
        c.count = c.count.saturating_sub(1);
        if c.count == 0 {
            c.exclusive = false;
        }
        let delete = c.count == 0 && self.queues.get(queue).is_some_and(|q| q.auto_delete);
        if delete {
            self.remove_queue(queue);
        }
        delete
    }

    /// The connection `owner` closed: its exclusive queues are deleted; returns their names.
    pub fn connection_closed(&mut self, owner: &str) -> Vec<String> {
        let gone: Vec<String> = self
            .queues
            .values()
            .filter(|q| q.exclusive_owner.as_deref() == Some(owner))
            .map(|q| q.name.clone())
            .collect();
        for q in &gone {
            self.remove_queue(q);
        }
        gone
    }
}

/// A server-generated name in RabbitMQ's form: `<prefix>` + 22 URL-safe characters.
pub fn generated_name(prefix: &str) -> String {
    format!("{prefix}{}", nuid::next())
}
