//! `-ERR` from real servers, and the reconnect events: what a program sees (typed events, not
//! text) and what the client does (see the table in `nats_client::ServerErrorKind`'s module).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nats_client::{
    ConnectError, ConnectOptions, DisconnectReason, Event, PermissionOperation, ServerErrorKind,
    State, SubscriptionError,
};
use nats_tests::{NatsServer, ServerOptions};
use tokio::task::spawn_blocking;

const WAIT: Duration = Duration::from_secs(10);

/// Every event the client emits, from the first `Connected` on.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Recorder {
    fn options(&self) -> ConnectOptions {
        let events = self.0.clone();
        ConnectOptions::new().event_callback(move |e| events.lock().unwrap().push(e.clone()))
    }

    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until an event `pick` accepts has been recorded, and returns what it returned.
    async fn wait_for<T>(&self, what: &str, pick: impl Fn(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(t) = self.events().iter().find_map(&pick) {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {what} within {WAIT:?}: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn server_error(e: &Event) -> Option<ServerErrorKind> {
    match e {
        Event::ServerError { error, .. } => Some(error.kind.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn a_publish_permissions_violation_names_the_subject_and_keeps_the_connection() {
    let server = NatsServer::with_auth(
        "authorization { users: [ { user: a, password: b, \
         permissions: { publish: { deny: [\"secret.>\"] } } } ] }",
    );
    let recorder = Recorder::default();
    let client = recorder
        .options()
        .user_and_password("a", "b")
        .connect(&server.url())
        .await
        .unwrap();
    let mut sub = client.subscribe(">").await.unwrap();
    client.flush().await.unwrap();

    client.publish("secret.x", "classified").await.unwrap();
    let (kind, text) = recorder
        .wait_for("permissions violation", |e| match e {
            Event::ServerError { error, .. } => Some((error.kind.clone(), error.text.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        kind,
        ServerErrorKind::PermissionsViolation {
            operation: PermissionOperation::Publish,
            subject: "secret.x".into(),
            queue: None,
        }
    );
    assert!(
        text.contains("Permissions Violation"),
        "the text is kept: {text}"
    );

    // The connection stays up and usable; the denied message went nowhere.
    client.publish("public.x", "fine").await.unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*msg.subject, "public.x");
    assert_eq!(client.connection_state(), State::Connected);
    assert_eq!(client.statistics().reconnects, 0);
    assert!(sub.take_errors().is_empty());
}

#[tokio::test]
async fn a_refused_subscription_ends_with_the_error_and_the_others_go_on() {
    let server = NatsServer::with_auth(
        "authorization { users: [ { user: a, password: b, \
         permissions: { subscribe: { deny: [\"secret.>\"] } } } ] }",
    );
    let recorder = Recorder::default();
    let client = recorder
        .options()
        .user_and_password("a", "b")
        .connect(&server.url())
        .await
        .unwrap();
    let mut refused = client.queue_subscribe("secret.x", "workers").await.unwrap();
    let mut allowed = client.subscribe("public.>").await.unwrap();
    client.flush().await.unwrap();

    // The refused subscription's stream ends (it would wait forever otherwise) ...
    let end = tokio::time::timeout(WAIT, refused.next()).await;
    assert_eq!(end.expect("the refused stream ends"), None);
    let errors = refused.take_errors();
    let [SubscriptionError::Refused(error)] = &errors[..] else {
        panic!("{errors:?}")
    };
    let expected = ServerErrorKind::PermissionsViolation {
        operation: PermissionOperation::Subscribe,
        subject: "secret.x".into(),
        queue: Some("workers".into()),
    };
    assert_eq!(error.kind, expected);
    assert!(
        recorder
            .events()
            .iter()
            .filter_map(server_error)
            .any(|k| k == expected)
    );

    // ... and the connection and the other subscription are untouched.
    client.publish("public.a", "ok").await.unwrap();
    let msg = tokio::time::timeout(WAIT, allowed.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*msg.subject, "public.a");
    assert_eq!(client.connection_state(), State::Connected);
    assert!(
        !recorder
            .events()
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "{:?}",
        recorder.events()
    );
}

#[tokio::test]
async fn a_full_server_sends_the_client_to_another_one() {
    let full = NatsServer::start(ServerOptions {
        extra_config: "max_connections: 1\n".into(),
        ..ServerOptions::default()
    });
    let other = NatsServer::single();
    let _occupant = nats_client::connect(&full.url()).await.unwrap();

    let recorder = Recorder::default();
    let client = recorder
        .options()
        .no_randomize()
        .connect(&[full.url(), other.url()].join(","))
        .await
        .unwrap();
    assert_eq!(
        client.server_info().port,
        other.port(),
        "moved on to the other server"
    );
    assert!(
        recorder
            .events()
            .iter()
            .filter_map(server_error)
            .any(|k| k == ServerErrorKind::MaxConnectionsExceeded),
        "typed event for the full server: {:?}",
        recorder.events()
    );
    assert!(
        matches!(recorder.events().last(), Some(Event::Connected { .. })),
        "{:?}",
        recorder.events()
    );
}

#[tokio::test]
async fn bad_credentials_are_a_typed_event_and_error() {
    let server = NatsServer::with_auth("authorization { user: a, password: b }");
    let recorder = Recorder::default();
    let err = recorder
        .options()
        .user_and_password("a", "wrong")
        .connect(&server.url())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::AuthorizationViolation(_)),
        "{err:?}"
    );
    let kinds: Vec<ServerErrorKind> = recorder.events().iter().filter_map(server_error).collect();
    assert_eq!(kinds, [ServerErrorKind::AuthorizationViolation]);
}

/// Credentials that stop working: the server refuses the reconnects; after the same auth
/// error twice in a row the server leaves the pool, and with none left the client closes,
/// even with unlimited reconnects (instead of retrying forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_refused_twice_in_a_row_end_the_reconnects() {
    let mut server = NatsServer::with_auth("authorization { user: a, password: b }");
    let recorder = Recorder::default();
    let client = recorder
        .options()
        .user_and_password("a", "b")
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(20))
        .connect(&server.url())
        .await
        .unwrap();
    server.set_extra_config("authorization { user: a, password: changed }");
    let server = spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    recorder
        .wait_for("Closed", |e| matches!(e, Event::Closed).then_some(()))
        .await;
    let events = recorder.events();
    let refusals = events
        .iter()
        .filter_map(server_error)
        .filter(|k| *k == ServerErrorKind::AuthorizationViolation)
        .count();
    assert_eq!(refusals, 2, "{events:?}");
    let n = events.len();
    assert!(
        matches!(events[n - 2..], [Event::ReconnectsExhausted, Event::Closed]),
        "{events:?}"
    );
    assert_eq!(client.connection_state(), State::Closed);
    drop(server);
}

/// `max_reconnects(Some(n))` makes exactly n attempts on a server, each announced with its
/// number, then says the reconnects are exhausted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_events_count_exactly_max_reconnects_attempts() {
    let mut server = NatsServer::single();
    let recorder = Recorder::default();
    let client = recorder
        .options()
        .max_reconnects(Some(3))
        .reconnect_delay_callback(|n| Duration::from_millis(10 * n as u64))
        .connect(&server.url())
        .await
        .unwrap();
    let url = server.url();
    let server = spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    recorder
        .wait_for("Closed", |e| matches!(e, Event::Closed).then_some(()))
        .await;
    let events = recorder.events();
    assert!(
        matches!(&events[0], Event::Connected { server } if url.ends_with(server.as_str())),
        "the first Connected is observable: {events:?}"
    );
    assert!(
        matches!(
            &events[1],
            Event::Disconnected {
                reason: DisconnectReason::ServerClosed | DisconnectReason::Io { .. },
                ..
            }
        ),
        "{events:?}"
    );
    let attempts: Vec<(usize, Duration)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Reconnecting { attempt, delay, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    let numbers: Vec<usize> = attempts.iter().map(|(a, _)| *a).collect();
    assert_eq!(numbers, [1, 2, 3], "{events:?}");
    assert_eq!(
        attempts[0].1,
        Duration::ZERO,
        "the first attempt is at once"
    );
    let n = events.len();
    assert!(
        matches!(events[n - 2..], [Event::ReconnectsExhausted, Event::Closed]),
        "{events:?}"
    );
    assert_eq!(client.connection_state(), State::Closed);
    assert!(events.iter().all(|e| !e.to_string().is_empty()));
    drop(server);
}
