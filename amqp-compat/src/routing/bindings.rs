//! Bindings and routing on a [`Topology`]: `queue.bind`/`unbind`, `exchange.bind`/`unbind`,
//! and [`Topology::route`], RabbitMQ's routing function (exchange-to-exchange bindings,
//! alternate exchanges, every queue at most once).

use std::collections::BTreeSet;

use super::{
    headers,
    topology::{Binding, Destination, Topology, default_exchange_refused, no_exchange, no_queue},
};
use crate::{
    error::{Error, Result},
    exchange::ExchangeKind,
    subject::topic_matches,
    types::FieldTable,
};

/// Where a published message goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    /// Every queue that receives the message, once each.
    pub queues: BTreeSet<String>,
}

impl Route {
    /// True when no queue receives the message (mandatory publishes are then returned, 312).
    pub fn is_unroutable(&self) -> bool {
        self.queues.is_empty()
    }
}

impl Topology {
    fn check_binding(
        &self,
        source: &str,
        destination: &Destination,
        args: &FieldTable,
        owner: &str,
    ) -> Result<()> {
        if source.is_empty() || matches!(destination, Destination::Exchange(d) if d.is_empty()) {
            return Err(default_exchange_refused());
        }
        let x = self
            .exchanges
            .get(source)
            .ok_or_else(|| no_exchange(source))?;
        match destination {
            Destination::Queue(q) => {
                if !self.queues.contains_key(q) {
                    return Err(no_queue(q));
                }
                self.check_exclusive_access(q, owner)?;
            }
            Destination::Exchange(d) => {
                if !self.exchanges.contains_key(d) {
                    return Err(no_exchange(d));
                }
            }
        }
        if x.kind == ExchangeKind::Headers {
            headers::validate_binding(args)?;
        }
        Ok(())
    }

    fn add_binding(&mut self, binding: Binding) {
        self.bindings.insert(binding);
    }

    /// `queue.bind` by connection `owner`. Binding twice is a no-op.
    pub fn bind_queue(
        &mut self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        owner: &str,
    ) -> Result<()> {
        let destination = Destination::Queue(queue.to_owned());
        self.check_binding(exchange, &destination, arguments, owner)?;
        self.add_binding(Binding {
            source: exchange.to_owned(),
            destination,
            routing_key: routing_key.to_owned(),
            arguments: arguments.clone(),
        });
        Ok(())
    }

    /// `queue.unbind`. Unbinding what is not bound succeeds.
    pub fn unbind_queue(
        &mut self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        owner: &str,
    ) -> Result<()> {
        let destination = Destination::Queue(queue.to_owned());
        self.check_binding(exchange, &destination, &FieldTable::default(), owner)?;
        self.remove_bindings(|b| {
            b.source == exchange
                && b.destination == destination
                && b.routing_key == routing_key
                && &b.arguments == arguments
        });
        Ok(())
    }

    /// `exchange.bind`: messages routed by `source` with a matching key also go through
    /// `destination`.
    pub fn bind_exchange(
        &mut self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<()> {
        let dest = Destination::Exchange(destination.to_owned());
        self.check_binding(source, &dest, arguments, "")?;
        self.add_binding(Binding {
            source: source.to_owned(),
            destination: dest,
            routing_key: routing_key.to_owned(),
            arguments: arguments.clone(),
        });
        Ok(())
    }

    /// `exchange.unbind`.
    pub fn unbind_exchange(
        &mut self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<()> {
        let dest = Destination::Exchange(destination.to_owned());
        self.check_binding(source, &dest, &FieldTable::default(), "")?;
        self.remove_bindings(|b| {
            b.source == source
                && b.destination == dest
                && b.routing_key == routing_key
                && &b.arguments == arguments
        });
        Ok(())
    }

    /// The bindings of `queue` (not the default exchange's implicit one).
    pub fn bindings_of(&self, queue: &str) -> impl Iterator<Item = &Binding> {
        self.bindings
            .to_dest(&Destination::Queue(queue.to_owned()))
            .iter()
    }

    /// Routes a publish to `exchange` with `routing_key` and message `headers`.
    ///
    /// 404 when the exchange does not exist, 403 when it is internal. The default exchange
    /// routes to the queue named by the key, if it exists. Exchange-to-exchange bindings are
    /// followed (each exchange once); an exchange that matches nothing hands the message to its
    /// `alternate-exchange`. A queue reached several ways receives the message once.
    pub fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: Option<&FieldTable>,
    ) -> Result<Route> {
        let mut route = Route::default();
        if exchange.is_empty() {
            if self.queues.contains_key(routing_key) {
                route.queues.insert(routing_key.to_owned());
            }
            return Ok(route);
        }
        let x = self
            .exchanges
            .get(exchange)
            .ok_or_else(|| no_exchange(exchange))?;
        if x.internal {
            return Err(Error::access_refused(format!(
                "cannot publish to internal exchange '{exchange}' in vhost '/'"
            )));
        }
        let mut seen = BTreeSet::new();
        let mut work = vec![exchange.to_owned()];
        while let Some(name) = work.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(x) = self.exchanges.get(&name) else {
                continue;
            };
            let mut matched = false;
            let key = match x.kind {
                ExchangeKind::Direct => Some(routing_key),
                _ => None,
            };
            for b in self.bindings.of_source(&name, key) {
                let hit = match &x.kind {
                    ExchangeKind::Direct => b.routing_key == routing_key,
                    ExchangeKind::Fanout => true,
                    ExchangeKind::Topic => topic_matches(&b.routing_key, routing_key),
                    ExchangeKind::Headers => headers::headers_match(&b.arguments, headers),
                    ExchangeKind::Custom(_) => false,
                };
                if !hit {
                    continue;
                }
                matched = true;
                match &b.destination {
                    Destination::Queue(q) => {
                        route.queues.insert(q.clone());
                    }
                    Destination::Exchange(e) => work.push(e.clone()),
                }
            }
            if !matched && let Some(ae) = x.alternate_exchange() {
                work.push(ae);
            }
        }
        Ok(route)
    }
}
