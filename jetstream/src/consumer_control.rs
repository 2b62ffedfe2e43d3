//! Consumer controls beyond create/update/delete: reset to a sequence (server 2.14), pause and
//! resume (2.11), and unpin a priority group (2.11).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::consumer::Consumer;
use crate::context::Context;
use crate::error::{JetStreamError, check_name};
use crate::models::{ConsumerInfo, nanos, timestamp};

/// The answer to [`Context::reset_consumer`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerReset {
    /// The next stream sequence the consumer delivers.
    pub reset_seq: u64,
    /// The consumer after the reset.
    pub info: ConsumerInfo,
}

/// The answer to [`Context::pause_consumer`] and [`Context::resume_consumer`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ConsumerPause {
    /// Whether the consumer is paused now.
    pub paused: bool,
    /// Until when (`None` once resumed).
    #[serde(with = "timestamp")]
    pub pause_until: Option<OffsetDateTime>,
    /// How long it stays paused.
    #[serde(with = "nanos")]
    pub pause_remaining: Duration,
}

#[derive(Serialize)]
struct ResetRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct ResetResponse {
    #[serde(flatten)]
    info: ConsumerInfo,
    #[serde(default)]
    reset_seq: u64,
}

#[derive(Serialize)]
struct PauseRequest {
    #[serde(with = "timestamp")]
    pause_until: Option<OffsetDateTime>,
}

#[derive(Serialize)]
struct UnpinRequest<'a> {
    group: &'a str,
}

#[derive(Deserialize)]
struct Empty {}

impl Context {
    /// Moves a consumer to stream sequence `seq` (`$JS.API.CONSUMER.RESET`, server 2.14):
    /// messages before it count as acknowledged, messages from it on are delivered (again).
    /// `None` goes back to the ack floor, so every unacknowledged message is delivered again.
    ///
    /// Resetting to the stream's last sequence + 1 empties one consumer's backlog without
    /// touching the stream or other consumers: AMQP's `queue.purge` for a queue that is a
    /// consumer. On an Interest stream the messages only this consumer held are freed.
    /// A sequence is accepted for deliver policies `all` and `by_start_sequence`/`_time` (not
    /// below their start); otherwise the server refuses with
    /// [`ErrorCode::CONSUMER_INVALID_RESET`](crate::ErrorCode::CONSUMER_INVALID_RESET).
    pub async fn reset_consumer(
        &self,
        stream: &str,
        consumer: &str,
        seq: Option<u64>,
    ) -> Result<ConsumerReset, JetStreamError> {
        check_name("stream", stream)?;
        check_name("consumer", consumer)?;
        let r: ResetResponse = self
            .request(
                &format!("CONSUMER.RESET.{stream}.{consumer}"),
                &ResetRequest { seq },
            )
            .await?;
        Ok(ConsumerReset {
            reset_seq: r.reset_seq,
            info: r.info,
        })
    }

    /// Pauses a consumer until `until` (`$JS.API.CONSUMER.PAUSE`, server 2.11): it delivers
    /// nothing (pulls get `408`) until then or [`resume_consumer`](Self::resume_consumer).
    pub async fn pause_consumer(
        &self,
        stream: &str,
        consumer: &str,
        until: OffsetDateTime,
    ) -> Result<ConsumerPause, JetStreamError> {
        self.pause_request(stream, consumer, Some(until)).await
    }

    /// Resumes a paused consumer.
    pub async fn resume_consumer(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<ConsumerPause, JetStreamError> {
        self.pause_request(stream, consumer, None).await
    }

    async fn pause_request(
        &self,
        stream: &str,
        consumer: &str,
        until: Option<OffsetDateTime>,
    ) -> Result<ConsumerPause, JetStreamError> {
        check_name("stream", stream)?;
        check_name("consumer", consumer)?;
        let suffix = format!("CONSUMER.PAUSE.{stream}.{consumer}");
        match until {
            Some(t) => {
                self.request(
                    &suffix,
                    &PauseRequest {
                        pause_until: Some(t),
                    },
                )
                .await
            }
            // An empty body resumes.
            None => self.request(&suffix, &()).await,
        }
    }

    /// Removes the pin of priority group `group` of a
    /// [`PinnedClient`](crate::PriorityPolicy::PinnedClient) consumer
    /// (`$JS.API.CONSUMER.UNPIN`, server 2.11): the next pull of the group, from any client,
    /// gets a new pin, and the old holder's next pull is refused with `423`.
    pub async fn unpin_consumer(
        &self,
        stream: &str,
        consumer: &str,
        group: &str,
    ) -> Result<(), JetStreamError> {
        check_name("stream", stream)?;
        check_name("consumer", consumer)?;
        let _: Empty = self
            .request(
                &format!("CONSUMER.UNPIN.{stream}.{consumer}"),
                &UnpinRequest { group },
            )
            .await?;
        Ok(())
    }
}

impl Consumer {
    /// Moves this consumer to stream sequence `seq`; see [`Context::reset_consumer`].
    pub async fn reset(&self, seq: Option<u64>) -> Result<ConsumerReset, JetStreamError> {
        self.context
            .reset_consumer(&self.stream, &self.name, seq)
            .await
    }

    /// Pauses this consumer until `until`; see [`Context::pause_consumer`].
    pub async fn pause(&self, until: OffsetDateTime) -> Result<ConsumerPause, JetStreamError> {
        self.context
            .pause_consumer(&self.stream, &self.name, until)
            .await
    }

    /// Resumes this consumer; see [`Context::resume_consumer`].
    pub async fn resume(&self) -> Result<ConsumerPause, JetStreamError> {
        self.context.resume_consumer(&self.stream, &self.name).await
    }

    /// Removes the pin of `group`; see [`Context::unpin_consumer`].
    pub async fn unpin(&self, group: &str) -> Result<(), JetStreamError> {
        self.context
            .unpin_consumer(&self.stream, &self.name, group)
            .await
    }
}
