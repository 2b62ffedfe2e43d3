//! Events and faults a program can act on: every connection event printed from the first
//! `Connected` on (an event callback), server errors matched by kind rather than by text, and
//! a message the client cannot represent read back from its subscription with its bytes.
//!
//! Run against a server (`nats-server` on the default port, or set `NATS_URL`):
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p nats-client --example events
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures::StreamExt;
use nats_client::{ConnectOptions, Event, ServerErrorKind, SubscriptionError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = ConnectOptions::new()
        .max_reconnects(Some(5))
        // Runs on the connection task: keep it short, never block, never call the client.
        .event_callback(|event| match event {
            Event::ServerError { error, .. } => match &error.kind {
                ServerErrorKind::PermissionsViolation { subject, .. } => {
                    eprintln!("not allowed on {subject}: {}", error.text);
                }
                kind => eprintln!("server error ({kind}): {}", error.text),
            },
            other => eprintln!("event: {other}"),
        })
        .connect(&url)
        .await?;

    let mut sub = client.subscribe("demo.>").await?;
    client.flush().await?;

    // Another publisher sends a subject that is not UTF-8 (the server passes it through),
    // then a normal message: the first cannot be a `Message`, the second arrives as usual.
    let address = client
        .servers()
        .first()
        .map(|s| format!("{}:{}", s.host, s.port))
        .ok_or("no server")?;
    let mut raw = TcpStream::connect(address)?;
    let mut info = [0u8; 4096];
    let _ = raw.read(&mut info)?;
    raw.write_all(
        b"CONNECT {\"verbose\":false}\r\nPUB demo.\xff 3\r\nbad\r\nPUB demo.ok 2\r\nok\r\nPING\r\n",
    )?;

    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await?
        .ok_or("subscription ended")?;
    println!("delivered: {} {:?}", msg.subject, msg.payload);
    for error in sub.take_errors() {
        if let SubscriptionError::Undeliverable(bad) = error {
            println!(
                "undeliverable: subject bytes {:?}, payload {:?} ({})",
                bad.subject, bad.payload, bad.error
            );
        }
    }
    println!("statistics: {:?}", client.statistics());
    client.close().await?;
    Ok(())
}
