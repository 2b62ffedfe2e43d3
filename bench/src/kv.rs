//! Key-value and ordered-consumer runs, both clients side by side.
//!
//! - `kv-put-128`: N sequential puts of 128 B into a fresh memory bucket (history 1), keys
//!   `k.<i mod 1000>`; the latency of each put (publish + stream ack).
//! - `kv-put-par-128`: N puts with [`KV_IN_FLIGHT`] in flight at once; throughput.
//! - `kv-get-128`: a fresh bucket with 1000 keys (untimed), then N sequential gets (direct
//!   get of the key's last message); the latency of each get.
//! - `ordered-128`: a fresh memory stream pre-filled with N 128 B messages (untimed), then an
//!   ordered consumer (ephemeral, ack none, pull batches of 500 for both clients) reads all N
//!   and checks their stream sequences are 1..=N.

use std::hint::black_box;
use std::time::Instant;

use futures::StreamExt;

use crate::common::BenchError;
use crate::scenario::{IDLE_TIMEOUT, Sample, Workload};

/// Puts in flight at once in `kv-put-par-*`.
pub const KV_IN_FLIGHT: usize = 64;
/// Distinct keys written and read.
const KEYS: u64 = 1000;

fn bucket(w: &Workload) -> String {
    w.stream_name()
}

fn key(i: u64) -> String {
    format!("k.{}", i % KEYS)
}

fn latency_sample(latencies: Vec<u64>, start: Instant) -> Sample {
    Sample::reqrep(latencies, start.elapsed())
}

pub mod ours {
    use super::*;
    use jetstream::kv::Config;

    async fn store(w: &Workload) -> Result<(jetstream::Context, jetstream::kv::Store), BenchError> {
        let client = nats_client::connect(w.url.as_str()).await?;
        let js = jetstream::new(client);
        let _ = js.delete_key_value(&bucket(w)).await;
        let kv = js
            .create_key_value(Config {
                storage: jetstream::StorageType::Memory,
                ..Config::new(bucket(w))
            })
            .await?;
        Ok((js, kv))
    }

    pub async fn put(w: Workload) -> Result<Sample, BenchError> {
        let (js, kv) = store(&w).await?;
        let mut latencies = Vec::with_capacity(w.messages as usize);
        let start = Instant::now();
        for i in 0..w.messages {
            let t = Instant::now();
            black_box(kv.put(&key(i), w.payload.clone()).await?);
            latencies.push(t.elapsed().as_nanos() as u64);
        }
        let sample = latency_sample(latencies, start);
        js.delete_key_value(&bucket(&w)).await?;
        js.client().close().await?;
        Ok(sample)
    }

    pub async fn put_parallel(w: Workload) -> Result<Sample, BenchError> {
        let (js, kv) = store(&w).await?;
        let start = Instant::now();
        let mut puts = futures::stream::iter(0..w.messages)
            .map(|i| {
                let kv = &kv;
                let payload = w.payload.clone();
                async move { kv.put(&key(i), payload).await }
            })
            .buffer_unordered(KV_IN_FLIGHT);
        while let Some(r) = puts.next().await {
            black_box(r?);
        }
        let elapsed = start.elapsed();
        drop(puts);
        js.delete_key_value(&bucket(&w)).await?;
        js.client().close().await?;
        Ok(Sample::publish(w.messages, elapsed))
    }

    pub async fn get(w: Workload) -> Result<Sample, BenchError> {
        let (js, kv) = store(&w).await?;
        for i in 0..KEYS {
            kv.put(&key(i), w.payload.clone()).await?;
        }
        let mut latencies = Vec::with_capacity(w.messages as usize);
        let start = Instant::now();
        for i in 0..w.messages {
            let t = Instant::now();
            let v = kv.get(&key(i)).await?;
            latencies.push(t.elapsed().as_nanos() as u64);
            if v.as_deref() != Some(&w.payload[..]) {
                return Err(format!("kv get {}: wrong value", key(i)).into());
            }
        }
        let sample = latency_sample(latencies, start);
        js.delete_key_value(&bucket(&w)).await?;
        js.client().close().await?;
        Ok(sample)
    }

    pub async fn ordered(w: Workload) -> Result<Sample, BenchError> {
        let client = nats_client::connect(w.url.as_str()).await?;
        let js = jetstream::new(client.clone()).with_publish_window(1000);
        let stream = w.stream_name();
        let _ = js.delete_stream(&stream).await;
        js.create_stream(jetstream::StreamConfig {
            storage: jetstream::StorageType::Memory,
            ..jetstream::StreamConfig::new(&stream, [w.subject.clone()])
        })
        .await?;
        let mut acks = std::collections::VecDeque::new();
        for _ in 0..w.messages {
            if acks.len() >= 1000
                && let Some(ack) = acks.pop_front()
            {
                let ack: jetstream::PublishAckFuture = ack;
                ack.await?;
            }
            acks.push_back(js.publish_async(&w.subject, w.payload.clone()).await?);
        }
        for ack in acks {
            ack.await?;
        }

        let start = Instant::now();
        let mut messages = js
            .ordered_messages(&stream, jetstream::OrderedConsumerConfig::default())
            .await?;
        let mut got = 0;
        while got < w.messages {
            match tokio::time::timeout(IDLE_TIMEOUT, messages.next()).await {
                Ok(Some(Ok(msg))) => {
                    got += 1;
                    let seq = msg.info()?.stream_sequence;
                    if seq != got {
                        return Err(format!("ordered: message {got} has sequence {seq}").into());
                    }
                    black_box(&msg.payload);
                }
                Ok(Some(Err(e))) => eprintln!("ordered (nats-client): {e}"),
                Ok(None) | Err(_) => break,
            }
        }
        let elapsed = start.elapsed();
        drop(messages);
        if got != w.messages {
            return Err(format!("ordered: {got} of {} received", w.messages).into());
        }
        js.delete_stream(&stream).await?;
        client.close().await?;
        Ok(Sample::pubsub(w.messages, got, elapsed))
    }
}

pub mod theirs {
    use super::*;
    use async_nats::jetstream::{self, kv, stream};

    async fn store(w: &Workload) -> Result<(jetstream::Context, kv::Store), BenchError> {
        let client = async_nats::connect(w.url.as_str()).await?;
        let js = jetstream::new(client);
        let _ = js.delete_key_value(bucket(w)).await;
        let kv = js
            .create_key_value(kv::Config {
                bucket: bucket(w),
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await?;
        Ok((js, kv))
    }

    pub async fn put(w: Workload) -> Result<Sample, BenchError> {
        let (js, kv) = store(&w).await?;
        let mut latencies = Vec::with_capacity(w.messages as usize);
        let start = Instant::now();
        for i in 0..w.messages {
            let t = Instant::now();
            black_box(kv.put(key(i), w.payload.clone()).await?);
            latencies.push(t.elapsed().as_nanos() as u64);
        }
        let sample = latency_sample(latencies, start);
        js.delete_key_value(bucket(&w)).await?;
        Ok(sample)
    }

    pub async fn put_parallel(w: Workload) -> Result<Sample, BenchError> {
        let (js, kv) = store(&w).await?;
        let start = Instant::now();
        let mut puts = futures::stream::iter(0..w.messages)
            .map(|i| {
                let kv = &kv;
                let payload = w.payload.clone();
                async move { kv.put(key(i), payload).await }
            })
            .buffer_unordered(KV_IN_FLIGHT);
        while let Some(r) = puts.next().await {
            black_box(r?);
        }
        let elapsed = start.elapsed();
        drop(puts);
        js.delete_key_value(bucket(&w)).await?;
        Ok(Sample::publish(w.messages, elapsed))
    }

    pub async fn get(w: Workload) -> Result<Sample, BenchError> {
        let (js, kv) = store(&w).await?;
        for i in 0..KEYS {
            kv.put(key(i), w.payload.clone()).await?;
        }
        let mut latencies = Vec::with_capacity(w.messages as usize);
        let start = Instant::now();
        for i in 0..w.messages {
            let t = Instant::now();
            let v = kv.get(key(i)).await?;
            latencies.push(t.elapsed().as_nanos() as u64);
            if v.as_deref() != Some(&w.payload[..]) {
                return Err(format!("kv get {}: wrong value", key(i)).into());
            }
        }
        let sample = latency_sample(latencies, start);
        js.delete_key_value(bucket(&w)).await?;
        Ok(sample)
    }

    pub async fn ordered(w: Workload) -> Result<Sample, BenchError> {
        let client = async_nats::connect(w.url.as_str()).await?;
        let js = jetstream::new(client.clone());
        let name = w.stream_name();
        let _ = js.delete_stream(&name).await;
        let stream = js
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![w.subject.clone()],
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await?;
        let subject = async_nats::Subject::from(w.subject.as_str());
        let mut acks = std::collections::VecDeque::new();
        for _ in 0..w.messages {
            if acks.len() >= 1000
                && let Some(ack) = acks.pop_front()
            {
                let ack: jetstream::context::PublishAckFuture = ack;
                ack.await?;
            }
            acks.push_back(js.publish(subject.clone(), w.payload.clone()).await?);
        }
        for ack in acks {
            ack.await?;
        }

        let start = Instant::now();
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await?;
        let mut messages = consumer.messages().await?;
        let mut got = 0;
        while got < w.messages {
            match tokio::time::timeout(IDLE_TIMEOUT, messages.next()).await {
                Ok(Some(Ok(msg))) => {
                    got += 1;
                    let seq = msg.info()?.stream_sequence;
                    if seq != got {
                        return Err(format!("ordered: message {got} has sequence {seq}").into());
                    }
                    black_box(&msg.payload);
                }
                Ok(Some(Err(e))) => eprintln!("ordered (async-nats): {e}"),
                Ok(None) | Err(_) => break,
            }
        }
        let elapsed = start.elapsed();
        drop(messages);
        if got != w.messages {
            return Err(format!("ordered: {got} of {} received", w.messages).into());
        }
        js.delete_stream(&name).await?;
        Ok(Sample::pubsub(w.messages, got, elapsed))
    }
}
