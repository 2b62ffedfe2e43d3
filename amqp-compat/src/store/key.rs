//! KV keys of the topology objects: `x.<tok(exchange)>`, `q.<tok(queue)>`, `c.<connection>`.
//!
//! [`tok`] escapes any AMQP name (up to 255 bytes of UTF-8) into the characters a KV key may
//! hold (`-/_=.A-Za-z0-9`) without empty tokens, reversibly ([`untok`]): bytes in
//! `-/_A-Za-z0-9` stay, a `.` stays when it has a non-dot byte on each side (so
//! `user-notifications.<uid>.<cid>` keeps its readable form and `q.user-notifications.>`
//! lists one family), every other byte is `=XX` (two upper-case hex digits). The empty name is
//! `=`, which no other name produces.

/// Prefix of exchange keys.
pub const EXCHANGE_PREFIX: &str = "x.";
/// Prefix of queue keys.
pub const QUEUE_PREFIX: &str = "q.";
/// Prefix of connection lease keys.
pub const LEASE_PREFIX: &str = "c.";
/// The key of the first design's single value (read once to convert an old bucket).
pub const LEGACY_KEY: &str = "topology";

/// The key of exchange `name`.
pub fn exchange_key(name: &str) -> String {
    format!("{EXCHANGE_PREFIX}{}", tok(name))
}

/// The key of queue `name`.
pub fn queue_key(name: &str) -> String {
    format!("{QUEUE_PREFIX}{}", tok(name))
}

/// What a key of the bucket names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// An exchange.
    Exchange(String),
    /// A queue.
    Queue(String),
    /// Anything else (leases, the legacy value, keys of other tools).
    Other,
}

/// Parses a key of the bucket.
pub fn parse_key(key: &str) -> Key {
    let name = |t: &str| untok(t);
    if let Some(t) = key.strip_prefix(QUEUE_PREFIX) {
        return name(t).map_or(Key::Other, Key::Queue);
    }
    if let Some(t) = key.strip_prefix(EXCHANGE_PREFIX) {
        return name(t).map_or(Key::Other, Key::Exchange);
    }
    Key::Other
}

fn keeps(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_')
}

/// Escapes `name` into a KV-key token sequence; see the module docs.
pub fn tok(name: &str) -> String {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return "=".to_owned();
    }
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let dot_ok = b == b'.'
            && i > 0
            && i + 1 < bytes.len()
            && bytes[i - 1] != b'.'
            && bytes[i + 1] != b'.';
        if keeps(b) || dot_ok {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The name [`tok`] escaped into `token`; `None` for a string `tok` never produces.
pub fn untok(token: &str) -> Option<String> {
    if token == "=" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                if hex.bytes().any(|c| c.is_ascii_lowercase()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let name = String::from_utf8(out).ok()?;
    // Only canonical forms: anything else would give two keys for one name.
    (tok(&name) == token).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn legal(key: &str) -> bool {
        !key.is_empty()
            && !key.starts_with('.')
            && !key.ends_with('.')
            && !key.contains("..")
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
    }

    #[test]
    fn readable_where_it_can_be() {
        assert_eq!(tok("user-notifications.u1.c2"), "user-notifications.u1.c2");
        assert_eq!(tok(""), "=");
        assert_eq!(tok("."), "=2E");
        assert_eq!(tok("a..b"), "a=2E=2Eb");
        assert_eq!(tok("a b*>"), "a=20b=2A=3E");
        assert_eq!(tok("="), "=3D");
        assert_eq!(untok("a.b"), Some("a.b".to_owned()));
        assert_eq!(untok("=2e"), None, "not canonical");
        assert_eq!(untok("=2"), None);
        assert_eq!(untok("a=2Eb"), None, "a.b is written a.b");
        assert_eq!(parse_key("q.a.b"), Key::Queue("a.b".to_owned()));
        assert_eq!(
            parse_key("x.amq.direct"),
            Key::Exchange("amq.direct".to_owned())
        );
        assert_eq!(parse_key("c.abc"), Key::Other);
    }

    proptest! {
        #[test]
        fn round_trips_into_legal_keys(name in "\\PC{0,80}|[.a=]{0,12}") {
            let t = tok(&name);
            prop_assert!(legal(&t), "{t:?}");
            prop_assert!(legal(&queue_key(&name)));
            prop_assert_eq!(untok(&t), Some(name.clone()));
        }

        #[test]
        fn long_names_stay_legal(name in "[^a-z]{200,255}") {
            let name: String = name.chars().take(255).collect();
            prop_assert!(legal(&tok(&name)));
            prop_assert_eq!(untok(&tok(&name)), Some(name));
        }

        #[test]
        fn injective(a in "[.a=\\x00é]{0,8}", b in "[.a=\\x00é]{0,8}") {
            prop_assert_eq!(tok(&a) == tok(&b), a == b);
        }
    }
}
