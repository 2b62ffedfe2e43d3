//! Serde models of the server's monitoring answers, as `$SYS.REQ.SERVER.*` requests return them.
//!
//! Field names follow nats-server's JSON (`server/monitor.go`, `server/events.go`). Every
//! struct takes `#[serde(default)]` and none denies unknown fields, so a newer server that adds
//! or drops a field still decodes. Only the fields the reports and the tool use are modelled; a
//! caller that needs more asks [`SysClient::ping`](crate::SysClient::ping) for a
//! `serde_json::Value`. Times are RFC 3339 ([`time::OffsetDateTime`]); Go durations that the
//! server renders as text (`"1h2m3s"`, `"1.2ms"`) stay text, with [`go_duration`] to read them.

mod connz;
mod duration;
pub(crate) mod envelope;
mod jsz;
mod misc;
mod routez;
mod statsz;
mod varz;

pub use connz::{ConnInfo, Connz};
pub use duration::go_duration;
pub use envelope::{ApiErrorBody, ServerIdentity};
pub use jsz::{
    AccountDetail, HealthStatus, HealthzError, JetStreamInfo, MetaCluster, StreamDetail,
};
pub use misc::{AccountInfo, Accountz, Gatewayz, LeafInfo, Leafz, Subsz};
pub use routez::{RouteInfo, Routez};
pub use statsz::{DataStats, RouteStat, ServerStats, Statsz};
pub use varz::{ClusterVarz, JetStreamVarz, SlowConsumersStats, Varz};

/// RFC 3339 timestamps that may be absent; Go's zero time reads as `None`.
pub(crate) mod timestamp {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value.and_then(|t| t.format(&Rfc3339).ok()) {
            Some(text) => s.serialize_str(&text),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        Ok(text
            .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok())
            // Go's zero time (year 1) means "never".
            .filter(|t| t.year() > 1))
    }
}
