//! Account usage and limits (`$JS.API.INFO`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// An account's JetStream limits; -1 means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    /// Memory storage, bytes.
    pub max_memory: i64,
    /// File storage, bytes.
    #[serde(rename = "max_storage")]
    pub max_store: i64,
    /// Streams.
    pub max_streams: i64,
    /// Consumers.
    pub max_consumers: i64,
    /// Pending acks per consumer.
    pub max_ack_pending: i64,
    /// Bytes per memory stream.
    pub memory_max_stream_bytes: i64,
    /// Bytes per file stream.
    #[serde(rename = "storage_max_stream_bytes")]
    pub store_max_stream_bytes: i64,
    /// Streams must set `max_bytes`.
    pub max_bytes_required: bool,
}

/// Usage and limits of one tier (or of the whole account).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tier {
    /// Memory used, bytes.
    pub memory: u64,
    /// File storage used, bytes.
    #[serde(rename = "storage")]
    pub store: u64,
    /// Memory reserved by limits, bytes.
    pub reserved_memory: u64,
    /// File storage reserved by limits, bytes.
    #[serde(rename = "reserved_storage")]
    pub reserved_store: u64,
    /// Streams.
    pub streams: u64,
    /// Consumers.
    pub consumers: u64,
    /// Limits.
    pub limits: AccountLimits,
}

/// API usage counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiStats {
    /// The API level the server implements.
    pub level: u64,
    /// Requests served.
    pub total: u64,
    /// Requests that failed.
    pub errors: u64,
}

/// The account's JetStream usage, limits and API statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountInfo {
    /// Usage and limits of the whole account (the server embeds them at the top level).
    #[serde(flatten)]
    pub usage: Tier,
    /// The JetStream domain, if any.
    pub domain: Option<String>,
    /// API usage.
    pub api: ApiStats,
    /// Per-tier usage (`R1`, `R3`...) when tiered limits are in use.
    pub tiers: HashMap<String, Tier>,
}
