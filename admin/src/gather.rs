//! Scatter-gather: one request, every reply until an expected count, a quiet period or a
//! deadline.
//!
//! This is the only place that does it, so it can become a call to the client's
//! `request_many` once that exists; the contract below is what the rest of the crate relies on.

use std::time::Duration;

use futures::StreamExt;
use nats_client::{Client, Message, StatusCode};
use tokio::time::Instant;

use crate::AdminError;

/// Publishes `payload` to `subject` with a fresh inbox as the reply subject and collects the
/// replies. Stops at the first of: `expected` replies; `quiet` without a reply once one has
/// arrived; `deadline` after sending; a status message (a 503 "no responders" comes back as
/// the only reply, and is returned for the caller to judge). Returns the replies in arrival
/// order, possibly none (nothing at all, not even the flush, within the deadline).
pub(crate) async fn gather(
    client: &Client,
    subject: &str,
    payload: &[u8],
    expected: Option<usize>,
    quiet: Duration,
    deadline: Duration,
) -> Result<Vec<Message>, AdminError> {
    let end = Instant::now() + deadline;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    client.publish_with_reply(subject, &inbox, payload).await?;
    // While disconnected, a flush waits for the reconnect: never past the deadline.
    match tokio::time::timeout_at(end, client.flush()).await {
        Ok(flushed) => flushed?,
        Err(_) => return Ok(Vec::new()),
    }
    let mut got = Vec::new();
    loop {
        if expected.is_some_and(|n| got.len() >= n) {
            break;
        }
        let wait_until = if got.is_empty() {
            end
        } else {
            end.min(Instant::now() + quiet)
        };
        match tokio::time::timeout_at(wait_until, replies.next()).await {
            Ok(Some(msg)) => {
                let status = msg.status;
                got.push(msg);
                if status.is_some_and(|s| s != StatusCode::OK) {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    Ok(got)
}
