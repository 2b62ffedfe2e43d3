//! The [`Publish`] value, [`Client::send`] and replies ([`Client::respond`],
//! [`Client::respond_with_headers`]).

use std::fmt::Display;

use bytes::Bytes;
use nats_proto::HeaderMap;

use crate::client::Client;
use crate::error::PublishError;
use crate::message::Message;
use crate::outbound::Payload;

/// A message to publish as a value: subject, payload, headers and reply subject, built step by
/// step and sent with [`Client::send`].
///
/// The fields are public so that another message model (an AMQP `BasicProperties`, say) can
/// be mapped onto it directly; the builder methods of the same names are the short form.
///
/// ```no_run
/// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::PublishError> {
/// use nats_client::Publish;
/// client
///     .send(Publish::new("orders.eu", "order 1").header("X-Priority", 5).reply("orders.done"))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Publish {
    /// The subject to publish to.
    pub subject: String,
    /// The payload.
    pub payload: Bytes,
    /// Headers, if any.
    pub headers: Option<HeaderMap>,
    /// A reply subject for the receiver to answer on, if any.
    pub reply: Option<String>,
}

impl Publish {
    /// A message to `subject` with `payload`, no headers, no reply subject.
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Publish {
            subject: subject.into(),
            payload: payload.into(),
            headers: None,
            reply: None,
        }
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: impl Into<Bytes>) -> Self {
        self.payload = payload.into();
        self
    }

    /// Sets all headers (replacing any added before).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Adds one header value (any displayable value: numbers, ids...).
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        self.headers
            .get_or_insert_with(HeaderMap::new)
            .append(name, value.to_string());
        self
    }

    /// Sets the reply subject.
    pub fn reply(mut self, reply: impl Into<String>) -> Self {
        self.reply = Some(reply.into());
        self
    }
}

impl Client {
    /// From this size on, a payload handed over as `Bytes` ([`Client::publish_bytes`],
    /// [`Client::send`]) is written from where it is rather than copied into the write buffer.
    pub const SHARED_PAYLOAD_MIN: usize = crate::outbound::SHARE_PAYLOADS_FROM;

    /// Publishes a [`Publish`] value: as [`Client::publish_message`] with its parts. A large
    /// payload is not copied (see [`Client::publish_bytes`]).
    pub async fn send(&self, message: Publish) -> Result<(), PublishError> {
        self.publish_payload(
            &message.subject,
            message.reply.as_deref(),
            message.headers.as_ref(),
            Payload::Shared(&message.payload),
        )
        .await
    }

    /// Publishes a payload the client may keep: as [`Client::publish`], but a large payload
    /// ([`Client::SHARED_PAYLOAD_MIN`] and more) is not copied into the write buffer. It is
    /// held by reference count until written, and written from where it is (vectored I/O).
    /// Small ones are copied as with [`Client::publish`]; for them a borrowed slice is the
    /// cheaper call (a `Bytes` clone only adds its reference count).
    ///
    /// ```no_run
    /// # async fn demo(client: nats_client::Client) -> Result<(), nats_client::PublishError> {
    /// let image = bytes::Bytes::from(vec![0u8; 64 * 1024]);
    /// client.publish_bytes("images.new", image.clone()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish_bytes(
        &self,
        subject: impl AsRef<str>,
        payload: impl Into<Bytes>,
    ) -> Result<(), PublishError> {
        let payload = payload.into();
        self.publish_payload(subject.as_ref(), None, None, Payload::Shared(&payload))
            .await
    }

    /// Publishes a reply to a received message (to its reply subject).
    ///
    /// Fails with [`PublishError::NoReplySubject`] when the message has none (it was
    /// published, not sent as a request).
    pub async fn respond(
        &self,
        request: &Message,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), PublishError> {
        let reply = reply_of(request)?;
        self.publish_message(reply, None, None, payload.as_ref())
            .await
    }

    /// Publishes a reply with headers to a received message.
    pub async fn respond_with_headers(
        &self,
        request: &Message,
        headers: &HeaderMap,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), PublishError> {
        let reply = reply_of(request)?;
        self.publish_message(reply, None, Some(headers), payload.as_ref())
            .await
    }
}

fn reply_of(request: &Message) -> Result<&str, PublishError> {
    request
        .reply
        .as_deref()
        .ok_or_else(|| PublishError::NoReplySubject {
            subject: request.subject.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_values_build() {
        let p = Publish::new("a", "x")
            .header("K", 1.5)
            .reply("r.1")
            .subject("b")
            .payload(String::from("y"));
        assert_eq!(p.subject, "b");
        assert_eq!(&p.payload[..], b"y");
        assert_eq!(p.reply.as_deref(), Some("r.1"));
        assert_eq!(p.headers.as_ref().unwrap().get("K"), Some("1.5"));
    }

    #[test]
    fn no_reply_subject_is_its_own_error() {
        let msg = Message {
            subject: "plain.pub".into(),
            reply: None,
            payload: Bytes::new(),
            headers: None,
            status: None,
            description: None,
            length: 0,
        };
        assert_eq!(
            reply_of(&msg),
            Err(PublishError::NoReplySubject {
                subject: "plain.pub".into()
            })
        );
    }
}
