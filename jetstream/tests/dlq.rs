//! The dead-letter worker: max-deliveries and terminated messages land in the dead-letter
//! stream exactly once with their origin in headers; advisories raised while the worker is
//! down are handled when it comes back; a vanished original is a typed outcome.

mod common;

use std::time::Duration;

use common::{memory_stream, setup, unique, within};
use jetstream::{
    ConsumerConfig, Context, DeadLetter, DeadLetterConfig, DeadLetterOutcome, DeadLetterReason,
    JetStreamError, PublishOptions, StorageType, dlq_headers,
};

struct Fixture {
    js: Context,
    stream: String,
    subject: String,
    consumer: jetstream::Consumer,
}

async fn fixture(js: Context, max_deliver: i64) -> Fixture {
    let stream = unique("SRC");
    let subject = format!("{}.orders", stream.to_lowercase());
    let s = js.create_stream(memory_stream(&stream)).await.unwrap();
    let consumer = s
        .create_consumer(ConsumerConfig {
            max_deliver,
            ack_wait: Duration::from_millis(200),
            ..ConsumerConfig::durable("work")
        })
        .await
        .unwrap();
    Fixture {
        js,
        stream,
        subject,
        consumer,
    }
}

fn config(f: &Fixture) -> DeadLetterConfig {
    DeadLetterConfig::new(&f.stream, "work").with_storage(StorageType::Memory)
}

/// Pulls until the worker has handled `n` advisories.
async fn handle(worker: &DeadLetter, n: usize) -> Vec<DeadLetterOutcome> {
    within(15, "advisories", async {
        let mut out = Vec::new();
        while out.len() < n {
            for r in worker
                .process_batch(Duration::from_millis(300))
                .await
                .unwrap()
            {
                out.push(r.unwrap());
            }
        }
        out
    })
    .await
}

/// Delivers (without acking) until the consumer gives up on the message.
async fn exhaust(f: &Fixture, deliveries: usize) {
    let mut seen = 0;
    within(10, "deliveries", async {
        while seen < deliveries {
            seen += f
                .consumer
                .fetch(1, Duration::from_millis(500))
                .await
                .unwrap()
                .len();
        }
        // One more pull after the last ack wait makes the server notice the limit.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            f.consumer
                .fetch(1, Duration::from_millis(300))
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn max_deliveries_land_in_the_dlq_exactly_once() {
    let (_server, js) = setup().await;
    let f = fixture(js, 2).await;
    let worker = DeadLetter::start(f.js.clone(), config(&f)).await.unwrap();
    let opts = PublishOptions::new()
        .msg_id("orig-1")
        .header("X-Tenant", "acme");
    let ack =
        f.js.publish_with(&f.subject, "payload", &opts)
            .await
            .unwrap();
    exhaust(&f, 2).await;

    let outcomes = handle(&worker, 1).await;
    let DeadLetterOutcome::DeadLettered {
        consumer,
        stream_seq,
        deliveries,
        reason,
        subject,
        ack: dlq_ack,
        deleted_original,
    } = &outcomes[0]
    else {
        panic!("{outcomes:?}")
    };
    assert_eq!((*stream_seq, *deliveries), (ack.seq, 2));
    assert_eq!(*reason, DeadLetterReason::MaxDeliveries);
    assert_eq!(consumer, "work");
    assert_eq!(*subject, format!("dlq.{}.work", f.stream));
    assert!(!dlq_ack.duplicate);
    assert!(!deleted_original);
    let dlq_stream = format!("DLQ_{}_work", f.stream);
    assert_eq!(dlq_ack.stream, dlq_stream);

    let copy = f.js.get_message(&dlq_stream, dlq_ack.seq).await.unwrap();
    assert_eq!(copy.subject, format!("dlq.{}.work", f.stream));
    assert_eq!(&copy.payload[..], b"payload");
    let h = copy.headers.unwrap();
    assert_eq!(h.get(dlq_headers::STREAM), Some(f.stream.as_str()));
    assert_eq!(h.get(dlq_headers::CONSUMER), Some("work"));
    assert_eq!(
        h.get(dlq_headers::SEQUENCE),
        Some(ack.seq.to_string().as_str())
    );
    assert_eq!(h.get(dlq_headers::DELIVERIES), Some("2"));
    assert_eq!(h.get(dlq_headers::REASON), Some("max_deliveries"));
    assert_eq!(h.get(dlq_headers::SUBJECT), Some(f.subject.as_str()));
    assert_eq!(h.get(dlq_headers::MSG_ID), Some("orig-1"));
    assert!(h.get(dlq_headers::TIME).is_some());
    assert_eq!(h.get("X-Tenant"), Some("acme"));
    let expected_id = format!("{}:{}", f.stream, ack.seq);
    assert_eq!(h.get("Nats-Msg-Id"), Some(expected_id.as_str()));

    // The same advisory again (a redelivery after a crash): deduplicated, still one copy.
    let advisory = format!(
        r#"{{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"{}","consumer":"work","stream_seq":{},"deliveries":2}}"#,
        f.stream, ack.seq
    );
    f.js.client()
        .publish(
            format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.work",
                f.stream
            ),
            advisory,
        )
        .await
        .unwrap();
    let again = handle(&worker, 1).await;
    assert!(
        matches!(&again[0], DeadLetterOutcome::DeadLettered { ack, .. } if ack.duplicate),
        "{again:?}"
    );
    let info = f.js.stream_info(&dlq_stream).await.unwrap();
    assert_eq!(info.state.messages, 1, "exactly one copy");
    // The advisories were acked: the work queue is empty.
    let adv = f.js.stream_info(&config(&f).advisory_stream).await.unwrap();
    assert_eq!(adv.state.messages, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisories_raised_while_the_worker_is_down_are_not_lost() {
    let (_server, js) = setup().await;
    let f = fixture(js, 5).await;
    // A first run sets up the capture stream, then the worker goes away.
    drop(DeadLetter::start(f.js.clone(), config(&f)).await.unwrap());

    for i in 0..3 {
        f.js.publish(&f.subject, format!("bad {i}")).await.unwrap();
    }
    let msgs = f.consumer.fetch(3, Duration::from_secs(1)).await.unwrap();
    assert_eq!(msgs.len(), 3);
    for m in &msgs {
        m.term_with_reason("cannot parse").await.unwrap();
    }
    f.js.client().flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The worker comes back and runs.
    let worker = DeadLetter::start(f.js.clone(), config(&f)).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.run_with(move |o| drop(tx.send(o))).await })
    };
    let mut seqs = Vec::new();
    within(15, "three dead letters", async {
        while seqs.len() < 3 {
            match rx.recv().await.unwrap() {
                Ok(DeadLetterOutcome::DeadLettered {
                    stream_seq, reason, ..
                }) => {
                    assert_eq!(
                        reason,
                        DeadLetterReason::Terminated(Some("cannot parse".into()))
                    );
                    seqs.push(stream_seq);
                }
                Ok(other) => panic!("{other:?}"),
                Err(JetStreamError::HeartbeatMissed { .. }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3]);
    let dlq =
        f.js.stream_info(&format!("DLQ_{}_work", f.stream))
            .await
            .unwrap();
    assert_eq!(dlq.state.messages, 3);
    let copy = f.js.get_message(&dlq.config.name, 1).await.unwrap();
    assert_eq!(
        copy.headers.unwrap().get(dlq_headers::REASON),
        Some("terminated: cannot parse")
    );
    // Deleting the advisory consumer ends the run with a typed error.
    f.js.delete_consumer(&config(&f).advisory_stream, "dlq-worker")
        .await
        .unwrap();
    let ended = within(10, "run ends", runner).await.unwrap();
    assert!(
        matches!(ended, Err(JetStreamError::ConsumerDeleted { .. })),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_vanished_original_is_recorded_and_acked() {
    let (_server, js) = setup().await;
    let f = fixture(js, 5).await;
    let worker = DeadLetter::start(f.js.clone(), config(&f)).await.unwrap();
    let ack = f.js.publish(&f.subject, "short-lived").await.unwrap();
    let m = f
        .consumer
        .fetch(1, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    m.term().await.unwrap();
    f.js.delete_message(&f.stream, ack.seq).await.unwrap();
    let outcomes = handle(&worker, 1).await;
    match &outcomes[0] {
        DeadLetterOutcome::OriginalMissing {
            consumer,
            stream_seq,
            reason,
            error,
        } => {
            assert_eq!(consumer, "work");
            assert_eq!(*stream_seq, ack.seq);
            assert_eq!(*reason, DeadLetterReason::Terminated(None));
            assert_eq!(error.err_code, jetstream::ErrorCode::NO_MESSAGE_FOUND);
        }
        other => panic!("{other:?}"),
    }
    let adv = f.js.stream_info(&config(&f).advisory_stream).await.unwrap();
    assert_eq!(adv.state.messages, 0, "the advisory was acked");
}

#[tokio::test]
async fn originals_can_be_deleted_and_garbage_is_terminated() {
    let (_server, js) = setup().await;
    let f = fixture(js, 5).await;
    let mut cfg = config(&f);
    cfg.delete_original = true;
    let worker = DeadLetter::start(f.js.clone(), cfg.clone()).await.unwrap();
    let ack = f.js.publish(&f.subject, "move me").await.unwrap();
    let m = f
        .consumer
        .fetch(1, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    m.term().await.unwrap();
    let outcomes = handle(&worker, 1).await;
    assert!(
        matches!(
            &outcomes[0],
            DeadLetterOutcome::DeadLettered {
                deleted_original: true,
                ..
            }
        ),
        "{outcomes:?}"
    );
    let err = f.js.get_message(&f.stream, ack.seq).await.unwrap_err();
    assert!(err.is_api(jetstream::ErrorCode::NO_MESSAGE_FOUND));

    f.js.client()
        .publish(cfg.advisory_subjects()[1].clone(), "not json")
        .await
        .unwrap();
    let outcomes = handle(&worker, 1).await;
    assert!(
        matches!(&outcomes[0], DeadLetterOutcome::Malformed { .. }),
        "{outcomes:?}"
    );
}
