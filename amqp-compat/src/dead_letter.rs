//! Dead-lettering as RabbitMQ 3.10 does it, as pure values: where the copy goes, and the
//! `x-death` headers it carries (checked against RabbitMQ by the conformance suite).
//!
//! The copy goes to the queue's `x-dead-letter-exchange` with its `x-dead-letter-routing-key`,
//! or the message's own routing key. Its headers get an `x-death` array, newest death first: a
//! death in the same queue for the same reason increments that entry's `count` and moves it to
//! the front; otherwise a new entry `{count, reason, queue, time, exchange, routing-keys}`
//! (plus `original-expiration` when the message had one) is put first. `x-first-death-queue`,
//! `-reason` and `-exchange` are set at the first death only. The copy has no `expiration`.
//! amqp-compat also sets `x-last-death-queue`, `-reason` and `-exchange` at every death:
//! RabbitMQ 3.13 and later do, and Wire's dead-letter watcher reads them (3.10 does not).

use crate::{
    BasicProperties,
    routing::QueueDecl,
    types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString},
};

/// Why a message died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeathReason {
    /// Rejected or nacked with `requeue = false`.
    Rejected,
    /// Its TTL (per message or per queue) passed.
    Expired,
    /// Dropped by `x-max-length(-bytes)`.
    Maxlen,
    /// Delivered more often than `x-delivery-limit`.
    DeliveryLimit,
}

impl DeathReason {
    /// RabbitMQ's name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Maxlen => "maxlen",
            Self::DeliveryLimit => "delivery_limit",
        }
    }
}

/// One death of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Death {
    /// The queue it died in.
    pub queue: String,
    /// Why.
    pub reason: DeathReason,
    /// The exchange it had been published (or dead-lettered) to.
    pub exchange: String,
    /// Its routing keys (the routing key, then any `CC` header keys).
    pub routing_keys: Vec<String>,
    /// When, in seconds since the Unix epoch.
    pub time: u64,
}

/// Where a queue's dead letters go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterTarget {
    /// The dead-letter exchange.
    pub exchange: String,
    /// The routing key of the copy.
    pub routing_key: String,
}

/// The target for a message that died in `queue` with `routing_key`; `None` when the queue has
/// no dead-letter exchange (the message is dropped).
pub fn target(queue: &QueueDecl, routing_key: &str) -> Option<DeadLetterTarget> {
    let a = &queue.arguments;
    Some(DeadLetterTarget {
        exchange: a.dead_letter_exchange.clone()?,
        routing_key: a
            .dead_letter_routing_key
            .clone()
            .unwrap_or_else(|| routing_key.to_owned()),
    })
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn get_text(t: &FieldTable, key: &str) -> Option<String> {
    match t.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn count_of(v: Option<&AMQPValue>) -> i64 {
    match v {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => (*n).into(),
        Some(AMQPValue::LongUInt(n)) => (*n).into(),
        Some(AMQPValue::ShortInt(n)) => (*n).into(),
        Some(AMQPValue::ShortUInt(n)) => (*n).into(),
        Some(AMQPValue::ShortShortInt(n)) => (*n).into(),
        Some(AMQPValue::ShortShortUInt(n)) => (*n).into(),
        _ => 1,
    }
}

/// The headers of the dead-lettered copy: `headers` (the message's) with this death recorded.
pub fn record_death(
    headers: Option<&FieldTable>,
    death: &Death,
    original_expiration: Option<&str>,
) -> FieldTable {
    let mut out = headers.cloned().unwrap_or_default();
    let previous: Vec<AMQPValue> = match out.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let same = |v: &AMQPValue| match v {
        AMQPValue::FieldTable(t) => {
            get_text(t, "queue").as_deref() == Some(death.queue.as_str())
                && get_text(t, "reason").as_deref() == Some(death.reason.as_str())
        }
        _ => false,
    };
    let matched = previous.iter().position(same);
    let mut deaths = Vec::with_capacity(previous.len() + 1);
    match matched {
        Some(i) => {
            if let AMQPValue::FieldTable(t) = &previous[i] {
                let mut t = t.clone();
                let n = count_of(t.inner().get("count")).saturating_add(1);
                t.insert("count".into(), AMQPValue::LongLongInt(n));
                deaths.push(AMQPValue::FieldTable(t));
            }
        }
        None => {
            let mut t = FieldTable::default();
            t.insert("count".into(), AMQPValue::LongLongInt(1));
            t.insert("reason".into(), text(death.reason.as_str()));
            t.insert("queue".into(), text(&death.queue));
            t.insert("time".into(), AMQPValue::Timestamp(death.time));
            t.insert("exchange".into(), text(&death.exchange));
            let keys: Vec<AMQPValue> = death.routing_keys.iter().map(|k| text(k)).collect();
            t.insert(
                "routing-keys".into(),
                AMQPValue::FieldArray(FieldArray::from(keys)),
            );
            if let Some(e) = original_expiration {
                t.insert("original-expiration".into(), text(e));
            }
            deaths.push(AMQPValue::FieldTable(t));
        }
    }
    let others = previous
        .iter()
        .enumerate()
        .filter(|(j, _)| Some(*j) != matched);
    deaths.extend(others.map(|(_, v)| v.clone()));
    out.insert(
        "x-death".into(),
        AMQPValue::FieldArray(FieldArray::from(deaths)),
    );
    for (suffix, value) in [
        ("queue", death.queue.as_str()),
        ("reason", death.reason.as_str()),
        ("exchange", death.exchange.as_str()),
    ] {
        let first: ShortString = format!("x-first-death-{suffix}").into();
        if !out.inner().contains_key(&first) {
            out.insert(first, text(value));
        }
        out.insert(format!("x-last-death-{suffix}").into(), text(value));
    }
    out
}

/// The properties of the dead-lettered copy: [`record_death`] in the headers, no expiration.
pub fn dead_letter_properties(props: &BasicProperties, death: &Death) -> BasicProperties {
    let expiration = props.expiration().as_ref().map(|e| e.as_str().to_owned());
    let headers = record_death(props.headers().as_ref(), death, expiration.as_deref());
    let mut out = BasicProperties::default().with_headers(headers);
    // Every property but `expiration` is kept (the builder cannot unset one, so copy).
    if let Some(v) = props.content_type() {
        out = out.with_content_type(v.clone());
    }
    if let Some(v) = props.content_encoding() {
        out = out.with_content_encoding(v.clone());
    }
    if let Some(v) = props.delivery_mode() {
        out = out.with_delivery_mode(*v);
    }
    if let Some(v) = props.priority() {
        out = out.with_priority(*v);
    }
    if let Some(v) = props.correlation_id() {
        out = out.with_correlation_id(v.clone());
    }
    if let Some(v) = props.reply_to() {
        out = out.with_reply_to(v.clone());
    }
    if let Some(v) = props.message_id() {
        out = out.with_message_id(v.clone());
    }
    if let Some(v) = props.timestamp() {
        out = out.with_timestamp(*v);
    }
    if let Some(v) = props.kind() {
        out = out.with_type(v.clone());
    }
    if let Some(v) = props.user_id() {
        out = out.with_user_id(v.clone());
    }
    if let Some(v) = props.app_id() {
        out = out.with_app_id(v.clone());
    }
    if let Some(v) = props.cluster_id() {
        out = out.with_cluster_id(v.clone());
    }
    out
}

impl crate::channel::ChannelInner {
    /// Copies `p` to its queue's dead-letter exchange, if it has one, with RabbitMQ's
    /// `x-death` headers, and waits until the copy is stored: only then may the original go
    /// (`docs/amqp-mapping.md` §6). The copy's `Nats-Msg-Id` (`dlx:<stream>:<seq>`) makes a
    /// retry after a crash store it once.
    pub(crate) async fn dead_letter(
        &self,
        p: &crate::consume::Stored,
        reason: DeathReason,
    ) -> crate::error::Result<()> {
        let Some(decl) = self.conn.store.read(|t| t.queue(&p.queue).cloned()) else {
            return Ok(());
        };
        let original = crate::consume::envelope_of(&p.msg, &p.queue);
        let Some(target) = target(&decl, &original.routing_key) else {
            return Ok(());
        };
        let death = Death {
            queue: p.queue.to_string(),
            reason,
            exchange: original.exchange.clone(),
            routing_keys: vec![original.routing_key.clone()],
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let copy = crate::envelope::Envelope {
            exchange: target.exchange,
            routing_key: target.routing_key,
            properties: dead_letter_properties(&original.properties, &death),
        };
        let id = match p.msg.info() {
            Ok(i) => format!("dlx:{}:{}", i.stream, i.stream_sequence),
            Err(_) => nuid::next().to_string(),
        };
        self.republish(&copy, &p.msg.message().payload, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn death(queue: &str, exchange: &str) -> Death {
        Death {
            queue: queue.into(),
            reason: DeathReason::Rejected,
            exchange: exchange.into(),
            routing_keys: vec!["job".into()],
            time: 1_700_000_000,
        }
    }

    fn deaths(t: &FieldTable) -> Vec<(String, i64)> {
        let Some(AMQPValue::FieldArray(a)) = t.inner().get("x-death") else {
            panic!("no x-death in {t:?}")
        };
        a.as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(e) => (
                    get_text(e, "queue").unwrap_or_default(),
                    count_of(e.inner().get("count")),
                ),
                other => panic!("not a table: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn repeated_deaths_count_and_move_to_the_front() {
        let h1 = record_death(None, &death("q1", "work"), Some("60000"));
        assert_eq!(deaths(&h1), [("q1".into(), 1)]);
        let h2 = record_death(Some(&h1), &death("dead", "dlx"), None);
        assert_eq!(deaths(&h2), [("dead".into(), 1), ("q1".into(), 1)]);
        let h3 = record_death(Some(&h2), &death("q1", "work"), None);
        assert_eq!(deaths(&h3), [("q1".into(), 2), ("dead".into(), 1)]);
        assert_eq!(get_text(&h3, "x-first-death-queue").as_deref(), Some("q1"));
        assert_eq!(
            get_text(&h3, "x-first-death-exchange").as_deref(),
            Some("work")
        );
        assert_eq!(get_text(&h2, "x-last-death-queue").as_deref(), Some("dead"));
        assert_eq!(get_text(&h3, "x-last-death-queue").as_deref(), Some("q1"));
    }

    #[test]
    fn the_copy_keeps_properties_but_not_the_expiration() {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_expiration("60000".into())
            .with_correlation_id("c1".into());
        let out = dead_letter_properties(&props, &death("q1", ""));
        assert_eq!(out.expiration(), &None);
        assert_eq!(
            out.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        assert_eq!(out.delivery_mode(), &Some(2));
        assert_eq!(
            out.correlation_id().as_ref().map(|s| s.as_str()),
            Some("c1")
        );
        let h = out.headers().clone().unwrap_or_default();
        let Some(AMQPValue::FieldArray(a)) = h.inner().get("x-death") else {
            panic!("{h:?}")
        };
        let AMQPValue::FieldTable(e) = &a.as_slice()[0] else {
            panic!("{a:?}")
        };
        assert_eq!(get_text(e, "original-expiration").as_deref(), Some("60000"));
    }
}
