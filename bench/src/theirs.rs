//! The runs with async-nats, used the way it is fastest: a prebuilt `Subject` and a `Bytes`
//! payload, both cloned by reference count per publish (no allocation per message on our side).
//!
//! async-nats' `flush()` only writes its buffer to the socket; it is not a round trip. A SUB
//! "flushed" that way may not be registered yet when the publisher starts (on a busy machine
//! the server reads the publisher's connection first and drops the first thousands of
//! messages), and a publish run would end before the server has the data. So where the other
//! clients flush (PING/PONG), this one flushes and then makes a server round trip: a request to
//! a subject nobody listens on, which the server answers with "no responders" after processing
//! everything the connection sent before it.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use async_nats::{Client, ConnectOptions, Subject, client::RequestErrorKind, jetstream};
use futures::StreamExt;

use crate::common::{BenchError, wait_for_subscriber};
use crate::scenario::{IDLE_TIMEOUT, JS_BATCH, JS_CONSUMER, JS_WINDOW, Sample, Workload};

async fn connect(w: &Workload, subscription_capacity: Option<usize>) -> Result<Client, BenchError> {
    let mut opts = ConnectOptions::new();
    if let Some(capacity) = subscription_capacity {
        opts = opts.subscription_capacity(capacity);
    }
    Ok(opts.connect(w.url.as_str()).await?)
}

/// `flush()` plus a server round trip (see the module docs).
async fn flush(client: &Client) -> Result<(), BenchError> {
    client.flush().await?;
    match client
        .request("bench.sync.nobody", bytes::Bytes::new())
        .await
    {
        Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(e.into()),
        Ok(_) => Err("bench.sync.nobody has a responder".into()),
    }
}

async fn publish_all(client: &Client, w: &Workload) -> Result<(), BenchError> {
    let subject = Subject::from(w.subject.as_str());
    for _ in 0..w.messages {
        client
            .publish(subject.clone(), black_box(w.payload.clone()))
            .await?;
    }
    flush(client).await
}

pub async fn publish(w: Workload) -> Result<Sample, BenchError> {
    let client = connect(&w, None).await?;
    let start = Instant::now();
    publish_all(&client, &w).await?;
    let elapsed = start.elapsed();
    drop(client);
    Ok(Sample::publish(w.messages, elapsed))
}

pub async fn pubsub(w: Workload) -> Result<Sample, BenchError> {
    // A channel as large as the run: async-nats drops when it is full, and it must not here.
    let sub_client = connect(&w, Some(w.async_nats_subscription_capacity())).await?;
    let pub_client = connect(&w, None).await?;
    let mut sub = sub_client.subscribe(w.subject.clone()).await?;
    flush(&sub_client).await?;

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
    drop(pub_client);
    drop(sub_client);
    Ok(Sample::pubsub(w.messages, got, elapsed))
}

pub async fn reqrep(w: Workload) -> Result<Sample, BenchError> {
    let responder = connect(&w, None).await?;
    let requester = connect(&w, None).await?;
    let mut sub = responder.subscribe(w.subject.clone()).await?;
    flush(&responder).await?;
    let reply_payload = w.payload.clone();
    let answering = responder.clone();
    let serve = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply
                && answering
                    .publish(reply, reply_payload.clone())
                    .await
                    .is_err()
            {
                break;
            }
        }
    });

    let subject = Subject::from(w.subject.as_str());
    // Untimed: the first request sets up the reply subscription.
    requester
        .request(subject.clone(), w.payload.clone())
        .await?;
    let mut latencies = Vec::with_capacity(w.messages as usize);
    let start = Instant::now();
    for _ in 0..w.messages {
        let t = Instant::now();
        let reply = requester
            .request(subject.clone(), black_box(w.payload.clone()))
            .await?;
        latencies.push(t.elapsed().as_nanos() as u64);
        black_box(reply);
    }
    let elapsed = start.elapsed();
    serve.abort();
    drop(requester);
    drop(responder);
    Ok(Sample::reqrep(latencies, elapsed))
}

/// Deletes the run's stream if it is there, then creates it afresh in memory.
async fn js_fresh_stream(
    js: &jetstream::Context,
    w: &Workload,
) -> Result<jetstream::stream::Stream, BenchError> {
    let name = w.stream_name();
    // Not there yet is the normal case: the error is of no interest.
    let _ = js.delete_stream(&name).await;
    Ok(js
        .create_stream(jetstream::stream::Config {
            name,
            subjects: vec![w.subject.clone()],
            storage: jetstream::stream::StorageType::Memory,
            ..Default::default()
        })
        .await?)
}

/// N publishes with at most [`JS_WINDOW`] acks outstanding (the oldest is awaited when the
/// queue is full), then every remaining ack. Returns the last stream sequence.
async fn js_publish_all(js: &jetstream::Context, w: &Workload) -> Result<u64, BenchError> {
    let subject = Subject::from(w.subject.as_str());
    let mut acks = VecDeque::with_capacity(JS_WINDOW);
    let mut last = 0;
    for _ in 0..w.messages {
        if acks.len() >= JS_WINDOW
            && let Some(ack) = acks.pop_front()
        {
            let ack: jetstream::context::PublishAckFuture = ack;
            last = ack.await?.sequence;
        }
        acks.push_back(
            js.publish(subject.clone(), black_box(w.payload.clone()))
                .await?,
        );
    }
    for ack in acks {
        last = ack.await?.sequence;
    }
    Ok(last)
}

pub async fn js_publish(w: Workload) -> Result<Sample, BenchError> {
    let client = connect(&w, None).await?;
    let js = jetstream::new(client.clone());
    let mut stream = js_fresh_stream(&js, &w).await?;
    let start = Instant::now();
    let last = js_publish_all(&js, &w).await?;
    let elapsed = start.elapsed();
    let stored = stream.info().await?.state.messages;
    if last != w.messages || stored != w.messages {
        return Err(format!(
            "js publish: {} sent, last ack seq {last}, {stored} stored",
            w.messages
        )
        .into());
    }
    js.delete_stream(w.stream_name()).await?;
    drop(client);
    Ok(Sample::publish(w.messages, elapsed))
}

pub async fn js_consume(w: Workload) -> Result<Sample, BenchError> {
    let client = connect(&w, None).await?;
    let js = jetstream::new(client.clone());
    let stream = js_fresh_stream(&js, &w).await?;
    js_publish_all(&js, &w).await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(JS_CONSUMER.to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;

    let start = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(JS_BATCH)
        .messages()
        .await?;
    let mut got = 0;
    while got < w.messages {
        match tokio::time::timeout(IDLE_TIMEOUT, messages.next()).await {
            Ok(Some(Ok(msg))) => {
                black_box(&msg.payload);
                msg.ack().await?;
                got += 1;
            }
            Ok(Some(Err(e))) => eprintln!("js consume (async-nats): {e}"),
            Ok(None) => break,
            Err(_) => break,
        }
    }
    // A round trip: the server has read every ack.
    flush(&client).await?;
    let elapsed = start.elapsed();
    drop(messages);
    if got != w.messages {
        return Err(format!("js consume: {got} of {} received", w.messages).into());
    }
    js.delete_stream(w.stream_name()).await?;
    drop(client);
    Ok(Sample::pubsub(w.messages, got, elapsed))
}
