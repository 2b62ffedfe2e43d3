//! Fuzz entry points for the subject mapper, shared by the cargo-fuzz target
//! `fuzz/fuzz_targets/subject_mapper.rs`, the proptests and `tests/fuzz_corpus.rs` (which
//! replays the committed corpus in a plain `cargo test`).
//!
//! Not part of the public API (behind the `fuzzing` feature).

use nats_proto::subject::{matches, validate_filter, validate_subject};

use crate::{
    exchange::ExchangeKind,
    subject::{SubjectMapper, split_words, topic_matches},
};

/// One case: a mapper, an exchange, a routing key and a binding pattern.
#[derive(Clone, Debug)]
pub struct Case {
    /// 0: generic, 1: generic with namespace `ns`, 2: wire, 3: wire with namespace `a.b`.
    pub mapper: u8,
    /// The exchange (`""` = the default exchange).
    pub exchange: String,
    /// The routing key published with.
    pub key: String,
    /// A binding key/pattern.
    pub pattern: String,
}

impl Case {
    /// Decodes raw fuzz bytes: byte 0 picks the mapper; the rest, as lossy UTF-8, splits on
    /// `\u{1}` into exchange, key and pattern.
    pub fn from_bytes(data: &[u8]) -> Self {
        let (first, rest) = data.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        let text = String::from_utf8_lossy(rest);
        let mut parts = text.splitn(3, '\u{1}');
        let mut next = || parts.next().unwrap_or("").to_owned();
        Self {
            mapper: first % 4,
            exchange: next(),
            key: next(),
            pattern: next(),
        }
    }

    fn mapper(&self) -> SubjectMapper {
        let built = match self.mapper {
            0 => SubjectMapper::new(None),
            1 => SubjectMapper::new(Some("ns")),
            2 => SubjectMapper::wire(None),
            _ => SubjectMapper::wire(Some("a.b")),
        };
        built.expect("the built-in mappers are valid")
    }
}

/// Fuzz target `subject_mapper` from raw bytes.
pub fn subject_mapper(data: &[u8]) {
    check(&Case::from_bytes(data));
}

/// Every property of the mapper for one case; panics with the case on a violation.
pub fn check(case: &Case) {
    let m = case.mapper();
    let (ex, key, pat) = (&case.exchange, &case.key, &case.pattern);
    let subject = m.publish_subject(ex, key);
    let prefix = m.exchange_prefix(ex);
    let inside = |s: &str| s == prefix || s.starts_with(&format!("{prefix}."));

    // Valid, inside its exchange, reversible.
    assert!(
        validate_subject(&subject).is_ok(),
        "invalid subject {subject:?} for {case:?}"
    );
    if !ex.is_empty() {
        assert!(inside(&subject), "{subject:?} left {prefix:?}: {case:?}");
    }
    assert_eq!(
        m.parse_subject(&subject),
        Some((ex.clone(), key.clone())),
        "no round trip through {subject:?}: {case:?}"
    );
    // Another key gives another subject.
    if key != pat {
        assert_ne!(subject, m.publish_subject(ex, pat), "collision: {case:?}");
    }

    // The exact matcher agrees with the reference.
    let amqp = topic_matches(pat, key);
    assert_eq!(
        amqp,
        reference_topic_match(pat, key),
        "matcher vs reference: {case:?}"
    );

    // Copies addressed to a queue by name: valid, under their own root, one subject per queue.
    if !ex.is_empty() && !key.is_empty() {
        let direct = m.direct_queue_subject(ex, key);
        let root = m.direct_queue_root(ex);
        assert!(
            validate_subject(&direct).is_ok() && direct.starts_with(&format!("{root}.")),
            "addressed copy {direct:?} outside {root:?}: {case:?}"
        );
        assert!(!inside(&direct), "{direct:?} inside {prefix:?}: {case:?}");
        if key != pat && !pat.is_empty() {
            assert_ne!(
                direct,
                m.direct_queue_subject(ex, pat),
                "collision: {case:?}"
            );
        }
    }
    // Topic filters: valid, inside the exchange, admit every match; exact ones admit nothing else.
    if !ex.is_empty() {
        for kind in [
            ExchangeKind::Topic,
            ExchangeKind::Direct,
            ExchangeKind::Fanout,
        ] {
            let f = m.binding_filter(ex, &kind, pat);
            for s in &f.subjects {
                assert!(validate_filter(s).is_ok(), "invalid filter {s:?}: {case:?}");
                assert!(inside(s), "filter {s:?} left {prefix:?}: {case:?}");
            }
            // A copy addressed to queue `key` by name is seen by no binding filter.
            let direct = m.direct_queue_subject(ex, key);
            assert!(
                !f.subjects.iter().any(|s| matches(s, &direct)),
                "{kind:?} filter {f:?} admits the addressed copy {direct:?}: {case:?}"
            );
            let admitted = f.subjects.iter().any(|s| matches(s, &subject));
            let routed = match kind {
                ExchangeKind::Topic => amqp,
                ExchangeKind::Direct => pat == key,
                _ => true,
            };
            if routed {
                assert!(
                    admitted,
                    "{kind:?} filter {f:?} misses {subject:?}: {case:?}"
                );
            }
            if f.exact {
                assert_eq!(
                    admitted, routed,
                    "{kind:?} exact filter {f:?} on {subject:?}: {case:?}"
                );
            }
        }
    }
}

/// AMQP topic matching written the obvious recursive way, to check [`topic_matches`].
pub fn reference_topic_match(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|skip| go(rest, &k[skip..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((w, rest)) => k.first() == Some(w) && go(rest, &k[1..]),
        }
    }
    go(&split_words(pattern), &split_words(key))
}
