//! How an AMQP message travels in JetStream: the payload as is, and one header,
//! `Amqp-Envelope`, holding the exchange, routing key and the properties the publisher set
//! (JSON, non-ASCII escaped so it is a valid header value). Nothing else the transport adds
//! (`Nats-Msg-Id`, `Nats-TTL`, ...) is ever read back into a delivery's properties.

use serde::{Deserialize, Serialize};

use crate::BasicProperties;

/// The header carrying the envelope.
pub const ENVELOPE_HEADER: &str = "Amqp-Envelope";

/// What a stored message carries besides its payload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The exchange it was published to.
    #[serde(rename = "e")]
    pub exchange: String,
    /// The routing key it was published with.
    #[serde(rename = "k")]
    pub routing_key: String,
    /// The properties the publisher set.
    #[serde(rename = "p")]
    pub properties: BasicProperties,
}

impl Envelope {
    /// The header value: compact JSON with every non-ASCII character as `\uXXXX`.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        out
    }

    /// Reads a header value; `None` when it is not an envelope.
    pub fn decode(value: &str) -> Option<Envelope> {
        serde_json::from_str(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AMQPValue, FieldTable};

    #[test]
    fn round_trips_through_an_ascii_header_value() {
        let mut headers = FieldTable::default();
        headers.insert("x-ünï".into(), AMQPValue::LongString("ça\r\nva".into()));
        headers.insert("n".into(), AMQPValue::LongInt(-5));
        let e = Envelope {
            exchange: "ex ✓".into(),
            routing_key: "a..b\n".into(),
            properties: BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_expiration("60000".into())
                .with_headers(headers),
        };
        let v = e.encode();
        assert!(v.is_ascii() && !v.contains(['\r', '\n']), "{v}");
        assert_eq!(Envelope::decode(&v), Some(e));
        assert_eq!(Envelope::decode("nope"), None);
    }
}
