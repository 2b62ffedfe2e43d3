//! The runs with this project's client, `nats_client`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use futures::StreamExt;
use nats_client::Client;

use crate::common::{BenchError, wait_for_subscriber};
use crate::scenario::{Sample, Workload};

async fn connect(w: &Workload) -> Result<Client, BenchError> {
    Ok(nats_client::connect(w.url.as_str()).await?)
}

/// N publishes, then a flush.
async fn publish_all(client: &Client, w: &Workload) -> Result<(), BenchError> {
    let payload: &[u8] = &w.payload;
    for _ in 0..w.messages {
        client
            .publish(w.subject.as_str(), black_box(payload))
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
