//! Consumer administration: create, update, info, list, delete; and the [`Consumer`] handle
//! (pulling lives in [`crate::pull`]).

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{JetStreamError, check_name};
use crate::models::{ConsumerConfig, ConsumerInfo, Page};
use crate::priority::Pin;
use crate::stream::{PagedResponse, Stream, collect_pages};

/// What a create request may do to an existing consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Action {
    /// Create, or succeed when it exists with the same configuration.
    #[serde(rename = "create")]
    Create,
    /// Update; fail when it does not exist.
    #[serde(rename = "update")]
    Update,
    /// Create or update.
    #[serde(rename = "")]
    CreateOrUpdate,
}

#[derive(Serialize)]
struct CreateRequest<'a> {
    stream_name: &'a str,
    config: &'a ConsumerConfig,
    action: Action,
}

#[derive(Serialize)]
struct OffsetRequest {
    offset: usize,
}

#[derive(Deserialize)]
struct DeleteResponse {
    #[serde(default)]
    success: bool,
}

impl Context {
    /// Creates a consumer on `stream` (`$JS.API.CONSUMER.CREATE.<stream>.<name>[.<filter>]`).
    /// Without `name` and `durable_name` a random name is used (an ephemeral consumer).
    /// Creating a consumer that exists with the same configuration succeeds; with another
    /// configuration it fails with
    /// [`ErrorCode::CONSUMER_ALREADY_EXISTS`](crate::ErrorCode::CONSUMER_ALREADY_EXISTS).
    pub async fn create_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<Consumer, JetStreamError> {
        self.upsert_consumer(stream, config, Action::Create).await
    }

    /// Updates an existing consumer's configuration; fails with
    /// [`ErrorCode::CONSUMER_DOES_NOT_EXIST`](crate::ErrorCode::CONSUMER_DOES_NOT_EXIST) when
    /// there is none.
    pub async fn update_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<Consumer, JetStreamError> {
        self.upsert_consumer(stream, config, Action::Update).await
    }

    /// Creates the consumer, or updates it when it exists.
    pub async fn create_or_update_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<Consumer, JetStreamError> {
        self.upsert_consumer(stream, config, Action::CreateOrUpdate)
            .await
    }

    async fn upsert_consumer(
        &self,
        stream: &str,
        mut config: ConsumerConfig,
        action: Action,
    ) -> Result<Consumer, JetStreamError> {
        check_name("stream", stream)?;
        let name = match config.consumer_name() {
            Some(n) => n.to_owned(),
            None => {
                let n = nuid::next().to_string();
                config.name = Some(n.clone());
                n
            }
        };
        check_name("consumer", &name)?;
        // The filter in the subject lets permissions grant creation per filter. Our client
        // refuses to publish to subjects with wildcards, so a wildcard filter stays in the body.
        let suffix = match config.filter_subject.as_str() {
            f if !f.is_empty()
                && config.filter_subjects.is_empty()
                && nats_client::nats_proto::subject::validate_subject(f).is_ok() =>
            {
                format!("CONSUMER.CREATE.{stream}.{name}.{f}")
            }
            _ => format!("CONSUMER.CREATE.{stream}.{name}"),
        };
        let info: ConsumerInfo = self
            .request(
                &suffix,
                &CreateRequest {
                    stream_name: stream,
                    config: &config,
                    action,
                },
            )
            .await?;
        Ok(Consumer::from_info(self.clone(), info))
    }

    /// A handle to an existing consumer (its info is fetched once).
    pub async fn get_consumer(&self, stream: &str, name: &str) -> Result<Consumer, JetStreamError> {
        let info = self.consumer_info(stream, name).await?;
        Ok(Consumer::from_info(self.clone(), info))
    }

    /// A consumer's configuration and state (`$JS.API.CONSUMER.INFO.<stream>.<name>`).
    pub async fn consumer_info(
        &self,
        stream: &str,
        name: &str,
    ) -> Result<ConsumerInfo, JetStreamError> {
        check_name("stream", stream)?;
        check_name("consumer", name)?;
        self.request(&format!("CONSUMER.INFO.{stream}.{name}"), &())
            .await
    }

    /// Deletes a consumer.
    pub async fn delete_consumer(&self, stream: &str, name: &str) -> Result<bool, JetStreamError> {
        check_name("stream", stream)?;
        check_name("consumer", name)?;
        let r: DeleteResponse = self
            .request(&format!("CONSUMER.DELETE.{stream}.{name}"), &())
            .await?;
        Ok(r.success)
    }

    /// One page of consumer names of `stream` from `offset`.
    pub async fn consumer_names_page(
        &self,
        stream: &str,
        offset: usize,
    ) -> Result<Page<String>, JetStreamError> {
        check_name("stream", stream)?;
        let r: PagedResponse<String> = self
            .request(
                &format!("CONSUMER.NAMES.{stream}"),
                &OffsetRequest { offset },
            )
            .await?;
        Ok(r.into_page())
    }

    /// Every consumer name of `stream` (all pages).
    pub async fn consumer_names(&self, stream: &str) -> Result<Vec<String>, JetStreamError> {
        collect_pages(|offset| self.consumer_names_page(stream, offset)).await
    }

    /// One page of consumer infos of `stream` from `offset`.
    pub async fn list_consumers_page(
        &self,
        stream: &str,
        offset: usize,
    ) -> Result<Page<ConsumerInfo>, JetStreamError> {
        check_name("stream", stream)?;
        let r: PagedResponse<ConsumerInfo> = self
            .request(
                &format!("CONSUMER.LIST.{stream}"),
                &OffsetRequest { offset },
            )
            .await?;
        Ok(r.into_page())
    }

    /// Every consumer info of `stream` (all pages).
    pub async fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, JetStreamError> {
        collect_pages(|offset| self.list_consumers_page(stream, offset)).await
    }
}

impl Stream {
    /// Creates a consumer on this stream; see [`Context::create_consumer`].
    pub async fn create_consumer(
        &self,
        config: ConsumerConfig,
    ) -> Result<Consumer, JetStreamError> {
        self.context.create_consumer(&self.name, config).await
    }

    /// Updates a consumer of this stream; see [`Context::update_consumer`].
    pub async fn update_consumer(
        &self,
        config: ConsumerConfig,
    ) -> Result<Consumer, JetStreamError> {
        self.context.update_consumer(&self.name, config).await
    }

    /// Creates or updates a consumer of this stream.
    pub async fn create_or_update_consumer(
        &self,
        config: ConsumerConfig,
    ) -> Result<Consumer, JetStreamError> {
        self.context
            .create_or_update_consumer(&self.name, config)
            .await
    }

    /// A handle to an existing consumer of this stream.
    pub async fn get_consumer(&self, name: &str) -> Result<Consumer, JetStreamError> {
        self.context.get_consumer(&self.name, name).await
    }

    /// A consumer's info.
    pub async fn consumer_info(&self, name: &str) -> Result<ConsumerInfo, JetStreamError> {
        self.context.consumer_info(&self.name, name).await
    }

    /// Deletes a consumer of this stream.
    pub async fn delete_consumer(&self, name: &str) -> Result<bool, JetStreamError> {
        self.context.delete_consumer(&self.name, name).await
    }

    /// Every consumer name of this stream.
    pub async fn consumer_names(&self) -> Result<Vec<String>, JetStreamError> {
        self.context.consumer_names(&self.name).await
    }

    /// Every consumer info of this stream.
    pub async fn list_consumers(&self) -> Result<Vec<ConsumerInfo>, JetStreamError> {
        self.context.list_consumers(&self.name).await
    }
}

/// A handle to one consumer: its last known info, and pulling (see [`Consumer::fetch`] and
/// [`Consumer::messages`]).
#[derive(Debug, Clone)]
pub struct Consumer {
    pub(crate) context: Context,
    pub(crate) stream: String,
    pub(crate) name: String,
    info: ConsumerInfo,
    pub(crate) pin: Pin,
}

impl Consumer {
    pub(crate) fn from_info(context: Context, info: ConsumerInfo) -> Consumer {
        Consumer {
            context,
            stream: info.stream.clone(),
            name: info.name.clone(),
            info,
            pin: Pin::default(),
        }
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The context this handle uses.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The info as of creation or the last [`Consumer::info`].
    pub fn cached_info(&self) -> &ConsumerInfo {
        &self.info
    }

    /// Fetches fresh info and remembers it.
    pub async fn info(&mut self) -> Result<&ConsumerInfo, JetStreamError> {
        self.info = self.context.consumer_info(&self.stream, &self.name).await?;
        Ok(&self.info)
    }

    /// The subject pull requests go to.
    pub(crate) fn next_subject(&self) -> String {
        self.context
            .api_subject(&format!("CONSUMER.MSG.NEXT.{}.{}", self.stream, self.name))
    }
}
