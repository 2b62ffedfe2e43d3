//! Consuming a design-E queue (`crate::local_queue`): `basic.consume` attaches to the
//! connection's in-memory queue, `basic.get` takes from it. Acks, rejects, cancels and
//! channel closes go through the channel's common paths (`crate::consume`), which settle a
//! local delivery on its queue.

use std::sync::Arc;

use crate::channel::Channel;
use crate::connection::ConnectionInner;
use crate::consume::{Consumer, Feed, Pending, Running};
use crate::error::Result;
use crate::local_queue::{LocalHeld, LocalQueue};
use crate::message::BasicGetMessage;
use crate::options::{BasicConsumeOptions, BasicGetOptions, QueueDeclareOptions};
use crate::routing::{QueueDecl, StorageTier};
use crate::types::ShortString;

/// Before the declare of a named exclusive queue this connection does not hold yet: holds
/// it (subscribed), in case the declare makes it design E. True when it did.
pub(crate) async fn open_early(
    conn: &ConnectionInner,
    name: &str,
    options: QueueDeclareOptions,
) -> Result<bool> {
    if !options.exclusive || options.passive || name.is_empty() || conn.local.get(name).is_some() {
        return Ok(false);
    }
    // A name the topology already has (a stream's queue, another connection's exclusive
    // one) cannot become this connection's design-E queue: holding it would answer its
    // publishes in the stream's place while the declare fails.
    if conn.store.read(|t| t.queue(name).is_some()) {
        return Ok(false);
    }
    let subject = conn.queue_subjects.get(&conn.mapper, name);
    conn.local.open(&conn.client, name, &subject).await?;
    Ok(true)
}

/// The declare failed: drops what [`open_early`] held, unless the topology names it this
/// connection's design-E queue: another channel's declare of the same name, running at the
/// same time, found it held and keeps it (it may be why this one failed).
pub(crate) fn undo_early(conn: &ConnectionInner, name: &str, early: bool) {
    let declared = conn.store.read(|t| {
        t.queue(name).is_some_and(|d| {
            d.tier == StorageTier::Local && d.exclusive_owner.as_deref() == Some(conn.id.as_str())
        })
    });
    if early && !declared {
        conn.local.delete(name);
    }
}

/// After the declare: holds the queue when it is this connection's design-E queue (with its
/// `x-message-ttl`), else drops what [`open_early`] held.
pub(crate) async fn open_declared(
    conn: &ConnectionInner,
    name: &str,
    decl: Option<&QueueDecl>,
    early: bool,
) -> Result<()> {
    let ours = decl.filter(|d| {
        d.tier == StorageTier::Local && d.exclusive_owner.as_deref() == Some(conn.id.as_str())
    });
    let Some(decl) = ours else {
        undo_early(conn, name, early);
        return Ok(());
    };
    let subject = conn.queue_subjects.get(&conn.mapper, name);
    let queue = conn.local.open(&conn.client, name, &subject).await?;
    queue.set_ttl(decl.arguments.message_ttl);
    Ok(())
}

impl Channel {
    /// `basic.consume` of a local queue: the consumer is served round robin with the
    /// others, within the channel's prefetch for new consumers (`basic.qos`, `global =
    /// false`) and its shared one.
    pub(crate) fn consume_local(
        &self,
        local: Arc<LocalQueue>,
        queue: ShortString,
        tag: String,
        options: BasicConsumeOptions,
    ) -> Consumer {
        let prefetch = self.inner.consume_state().prefetch;
        let (id, deliveries) = local.attach(&self.inner, options.no_ack, prefetch);
        self.inner.consume_state().consumers.insert(
            tag.clone(),
            Running {
                queue: queue.to_string(),
                how: Feed::Local { queue: local, id },
            },
        );
        Consumer::local(tag.into(), queue, deliveries)
    }

    /// `basic.get` of a local queue: the oldest ready message, with how many stay ready.
    pub(crate) async fn get_local(
        &self,
        local: &Arc<LocalQueue>,
        options: BasicGetOptions,
    ) -> Result<Option<BasicGetMessage>> {
        // Messages this connection published before the call are in the queue once the
        // server answered a flush (it forwards them to us before the PONG).
        self.inner
            .conn
            .client
            .flush()
            .await
            .map_err(crate::store::nats_error)?;
        let Some((item, message_count)) = local.get(!options.no_ack) else {
            return Ok(None);
        };
        let mut s = self.inner.consume_state();
        let tag = match options.no_ack {
            true => s.unacked.next_tag(),
            false => s.unacked.peek_next_tag(),
        };
        let delivery = item.delivery(&self.inner, tag);
        if !options.no_ack {
            s.unacked
                .deliver(Pending::Local(LocalHeld::new(local.clone(), item)));
        }
        Ok(Some(BasicGetMessage {
            delivery,
            message_count,
        }))
    }
}
