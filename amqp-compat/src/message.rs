//! Messages as lapin hands them out: [`Delivery`] (with its [`Acker`]), [`BasicGetMessage`]
//! and [`BasicReturnMessage`].

use std::{
    ops::Deref,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
};

use crate::channel::{ChannelInner, Settle};

use crate::{
    BasicProperties,
    error::Result,
    options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
    types::{DeliveryTag, MessageCount, ReplyCode, ShortString},
};

/// A message delivered to a consumer or fetched by `basic_get`, lapin's fields.
#[derive(Debug, PartialEq)]
pub struct Delivery {
    /// Per-channel tag, monotonic from 1; what `basic_ack` takes.
    pub delivery_tag: DeliveryTag,
    /// The exchange the message was published to (`""` for the default exchange).
    pub exchange: ShortString,
    /// The routing key it was published with.
    pub routing_key: ShortString,
    /// True when the message was delivered before and not acknowledged.
    pub redelivered: bool,
    /// The properties the publisher set, and nothing else.
    pub properties: BasicProperties,
    /// The payload.
    pub data: Vec<u8>,
    /// Settles this delivery.
    pub acker: Acker,
}

impl Delivery {
    /// A delivery not attached to any channel, for tests (lapin's `Delivery::mock`): its acker
    /// settles once (`Ok(true)`) and then reports `Ok(false)`, as lapin's does.
    pub fn mock(
        delivery_tag: DeliveryTag,
        exchange: ShortString,
        routing_key: ShortString,
        redelivered: bool,
        data: Vec<u8>,
    ) -> Self {
        Self {
            delivery_tag,
            exchange,
            routing_key,
            redelivered,
            properties: BasicProperties::default(),
            data,
            acker: Acker::default(),
        }
    }
}

impl Deref for Delivery {
    type Target = Acker;

    fn deref(&self) -> &Acker {
        &self.acker
    }
}

/// Settles one delivery: ack, nack or reject, at most once.
///
/// `Ok(true)` when this call settled it, `Ok(false)` when it was already settled or its
/// channel is gone (lapin's contract).
#[derive(Clone, Debug, Default)]
pub struct Acker {
    used: Arc<AtomicBool>,
    poisoned: Arc<AtomicBool>,
    target: Option<(Weak<ChannelInner>, DeliveryTag)>,
}

impl Acker {
    pub(crate) fn for_channel(channel: &Arc<ChannelInner>, tag: DeliveryTag) -> Self {
        Self {
            target: Some((Arc::downgrade(channel), tag)),
            ..Self::default()
        }
    }

    /// Acknowledges the delivery (`multiple` acknowledges every earlier one of the channel too).
    pub async fn ack(&self, options: BasicAckOptions) -> Result<bool> {
        self.settle(options.multiple, Settle::Ack).await
    }

    /// Negatively acknowledges the delivery (requeue or dead-letter by `options.requeue`).
    pub async fn nack(&self, options: BasicNackOptions) -> Result<bool> {
        let how = match options.requeue {
            true => Settle::Requeue,
            false => Settle::Drop,
        };
        self.settle(options.multiple, how).await
    }

    /// Rejects the delivery (requeue or dead-letter by `options.requeue`).
    pub async fn reject(&self, options: BasicRejectOptions) -> Result<bool> {
        let how = match options.requeue {
            true => Settle::Requeue,
            false => Settle::Drop,
        };
        self.settle(false, how).await
    }

    async fn settle(&self, multiple: bool, how: Settle) -> Result<bool> {
        if !self.take() {
            return Ok(false);
        }
        let Some((channel, tag)) = &self.target else {
            return Ok(true);
        };
        let Some(channel) = channel.upgrade() else {
            return Ok(false);
        };
        channel.settle(*tag, multiple, how).await?;
        Ok(true)
    }

    /// True when the channel of this delivery was closed or failed.
    pub fn poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// False when poisoned or already settled.
    pub fn usable(&self) -> bool {
        !self.poisoned() && !self.used.load(Ordering::Acquire)
    }

    fn take(&self) -> bool {
        if let Some((channel, _)) = &self.target
            && channel.upgrade().is_none_or(|c| c.closed_error().is_some())
        {
            self.poisoned.store(true, Ordering::Release);
        }
        !self.poisoned() && !self.used.swap(true, Ordering::AcqRel)
    }
}

impl PartialEq for Acker {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.used, &other.used)
    }
}

/// The answer to `basic_get`: a delivery and how many messages are left in the queue.
#[derive(Debug, PartialEq)]
pub struct BasicGetMessage {
    /// The message.
    pub delivery: Delivery,
    /// Messages left in the queue after this one.
    pub message_count: MessageCount,
}

impl Deref for BasicGetMessage {
    type Target = Delivery;

    fn deref(&self) -> &Delivery {
        &self.delivery
    }
}

/// A message the broker returned (mandatory publish with no route: 312 NO_ROUTE).
#[derive(Debug, PartialEq)]
pub struct BasicReturnMessage {
    /// The returned message (its tag is 0: it was never delivered).
    pub delivery: Delivery,
    /// Why: 312 NO_ROUTE.
    pub reply_code: ReplyCode,
    /// The broker's text.
    pub reply_text: ShortString,
}

impl Deref for BasicReturnMessage {
    type Target = Delivery;

    fn deref(&self) -> &Delivery {
        &self.delivery
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mock_delivery_settles_once() {
        let d = Delivery::mock(1, "".into(), "k".into(), false, b"x".to_vec());
        assert!(d.usable());
        assert!(d.ack(BasicAckOptions::default()).await.unwrap());
        assert!(!d.usable());
        assert!(!d.nack(BasicNackOptions::default()).await.unwrap());
        assert!(!d.acker.poisoned());
    }
}
