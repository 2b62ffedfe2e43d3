//! Option structs of every AMQP method, with lapin 4.12's names, fields and derives.
//!
//! Ported code builds these by name (`QueueDeclareOptions { durable: true, ..Default::default() }`),
//! so they must match lapin's field for field: only the import changes.

use crate::types::Boolean;

macro_rules! options {
    ($(
        $(#[$meta:meta])*
        $name:ident { $($(#[$fmeta:meta])* $field:ident),* $(,)? }
    )*) => {$(
        $(#[$meta])*
        #[derive(Copy, Clone, Debug, Default, PartialEq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: Boolean,)*
        }
    )*};
}

options! {
    /// Options for `basic.qos`.
    BasicQosOptions {
        /// Apply the prefetch to the whole channel rather than per consumer (RabbitMQ's reading).
        global,
    }
    /// Options for `basic.consume`.
    BasicConsumeOptions {
        /// Do not deliver messages published on this connection.
        no_local,
        /// Deliveries need no acknowledgement: they count as acked when sent.
        no_ack,
        /// Be the queue's only consumer.
        exclusive,
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `basic.cancel`.
    BasicCancelOptions {
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `basic.publish`.
    BasicPublishOptions {
        /// Return the message (312 NO_ROUTE) when no queue receives it.
        mandatory,
        /// Return the message when no consumer can take it now (RabbitMQ answers 540).
        immediate,
    }
    /// Options carried by `basic.deliver`.
    BasicDeliverOptions {
        /// The message was delivered before and not acknowledged.
        redelivered,
    }
    /// Options for `basic.get`.
    BasicGetOptions {
        /// The message counts as acked when fetched.
        no_ack,
    }
    /// Options carried by `basic.get-ok`.
    BasicGetOkOptions {
        /// The message was delivered before and not acknowledged.
        redelivered,
    }
    /// Options for `basic.ack`.
    BasicAckOptions {
        /// Acknowledge every unacknowledged delivery up to and including the tag.
        multiple,
    }
    /// Options for `basic.reject`.
    BasicRejectOptions {
        /// Put the message back in the queue instead of dropping or dead-lettering it.
        requeue,
    }
    /// Options for `basic.recover-async`.
    BasicRecoverAsyncOptions {
        /// Requeue the unacknowledged deliveries.
        requeue,
    }
    /// Options for `basic.recover`.
    BasicRecoverOptions {
        /// Requeue the unacknowledged deliveries.
        requeue,
    }
    /// Options for `basic.nack`.
    BasicNackOptions {
        /// Reject every unacknowledged delivery up to and including the tag.
        multiple,
        /// Put the messages back in the queue instead of dropping or dead-lettering them.
        requeue,
    }
    /// Options for `channel.flow`.
    ChannelFlowOptions {
        /// Start (true) or stop (false) the flow of deliveries.
        active,
    }
    /// Options carried by `channel.flow-ok`.
    ChannelFlowOkOptions {
        /// Whether the flow is now active.
        active,
    }
    /// Options for the obsolete `access.request`.
    AccessRequestOptions {
        /// Exclusive access.
        exclusive,
        /// Check only.
        passive,
        /// Active access.
        active,
        /// Write access.
        write,
        /// Read access.
        read,
    }
    /// Options for `exchange.declare`.
    ExchangeDeclareOptions {
        /// Only check that the exchange exists (404 when it does not).
        passive,
        /// Survive a broker restart.
        durable,
        /// Delete the exchange when its last binding goes.
        auto_delete,
        /// Refuse direct publishes; reachable only through exchange-to-exchange bindings.
        internal,
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `exchange.delete`.
    ExchangeDeleteOptions {
        /// Refuse (406) when the exchange has bindings.
        if_unused,
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `exchange.bind`.
    ExchangeBindOptions {
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `exchange.unbind`.
    ExchangeUnbindOptions {
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `queue.declare`.
    QueueDeclareOptions {
        /// Only check that the queue exists (404 when it does not).
        passive,
        /// Survive a broker restart.
        durable,
        /// Owned by the declaring connection, deleted with it; 405 for other connections.
        exclusive,
        /// Delete the queue when its last consumer is cancelled.
        auto_delete,
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `queue.bind`.
    QueueBindOptions {
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `queue.purge`.
    QueuePurgeOptions {
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `queue.delete`.
    QueueDeleteOptions {
        /// Refuse (406) when the queue has consumers.
        if_unused,
        /// Refuse (406) when the queue holds messages.
        if_empty,
        /// Do not wait for the broker's answer.
        nowait,
    }
    /// Options for `confirm.select`.
    ConfirmSelectOptions {
        /// Do not wait for the broker's answer.
        nowait,
    }
}

impl QueueDeclareOptions {
    /// A durable queue (lapin's shorthand).
    #[must_use]
    pub fn durable() -> Self {
        Self {
            durable: true,
            ..Default::default()
        }
    }

    /// An exclusive queue (lapin's shorthand).
    #[must_use]
    pub fn exclusive() -> Self {
        Self {
            exclusive: true,
            ..Default::default()
        }
    }

    /// These options with `auto_delete` set.
    #[must_use]
    pub fn auto_delete(mut self) -> Self {
        self.auto_delete = true;
        self
    }

    /// These options with `passive` set.
    #[must_use]
    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_by_name_as_lapin_code_does() {
        let q = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        assert_eq!(q, QueueDeclareOptions::durable());
        assert_eq!(
            QueueDeclareOptions::exclusive().auto_delete().passive(),
            QueueDeclareOptions {
                passive: true,
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            }
        );
        let nack = BasicNackOptions {
            multiple: true,
            requeue: false,
        };
        assert!(nack.multiple && !nack.requeue);
        assert!(!BasicPublishOptions::default().mandatory);
    }
}
