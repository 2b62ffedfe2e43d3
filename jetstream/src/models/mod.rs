//! Serde models of the JetStream API: stream, consumer and account configuration and state.
//!
//! Durations travel as nanoseconds (Go's `time.Duration`), timestamps as RFC 3339. Every
//! struct takes `#[serde(default)]`, so fields a server leaves out get their documented
//! default, and unknown fields sent by newer servers are kept in `extra` (configurations) so a
//! read-modify-update cycle does not drop them.

mod account;
mod consumer;
pub(crate) mod nanos;
mod stream;
pub(crate) mod timestamp;

pub use account::{AccountInfo, AccountLimits, ApiStats, Tier};
pub use consumer::{
    AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, PriorityGroupState, PriorityPolicy,
    ReplayPolicy, SequenceInfo,
};
pub use stream::{
    ClusterInfo, Compression, ConsumerLimits, DiscardPolicy, External, PeerInfo, Placement,
    RePublish, RetentionPolicy, SourceInfo, StorageType, StreamConfig, StreamInfo, StreamSource,
    StreamState, SubjectTransform,
};

/// One page of a paged listing (`STREAM.NAMES`, `STREAM.LIST`, `CONSUMER.NAMES`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// How many items exist in total.
    pub total: usize,
    /// The offset this page starts at.
    pub offset: usize,
    /// The most items the server puts in one page.
    pub limit: usize,
    /// The items of this page.
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// The offset of the next page, or `None` when this page is the last.
    pub fn next_offset(&self) -> Option<usize> {
        let next = self.offset + self.items.len();
        (!self.items.is_empty() && next < self.total).then_some(next)
    }
}
