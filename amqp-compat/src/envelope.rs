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
    ///
    /// Written by hand, byte for byte what serde_json writes for [`Envelope`] (the tests check
    /// it against serde): the generic serializer cost about a tenth of the client's CPU on
    /// the publish path. Only `headers` (a field table of tagged values) still goes through
    /// serde.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(48 + self.exchange.len() + self.routing_key.len());
        out.push_str("{\"e\":");
        push_json_str(&mut out, &self.exchange);
        out.push_str(",\"k\":");
        push_json_str(&mut out, &self.routing_key);
        out.push_str(",\"p\":{");
        let p = &self.properties;
        let mut sep = "";
        let mut name = |out: &mut String, name: &str| {
            out.push_str(sep);
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            sep = ",";
        };
        macro_rules! text {
            ($field:literal => $get:ident) => {
                if let Some(v) = p.$get() {
                    name(&mut out, $field);
                    push_json_str(&mut out, v.as_str());
                }
            };
        }
        macro_rules! number {
            ($field:literal => $get:ident) => {
                if let Some(v) = p.$get() {
                    name(&mut out, $field);
                    out.push_str(&v.to_string());
                }
            };
        }
        text!("content_type" => content_type);
        text!("content_encoding" => content_encoding);
        if let Some(h) = p.headers() {
            name(&mut out, "headers");
            push_ascii(&mut out, &serde_json::to_string(h).unwrap_or_default());
        }
        number!("delivery_mode" => delivery_mode);
        number!("priority" => priority);
        text!("correlation_id" => correlation_id);
        text!("reply_to" => reply_to);
        text!("expiration" => expiration);
        text!("message_id" => message_id);
        number!("timestamp" => timestamp);
        text!("kind" => kind);
        text!("user_id" => user_id);
        text!("app_id" => app_id);
        text!("cluster_id" => cluster_id);
        out.push_str("}}");
        out
    }

    /// The envelope in a message's headers; a message without one (published by a plain NATS
    /// client) reads as sent to the default exchange with `routing_key`.
    pub(crate) fn of_headers(
        headers: Option<&nats_client::HeaderMap>,
        routing_key: &str,
    ) -> Envelope {
        headers
            .and_then(|h| h.get(ENVELOPE_HEADER))
            .and_then(Envelope::decode)
            .unwrap_or_else(|| Envelope {
                routing_key: routing_key.to_owned(),
                ..Envelope::default()
            })
    }

    /// Reads a header value; `None` when it is not an envelope.
    ///
    /// The form [`encode`](Self::encode) writes for a message without headers or escapes is
    /// read by a direct scan; anything else (headers, escapes, `null`s, the full form of
    /// older writers) goes through serde.
    pub fn decode(value: &str) -> Option<Envelope> {
        decode_plain(value).or_else(|| serde_json::from_str(value).ok())
    }
}

/// Appends `s` as a JSON string as serde_json writes it, then with every non-ASCII character
/// as `\uXXXX` (UTF-16 units).
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Appends JSON text with every non-ASCII character as `\uXXXX` (UTF-16 units): non-ASCII
/// characters only occur inside JSON strings, where the escape means the same.
fn push_ascii(out: &mut String, json: &str) {
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
}

/// The direct scan of [`Envelope::decode`]: `{"e":"..","k":"..","p":{..}}` with strings
/// without escapes and properties that are strings or numbers; `None` for anything else.
fn decode_plain(value: &str) -> Option<Envelope> {
    let mut r = Scan(value.as_bytes());
    r.eat(b"{\"e\":")?;
    let exchange = r.string()?.to_owned();
    r.eat(b",\"k\":")?;
    let routing_key = r.string()?.to_owned();
    r.eat(b",\"p\":{")?;
    let mut p = BasicProperties::default();
    let mut first = true;
    // serde refuses a repeated field.
    let mut seen = Vec::new();
    while r.eat(b"}").is_none() {
        if !std::mem::take(&mut first) {
            r.eat(b",")?;
        }
        let name = r.string()?;
        r.eat(b":")?;
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        macro_rules! text {
            ($with:ident) => {
                p.$with(r.string()?.into())
            };
        }
        p = match name {
            "content_type" => text!(with_content_type),
            "content_encoding" => text!(with_content_encoding),
            "delivery_mode" => p.with_delivery_mode(r.number()?.try_into().ok()?),
            "priority" => p.with_priority(r.number()?.try_into().ok()?),
            "correlation_id" => text!(with_correlation_id),
            "reply_to" => text!(with_reply_to),
            "expiration" => text!(with_expiration),
            "message_id" => text!(with_message_id),
            "timestamp" => p.with_timestamp(r.number()?),
            "kind" => text!(with_type),
            "user_id" => text!(with_user_id),
            "app_id" => text!(with_app_id),
            "cluster_id" => text!(with_cluster_id),
            // Headers, or a name serde would read some other way: its business.
            _ => return None,
        };
    }
    r.eat(b"}")?;
    r.0.is_empty().then_some(Envelope {
        exchange,
        routing_key,
        properties: p,
    })
}

/// A cursor over the bytes of a header value.
struct Scan<'a>(&'a [u8]);

impl<'a> Scan<'a> {
    /// Skips `token` if the input continues with it.
    fn eat(&mut self, token: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(token)?;
        Some(())
    }

    /// A string without escapes (the value is ASCII: non-ASCII text is always escaped).
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.0.strip_prefix(b"\"")?;
        let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        if rest[end] != b'"' || rest[..end].iter().any(|&b| b < 0x20) {
            return None;
        }
        self.0 = &rest[end + 1..];
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// An unsigned integer in plain decimal (no sign, fraction or exponent).
    fn number(&mut self) -> Option<u64> {
        let digits = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let (number, rest) = self.0.split_at(digits);
        // A leading zero is JSON only as `0` itself.
        if digits == 0 || (digits > 1 && number[0] == b'0') {
            return None;
        }
        if matches!(rest.first(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.0 = rest;
        std::str::from_utf8(number).ok()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AMQPValue, FieldTable};

    /// What serde writes, with non-ASCII escaped: the form `encode` must reproduce.
    fn reference(e: &Envelope) -> String {
        let mut out = String::new();
        push_ascii(&mut out, &serde_json::to_string(e).unwrap());
        out
    }

    fn odd_texts() -> Vec<String> {
        let mut texts: Vec<String> = [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "tab\tcr\rlf\n",
            "\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "ça ✓",
            "emoji 😀 end",
            "/slash",
            "{\"json\":1}",
        ]
        .map(String::from)
        .to_vec();
        texts.push((0u8..0x80).map(char::from).collect());
        texts
    }

    fn with_all(t: &str) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(t.into(), AMQPValue::LongString(t.into()));
        BasicProperties::default()
            .with_content_type(t.into())
            .with_content_encoding(t.into())
            .with_headers(headers)
            .with_delivery_mode(2)
            .with_priority(255)
            .with_correlation_id(t.into())
            .with_reply_to(t.into())
            .with_expiration(t.into())
            .with_message_id(t.into())
            .with_timestamp(u64::MAX)
            .with_type(t.into())
            .with_user_id(t.into())
            .with_app_id(t.into())
            .with_cluster_id(t.into())
    }

    #[test]
    fn encodes_as_serde_does_and_decodes_back() {
        let mut cases = Vec::new();
        for t in odd_texts() {
            let bare = BasicProperties::default();
            for properties in [
                bare.clone(),
                bare.clone().with_delivery_mode(2),
                bare.clone().with_timestamp(0).with_priority(0),
                bare.clone().with_type(t.as_str().into()),
                bare.clone()
                    .with_reply_to(t.as_str().into())
                    .with_correlation_id("c".into()),
                with_all(&t),
            ] {
                cases.push(Envelope {
                    exchange: t.clone(),
                    routing_key: format!("{t}.key"),
                    properties,
                });
            }
        }
        for e in cases {
            let v = e.encode();
            assert_eq!(v, reference(&e));
            assert!(v.is_ascii(), "{v}");
            assert_eq!(Envelope::decode(&v).as_ref(), Some(&e), "{v}");
            // The direct scan, when it takes a value, reads what serde reads.
            if let Some(plain) = decode_plain(&v) {
                assert_eq!(Some(plain), serde_json::from_str(&v).ok(), "{v}");
            }
        }
    }

    #[test]
    fn the_common_form_takes_the_direct_scan() {
        let e = Envelope {
            exchange: "".into(),
            routing_key: "orders.eu".into(),
            properties: BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_correlation_id("abc-1".into())
                .with_reply_to("amq.rabbitmq.reply-to".into())
                .with_timestamp(1_700_000_000),
        };
        assert_eq!(decode_plain(&e.encode()), Some(e));
    }

    #[test]
    fn the_direct_scan_leaves_what_it_does_not_know_to_serde() {
        for v in [
            r#"{"e":"x","k":"k","p":{"priority":1,"priority":2}}"#,
            r#"{"e":"x","k":"k","p":{"priority":01}}"#,
            r#"{"e":"x","k":"k","p":{"priority":1.0}}"#,
            r#"{"e":"x","k":"k","p":{"priority":-1}}"#,
            r#"{"e":"x","k":"k","p":{"priority":256}}"#,
            r#"{"e":"x","k":"k","p":{"timestamp":18446744073709551616}}"#,
            r#"{"e":"x","k":"k","p":{"priority":null}}"#,
            r#"{"e":"x","k":"k","p":{"other":"y"}}"#,
            r#"{"e":"x\u0041","k":"k","p":{}}"#,
            r#"{"k":"k","e":"x","p":{}}"#,
            r#"{"e":"x","k":"k","p":{}} "#,
            r#"{"e":"x","k":"k","p":{}}}"#,
            r#"{ "e":"x","k":"k","p":{}}"#,
            "{\"e\":\"x\u{1}\",\"k\":\"k\",\"p\":{}}",
        ] {
            assert_eq!(decode_plain(v), None, "{v}");
            assert_eq!(
                Envelope::decode(v),
                serde_json::from_str::<Envelope>(v).ok(),
                "{v}"
            );
        }
        assert_eq!(
            Envelope::decode(r#"{"e":"x\u0041","k":"k","p":{"other":"y"}}"#).map(|e| e.exchange),
            Some("xA".to_owned())
        );
    }

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
