//! Direct gets beyond one sequence or one subject's last message: the next message on a
//! subject from a sequence (`next_by_subj`), and batches (`batch`, `multi_last`), answered by
//! any replica of a stream with `allow_direct` (server 2.11+ for batches).

use futures_util::StreamExt;
use nats_client::StatusCode;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::context::{Context, encode_body};
use crate::error::{ErrorCode, JetStreamError, check_name};
use crate::models::timestamp;
use crate::stored::{StoredMessage, decode_direct};
use crate::stream::Stream;

/// A direct get request (`$JS.API.DIRECT.GET.<stream>`) for [`Context::direct_get_batch`].
///
/// ```
/// let next_three = jetstream::DirectGet::next("orders.eu", 10).batch(3);
/// assert_eq!(
///     serde_json::to_string(&next_three).unwrap(),
///     r#"{"seq":10,"next_by_subj":"orders.eu","batch":3}"#
/// );
/// let latest = jetstream::DirectGet::multi_last(["$KV.b.a", "$KV.b.c"]);
/// assert_eq!(
///     serde_json::to_string(&latest).unwrap(),
///     r#"{"multi_last":["$KV.b.a","$KV.b.c"]}"#
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirectGet {
    /// Start at (or get) this stream sequence.
    #[serde(rename = "seq", skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// The first message on this subject (wildcards allowed) at or after `sequence`.
    #[serde(rename = "next_by_subj", skip_serializing_if = "Option::is_none")]
    pub next_by_subject: Option<String>,
    /// Start at the first message stored at or after this time.
    #[serde(
        with = "timestamp",
        skip_serializing_if = "Option::is_none",
        rename = "start_time"
    )]
    pub start_time: Option<OffsetDateTime>,
    /// Up to this many messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Up to about this many bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// The last message of each of these subjects (wildcards allowed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub multi_last: Vec<String>,
    /// With `multi_last`: as of this sequence.
    #[serde(rename = "up_to_seq", skip_serializing_if = "Option::is_none")]
    pub up_to_sequence: Option<u64>,
}

impl DirectGet {
    /// The first message on `subject` at or after sequence `from`.
    pub fn next(subject: impl Into<String>, from: u64) -> DirectGet {
        DirectGet {
            sequence: Some(from),
            next_by_subject: Some(subject.into()),
            ..DirectGet::default()
        }
    }

    /// The last message of each of `subjects`.
    pub fn multi_last<S: Into<String>>(subjects: impl IntoIterator<Item = S>) -> DirectGet {
        DirectGet {
            multi_last: subjects.into_iter().map(Into::into).collect(),
            ..DirectGet::default()
        }
    }

    /// Up to `n` messages.
    pub fn batch(mut self, n: usize) -> DirectGet {
        self.batch = Some(n);
        self
    }
}

impl Context {
    /// The first message on `subject` (wildcards allowed) with a sequence at or after `from`,
    /// from any replica. None left is [`ErrorCode::NO_MESSAGE_FOUND`].
    pub async fn direct_get_next(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> Result<StoredMessage, JetStreamError> {
        check_name("stream", stream)?;
        let api = self.api_subject(&format!("DIRECT.GET.{stream}"));
        let payload = encode_body(&api, &DirectGet::next(subject, from))?;
        let msg = match self
            .client
            .request_with(&api, None, &payload, self.timeout)
            .await
        {
            Err(nats_client::RequestError::NoResponders { .. }) => {
                return Err(JetStreamError::DirectGetUnavailable {
                    stream: stream.to_owned(),
                });
            }
            other => other?,
        };
        decode_direct(&api, msg)
    }

    /// Several messages in one request (`batch` and/or `multi_last`), in stream order. An
    /// empty result when nothing matches. Needs server 2.11 or newer; without `batch` or
    /// `multi_last` the server answers with one message.
    pub async fn direct_get_batch(
        &self,
        stream: &str,
        request: &DirectGet,
    ) -> Result<Vec<StoredMessage>, JetStreamError> {
        check_name("stream", stream)?;
        let api = self.api_subject(&format!("DIRECT.GET.{stream}"));
        let payload = encode_body(&api, request)?;
        let inbox = self.client.new_inbox();
        let mut sub = self.client.subscribe(inbox.clone()).await?;
        self.client
            .publish_message(&api, Some(&inbox), None, &payload)
            .await?;
        let single = request.batch.is_none() && request.multi_last.is_empty();
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::new();
        loop {
            let msg = match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => return Err(JetStreamError::Client(nats_client::ClientError::Closed)),
                Err(_) => {
                    return Err(JetStreamError::Request(
                        nats_client::RequestError::TimedOut {
                            subject: api,
                            timeout: self.timeout,
                        },
                    ));
                }
            };
            match msg.status.map(StatusCode::as_u16) {
                // End of batch.
                Some(204) => return Ok(out),
                Some(404) if out.is_empty() => return Ok(out),
                Some(503) => {
                    return Err(JetStreamError::DirectGetUnavailable {
                        stream: stream.to_owned(),
                    });
                }
                _ => {}
            }
            match decode_direct(&api, msg) {
                Ok(m) => out.push(m),
                Err(e) if e.is_api(ErrorCode::NO_MESSAGE_FOUND) => return Ok(out),
                Err(e) => return Err(e),
            }
            if single {
                return Ok(out);
            }
        }
    }
}

impl Stream {
    /// The first message on `subject` at or after `from`; see [`Context::direct_get_next`].
    pub async fn direct_get_next(
        &self,
        subject: &str,
        from: u64,
    ) -> Result<StoredMessage, JetStreamError> {
        self.context
            .direct_get_next(&self.name, subject, from)
            .await
    }

    /// Several messages in one request; see [`Context::direct_get_batch`].
    pub async fn direct_get_batch(
        &self,
        request: &DirectGet,
    ) -> Result<Vec<StoredMessage>, JetStreamError> {
        self.context.direct_get_batch(&self.name, request).await
    }
}
