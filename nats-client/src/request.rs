//! Request/reply over one wildcard inbox subscription per client.
//!
//! Each request takes a token, waits on a oneshot, and removes its entry when it completes,
//! times out or is dropped: the map never keeps an abandoned request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use crate::lock;
use crate::message::Message;

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

    /// Registers a request; the guard removes it when dropped.
    pub fn register(&self) -> (PendingRequest<'_>, String, oneshot::Receiver<Message>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(token, tx);
        let mut reply = String::with_capacity(self.prefix.len() + 20);
        reply.push_str(&self.prefix);
        reply.push_str(itoa::Buffer::new().format(token));
        (PendingRequest { mux: self, token }, reply, rx)
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

/// Removes its request from the map when dropped (reply received, timed out, or the caller
/// gave up on the future).
pub(crate) struct PendingRequest<'a> {
    mux: &'a RequestMux,
    token: u64,
}

impl Drop for PendingRequest<'_> {
    fn drop(&mut self) {
        lock(&self.mux.pending).remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn entries_never_outlive_their_request() {
        let mux = RequestMux::new("_INBOX");
        let (guard, reply, mut rx) = mux.register();
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
        drop(guard);
        let (guard, _, _) = mux.register();
        drop(guard);
        assert_eq!(mux.len(), 0);
    }
}
