//! `Client::request_many` (scatter-gather) against real servers: a 3-node cluster with one
//! responder per node; the stream ends at its count, after a stall, or at its deadline; headers
//! go both ways; a 503 ends it; no inbox entry outlives its stream.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_client::{Client, HeaderMap, RepliesEnd, RequestError};
use nats_tests::{Cluster, NatsServer};
use tokio::task::spawn_blocking;

/// Answers every request on `svc.ping` with `node <i>`, echoing an `X-Id` header.
async fn responder(url: String, node: usize) -> Client {
    let client = nats_client::connect(&url).await.unwrap();
    let mut sub = client.subscribe("svc.ping").await.unwrap();
    client.flush().await.unwrap();
    let c = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let mut headers = HeaderMap::new();
            if let Some(id) = msg.headers.as_ref().and_then(|h| h.get("X-Id")) {
                headers.insert("X-Id", id.to_owned());
            }
            headers.insert("X-Node", node.to_string());
            let _ = c
                .respond_with_headers(&msg, &headers, format!("node {node}"))
                .await;
        }
    });
    client
}

fn nodes_of(replies: &[nats_client::Message]) -> BTreeSet<String> {
    replies
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

/// Waits until a request from `client` reaches all three responders (the subscriptions have
/// spread over the routes).
async fn wait_for_three(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replies: Vec<_> = client
            .request_many("svc.ping", "")
            .max_messages(3)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap()
            .collect()
            .await;
        if replies.len() == 3 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the responders never all answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathers_one_reply_per_node_and_ends_at_count_stall_or_deadline() {
    let cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let mut responders = Vec::new();
    for (i, node) in cluster.nodes().iter().enumerate() {
        responders.push(responder(node.url(), i).await);
    }
    let client = nats_client::connect(&cluster.node(0).url()).await.unwrap();
    wait_for_three(&client).await;

    // At the count: all three, with headers both ways, then the end at once.
    let started = Instant::now();
    let mut replies = client
        .request_many("svc.ping", "hello")
        .header("X-Id", 42)
        .max_messages(3)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(m) = replies.next().await {
        got.push(m);
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(replies.end(), Some(RepliesEnd::MaxMessages));
    assert_eq!(replies.error(), None);
    assert_eq!(
        nodes_of(&got),
        ["node 0", "node 1", "node 2"].map(String::from).into()
    );
    for m in &got {
        let h = m.headers.as_ref().expect("reply headers");
        assert_eq!(h.get("X-Id"), Some("42"));
    }
    assert_eq!(
        client.pending_requests(),
        0,
        "ended at the count: entry gone"
    );
    drop(replies);

    // After a stall: no count, a long deadline; the quiet period after the third ends it.
    let started = Instant::now();
    let mut replies = client
        .request_many("svc.ping", "")
        .stall(Duration::from_secs(1))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let got: Vec<_> = replies.by_ref().collect().await;
    assert_eq!(replies.end(), Some(RepliesEnd::Stall));
    assert_eq!(nodes_of(&got).len(), 3);
    assert_eq!(got.len(), 3);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(client.pending_requests(), 0, "ended at a stall: entry gone");

    // At the deadline: no count, no stall.
    let started = Instant::now();
    let mut replies = client
        .request_many("svc.ping", "")
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap();
    assert_eq!(client.pending_requests(), 1);
    let got: Vec<_> = replies.by_ref().collect().await;
    assert_eq!(replies.end(), Some(RepliesEnd::Timeout));
    assert_eq!(got.len(), 3);
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(
        client.pending_requests(),
        0,
        "ended at the deadline: entry gone"
    );

    // A count below the number of responders ends early; the late replies go nowhere.
    let mut replies = client
        .request_many("svc.ping", "")
        .max_messages(1)
        .send()
        .await
        .unwrap();
    assert!(replies.next().await.is_some());
    assert!(replies.next().await.is_none());
    assert_eq!(replies.end(), Some(RepliesEnd::MaxMessages));
    assert_eq!(client.pending_requests(), 0);
    // The late replies of that request must not disturb the next one.
    let reply = client.request("svc.ping", "").await.unwrap();
    assert!(reply.payload.starts_with(b"node "));
    assert_eq!(client.pending_requests(), 0);
    drop(responders);
    drop(cluster);
}

#[tokio::test]
async fn no_responders_ends_the_stream_and_dropping_forgets_it() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();

    let mut replies = client
        .request_many("nobody.home", "")
        .stall(Duration::from_millis(100))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    assert!(replies.next().await.is_none());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(replies.end(), Some(RepliesEnd::NoResponders));
    assert!(matches!(
        replies.error(),
        Some(RequestError::NoResponders { subject }) if subject == "nobody.home"
    ));
    assert_eq!(client.pending_requests(), 0);

    // A subscriber that never answers: the stream waits; dropping it forgets the request.
    let _silent = client.subscribe("silent").await.unwrap();
    client.flush().await.unwrap();
    let replies = client
        .request_many("silent", "")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(client.pending_requests(), 1);
    drop(replies);
    assert_eq!(client.pending_requests(), 0);

    // A timeout with no reply at all is an error for those who want one.
    let mut replies = client
        .request_many("silent", "")
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap();
    assert!(replies.next().await.is_none());
    assert_eq!(replies.end(), Some(RepliesEnd::Timeout));
    assert!(replies.error().is_some_and(|e| e.is_timeout()));
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn a_closed_client_ends_the_stream() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let _silent = client.subscribe("silent").await.unwrap();
    client.flush().await.unwrap();
    let mut replies = client
        .request_many("silent", "")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    client.close().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), replies.next())
        .await
        .expect("the stream ends when the client closes");
    assert!(ended.is_none());
    assert_eq!(replies.end(), Some(RepliesEnd::Closed));
    assert_eq!(client.pending_requests(), 0);
    let err = client.request_many("x", "").send().await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
}
