//! A queue's NATS filters per source exchange: what a design-D queue consumer subscribes to on
//! each exchange stream (`docs/amqp-mapping.md` §4).

use std::collections::BTreeMap;

use super::topology::{Destination, Topology};
use crate::subject::{SubjectMapper, minimal_filters};

/// The filters of one queue on one exchange's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFilters {
    /// The exchange (its stream holds the messages).
    pub exchange: String,
    /// The consumer's `filter_subjects`: no duplicates, no filter covering another (10138).
    pub subjects: Vec<String>,
    /// False when some binding's filter admits more than it matches (headers exchanges, `#`
    /// inside a topic pattern): the facade then checks each message with
    /// [`Topology::route`]'s rules and acks the ones the queue must not see.
    pub exact: bool,
}

impl Topology {
    /// The filters of `queue` on every exchange it is bound to, in exchange name order.
    pub fn queue_filters(&self, queue: &str, mapper: &SubjectMapper) -> Vec<SourceFilters> {
        let dest = Destination::Queue(queue.to_owned());
        let mut by_exchange: BTreeMap<&str, (Vec<String>, bool)> = BTreeMap::new();
        for b in self.bindings.to_dest(&dest) {
            let Some(x) = self.exchanges.get(&b.source) else {
                continue;
            };
            let f = mapper.binding_filter(&b.source, &x.kind, &b.routing_key);
            let entry = by_exchange.entry(&b.source).or_insert((Vec::new(), true));
            entry.0.extend(f.subjects);
            entry.1 &= f.exact;
        }
        by_exchange
            .into_iter()
            .map(|(exchange, (subjects, exact))| SourceFilters {
                exchange: exchange.to_owned(),
                subjects: minimal_filters(&subjects),
                exact,
            })
            .collect()
    }
}
