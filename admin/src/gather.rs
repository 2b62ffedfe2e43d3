//! Scatter-gather: one request, every reply until an expected count, a quiet period or a
//! deadline, over the client's [`request_many`](nats_client::Client::request_many).
//!
//! This is the only place the crate gathers replies; the contract below is what the rest of
//! it relies on.

use std::time::Duration;

use futures::StreamExt;
use nats_client::{Client, Message, RepliesEnd, RequestError};

use crate::AdminError;

/// Sends `payload` to `subject` and collects the replies. Stops at the first of: `expected`
/// replies; `quiet` without a reply once one has arrived; `deadline` after sending. Returns
/// the replies in arrival order, possibly none. A `503` (nobody subscribes) is
/// [`AdminError::NoResponders`]; a connection lost or closed meanwhile is an error too, since
/// the servers that did not answer could not have.
pub(crate) async fn gather(
    client: &Client,
    subject: &str,
    payload: &[u8],
    expected: Option<usize>,
    quiet: Duration,
    deadline: Duration,
) -> Result<Vec<Message>, AdminError> {
    let mut request = client
        .request_many(subject, payload.to_vec())
        .stall(quiet)
        .timeout(deadline);
    if let Some(n) = expected {
        request = request.max_messages(n);
    }
    let mut replies = request.send().await.map_err(|e| match e {
        RequestError::NoResponders { subject } => AdminError::NoResponders { subject },
        other => AdminError::Request(other),
    })?;
    let mut got = Vec::new();
    while let Some(msg) = replies.next().await {
        got.push(msg);
    }
    match replies.end() {
        Some(RepliesEnd::NoResponders) => Err(AdminError::NoResponders {
            subject: subject.to_string(),
        }),
        Some(RepliesEnd::Disconnected) => Err(AdminError::Request(RequestError::Disconnected {
            subject: subject.to_string(),
        })),
        Some(RepliesEnd::Closed) => Err(AdminError::Request(RequestError::Closed)),
        _ => Ok(got),
    }
}
