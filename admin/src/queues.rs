//! [`QueueAdmin::list_queues`] and [`QueueAdmin::delete_queue`]: the management API's queue
//! listing and deletion over amqp-compat's topology.
//!
//! A vhost is an amqp-compat namespace, as amqp-compat's connection URL makes it
//! (`amqp://host/<vhost>`): `/` (or empty) is no namespace, any other vhost the namespace of
//! its own name. Its topology is the KV bucket `AMQP_TOPOLOGY[_<ns>]` of the account the
//! [`QueueAdmin`]'s JetStream context is in. A service connecting with an explicit
//! `?namespace=` different from its vhost is listed under the namespace's name.

use std::collections::{BTreeMap, BTreeSet};

use amqp_compat::SubjectMapper;
use amqp_compat::exchange_storage::{
    QUEUE_STREAM_CONSUMER, d_source, exchange_stream, is_d, queue_consumer, ready_without_consumer,
};
use amqp_compat::options::QueueDeleteOptions;
use amqp_compat::routing::{ExchangeEntry, QueueDecl, QueueEntry, StorageTier, Topology};
use amqp_compat::storage::{local_queue_delete, local_queue_depth, queue_stream};
use amqp_compat::store::{Scope, TopologyStore};
use futures::{StreamExt, TryStreamExt};
use jetstream::{ErrorCode, JetStreamError};
use serde::Serialize;

use crate::{AdminError, QueueAdmin};

/// How many queues' JetStream state is asked for at once.
const CONCURRENT: usize = 32;
/// How long the owner of a design-E queue has to answer.
const OWNER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// One page of a listing, in the management API's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// This page's number, from 1.
    pub page: u64,
    /// How many pages the filtered items fill (at least 1).
    pub page_count: u64,
    /// Items per page.
    pub page_size: u64,
    /// Items on this page.
    pub item_count: u64,
    /// Items matching the filter.
    pub filtered_count: u64,
    /// Items before filtering.
    pub total_count: u64,
}

/// The storage design of a queue (`docs/amqp-mapping.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueDesign {
    /// Design B: a WorkQueue stream of its own, read by one consumer.
    Stream,
    /// Design D: a consumer on its exchange's stream.
    Consumer,
    /// Design E: an exclusive queue in its owning connection's memory (no JetStream
    /// state); its counts are asked of the owner.
    Local,
}

/// Where a queue's messages live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStorageInfo {
    /// The design.
    pub design: QueueDesign,
    /// The stream: the queue's own (B), or its exchange's (D; `None` while unbound).
    pub stream: Option<String>,
    /// The JetStream consumer delivering it (design E: `connection <id>`, its owner).
    pub consumer: String,
    /// False when the counts could not be read (a design-E queue whose owner did not
    /// answer: it is gone, and the queue is reaped with its lease); they show 0 then.
    pub counted: bool,
}

/// One queue, as the management API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// Its vhost.
    pub vhost: String,
    /// Survives restarts.
    pub durable: bool,
    /// Owned by one connection.
    pub exclusive: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Its arguments as declared.
    pub arguments: BTreeMap<String, serde_json::Value>,
    /// Messages in it: ready plus unacknowledged.
    pub messages: u64,
    /// Messages ready for delivery.
    pub messages_ready: u64,
    /// Messages delivered and not yet acknowledged.
    pub messages_unacknowledged: u64,
    /// AMQP consumers attached (across every connected process).
    pub consumers: u32,
    /// Where its messages live.
    pub storage: QueueStorageInfo,
}

/// The amqp-compat namespace of `vhost`.
pub fn vhost_namespace(vhost: &str) -> Option<&str> {
    match vhost {
        "" | "/" => None,
        v => Some(v),
    }
}

fn js_error(e: impl std::fmt::Display) -> AdminError {
    AdminError::JetStream(e.to_string())
}

fn not_found(e: &JetStreamError) -> bool {
    e.is_api(ErrorCode::STREAM_NOT_FOUND) || e.is_api(ErrorCode::CONSUMER_NOT_FOUND)
}

fn argument_json(v: &amqp_compat::routing::ArgValue) -> serde_json::Value {
    use amqp_compat::routing::ArgValue;
    match v {
        ArgValue::Int(i) => (*i).into(),
        ArgValue::Str(s) => s.clone().into(),
        ArgValue::Bool(b) => (*b).into(),
        ArgValue::Other(o) => serde_json::to_value(o).unwrap_or(serde_json::Value::Null),
    }
}

fn storage_of(t: &Topology, mapper: &SubjectMapper, decl: &QueueDecl) -> QueueStorageInfo {
    if decl.tier == StorageTier::Local {
        return QueueStorageInfo {
            design: QueueDesign::Local,
            stream: None,
            consumer: format!(
                "connection {}",
                decl.exclusive_owner.as_deref().unwrap_or("?")
            ),
            counted: true,
        };
    }
    match is_d(decl) {
        false => QueueStorageInfo {
            design: QueueDesign::Stream,
            stream: Some(queue_stream(mapper.namespace(), &decl.name)),
            consumer: QUEUE_STREAM_CONSUMER.to_string(),
            counted: true,
        },
        true => QueueStorageInfo {
            design: QueueDesign::Consumer,
            stream: d_source(t, &decl.name, mapper)
                .ok()
                .flatten()
                .map(|s| exchange_stream(mapper.namespace(), &s.exchange)),
            consumer: queue_consumer(&decl.name),
            counted: true,
        },
    }
}

/// Queues `names` as stored now, with the exchanges their bindings come from (what their
/// storage depends on), read with a bounded number of requests in flight.
async fn load_partial(store: &TopologyStore, names: &[String]) -> Result<Topology, AdminError> {
    let entries: Vec<(String, Option<QueueEntry>)> = futures::stream::iter(names)
        .map(|n| async move {
            Ok::<_, AdminError>((n.clone(), store.queue_entry(n).await.map_err(js_error)?))
        })
        .buffered(CONCURRENT)
        .try_collect()
        .await?;
    let sources: BTreeSet<String> = entries
        .iter()
        .flat_map(|(_, e)| {
            e.iter()
                .flat_map(|q| q.bindings.iter().map(|b| b.source.clone()))
        })
        .collect();
    let exchanges: Vec<(String, Option<ExchangeEntry>)> = futures::stream::iter(sources)
        .map(|x| async move {
            let e = store.exchange_entry(&x).await.map_err(js_error)?;
            Ok::<_, AdminError>((x, e))
        })
        .buffered(CONCURRENT)
        .try_collect()
        .await?;
    let mut t = Topology::new();
    for (name, e) in exchanges {
        t.set_exchange_entry(&name, e);
    }
    for (name, e) in entries {
        t.set_queue_entry(&name, e);
    }
    Ok(t)
}

impl QueueAdmin<'_> {
    fn jetstream(&self) -> Result<&jetstream::Context, AdminError> {
        self.js.as_ref().ok_or(AdminError::NeedsJetStream)
    }

    /// The queues of `vhost` whose names match `name_regex` (all without one), sorted by
    /// name, page `page` (from 1) of `page_size`: the management API's
    /// `GET /api/queues/{vhost}?name=R&use_regex=true&page=N&page_size=M`. The topology is
    /// not read whole: the queue names come from the bucket's keys (no values), are
    /// filtered and sorted, and only the page's queues are read (their entries, then their
    /// JetStream state: depth, unacked).
    /// A page past the last is empty; `page` or `page_size` 0 is an invalid argument.
    pub async fn list_queues(
        &self,
        vhost: &str,
        name_regex: Option<&str>,
        page: u64,
        page_size: u64,
    ) -> Result<Page<QueueInfo>, AdminError> {
        if page == 0 || page_size == 0 {
            return Err(AdminError::InvalidArgument(
                "page and page_size start at 1".to_string(),
            ));
        }
        let filter = name_regex
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| AdminError::InvalidArgument(format!("name regex: {e}")))?;
        let js = self.jetstream()?;
        let namespace = vhost_namespace(vhost);
        let mapper = SubjectMapper::new(namespace)
            .map_err(|e| AdminError::InvalidArgument(format!("vhost {vhost:?}: {e}")))?;
        let Some(store) = TopologyStore::bind(js, namespace).await.map_err(js_error)? else {
            return Ok(Page {
                items: Vec::new(),
                page,
                page_count: 1,
                page_size,
                item_count: 0,
                filtered_count: 0,
                total_count: 0,
            });
        };
        // Names from the keys alone (no values); sorted by name: a stable order across calls.
        let mut names = store.queue_names().await.map_err(js_error)?;
        names.sort_unstable();
        let total = names.len() as u64;
        names.retain(|n| filter.as_ref().is_none_or(|r| r.is_match(n)));
        let filtered = names.len() as u64;
        let start = (page - 1).saturating_mul(page_size);
        let on_page: Vec<String> = names
            .into_iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(usize::try_from(page_size).unwrap_or(usize::MAX))
            .collect();
        // Only the page's entries are read (a queue deleted since the listing is left out).
        let topology = load_partial(&store, &on_page).await?;
        let on_page: Vec<&QueueDecl> = on_page.iter().filter_map(|n| topology.queue(n)).collect();
        let items: Vec<QueueInfo> = futures::stream::iter(on_page)
            .map(|decl| self.queue_info(js, vhost, &topology, &mapper, decl))
            .buffered(CONCURRENT)
            .try_collect()
            .await?;
        Ok(Page {
            item_count: items.len() as u64,
            items,
            page,
            page_count: filtered.div_ceil(page_size).max(1),
            page_size,
            filtered_count: filtered,
            total_count: total,
        })
    }

    async fn queue_info(
        &self,
        js: &jetstream::Context,
        vhost: &str,
        topology: &Topology,
        mapper: &SubjectMapper,
        decl: &QueueDecl,
    ) -> Result<QueueInfo, AdminError> {
        let mut storage = storage_of(topology, mapper, decl);
        let (stored, pending, unacked) = match &storage.stream {
            None if storage.design == QueueDesign::Local => {
                let depth = local_queue_depth(js.client(), mapper, &decl.name, OWNER_TIMEOUT);
                match depth.await {
                    Some(d) => (d.ready + d.unacked, d.ready, d.unacked),
                    None => {
                        storage.counted = false;
                        (0, 0, 0)
                    }
                }
            }
            None => (0, 0, 0),
            Some(stream) => {
                let consumer = match js.consumer_info(stream, &storage.consumer).await {
                    Ok(c) => Some(c),
                    Err(e) if not_found(&e) => None,
                    Err(e) => return Err(js_error(e)),
                };
                let stored = match storage.design {
                    QueueDesign::Consumer | QueueDesign::Local => 0,
                    QueueDesign::Stream => match js.stream_info(stream).await {
                        Ok(info) => info.state.messages,
                        Err(e) if not_found(&e) => 0,
                        Err(e) => return Err(js_error(e)),
                    },
                };
                let pending = match (&consumer, storage.design) {
                    (Some(c), _) => c.num_pending,
                    (None, QueueDesign::Stream | QueueDesign::Local) => 0,
                    // A D queue without its consumer now (never consumed, or idle): count
                    // from its checkpoint.
                    (None, QueueDesign::Consumer) => {
                        ready_without_consumer(js, topology, mapper, &decl.name)
                            .await
                            .map_err(js_error)?
                            .unwrap_or(0)
                    }
                };
                let unacked = consumer.as_ref().map_or(0, |c| c.num_ack_pending);
                (stored, pending, unacked)
            }
        };
        // B: the WorkQueue stream holds every message until acked. D: the consumer's
        // pending messages plus the ones it delivered and awaits acks for.
        let messages = match storage.design {
            QueueDesign::Stream | QueueDesign::Local => stored,
            QueueDesign::Consumer => pending + unacked,
        };
        Ok(QueueInfo {
            name: decl.name.clone(),
            vhost: vhost.to_string(),
            durable: decl.durable,
            exclusive: decl.exclusive_owner.is_some(),
            auto_delete: decl.auto_delete,
            arguments: decl
                .arguments
                .raw
                .iter()
                .map(|(k, v)| (k.clone(), argument_json(v)))
                .collect(),
            messages,
            messages_ready: messages.saturating_sub(unacked),
            messages_unacknowledged: unacked,
            consumers: topology.consumers(&decl.name).count,
            storage,
        })
    }

    /// Deletes queue `name` of `vhost` (the management API's
    /// `DELETE /api/queues/{vhost}/{name}`): removes it from the topology with
    /// compare-and-set, so every connected amqp-compat process sees it gone (their consumers
    /// of it end, a passive declare gets 404), then its storage (the stream, or the consumer
    /// on its exchange's stream). Exclusive and in-use queues are deleted too, as the
    /// management API does. [`AdminError::QueueNotFound`] when there is no such queue.
    pub async fn delete_queue(&self, vhost: &str, name: &str) -> Result<QueueInfo, AdminError> {
        let js = self.jetstream()?;
        let namespace = vhost_namespace(vhost);
        let mapper = SubjectMapper::new(namespace)
            .map_err(|e| AdminError::InvalidArgument(format!("vhost {vhost:?}: {e}")))?;
        let absent = || AdminError::QueueNotFound {
            vhost: vhost.to_string(),
            name: name.to_string(),
        };
        let store = TopologyStore::bind(js, namespace)
            .await
            .map_err(js_error)?
            .ok_or_else(absent)?;
        let before = load_partial(&store, &[name.to_string()]).await?;
        let decl = before.queue(name).ok_or_else(absent)?;
        let info = self.queue_info(js, vhost, &before, &mapper, decl).await?;
        let removed = store
            .modify(&Scope::queue(name), |t| {
                let Some(decl) = t.queue(name) else {
                    return Ok(None);
                };
                let storage = storage_of(t, &mapper, decl);
                // The management API is no connection: act as the owner of an exclusive
                // queue, and delete regardless of consumers and messages.
                let owner = decl.exclusive_owner.clone().unwrap_or_default();
                t.delete_queue(name, QueueDeleteOptions::default(), &owner, 0)?;
                Ok(Some(storage))
            })
            .await
            .map_err(js_error)?;
        let storage = removed.ok_or_else(absent)?;
        if storage.design == QueueDesign::Local {
            // Its owner drops it and ends its consumers (a gone owner has nothing to drop).
            let _ = local_queue_delete(js.client(), &mapper, name, OWNER_TIMEOUT).await;
        }
        if let Some(stream) = &storage.stream {
            let gone = match storage.design {
                QueueDesign::Local => Ok(()),
                QueueDesign::Stream => js.delete_stream(stream).await.map(drop),
                QueueDesign::Consumer => js
                    .delete_consumer(stream, &storage.consumer)
                    .await
                    .map(drop),
            };
            match gone {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(js_error(e)),
            }
        }
        Ok(info)
    }
}
