//! The publish + consume + ack case written directly on our `jetstream` crate, with the stream
//! amqp-compat gives a durable design-B queue (WorkQueue retention, file storage, the same
//! replicas): what the facade costs is the ratio of the two.

use std::collections::VecDeque;
use std::time::Instant;

use futures::StreamExt;
use jetstream::{
    AckPolicy, ConsumeOptions, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig,
};

use super::{CONFIRM_WINDOW, IDLE, Outcome, PREFETCH, Spec};
use crate::amqp::cpu::Meter;
use crate::common::BenchError;

async fn connect(s: &Spec, name: &str) -> Result<nats_client::Client, BenchError> {
    let servers: Vec<&str> = s.url.split(',').collect();
    Ok(nats_client::ConnectOptions::new()
        .name(name)
        .connect(&servers)
        .await?)
}

/// A publisher connection (`publish_async`, at most 1000 acks outstanding) and a consumer
/// connection (durable pull consumer, explicit ack, pulls of 500, one ack per message).
pub async fn publish_consume_ack(s: Spec) -> Result<Outcome, BenchError> {
    let pclient = connect(&s, "bench-publisher").await?;
    let cclient = connect(&s, "bench-consumer").await?;
    let js = jetstream::new(pclient.clone()).with_publish_window(CONFIRM_WINDOW);
    let cjs = jetstream::new(cclient.clone());
    let name = s.name("direct");
    let stream = name.replace(['.', '-'], "_");
    let subject = format!("bench.direct.{stream}");
    js.create_stream(StreamConfig {
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        num_replicas: s.replicas,
        ..StreamConfig::new(stream.as_str(), [subject.as_str()])
    })
    .await?;
    let consumer = cjs
        .create_consumer(
            &stream,
            ConsumerConfig {
                ack_policy: AckPolicy::Explicit,
                ..ConsumerConfig::durable("amqp")
            },
        )
        .await?;
    let mut messages = consumer
        .consume(ConsumeOptions {
            max_messages: usize::from(PREFETCH),
            ..ConsumeOptions::default()
        })
        .await?;
    let payload = bytes::Bytes::from(s.payload());
    let n = s.messages;
    let meter = Meter::start(&s.broker_pids);
    let acker = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(IDLE, messages.next()).await {
                Ok(Some(Ok(msg))) => {
                    msg.ack().await?;
                    got += 1;
                }
                Ok(Some(Err(e))) => eprintln!("direct consume: {e}"),
                _ => return Err(format!("only {got} of {n} delivered").into()),
            }
        }
        Ok::<_, BenchError>(Instant::now())
    });
    let mut acks = VecDeque::with_capacity(CONFIRM_WINDOW);
    for _ in 0..n {
        if acks.len() >= CONFIRM_WINDOW
            && let Some(ack) = acks.pop_front()
        {
            let ack: jetstream::PublishAckFuture = ack;
            ack.await?;
        }
        acks.push_back(js.publish_async(&subject, payload.clone()).await?);
    }
    for ack in acks {
        ack.await?;
    }
    let end = acker.await??;
    let cost = meter.stop_at(end);
    js.delete_stream(&stream).await?;
    cclient.close().await?;
    pclient.close().await?;
    Ok(Outcome::rate(n, cost))
}
