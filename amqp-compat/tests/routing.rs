//! The routing engine: RabbitMQ's declare/bind/route rules on pure values.

use std::collections::BTreeSet;

use amqp_compat::{
    Error, ExchangeKind,
    options::*,
    routing::{Destination, Overflow, QueueType, Topology},
    types::{AMQPValue, FieldTable, LongString},
};
use proptest::prelude::*;

const C1: &str = "conn-1";
const C2: &str = "conn-2";

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn none() -> FieldTable {
    FieldTable::default()
}

fn code(r: Result<impl std::fmt::Debug, Error>) -> u16 {
    r.expect_err("an AMQP error")
        .reply_code()
        .expect("a reply code")
}

fn queues(t: &Topology, ex: &str, key: &str, headers: Option<&FieldTable>) -> Vec<String> {
    t.route(ex, key, headers)
        .unwrap()
        .queues
        .into_iter()
        .collect()
}

fn with_queues(names: &[&str]) -> Topology {
    let mut t = Topology::new();
    for q in names {
        t.declare_queue(q, QueueDeclareOptions::default(), &none(), C1)
            .unwrap();
    }
    t
}

#[test]
fn queue_redeclare_is_idempotent_and_mismatch_is_406() {
    let mut t = Topology::new();
    let ttl = table(&[("x-message-ttl", AMQPValue::LongInt(1000))]);
    let d = t
        .declare_queue("q", QueueDeclareOptions::durable(), &ttl, C1)
        .unwrap();
    assert_eq!(d.name, "q");
    // Same flags, same argument with another integer width: equivalent.
    let ttl64 = table(&[("x-message-ttl", AMQPValue::LongLongInt(1000))]);
    t.declare_queue("q", QueueDeclareOptions::durable(), &ttl64, C2)
        .unwrap();
    assert_eq!(
        code(t.declare_queue("q", QueueDeclareOptions::default(), &ttl, C1)),
        406
    );
    assert_eq!(
        code(t.declare_queue("q", QueueDeclareOptions::durable().auto_delete(), &ttl, C1)),
        406
    );
    assert_eq!(
        code(t.declare_queue("q", QueueDeclareOptions::durable(), &none(), C1)),
        406
    );
    let other = table(&[("x-message-ttl", AMQPValue::LongInt(5))]);
    let err = t
        .declare_queue("q", QueueDeclareOptions::durable(), &other, C1)
        .unwrap_err();
    assert!(
        err.to_string().contains("inequivalent arg 'x-message-ttl'"),
        "{err}"
    );
    // An argument RabbitMQ does not check may differ.
    let extra = table(&[
        ("x-message-ttl", AMQPValue::LongInt(1000)),
        ("x-custom", s("v")),
    ]);
    t.declare_queue("q", QueueDeclareOptions::durable(), &extra, C1)
        .unwrap();
}

#[test]
fn passive_exclusive_and_reserved_names() {
    let mut t = Topology::new();
    assert_eq!(
        code(t.declare_queue(
            "nope",
            QueueDeclareOptions::default().passive(),
            &none(),
            C1
        )),
        404
    );
    t.declare_queue("mine", QueueDeclareOptions::exclusive(), &none(), C1)
        .unwrap();
    t.declare_queue("mine", QueueDeclareOptions::exclusive(), &none(), C1)
        .unwrap();
    t.declare_queue(
        "mine",
        QueueDeclareOptions::default().passive(),
        &none(),
        C1,
    )
    .unwrap();
    assert_eq!(
        code(t.declare_queue("mine", QueueDeclareOptions::exclusive(), &none(), C2)),
        405
    );
    assert_eq!(
        code(t.declare_queue(
            "mine",
            QueueDeclareOptions::default().passive(),
            &none(),
            C2
        )),
        405
    );
    assert_eq!(
        code(t.declare_queue("mine", QueueDeclareOptions::default(), &none(), C1)),
        405
    );
    t.declare_exchange(
        "x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        &none(),
    )
    .unwrap();
    assert_eq!(code(t.bind_queue("mine", "x", "k", &none(), C2)), 405);
    assert_eq!(code(t.add_consumer("mine", C2, false)), 405);
    assert_eq!(
        code(t.delete_queue("mine", QueueDeleteOptions::default(), C2, 0)),
        405
    );
    assert_eq!(
        code(t.declare_queue("amq.q", QueueDeclareOptions::default(), &none(), C1)),
        403
    );
    let named = t
        .declare_queue("", QueueDeclareOptions::exclusive(), &none(), C1)
        .unwrap()
        .name;
    assert!(
        named.starts_with("amq.gen-") && named.len() == "amq.gen-".len() + 22,
        "{named}"
    );
    assert_eq!(t.connection_closed(C1).len(), 2);
    assert!(t.queue("mine").is_none());
}

#[test]
fn every_queue_argument_is_validated_and_stored() {
    let mut t = Topology::new();
    let args = table(&[
        ("x-message-ttl", AMQPValue::LongInt(60_000)),
        ("x-expires", AMQPValue::LongInt(1_800_000)),
        ("x-max-length", AMQPValue::LongInt(10)),
        ("x-max-length-bytes", AMQPValue::LongLongInt(1 << 20)),
        ("x-overflow", s("reject-publish")),
        ("x-dead-letter-exchange", s("dead-user-notifications")),
        ("x-dead-letter-routing-key", s("dead")),
        ("x-max-priority", AMQPValue::ShortShortUInt(9)),
        ("x-single-active-consumer", AMQPValue::Boolean(true)),
        ("x-queue-type", s("quorum")),
        ("x-delivery-limit", AMQPValue::LongInt(5)),
        ("x-something-new", s("kept")),
    ]);
    t.declare_queue("q", QueueDeclareOptions::durable(), &args, C1)
        .unwrap();
    let a = &t.queue("q").unwrap().arguments;
    assert_eq!(a.message_ttl, Some(60_000));
    assert_eq!(a.expires, Some(1_800_000));
    assert_eq!(a.max_length, Some(10));
    assert_eq!(a.max_length_bytes, Some(1 << 20));
    assert_eq!(a.overflow, Some(Overflow::RejectPublish));
    assert_eq!(
        a.dead_letter_exchange.as_deref(),
        Some("dead-user-notifications")
    );
    assert_eq!(a.dead_letter_routing_key.as_deref(), Some("dead"));
    assert_eq!(a.max_priority, Some(9));
    assert!(a.single_active_consumer);
    assert_eq!(a.queue_type, Some(QueueType::Quorum));
    assert_eq!(a.raw.len(), 12);

    for (k, v) in [
        ("x-message-ttl", AMQPValue::LongInt(-1)),
        ("x-message-ttl", s("1000")),
        ("x-expires", AMQPValue::LongInt(0)),
        ("x-max-length", AMQPValue::LongInt(-5)),
        ("x-overflow", s("drop-tail")),
        ("x-max-priority", AMQPValue::LongInt(256)),
        ("x-single-active-consumer", s("true")),
        ("x-queue-type", s("fancy")),
        ("x-dead-letter-exchange", AMQPValue::LongInt(1)),
        ("x-dead-letter-routing-key", s("k")),
    ] {
        assert_eq!(
            code(t.declare_queue(
                "bad",
                QueueDeclareOptions::durable(),
                &table(&[(k, v.clone())]),
                C1
            )),
            406,
            "{k} = {v:?}"
        );
    }
    assert!(t.queue("bad").is_none());
    let quorum = table(&[("x-queue-type", s("quorum"))]);
    assert_eq!(
        code(t.declare_queue("qq", QueueDeclareOptions::default(), &quorum, C1)),
        406
    );
    assert_eq!(
        code(t.declare_queue("qq", QueueDeclareOptions::exclusive(), &quorum, C1)),
        406
    );
}

#[test]
fn exchanges_declare_delete_and_reserved() {
    let mut t = Topology::new();
    let d = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    t.declare_exchange("e", ExchangeKind::Topic, d, &none())
        .unwrap();
    t.declare_exchange("e", ExchangeKind::Topic, d, &none())
        .unwrap();
    assert_eq!(
        code(t.declare_exchange("e", ExchangeKind::Direct, d, &none())),
        406
    );
    assert_eq!(
        code(t.declare_exchange(
            "e",
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            &none()
        )),
        406
    );
    assert_eq!(
        code(t.declare_exchange(
            "zz",
            ExchangeKind::Topic,
            ExchangeDeclareOptions { passive: true, ..d },
            &none()
        )),
        404
    );
    assert_eq!(
        code(t.declare_exchange("", ExchangeKind::Direct, d, &none())),
        403
    );
    assert_eq!(
        code(t.declare_exchange("amq.new", ExchangeKind::Direct, d, &none())),
        403
    );
    t.declare_exchange("amq.direct", ExchangeKind::Direct, d, &none())
        .unwrap();
    let err = t
        .declare_exchange(
            "p",
            ExchangeKind::Custom("x-delayed-message".into()),
            d,
            &none(),
        )
        .unwrap_err();
    assert!(err.is_amqp_hard_error() && err.reply_code() == Some(503));
    assert_eq!(
        code(t.delete_exchange("amq.topic", ExchangeDeleteOptions::default())),
        403
    );
    assert_eq!(
        code(t.delete_exchange("", ExchangeDeleteOptions::default())),
        403
    );
    t.declare_queue("q", QueueDeclareOptions::default(), &none(), C1)
        .unwrap();
    t.bind_queue("q", "e", "#", &none(), C1).unwrap();
    assert_eq!(
        code(t.delete_exchange(
            "e",
            ExchangeDeleteOptions {
                if_unused: true,
                nowait: false
            }
        )),
        406
    );
    t.delete_exchange("e", ExchangeDeleteOptions::default())
        .unwrap();
    t.delete_exchange("e", ExchangeDeleteOptions::default())
        .unwrap();
    assert!(t.bindings().is_empty());
    assert_eq!(code(t.route("e", "k", None)), 404);
}

#[test]
fn binding_errors() {
    let mut t = with_queues(&["q"]);
    assert_eq!(code(t.bind_queue("q", "", "q", &none(), C1)), 403);
    assert_eq!(code(t.bind_queue("q", "missing", "k", &none(), C1)), 404);
    assert_eq!(
        code(t.bind_queue("missing", "amq.direct", "k", &none(), C1)),
        404
    );
    let bad = table(&[("x-match", s("most"))]);
    assert_eq!(code(t.bind_queue("q", "amq.headers", "", &bad, C1)), 406);
    t.bind_queue("q", "amq.direct", "k", &none(), C1).unwrap();
    t.bind_queue("q", "amq.direct", "k", &none(), C1).unwrap();
    assert_eq!(t.bindings_of("q").count(), 1);
    t.unbind_queue("q", "amq.direct", "absent", &none(), C1)
        .unwrap();
    t.unbind_queue("q", "amq.direct", "k", &none(), C1).unwrap();
    assert_eq!(t.bindings_of("q").count(), 0);
}

#[test]
fn each_exchange_kind_routes_as_rabbitmq() {
    let mut t = with_queues(&["a", "b", "c"]);
    // default exchange: by queue name only
    assert_eq!(queues(&t, "", "a", None), ["a"]);
    assert!(queues(&t, "", "zz", None).is_empty());
    // direct
    t.bind_queue("a", "amq.direct", "k", &none(), C1).unwrap();
    t.bind_queue("b", "amq.direct", "k", &none(), C1).unwrap();
    t.bind_queue("c", "amq.direct", "", &none(), C1).unwrap();
    assert_eq!(queues(&t, "amq.direct", "k", None), ["a", "b"]);
    assert_eq!(queues(&t, "amq.direct", "", None), ["c"]);
    assert!(queues(&t, "amq.direct", "K", None).is_empty());
    // topic: empty words, literal wildcards, # anywhere; enqueued once
    t.bind_queue("a", "amq.topic", "*.x", &none(), C1).unwrap();
    t.bind_queue("a", "amq.topic", "y.*", &none(), C1).unwrap();
    t.bind_queue("b", "amq.topic", "#.z", &none(), C1).unwrap();
    t.bind_queue("c", "amq.topic", "a*.#", &none(), C1).unwrap();
    assert_eq!(queues(&t, "amq.topic", "y.x", None), ["a"]);
    assert_eq!(queues(&t, "amq.topic", ".x", None), ["a"]);
    assert_eq!(queues(&t, "amq.topic", "z", None), ["b"]);
    assert_eq!(queues(&t, "amq.topic", "a*", None), ["c"]);
    assert!(queues(&t, "amq.topic", "ab", None).is_empty());
    // fanout, bound twice: once
    t.bind_queue("a", "amq.fanout", "1", &none(), C1).unwrap();
    t.bind_queue("a", "amq.fanout", "2", &none(), C1).unwrap();
    assert_eq!(queues(&t, "amq.fanout", "anything", None), ["a"]);
}

#[test]
fn headers_exchange_all_any_and_x_keys() {
    let mut t = with_queues(&["all", "any", "withx", "void"]);
    let all = table(&[
        ("x-match", s("all")),
        ("k", s("v")),
        ("n", AMQPValue::LongInt(1)),
        ("x-ignored", s("?")),
    ]);
    let any = table(&[
        ("x-match", s("any")),
        ("k", s("v")),
        ("n", AMQPValue::LongInt(2)),
    ]);
    let withx = table(&[("x-match", s("all-with-x")), ("x-k", s("v"))]);
    let void = table(&[("present", AMQPValue::Void)]);
    t.bind_queue("all", "amq.headers", "", &all, C1).unwrap();
    t.bind_queue("any", "amq.headers", "", &any, C1).unwrap();
    t.bind_queue("withx", "amq.headers", "", &withx, C1)
        .unwrap();
    t.bind_queue("void", "amq.headers", "", &void, C1).unwrap();
    let h = table(&[("k", s("v")), ("n", AMQPValue::LongLongInt(1))]);
    assert_eq!(queues(&t, "amq.headers", "", Some(&h)), ["all", "any"]);
    let h = table(&[("n", AMQPValue::ShortShortInt(2))]);
    assert_eq!(queues(&t, "amq.headers", "", Some(&h)), ["any"]);
    let h = table(&[("x-k", s("v")), ("present", AMQPValue::Boolean(false))]);
    assert_eq!(queues(&t, "amq.headers", "", Some(&h)), ["void", "withx"]);
    assert!(queues(&t, "amq.headers", "", None).is_empty());
}

#[test]
fn exchange_to_exchange_alternate_exchange_and_cycles() {
    let mut t = with_queues(&["q1", "q2", "lost"]);
    let o = ExchangeDeclareOptions::default();
    t.declare_exchange("ae", ExchangeKind::Fanout, o, &none())
        .unwrap();
    let with_ae = table(&[("alternate-exchange", s("ae"))]);
    t.declare_exchange("front", ExchangeKind::Direct, o, &with_ae)
        .unwrap();
    t.declare_exchange(
        "inner",
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            internal: true,
            ..o
        },
        &none(),
    )
    .unwrap();
    t.bind_exchange("inner", "front", "k", &none()).unwrap();
    t.bind_exchange("front", "inner", "#", &none()).unwrap(); // a cycle
    t.bind_queue("q1", "inner", "k", &none(), C1).unwrap();
    t.bind_queue("q1", "front", "k", &none(), C1).unwrap();
    t.bind_queue("lost", "ae", "", &none(), C1).unwrap();
    assert_eq!(queues(&t, "front", "k", None), ["q1"]);
    assert_eq!(queues(&t, "front", "other", None), ["lost"]);
    assert_eq!(code(t.route("inner", "k", None)), 403);
    assert_eq!(code(t.bind_exchange("", "front", "k", &none())), 403);
}

#[test]
fn auto_delete_and_consumers() {
    let mut t = Topology::new();
    t.declare_queue(
        "ad",
        QueueDeclareOptions::default().auto_delete(),
        &none(),
        C1,
    )
    .unwrap();
    t.declare_exchange(
        "adx",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        &none(),
    )
    .unwrap();
    t.bind_queue("ad", "adx", "", &none(), C1).unwrap();
    t.add_consumer("ad", C1, false).unwrap();
    t.add_consumer("ad", C2, false).unwrap();
    assert_eq!(code(t.add_consumer("ad", C1, true)), 403);
    assert_eq!(
        code(t.delete_queue(
            "ad",
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
            C1,
            0
        )),
        406
    );
    assert!(!t.remove_consumer("ad"));
    assert!(t.remove_consumer("ad"));
    assert!(t.queue("ad").is_none());
    assert!(
        t.exchange("adx").is_none(),
        "auto-delete exchange lost its last binding"
    );
    t.declare_queue("full", QueueDeclareOptions::default(), &none(), C1)
        .unwrap();
    assert_eq!(
        code(t.delete_queue(
            "full",
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
            C1,
            3
        )),
        406
    );
    t.delete_queue("full", QueueDeleteOptions::default(), C1, 3)
        .unwrap();
    t.delete_queue("full", QueueDeleteOptions::default(), C1, 0)
        .unwrap();
}

#[test]
fn topology_survives_serde() {
    let mut t = with_queues(&["q"]);
    t.declare_exchange(
        "h",
        ExchangeKind::Headers,
        ExchangeDeclareOptions::default(),
        &none(),
    )
    .unwrap();
    t.bind_queue(
        "q",
        "h",
        "",
        &table(&[("x-match", s("any")), ("f", AMQPValue::Double(1.5))]),
        C1,
    )
    .unwrap();
    t.declare_queue(
        "ttl",
        QueueDeclareOptions::durable(),
        &table(&[("x-message-ttl", AMQPValue::LongInt(5))]),
        C1,
    )
    .unwrap();
    t.add_consumer("q", C1, false).unwrap();
    let json = serde_json::to_string(&t).unwrap();
    let back: Topology = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
}

fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just("*"), Just("#"), Just("a"), Just("b"), Just("")],
        0..4,
    )
    .prop_map(|w| w.join("."))
}

proptest! {
    /// Topic routing = the set of queues with at least one matching binding, each once.
    #[test]
    fn topic_route_is_the_union_of_matching_bindings(
        bindings in prop::collection::vec((0usize..4, pattern()), 0..12),
        key in pattern(),
    ) {
        let names = ["q0", "q1", "q2", "q3"];
        let mut t = with_queues(&names);
        for (q, p) in &bindings {
            t.bind_queue(names[*q], "amq.topic", p, &none(), C1).unwrap();
        }
        let want: BTreeSet<String> = bindings
            .iter()
            .filter(|(_, p)| amqp_compat::fuzzing::reference_topic_match(p, &key))
            .map(|(q, _)| names[*q].to_owned())
            .collect();
        prop_assert_eq!(t.route("amq.topic", &key, None).unwrap().queues, want);
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(serde_json::from_str::<Topology>(&json).unwrap(), t);
    }

    /// Re-declaring with exactly the same flags always succeeds; changing one flag never does.
    #[test]
    fn redeclare_same_ok_different_406(durable: bool, auto_delete: bool, flip in 0usize..2) {
        let mut t = Topology::new();
        let o = QueueDeclareOptions { durable, auto_delete, ..Default::default() };
        t.declare_queue("q", o, &none(), C1).unwrap();
        t.declare_queue("q", o, &none(), C2).unwrap();
        let mut changed = o;
        if flip == 0 { changed.durable = !durable } else { changed.auto_delete = !auto_delete }
        prop_assert_eq!(code(t.declare_queue("q", changed, &none(), C1)), 406);
    }
}

#[test]
fn destination_order_is_stable() {
    assert!(Destination::Queue("a".into()) < Destination::Exchange("a".into()));
}

#[test]
fn queue_filters_for_design_d_consumers() {
    use amqp_compat::{SubjectMapper, routing::SourceFilters};
    let m = SubjectMapper::wire(None).unwrap();
    let mut t = Topology::new();
    let o = ExchangeDeclareOptions::default();
    t.declare_exchange("user-notifications", ExchangeKind::Direct, o, &none())
        .unwrap();
    t.declare_exchange("logs", ExchangeKind::Topic, o, &none())
        .unwrap();
    t.declare_queue(
        "user-notifications.u1.c1",
        QueueDeclareOptions::durable(),
        &none(),
        C1,
    )
    .unwrap();
    let q = "user-notifications.u1.c1";
    t.bind_queue(q, "user-notifications", "u1", &none(), C1)
        .unwrap();
    t.bind_queue(q, "user-notifications", "u1.c1", &none(), C1)
        .unwrap();
    t.bind_queue(q, "logs", "a.*", &none(), C1).unwrap();
    t.bind_queue(q, "logs", "a.b", &none(), C1).unwrap();
    t.bind_queue(q, "logs", "#.z", &none(), C1).unwrap();
    let want = vec![
        SourceFilters {
            exchange: "logs".into(),
            subjects: vec!["x.logs.>".into()],
            exact: false,
        },
        SourceFilters {
            exchange: "user-notifications".into(),
            subjects: vec![
                "user.notifications.u1".into(),
                "user.notifications.u1.c1".into(),
            ],
            exact: true,
        },
    ];
    assert_eq!(t.queue_filters(q, &m), want);
    t.unbind_queue(q, "logs", "#.z", &none(), C1).unwrap();
    let logs = &t.queue_filters(q, &m)[0];
    assert_eq!(
        (logs.subjects.as_slice(), logs.exact),
        (&["x.logs.a.*".to_owned()][..], true)
    );
    assert!(t.queue_filters("nothing", &m).is_empty());
}

#[test]
fn storage_tier_is_chosen_at_the_first_declare() {
    use amqp_compat::{SubjectMapper, routing::StorageTier};
    let mut t = Topology::new();
    let d = QueueDeclareOptions::durable();
    t.declare_queue("client", d, &none(), C1).unwrap();
    assert_eq!(t.queue("client").unwrap().tier, StorageTier::Consumer);
    let capped = table(&[("x-max-length", AMQPValue::LongInt(100))]);
    t.declare_queue("capped", d, &capped, C1).unwrap();
    assert_eq!(t.queue("capped").unwrap().tier, StorageTier::Stream);
    let forced = table(&[("x-nats-tier", s("stream"))]);
    t.declare_queue("forced", d, &forced, C1).unwrap();
    assert_eq!(t.queue("forced").unwrap().tier, StorageTier::Stream);
    assert_eq!(
        code(t.declare_queue("forced", d, &none(), C1)),
        406,
        "the tier cannot change"
    );
    let bad = table(&[("x-nats-tier", s("disk"))]);
    assert_eq!(code(t.declare_queue("bad", d, &bad, C1)), 406);
    let m = SubjectMapper::wire(None).unwrap();
    assert!(
        m.is_work_queue("backend-notifications.example.com") && m.is_work_queue("cells_events")
    );
    assert!(!m.is_work_queue("user-notifications.u1.c1"));
    t.declare_queue_with_tier("cells_events", d, &none(), C1, StorageTier::Stream)
        .unwrap();
    assert_eq!(t.queue("cells_events").unwrap().tier, StorageTier::Stream);
    // A re-declare keeps the first choice.
    t.declare_queue("cells_events", d, &none(), C1).unwrap();
    assert_eq!(t.queue("cells_events").unwrap().tier, StorageTier::Stream);
}

#[test]
fn length_limits_and_overflow() {
    use amqp_compat::routing::{Admission, QueueArguments};
    let args = |entries: &[(&str, AMQPValue)]| QueueArguments::parse("q", &table(entries)).unwrap();
    let drop_head = args(&[("x-max-length", AMQPValue::LongInt(2))]);
    assert_eq!(drop_head.admit(2, 0, 1), Admission::Enqueue);
    assert!(drop_head.exceeds(3, 0) && !drop_head.exceeds(2, 0));
    let reject = args(&[
        ("x-max-length", AMQPValue::LongInt(2)),
        ("x-overflow", s("reject-publish")),
    ]);
    assert_eq!(reject.admit(1, 0, 1), Admission::Enqueue);
    assert_eq!(
        reject.admit(2, 0, 1),
        Admission::Reject { dead_letter: false }
    );
    let dlx = args(&[
        ("x-max-length-bytes", AMQPValue::LongInt(10)),
        ("x-overflow", s("reject-publish-dlx")),
    ]);
    assert_eq!(dlx.admit(1, 5, 5), Admission::Enqueue);
    assert_eq!(dlx.admit(1, 5, 6), Admission::Reject { dead_letter: true });
    assert_eq!(args(&[]).admit(u64::MAX, u64::MAX, 1), Admission::Enqueue);
}

#[test]
fn priorities_are_capped_at_the_queue_maximum() {
    use amqp_compat::routing::QueueArguments;
    let q =
        QueueArguments::parse("q", &table(&[("x-max-priority", AMQPValue::LongInt(5))])).unwrap();
    assert_eq!(q.effective_priority(Some(9)), Some(5));
    assert_eq!(q.effective_priority(Some(3)), Some(3));
    assert_eq!(q.effective_priority(None), Some(0));
    assert_eq!(QueueArguments::default().effective_priority(Some(9)), None);
}
