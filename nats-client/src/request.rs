//! Request/reply over one wildcard inbox subscription per client.
//!
//! Each request takes a token, waits on a oneshot, and removes its entry when it completes,
//! times out or is dropped: the map never keeps an abandoned request.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use nats_proto::StatusCode;
use tokio::sync::oneshot;

use crate::error::RequestError;
use crate::lock;
use crate::message::Message;
use crate::outbound::LinkState;
use crate::shared::Shared;

pub(crate) struct RequestMux {
    /// `<inbox prefix>.<nuid>.`; a reply subject is this plus the token.
    pub prefix: String,
    /// The sid of the wildcard subscription once it exists.
    pub sid: Mutex<Option<u64>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Message>>>,
    next: AtomicU64,
}

impl RequestMux {
    pub fn new(inbox_prefix: &str) -> Self {
        RequestMux {
            prefix: format!("{inbox_prefix}.{}.", nuid::next()),
            sid: Mutex::new(None),
            pending: Mutex::default(),
            next: AtomicU64::new(1),
        }
    }

    /// Registers a request: its token, reply subject and the receiver of the reply. The
    /// caller must [`RequestMux::cancel`] the token when it stops waiting.
    pub fn register(&self) -> (u64, String, oneshot::Receiver<Message>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(token, tx);
        let mut reply = String::with_capacity(self.prefix.len() + 20);
        reply.push_str(&self.prefix);
        reply.push_str(itoa::Buffer::new().format(token));
        (token, reply, rx)
    }

    /// Forgets a request (done, timed out or abandoned).
    pub fn cancel(&self, token: u64) {
        lock(&self.pending).remove(&token);
    }

    /// Routes a message that arrived on the wildcard inbox.
    pub fn deliver(&self, msg: Message) {
        let token = msg
            .subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|t| t.parse::<u64>().ok());
        if let Some(tx) = token.and_then(|t| lock(&self.pending).remove(&t)) {
            let _ = tx.send(msg);
        }
    }

    /// Fails every waiting request (their receivers see the sender dropped).
    pub fn fail_all(&self) {
        lock(&self.pending).clear();
    }

    pub fn len(&self) -> usize {
        lock(&self.pending).len()
    }
}

/// The reply to a request sent with [`Client::send_request`](crate::Client::send_request).
///
/// No timer is armed: wrap it in `tokio::time::timeout` (or race it against anything else).
/// Dropping it forgets the request, so an abandoned reply never stays in the client's map.
pub struct ReplyFuture {
    pub(crate) shared: Arc<Shared>,
    pub(crate) token: u64,
    pub(crate) subject: String,
    pub(crate) rx: oneshot::Receiver<Message>,
}

impl std::fmt::Debug for ReplyFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyFuture")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl ReplyFuture {
    /// The subject the request was sent to.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl Future for ReplyFuture {
    type Output = Result<Message, RequestError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let result = match Pin::new(&mut this.rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(msg)) if msg.status == Some(StatusCode::NO_RESPONDERS) => {
                Err(RequestError::NoResponders {
                    subject: this.subject.clone(),
                })
            }
            Poll::Ready(Ok(msg)) => Ok(msg),
            Poll::Ready(Err(_)) if this.shared.state() == LinkState::Closed => {
                Err(RequestError::Closed)
            }
            Poll::Ready(Err(_)) => Err(RequestError::Disconnected {
                subject: this.subject.clone(),
            }),
        };
        Poll::Ready(result)
    }
}

impl Drop for ReplyFuture {
    fn drop(&mut self) {
        self.shared.requests.cancel(self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn entries_never_outlive_their_request() {
        let mux = RequestMux::new("_INBOX");
        let (token, reply, mut rx) = mux.register();
        assert_eq!(mux.len(), 1);
        mux.deliver(Message {
            subject: reply.as_str().into(),
            reply: None,
            payload: Bytes::from_static(b"ok"),
            headers: None,
            status: None,
            description: None,
            length: 2,
        });
        assert_eq!(mux.len(), 0);
        assert_eq!(&rx.try_recv().unwrap().payload[..], b"ok");
        mux.cancel(token);
        let (token, _, _) = mux.register();
        assert_eq!(mux.len(), 1);
        mux.cancel(token);
        assert_eq!(mux.len(), 0);
    }
}
