//! The runs with this project's client, `nats_client`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use futures::StreamExt;
use nats_client::Client;

use crate::common::{BenchError, wait_for_subscriber};
use crate::scenario::{IDLE_TIMEOUT, JS_BATCH, JS_CONSUMER, JS_WINDOW, Sample, Workload};

async fn connect(w: &Workload) -> Result<Client, BenchError> {
    Ok(nats_client::connect(w.url.as_str()).await?)
}

/// N publishes, then a flush. The payload is handed over as `Bytes`, cloned by reference
/// count, as for async-nats (a large one is then written without a copy, a small one is
/// copied into the write buffer).
async fn publish_all(client: &Client, w: &Workload) -> Result<(), BenchError> {
    for _ in 0..w.messages {
        client
            .publish_bytes(w.subject.as_str(), black_box(w.payload.clone()))
            .await?;
    }
    client.flush().await?;
    Ok(())
}

pub async fn publish(w: Workload) -> Result<Sample, BenchError> {
    let client = connect(&w).await?;
    let start = Instant::now();
    publish_all(&client, &w).await?;
    let elapsed = start.elapsed();
    client.close().await?;
    Ok(Sample::publish(w.messages, elapsed))
}

pub async fn pubsub(w: Workload) -> Result<Sample, BenchError> {
    let sub_client = connect(&w).await?;
    let pub_client = connect(&w).await?;
    let mut sub = sub_client.subscribe(w.subject.clone()).await?;
    sub_client.flush().await?;

    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let target = w.messages;
    let task = tokio::spawn(async move {
        let mut n = 0;
        while let Some(msg) = sub.next().await {
            black_box(&msg.payload);
            n += 1;
            counter.store(n, Relaxed);
            if n == target {
                return Some(Instant::now());
            }
        }
        None
    });

    let start = Instant::now();
    publish_all(&pub_client, &w).await?;
    let (got, elapsed) = wait_for_subscriber(task, &received, start).await;
    pub_client.close().await?;
    sub_client.close().await?;
    Ok(Sample::pubsub(w.messages, got, elapsed))
}

pub async fn reqrep(w: Workload) -> Result<Sample, BenchError> {
    let responder = connect(&w).await?;
    let requester = connect(&w).await?;
    let mut sub = responder.subscribe(w.subject.clone()).await?;
    responder.flush().await?;
    let reply_payload = w.payload.clone();
    let answering = responder.clone();
    let serve = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if answering.respond(&msg, &reply_payload).await.is_err() {
                break;
            }
        }
    });

    let payload: &[u8] = &w.payload;
    // Untimed: the first request sets up the reply subscription.
    requester.request(w.subject.as_str(), payload).await?;
    let mut latencies = Vec::with_capacity(w.messages as usize);
    let start = Instant::now();
    for _ in 0..w.messages {
        let t = Instant::now();
        let reply = requester
            .request(w.subject.as_str(), black_box(payload))
            .await?;
        latencies.push(t.elapsed().as_nanos() as u64);
        black_box(reply);
    }
    let elapsed = start.elapsed();
    requester.close().await?;
    serve.abort();
    responder.close().await?;
    Ok(Sample::reqrep(latencies, elapsed))
}

/// Deletes the run's stream if it is there, then creates it afresh in memory.
async fn js_fresh_stream(js: &jetstream::Context, w: &Workload) -> Result<String, BenchError> {
    let name = w.stream_name();
    // Not there yet is the normal case: the error is of no interest.
    let _ = js.delete_stream(&name).await;
    js.create_stream(jetstream::StreamConfig {
        storage: jetstream::StorageType::Memory,
        ..jetstream::StreamConfig::new(name.as_str(), [w.subject.as_str()])
    })
    .await?;
    Ok(name)
}

/// N `publish_async`s with at most [`JS_WINDOW`] acks outstanding (the oldest is awaited when
/// the queue is full), then every remaining ack. Returns the last stream sequence.
async fn js_publish_all(js: &jetstream::Context, w: &Workload) -> Result<u64, BenchError> {
    let mut acks = VecDeque::with_capacity(JS_WINDOW);
    let mut last = 0;
    for _ in 0..w.messages {
        if acks.len() >= JS_WINDOW
            && let Some(ack) = acks.pop_front()
        {
            let ack: jetstream::PublishAckFuture = ack;
            last = ack.await?.seq;
        }
        acks.push_back(
            js.publish_async(&w.subject, black_box(w.payload.clone()))
                .await?,
        );
    }
    for ack in acks {
        last = ack.await?.seq;
    }
    Ok(last)
}

pub async fn js_publish(w: Workload) -> Result<Sample, BenchError> {
    let client = connect(&w).await?;
    let js = jetstream::new(client.clone()).with_publish_window(JS_WINDOW);
    let stream = js_fresh_stream(&js, &w).await?;
    let start = Instant::now();
    let last = js_publish_all(&js, &w).await?;
    let elapsed = start.elapsed();
    let stored = js.stream_info(&stream).await?.state.messages;
    if last != w.messages || stored != w.messages {
        return Err(format!(
            "js publish: {} sent, last ack seq {last}, {stored} stored",
            w.messages
        )
        .into());
    }
    js.delete_stream(&stream).await?;
    client.close().await?;
    Ok(Sample::publish(w.messages, elapsed))
}

pub async fn js_consume(w: Workload) -> Result<Sample, BenchError> {
    let client = connect(&w).await?;
    let js = jetstream::new(client.clone()).with_publish_window(JS_WINDOW);
    let stream = js_fresh_stream(&js, &w).await?;
    js_publish_all(&js, &w).await?;
    let consumer = js
        .create_consumer(
            &stream,
            jetstream::ConsumerConfig {
                ack_policy: jetstream::AckPolicy::Explicit,
                ..jetstream::ConsumerConfig::durable(JS_CONSUMER)
            },
        )
        .await?;

    let start = Instant::now();
    let mut messages = consumer
        .consume(jetstream::ConsumeOptions {
            max_messages: JS_BATCH,
            ..jetstream::ConsumeOptions::default()
        })
        .await?;
    let mut got = 0;
    while got < w.messages {
        match tokio::time::timeout(IDLE_TIMEOUT, messages.next()).await {
            Ok(Some(Ok(msg))) => {
                black_box(&msg.message().payload);
                msg.ack().await?;
                got += 1;
            }
            Ok(Some(Err(e))) => eprintln!("js consume (nats-client): {e}"),
            Ok(None) => break,
            Err(_) => break,
        }
    }
    // A round trip: the server has read every ack.
    client.flush().await?;
    let elapsed = start.elapsed();
    drop(messages);
    if got != w.messages {
        return Err(format!("js consume: {got} of {} received", w.messages).into());
    }
    js.delete_stream(&stream).await?;
    client.close().await?;
    Ok(Sample::pubsub(w.messages, got, elapsed))
}
