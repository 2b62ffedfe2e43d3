//! The JetStream [`Context`]: a client, an API prefix, timeouts, and the JSON request helper
//! every API call goes through.

use std::sync::Arc;
use std::time::Duration;

use nats_client::{Client, RequestWindow};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, JetStreamError};
use crate::models::AccountInfo;

/// The default API prefix.
pub const DEFAULT_API_PREFIX: &str = "$JS.API";

/// How long an API request waits for its reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many publish acks may be outstanding by default (see [`Context::publish_async`]).
pub const DEFAULT_PUBLISH_WINDOW: usize = 4096;

/// How long a failing publish is retried by default (see [`Context::with_publish_retry_for`]).
pub const DEFAULT_PUBLISH_RETRY_FOR: Duration = Duration::from_secs(2);

/// Entry point to JetStream over a [`Client`]: streams, consumers and publishing.
///
/// Cheap to clone; clones share the client and the async-publish window.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = nats_client::connect("nats://127.0.0.1:4222").await?;
/// let js = jetstream::new(client).with_timeout(std::time::Duration::from_secs(2));
/// let hub = jetstream::Context::with_domain(js.client().clone(), "hub");
/// assert_eq!(hub.prefix(), "$JS.hub.API");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) client: Client,
    prefix: Arc<str>,
    pub(crate) timeout: Duration,
    pub(crate) publish: PublishDefaults,
    /// The async publisher's window of acks in flight (clones share it).
    pub(crate) window: RequestWindow,
    /// Stream leader changes, watched once a msg-id publish is in flight (clones share it).
    pub(crate) leaders: Arc<crate::publisher::LeaderChanges>,
    /// Drives the publishes with a msg id (clones share it).
    pub(crate) tracker: Arc<crate::ack_tracker::AckTracker>,
}

/// Publish settings a [`Context`] applies unless a publish says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublishDefaults {
    /// How long to wait for a publish ack.
    pub ack_timeout: Duration,
    /// Extra attempts after the first one.
    pub retry_attempts: u32,
    /// The longest pause between attempts (backoff with jitter).
    pub retry_wait: Duration,
    /// Retries go on at least this long after a publish first failed.
    pub retry_for: Duration,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("publish", &self.publish)
            .field("window", &self.window.capacity())
            .finish()
    }
}

impl Context {
    /// A context with the default API prefix `$JS.API`.
    pub fn new(client: Client) -> Context {
        Context::with_prefix(client, DEFAULT_API_PREFIX)
    }

    /// A context with another API prefix (an imported account's API, for example). A trailing
    /// `.` is ignored.
    pub fn with_prefix(client: Client, prefix: impl AsRef<str>) -> Context {
        let prefix = prefix.as_ref().trim_end_matches('.');
        let prefix = if prefix.is_empty() {
            DEFAULT_API_PREFIX
        } else {
            prefix
        };
        Context {
            window: client.request_window(DEFAULT_PUBLISH_WINDOW),
            client,
            prefix: prefix.into(),
            timeout: DEFAULT_TIMEOUT,
            publish: PublishDefaults {
                ack_timeout: DEFAULT_TIMEOUT,
                retry_attempts: 2,
                retry_wait: Duration::from_millis(250),
                retry_for: DEFAULT_PUBLISH_RETRY_FOR,
            },
            leaders: Arc::default(),
            tracker: Arc::default(),
        }
    }

    /// A context for the JetStream domain `domain`: API prefix `$JS.<domain>.API`. An empty
    /// domain means the local one (`$JS.API`).
    pub fn with_domain(client: Client, domain: impl AsRef<str>) -> Context {
        match domain.as_ref() {
            "" => Context::new(client),
            d => Context::with_prefix(client, format!("$JS.{d}.API")),
        }
    }

    /// Sets the timeout of API requests and of publish acks (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Context {
        self.set_timeout(timeout);
        self
    }

    /// Sets the timeout of API requests and of publish acks.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.publish.ack_timeout = timeout;
    }

    /// Sets how often a publish is sent again when its ack does not come (see
    /// [`PublishOptions::retry_attempts`](crate::PublishOptions::retry_attempts)); default 2.
    pub fn with_publish_retries(mut self, attempts: u32, wait: Duration) -> Context {
        self.publish.retry_attempts = attempts;
        self.publish.retry_wait = wait;
        self
    }

    /// Sets how long after its first failure a publish is still retried, with backoff, even
    /// past its attempt count (default 2 s; see
    /// [`PublishOptions::retry_for`](crate::PublishOptions::retry_for)). Set it above the
    /// leader elections to ride out: a stream whose leader crashed has none for the raft
    /// election timeout (about 5 s on nats-server 2.15), one whose leader stepped down
    /// (graceful stop, lame duck, step-down request) for a few milliseconds.
    pub fn with_publish_retry_for(mut self, bound: Duration) -> Context {
        self.publish.retry_for = bound;
        self
    }

    /// Sets how many [`publish_async`](Context::publish_async) acks may be outstanding at once
    /// (default 4096). This context gets a window of its own; clones made afterwards share it.
    pub fn with_publish_window(mut self, max_in_flight: usize) -> Context {
        self.window = self.client.request_window(max_in_flight);
        self
    }

    /// The API prefix, e.g. `$JS.API`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The timeout of API requests.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The account's JetStream usage and limits (`$JS.API.INFO`).
    pub async fn account_info(&self) -> Result<AccountInfo, JetStreamError> {
        self.request("INFO", &()).await
    }

    /// The full subject of an API call.
    pub(crate) fn api_subject(&self, suffix: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 1 + suffix.len());
        s.push_str(&self.prefix);
        s.push('.');
        s.push_str(suffix);
        s
    }

    /// Sends a JSON request to `<prefix>.<suffix>` and decodes the reply, turning an `error`
    /// member into [`JetStreamError::Api`]. `&()` sends an empty body.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        suffix: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, JetStreamError> {
        let subject = self.api_subject(suffix);
        let payload = encode_body(&subject, body)?;
        let reply = self
            .client
            .request_with(&subject, None, &payload, self.timeout)
            .await?;
        decode_reply(&subject, &reply.payload)
    }
}

/// Serializes a request body; the unit type becomes an empty payload.
pub(crate) fn encode_body(
    subject: &str,
    body: &(impl Serialize + ?Sized),
) -> Result<Vec<u8>, JetStreamError> {
    let payload = serde_json::to_vec(body).map_err(|e| JetStreamError::json(subject, &e))?;
    Ok(if payload == b"null" {
        Vec::new()
    } else {
        payload
    })
}

/// Decodes an API reply: `{"error": {...}}` becomes [`JetStreamError::Api`], anything else is
/// parsed as `T`.
pub(crate) fn decode_reply<T: DeserializeOwned>(
    subject: &str,
    payload: &[u8],
) -> Result<T, JetStreamError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        error: Option<ApiError>,
    }
    let probe: Probe =
        serde_json::from_slice(payload).map_err(|e| JetStreamError::json(subject, &e))?;
    if let Some(error) = probe.error {
        return Err(JetStreamError::Api(error));
    }
    serde_json::from_slice(payload).map_err(|e| JetStreamError::json(subject, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_are_typed() {
        let e = decode_reply::<AccountInfo>(
            "$JS.API.INFO",
            br#"{"type":"x","error":{"code":503,"err_code":10039,"description":"JetStream not enabled for account"}}"#,
        )
        .unwrap_err();
        assert!(e.is_api(crate::ErrorCode::NOT_ENABLED_FOR_ACCOUNT));
        let bad = decode_reply::<AccountInfo>("s", b"not json").unwrap_err();
        assert!(matches!(bad, JetStreamError::Json { .. }));
    }

    #[test]
    fn empty_body_for_unit() {
        assert!(encode_body("s", &()).unwrap().is_empty());
        assert_eq!(
            encode_body("s", &serde_json::json!({"a": 1})).unwrap(),
            br#"{"a":1}"#
        );
    }
}
