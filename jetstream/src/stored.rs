//! Reading and deleting single stored messages: `$JS.API.STREAM.MSG.GET` (through the stream
//! leader), `$JS.API.DIRECT.GET` (any replica, when the stream has `allow_direct`), and
//! `$JS.API.STREAM.MSG.DELETE`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use nats_client::{HeaderMap, RequestError, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::context::{Context, encode_body};
use crate::error::{ApiError, ErrorCode, JetStreamError, check_name};
use crate::models::timestamp;
use crate::stream::Stream;

/// A message as stored in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The subject it was published to.
    pub subject: String,
    /// Its stream sequence.
    pub sequence: u64,
    /// Its headers, if it had any (for a direct get, without the `Nats-Stream`,
    /// `Nats-Subject`, `Nats-Sequence` and `Nats-Time-Stamp` fields the server adds).
    pub headers: Option<HeaderMap>,
    /// The payload.
    pub payload: Bytes,
    /// When it was stored.
    pub time: Option<OffsetDateTime>,
}

#[derive(Serialize)]
struct GetRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(rename = "last_by_subj", skip_serializing_if = "Option::is_none")]
    last_by_subject: Option<&'a str>,
}

#[derive(Deserialize)]
struct GetResponse {
    message: RawStored,
}

#[derive(Deserialize)]
struct RawStored {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    hdrs: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default, with = "timestamp")]
    time: Option<OffsetDateTime>,
}

#[derive(Serialize)]
struct DeleteRequest {
    seq: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_erase: bool,
}

#[derive(Deserialize)]
struct DeleteResponse {
    #[serde(default)]
    success: bool,
}

impl RawStored {
    fn decode(self, subject: &str) -> Result<StoredMessage, JetStreamError> {
        let b64 = |field: &str, text: Option<String>| -> Result<Bytes, JetStreamError> {
            match text {
                None => Ok(Bytes::new()),
                Some(t) => STANDARD
                    .decode(t.as_bytes())
                    .map(Bytes::from)
                    .map_err(|e| JetStreamError::invalid(subject, format!("{field}: {e}"))),
            }
        };
        let hdrs = b64("hdrs", self.hdrs)?;
        let headers = if hdrs.is_empty() {
            None
        } else {
            let block = nats_client::nats_proto::headers::parse_block(&hdrs)
                .map_err(|e| JetStreamError::invalid(subject, format!("hdrs: {e}")))?;
            Some(block.headers)
        };
        Ok(StoredMessage {
            subject: self.subject,
            sequence: self.seq,
            headers,
            payload: b64("data", self.data)?,
            time: self.time,
        })
    }
}

/// Headers the server adds to a direct get reply.
const DIRECT_HEADERS: [&str; 6] = [
    "Nats-Stream",
    "Nats-Subject",
    "Nats-Sequence",
    "Nats-Time-Stamp",
    "Nats-Num-Pending",
    "Nats-Last-Sequence",
];

impl Context {
    /// Loads the message with stream sequence `seq` through the stream leader
    /// (`$JS.API.STREAM.MSG.GET.<stream>`). A missing message is
    /// [`ErrorCode::NO_MESSAGE_FOUND`].
    pub async fn get_message(
        &self,
        stream: &str,
        seq: u64,
    ) -> Result<StoredMessage, JetStreamError> {
        self.get_stored(
            stream,
            GetRequest {
                seq: Some(seq),
                last_by_subject: None,
            },
        )
        .await
    }

    /// Loads the last message stored on `subject` (wildcards allowed).
    pub async fn get_last_message(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<StoredMessage, JetStreamError> {
        self.get_stored(
            stream,
            GetRequest {
                seq: None,
                last_by_subject: Some(subject),
            },
        )
        .await
    }

    async fn get_stored(
        &self,
        stream: &str,
        req: GetRequest<'_>,
    ) -> Result<StoredMessage, JetStreamError> {
        check_name("stream", stream)?;
        let suffix = format!("STREAM.MSG.GET.{stream}");
        let r: GetResponse = self.request(&suffix, &req).await?;
        r.message.decode(&self.api_subject(&suffix))
    }

    /// Loads message `seq` from any replica (`$JS.API.DIRECT.GET.<stream>`); the stream must
    /// have `allow_direct`, else this fails with [`JetStreamError::DirectGetUnavailable`].
    pub async fn direct_get(
        &self,
        stream: &str,
        seq: u64,
    ) -> Result<StoredMessage, JetStreamError> {
        self.direct(
            stream,
            None,
            &GetRequest {
                seq: Some(seq),
                last_by_subject: None,
            },
        )
        .await
    }

    /// Loads the last message on `subject` from any replica. A literal subject goes in the
    /// request subject (`$JS.API.DIRECT.GET.<stream>.<subject>`, which permissions can
    /// target); a wildcard goes in the body.
    pub async fn direct_get_last(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<StoredMessage, JetStreamError> {
        if nats_client::nats_proto::subject::validate_subject(subject).is_ok() {
            self.direct(stream, Some(subject), &()).await
        } else {
            self.direct(
                stream,
                None,
                &GetRequest {
                    seq: None,
                    last_by_subject: Some(subject),
                },
            )
            .await
        }
    }

    async fn direct(
        &self,
        stream: &str,
        last_subject: Option<&str>,
        body: &(impl Serialize + ?Sized),
    ) -> Result<StoredMessage, JetStreamError> {
        check_name("stream", stream)?;
        let subject = match last_subject {
            Some(s) => self.api_subject(&format!("DIRECT.GET.{stream}.{s}")),
            None => self.api_subject(&format!("DIRECT.GET.{stream}")),
        };
        let payload = encode_body(&subject, body)?;
        let msg = match self
            .client
            .request_with(&subject, None, &payload, self.timeout)
            .await
        {
            Err(RequestError::NoResponders { .. }) => {
                return Err(JetStreamError::DirectGetUnavailable {
                    stream: stream.to_owned(),
                });
            }
            other => other?,
        };
        decode_direct(&subject, msg)
    }

    /// Deletes message `seq` (`$JS.API.STREAM.MSG.DELETE.<stream>`), marking it deleted without
    /// overwriting its bytes on disk.
    pub async fn delete_message(&self, stream: &str, seq: u64) -> Result<bool, JetStreamError> {
        self.remove_message(stream, seq, true).await
    }

    /// Deletes message `seq` and overwrites its bytes on disk (slower).
    pub async fn erase_message(&self, stream: &str, seq: u64) -> Result<bool, JetStreamError> {
        self.remove_message(stream, seq, false).await
    }

    async fn remove_message(
        &self,
        stream: &str,
        seq: u64,
        no_erase: bool,
    ) -> Result<bool, JetStreamError> {
        check_name("stream", stream)?;
        let r: DeleteResponse = self
            .request(
                &format!("STREAM.MSG.DELETE.{stream}"),
                &DeleteRequest { seq, no_erase },
            )
            .await?;
        Ok(r.success)
    }
}

impl Stream {
    /// Loads message `seq` through the stream leader; see [`Context::get_message`].
    pub async fn get_message(&self, seq: u64) -> Result<StoredMessage, JetStreamError> {
        self.context.get_message(&self.name, seq).await
    }

    /// Loads the last message on `subject`; see [`Context::get_last_message`].
    pub async fn get_last_message(&self, subject: &str) -> Result<StoredMessage, JetStreamError> {
        self.context.get_last_message(&self.name, subject).await
    }

    /// Loads message `seq` from any replica; see [`Context::direct_get`].
    pub async fn direct_get(&self, seq: u64) -> Result<StoredMessage, JetStreamError> {
        self.context.direct_get(&self.name, seq).await
    }

    /// Loads the last message on `subject` from any replica; see [`Context::direct_get_last`].
    pub async fn direct_get_last(&self, subject: &str) -> Result<StoredMessage, JetStreamError> {
        self.context.direct_get_last(&self.name, subject).await
    }

    /// Deletes message `seq`; see [`Context::delete_message`].
    pub async fn delete_message(&self, seq: u64) -> Result<bool, JetStreamError> {
        self.context.delete_message(&self.name, seq).await
    }
}

/// Decodes one direct get reply: a 404 is [`ErrorCode::NO_MESSAGE_FOUND`], other statuses are
/// API errors, and the `Nats-*` headers the server adds become the [`StoredMessage`] fields.
pub(crate) fn decode_direct(
    subject: &str,
    msg: nats_client::Message,
) -> Result<StoredMessage, JetStreamError> {
    match msg.status {
        None => {}
        Some(StatusCode::NOT_FOUND) => {
            return Err(JetStreamError::Api(ApiError {
                code: 404,
                err_code: ErrorCode::NO_MESSAGE_FOUND,
                description: msg
                    .description
                    .as_deref()
                    .unwrap_or("no message found")
                    .to_owned(),
            }));
        }
        Some(code) => {
            return Err(JetStreamError::Api(ApiError {
                code: code.as_u16(),
                err_code: ErrorCode(0),
                description: msg.description.as_deref().unwrap_or_default().to_owned(),
            }));
        }
    }
    let mut headers = msg
        .headers
        .ok_or_else(|| JetStreamError::invalid(subject, "direct get reply without headers"))?;
    let field = |h: &HeaderMap, name: &str| h.get(name).map(str::to_owned);
    let sequence = field(&headers, "Nats-Sequence")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JetStreamError::invalid(subject, "missing or bad Nats-Sequence"))?;
    let stored_subject = field(&headers, "Nats-Subject")
        .ok_or_else(|| JetStreamError::invalid(subject, "missing Nats-Subject"))?;
    let time = field(&headers, "Nats-Time-Stamp")
        .as_deref()
        .and_then(timestamp::parse);
    for name in DIRECT_HEADERS {
        headers.remove(name);
    }
    Ok(StoredMessage {
        subject: stored_subject,
        sequence,
        headers: (!headers.is_empty()).then_some(headers),
        payload: msg.payload,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_api_get_reply() {
        let hdrs = STANDARD.encode("NATS/1.0\r\nX-Tag: a\r\n\r\n");
        let data = STANDARD.encode("hello");
        let json = format!(
            r#"{{"message":{{"subject":"o.1","seq":4,"hdrs":"{hdrs}","data":"{data}","time":"2024-01-01T00:00:00Z"}}}}"#
        );
        let r: GetResponse = serde_json::from_str(&json).unwrap();
        let m = r.message.decode("s").unwrap();
        assert_eq!(m.sequence, 4);
        assert_eq!(&m.payload[..], b"hello");
        assert_eq!(m.headers.unwrap().get("X-Tag"), Some("a"));
        assert!(m.time.is_some());
        let bad: GetResponse =
            serde_json::from_str(r#"{"message":{"subject":"o","seq":1,"data":"***"}}"#).unwrap();
        assert!(bad.message.decode("s").is_err());
    }
}
