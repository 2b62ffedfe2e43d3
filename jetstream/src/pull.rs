//! Pulling from a consumer: the pull request, what the server's status messages mean, and
//! the one-shot [`Consumer::fetch`] (the continuous pull is in [`crate::consume`]).

use std::time::Duration;

use futures_util::StreamExt;
use nats_client::{Message, StatusCode};
use serde::Serialize;
use tokio::time::Instant;

use crate::consumer::Consumer;
use crate::error::JetStreamError;
use crate::message::JsMessage;
use crate::models::{PriorityPolicy, nanos};
use crate::priority::{PriorityGroup, PullPriority};

/// How long past `expires` a fetch waits for the server's `408` before giving up on its own.
pub(crate) const EXPIRY_GRACE: Duration = Duration::from_secs(1);

/// A pull request (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`).
#[derive(Debug, Serialize)]
pub(crate) struct PullRequest {
    pub(crate) batch: usize,
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub(crate) expires: Duration,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) max_bytes: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) no_wait: bool,
    #[serde(with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub(crate) idle_heartbeat: Duration,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) priority: Option<PullPriority>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Options of one [`Consumer::fetch_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Most messages to return.
    pub batch: usize,
    /// How long the server may wait to fill the batch; zero asks for what is there now
    /// (`no_wait`).
    pub expires: Duration,
    /// Most bytes to return (0: no limit).
    pub max_bytes: usize,
    /// Ask the server for idle heartbeats at this interval while it waits (zero: none); two
    /// missed make the fetch fail with [`JetStreamError::HeartbeatMissed`].
    pub idle_heartbeat: Duration,
    /// The priority group to pull in (server 2.11+). `None` on a consumer with priority
    /// groups pulls in its first group. On a pinned-client consumer the pin this handle holds
    /// ([`Consumer::pin_id`]) goes with the pull; a pin the server no longer knows (`423`) is
    /// dropped and the pull made again without it. The server keeps a pin only while pulls
    /// carrying it come within `priority_timeout`: a pinned client that fetches must fetch
    /// again well inside it ([`Consumer::consume`] does this by itself).
    pub priority_group: Option<PriorityGroup>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            batch: 1,
            expires: Duration::from_secs(5),
            max_bytes: 0,
            idle_heartbeat: Duration::ZERO,
            priority_group: None,
        }
    }
}

/// What a status message means for a pull.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// A heartbeat: the server is alive.
    Heartbeat,
    /// The request ended (`404`, `408`, `409 Batch Completed`, size limit); `pending` is what
    /// it still had open, when the server said.
    Ended { pending: Option<(usize, usize)> },
    /// The request ended in a way the caller should hear about, but pulling may go on.
    Report { pending: Option<(usize, usize)> },
    /// `423`: the pin the request carried is not (or no longer) the consumer's; pull again
    /// without it.
    PinMismatch { pending: Option<(usize, usize)> },
    /// A leader moved: forget outstanding requests and pull again.
    Reset,
    /// The consumer is gone.
    Deleted,
    /// Pulling again cannot help (`400`, push consumer).
    Fatal,
}

pub(crate) fn classify(msg: &Message) -> Option<Status> {
    let code = msg.status?;
    let desc = msg.description.as_deref().unwrap_or_default();
    let pending = || {
        let h = msg.headers.as_ref()?;
        let n = h.get("Nats-Pending-Messages")?.trim().parse().ok()?;
        let b = h
            .get("Nats-Pending-Bytes")
            .and_then(|b| b.trim().parse().ok())
            .unwrap_or(0);
        Some((n, b))
    };
    Some(match code {
        StatusCode::IDLE_HEARTBEAT => Status::Heartbeat,
        StatusCode::NOT_FOUND | StatusCode::TIMEOUT => Status::Ended { pending: pending() },
        StatusCode::CONFLICT => {
            let d = desc.to_ascii_lowercase();
            if d.contains("consumer deleted") {
                Status::Deleted
            } else if d.contains("leadership change") || d.contains("server shutdown") {
                Status::Reset
            } else if d.contains("batch completed") || d.contains("exceeds maxbytes") {
                Status::Ended { pending: pending() }
            } else if d.contains("push based") {
                Status::Fatal
            } else {
                Status::Report { pending: pending() }
            }
        }
        StatusCode::BAD_REQUEST => Status::Fatal,
        c if c.as_u16() == 423 => Status::PinMismatch { pending: pending() },
        _ => Status::Report { pending: None },
    })
}

impl Consumer {
    pub(crate) fn status_error(&self, msg: &Message) -> JetStreamError {
        JetStreamError::PullStatus {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
            code: msg.status.map_or(0, StatusCode::as_u16),
            description: msg.description.as_deref().unwrap_or_default().to_owned(),
        }
    }

    pub(crate) fn deleted_error(&self) -> JetStreamError {
        JetStreamError::ConsumerDeleted {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
        }
    }

    /// Sends a pull request to `subject` (see `next_subject`) whose replies go to `inbox`.
    pub(crate) async fn send_pull(
        &self,
        subject: &str,
        inbox: &str,
        request: &PullRequest,
    ) -> Result<(), JetStreamError> {
        let body = serde_json::to_vec(request).map_err(|e| JetStreamError::json("pull", &e))?;
        self.context
            .client
            .publish_message(subject, Some(inbox), None, &body)
            .await?;
        Ok(())
    }

    pub(crate) fn wrap(&self, msg: Message) -> JsMessage {
        JsMessage::new(msg, self.context.client.clone(), self.context.timeout)
    }

    /// Pulls up to `batch` messages, waiting up to `expires` for them (zero: only what is
    /// there now). Returns fewer, or none, when the time is up. Messages already received are
    /// returned even when the pull then fails; an error comes only with no messages.
    pub async fn fetch(
        &self,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<JsMessage>, JetStreamError> {
        self.fetch_with(&FetchOptions {
            batch,
            expires,
            ..FetchOptions::default()
        })
        .await
    }

    /// [`fetch`](Consumer::fetch) with every option.
    pub async fn fetch_with(
        &self,
        options: &FetchOptions,
    ) -> Result<Vec<JsMessage>, JetStreamError> {
        let client = &self.context.client;
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(inbox.clone()).await?;
        let no_wait = options.expires.is_zero();
        let next = self.next_subject();
        let mut request = PullRequest {
            batch: options.batch.max(1),
            expires: options.expires,
            max_bytes: options.max_bytes,
            no_wait,
            // The server refuses a heartbeat longer than half the expiry.
            idle_heartbeat: if no_wait {
                Duration::ZERO
            } else {
                options.idle_heartbeat.min(options.expires / 2)
            },
            priority: self.pull_priority(options.priority_group.as_ref()),
        };
        self.send_pull(&next, &inbox, &request).await?;
        let mut repulled = false;
        let pinned = self.cached_info().config.priority_policy == PriorityPolicy::PinnedClient;
        let start = Instant::now();
        let deadline = start
            + if no_wait {
                self.context.timeout
            } else {
                options.expires + EXPIRY_GRACE
            };
        let hb = request.idle_heartbeat;
        let mut hb_deadline = (!hb.is_zero()).then(|| start + 2 * hb);
        let mut messages = Vec::with_capacity(request.batch.min(1024));
        let mut failure = None;
        loop {
            let wake = hb_deadline.map_or(deadline, |h| h.min(deadline));
            let msg = match tokio::time::timeout_at(wake, sub.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => {
                    failure = Some(JetStreamError::Client(nats_client::ClientError::Closed));
                    break;
                }
                Err(_)
                    if hb_deadline.is_some_and(|h| Instant::now() >= h)
                        && Instant::now() < deadline =>
                {
                    failure = Some(JetStreamError::HeartbeatMissed {
                        stream: self.stream.clone(),
                        consumer: self.name.clone(),
                        interval: hb,
                    });
                    break;
                }
                Err(_) => break,
            };
            if let Some(h) = hb_deadline.as_mut() {
                *h = Instant::now() + 2 * hb;
            }
            match classify(&msg) {
                None => {
                    if pinned {
                        self.pin.observe(&msg);
                    }
                    messages.push(self.wrap(msg));
                    if messages.len() >= request.batch {
                        break;
                    }
                }
                Some(Status::Heartbeat) => {}
                Some(Status::Ended { .. }) => break,
                Some(Status::PinMismatch { .. }) if !repulled && messages.is_empty() => {
                    // The pin moved to another client: pull again as a candidate.
                    self.pin.clear();
                    if let Some(p) = request.priority.as_mut() {
                        p.id = None;
                    }
                    self.send_pull(&next, &inbox, &request).await?;
                    repulled = true;
                }
                Some(Status::Deleted) => {
                    failure = Some(self.deleted_error());
                    break;
                }
                Some(_) => {
                    failure = Some(self.status_error(&msg));
                    break;
                }
            }
        }
        drop(sub);
        match failure {
            Some(e) if messages.is_empty() => Err(e),
            _ => Ok(messages),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use nats_client::HeaderMap;

    fn status(code: u16, desc: &str, pending: Option<(usize, usize)>) -> Message {
        let headers = pending.map(|(n, b)| {
            let mut h = HeaderMap::new();
            h.insert("Nats-Pending-Messages", n.to_string());
            h.insert("Nats-Pending-Bytes", b.to_string());
            h
        });
        Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: Bytes::new(),
            headers,
            status: StatusCode::from_u16(code),
            description: Some(desc.into()),
            length: 0,
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            classify(&status(100, "Idle Heartbeat", None)),
            Some(Status::Heartbeat)
        );
        assert_eq!(
            classify(&status(408, "Request Timeout", Some((3, 10)))),
            Some(Status::Ended {
                pending: Some((3, 10))
            })
        );
        assert_eq!(
            classify(&status(404, "No Messages", None)),
            Some(Status::Ended { pending: None })
        );
        assert_eq!(
            classify(&status(409, "Consumer Deleted", None)),
            Some(Status::Deleted)
        );
        assert_eq!(
            classify(&status(409, "Leadership Change", None)),
            Some(Status::Reset)
        );
        assert_eq!(
            classify(&status(409, "Exceeded MaxWaiting", None)),
            Some(Status::Report { pending: None })
        );
        assert_eq!(
            classify(&status(423, "Nats-Wrong-Pin-Id", Some((5, 0)))),
            Some(Status::PinMismatch {
                pending: Some((5, 0))
            })
        );
        assert_eq!(
            classify(&status(400, "Bad Request", None)),
            Some(Status::Fatal)
        );
        assert_eq!(
            classify(&status(409, "Consumer is push based", None)),
            Some(Status::Fatal)
        );
    }

    #[test]
    fn pull_request_json() {
        let r = PullRequest {
            batch: 10,
            expires: Duration::from_secs(1),
            max_bytes: 0,
            no_wait: false,
            idle_heartbeat: Duration::from_millis(500),
            priority: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"batch":10,"expires":1000000000,"idle_heartbeat":500000000}"#
        );
    }
}
