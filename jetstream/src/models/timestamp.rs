//! Optional RFC 3339 timestamps. Go's zero time (`0001-01-01T00:00:00Z`) means "never" and
//! reads as `None`; a timestamp that does not parse also reads as `None` rather than failing
//! the whole reply over one informational field.

use serde::{Deserialize, Deserializer, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .filter(|t| t.year() > 1)
}

pub(crate) fn serialize<S: Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| t.format(&Rfc3339).ok()) {
        Some(text) => s.serialize_str(&text),
        None => s.serialize_none(),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.as_deref().and_then(parse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_time_is_none() {
        assert_eq!(parse("0001-01-01T00:00:00Z"), None);
        let t = parse("2024-05-06T07:08:09.123456789Z").unwrap();
        assert_eq!(t.nanosecond(), 123_456_789);
        assert_eq!(parse("yesterday"), None);
    }
}
