//! SubjectMapper: worked examples, and proptests of its properties (the same checks the fuzz
//! target runs: `amqp_compat::fuzzing::check`).

use amqp_compat::{
    ExchangeKind, SubjectMapper,
    fuzzing::{Case, check, reference_topic_match},
    subject::{Filter, escape_name, split_words, topic_matches, unescape_token},
};
use proptest::prelude::*;

#[test]
fn generic_layout_and_escapes() {
    let m = SubjectMapper::new(None).unwrap();
    assert_eq!(m.publish_subject("logs", "a.b"), "x.logs.a.b");
    assert_eq!(m.publish_subject("logs", ""), "x.logs");
    assert_eq!(m.publish_subject("logs", "."), "x.logs.~.~");
    assert_eq!(
        m.publish_subject("logs", "a b.*.>.#.~"),
        "x.logs.a~20b.~2A.~3E.#.~7E"
    );
    assert_eq!(m.publish_subject("amq.topic", "k"), "x.amq~2Etopic.k");
    assert_eq!(m.publish_subject("", "jobs.high"), "q.jobs.high");
    let ns = SubjectMapper::new(Some("prod.eu")).unwrap();
    assert_eq!(ns.publish_subject("logs", "a"), "prod.eu.x.logs.a");
    assert_eq!(
        ns.parse_subject("prod.eu.x.logs.a"),
        Some(("logs".into(), "a".into()))
    );
    assert_eq!(ns.parse_subject("x.logs.a"), None);
    assert_eq!(m.parse_subject("x.logs.a~2a"), None, "non-canonical escape");
    assert_eq!(
        m.parse_subject("x.~.a"),
        None,
        "the default exchange is never x."
    );
}

#[test]
fn bad_namespaces_are_refused() {
    for ns in ["", "a..b", "a.*", "a b", "a.>", "."] {
        assert!(SubjectMapper::new(Some(ns)).is_err(), "{ns:?}");
    }
}

#[test]
fn wire_preset() {
    let m = SubjectMapper::wire(None).unwrap();
    let un = "user-notifications";
    assert_eq!(m.publish_subject(un, "u1"), "user.notifications.u1");
    assert_eq!(m.publish_subject(un, "u1.c1"), "user.notifications.u1.c1");
    assert_eq!(
        m.publish_subject(un, "u1.temporary"),
        "user.notifications.u1.temp"
    );
    assert_eq!(
        m.publish_subject(un, "u1.temp"),
        "user.notifications.u1.~74emp"
    );
    assert_eq!(
        m.parse_subject("user.notifications.u1.temp"),
        Some((un.into(), "u1.temporary".into()))
    );
    assert_eq!(
        m.parse_subject("user.notifications.u1.~74emp"),
        Some((un.into(), "u1.temp".into()))
    );
    assert_eq!(
        m.publish_subject("", "backend-notifications.example.com"),
        "backend.notifications.example.com"
    );
    assert_eq!(m.publish_subject("", "cells_events"), "cells.events");
    assert_eq!(
        m.parse_subject("cells.events"),
        Some(("".into(), "cells_events".into()))
    );
    assert_eq!(
        m.publish_subject("", "background-jobs"),
        "q.background-jobs"
    );
    // A client queue's bindings, as a D-tier consumer's filters.
    let f = |k| m.binding_filter(un, &ExchangeKind::Direct, k).subjects;
    assert_eq!(f("u1"), ["user.notifications.u1"]);
    assert_eq!(f("u1.c1"), ["user.notifications.u1.c1"]);
    // Presets cannot overlap the generic roots or each other.
    assert!(m.clone().with_queue_subject("x", "x.y").is_err());
    assert!(m.with_queue_subject("q2", "cells.events.more").is_err());
}

#[test]
fn topic_filters() {
    let m = SubjectMapper::new(None).unwrap();
    let t = |p| m.binding_filter("t", &ExchangeKind::Topic, p);
    let exact = |s: &[&str]| Filter {
        subjects: s.iter().map(|s| s.to_string()).collect(),
        exact: true,
    };
    assert_eq!(t("a.*"), exact(&["x.t.a.*"]));
    assert_eq!(t("#"), exact(&["x.t", "x.t.>"]));
    assert_eq!(t("a.#.#"), exact(&["x.t.a", "x.t.a.>"]));
    assert_eq!(t(""), exact(&["x.t"]));
    assert_eq!(t("a*.b#"), exact(&["x.t.a~2A.b#"]));
    assert_eq!(
        t("*.#.b"),
        Filter {
            subjects: vec!["x.t.*.>".into()],
            exact: false
        }
    );
    assert!(!m.binding_filter("h", &ExchangeKind::Headers, "").exact);
    assert_eq!(
        m.binding_filter("f", &ExchangeKind::Fanout, "ignored")
            .subjects,
        ["x.f", "x.f.>"]
    );
}

#[test]
fn topic_matching_examples() {
    for (p, k, want) in [
        ("#", "", true),
        ("*", "", false),
        ("", "", true),
        ("*", "a", true),
        ("a.#", "a", true),
        ("a.#.b", "a.b", true),
        ("a.#.b", "a.x.y.b", true),
        ("#.b", "b.b.b", true),
        ("*.*", ".", true),
        ("*", ".", false),
        ("a.*", "a.", true),
        ("a*", "ab", false),
        ("a*", "a*", true),
        ("#.#", "", true),
        ("#.*", "", false),
    ] {
        assert_eq!(topic_matches(p, k), want, "{p:?} vs {k:?}");
        assert_eq!(
            reference_topic_match(p, k),
            want,
            "reference {p:?} vs {k:?}"
        );
    }
}

#[test]
fn tokens_decode() {
    assert_eq!(unescape_token("~"), Some(String::new()));
    assert_eq!(unescape_token("a~2Eb"), Some("a.b".into()));
    assert_eq!(unescape_token("~2"), None);
    assert_eq!(unescape_token("~zz"), None);
    assert_eq!(unescape_token("~C3"), None, "only ASCII is escaped");
    assert_eq!(escape_name(""), "~");
    assert_eq!(split_words("a..b"), ["a", "", "b"]);
}

/// Words drawn from what makes subjects hard: empty, wildcards, separators, spaces, the escape.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("*".to_owned()),
        Just("#".to_owned()),
        Just(">".to_owned()),
        Just("~".to_owned()),
        Just("temp".to_owned()),
        Just("temporary".to_owned()),
        "[a-c]{1,3}",
        "[ab*#>~ \t\r\né.]{1,4}",
        "\\PC{0,3}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 0..5).prop_map(|w| w.join("."))
}

fn exchange() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("user-notifications".to_owned()),
        Just("amq.topic".to_owned()),
        Just("backend-notifications.".to_owned()),
        "[a-z.~* ]{1,6}",
    ]
}

fn queue_name() -> impl Strategy<Value = String> {
    prop_oneof![
        key(),
        key().prop_map(|k| format!("backend-notifications.{k}")),
        Just("cells_events".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_property_holds(mapper in 0u8..4, ex in exchange(), key in key(), pat in key()) {
        check(&Case { mapper, exchange: ex, key, pattern: pat });
    }

    #[test]
    fn default_exchange_round_trips(mapper in 0u8..4, q in queue_name(), other in queue_name()) {
        check(&Case { mapper, exchange: String::new(), key: q, pattern: other });
    }

    #[test]
    fn patterns_built_from_the_key_match_it(key in key(), picks in prop::collection::vec(0u8..4, 0..6)) {
        // Replace some words of the key with `*`, `#`, or `#` plus the word: all must match.
        let words = split_words(&key);
        let mut pat: Vec<String> = Vec::new();
        for (i, w) in words.iter().enumerate() {
            match picks.get(i).copied().unwrap_or(0) {
                1 => pat.push("*".into()),
                2 => pat.push("#".into()),
                3 => { pat.push("#".into()); pat.push((*w).into()); }
                _ => pat.push((*w).into()),
            }
        }
        let pat = pat.join(".");
        // A literal `*`/`#` word in the key is a wildcard in the pattern: still a match.
        prop_assert!(topic_matches(&pat, &key), "{pat:?} should match {key:?}");
        for mapper in 0..4 {
            check(&Case { mapper, exchange: "t".into(), key: key.clone(), pattern: pat.clone() });
        }
    }
}

#[test]
fn filter_cover_examples() {
    use amqp_compat::subject::{filter_covers, minimal_filters};
    assert!(filter_covers("a.>", "a.b.c"));
    assert!(filter_covers("a.>", "a.*"));
    assert!(filter_covers("a.*", "a.b"));
    assert!(!filter_covers("a.*", "a.>"));
    assert!(!filter_covers("a.>", "a"));
    assert!(!filter_covers("a.b", "a.*"));
    assert!(filter_covers("a.b", "a.b"));
    assert_eq!(
        minimal_filters(&["un.u1", "un.u1.c1", "un.u1", "un.>", "x.a.*", "x.*.b"]),
        ["un.>", "x.a.*", "x.*.b"]
    );
    assert_eq!(minimal_filters(&["q.a", "q.a.>", "q.>"]), ["q.>"]);
    // A Wire client queue: `<uid>` and `<uid>.<cid>` overlap nowhere, both stay.
    assert_eq!(
        minimal_filters(&["un.u1", "un.u1.c1"]),
        ["un.u1", "un.u1.c1"]
    );
}

fn nats_filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("*")], 0..3),
        prop::bool::ANY,
    )
        .prop_filter_map("non-empty", |(mut toks, tail)| {
            if tail {
                toks.push(">");
            }
            (!toks.is_empty()).then(|| toks.join("."))
        })
}

proptest! {
    /// Dropping covered filters admits exactly the same subjects, and leaves no subset pair.
    #[test]
    fn minimal_filters_admit_the_same(
        filters in prop::collection::vec(nats_filter(), 0..6),
        subjects in prop::collection::vec(prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..4), 0..20),
    ) {
        use amqp_compat::subject::{filter_covers, minimal_filters};
        use nats_proto::subject::matches;
        let min = minimal_filters(&filters);
        for s in subjects.iter().map(|t| t.join(".")) {
            let before = filters.iter().any(|f| matches(f, &s));
            let after = min.iter().any(|f| matches(f, &s));
            prop_assert_eq!(before, after, "{:?} -> {:?} on {}", filters, min, s);
            for a in &filters {
                for b in &filters {
                    if filter_covers(a, b) && matches(b, &s) {
                        prop_assert!(matches(a, &s), "{} covers {} but not {}", a, b, s);
                    }
                }
            }
        }
        for (i, a) in min.iter().enumerate() {
            for (j, b) in min.iter().enumerate() {
                prop_assert!(i == j || !filter_covers(a, b), "{} covers {} in {:?}", a, b, min);
            }
        }
    }
}
