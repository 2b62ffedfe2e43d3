//! Stream administration: create, update, info, list, delete, purge; and the [`Stream`] handle.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{JetStreamError, check_name};
use crate::models::{Page, StreamConfig, StreamInfo};

/// What to purge from a stream (`$JS.API.STREAM.PURGE`). The default purges everything.
///
/// ```
/// let keep_last_ten_orders = jetstream::Purge::default().filter("orders.>").keep(10);
/// # let _ = keep_last_ten_orders;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Purge {
    #[serde(rename = "filter", skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep: Option<u64>,
    #[serde(rename = "seq", skip_serializing_if = "Option::is_none")]
    sequence: Option<u64>,
}

impl Purge {
    /// Only messages on subjects matching `filter` (wildcards allowed).
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Keep the newest `n` messages (per the filter, if any). Excludes [`Purge::sequence`].
    pub fn keep(mut self, n: u64) -> Self {
        self.keep = Some(n);
        self.sequence = None;
        self
    }

    /// Purge up to, not including, stream sequence `seq`. Excludes [`Purge::keep`].
    pub fn sequence(mut self, seq: u64) -> Self {
        self.sequence = Some(seq);
        self.keep = None;
        self
    }
}

#[derive(Deserialize)]
struct PurgeResponse {
    #[serde(default)]
    purged: u64,
}

#[derive(Deserialize)]
struct SuccessResponse {
    #[serde(default)]
    success: bool,
}

#[derive(Serialize)]
struct ListRequest<'a> {
    offset: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
}

#[derive(Deserialize)]
pub(crate) struct PagedResponse<T> {
    #[serde(default)]
    total: usize,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    limit: usize,
    #[serde(default, alias = "consumers", rename = "streams")]
    items: Option<Vec<T>>,
}

impl<T> PagedResponse<T> {
    pub(crate) fn into_page(self) -> Page<T> {
        Page {
            total: self.total,
            offset: self.offset,
            limit: self.limit,
            items: self.items.unwrap_or_default(),
        }
    }
}

/// Collects every page of a listing, asking for the next offset until the total is reached.
pub(crate) async fn collect_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, JetStreamError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, JetStreamError>>,
{
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let p = page(offset).await?;
        let next = p.next_offset();
        all.extend(p.items);
        match next {
            Some(n) => offset = n,
            None => return Ok(all),
        }
    }
}

impl Context {
    /// Creates a stream (`$JS.API.STREAM.CREATE.<name>`). Creating a stream that exists with
    /// the same configuration succeeds; with another configuration it fails with
    /// [`ErrorCode::STREAM_NAME_EXISTS`](crate::ErrorCode::STREAM_NAME_EXISTS).
    pub async fn create_stream(&self, config: StreamConfig) -> Result<Stream, JetStreamError> {
        check_name("stream", &config.name)?;
        let info: StreamInfo = self
            .request(&format!("STREAM.CREATE.{}", config.name), &config)
            .await?;
        Ok(Stream::from_info(self.clone(), info))
    }

    /// Updates a stream's configuration (`$JS.API.STREAM.UPDATE.<name>`).
    pub async fn update_stream(&self, config: StreamConfig) -> Result<StreamInfo, JetStreamError> {
        check_name("stream", &config.name)?;
        self.request(&format!("STREAM.UPDATE.{}", config.name), &config)
            .await
    }

    /// Creates the stream, or updates it when it exists with another configuration.
    pub async fn create_or_update_stream(
        &self,
        config: StreamConfig,
    ) -> Result<Stream, JetStreamError> {
        match self.create_stream(config.clone()).await {
            Err(e) if e.is_api(crate::ErrorCode::STREAM_NAME_EXISTS) => {
                let info = self.update_stream(config).await?;
                Ok(Stream::from_info(self.clone(), info))
            }
            other => other,
        }
    }

    /// A handle to an existing stream (its info is fetched once).
    pub async fn get_stream(&self, name: &str) -> Result<Stream, JetStreamError> {
        let info = self.stream_info(name).await?;
        Ok(Stream::from_info(self.clone(), info))
    }

    /// A stream's configuration and state (`$JS.API.STREAM.INFO.<name>`).
    pub async fn stream_info(&self, name: &str) -> Result<StreamInfo, JetStreamError> {
        check_name("stream", name)?;
        self.request(&format!("STREAM.INFO.{name}"), &()).await
    }

    /// Deletes a stream and every message and consumer in it.
    pub async fn delete_stream(&self, name: &str) -> Result<bool, JetStreamError> {
        check_name("stream", name)?;
        let r: SuccessResponse = self.request(&format!("STREAM.DELETE.{name}"), &()).await?;
        Ok(r.success)
    }

    /// Purges a stream as `purge` says; returns how many messages went.
    pub async fn purge_stream(&self, name: &str, purge: &Purge) -> Result<u64, JetStreamError> {
        check_name("stream", name)?;
        let r: PurgeResponse = self.request(&format!("STREAM.PURGE.{name}"), purge).await?;
        Ok(r.purged)
    }

    /// One page of stream names from `offset`, optionally only streams capturing `subject`.
    pub async fn stream_names_page(
        &self,
        offset: usize,
        subject: Option<&str>,
    ) -> Result<Page<String>, JetStreamError> {
        let r: PagedResponse<String> = self
            .request("STREAM.NAMES", &ListRequest { offset, subject })
            .await?;
        Ok(r.into_page())
    }

    /// Every stream name (all pages), optionally only streams capturing `subject`.
    pub async fn stream_names(&self, subject: Option<&str>) -> Result<Vec<String>, JetStreamError> {
        collect_pages(|offset| self.stream_names_page(offset, subject)).await
    }

    /// One page of stream infos from `offset`.
    pub async fn list_streams_page(
        &self,
        offset: usize,
        subject: Option<&str>,
    ) -> Result<Page<StreamInfo>, JetStreamError> {
        let r: PagedResponse<StreamInfo> = self
            .request("STREAM.LIST", &ListRequest { offset, subject })
            .await?;
        Ok(r.into_page())
    }

    /// Every stream's info (all pages).
    pub async fn list_streams(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<StreamInfo>, JetStreamError> {
        collect_pages(|offset| self.list_streams_page(offset, subject)).await
    }
}

/// What [`Context::stream_info_with`] asks for beyond the plain info.
///
/// ```
/// let opts = jetstream::StreamInfoOptions::subjects("orders.>").deleted_details();
/// assert_eq!(
///     serde_json::to_string(&opts).unwrap(),
///     r#"{"subjects_filter":"orders.>","deleted_details":true}"#
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamInfoOptions {
    /// Count messages per subject for the subjects matching this filter (wildcards allowed),
    /// into [`StreamState::subjects`](crate::StreamState::subjects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subjects_filter: Option<String>,
    /// List the deleted sequences in [`StreamState::deleted`](crate::StreamState::deleted).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted_details: bool,
    /// Skip this many subjects (the server sends at most 100,000 per reply).
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl StreamInfoOptions {
    /// Per-subject counts for `filter`.
    pub fn subjects(filter: impl Into<String>) -> StreamInfoOptions {
        StreamInfoOptions {
            subjects_filter: Some(filter.into()),
            ..StreamInfoOptions::default()
        }
    }

    /// Also list deleted sequences.
    pub fn deleted_details(mut self) -> StreamInfoOptions {
        self.deleted_details = true;
        self
    }
}

/// A stream info reply with its paging of subjects.
#[derive(Deserialize)]
struct InfoPage {
    #[serde(flatten)]
    info: StreamInfo,
    #[serde(default)]
    total: usize,
    #[serde(default)]
    offset: usize,
}

impl Context {
    /// A stream's info with per-subject counts and/or deleted sequences (one page of
    /// subjects: see [`Context::stream_subjects`] for all of them).
    pub async fn stream_info_with(
        &self,
        name: &str,
        options: &StreamInfoOptions,
    ) -> Result<StreamInfo, JetStreamError> {
        check_name("stream", name)?;
        let page: InfoPage = self
            .request(&format!("STREAM.INFO.{name}"), options)
            .await?;
        Ok(page.info)
    }

    /// How many messages each subject matching `filter` holds (every page).
    pub async fn stream_subjects(
        &self,
        name: &str,
        filter: &str,
    ) -> Result<std::collections::HashMap<String, u64>, JetStreamError> {
        check_name("stream", name)?;
        let mut options = StreamInfoOptions::subjects(filter);
        let mut all = std::collections::HashMap::new();
        loop {
            let page: InfoPage = self
                .request(&format!("STREAM.INFO.{name}"), &options)
                .await?;
            let got = page.info.state.subjects.len();
            all.extend(page.info.state.subjects);
            let next = page.offset + got;
            if got == 0 || next >= page.total {
                return Ok(all);
            }
            options.offset = next;
        }
    }
}

/// A handle to one stream: its last known info, message access and its consumers.
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) context: Context,
    pub(crate) name: String,
    info: StreamInfo,
}

impl Stream {
    pub(crate) fn from_info(context: Context, info: StreamInfo) -> Stream {
        Stream {
            context,
            name: info.config.name.clone(),
            info,
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The context this handle uses.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The info as of creation or the last [`Stream::info`].
    pub fn cached_info(&self) -> &StreamInfo {
        &self.info
    }

    /// Fetches fresh info and remembers it.
    pub async fn info(&mut self) -> Result<&StreamInfo, JetStreamError> {
        self.info = self.context.stream_info(&self.name).await?;
        Ok(&self.info)
    }

    /// Purges every message; returns how many went.
    pub async fn purge(&self) -> Result<u64, JetStreamError> {
        self.context
            .purge_stream(&self.name, &Purge::default())
            .await
    }

    /// Purges as `purge` says (subject filter, keep, up to a sequence).
    pub async fn purge_with(&self, purge: &Purge) -> Result<u64, JetStreamError> {
        self.context.purge_stream(&self.name, purge).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_requests() {
        let v = serde_json::to_value(Purge::default().filter("a.>").keep(3)).unwrap();
        assert_eq!(v, serde_json::json!({"filter": "a.>", "keep": 3}));
        let v = serde_json::to_value(Purge::default().keep(3).sequence(9)).unwrap();
        assert_eq!(v, serde_json::json!({"seq": 9}));
        assert_eq!(serde_json::to_vec(&Purge::default()).unwrap(), b"{}");
    }

    #[test]
    fn pages() {
        let r: PagedResponse<String> =
            serde_json::from_str(r#"{"total":3,"offset":0,"limit":2,"streams":["a","b"]}"#)
                .unwrap();
        let p = r.into_page();
        assert_eq!(p.next_offset(), Some(2));
        let r: PagedResponse<String> =
            serde_json::from_str(r#"{"total":0,"offset":0,"limit":2,"streams":null}"#).unwrap();
        assert_eq!(r.into_page().next_offset(), None);
        let r: PagedResponse<String> =
            serde_json::from_str(r#"{"total":1,"offset":0,"limit":2,"consumers":["c"]}"#).unwrap();
        assert_eq!(r.into_page().items, ["c"]);
    }
}
