//! Queue groups: three workers subscribe to `demo.jobs` in the group `workers`; each job goes
//! to exactly one of them (the NATS form of several consumers on one RabbitMQ queue).
//!
//! Run against a server (`nats-server` on the default port, or set `NATS_URL`):
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p nats-client --example queue_group
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;

const JOBS: usize = 30;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = nats_client::connect(&url).await?;

    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for id in 0..3 {
        let mut jobs = client.queue_subscribe("demo.jobs", "workers").await?;
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let mut handled = 0;
            while done.load(Ordering::Relaxed) < JOBS {
                match tokio::time::timeout(Duration::from_millis(500), jobs.next()).await {
                    Ok(Some(job)) => {
                        println!("worker {id}: {}", String::from_utf8_lossy(&job.payload));
                        handled += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            (id, handled)
        }));
    }
    client.flush().await?;

    for n in 0..JOBS {
        client.publish("demo.jobs", format!("job {n}")).await?;
    }
    client.flush().await?;

    for worker in workers {
        let (id, handled) = worker.await?;
        println!("worker {id} handled {handled} jobs");
    }
    println!(
        "{} of {JOBS} jobs handled, each once",
        done.load(Ordering::Relaxed)
    );
    Ok(())
}
