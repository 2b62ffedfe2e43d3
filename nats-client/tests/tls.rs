//! TLS against a real server: `tls://` URLs, upgrading when the server's INFO requires TLS,
//! verification on by default, mutual TLS, and the TLS-first handshake.

use std::time::Duration;

use futures::StreamExt;
use nats_client::{Client, ConnectError, ConnectOptions};
use nats_tests::{NatsServer, ServerOptions, TlsOptions};

const WAIT: Duration = Duration::from_secs(5);

/// Proves the connection carries traffic: a message goes out and comes back.
async fn round_trip(client: &Client) {
    let mut sub = client.subscribe("tls.check").await.unwrap();
    client.flush().await.unwrap();
    client.publish("tls.check", "secret payload").await.unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message within 5 s")
        .expect("subscription open");
    assert_eq!(&msg.payload[..], b"secret payload");
}

/// `nats://127.0.0.1:<port>` for a server whose `url()` is `tls://...`.
fn plain_url(server: &NatsServer) -> String {
    format!("nats://127.0.0.1:{}", server.port())
}

#[tokio::test]
async fn tls_url_with_custom_ca() {
    let server = NatsServer::tls();
    let files = server.tls_files().unwrap();
    assert!(server.url().starts_with("tls://"));
    let client = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .connect(&server.url())
        .await
        .unwrap();
    round_trip(&client).await;
    assert!(client.server_info().tls_required);
}

#[tokio::test]
async fn nats_url_upgrades_when_the_server_requires_tls() {
    let server = NatsServer::tls();
    let files = server.tls_files().unwrap();
    let client = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .connect(&plain_url(&server))
        .await
        .unwrap();
    round_trip(&client).await;
    // The server would have closed a plaintext CONNECT; TLS is in use.
    let connz = server.monitor_json("/connz");
    let conn = &connz["connections"][0];
    assert!(
        conn["tls_version"].as_str().is_some_and(|v| !v.is_empty()),
        "{conn}"
    );
}

#[tokio::test]
async fn nats_url_without_tls_options_still_verifies_the_server() {
    // No TLS option at all: the client upgrades because INFO says tls_required, and the test
    // CA is not among the default roots, so verification must fail.
    let server = NatsServer::tls();
    let err = nats_client::connect(&plain_url(&server)).await.unwrap_err();
    assert!(matches!(err, ConnectError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn untrusted_ca_is_refused() {
    let server = NatsServer::tls();
    let files = server.tls_files().unwrap();
    let err = ConnectOptions::new()
        .add_root_certificates(&files.untrusted_ca)
        .connect(&server.url())
        .await
        .unwrap_err();
    match &err {
        ConnectError::Tls { message, .. } => {
            assert!(
                message.to_ascii_lowercase().contains("certificate"),
                "{message}"
            )
        }
        other => panic!("expected ConnectError::Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_ca_file_is_a_typed_error() {
    let server = NatsServer::tls();
    let files = server.tls_files().unwrap();
    let err = ConnectOptions::new()
        .add_root_certificates(files.dir.join("no-such-ca.pem"))
        .connect(&server.url())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn localhost_name_is_verified_against_the_certificate() {
    // The certificate names both `localhost` and IP 127.0.0.1; a DNS name works too.
    let server = NatsServer::tls();
    let files = server.tls_files().unwrap();
    let client = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .connect(&format!("tls://localhost:{}", server.port()))
        .await
        .unwrap();
    round_trip(&client).await;
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let server = NatsServer::mtls();
    let files = server.tls_files().unwrap();
    let client = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .add_client_certificate(&files.client_cert, &files.client_key)
        .connect(&server.url())
        .await
        .unwrap();
    round_trip(&client).await;
}

#[tokio::test]
async fn mutual_tls_without_a_client_certificate_is_refused() {
    let server = NatsServer::mtls();
    let files = server.tls_files().unwrap();
    let err = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .connection_timeout(Duration::from_secs(3))
        .connect(&server.url())
        .await
        .unwrap_err();
    eprintln!("refused with: {err}");
    // With TLS 1.3 the server checks the client certificate after the client's handshake
    // finished, so the refusal may surface as a TLS alert, a read error or a close.
    assert!(
        matches!(
            err,
            ConnectError::Tls { .. }
                | ConnectError::Io { .. }
                | ConnectError::ClosedDuringHandshake { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn mutual_tls_with_an_untrusted_client_certificate_is_refused() {
    let server = NatsServer::mtls();
    let files = server.tls_files().unwrap();
    let err = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .add_client_certificate(&files.untrusted_client_cert, &files.untrusted_client_key)
        .connection_timeout(Duration::from_secs(3))
        .connect(&server.url())
        .await
        .unwrap_err();
    eprintln!("refused with: {err}");
    assert!(
        matches!(
            err,
            ConnectError::Tls { .. }
                | ConnectError::Io { .. }
                | ConnectError::ClosedDuringHandshake { .. }
        ),
        "{err:?}"
    );
}

fn tls_first_server() -> NatsServer {
    NatsServer::start(ServerOptions {
        tls: Some(TlsOptions {
            handshake_first: true,
            ..TlsOptions::default()
        }),
        ..ServerOptions::default()
    })
}

#[tokio::test]
async fn tls_first_handshake() {
    let server = tls_first_server();
    let files = server.tls_files().unwrap();
    let client = ConnectOptions::new()
        .tls_first()
        .add_root_certificates(&files.ca)
        .connect(&server.url())
        .await
        .unwrap();
    round_trip(&client).await;
}

#[tokio::test]
async fn tls_first_server_refuses_a_client_waiting_for_info() {
    // Without tls_first the client waits for a plaintext INFO that never comes: a typed
    // error (timeout or close), never a hang past the connection timeout.
    let server = tls_first_server();
    let files = server.tls_files().unwrap();
    let err = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .connection_timeout(Duration::from_secs(1))
        .connect(&server.url())
        .await
        .unwrap_err();
    eprintln!("refused with: {err}");
    assert!(
        matches!(
            err,
            ConnectError::TimedOut { .. }
                | ConnectError::ClosedDuringHandshake { .. }
                | ConnectError::Io { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn require_tls_against_a_plain_server_is_a_mismatch() {
    let server = NatsServer::single();
    let err = ConnectOptions::new()
        .require_tls(true)
        .connect(&server.url())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::TlsMismatch { .. }), "{err:?}");
}

/// A large payload handed over as `Bytes` goes out as a segment of the write buffer; over
/// TLS the vectored write is rustls' (it copies into records): the bytes arrive all the same.
#[tokio::test]
async fn large_shared_payloads_cross_tls() {
    let server = NatsServer::tls();
    let files = server.tls_files().unwrap();
    let client = ConnectOptions::new()
        .add_root_certificates(&files.ca)
        .connect(&server.url())
        .await
        .unwrap();
    let mut sub = client.subscribe("tls.big").await.unwrap();
    client.flush().await.unwrap();
    let payload: bytes::Bytes = (0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>().into();
    for _ in 0..5 {
        client
            .publish_bytes("tls.big", payload.clone())
            .await
            .unwrap();
    }
    for _ in 0..5 {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message within 5 s")
            .expect("subscription open");
        assert_eq!(msg.payload, payload);
    }
}
