//! [`Confirmation`]: what a publisher confirm resolved to, lapin's enum.

use crate::message::BasicReturnMessage;

/// The broker's answer to a publish on a channel in confirm mode.
#[derive(Debug, PartialEq)]
pub enum Confirmation {
    /// Stored (every copy). Carries the message when it was mandatory and unroutable: RabbitMQ
    /// returns it (312) and then acks.
    Ack(Option<BasicReturnMessage>),
    /// Refused (e.g. a full queue with `x-overflow: reject-publish`).
    Nack(Option<BasicReturnMessage>),
    /// The channel is not in confirm mode.
    NotRequested,
}

impl Confirmation {
    /// The returned message, if any.
    pub fn take_message(self) -> Option<BasicReturnMessage> {
        match self {
            Self::Ack(m) | Self::Nack(m) => m,
            Self::NotRequested => None,
        }
    }

    /// True for [`Confirmation::Ack`].
    pub fn is_ack(&self) -> bool {
        matches!(self, Self::Ack(_))
    }

    /// True for [`Confirmation::Nack`].
    pub fn is_nack(&self) -> bool {
        matches!(self, Self::Nack(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Delivery;

    #[test]
    fn a_returned_message_comes_out_of_an_ack() {
        let ret = BasicReturnMessage {
            delivery: Delivery::mock(0, "x".into(), "k".into(), false, b"p".to_vec()),
            reply_code: 312,
            reply_text: "NO_ROUTE".into(),
        };
        let c = Confirmation::Ack(Some(ret));
        assert!(c.is_ack() && !c.is_nack());
        let m = c.take_message().expect("returned message");
        assert_eq!(m.reply_code, 312);
        assert_eq!(m.data, b"p");
        assert!(Confirmation::NotRequested.take_message().is_none());
    }
}
