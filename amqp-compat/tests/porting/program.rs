// Written for lapin 4.12 (`use lapin as amqp;`), included unchanged by `tests/porting.rs` under
// both aliases. It covers what amqp-compat has built so far: data types, every option struct
// built field by field (no `..Default::default()`, so a missing or extra field fails to
// compile), properties, exchange kinds, errors, connection properties, confirmations and
// deliveries. Connection/Channel calls join it when they exist.

use amqp::{
    BasicProperties, Confirmation, ConnectionProperties, ExchangeKind,
    message::{BasicReturnMessage, Delivery},
    options::*,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

pub fn client_queue_arguments(dlx: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString(LongString::from(dlx)),
    );
    args
}

pub fn notification(ttl_ms: Option<u64>) -> BasicProperties {
    let props = BasicProperties::default().with_content_type("application/json".into());
    match ttl_ms {
        Some(ms) => props.with_delivery_mode(2).with_expiration(ms.to_string().into()),
        None => props.with_delivery_mode(1).with_expiration("0".into()),
    }
}

pub fn kinds() -> [ExchangeKind; 5] {
    [
        ExchangeKind::Direct,
        ExchangeKind::Fanout,
        ExchangeKind::Topic,
        ExchangeKind::Headers,
        ExchangeKind::Custom("x-delayed-message".into()),
    ]
}

/// Every option struct, each field set by name; rendered with `Debug` for comparison.
pub fn every_option() -> Vec<String> {
    let t = true;
    vec![
        format!("{:?}", BasicQosOptions { global: t }),
        format!("{:?}", BasicConsumeOptions { no_local: t, no_ack: t, exclusive: t, nowait: t }),
        format!("{:?}", BasicCancelOptions { nowait: t }),
        format!("{:?}", BasicPublishOptions { mandatory: t, immediate: t }),
        format!("{:?}", BasicDeliverOptions { redelivered: t }),
        format!("{:?}", BasicGetOptions { no_ack: t }),
        format!("{:?}", BasicGetOkOptions { redelivered: t }),
        format!("{:?}", BasicAckOptions { multiple: t }),
        format!("{:?}", BasicRejectOptions { requeue: t }),
        format!("{:?}", BasicRecoverAsyncOptions { requeue: t }),
        format!("{:?}", BasicRecoverOptions { requeue: t }),
        format!("{:?}", BasicNackOptions { multiple: t, requeue: t }),
        format!("{:?}", ChannelFlowOptions { active: t }),
        format!("{:?}", ChannelFlowOkOptions { active: t }),
        format!(
            "{:?}",
            AccessRequestOptions { exclusive: t, passive: t, active: t, write: t, read: t }
        ),
        format!(
            "{:?}",
            ExchangeDeclareOptions { passive: t, durable: t, auto_delete: t, internal: t, nowait: t }
        ),
        format!("{:?}", ExchangeDeleteOptions { if_unused: t, nowait: t }),
        format!("{:?}", ExchangeBindOptions { nowait: t }),
        format!("{:?}", ExchangeUnbindOptions { nowait: t }),
        format!(
            "{:?}",
            QueueDeclareOptions { passive: t, durable: t, exclusive: t, auto_delete: t, nowait: t }
        ),
        format!("{:?}", QueueBindOptions { nowait: t }),
        format!("{:?}", QueuePurgeOptions { nowait: t }),
        format!("{:?}", QueueDeleteOptions { if_unused: t, if_empty: t, nowait: t }),
        format!("{:?}", ConfirmSelectOptions { nowait: t }),
        format!("{:?}", QueueDeclareOptions::durable()),
        format!("{:?}", QueueDeclareOptions::exclusive().auto_delete().passive()),
        format!("{:?}", BasicQosOptions::default()),
    ]
}

pub fn is_precondition_failed(err: &amqp::Error) -> bool {
    matches!(err.kind(), amqp::ErrorKind::ProtocolError(e) if e.get_id() == 406)
        && err.is_amqp_soft_error()
        && !err.is_amqp_hard_error()
}

pub fn cannon_properties() -> ConnectionProperties {
    ConnectionProperties::default()
        .with_connection_name("cannon-1".into())
        .with_client_property("product".into(), "wire".into())
}

pub fn returned_payload(c: Confirmation) -> Option<Vec<u8>> {
    let acked = c.is_ack() && !c.is_nack();
    c.take_message().filter(|_| acked).map(|m: BasicReturnMessage| m.delivery.data)
}

pub fn mock(tag: u64) -> Delivery {
    Delivery::mock(tag, "user-notifications".into(), "u1.c1".into(), false, b"{}".to_vec())
}
