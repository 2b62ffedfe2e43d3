//! The `Publish`/`Request` values, `respond_with_headers`, a `RequestWindow` with expiry, and
//! errors that keep their facts, against a real server.

use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_client::{ErrorKind, HeaderMap, Publish, PublishError, Request, RequestError};
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn publish_and_request_values_carry_headers_reply_and_timeout() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("values.>").await.unwrap();
    client.flush().await.unwrap();

    client
        .send(
            Publish::new("values.a", "one")
                .header("X-Count", 3)
                .header("X-Count", "4")
                .reply("values.reply"),
        )
        .await
        .unwrap();
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*m.subject, "values.a");
    assert_eq!(m.reply.as_deref(), Some("values.reply"));
    assert_eq!(&m.payload[..], b"one");
    let h = m.headers.unwrap();
    assert_eq!(h.get_all("X-Count").collect::<Vec<_>>(), ["3", "4"]);

    // A responder that answers with headers.
    let responder = client.clone();
    tokio::spawn(async move {
        let mut svc = responder.subscribe("svc.headers").await.unwrap();
        responder.flush().await.unwrap();
        while let Some(req) = svc.next().await {
            let mut headers = HeaderMap::new();
            let id = req
                .headers
                .as_ref()
                .and_then(|h| h.get("X-Id"))
                .unwrap_or("none");
            headers.insert("X-Echo", id.to_owned());
            responder
                .respond_with_headers(&req, &headers, "ok")
                .await
                .unwrap();
        }
    });
    let deadline = Instant::now() + WAIT;
    let reply = loop {
        match client
            .request_value(
                Request::new("svc.headers", "?")
                    .header("X-Id", 9)
                    .timeout(WAIT),
            )
            .await
        {
            Ok(reply) => break reply,
            // The responder's subscription may not be in place yet.
            Err(e) if e.is_no_responders() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(reply.headers.unwrap().get("X-Echo"), Some("9"));
    assert_eq!(client.pending_requests(), 0);

    // The request value's timeout applies.
    let _silent = client.subscribe("svc.silent").await.unwrap();
    client.flush().await.unwrap();
    let err = client
        .request_value(Request::new("svc.silent", "").timeout(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::TimedOut {
            subject: "svc.silent".into(),
            timeout: Duration::from_millis(100)
        }
    );
}

#[tokio::test]
async fn responding_to_a_message_without_reply_subject_is_its_own_error() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("plain").await.unwrap();
    client.flush().await.unwrap();
    client.publish("plain", "no reply wanted").await.unwrap();
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    let err = client.respond(&m, "answer").await.unwrap_err();
    assert_eq!(
        err,
        PublishError::NoReplySubject {
            subject: "plain".into()
        }
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = client
        .respond_with_headers(&m, &HeaderMap::new(), "answer")
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::NoReplySubject { .. }));
}

#[tokio::test]
async fn a_request_window_bounds_in_flight_and_expires_without_leaks() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let _silent = client.subscribe("svc.silent").await.unwrap();
    client.flush().await.unwrap();

    let window = client.request_window(2);
    let request = Request::new("svc.silent", "x").timeout(Duration::from_millis(200));
    let started = Instant::now();
    let first = window.send(&request).await.unwrap();
    let _second = window.send(&request).await.unwrap();
    assert_eq!(window.in_flight(), 2);
    assert_eq!(client.pending_requests(), 2);
    // The window is full: a third send waits until a slot frees (here: by expiry, which is
    // never early).
    let third = tokio::time::timeout(WAIT, window.send(&request))
        .await
        .expect("a slot frees when a request expires")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    let err = first.await.unwrap_err();
    assert_eq!(
        err,
        RequestError::TimedOut {
            subject: "svc.silent".into(),
            timeout: Duration::from_millis(200)
        }
    );
    assert!(third.await.unwrap_err().is_timeout());
    let deadline = Instant::now() + WAIT;
    while client.pending_requests() != 0 || window.in_flight() != 0 {
        assert!(Instant::now() < deadline, "entries or slots leaked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_full_reconnect_buffer_is_reported_as_such_through_every_layer() {
    let mut server = NatsServer::single();
    let client = nats_client::ConnectOptions::new()
        .reconnect_buffer_size(64)
        .connect(&server.url())
        .await
        .unwrap();
    let mut events = client.events();
    server.stop();
    while client.connection_state() == nats_client::State::Connected {
        let _ = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
    }
    let big = vec![0u8; 256];
    let err = client.publish("big", big.clone()).await.unwrap_err();
    assert!(err.is_buffer_full(), "{err:?}");
    let err = client.request("big", big).await.unwrap_err();
    assert!(err.is_buffer_full(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::BufferFull);
}
