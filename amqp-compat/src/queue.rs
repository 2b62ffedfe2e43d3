//! [`Queue`]: what `queue_declare` returns, lapin's type.

use crate::types::{ConsumerCount, MessageCount, ShortString};

/// A declared queue: its name (server-generated for an empty declared name) and its counts at
/// declare time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    name: ShortString,
    message_count: MessageCount,
    consumer_count: ConsumerCount,
}

impl Queue {
    pub(crate) fn new(
        name: ShortString,
        message_count: MessageCount,
        consumer_count: ConsumerCount,
    ) -> Self {
        Self {
            name,
            message_count,
            consumer_count,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &ShortString {
        &self.name
    }

    /// Messages ready in the queue when it was declared.
    pub fn message_count(&self) -> MessageCount {
        self.message_count
    }

    /// Consumers attached when it was declared.
    pub fn consumer_count(&self) -> ConsumerCount {
        self.consumer_count
    }
}
