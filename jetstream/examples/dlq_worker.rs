//! A dead-letter worker: messages of `EXAMPLE_ORDERS` that the `example-billing` consumer
//! gives up on (max deliveries, or terminated) are copied to `dlq.EXAMPLE_ORDERS.example-billing`.
//!
//! Run `publish_consume` first (it creates the stream and consumer), then
//! `cargo run -p jetstream --example dlq_worker [nats://127.0.0.1:4222]`.

use jetstream::{DeadLetter, DeadLetterConfig, DeadLetterOutcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let js = jetstream::new(nats_client::connect(&url).await?);

    let mut config = DeadLetterConfig::new("EXAMPLE_ORDERS", "example-billing");
    config.delete_original = true;
    let worker = DeadLetter::start(js, config).await?;
    println!(
        "capturing advisories in {}, dead letters go to {}",
        worker.config().advisory_stream,
        worker.config().subject
    );
    worker
        .run_with(|outcome| match outcome {
            Ok(DeadLetterOutcome::DeadLettered {
                stream_seq,
                reason,
                ack,
                ..
            }) => println!(
                "#{stream_seq} dead-lettered ({}) as #{}{}",
                reason.header_value(),
                ack.seq,
                if ack.duplicate { ", already there" } else { "" }
            ),
            Ok(DeadLetterOutcome::OriginalMissing {
                stream_seq, error, ..
            }) => {
                println!("#{stream_seq} was gone before it could be copied: {error}")
            }
            Ok(DeadLetterOutcome::Malformed { subject, reason }) => {
                println!("ignored a malformed advisory on {subject}: {reason}")
            }
            Ok(DeadLetterOutcome::Unprocessable { subject, error, .. }) => {
                println!("gave up on the advisory on {subject}: {error}")
            }
            Ok(other) => println!("{other:?}"),
            Err(e) => eprintln!("will retry: {e}"),
        })
        .await?;
    Ok(())
}
