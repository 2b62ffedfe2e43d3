//! [`Unacked`]: a channel's delivery tags and unacknowledged deliveries, with RabbitMQ's rules
//! for `basic.ack`/`nack`/`reject` (a pure value; the NATS-backed channel holds one).
//!
//! Tags start at 1 and grow by one per delivery on the channel (`basic_get` and `no_ack`
//! deliveries included), never reused. Settling a tag that is not outstanding is 406
//! PRECONDITION_FAILED "unknown delivery tag N" (it closes the channel); `multiple` settles every
//! outstanding tag up to and including N, and N itself must be outstanding; tag 0 with
//! `multiple` settles everything outstanding.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Outstanding deliveries of one channel, each with the caller's handle `T` (e.g. the
/// JetStream ack subject).
#[derive(Clone, Debug)]
pub struct Unacked<T> {
    last_tag: u64,
    pending: BTreeMap<u64, T>,
}

impl<T> Default for Unacked<T> {
    fn default() -> Self {
        Self {
            last_tag: 0,
            pending: BTreeMap::new(),
        }
    }
}

impl<T> Unacked<T> {
    /// An empty channel.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tag for a delivery that needs no ack (`no_ack`): it is used up, not kept.
    pub fn next_tag(&mut self) -> u64 {
        self.last_tag += 1;
        self.last_tag
    }

    /// The tag the next delivery will get, without using it up (RabbitMQ gives it to direct
    /// replies).
    pub fn peek_next_tag(&self) -> u64 {
        self.last_tag + 1
    }

    /// Records a delivery that must be settled; returns its tag.
    pub fn deliver(&mut self, handle: T) -> u64 {
        let tag = self.next_tag();
        self.pending.insert(tag, handle);
        tag
    }

    /// Takes what `basic.ack`/`nack(tag, multiple)` (or `reject`, with `multiple = false`)
    /// settles, oldest first; 406 when the tag is not outstanding (nothing is taken then).
    pub fn settle(&mut self, tag: u64, multiple: bool) -> Result<Vec<(u64, T)>> {
        if multiple && tag == 0 {
            return Ok(std::mem::take(&mut self.pending).into_iter().collect());
        }
        if !self.pending.contains_key(&tag) {
            return Err(Error::precondition_failed(format!(
                "unknown delivery tag {tag}"
            )));
        }
        if !multiple {
            return Ok(self
                .pending
                .remove(&tag)
                .map(|h| (tag, h))
                .into_iter()
                .collect());
        }
        let rest = self.pending.split_off(&(tag + 1));
        let settled = std::mem::replace(&mut self.pending, rest);
        Ok(settled.into_iter().collect())
    }

    /// Everything outstanding, oldest first: what returns to the queues when the channel closes.
    pub fn take_all(&mut self) -> Vec<(u64, T)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    /// How many deliveries are outstanding (what prefetch bounds).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags<T>(v: &[(u64, T)]) -> Vec<u64> {
        v.iter().map(|(t, _)| *t).collect()
    }

    #[test]
    fn rabbitmq_ack_rules() {
        let mut u = Unacked::new();
        for h in ["a", "b", "c", "d", "e"] {
            u.deliver(h);
        }
        assert_eq!(u.next_tag(), 6, "no_ack deliveries use tags too");
        assert_eq!(tags(&u.settle(2, false).unwrap()), [2]);
        assert_eq!(u.settle(2, false).unwrap_err().reply_code(), Some(406));
        // multiple up to an acked tag is refused, and takes nothing.
        assert_eq!(u.settle(2, true).unwrap_err().reply_code(), Some(406));
        assert_eq!(u.len(), 4);
        assert_eq!(tags(&u.settle(4, true).unwrap()), [1, 3, 4]);
        assert_eq!(
            u.settle(6, false).unwrap_err().reply_code(),
            Some(406),
            "no_ack tag"
        );
        assert_eq!(u.settle(0, false).unwrap_err().reply_code(), Some(406));
        assert_eq!(u.deliver("f"), 7);
        assert_eq!(tags(&u.settle(0, true).unwrap()), [5, 7]);
        assert!(u.is_empty());
        u.deliver("g");
        assert_eq!(u.take_all().len(), 1);
        assert!(u.settle(0, true).unwrap().is_empty());
    }
}
