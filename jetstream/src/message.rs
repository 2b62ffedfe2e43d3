//! Messages delivered by a consumer: [`JsMessage`] with its acknowledgements, and the delivery
//! metadata ([`MessageInfo`]) carried in its reply subject.

use std::ops::Deref;
use std::time::Duration;

use nats_client::{Client, Message};
use time::OffsetDateTime;

use crate::error::JetStreamError;
use crate::models::nanos;

/// An acknowledgement, as sent to a message's reply subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckKind {
    /// `+ACK`: processed.
    Ack,
    /// `-NAK`: redeliver, now or after the delay.
    Nak(Option<Duration>),
    /// `+WPI`: still working on it; restarts the ack wait.
    Progress,
    /// `+TERM`: never redeliver (with an optional reason for the advisory).
    Term(Option<String>),
}

impl AckKind {
    /// The payload sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jetstream::AckKind;
    /// assert_eq!(AckKind::Nak(Some(Duration::from_secs(1))).payload(), br#"-NAK {"delay":1000000000}"#);
    /// assert_eq!(AckKind::Term(Some("bad input".into())).payload(), b"+TERM bad input");
    /// ```
    pub fn payload(&self) -> Vec<u8> {
        match self {
            AckKind::Ack => b"+ACK".to_vec(),
            AckKind::Nak(None) => b"-NAK".to_vec(),
            AckKind::Nak(Some(d)) => {
                format!("-NAK {{\"delay\":{}}}", nanos::to_nanos(*d)).into_bytes()
            }
            AckKind::Progress => b"+WPI".to_vec(),
            AckKind::Term(None) => b"+TERM".to_vec(),
            AckKind::Term(Some(reason)) => format!("+TERM {reason}").into_bytes(),
        }
    }
}

/// A message delivered by a JetStream consumer. Derefs to the [`Message`].
#[derive(Debug, Clone)]
pub struct JsMessage {
    message: Message,
    client: Client,
    ack_timeout: Duration,
}

impl Deref for JsMessage {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.message
    }
}

impl JsMessage {
    /// Wraps a message received from a consumer; acks go out on `client`, and
    /// [`double_ack`](JsMessage::double_ack) waits up to `ack_timeout`.
    pub fn new(message: Message, client: Client, ack_timeout: Duration) -> JsMessage {
        JsMessage {
            message,
            client,
            ack_timeout,
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message, without the ability to acknowledge it.
    pub fn into_message(self) -> Message {
        self.message
    }

    /// Delivery metadata from the reply subject.
    pub fn info(&self) -> Result<MessageInfo<'_>, JetStreamError> {
        MessageInfo::parse(self.message.reply.as_deref().unwrap_or_default())
    }

    fn reply(&self) -> Result<&str, JetStreamError> {
        match self.message.reply.as_deref() {
            Some(r) if r.starts_with("$JS.ACK.") => Ok(r),
            Some(r) => Err(JetStreamError::NotJetStreamMessage {
                subject: r.to_owned(),
                reason: "does not start with $JS.ACK.",
            }),
            None => Err(JetStreamError::NotJetStreamMessage {
                subject: self.message.subject.to_string(),
                reason: "the message has no reply subject",
            }),
        }
    }

    /// Sends an acknowledgement of any kind (fire and forget).
    pub async fn ack_with(&self, kind: AckKind) -> Result<(), JetStreamError> {
        let reply = self.reply()?;
        self.client.publish(reply, kind.payload()).await?;
        Ok(())
    }

    /// Acknowledges: the message is done. Fire and forget; see
    /// [`double_ack`](JsMessage::double_ack) to know the server has it.
    pub async fn ack(&self) -> Result<(), JetStreamError> {
        let reply = self.reply()?;
        self.client.publish(reply, b"+ACK").await?;
        Ok(())
    }

    /// Acknowledges and waits for the server to confirm it recorded the ack, so the message
    /// will not be redelivered (unless the confirmation times out).
    pub async fn double_ack(&self) -> Result<(), JetStreamError> {
        let reply = self.reply()?;
        self.client
            .request_with(reply, None, b"+ACK", self.ack_timeout)
            .await?;
        Ok(())
    }

    /// Negative ack: redeliver now.
    pub async fn nak(&self) -> Result<(), JetStreamError> {
        self.ack_with(AckKind::Nak(None)).await
    }

    /// Negative ack: redeliver after `delay`.
    pub async fn nak_with_delay(&self, delay: Duration) -> Result<(), JetStreamError> {
        self.ack_with(AckKind::Nak(Some(delay))).await
    }

    /// Work in progress: restart the ack wait.
    pub async fn in_progress(&self) -> Result<(), JetStreamError> {
        self.ack_with(AckKind::Progress).await
    }

    /// Terminate: never redeliver. Raises a `MSG_TERMINATED` advisory (see
    /// [`DeadLetter`](crate::DeadLetter)).
    pub async fn term(&self) -> Result<(), JetStreamError> {
        self.ack_with(AckKind::Term(None)).await
    }

    /// Terminate with a reason, which the `MSG_TERMINATED` advisory carries.
    pub async fn term_with_reason(&self, reason: &str) -> Result<(), JetStreamError> {
        self.ack_with(AckKind::Term(Some(reason.to_owned()))).await
    }
}

/// Delivery metadata of a consumer message, parsed from its reply subject:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>`
/// or the newer `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream
/// seq>.<consumer seq>.<timestamp>.<pending>.<token>`.
///
/// ```
/// let info = jetstream::MessageInfo::parse(
///     "$JS.ACK.hub.ACCHASH.ORDERS.workers.2.41.17.1700000000000000000.5.xyz",
/// ).unwrap();
/// assert_eq!(info.domain, Some("hub"));
/// assert_eq!((info.stream, info.consumer), ("ORDERS", "workers"));
/// assert_eq!((info.delivered, info.stream_sequence, info.consumer_sequence), (2, 41, 17));
/// assert_eq!(info.pending, 5);
/// assert!(jetstream::MessageInfo::parse("$JS.ACK.S.C.x.1.1.1.1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo<'a> {
    /// The JetStream domain, if the subject names one (`_` means none).
    pub domain: Option<&'a str>,
    /// The account hash, in the newer form.
    pub account_hash: Option<&'a str>,
    /// The stream.
    pub stream: &'a str,
    /// The consumer.
    pub consumer: &'a str,
    /// How many times this message has been delivered (1 on the first delivery).
    pub delivered: u64,
    /// The stream sequence.
    pub stream_sequence: u64,
    /// The consumer sequence.
    pub consumer_sequence: u64,
    /// When the message was stored, nanoseconds since the Unix epoch.
    pub timestamp_nanos: i64,
    /// Messages still pending for the consumer after this one.
    pub pending: u64,
}

impl<'a> MessageInfo<'a> {
    /// Parses an ack subject. Never panics; a subject of another shape is
    /// [`JetStreamError::NotJetStreamMessage`].
    pub fn parse(subject: &'a str) -> Result<MessageInfo<'a>, JetStreamError> {
        let fail = |reason| JetStreamError::NotJetStreamMessage {
            subject: subject.to_owned(),
            reason,
        };
        let mut tokens = [""; 11];
        let mut count = 0;
        for t in subject.split('.') {
            if count < tokens.len() {
                tokens[count] = t;
            }
            count += 1;
        }
        if tokens[0] != "$JS" || tokens[1] != "ACK" {
            return Err(fail("does not start with $JS.ACK."));
        }
        let (domain, account_hash, rest) = match count {
            9 => (None, None, &tokens[2..9]),
            n if n >= 11 => {
                let domain = Some(tokens[2]).filter(|d| !d.is_empty() && *d != "_");
                (domain, Some(tokens[3]), &tokens[4..11])
            }
            _ => return Err(fail("expected 9 tokens, or 11 or more")),
        };
        if rest.iter().any(|t| t.is_empty()) {
            return Err(fail("empty token"));
        }
        let num = |t: &str| {
            t.parse::<u64>()
                .map_err(|_| fail("a number token is not a number"))
        };
        Ok(MessageInfo {
            domain,
            account_hash,
            stream: rest[0],
            consumer: rest[1],
            delivered: num(rest[2])?,
            stream_sequence: num(rest[3])?,
            consumer_sequence: num(rest[4])?,
            timestamp_nanos: rest[5]
                .parse()
                .map_err(|_| fail("the timestamp is not a number"))?,
            pending: num(rest[6])?,
        })
    }

    /// When the message was stored.
    pub fn published(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.timestamp_nanos)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_form() {
        let i = MessageInfo::parse("$JS.ACK.ORDERS.w.1.10.3.1700000000123456789.0").unwrap();
        assert_eq!(i.domain, None);
        assert_eq!(i.account_hash, None);
        assert_eq!(i.stream, "ORDERS");
        assert_eq!(i.stream_sequence, 10);
        assert_eq!(i.published().unwrap().nanosecond(), 123_456_789);
    }

    #[test]
    fn new_form_without_domain() {
        let i = MessageInfo::parse("$JS.ACK._.HASH.S.C.3.4.5.6.7.rnd").unwrap();
        assert_eq!(i.domain, None);
        assert_eq!(i.account_hash, Some("HASH"));
        assert_eq!((i.delivered, i.pending), (3, 7));
        // 11 tokens (no trailing random token) is accepted too.
        assert!(MessageInfo::parse("$JS.ACK.d.H.S.C.3.4.5.6.7").is_ok());
    }

    #[test]
    fn malformed_subjects_are_errors_not_panics() {
        for s in [
            "",
            ".",
            "$JS.ACK",
            "$JS.ACK.",
            "$JS.ACK.S.C.1.2.3.4",
            "$JS.ACK.S.C.1.2.3.4.5.6",
            "$JS.ACK.S.C.-1.2.3.4.5",
            "$JS.ACK.S..1.2.3.4.5",
            "$JS.NAK.S.C.1.2.3.4.5",
            "$JS.ACK.S.C.1.2.3.x.5",
            "$JS.ACK.d.h.S.C.1.2.3.4.99999999999999999999999",
            "...........",
        ] {
            assert!(MessageInfo::parse(s).is_err(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = MessageInfo::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_ack_like_subjects(tokens in proptest::collection::vec("[0-9a-z_-]{0,6}|\\PC{0,4}", 0..14)) {
            let s = format!("$JS.ACK.{}", tokens.join("."));
            let _ = MessageInfo::parse(&s);
        }

        #[test]
        fn well_formed_subjects_roundtrip(d in 1u64..1000, s in 1u64.., c in 1u64.., ts in 0i64.., p in 0u64..) {
            let subject = format!("$JS.ACK.ORDERS.w.{d}.{s}.{c}.{ts}.{p}");
            let i = MessageInfo::parse(&subject).unwrap();
            proptest::prop_assert_eq!((i.delivered, i.stream_sequence, i.consumer_sequence, i.timestamp_nanos, i.pending), (d, s, c, ts, p));
        }
    }

    #[test]
    fn ack_payloads() {
        assert_eq!(AckKind::Ack.payload(), b"+ACK");
        assert_eq!(AckKind::Nak(None).payload(), b"-NAK");
        assert_eq!(AckKind::Progress.payload(), b"+WPI");
        assert_eq!(AckKind::Term(None).payload(), b"+TERM");
    }
}
