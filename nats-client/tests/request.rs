//! Request/reply against a real server: replies (plain, with headers, explicit timeout), no
//! responders, timeouts, and that no request ever stays in the client's reply map.

use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_client::{Client, HeaderMap, RequestError};
use nats_tests::NatsServer;

const WAIT: Duration = Duration::from_secs(5);

/// Answers every request on `subject` with `"re: <payload>"`, echoing an `X-Id` header back
/// when there is one.
async fn echo_responder(client: &Client, subject: &str) -> tokio::task::JoinHandle<()> {
    let mut sub = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let mut answer = b"re: ".to_vec();
            answer.extend_from_slice(&msg.payload);
            match msg.headers.as_ref().and_then(|h| h.get("X-Id")) {
                Some(id) => {
                    let mut headers = HeaderMap::new();
                    headers.insert("X-Id", id.to_owned());
                    let reply = msg.reply.as_deref().unwrap();
                    client
                        .publish_with_headers(reply, &headers, answer)
                        .await
                        .unwrap();
                }
                None => client.respond(&msg, answer).await.unwrap(),
            }
        }
    })
}

#[tokio::test]
async fn request_gets_the_reply() {
    let server = NatsServer::single();
    let responder = nats_client::connect(&server.url()).await.unwrap();
    let _task = echo_responder(&responder, "svc.echo").await;
    let client = nats_client::connect(&server.url()).await.unwrap();

    let reply = client.request("svc.echo", "one").await.unwrap();
    assert_eq!(&reply.payload[..], b"re: one");

    let mut headers = HeaderMap::new();
    headers.insert("X-Id", "17");
    let reply = client
        .request_with_headers("svc.echo", &headers, "two")
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"re: two");
    assert_eq!(
        reply.headers.as_ref().and_then(|h| h.get("X-Id")),
        Some("17")
    );

    let reply = client
        .request_with("svc.echo", None, b"three", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"re: three");
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_reply() {
    let server = NatsServer::single();
    let responder = nats_client::connect(&server.url()).await.unwrap();
    let _task = echo_responder(&responder, "svc.echo").await;
    let client = nats_client::connect(&server.url()).await.unwrap();
    let replies: Vec<_> = futures::stream::iter(0..1000)
        .map(|i| {
            let client = client.clone();
            async move { (i, client.request("svc.echo", i.to_string()).await) }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    for (i, reply) in replies {
        assert_eq!(reply.unwrap().payload, format!("re: {i}").into_bytes());
    }
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn no_responders_is_a_typed_error() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let started = Instant::now();
    let err = client.request("nobody.home", "hello?").await.unwrap_err();
    assert_eq!(
        err,
        RequestError::NoResponders {
            subject: "nobody.home".into()
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "503 answers at once, not after the 10 s request timeout"
    );
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn silent_responder_times_out_and_a_late_reply_is_ignored() {
    let server = NatsServer::single();
    let responder = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = responder.subscribe("svc.slow").await.unwrap();
    responder.flush().await.unwrap();
    let client = nats_client::connect(&server.url()).await.unwrap();

    let timeout = Duration::from_millis(100);
    let started = Instant::now();
    let err = client
        .request_with("svc.slow", None, b"first", timeout)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::TimedOut {
            subject: "svc.slow".into(),
            timeout
        }
    );
    assert!(started.elapsed() >= timeout);
    assert_eq!(client.pending_requests(), 0);

    // The responder answers the first request only now; then a second request arrives.
    let first = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    responder.respond(&first, "late").await.unwrap();
    responder.flush().await.unwrap();
    let second = {
        let client = client.clone();
        tokio::spawn(async move { client.request_with("svc.slow", None, b"second", WAIT).await })
    };
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"second");
    responder.respond(&msg, "on time").await.unwrap();
    let reply = second.await.unwrap().unwrap();
    assert_eq!(
        &reply.payload[..],
        b"on time",
        "the late reply to the first request must not answer the second"
    );
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn dropping_a_request_future_removes_its_entry() {
    let server = NatsServer::single();
    let responder = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = responder.subscribe("svc.never").await.unwrap();
    responder.flush().await.unwrap();
    let client = nats_client::connect(&server.url()).await.unwrap();

    // Cancelled by an outer timeout while waiting for the reply.
    let outcome = tokio::time::timeout(
        Duration::from_millis(100),
        client.request_with("svc.never", None, b"x", Duration::from_secs(60)),
    )
    .await;
    assert!(outcome.is_err(), "the outer timeout fired first");
    assert_eq!(client.pending_requests(), 0);
    let first = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first.payload[..], b"x");

    // Aborted as a task while it is certainly in flight (the responder has the request).
    let task = {
        let client = client.clone();
        tokio::spawn(async move { client.request("svc.never", "y").await })
    };
    let got = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"y");
    assert_eq!(client.pending_requests(), 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(client.pending_requests(), 0);

    // A reply to the abandoned request arrives later and is discarded quietly.
    responder.respond(&got, "too late").await.unwrap();
    responder.flush().await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(client.pending_requests(), 0);
}

/// 100,000 requests, 500 in flight at a time; the responder answers only the even ones, so
/// half of them time out (50 ms). Afterwards the reply map must be empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_requests_half_timing_out_leave_no_entry() {
    const TOTAL: u64 = 100_000;
    const IN_FLIGHT: usize = 500;
    let timeout = Duration::from_millis(50);

    let server = NatsServer::single();
    let responder = nats_client::connect(&server.url()).await.unwrap();
    let mut sub = responder.subscribe("svc.even").await.unwrap();
    responder.flush().await.unwrap();
    let answering = responder.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let n: u64 = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
            if n.is_multiple_of(2) {
                answering.respond(&msg, &msg.payload).await.unwrap();
            }
        }
    });

    let client = nats_client::connect(&server.url()).await.unwrap();
    let started = Instant::now();
    let mut max_pending = 0;
    let (mut ok, mut odd_timed_out, mut even_timed_out) = (0u64, 0u64, 0u64);
    let mut results = futures::stream::iter(0..TOTAL)
        .map(|n| {
            let client = client.clone();
            async move {
                let r = client
                    .request_with("svc.even", None, n.to_string().as_bytes(), timeout)
                    .await;
                (n, r)
            }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((n, r)) = results.next().await {
        max_pending = max_pending.max(client.pending_requests());
        match r {
            Ok(reply) => {
                assert!(n.is_multiple_of(2), "request {n} must not get a reply");
                assert_eq!(reply.payload, n.to_string().into_bytes());
                ok += 1;
            }
            Err(RequestError::TimedOut { .. }) if n.is_multiple_of(2) => even_timed_out += 1,
            Err(RequestError::TimedOut { .. }) => odd_timed_out += 1,
            Err(e) => panic!("request {n}: {e}"),
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{TOTAL} requests ({ok} answered, {odd_timed_out} odd + {even_timed_out} even timed \
         out) in {elapsed:?}; max map size seen {max_pending}; final map size {}",
        client.pending_requests()
    );
    assert_eq!(odd_timed_out, TOTAL / 2, "every odd request times out");
    // A slow moment on a loaded machine may time out an even one too: still no leak.
    assert!(ok > TOTAL / 4, "most even requests are answered: {ok}");
    assert!(max_pending <= IN_FLIGHT);
    assert_eq!(client.pending_requests(), 0);
}

/// `send_request` pipelines: all requests go out before any reply is awaited, each reply
/// future resolves to its own answer, and a dropped reply future leaves no entry.
#[tokio::test]
async fn send_request_pipelines_through_one_inbox() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let _responder = echo_responder(&client, "pipe").await;
    let mut replies = Vec::new();
    for i in 0..1000u32 {
        replies.push(
            client
                .send_request("pipe", None, &i.to_be_bytes())
                .await
                .unwrap(),
        );
    }
    assert_eq!(client.pending_requests(), 1000);
    for (i, reply) in replies.into_iter().enumerate() {
        let m = tokio::time::timeout(WAIT, reply).await.unwrap().unwrap();
        assert_eq!(&m.payload[4..], (i as u32).to_be_bytes());
    }
    assert_eq!(client.pending_requests(), 0);

    let abandoned = client
        .send_request("nobody.listens.here", None, b"")
        .await
        .unwrap();
    assert_eq!(client.pending_requests(), 1);
    drop(abandoned);
    assert_eq!(client.pending_requests(), 0);
    let no_one = client
        .send_request("nobody.listens.here", None, b"")
        .await
        .unwrap();
    let err = tokio::time::timeout(WAIT, no_one)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RequestError::NoResponders { .. }), "{err:?}");
}
