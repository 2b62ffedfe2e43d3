//! Request/reply: a responder task answers `demo.greet` requests (echoing a header back with
//! `respond_with_headers`); the main task sends a few requests, one as a `Request` value with a
//! header and a timeout, then one to a subject nobody serves (the server answers "no
//! responders" at once).
//!
//! Run against a server (`nats-server` on the default port, or set `NATS_URL`):
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p nats-client --example request_reply
//! ```

use std::time::Duration;

use futures::StreamExt;
use nats_client::{HeaderMap, Request, RequestError};

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
            let answer = format!("hello, {name}");
            let result = match request.headers.as_ref().and_then(|h| h.get("X-Trace")) {
                Some(trace) => {
                    let mut headers = HeaderMap::new();
                    headers.insert("X-Trace", trace.to_owned());
                    responder
                        .respond_with_headers(&request, &headers, answer)
                        .await
                }
                None => responder.respond(&request, answer).await,
            };
            if let Err(e) = result {
                eprintln!("cannot reply: {e}");
            }
        }
    });

    for name in ["ana", "bo", "cy"] {
        let reply = client.request("demo.greet", name).await?;
        println!("{name} -> {}", String::from_utf8_lossy(&reply.payload));
    }

    // A request as a value: headers and a timeout travel with it.
    let reply = client
        .request_value(
            Request::new("demo.greet", "dee")
                .header("X-Trace", 7)
                .timeout(Duration::from_secs(2)),
        )
        .await?;
    let trace = reply.headers.as_ref().and_then(|h| h.get("X-Trace"));
    println!(
        "dee -> {} (trace {trace:?})",
        String::from_utf8_lossy(&reply.payload)
    );

    // An explicit timeout, and the typed errors a caller can match on (or ask `kind()`).
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
