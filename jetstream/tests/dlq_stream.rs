//! The dead-letter worker for a whole stream (one advisory capture for all its consumers)
//! with a routing hook; bounded attempts per advisory; a graceful stop.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique, within};
use jetstream::{
    ConsumerConfig, Context, DeadLetter, DeadLetterConfig, DeadLetterOutcome, DeadLetterRecord,
    JetStreamError, Route, StorageType, StreamConfig,
};

async fn consumer(js: &Context, stream: &str, name: &str) -> jetstream::Consumer {
    js.create_consumer(
        stream,
        ConsumerConfig {
            ack_wait: Duration::from_millis(500),
            ..ConsumerConfig::durable(name)
        },
    )
    .await
    .unwrap()
}

/// Fetches one message from `c` and terminates it with `reason`; returns its payload.
async fn terminate_next(c: &jetstream::Consumer, reason: &str) -> Vec<u8> {
    let m = c
        .fetch(1, Duration::from_secs(2))
        .await
        .unwrap()
        .pop()
        .expect("a message");
    m.term_with_reason(reason).await.unwrap();
    m.payload.to_vec()
}

/// Polls `check` every 50 ms until it holds, for up to `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(secs, what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_capture_for_all_consumers_and_the_router_decides_subject_and_headers() {
    let (_server, js) = setup().await;
    let src = unique("SRCS");
    let subject = format!("{}.orders", src.to_lowercase());
    js.create_stream(memory_stream(&src)).await.unwrap();
    let c1 = consumer(&js, &src, "q1").await;
    let c2 = consumer(&js, &src, "q2").await;

    let dlx = unique("DLX");
    let dlx_prefix = dlx.to_lowercase();
    let mut config = DeadLetterConfig::for_stream(&src).with_storage(StorageType::Memory);
    config.dlq_stream = Some(StreamConfig {
        duplicate_window: Duration::from_secs(600),
        ..memory_stream(&dlx)
    });
    let prefix = dlx_prefix.clone();
    let worker = DeadLetter::start(js.clone(), config.clone())
        .await
        .unwrap()
        .with_router(move |r: &DeadLetterRecord<'_>| {
            // What the AMQP layer does: the DLX route and x-death-style headers.
            let mut route = Route::standard(r, format!("{prefix}.{}", r.consumer));
            route.headers.insert("x-first-death-queue", r.consumer);
            route.headers.insert("x-first-death-reason", "rejected");
            route
                .headers
                .insert("x-death-count", r.deliveries.to_string());
            Some(route)
        });
    // One advisory stream captures the consumer token with a wildcard.
    let capture = js
        .stream_names(Some(&format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{src}.q2"
        )))
        .await
        .unwrap();
    assert_eq!(capture, [format!("DLQ_ADVISORIES_{src}")]);

    js.publish(&subject, "order 1").await.unwrap();
    assert_eq!(terminate_next(&c1, "bad").await, b"order 1");
    assert_eq!(terminate_next(&c2, "worse").await, b"order 1");

    let mut outcomes = Vec::new();
    within(15, "two dead letters", async {
        while outcomes.len() < 2 {
            for r in worker
                .process_batch(Duration::from_millis(300))
                .await
                .unwrap()
            {
                outcomes.push(r.unwrap());
            }
        }
    })
    .await;
    let mut routed: Vec<_> = outcomes
        .iter()
        .map(|o| match o {
            DeadLetterOutcome::DeadLettered {
                consumer, subject, ..
            } => (consumer.clone(), subject.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    routed.sort();
    assert_eq!(
        routed,
        [
            ("q1".to_owned(), format!("{dlx_prefix}.q1")),
            ("q2".to_owned(), format!("{dlx_prefix}.q2")),
        ]
    );
    // Two copies of the one message: the dedup id names the consumer.
    let info = js.stream_info(&dlx).await.unwrap();
    assert_eq!(info.state.messages, 2);
    for seq in [1, 2] {
        let copy = js.get_message(&dlx, seq).await.unwrap();
        let h = copy.headers.unwrap();
        let queue = h.get("x-first-death-queue").unwrap().to_owned();
        assert_eq!(copy.subject, format!("{dlx_prefix}.{queue}"));
        assert_eq!(h.get("x-first-death-reason"), Some("rejected"));
        assert_eq!(h.get("x-death-count"), Some("1"));
        assert_eq!(
            h.get(jetstream::dlq_headers::CONSUMER),
            Some(queue.as_str())
        );
        assert_eq!(&copy.payload[..], b"order 1");
    }
    assert_eq!(worker.stats().dead_lettered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprocessable_advisory_is_given_up_and_the_worker_goes_on() {
    let (_server, js) = setup().await;
    let src = unique("SRCU");
    let subject = format!("{}.orders", src.to_lowercase());
    js.create_stream(memory_stream(&src)).await.unwrap();
    let c = consumer(&js, &src, "work").await;
    let mut config = DeadLetterConfig::new(&src, "work").with_storage(StorageType::Memory);
    config.max_attempts = 2;
    config.retry_delay = Duration::from_millis(100);
    let good = config.subject.clone();
    let worker = DeadLetter::start(js.clone(), config.clone())
        .await
        .unwrap()
        .with_router(move |r: &DeadLetterRecord<'_>| {
            // A route that can never be published to, for one message.
            let target = if &r.original.payload[..] == b"poison" {
                "not a subject".to_owned()
            } else {
                good.clone()
            };
            Some(Route::standard(r, target))
        });
    let poison = js.publish(&subject, "poison").await.unwrap();
    js.publish(&subject, "fine").await.unwrap();
    terminate_next(&c, "x").await;
    terminate_next(&c, "x").await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.run_with(move |o| drop(tx.send(o))).await })
    };
    let (mut unprocessable, mut dead_lettered, mut retries) = (None, 0, 0);
    within(20, "both advisories settled", async {
        while unprocessable.is_none() || dead_lettered < 1 {
            match rx.recv().await.unwrap() {
                Ok(DeadLetterOutcome::Unprocessable {
                    stream_seq,
                    attempts,
                    error,
                    ..
                }) => unprocessable = Some((stream_seq, attempts, error)),
                Ok(DeadLetterOutcome::DeadLettered { stream_seq, .. }) => {
                    assert_eq!(stream_seq, poison.seq + 1);
                    dead_lettered += 1;
                }
                Ok(other) => panic!("{other:?}"),
                Err(JetStreamError::HeartbeatMissed { .. }) => {}
                Err(_) => retries += 1,
            }
        }
    })
    .await;
    let (seq, attempts, error) = unprocessable.unwrap();
    assert_eq!((seq, attempts), (Some(poison.seq), 2));
    assert!(!error.is_transient(), "{error:?}");
    assert_eq!(retries, 1, "one failed attempt before giving up");
    let stats = worker.stats();
    assert_eq!((stats.unprocessable, stats.dead_lettered), (1, 1));
    eventually(5, "advisories acked", || {
        let js = js.clone();
        let name = config.advisory_stream.clone();
        async move { js.stream_info(&name).await.unwrap().state.messages == 0 }
    })
    .await;
    runner.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_worker_stops_gracefully() {
    let (_server, js) = setup().await;
    let src = unique("SRCG");
    let subject = format!("{}.orders", src.to_lowercase());
    js.create_stream(memory_stream(&src)).await.unwrap();
    let c = consumer(&js, &src, "work").await;
    let config = DeadLetterConfig::new(&src, "work").with_storage(StorageType::Memory);
    let dlq = config.dlq_stream.clone().unwrap().name;
    let handle = DeadLetter::start(js.clone(), config.clone())
        .await
        .unwrap()
        .spawn();

    js.publish(&subject, "one").await.unwrap();
    terminate_next(&c, "x").await;
    eventually(10, "first dead letter", || {
        let stats = handle.stats();
        async move { stats.dead_lettered == 1 }
    })
    .await;
    assert!(!handle.is_finished());
    within(10, "graceful stop", handle.stop()).await.unwrap();

    // After the stop, advisories wait in the capture stream for the next worker.
    js.publish(&subject, "two").await.unwrap();
    terminate_next(&c, "x").await;
    eventually(5, "advisory captured", || {
        let js = js.clone();
        let name = config.advisory_stream.clone();
        async move { js.stream_info(&name).await.unwrap().state.messages == 1 }
    })
    .await;
    assert_eq!(js.stream_info(&dlq).await.unwrap().state.messages, 1);

    let next = DeadLetter::start(js.clone(), config).await.unwrap();
    let mut handled = Vec::new();
    within(40, "the next worker takes it", async {
        while handled.is_empty() {
            handled = next
                .process_batch(Duration::from_millis(500))
                .await
                .unwrap();
        }
    })
    .await;
    assert!(matches!(
        &handled[0],
        Ok(DeadLetterOutcome::DeadLettered { stream_seq: 2, .. })
    ));
}

/// On a WorkQueue (or Interest) stream a terminated message is deleted at once, so the worker
/// finds nothing to copy: the consumer must copy it before it terminates.
#[tokio::test]
async fn on_a_work_queue_a_terminated_message_is_gone_before_the_worker_sees_it() {
    let (_server, js) = setup().await;
    let src = unique("SRCWQ");
    let subject = format!("{}.orders", src.to_lowercase());
    js.create_stream(StreamConfig {
        retention: jetstream::RetentionPolicy::WorkQueue,
        ..memory_stream(&src)
    })
    .await
    .unwrap();
    let c = consumer(&js, &src, "work").await;
    let config = DeadLetterConfig::new(&src, "work").with_storage(StorageType::Memory);
    let worker = DeadLetter::start(js.clone(), config).await.unwrap();
    let ack = js.publish(&subject, "job").await.unwrap();
    terminate_next(&c, "cannot do").await;
    let mut outcomes = Vec::new();
    within(15, "the advisory", async {
        while outcomes.is_empty() {
            outcomes = worker
                .process_batch(Duration::from_millis(300))
                .await
                .unwrap();
        }
    })
    .await;
    match &outcomes[0] {
        Ok(DeadLetterOutcome::OriginalMissing {
            stream_seq, error, ..
        }) => {
            assert_eq!(*stream_seq, ack.seq);
            assert_eq!(error.err_code, jetstream::ErrorCode::NO_MESSAGE_FOUND);
        }
        other => panic!("{other:?}"),
    }
}
