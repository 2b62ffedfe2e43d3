//! Request/reply: a responder task answers `demo.greet` requests; the main task sends a few
//! requests, then one to a subject nobody serves (the server answers "no responders" at once).
//!
//! Run against a server (`nats-server` on the default port, or set `NATS_URL`):
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p nats-client --example request_reply
//! ```

use std::time::Duration;

use futures::StreamExt;
use nats_client::RequestError;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = nats_client::connect(&url).await?;

    // The responder: in a real system, another service (usually its own connection).
    let mut requests = client.subscribe("demo.greet").await?;
    client.flush().await?;
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let name = String::from_utf8_lossy(&request.payload).into_owned();
            if let Err(e) = responder.respond(&request, format!("hello, {name}")).await {
                eprintln!("cannot reply: {e}");
            }
        }
    });

    for name in ["ana", "bo", "cy"] {
        let reply = client.request("demo.greet", name).await?;
        println!("{name} -> {}", String::from_utf8_lossy(&reply.payload));
    }

    // An explicit timeout, and the typed errors a caller can match on.
    match client
        .request_with("demo.nobody", None, b"anyone?", Duration::from_secs(2))
        .await
    {
        Err(RequestError::NoResponders { subject }) => println!("no responders on {subject}"),
        Err(RequestError::TimedOut { timeout, .. }) => println!("no reply within {timeout:?}"),
        Err(e) => return Err(e.into()),
        Ok(reply) => println!("unexpected reply: {:?}", reply.payload),
    }
    Ok(())
}
