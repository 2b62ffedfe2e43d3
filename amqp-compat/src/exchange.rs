//! [`ExchangeKind`]: the routing algorithm of an exchange, lapin's enum.

use serde::{Deserialize, Serialize};

/// The routing algorithm of an exchange, as in lapin (`Direct` is the default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExchangeKind {
    /// A broker plugin's type, e.g. `"x-delayed-message"` (refused by amqp-compat: 503).
    Custom(String),
    /// The binding key equals the routing key.
    #[default]
    Direct,
    /// Every binding matches.
    Fanout,
    /// The message headers match the binding arguments (`x-match` all/any).
    Headers,
    /// The binding key is a pattern: `*` one word, `#` zero or more words.
    Topic,
}

impl ExchangeKind {
    /// The AMQP name of the kind (`"direct"`, `"topic"`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Custom(c) => c,
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Headers => "headers",
            Self::Topic => "topic",
        }
    }

    /// The kind for an AMQP type name; unknown names give [`ExchangeKind::Custom`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "direct" => Self::Direct,
            "fanout" => Self::Fanout,
            "headers" => Self::Headers,
            "topic" => Self::Topic,
            other => Self::Custom(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            ExchangeKind::Direct,
            ExchangeKind::Fanout,
            ExchangeKind::Headers,
            ExchangeKind::Topic,
            ExchangeKind::Custom("x-delayed-message".into()),
        ] {
            assert_eq!(ExchangeKind::from_name(k.as_str()), k);
        }
        assert_eq!(ExchangeKind::default(), ExchangeKind::Direct);
    }
}
