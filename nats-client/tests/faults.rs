//! Faults: what the client does when the server misbehaves. A fake server (a std
//! `TcpListener` on 127.0.0.1 driven by a script) injects broken frames and early closes; the
//! client must report a typed error or an `Event::Disconnected`, never panic, and recover on
//! the next connection (`server_errors.rs` has the `-ERR` cases against real servers).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use nats_client::nats_proto::ProtoError;
use nats_client::{
    Client, ConnectError, ConnectOptions, DisconnectReason, Event, ServerErrorKind, State,
};
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(5);

const INFO: &str = "INFO {\"server_id\":\"FAKE\",\"server_name\":\"fake\",\"version\":\"2.10.0\",\
    \"proto\":1,\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576}\r\n";

/// One accepted connection of the fake server.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) {
        let stream = self.reader.get_mut();
        stream.write_all(bytes).unwrap();
        stream.flush().unwrap();
    }

    /// The next line from the client, without CRLF; `None` at EOF.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
        }
    }

    /// INFO, then the client's CONNECT and PING, answered with PONG.
    fn handshake(&mut self) {
        self.send(INFO.as_bytes());
        let connect = self.line().expect("CONNECT");
        assert!(connect.starts_with("CONNECT {"), "{connect}");
        assert_eq!(self.line().as_deref(), Some("PING"));
        self.send(b"PONG\r\n");
    }

    /// Reads lines (answering PINGs) until one starts with `prefix`, and returns it.
    fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .line()
                .unwrap_or_else(|| panic!("client closed before {prefix:?}"));
            if line == "PING" {
                self.send(b"PONG\r\n");
            } else if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

/// Runs `script` on each of the first `connections` accepted connections, then stops
/// listening (so later reconnects are refused). Returns the port.
fn fake_server(
    connections: usize,
    script: impl Fn(usize, Conn) + Send + 'static,
) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for n in 0..connections {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            script(
                n,
                Conn {
                    reader: BufReader::new(stream),
                },
            );
        }
    });
    (port, handle)
}

/// Waits for the fake server's thread without blocking the runtime (its script may wait for
/// the client).
async fn join(server: JoinHandle<()>) {
    tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || server.join().unwrap()),
    )
    .await
    .expect("fake server done within 5 s")
    .unwrap();
}

fn fast_reconnect() -> ConnectOptions {
    ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(20))
        .connection_timeout(Duration::from_secs(2))
}

/// Waits for the first event `pick` accepts.
async fn wait_event<T>(
    events: &mut broadcast::Receiver<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if let Some(t) = pick(&e) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel ended: {e}"),
            }
        }
    })
    .await
    .expect("event within 5 s")
}

async fn disconnect_reason(events: &mut broadcast::Receiver<Event>) -> DisconnectReason {
    wait_event(events, |e| match e {
        Event::Disconnected { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await
}

/// Closing must finish: a connection task that panicked would never report closed. (It may
/// have closed by itself already when it ran out of servers.)
async fn close_cleanly(client: Client) {
    let closed = tokio::time::timeout(WAIT, client.close())
        .await
        .expect("close completes: the connection task is alive");
    assert!(
        matches!(closed, Ok(()) | Err(nats_client::ClientError::Closed)),
        "{closed:?}"
    );
    assert_eq!(client.connection_state(), State::Closed);
}

#[tokio::test]
async fn server_closing_mid_frame_disconnects_and_the_client_recovers() {
    let (port, server) = fake_server(2, |n, mut conn| {
        conn.handshake();
        conn.wait_for("SUB data ");
        if n == 0 {
            // Half a MSG frame, then the socket closes.
            conn.send(b"MSG data 1 10\r\nhel");
        } else {
            // The reconnected client subscribed again: a whole message now.
            conn.send(b"MSG data 1 5\r\nwhole\r\n");
            conn.wait_for("UNSUB");
        }
    });
    let client = fast_reconnect()
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("data").await.unwrap();

    let reason = disconnect_reason(&mut events).await;
    assert_eq!(reason, DisconnectReason::ServerClosed, "{reason}");
    wait_event(&mut events, |e| {
        matches!(e, Event::Reconnected { .. }).then_some(())
    })
    .await;
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &msg.payload[..],
        b"whole",
        "the half frame was never delivered and did not corrupt the next connection"
    );
    assert_eq!(client.statistics().in_msgs, 1);
    assert_eq!(client.statistics().reconnects, 1);
    drop(sub); // sends UNSUB, which ends the fake server's script
    join(server).await;
    close_cleanly(client).await;
}

/// Feeds `frame` after the client subscribed and returns the disconnect reason.
async fn disconnect_after(frame: &'static [u8]) -> DisconnectReason {
    let (port, server) = fake_server(1, move |_, mut conn| {
        conn.handshake();
        conn.wait_for("SUB data ");
        conn.send(frame);
        // Keep the socket open: the client must hang up by itself.
        let _ = conn.line();
        while conn.line().is_some() {}
    });
    let client = fast_reconnect()
        .max_reconnects(Some(0))
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("data").await.unwrap();
    let reason = disconnect_reason(&mut events).await;
    join(server).await;
    close_cleanly(client).await;
    assert_eq!(
        tokio::time::timeout(WAIT, sub.next()).await.unwrap(),
        None,
        "nothing from the broken frame was delivered"
    );
    reason
}

#[tokio::test]
async fn malformed_msg_frame_is_a_protocol_error_disconnect() {
    let reason = disconnect_after(b"MSG data x 3\r\nabc\r\n").await;
    assert!(
        matches!(
            reason,
            DisconnectReason::Protocol(ProtoError::InvalidNumber { field: "sid", .. })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn payload_longer_than_announced_is_a_protocol_error_disconnect() {
    let reason = disconnect_after(b"MSG data 1 3\r\nabcdef\r\n").await;
    assert!(
        matches!(
            reason,
            DisconnectReason::Protocol(ProtoError::MissingPayloadTerminator { .. })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn unknown_operation_is_a_protocol_error_disconnect() {
    let reason = disconnect_after(b"BOGUS stuff\r\n").await;
    assert!(
        matches!(
            reason,
            DisconnectReason::Protocol(ProtoError::UnknownOp { .. })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn garbage_instead_of_info_is_a_typed_connect_error() {
    let (port, server) = fake_server(1, |_, mut conn| {
        conn.send(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        let _ = conn.line();
    });
    let err = fast_reconnect()
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Protocol(_) | ConnectError::Server(_)),
        "{err:?}"
    );
    join(server).await;
}

#[tokio::test]
async fn close_during_the_handshake_is_a_typed_connect_error() {
    let (port, server) = fake_server(1, |_, mut conn| {
        conn.send(INFO.as_bytes());
        let _ = conn.line(); // CONNECT, then hang up without PONG
    });
    let err = fast_reconnect()
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::ClosedDuringHandshake { .. } | ConnectError::Io { .. }
        ),
        "{err:?}"
    );
    join(server).await;
}

#[tokio::test]
async fn silent_server_times_out_the_handshake() {
    let (port, server) = fake_server(1, |_, mut conn| {
        // Accept, say nothing, wait for the client to give up.
        while conn.line().is_some() {}
    });
    let err = ConnectOptions::new()
        .connection_timeout(Duration::from_millis(300))
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::TimedOut { .. }), "{err:?}");
    join(server).await;
}

#[tokio::test]
async fn err_during_the_handshake_is_classified() {
    let (port, server) = fake_server(1, |_, mut conn| {
        conn.send(INFO.as_bytes());
        let _ = conn.line();
        conn.send(b"-ERR 'Authorization Violation'\r\n");
    });
    let err = fast_reconnect()
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::AuthorizationViolation(_)),
        "{err:?}"
    );
    join(server).await;
}

/// The inbound cap follows the server's announced `max_payload` (plus the header allowance),
/// also when an INFO update lowers it: a bigger message is a framing error, and the client
/// reconnects instead of buffering what the server said it would never send.
#[tokio::test]
async fn a_message_over_the_announced_max_payload_is_a_framing_error() {
    const SMALL_INFO: &str = "INFO {\"server_id\":\"FAKE\",\"version\":\"2.10.0\",\
        \"proto\":1,\"headers\":true,\"max_payload\":1024}\r\n";
    let big = 1024 + 64 * 1024 + 1;
    let (port, server) = fake_server(2, move |n, mut conn| {
        conn.handshake();
        conn.wait_for("SUB data ");
        match n {
            0 => {
                // An INFO update lowers the limit, then a message over it.
                conn.send(SMALL_INFO.as_bytes());
                let mut frame = format!("MSG data 1 {big}\r\n").into_bytes();
                frame.resize(frame.len() + big, b'x');
                frame.extend_from_slice(b"\r\n");
                conn.send(&frame);
                while conn.line().is_some() {}
            }
            _ => {
                // Within max_payload (1 MiB announced) plus the allowance: delivered.
                let mut frame = format!("MSG data 1 {big}\r\n").into_bytes();
                frame.resize(frame.len() + big, b'y');
                frame.extend_from_slice(b"\r\n");
                conn.send(&frame);
                conn.wait_for("UNSUB");
            }
        }
    });
    let client = fast_reconnect()
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("data").await.unwrap();
    let reason = disconnect_reason(&mut events).await;
    assert!(
        matches!(
            reason,
            DisconnectReason::Protocol(ProtoError::PayloadTooLarge { size, limit, .. })
                if size == big && limit == 1024 + 64 * 1024
        ),
        "{reason}"
    );
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((msg.payload.len(), msg.payload[0]), (big, b'y'));
    assert_eq!(
        client.statistics().in_msgs,
        1,
        "the oversized one never counted"
    );
    drop(sub);
    join(server).await;
    close_cleanly(client).await;
}

/// A bare `-ERR` and an unknown text are typed events that leave the connection as it is; a
/// `Stale Connection` ends it, and the client reconnects (nats.go's `processErr`).
#[tokio::test]
async fn err_texts_on_a_live_connection_follow_the_table() {
    let (port, server) = fake_server(2, |n, mut conn| {
        conn.handshake();
        conn.wait_for("SUB data ");
        if n == 0 {
            conn.send(b"-ERR\r\n-ERR 'Something New'\r\nMSG data 1 5\r\nstill\r\n");
            conn.wait_for("PUB ack ");
            conn.send(b"-ERR 'Stale Connection'\r\n");
            // The client must leave by itself.
            while conn.line().is_some() {}
        } else {
            conn.send(b"MSG data 1 5\r\nagain\r\n");
            conn.wait_for("UNSUB");
        }
    });
    let client = fast_reconnect()
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("data").await.unwrap();
    let mut errors = Vec::new();
    for _ in 0..2 {
        errors.push(
            wait_event(&mut events, |e| match e {
                Event::ServerError { error, .. } => Some(error.clone()),
                _ => None,
            })
            .await,
        );
    }
    let kinds: Vec<(ServerErrorKind, &str)> = errors
        .iter()
        .map(|e| (e.kind.clone(), e.text.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ServerErrorKind::Other, ""),
            (ServerErrorKind::Other, "Something New")
        ]
    );
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"still", "the connection was kept");
    client.publish("ack", "x").await.unwrap();
    let reason = disconnect_reason(&mut events).await;
    assert!(
        matches!(
            &reason,
            DisconnectReason::ServerError(e) if e.kind == ServerErrorKind::StaleConnection
        ),
        "{reason}"
    );
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"again", "reconnected");
    assert_eq!(client.statistics().reconnects, 1);
    drop(sub);
    join(server).await;
    close_cleanly(client).await;
}

#[tokio::test]
async fn connection_lost_during_a_request_fails_it_at_once() {
    let (port, server) = fake_server(1, |_, mut conn| {
        conn.handshake();
        let sub = conn.wait_for("SUB _INBOX.");
        assert!(sub.contains('*'), "one wildcard reply subscription: {sub}");
        conn.wait_for("PUB svc ");
        // Hang up instead of answering.
    });
    let client = fast_reconnect()
        .connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .request_with("svc", None, b"?", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        nats_client::RequestError::Disconnected {
            subject: "svc".into()
        }
    );
    assert!(
        started.elapsed() < WAIT,
        "failed at once, not at the timeout"
    );
    assert_eq!(client.pending_requests(), 0);
    join(server).await;
    close_cleanly(client).await;
}
