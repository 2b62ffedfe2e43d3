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
    #[serde(rename = "p", serialize_with = "set_properties")]
    pub properties: BasicProperties,
}

/// Writes only the properties that are set (lapin's type writes all fourteen, `null` when
/// absent: 282 header bytes for a bare persistent message). Its `Deserialize` reads a missing
/// field as unset, so both forms decode.
fn set_properties<S: serde::Serializer>(p: &BasicProperties, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(None)?;
    macro_rules! field {
        ($($name:literal => $get:ident),* $(,)?) => {$(
            if let Some(v) = p.$get() {
                map.serialize_entry($name, v)?;
            }
        )*};
    }
    field!(
        "content_type" => content_type,
        "content_encoding" => content_encoding,
        "headers" => headers,
        "delivery_mode" => delivery_mode,
        "priority" => priority,
        "correlation_id" => correlation_id,
        "reply_to" => reply_to,
        "expiration" => expiration,
        "message_id" => message_id,
        "timestamp" => timestamp,
        "kind" => kind,
        "user_id" => user_id,
        "app_id" => app_id,
        "cluster_id" => cluster_id,
    );
    map.end()
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

    #[test]
    fn writes_only_the_properties_that_are_set_and_reads_the_full_form_too() {
        let e = Envelope {
            exchange: "x".into(),
            routing_key: "k".into(),
            properties: BasicProperties::default().with_delivery_mode(2),
        };
        let v = e.encode();
        assert_eq!(v, r#"{"e":"x","k":"k","p":{"delivery_mode":2}}"#);
        assert_eq!(Envelope::decode(&v), Some(e.clone()));
        // The form written before (every property, null when unset) still decodes.
        let full = format!(
            r#"{{"e":"x","k":"k","p":{}}}"#,
            serde_json::to_string(&e.properties).unwrap()
        );
        assert!(full.contains("null"), "{full}");
        assert_eq!(Envelope::decode(&full), Some(e));
    }
}
