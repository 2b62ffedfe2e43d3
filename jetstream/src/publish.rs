//! Publishing with acknowledgement: [`PubAck`], [`PublishOptions`] (dedup id, expectations,
//! timeouts, retries) and [`Context::publish`]. The windowed asynchronous publisher is in
//! [`crate::publisher`].

use std::time::Duration;

use bytes::Bytes;
use nats_client::{HeaderMap, Message, RequestError, StatusCode};
use serde::Deserialize;

use crate::context::Context;
use crate::error::{ApiError, ErrorCode, JetStreamError};

/// Header: the message id the stream deduplicates on.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// Header: the stream the subject must belong to.
pub const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
/// Header: the stream's last sequence must be this.
pub const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";
/// Header: the last sequence stored on this subject must be this.
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
/// Header: the stream's last message id must be this.
pub const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
/// Header: the message's own time to live (`Nats-TTL`, server 2.11+).
pub const TTL: &str = "Nats-TTL";

/// A per-message TTL the server cannot store: it takes whole seconds, at least one (see
/// [`PublishOptions::ttl`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid message TTL {ttl:?}: the server takes whole seconds, at least 1 s")]
pub struct InvalidTtl {
    /// The TTL as given.
    pub ttl: Duration,
}

/// The stream's acknowledgement of a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubAck {
    /// The stream that stored it.
    pub stream: String,
    /// Its stream sequence.
    pub seq: u64,
    /// The stream had already stored a message with this `Nats-Msg-Id` in its duplicate
    /// window; `seq` is the earlier message's.
    pub duplicate: bool,
    /// The stream's JetStream domain, if any.
    pub domain: Option<String>,
}

#[derive(Deserialize)]
struct PubAckReply {
    #[serde(default)]
    stream: String,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    error: Option<ApiError>,
}

/// Decodes the reply to a publish.
pub(crate) fn decode_pub_ack(subject: &str, reply: &Message) -> Result<PubAck, JetStreamError> {
    if reply.status == Some(StatusCode::NO_RESPONDERS) {
        return Err(JetStreamError::NoStream {
            subject: subject.to_owned(),
        });
    }
    let r: PubAckReply =
        serde_json::from_slice(&reply.payload).map_err(|e| JetStreamError::json(subject, &e))?;
    if let Some(e) = r.error {
        return Err(JetStreamError::Api(e));
    }
    if r.stream.is_empty() {
        return Err(JetStreamError::invalid(
            subject,
            "publish ack without a stream",
        ));
    }
    Ok(PubAck {
        stream: r.stream,
        seq: r.seq,
        duplicate: r.duplicate,
        domain: r.domain.filter(|d| !d.is_empty()),
    })
}

/// Options of one publish: headers, deduplication id, expectations the stream checks before
/// storing, ack timeout and retries.
///
/// ```
/// use jetstream::PublishOptions;
/// let opts = PublishOptions::new()
///     .msg_id("order-42")
///     .expected_stream("ORDERS")
///     .expected_last_subject_sequence(7)
///     .header("X-Trace", "abc")
///     .header("X-Attempt", 2);
/// let h = opts.build_headers().unwrap();
/// assert_eq!(h.get("Nats-Msg-Id"), Some("order-42"));
/// assert_eq!(h.get("Nats-Expected-Last-Subject-Sequence"), Some("7"));
/// assert_eq!(h.get("X-Trace"), Some("abc"));
/// assert_eq!(h.get("X-Attempt"), Some("2"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    headers: Option<HeaderMap>,
    msg_id: Option<String>,
    expected_stream: Option<String>,
    expected_last_sequence: Option<u64>,
    expected_last_subject_sequence: Option<u64>,
    expected_last_msg_id: Option<String>,
    ttl: Option<u64>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry_attempts: Option<u32>,
    pub(crate) retry_wait: Option<Duration>,
    pub(crate) retry_for: Option<Duration>,
    pub(crate) at_least_once: bool,
}

impl PublishOptions {
    /// No headers, no expectations, the context's timeout and retries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends these headers (the options below add theirs to them).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Adds one header value (any displayable value: text, numbers, ids...).
    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.headers
            .get_or_insert_with(HeaderMap::new)
            .append(name, value.to_string());
        self
    }

    /// `Nats-Msg-Id`: the stream stores a message with an id it has seen in its duplicate
    /// window only once (the ack says `duplicate`). With an id, a publish whose ack timed out
    /// is sent again safely.
    pub fn msg_id(mut self, id: impl Into<String>) -> Self {
        self.msg_id = Some(id.into());
        self
    }

    /// Resends the message on a lost ack (a timeout, a lost connection, a stream leader
    /// change) as a message with a [`msg_id`](Self::msg_id) is resent, but without the id:
    /// the stream may then store it twice (at-least-once), where the id would have made the
    /// resend safe. The price of the id is the stream's dedup work on every message (about a
    /// fifth of a stream's publish rate on a 2-core machine); this is for publishers that
    /// accept a duplicate after a fault (an AMQP publisher does: a nack or a lost connection
    /// makes it republish anyway) and want no message nacked by a leader change.
    pub fn at_least_once(mut self) -> Self {
        self.at_least_once = true;
        self
    }

    /// Undoes [`at_least_once`](Self::at_least_once) (the default): without a
    /// [`msg_id`](Self::msg_id), a publish whose ack is lost is not resent, so it is stored at
    /// most once; only a `503` (nothing stored) is retried.
    pub fn at_most_once(mut self) -> Self {
        self.at_least_once = false;
        self
    }

    /// Whether a publish with these options is resent on a lost ack: it has a msg id, or
    /// [`at_least_once`](Self::at_least_once) says so.
    pub(crate) fn resends(&self, headers: Option<&HeaderMap>) -> bool {
        self.at_least_once || headers.is_some_and(|h| h.contains(MSG_ID))
    }

    /// `Nats-Expected-Stream`: fail unless the subject is stored by this stream.
    pub fn expected_stream(mut self, stream: impl Into<String>) -> Self {
        self.expected_stream = Some(stream.into());
        self
    }

    /// `Nats-Expected-Last-Sequence`: fail unless the stream's last sequence is `seq`.
    pub fn expected_last_sequence(mut self, seq: u64) -> Self {
        self.expected_last_sequence = Some(seq);
        self
    }

    /// `Nats-Expected-Last-Subject-Sequence`: fail unless the last message on this subject has
    /// sequence `seq` (0: there is none).
    pub fn expected_last_subject_sequence(mut self, seq: u64) -> Self {
        self.expected_last_subject_sequence = Some(seq);
        self
    }

    /// `Nats-Expected-Last-Msg-Id`: fail unless the stream's last message id is `id`.
    pub fn expected_last_msg_id(mut self, id: impl Into<String>) -> Self {
        self.expected_last_msg_id = Some(id.into());
        self
    }

    /// `Nats-TTL`: the stream removes the message this long after storing it (server 2.11+,
    /// on a stream with [`allow_msg_ttl`](crate::StreamConfig::allow_msg_ttl), else the
    /// publish fails with [`ErrorCode::MESSAGE_TTL_DISABLED`](crate::ErrorCode::MESSAGE_TTL_DISABLED)).
    ///
    /// The server counts whole seconds and refuses less than one, so anything else is an
    /// [`InvalidTtl`] here, before a byte is sent. A stream's `max_age` still wins when
    /// shorter, and its `subject_delete_marker_ttl` raises shorter TTLs to itself. Expiry
    /// is silent: no advisory, no dead letter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jetstream::PublishOptions;
    /// let opts = PublishOptions::new().ttl(Duration::from_secs(90)).unwrap();
    /// assert_eq!(opts.build_headers().unwrap().get("Nats-TTL"), Some("90s"));
    /// assert!(PublishOptions::new().ttl(Duration::from_millis(1500)).is_err());
    /// assert!(PublishOptions::new().ttl(Duration::ZERO).is_err());
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Result<Self, InvalidTtl> {
        if ttl.subsec_nanos() != 0 || ttl.as_secs() == 0 {
            return Err(InvalidTtl { ttl });
        }
        self.ttl = Some(ttl.as_secs());
        Ok(self)
    }

    /// How long to wait for the ack (default: the context's timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many more times, at least, to send the message when no stream answered (`503`,
    /// e.g. during a leader election) or, for a message with a [`msg_id`](Self::msg_id) (or
    /// sent [`at_least_once`](Self::at_least_once)), when the ack did not come in time or the
    /// connection was lost. Otherwise a timed-out publish is not resent, as it may have been
    /// stored. A resent message may be stored after
    /// messages published later (as in nats.go); use
    /// [`expected_last_subject_sequence`](Self::expected_last_subject_sequence) where order
    /// matters. Retries also go on for [`retry_for`](Self::retry_for) after the first failure.
    pub fn retry_attempts(mut self, attempts: u32) -> Self {
        self.retry_attempts = Some(attempts);
        self
    }

    /// The longest pause between two attempts (default 250 ms): pauses grow from 20 ms,
    /// doubling, each drawn at random from the upper half of its range (jitter).
    pub fn retry_wait(mut self, wait: Duration) -> Self {
        self.retry_wait = Some(wait);
        self
    }

    /// How long after its first failure a publish is still retried, whatever
    /// [`retry_attempts`](Self::retry_attempts) says (default 2 s, see
    /// [`Context::with_publish_retry_for`]): a leader election shorter than this surfaces no
    /// error. [`Duration::ZERO`] leaves only the attempt count. The price: a publish to a
    /// subject no stream captures fails with [`JetStreamError::NoStream`] only after this long.
    pub fn retry_for(mut self, bound: Duration) -> Self {
        self.retry_for = Some(bound);
        self
    }

    /// The headers that go with the message, if any.
    pub fn build_headers(&self) -> Option<HeaderMap> {
        let fields = [
            (MSG_ID, self.msg_id.clone()),
            (EXPECTED_STREAM, self.expected_stream.clone()),
            (
                EXPECTED_LAST_SEQUENCE,
                self.expected_last_sequence.map(|s| s.to_string()),
            ),
            (
                EXPECTED_LAST_SUBJECT_SEQUENCE,
                self.expected_last_subject_sequence.map(|s| s.to_string()),
            ),
            (EXPECTED_LAST_MSG_ID, self.expected_last_msg_id.clone()),
            (TTL, self.ttl.map(|s| format!("{s}s"))),
        ];
        if self.headers.is_none() && fields.iter().all(|(_, v)| v.is_none()) {
            return None;
        }
        let mut h = self.headers.clone().unwrap_or_default();
        for (name, value) in fields {
            if let Some(v) = value {
                h.insert(name, v);
            }
        }
        Some(h)
    }
}

/// What to do after a failed attempt.
pub(crate) enum Retry {
    /// Send again after this pause.
    After(Duration),
    /// Give up with this error.
    Fail(JetStreamError),
}

/// How far a publish may still be retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// The attempt that just failed (1-based).
    pub attempt: u32,
    /// Attempts allowed whatever the time.
    pub attempts: u32,
    /// Time since the first failure of this publish.
    pub failing_for: Duration,
    /// Retries go on at least this long after the first failure.
    pub retry_for: Duration,
    /// The longest pause between attempts.
    pub wait: Duration,
    /// The ack timeout of one attempt (for the error).
    pub timeout: Duration,
}

impl Budget {
    fn more(&self) -> bool {
        self.attempt < self.attempts || self.failing_for < self.retry_for
    }

    /// Jittered exponential backoff: 20 ms, 40 ms, ... up to `wait`, each drawn from its
    /// upper half so that publishers retrying together spread out.
    fn pause(&self) -> Duration {
        let shift = self.attempt.saturating_sub(1).min(10);
        let cap = BACKOFF_START.saturating_mul(1 << shift).min(self.wait);
        let half = cap / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=nanos))
    }
}

/// The first pause of the backoff between retries.
const BACKOFF_START: Duration = Duration::from_millis(20);

/// Whether a publish answered with `e` may be sent again: the stream could not take it now
/// (no quorum: nothing was stored), or, for a message with an id, an earlier copy is still
/// being stored (the resend gets that copy's ack or is dropped as a duplicate).
pub(crate) fn api_retry(e: &JetStreamError, has_msg_id: bool, b: Budget) -> Option<Duration> {
    let JetStreamError::Api(api) = e else {
        return None;
    };
    let unavailable = api.code == 503 || api.err_code == ErrorCode::CLUSTER_NOT_AVAILABLE;
    let in_process = has_msg_id && api.err_code == ErrorCode::STREAM_DUPLICATE_MESSAGE_CONFLICT;
    ((unavailable || in_process) && b.more()).then(|| b.pause())
}

/// Decides whether a failed attempt may be followed by another, and after which pause.
///
/// Retried: a `503` (no stream received the message, so sending it again cannot store it
/// twice), and for a message that `resends` (it has a `Nats-Msg-Id`, and the stream drops the
/// copy if the first one was stored; or it was sent at least once) an ack that timed out or
/// was lost with the connection.
pub(crate) fn after_failure(e: RequestError, subject: &str, resends: bool, b: Budget) -> Retry {
    let more = b.more();
    match e {
        RequestError::NoResponders { .. } if more => Retry::After(b.pause()),
        RequestError::NoResponders { .. } => Retry::Fail(JetStreamError::NoStream {
            subject: subject.to_owned(),
        }),
        // The first resend after a lost connection goes at once (it waits in the client's
        // buffer for the next connection); later ones back off.
        RequestError::Disconnected { .. } if more && resends && b.attempt == 1 => {
            Retry::After(Duration::ZERO)
        }
        RequestError::TimedOut { .. } | RequestError::Disconnected { .. } if more && resends => {
            Retry::After(b.pause())
        }
        RequestError::TimedOut { .. } => Retry::Fail(JetStreamError::Timeout {
            subject: subject.to_owned(),
            timeout: b.timeout,
            attempts: b.attempt,
        }),
        other => Retry::Fail(other.into()),
    }
}

impl Context {
    /// Publishes a message and waits for the stream's ack.
    ///
    /// ```no_run
    /// # async fn demo(js: jetstream::Context) -> Result<(), jetstream::JetStreamError> {
    /// let ack = js.publish("orders.eu", "order 1").await?;
    /// println!("stored in {} as #{}", ack.stream, ack.seq);
    /// # Ok(()) }
    /// ```
    pub async fn publish(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PubAck, JetStreamError> {
        self.publish_with(subject, payload, &PublishOptions::default())
            .await
    }

    /// Publishes a message with options and waits for the stream's ack, resending as
    /// [`PublishOptions::retry_attempts`] says. A `503` (no stream captures the subject) is
    /// [`JetStreamError::NoStream`]; a failed expectation is an
    /// [`ApiError`] such as [`ErrorCode::STREAM_WRONG_LAST_SEQUENCE`](crate::ErrorCode::STREAM_WRONG_LAST_SEQUENCE).
    pub async fn publish_with(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<PubAck, JetStreamError> {
        let payload = payload.into();
        let headers = options.build_headers();
        let has_msg_id = headers.as_ref().is_some_and(|h| h.contains(MSG_ID));
        let resends = options.resends(headers.as_ref());
        let timeout = options.timeout.unwrap_or(self.publish.ack_timeout);
        let attempts = 1 + options
            .retry_attempts
            .unwrap_or(self.publish.retry_attempts);
        let wait = options.retry_wait.unwrap_or(self.publish.retry_wait);
        let retry_for = options.retry_for.unwrap_or(self.publish.retry_for);
        let mut attempt = 1;
        let mut first_failure: Option<std::time::Instant> = None;
        loop {
            let result = self
                .client
                .request_with(subject, headers.as_ref(), &payload, timeout)
                .await;
            let since = *first_failure.get_or_insert_with(std::time::Instant::now);
            let budget = Budget {
                attempt,
                attempts,
                failing_for: since.elapsed(),
                retry_for,
                wait,
                timeout,
            };
            let retry = match result {
                Ok(reply) => match decode_pub_ack(subject, &reply) {
                    Err(e) => match api_retry(&e, has_msg_id, budget) {
                        Some(pause) => Retry::After(pause),
                        None => Retry::Fail(e),
                    },
                    ok => return ok,
                },
                Err(e) => after_failure(e, subject, resends, budget),
            };
            match retry {
                Retry::After(pause) => {
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    attempt += 1;
                }
                Retry::Fail(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_resends_a_publish_on_a_lost_ack() {
        let plain = PublishOptions::new();
        assert!(!plain.resends(plain.build_headers().as_ref()));
        let id = PublishOptions::new().msg_id("m1");
        assert!(id.resends(id.build_headers().as_ref()));
        let once = PublishOptions::new().header("a", 1).at_least_once();
        assert!(once.resends(once.build_headers().as_ref()));
        assert!(once.build_headers().is_some_and(|h| !h.contains(MSG_ID)));
        let undone = once.at_most_once();
        assert!(!undone.resends(undone.build_headers().as_ref()));
    }

    fn reply(payload: &'static str) -> Message {
        Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: Bytes::from_static(payload.as_bytes()),
            headers: None,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn pub_acks() {
        let a = decode_pub_ack("s", &reply(r#"{"stream":"S","seq":3,"duplicate":true}"#)).unwrap();
        assert_eq!(
            (a.stream.as_str(), a.seq, a.duplicate, a.domain),
            ("S", 3, true, None)
        );
        let e = decode_pub_ack(
            "s",
            &reply(
                r#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 2"}}"#,
            ),
        )
        .unwrap_err();
        assert!(e.is_api(crate::ErrorCode::STREAM_WRONG_LAST_SEQUENCE));
        assert!(decode_pub_ack("s", &reply("+OK")).is_err());
    }

    #[test]
    fn no_headers_unless_needed() {
        assert!(
            PublishOptions::new()
                .timeout(Duration::from_secs(1))
                .build_headers()
                .is_none()
        );
        let h = PublishOptions::new()
            .expected_last_sequence(0)
            .build_headers()
            .unwrap();
        assert_eq!(h.get(EXPECTED_LAST_SEQUENCE), Some("0"));
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let b = |attempt| Budget {
            attempt,
            attempts: 1,
            failing_for: Duration::ZERO,
            retry_for: Duration::ZERO,
            wait: Duration::from_millis(250),
            timeout: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let p = b(1).pause();
            assert!((BACKOFF_START / 2..=BACKOFF_START).contains(&p), "{p:?}");
            let p = b(30).pause();
            let cap = Duration::from_millis(250);
            assert!((cap / 2..=cap).contains(&p), "{p:?}");
        }
    }

    #[test]
    fn retry_rules() {
        let t = Duration::from_secs(1);
        let w = Duration::from_millis(5);
        let b = |attempt, failing_for| Budget {
            attempt,
            attempts: 3,
            failing_for,
            retry_for: Duration::from_secs(2),
            wait: w,
            timeout: t,
        };
        let late = Duration::from_secs(3);
        let timed_out = || RequestError::TimedOut {
            subject: "s".into(),
            timeout: t,
        };
        let no_resp = || RequestError::NoResponders {
            subject: "s".into(),
        };
        let z = Duration::ZERO;
        assert!(matches!(after_failure(no_resp(), "s", false, b(1, z)), Retry::After(p) if p <= w));
        // Past the attempt count but within the time bound: still retried.
        assert!(matches!(
            after_failure(no_resp(), "s", false, b(9, Duration::from_secs(1))),
            Retry::After(_)
        ));
        assert!(matches!(
            after_failure(no_resp(), "s", false, b(3, late)),
            Retry::Fail(JetStreamError::NoStream { .. })
        ));
        assert!(matches!(
            after_failure(timed_out(), "s", false, b(1, z)),
            Retry::Fail(JetStreamError::Timeout { attempts: 1, .. })
        ));
        assert!(matches!(
            after_failure(timed_out(), "s", true, b(1, z)),
            Retry::After(_)
        ));
        assert!(matches!(
            after_failure(timed_out(), "s", true, b(3, late)),
            Retry::Fail(JetStreamError::Timeout { attempts: 3, .. })
        ));
    }
}
