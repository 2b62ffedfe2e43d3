//! `Duration` as Go's `time.Duration`: integer nanoseconds on the wire.
//!
//! Negative values (which Go allows) read as zero rather than failing the whole reply.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Converts to nanoseconds, saturating at `i64::MAX` (292 years).
pub(crate) fn to_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

pub(crate) fn from_nanos(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(to_nanos(*d))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.map_or(Duration::ZERO, from_nanos))
}

/// A list of durations (`backoff`).
pub(crate) mod vec {
    use super::*;
    use serde::ser::SerializeSeq;

    pub(crate) fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for d in v {
            seq.serialize_element(&to_nanos(*d))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Ok(Option::<Vec<i64>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(from_nanos)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
        #[serde(with = "super::vec")]
        v: Vec<Duration>,
    }

    #[test]
    fn roundtrip_and_tolerance() {
        let t = T {
            d: Duration::from_secs(2),
            v: vec![Duration::from_millis(1), Duration::from_millis(2)],
        };
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, r#"{"d":2000000000,"v":[1000000,2000000]}"#);
        assert_eq!(serde_json::from_str::<T>(&s).unwrap(), t);
        let neg: T = serde_json::from_str(r#"{"d":-5,"v":null}"#).unwrap();
        assert_eq!(neg.d, Duration::ZERO);
        assert!(neg.v.is_empty());
    }
}
