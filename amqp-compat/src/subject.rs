//! [`SubjectMapper`]: AMQP (exchange, routing key) -> NATS subject, and binding keys -> NATS
//! filters, under an optional namespace.
//!
//! AMQP routing keys may hold empty words, spaces, and `*`, `>` or `#` as literal words; NATS
//! subjects may not. Each word of a key becomes one subject token, escaped so that:
//! - every key maps to a valid NATS subject (no whitespace, no empty token, no wildcard);
//! - the mapping is reversible ([`SubjectMapper::parse_subject`]);
//! - no key can leave its exchange's prefix or widen a filter (it cannot produce `.`, `*`, `>`).
//!
//! Escape: `~HH` (two upper-case hex digits) for every ASCII control or space, `*`, `>`, `~`,
//! and `.` inside names kept as one token; an empty word is the token `~`. Words split on `.`
//! as RabbitMQ's topic exchange splits them: `""` is zero words, `"a."` is `a` and `""`.
//! See `docs/amqp-mapping.md` §2.

use std::fmt::Write as _;

use crate::exchange::ExchangeKind;

/// Why a namespace, preset prefix or subject was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// Not a valid literal NATS subject (the text says why).
    #[error("{what} {value:?} is not a valid literal subject: {reason}")]
    InvalidPrefix {
        /// What was being checked (namespace, preset prefix).
        what: &'static str,
        /// The value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Two preset prefixes would make subjects ambiguous.
    #[error("preset prefix {0:?} overlaps another prefix")]
    OverlappingPrefix(String),
}

/// Checks a namespace: a literal subject (one or more tokens, no wildcards, no whitespace).
pub fn validate_namespace(ns: &str) -> Result<(), SubjectError> {
    validate_literal("namespace", ns)
}

fn validate_literal(what: &'static str, value: &str) -> Result<(), SubjectError> {
    nats_proto::subject::validate_subject(value).map_err(|e| SubjectError::InvalidPrefix {
        what,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// The words of a routing key or binding pattern, split as RabbitMQ's topic exchange does:
/// the empty key has no words; otherwise every `.` separates two (possibly empty) words.
pub fn split_words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

fn needs_escape(c: char, keep_dots: bool) -> bool {
    match c {
        '~' | '*' | '>' => true,
        '.' => !keep_dots,
        c => c.is_ascii_control() || c == ' ',
    }
}

/// Appends one word as one subject token (an empty word is `~`).
pub fn escape_word(word: &str, out: &mut String) {
    escape_into(word, false, out)
}

fn escape_into(word: &str, keep_dots: bool, out: &mut String) {
    if word.is_empty() {
        out.push('~');
    } else {
        escape_chars(word, keep_dots, out);
    }
}

fn escape_chars(word: &str, keep_dots: bool, out: &mut String) {
    for c in word.chars() {
        if needs_escape(c, keep_dots) {
            // Only ASCII is escaped, so one byte; writing to a String cannot fail.
            let _ = write!(out, "~{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

/// A whole name (exchange, vhost) as one token: its dots are escaped too.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    escape_into(name, false, &mut out);
    out
}

/// Decodes one token back into its word (`~` alone is the empty word, `~HH` an ASCII byte);
/// `None` for a malformed escape or a character no token may hold.
pub fn unescape_token(token: &str) -> Option<String> {
    if token == "~" {
        return Some(String::new());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            if needs_escape(c, false) {
                return None;
            }
            out.push(c);
            continue;
        }
        let hi = chars.next()?;
        let lo = chars.next()?;
        if !(hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit()) {
            return None;
        }
        let byte = u8::from_str_radix(&format!("{hi}{lo}"), 16).ok()?;
        if !byte.is_ascii() {
            return None;
        }
        out.push(char::from(byte));
    }
    Some(out)
}

/// True when `key` matches the topic `pattern` (`*` exactly one word, `#` zero or more words;
/// `*`/`#` inside a word are literal), exactly as RabbitMQ's topic exchange decides.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let p = split_words(pattern);
    let k = split_words(key);
    // reach[j]: the first i pattern words can match the first j key words.
    let mut reach = vec![false; k.len() + 1];
    reach[0] = true;
    for pw in &p {
        let mut next = vec![false; k.len() + 1];
        match *pw {
            "#" => {
                let mut any = false;
                for j in 0..=k.len() {
                    any |= reach[j];
                    next[j] = any;
                }
            }
            "*" => next[1..].copy_from_slice(&reach[..k.len()]),
            lit => {
                for j in 1..=k.len() {
                    next[j] = reach[j - 1] && k[j - 1] == lit;
                }
            }
        }
        reach = next;
    }
    reach[k.len()]
}

/// NATS filters for one binding: the union of `subjects` admits every subject whose key the
/// binding matches. When `exact` is false it admits more, and the facade must check each
/// message with the AMQP rule (`#` in the middle of a topic pattern, headers exchanges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// NATS subject filters (literal or with `*`/`>`).
    pub subjects: Vec<String>,
    /// True when the filters admit exactly the matching keys.
    pub exact: bool,
}

#[derive(Clone, Debug)]
struct ExchangeRule {
    exchange: String,
    prefix: String,
    /// (word position, AMQP word, token): e.g. Wire's `temporary` -> `temp` at position 1.
    aliases: Vec<(usize, String, String)>,
}

#[derive(Clone, Debug)]
enum QueueRule {
    /// A queue named exactly `queue` publishes on exactly `subject`.
    Exact { queue: String, subject: String },
    /// Queues named `<name_prefix><rest>` publish on `<prefix>.<rest words>`.
    Prefix { name_prefix: String, prefix: String },
}

/// Maps AMQP names to NATS subjects; see the module docs and `docs/amqp-mapping.md`.
#[derive(Clone, Debug, Default)]
pub struct SubjectMapper {
    namespace: Option<String>,
    exchanges: Vec<ExchangeRule>,
    queues: Vec<QueueRule>,
    /// Every first-level prefix in use, to keep presets from overlapping.
    roots: Vec<String>,
    /// Name prefixes of per-client queues, which default to design D.
    client_queues: Vec<String>,
}

impl SubjectMapper {
    /// The generic layout: `[ns.]x.<exchange>.<key words>`, `[ns.]q.<queue words>`.
    pub fn new(namespace: Option<&str>) -> Result<Self, SubjectError> {
        if let Some(ns) = namespace {
            validate_namespace(ns)?;
        }
        Ok(Self {
            namespace: namespace.map(str::to_owned),
            exchanges: Vec::new(),
            queues: Vec::new(),
            roots: vec!["x".into(), "q".into(), "qd".into()],
            client_queues: Vec::new(),
        })
    }

    /// Wire's layout (`docs/amqp-mapping.md` §2): `user.notifications.<uid>[.<cid>|.temp]`,
    /// `backend.notifications.<domain>`, `cells.events`; everything else generic. Queues
    /// named `user-notifications.<uid>.<cid>` are client queues (design D by default).
    pub fn wire(namespace: Option<&str>) -> Result<Self, SubjectError> {
        Self::new(namespace)?
            .with_exchange_prefix(
                "user-notifications",
                "user.notifications",
                &[(1, "temporary", "temp")],
            )?
            .with_queue_prefix("backend-notifications.", "backend.notifications")?
            .with_queue_subject("cells_events", "cells.events")
            .map(|m| m.with_client_queue_prefix("user-notifications."))
    }

    /// Queues named `<name_prefix>…` are per-client queues: without an `x-nats-tier`
    /// argument (or arguments that need a stream) they are declared with design D, a
    /// consumer on their exchange's stream (`docs/amqp-mapping.md` §4, "Choosing the tier").
    pub fn with_client_queue_prefix(mut self, name_prefix: &str) -> Self {
        self.client_queues.push(name_prefix.to_owned());
        self
    }

    /// True when a preset names `queue` a per-client queue (design D by default).
    pub fn is_client_queue(&self, queue: &str) -> bool {
        !self.is_work_queue(queue)
            && self
                .client_queues
                .iter()
                .any(|p| queue.starts_with(p.as_str()) && queue.len() > p.len())
    }

    /// The namespace, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn claim_root(&mut self, prefix: &str) -> Result<(), SubjectError> {
        validate_literal("preset prefix", prefix)?;
        let overlaps = |a: &str, b: &str| {
            a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."))
        };
        if self.roots.iter().any(|r| overlaps(r, prefix)) {
            return Err(SubjectError::OverlappingPrefix(prefix.to_owned()));
        }
        self.roots.push(prefix.to_owned());
        Ok(())
    }

    /// Publishes to `exchange` go to `<prefix>.<key words>`; `aliases` rename one AMQP word at
    /// one position to a shorter token (the token's own literal is then escaped).
    pub fn with_exchange_prefix(
        mut self,
        exchange: &str,
        prefix: &str,
        aliases: &[(usize, &str, &str)],
    ) -> Result<Self, SubjectError> {
        self.claim_root(prefix)?;
        for (_, word, token) in aliases {
            validate_literal("alias", token)?;
            if token.contains('.') || word.contains('.') || *token == "~" {
                return Err(SubjectError::InvalidPrefix {
                    what: "alias",
                    value: (*token).to_owned(),
                    reason: "must be one token".into(),
                });
            }
        }
        self.exchanges.push(ExchangeRule {
            exchange: exchange.to_owned(),
            prefix: prefix.to_owned(),
            aliases: aliases
                .iter()
                .map(|(i, w, t)| (*i, (*w).to_owned(), (*t).to_owned()))
                .collect(),
        });
        Ok(self)
    }

    /// Queues named `<name_prefix><rest>` (on the default exchange) go to `<prefix>.<rest words>`.
    pub fn with_queue_prefix(
        mut self,
        name_prefix: &str,
        prefix: &str,
    ) -> Result<Self, SubjectError> {
        self.claim_root(prefix)?;
        self.queues.push(QueueRule::Prefix {
            name_prefix: name_prefix.to_owned(),
            prefix: prefix.to_owned(),
        });
        Ok(self)
    }

    /// The queue named `queue` (on the default exchange) goes to exactly `subject`.
    pub fn with_queue_subject(mut self, queue: &str, subject: &str) -> Result<Self, SubjectError> {
        self.claim_root(subject)?;
        self.queues.push(QueueRule::Exact {
            queue: queue.to_owned(),
            subject: subject.to_owned(),
        });
        Ok(self)
    }

    fn root(&self, prefix: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{prefix}"),
            None => prefix.to_owned(),
        }
    }

    fn exchange_rule(&self, exchange: &str) -> Option<&ExchangeRule> {
        self.exchanges.iter().find(|r| r.exchange == exchange)
    }

    /// The subject prefix every key of `exchange` lives under (`""`: the default exchange's
    /// generic queue prefix `[ns.]q`).
    pub fn exchange_prefix(&self, exchange: &str) -> String {
        if exchange.is_empty() {
            return self.root("q");
        }
        match self.exchange_rule(exchange) {
            Some(r) => self.root(&r.prefix),
            None => format!("{}.{}", self.root("x"), escape_name(exchange)),
        }
    }

    fn push_words(&self, rule: Option<&ExchangeRule>, words: &[&str], out: &mut String) {
        for (pos, word) in words.iter().enumerate() {
            self.push_word(rule, pos, word, out);
        }
    }

    /// Appends `.` and the token of the word at position `pos` (aliases apply by position).
    fn push_word(&self, rule: Option<&ExchangeRule>, pos: usize, word: &str, out: &mut String) {
        out.push('.');
        let alias = rule.and_then(|r| r.aliases.iter().find(|(p, _, _)| *p == pos));
        match alias {
            Some((_, aliased, token)) if word == aliased => out.push_str(token),
            // The alias token as a literal word: escape its first character so the two differ.
            Some((_, _, token)) if word == token => {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    let _ = write!(out, "~{:02X}", first as u32);
                    escape_chars(chars.as_str(), false, out);
                }
            }
            _ => escape_word(word, out),
        }
    }

    /// The subject a publish to (`exchange`, `routing_key`) goes to. The default exchange `""`
    /// routes by queue name: this is [`queue_subject`](Self::queue_subject) of the key.
    pub fn publish_subject(&self, exchange: &str, routing_key: &str) -> String {
        if exchange.is_empty() {
            return self.queue_subject(routing_key);
        }
        let rule = self.exchange_rule(exchange);
        let mut out = self.exchange_prefix(exchange);
        self.push_words(rule, &split_words(routing_key), &mut out);
        out
    }

    /// Where `exchange`'s stream keeps copies addressed to one of its design-D queues by name
    /// (a publish that reaches the queue other than through the exchange's own bindings: the
    /// default exchange, an exchange-to-exchange binding): `[ns.]qd.<exchange>`, a root of
    /// its own, so no binding filter of the exchange can cover it. The stream captures
    /// `<this>.>`.
    pub fn direct_queue_root(&self, exchange: &str) -> String {
        format!("{}.{}", self.root("qd"), escape_name(exchange))
    }

    /// The subject of a copy for design-D queue `queue` on `exchange`'s stream, addressed by
    /// name: [`direct_queue_root`](Self::direct_queue_root) and the queue's words.
    pub fn direct_queue_subject(&self, exchange: &str, queue: &str) -> String {
        let mut out = self.direct_queue_root(exchange);
        self.push_words(None, &split_words(queue), &mut out);
        out
    }

    /// True when a preset names `queue` as a work queue (its own subject on the default
    /// exchange): such queues get a stream of their own (design B).
    pub fn is_work_queue(&self, queue: &str) -> bool {
        self.queues.iter().any(|rule| match rule {
            QueueRule::Exact { queue: q, .. } => q == queue,
            QueueRule::Prefix { name_prefix, .. } => queue.starts_with(name_prefix.as_str()),
        })
    }

    /// The subject of a queue on the default exchange.
    pub fn queue_subject(&self, queue: &str) -> String {
        for rule in &self.queues {
            match rule {
                QueueRule::Exact { queue: q, subject } if q == queue => return self.root(subject),
                QueueRule::Prefix {
                    name_prefix,
                    prefix,
                } => {
                    if let Some(rest) = queue.strip_prefix(name_prefix.as_str()) {
                        let mut out = self.root(prefix);
                        self.push_words(None, &split_words(rest), &mut out);
                        return out;
                    }
                }
                QueueRule::Exact { .. } => {}
            }
        }
        let mut out = self.root("q");
        self.push_words(None, &split_words(queue), &mut out);
        out
    }

    /// The (exchange, routing key) a subject made by this mapper stands for; `None` for any
    /// other subject. For the default exchange the key is the queue name.
    pub fn parse_subject(&self, subject: &str) -> Option<(String, String)> {
        let rest = match &self.namespace {
            Some(ns) => subject.strip_prefix(ns.as_str())?.strip_prefix('.')?,
            None => subject,
        };
        let (exchange, prefix_len, rule, name_prefix) = self.classify(rest)?;
        let tail = &rest[prefix_len..];
        let tokens: Vec<&str> = match tail {
            "" => Vec::new(),
            t => t.strip_prefix('.')?.split('.').collect(),
        };
        let mut words = Vec::with_capacity(tokens.len());
        for (i, tok) in tokens.iter().enumerate() {
            let alias = rule.and_then(|r| r.aliases.iter().find(|(pos, _, _)| *pos == i));
            match alias {
                Some((_, word, token)) if tok == token => words.push(word.clone()),
                _ => words.push(unescape_token(tok)?),
            }
        }
        let key = format!("{}{}", name_prefix, words.join("."));
        let parsed = (exchange, key);
        // Only canonical subjects (the one this mapper makes for that key) are accepted.
        (self.publish_subject(&parsed.0, &parsed.1) == subject).then_some(parsed)
    }

    /// Which layout `rest` (the subject without namespace) belongs to: (exchange, length of the
    /// prefix within `rest`, the exchange rule, the queue-name prefix to put back).
    fn classify<'a>(
        &'a self,
        rest: &str,
    ) -> Option<(String, usize, Option<&'a ExchangeRule>, &'a str)> {
        let under = |p: &str| rest == p || rest.starts_with(&format!("{p}."));
        for r in &self.exchanges {
            if under(&r.prefix) {
                return Some((r.exchange.clone(), r.prefix.len(), Some(r), ""));
            }
        }
        for rule in &self.queues {
            match rule {
                QueueRule::Exact { queue, subject } if rest == subject => {
                    // The exact subject carries the whole queue name and no words.
                    return Some((String::new(), subject.len(), None, queue.as_str()));
                }
                QueueRule::Prefix {
                    name_prefix,
                    prefix,
                } if under(prefix) => {
                    return Some((String::new(), prefix.len(), None, name_prefix));
                }
                _ => {}
            }
        }
        if under("q") {
            return Some((String::new(), 1, None, ""));
        }
        let after_x = rest.strip_prefix("x.")?;
        let ex_tok = after_x.split('.').next()?;
        let exchange = unescape_token(ex_tok)?;
        if exchange.is_empty() || self.exchange_rule(&exchange).is_some() {
            return None;
        }
        Some((exchange, 2 + ex_tok.len(), None, ""))
    }

    /// The NATS filters of a binding with `binding_key` on an exchange of `kind`.
    pub fn binding_filter(&self, exchange: &str, kind: &ExchangeKind, binding_key: &str) -> Filter {
        let prefix = self.exchange_prefix(exchange);
        let whole = || vec![prefix.clone(), format!("{prefix}.>")];
        match kind {
            ExchangeKind::Direct => Filter {
                subjects: vec![self.publish_subject(exchange, binding_key)],
                exact: true,
            },
            ExchangeKind::Fanout => Filter {
                subjects: whole(),
                exact: true,
            },
            ExchangeKind::Headers | ExchangeKind::Custom(_) => Filter {
                subjects: whole(),
                exact: false,
            },
            ExchangeKind::Topic => self.topic_filter(exchange, &prefix, binding_key),
        }
    }

    fn topic_filter(&self, exchange: &str, prefix: &str, pattern: &str) -> Filter {
        let rule = self.exchange_rule(exchange);
        let mut words: Vec<&str> = Vec::new();
        for w in split_words(pattern) {
            // `#.#` matches exactly what `#` matches.
            if !(w == "#" && words.last() == Some(&"#")) {
                words.push(w);
            }
        }
        let first_hash = words.iter().position(|w| *w == "#");
        let head = &words[..first_hash.unwrap_or(words.len())];
        let mut base = prefix.to_owned();
        for (pos, word) in head.iter().enumerate() {
            if *word == "*" {
                base.push_str(".*");
            } else {
                self.push_word(rule, pos, word, &mut base);
            }
        }
        match first_hash {
            None => Filter {
                subjects: vec![base],
                exact: true,
            },
            Some(i) if i + 1 == words.len() => Filter {
                subjects: vec![base.clone(), format!("{base}.>")],
                exact: true,
            },
            Some(_) => Filter {
                subjects: vec![format!("{base}.>")],
                exact: false,
            },
        }
    }
}

/// True when NATS filter `a` admits every subject filter `b` admits (`b` is a subset of `a`).
pub fn filter_covers(a: &str, b: &str) -> bool {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            // `*` is one token; `>` in b stands for one or more.
            (Some("*"), Some(bt)) if bt != ">" => {}
            (Some(at), Some(bt)) if at != "*" && at != ">" && at == bt => {}
            _ => return false,
        }
    }
}

/// The filters with duplicates and every filter another one covers removed: the same subjects
/// are admitted, and no filter is a subset of another (JetStream refuses a consumer's
/// `filter_subjects` with a subset pair: error 10138).
pub fn minimal_filters<S: AsRef<str>>(filters: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in filters {
        let f = f.as_ref();
        if out.iter().any(|kept| filter_covers(kept, f)) {
            continue;
        }
        out.retain(|kept| !filter_covers(f, kept));
        out.push(f.to_owned());
    }
    out
}
