//! Reconnect, failover, reconnect buffer and discovery against a real 3-node cluster.

use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_client::{Client, ConnectOptions, DisconnectReason, Event, PublishError, State};
use nats_tests::{Cluster, NatsServer};
use tokio::sync::broadcast;
use tokio::task::spawn_blocking;

const WAIT: Duration = Duration::from_secs(10);

/// Index of the cluster node a client is connected to (`n1` -> 0).
fn node_of(client: &Client) -> usize {
    let name = client.server_info().server_name.clone();
    name.trim_start_matches('n')
        .parse::<usize>()
        .expect("node name n<i>")
        - 1
}

async fn wait_event(
    events: &mut broadcast::Receiver<Event>,
    what: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) if what(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
    .expect("event within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_subscriptions_and_replays_buffered_publishes() {
    let mut cluster = spawn_blocking(|| Cluster::start(3)).await.unwrap();
    let client = ConnectOptions::new()
        .connect(&cluster.urls())
        .await
        .unwrap();
    let victim = node_of(&client);
    let other = (victim + 1) % 3;
    let observer = nats_client::connect(&cluster.node(other).url())
        .await
        .unwrap();
    let mut sub = client.subscribe("fo.>").await.unwrap();
    let mut observed = observer.subscribe("fo.>").await.unwrap();
    client.flush().await.unwrap();
    observer.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // interest crosses the routes

    let mut events = client.events();
    let killed_at = Instant::now();
    cluster = spawn_blocking(move || {
        cluster.kill_node(victim);
        cluster
    })
    .await
    .unwrap();
    wait_event(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    // Published while down: kept in the reconnect buffer, sent after reconnect.
    for i in 0..100u32 {
        client
            .publish("fo.buffered", i.to_be_bytes())
            .await
            .unwrap();
    }
    wait_event(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    let took = killed_at.elapsed();
    println!("reconnected to another node {took:?} after the kill");
    assert!(took < Duration::from_secs(2), "failover took {took:?}");
    assert_ne!(node_of(&client), victim);
    client.flush().await.unwrap();

    for i in 0..100u32 {
        let m = tokio::time::timeout(WAIT, observed.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            &m.payload[..],
            i.to_be_bytes(),
            "buffered publishes arrive in order"
        );
    }
    // The re-sent subscription receives again, from the buffer and from others.
    for i in 0..100u32 {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&m.payload[..], i.to_be_bytes());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    observer.publish("fo.after", "x").await.unwrap();
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*m.subject, "fo.after");
    assert_eq!(client.statistics().reconnects, 1);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_buffer_full_is_a_typed_error() {
    let server = NatsServer::single();
    let client = ConnectOptions::new()
        .reconnect_buffer_size(4096)
        .connect(&server.url())
        .await
        .unwrap();
    let zero = ConnectOptions::new()
        .reconnect_buffer_size(0)
        .connect(&server.url())
        .await
        .unwrap();
    let mut events = client.events();
    let mut zero_events = zero.events();
    let server = spawn_blocking(move || {
        let mut server = server;
        server.kill();
        server
    })
    .await
    .unwrap();
    wait_event(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    wait_event(&mut zero_events, |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    assert_eq!(client.connection_state(), State::Disconnected);

    let mut accepted = 0;
    let err = loop {
        match client.publish("buffered", [0u8; 100]).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "the buffer must be bounded");
    };
    assert!(
        matches!(err, PublishError::ReconnectBufferFull { limit: 4096, .. }),
        "{err:?}"
    );
    assert!(
        (30..=40).contains(&accepted),
        "{accepted} messages of ~112 bytes in 4 KiB"
    );
    assert!(matches!(
        zero.publish("x", "y").await,
        Err(PublishError::ReconnectBufferFull { limit: 0, .. })
    ));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_servers_join_the_pool_and_serve_failover() {
    let mut cluster = spawn_blocking(|| {
        let mut c = Cluster::start(3);
        c.stop_node(2);
        c
    })
    .await
    .unwrap();
    // Only node 0's URL is configured.
    let client = ConnectOptions::new()
        .no_randomize()
        .connect(&cluster.node(0).url())
        .await
        .unwrap();
    assert_eq!(node_of(&client), 0);
    let ports = |c: &Client| {
        let mut p: Vec<u16> = c.servers().iter().map(|a| a.port).collect();
        p.sort();
        p
    };
    let mut expected = vec![cluster.node(0).port(), cluster.node(1).port()];
    expected.sort();
    // In the first INFO, or in an async INFO soon after: a server learns its peers'
    // client URLs over the routes, which may still be under way right after the cluster
    // formed (seen on a loaded machine).
    let deadline = Instant::now() + WAIT;
    while ports(&client) != expected {
        assert!(
            Instant::now() < deadline,
            "node 1 discovered from INFO connect_urls: {:?} != {expected:?}",
            ports(&client)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A node that joins later is announced by an async INFO.
    cluster = spawn_blocking(move || {
        cluster.restart_node(2);
        cluster
    })
    .await
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while ports(&client).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "node 2 never announced: {:?}",
            ports(&client)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The URL-only client fails over to a discovered node.
    let mut sub = client.subscribe("disc").await.unwrap();
    client.flush().await.unwrap();
    let mut events = client.events();
    cluster = spawn_blocking(move || {
        cluster.kill_node(0);
        cluster
    })
    .await
    .unwrap();
    wait_event(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
    assert_ne!(node_of(&client), 0);
    client.publish("disc", "after failover").await.unwrap();
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"after failover");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_fail_on_disconnect() {
    let server = NatsServer::single();
    let client = nats_client::connect(&server.url()).await.unwrap();
    let _responder_never_answers = client.subscribe("slow").await.unwrap();
    client.flush().await.unwrap();
    let c2 = client.clone();
    let request = tokio::spawn(async move {
        c2.request_with("slow", None, b"", Duration::from_secs(30))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = spawn_blocking(move || {
        let mut s = server;
        s.kill();
        s
    })
    .await
    .unwrap();
    let result = tokio::time::timeout(WAIT, request).await.unwrap().unwrap();
    assert!(
        matches!(result, Err(nats_client::RequestError::Disconnected { .. })),
        "{result:?}"
    );
    assert_eq!(client.pending_requests(), 0);
    drop(server);
}

/// A peer that completes the handshake and then never answers again: the keep-alive PINGs go
/// unanswered and the client declares the connection stale instead of hanging on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_detected_by_keep_alive() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.write_all(
            b"INFO {\"server_id\":\"silent\",\"max_payload\":1048576,\"headers\":true}\r\n",
        )
        .unwrap();
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.starts_with("PING") {
                sock.write_all(b"PONG\r\n").unwrap();
                break;
            }
            line.clear();
        }
        // From here on: read and discard, answer nothing.
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut reader, &mut sink);
    });
    let client = ConnectOptions::new()
        .ping_interval(Duration::from_millis(100))
        .max_pings_out(2)
        .max_reconnects(Some(0))
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut events = client.events();
    let event = wait_event(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let Event::Disconnected { reason, .. } = event else {
        unreachable!()
    };
    assert_eq!(
        reason,
        DisconnectReason::PingTimeout { unanswered: 2 },
        "{reason}"
    );
    drop(client);
    drop(peer);
}
