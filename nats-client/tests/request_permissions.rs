//! A request to a subject the client may not publish to fails at once with a permission error
//! (the server's `-ERR 'Permissions Violation for Publish to "<subject>"'`) instead of waiting
//! for its timeout, as in nats.go; requests to other subjects are untouched.

use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_client::{ConnectOptions, ErrorKind, Request, RequestError};
use nats_tests::NatsServer;
use tokio::task::spawn_blocking;

/// Far longer than the test may take: a request that waited for it would fail the test.
const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_request_to_a_forbidden_subject_fails_with_a_permission_error() {
    let server = spawn_blocking(|| {
        NatsServer::with_auth(
            "authorization { users: [ { user: a, password: b, \
             permissions: { publish: { deny: [\"secret.>\"] } } } ] }",
        )
    })
    .await
    .unwrap();
    let client = ConnectOptions::new()
        .user_and_password("a", "b")
        .connect(&server.url())
        .await
        .unwrap();
    // A responder that answers late: its request is pending while the refused one fails.
    let mut service = client.subscribe("open.slow").await.unwrap();
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(m) = service.next().await {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Some(reply) = m.reply {
                responder.publish(&*reply, "late").await.unwrap();
            }
        }
    });
    client.flush().await.unwrap();

    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.request_with("open.slow", None, b"x", LONG).await }
    });
    let started = Instant::now();
    let err = tokio::time::timeout(LONG / 2, client.request_with("secret.x", None, b"x", LONG))
        .await
        .expect("the refused request ends long before its timeout")
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::PermissionDenied {
            subject: "secret.x".into()
        }
    );
    assert_eq!(err.kind(), ErrorKind::Permission);
    eprintln!("refused after {:?}", started.elapsed());

    // The other request was not touched: its reply still comes.
    let reply = slow
        .await
        .unwrap()
        .expect("the allowed request is answered");
    assert_eq!(&reply.payload[..], b"late");

    // A windowed request is refused the same way.
    let window = client.request_window(8);
    let reply = window
        .send(&Request::new("secret.y", "x").timeout(LONG))
        .await
        .unwrap();
    let err = tokio::time::timeout(LONG / 2, reply)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, RequestError::PermissionDenied { subject } if subject == "secret.y"),
        "{err:?}"
    );
    assert_eq!(window.in_flight(), 0);
    // The connection stays up and usable.
    client.flush().await.unwrap();
}
