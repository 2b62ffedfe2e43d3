//! Per-message TTL: the `expiration` property parsed as RabbitMQ 3.10 parses it (checked by the
//! conformance suite), and the effective TTL of a message in a queue.
//!
//! RabbitMQ reads the property as a decimal integer of milliseconds, an optional sign first
//! (`+60000` and `0060000` are accepted, `-0` is 0), nothing else around it (no spaces, no
//! fraction, not empty); negative values are refused. A refused expiration closes the
//! publisher's channel with 406 PRECONDITION_FAILED.

use crate::error::{Error, Result};

/// The largest expiration accepted, in ms (2^38, about 8.7 years). RabbitMQ 3.10 accepted
/// 2^38 and refused values from about 3.1e11 ms (the exact bound depends on the broker's clock):
/// larger values are refused here, which no real TTL reaches.
pub const MAX_EXPIRATION_MS: u64 = 1 << 38;

/// Parses an `expiration` property; `Err` is the 406 that closes the channel.
pub fn parse_expiration(text: &str) -> Result<u64> {
    let invalid =
        |why: &str| Error::precondition_failed(format!("invalid expiration '{text}': {why}"));
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("not an integer"));
    }
    // Leading zeros are fine; anything past u64 is too large anyway.
    let value: u64 = digits.parse().map_err(|_| invalid("value too large"))?;
    match (negative, value) {
        (true, 0) => Ok(0),
        (true, _) => Err(invalid("value negative")),
        (false, v) if v > MAX_EXPIRATION_MS => Err(invalid("value too large")),
        (false, v) => Ok(v),
    }
}

/// The TTL a message has in a queue: the lower of its own expiration and the queue's
/// `x-message-ttl`, if either is set.
pub fn effective_ttl(message: Option<u64>, queue: Option<u64>) -> Option<u64> {
    match (message, queue) {
        (Some(m), Some(q)) => Some(m.min(q)),
        (m, q) => m.or(q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_rabbitmq_accepts() {
        for (text, ms) in [
            ("60000", 60000),
            ("0", 0),
            ("00", 0),
            ("-0", 0),
            ("+0", 0),
            ("+60000", 60000),
            ("0060000", 60000),
            ("4294967296", 4294967296),
            ("274877906944", MAX_EXPIRATION_MS),
        ] {
            assert_eq!(parse_expiration(text).unwrap(), ms, "{text:?}");
        }
    }

    #[test]
    fn what_rabbitmq_refuses_with_406() {
        for text in [
            "-1",
            "abc",
            "1.5",
            " 5",
            "5 ",
            "",
            "+",
            "-",
            "1e3",
            "0x10",
            "٣",
            "9223372036854775807",
            "99999999999999999999",
        ] {
            let err = parse_expiration(text).expect_err(text);
            assert_eq!(err.reply_code(), Some(406), "{text:?}");
        }
    }

    #[test]
    fn the_lower_ttl_wins() {
        assert_eq!(effective_ttl(Some(5), Some(10)), Some(5));
        assert_eq!(effective_ttl(None, Some(10)), Some(10));
        assert_eq!(effective_ttl(Some(0), None), Some(0));
        assert_eq!(effective_ttl(None, None), None);
    }
}

/// The checks RabbitMQ makes on a publish before routing it: `immediate` is not implemented
/// (540, closes the connection) and the `expiration` property must parse (406, closes the
/// channel). Returns the message's TTL in ms, if it has one.
pub fn check_publish(
    options: &crate::options::BasicPublishOptions,
    properties: &crate::BasicProperties,
) -> Result<Option<u64>> {
    if options.immediate {
        return Err(Error::not_implemented("immediate=true"));
    }
    properties
        .expiration()
        .as_ref()
        .map(|e| parse_expiration(e.as_str()))
        .transpose()
}

#[cfg(test)]
mod publish_tests {
    use super::*;
    use crate::{BasicProperties, options::BasicPublishOptions};

    #[test]
    fn immediate_is_540_and_expiration_is_parsed() {
        let p = BasicProperties::default();
        let immediate = BasicPublishOptions {
            mandatory: false,
            immediate: true,
        };
        let err = check_publish(&immediate, &p).unwrap_err();
        assert!(err.is_amqp_hard_error() && err.reply_code() == Some(540));
        let o = BasicPublishOptions::default();
        assert_eq!(check_publish(&o, &p).unwrap(), None);
        let ttl = p.clone().with_expiration("1500".into());
        assert_eq!(check_publish(&o, &ttl).unwrap(), Some(1500));
        let bad = p.with_expiration("soon".into());
        assert_eq!(check_publish(&o, &bad).unwrap_err().reply_code(), Some(406));
    }
}
