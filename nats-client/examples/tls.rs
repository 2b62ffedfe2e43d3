//! TLS: connect with a private CA (and optionally a client certificate for mutual TLS), then
//! do a publish/subscribe round trip. Certificate verification is always on.
//!
//! `NATS_URL` is `tls://host:port` (or `nats://`: the client upgrades when the server requires
//! TLS); `NATS_CA` is the CA file (PEM) that signed the server certificate; `NATS_CERT` and
//! `NATS_KEY` (PEM) are the client certificate and key when the server verifies clients.
//! Without `NATS_CA`, the bundled web roots are trusted.
//!
//! ```text
//! NATS_URL=tls://localhost:4222 NATS_CA=ca.pem cargo run -p nats-client --example tls
//! NATS_URL=tls://localhost:4222 NATS_CA=ca.pem NATS_CERT=client-cert.pem \
//!     NATS_KEY=client-key.pem cargo run -p nats-client --example tls
//! ```
//!
//! Add `NATS_TLS_FIRST=1` for servers configured with `handshake_first: true`.

use futures::StreamExt;
use nats_client::ConnectOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "tls://127.0.0.1:4222".into());
    let mut options = ConnectOptions::new().require_tls(true);
    if let Ok(ca) = std::env::var("NATS_CA") {
        options = options.add_root_certificates(ca);
    }
    if let (Ok(cert), Ok(key)) = (std::env::var("NATS_CERT"), std::env::var("NATS_KEY")) {
        options = options.add_client_certificate(cert, key);
    }
    if std::env::var_os("NATS_TLS_FIRST").is_some() {
        options = options.tls_first();
    }
    let client = options.connect(&url).await?;
    println!("connected over TLS to {url}");

    let mut sub = client.subscribe("demo.tls").await?;
    client.flush().await?;
    client.publish("demo.tls", "encrypted on the wire").await?;
    let msg = sub.next().await.ok_or("subscription ended")?;
    println!("{}: {}", msg.subject, String::from_utf8_lossy(&msg.payload));
    client.close().await?;
    Ok(())
}
