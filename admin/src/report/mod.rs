//! Reports built from several `$SYS` requests: what an operator looks at first.
//!
//! Each report says which servers did not answer (`missing`) next to what the others said, so
//! a partial picture is never mistaken for the whole.

mod connections;
mod overview;
mod streams;

pub use connections::{ConnectionRow, TopConnections, top_connections};
pub use overview::{ClusterOverview, ServerSummary, overview};
pub use streams::{ConsumerRow, Replica, StreamRow, StreamsReport, streams};

use crate::Gathered;

/// The servers missing from any of `sets`, sorted and deduplicated.
pub(crate) fn missing_of_all(sets: &[&[String]]) -> Vec<String> {
    let mut all: Vec<String> = sets.iter().flat_map(|s| s.iter().cloned()).collect();
    all.sort();
    all.dedup();
    all
}

/// The names of servers that answered with an error.
pub(crate) fn failed_names<T>(g: &Gathered<T>) -> Vec<String> {
    g.failed
        .iter()
        .map(|f| format!("{} ({})", f.server.name, f.error.description))
        .collect()
}
