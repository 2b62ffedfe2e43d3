//! The ack tracker: one task per [`Context`](crate::Context) drives every publish that is
//! resent on a lost ack (a `Nats-Msg-Id`, or `at_least_once`) until its ack is in, and hands the outcome to the publish's
//! [`PublishAckFuture`](crate::PublishAckFuture) through a oneshot.
//!
//! Why a task at all: such a publish is resent after a lost connection, a stream leader
//! change or a `503`, and those resends must go on while the application awaits other acks
//! (a window of publishes hit by an election recovers all at once, not one backoff after
//! another in the order the futures are awaited). Why one task and not one per publish: a
//! spawn per message cost about a fifth of the client's CPU on a durable publish path (task
//! allocation, a trip through the scheduler, a join handle, and a leader-change watch of its
//! own); here a publish costs a channel send and a oneshot, and the whole window shares one
//! leader-change watch. On a leader change every tracked publish still waiting for its ack is
//! sent again at once.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use nats_client::Client;
use tokio::sync::{mpsc, oneshot};

use crate::error::JetStreamError;
use crate::publish::PubAck;
use crate::publisher::{Attempts, LeaderChanges};

/// What a tracked publish's future receives.
pub(crate) type Outcome = Result<PubAck, JetStreamError>;

/// The sending side of a context's tracker task (clones of the context share it); the task
/// is started by the first tracked publish, and again if its runtime went away.
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    tx: Mutex<Option<mpsc::UnboundedSender<Tracked>>>,
}

impl AckTracker {
    /// Hands `attempts` (sent when the leader-change count was `stamp`) to the tracker task;
    /// the outcome comes through the returned receiver.
    pub(crate) fn track(
        &self,
        attempts: Attempts,
        stamp: u64,
        leaders: &Arc<LeaderChanges>,
        client: &Client,
    ) -> oneshot::Receiver<Outcome> {
        let (reply_to, rx) = oneshot::channel();
        let mut tracked = Tracked {
            attempts,
            reply_to: Some(reply_to),
            stamp,
        };
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(sender) = tx.as_ref() {
                match sender.send(tracked) {
                    Ok(()) => return rx,
                    // The task is gone (its runtime shut down): start another.
                    Err(mpsc::error::SendError(back)) => tracked = back,
                }
            }
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(run(receiver, leaders.clone(), client.clone()));
            *tx = Some(sender);
        }
    }
}

/// One publish in the tracker, with where its outcome goes.
pub(crate) struct Tracked {
    attempts: Attempts,
    /// `None` once the outcome is sent.
    reply_to: Option<oneshot::Sender<Outcome>>,
    /// The leader-change count before the message was sent.
    stamp: u64,
}

impl Future for Tracked {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let Some(reply_to) = self.reply_to.as_mut() else {
            return Poll::Ready(());
        };
        // The future was dropped: give up on the ack and stop resending. Checked whenever
        // this is polled (so before any resend), without a waker of its own: an attempt
        // already sent ends with its ack or its timeout.
        if reply_to.is_closed() {
            return Poll::Ready(());
        }
        let outcome = std::task::ready!(Pin::new(&mut self.attempts).poll(cx));
        if let Some(reply_to) = self.reply_to.take() {
            // A receiver dropped just now has given up on the outcome: nothing to do.
            let _ = reply_to.send(outcome);
        }
        Poll::Ready(())
    }
}

/// The tracker task: takes new publishes, resends the waiting ones on a leader change, and
/// drives them all; ends when every context holding the tracker is gone and nothing is left.
async fn run(
    mut rx: mpsc::UnboundedReceiver<Tracked>,
    leaders: Arc<LeaderChanges>,
    client: Client,
) {
    let mut set: FuturesUnordered<Tracked> = FuturesUnordered::new();
    // Watch first, then read the count: a change in between is in the count (so a publish
    // stamped before it is resent on intake) or fires the signal.
    let mut signal = leaders.next(&client);
    let mut seen = leaders.current();
    let mut open = true;
    poll_fn(|cx| {
        loop {
            while open {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(mut t)) => {
                        if t.stamp < seen {
                            t.attempts.leader_changed();
                        }
                        set.push(t);
                    }
                    Poll::Ready(None) => open = false,
                    Poll::Pending => break,
                }
            }
            if signal.as_mut().poll(cx).is_ready() {
                signal = leaders.next(&client);
                seen = leaders.current();
                // Re-pushed futures are polled again, so their resends start now.
                for mut t in std::mem::take(&mut set) {
                    t.attempts.leader_changed();
                    set.push(t);
                }
                continue;
            }
            while let Poll::Ready(Some(())) = set.poll_next_unpin(cx) {}
            return match !open && set.is_empty() {
                true => Poll::Ready(()),
                false => Poll::Pending,
            };
        }
    })
    .await;
}
