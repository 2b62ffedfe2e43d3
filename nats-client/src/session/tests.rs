//! Unit tests of the session: every input, no runtime.

use std::sync::Mutex;

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::sub_queue::SubQueue;

type S = Session<u32>;

fn addr(port: u16) -> ServerAddr {
    ServerAddr::parse(&format!("nats://127.0.0.1:{port}")).expect("valid address")
}

fn msg(sid: u64, payload: &'static [u8]) -> nats_proto::Msg {
    let mut wire = BytesMut::from(
        format!(
            "MSG s {sid} {}\r\n{}\r\n",
            payload.len(),
            String::from_utf8_lossy(payload)
        )
        .as_bytes(),
    );
    match nats_proto::Parser::new().parse(&mut wire) {
        Ok(Some(nats_proto::ServerOp::Msg(m))) => m,
        other => panic!("not a message: {other:?}"),
    }
}

fn queue() -> Arc<SubQueue> {
    SubQueue::new(100, 1 << 20)
}

#[test]
fn subscribe_writes_sub_only_when_live_and_validates_always() {
    let enc = Encoder::default();
    let mut s = S::default();
    let mut out = BytesMut::new();
    let a = s
        .subscribe(&enc, Some(&mut out), "a", None, Target::Requests)
        .expect("valid");
    assert_eq!(&out[..], format!("SUB a {a}\r\n").as_bytes());
    let b = s
        .subscribe(&enc, None, "b", Some("q".into()), Target::Requests)
        .expect("valid");
    assert_ne!(a, b);
    assert!(
        s.subscribe(&enc, None, "bad subject", None, Target::Requests)
            .is_err()
    );
    assert_eq!(s.sids().len(), 2);
}

#[test]
fn connected_resubscribes_with_what_is_left_of_a_limit() {
    let enc = Encoder::default();
    let mut s = S::default();
    let q = queue();
    let sid = s
        .subscribe(&enc, None, "a", Some("g".into()), Target::Queue(q.clone()))
        .expect("valid");
    s.unsubscribe(&enc, None, sid, Some(3), false);
    assert!(matches!(s.deliver(msg(sid, b"x")), Delivery::Queued));
    let mut out = BytesMut::new();
    assert!(matches!(
        s.connected(&enc, &mut out, addr(4222), ServerInfo::default(), false),
        Event::Connected { .. }
    ));
    assert_eq!(
        &out[..],
        format!("SUB a g {sid}\r\nUNSUB {sid} 2\r\n").as_bytes()
    );
    assert_eq!(s.server_name(), "nats://127.0.0.1:4222");
}

#[test]
fn a_limit_reached_ends_the_subscription() {
    let enc = Encoder::default();
    let mut s = S::default();
    let sid = s
        .subscribe(&enc, None, "a", None, Target::Queue(queue()))
        .expect("valid");
    let mut out = BytesMut::new();
    s.unsubscribe(&enc, Some(&mut out), sid, Some(2), true);
    assert_eq!(&out[..], format!("UNSUB {sid} 2\r\n").as_bytes());
    assert!(matches!(s.deliver(msg(sid, b"1")), Delivery::Queued));
    assert!(s.is_subscribed(sid));
    assert!(matches!(s.deliver(msg(sid, b"2")), Delivery::Queued));
    assert!(!s.is_subscribed(sid));
    assert!(matches!(s.deliver(msg(sid, b"3")), Delivery::Gone));
}

#[test]
fn replies_and_handlers_are_handed_back() {
    let enc = Encoder::default();
    let mut s = S::default();
    let inbox = s
        .subscribe(&enc, None, "_INBOX.>", None, Target::Requests)
        .expect("valid");
    let seen = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let sink = seen.clone();
    let h = s
        .subscribe(
            &enc,
            None,
            "h",
            None,
            Target::Handler(Arc::new(move |m| {
                sink.lock().expect("not poisoned").push(m.payload)
            })),
        )
        .expect("valid");
    assert!(matches!(s.deliver(msg(inbox, b"r")), Delivery::Requests(m) if m.payload == "r"));
    match s.deliver(msg(h, b"x")) {
        Delivery::Handler(handler, m) => handler(m),
        _ => panic!("a handler subscription's message comes back with its handler"),
    }
    assert_eq!(*seen.lock().expect("not poisoned"), vec![Bytes::from("x")]);
}

#[test]
fn a_full_queue_drops_and_reports_once_per_episode() {
    let enc = Encoder::default();
    let mut s = S::default();
    let sid = s
        .subscribe(
            &enc,
            None,
            "a",
            None,
            Target::Queue(SubQueue::new(1, 1 << 20)),
        )
        .expect("valid");
    assert!(matches!(s.deliver(msg(sid, b"1")), Delivery::Queued));
    assert!(matches!(
        s.deliver(msg(sid, b"2")),
        Delivery::Dropped { first: true, .. }
    ));
    assert!(matches!(
        s.deliver(msg(sid, b"3")),
        Delivery::Dropped { first: false, .. }
    ));
}

#[test]
fn pongs_resolve_flushes_in_order_and_a_loss_asks_again() {
    let mut s = S::default();
    s.ping_sent(vec![1, 2]);
    s.ping_sent(vec![]);
    s.ping_sent(vec![3]);
    assert_eq!(s.pong(), vec![1, 2]);
    assert_eq!(s.pongs_awaited(), 2);
    let mut chunk = Chunk {
        bytes: BytesMut::from(&b"PUB a 1\r\nx\r\nPING\r\n"[..]).into(),
        written: 14,
        waiters: Some(vec![4]),
        ping_at: Some(12),
        pongs: None,
    };
    let (unsent, unproven) = s.connection_lost(&mut chunk);
    assert!(
        unsent.bytes.is_empty(),
        "the PUB was sent, the cut PING is not sent again"
    );
    assert_eq!(
        unproven,
        vec![4, 3],
        "the cut PING's flush calls, then the unanswered"
    );
    assert_eq!(s.pongs_awaited(), 0);
    assert_eq!(s.pong(), Vec::<u32>::new(), "a stray PONG proves nothing");
}

#[test]
fn keep_alive_declares_the_link_dead_after_max_pings_out() {
    let mut s = S::default();
    assert!(matches!(s.keep_alive_tick(2), Action::Ping));
    assert!(matches!(s.keep_alive_tick(2), Action::Ping));
    let _ = s.server_op(ServerOp::Pong);
    assert!(matches!(s.keep_alive_tick(2), Action::Ping));
    assert!(matches!(s.keep_alive_tick(2), Action::Ping));
    assert!(matches!(
        s.keep_alive_tick(2),
        Action::Close(DisconnectReason::PingTimeout { unanswered: 2 })
    ));
    let mut out = BytesMut::new();
    assert!(matches!(
        s.connected(&Encoder::default(), &mut out, addr(1), ServerInfo::default(), true),
        Event::Reconnected { server } if server == "nats://127.0.0.1:1"
    ));
    assert!(
        matches!(s.keep_alive_tick(2), Action::Ping),
        "a new link starts afresh"
    );
}

#[test]
fn a_ping_is_answered_and_a_pong_proves_its_flush_calls() {
    let mut s = S::default();
    assert!(matches!(&s.server_op(ServerOp::Ping)[..], [Action::Pong]));
    s.ping_sent(vec![7]);
    assert!(matches!(&s.server_op(ServerOp::Pong)[..], [Action::Flushed(w)] if *w == vec![7]));
    assert!(
        s.server_op(ServerOp::Pong).is_empty(),
        "nothing left to prove"
    );
    assert!(s.server_op(ServerOp::Ok).is_empty());
}

#[test]
fn server_errors_are_reported_and_acted_on_by_kind() {
    let enc = Encoder::default();
    let mut s = S::default();
    let q = queue();
    let sid = s
        .subscribe(&enc, None, "a", None, Target::Queue(q.clone()))
        .expect("valid");
    let actions = s.server_op(ServerOp::Err(
        "Permissions Violation for Subscription to \"a\"".into(),
    ));
    assert!(matches!(
        &actions[..],
        [Action::Event(Event::ServerError { .. })]
    ));
    assert!(
        !s.is_subscribed(sid) && q.is_closed(),
        "the refused stream ends"
    );
    let actions = s.server_op(ServerOp::Err(
        "Permissions Violation for Publish to \"svc\"".into(),
    ));
    assert!(matches!(
        &actions[..],
        [Action::Event(_), Action::RefuseRequests(subject)] if subject == "svc"
    ));
    let actions = s.server_op(ServerOp::Err("Stale Connection".into()));
    assert!(matches!(
        &actions[..],
        [
            Action::Event(_),
            Action::Close(DisconnectReason::ServerError(_))
        ]
    ));
    assert!(matches!(
        &s.server_op(ServerOp::Err("unknown".into()))[..],
        [Action::Event(_)]
    ));
}

#[test]
fn refusal_ends_matching_streams_but_not_the_inbox() {
    let enc = Encoder::default();
    let mut s = S::default();
    let q = queue();
    let a = s
        .subscribe(&enc, None, "a", None, Target::Queue(q.clone()))
        .expect("valid");
    let ag = s
        .subscribe(&enc, None, "a", Some("g".into()), Target::Queue(queue()))
        .expect("valid");
    let inbox = s
        .subscribe(&enc, None, "a", None, Target::Requests)
        .expect("valid");
    let error = ServerError::parse("Permissions Violation for Subscription to \"a\"");
    assert_eq!(s.refuse("a", None, &error), 1);
    assert!(!s.is_subscribed(a));
    assert!(s.is_subscribed(ag) && s.is_subscribed(inbox));
}

#[test]
fn info_updates_limits_and_servers_and_a_lame_duck_one_starts_the_move() {
    let mut s = S::default();
    let mut out = BytesMut::new();
    let _ = s.connected(
        &Encoder::default(),
        &mut out,
        addr(1),
        ServerInfo::default(),
        false,
    );
    let info = ServerInfo {
        max_payload: 1000,
        connect_urls: vec!["127.0.0.1:2".into()],
        ..ServerInfo::default()
    };
    let actions = s.server_op(ServerOp::Info(Box::new(info)));
    assert!(matches!(
        &actions[..],
        [Action::Limits(l), Action::Discovered { urls, current }]
            if l.max_payload == 1000 + HEADER_ALLOWANCE && urls.len() == 1 && *current == addr(1)
    ));
    assert!(!s.info().ldm);
    let info = ServerInfo {
        ldm: true,
        ..ServerInfo::default()
    };
    let actions = s.server_op(ServerOp::Info(Box::new(info)));
    assert!(matches!(
        &actions[..],
        [Action::Limits(_), Action::Discovered { .. }, Action::Event(Event::LameDuck { server }), Action::Move]
            if server == "nats://127.0.0.1:1"
    ));
    assert!(s.info().ldm);
}

#[test]
fn a_handover_counts_the_old_servers_pongs_and_pings_for_the_retirement() {
    let mut s = S::default();
    s.ping_sent(vec![1]);
    // The chunk was cut inside the PONG owed to the old server: its flush PING never left.
    let mut chunk = Chunk {
        bytes: BytesMut::from(&b"PUB a 1\r\nx\r\nPONG\r\nPING\r\n"[..]).into(),
        written: 14,
        waiters: Some(vec![2]),
        ping_at: Some(18),
        pongs: Some((12, 1)),
    };
    let (mut retirement, unsent, unproven) = s.handed_over(&mut chunk, true, 1);
    assert!(unsent.is_empty(), "nothing for the new server: {unsent:?}");
    assert_eq!(
        unproven,
        vec![2, 1],
        "both flush calls ride the new server's PING"
    );
    assert_eq!(
        retirement.begin(None),
        vec![Step::Write(bytes::Bytes::from_static(b"PONG\r\nPONG\r\n"))],
        "the PONG cut off in the chunk and the one not taken yet go to the old server"
    );
    let now = std::time::Instant::now();
    assert!(retirement.new_server_proven(now).is_empty());
    let _ = retirement.timer(now + Duration::from_secs(1), true, || vec![9]);
    assert!(
        retirement.old_op(&ServerOp::Pong).is_empty(),
        "the PONG of the PING sent before the handoff (not the cut one)"
    );
    assert_eq!(retirement.old_op(&ServerOp::Pong), vec![Step::Close]);
}
