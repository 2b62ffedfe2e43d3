//! [`ConnectionProperties`]: lapin's connection settings that mean something on NATS.

use crate::types::{AMQPValue, FieldTable, LongString, ShortString};

/// Settings for `Connection::connect`, built as in lapin:
/// `ConnectionProperties::default().with_connection_name("cannon".into())`.
///
/// The connection name becomes the NATS connection name, so `nats-admin connections` lists it
/// and an administrator can close the connection by name.
#[derive(Clone, Debug)]
pub struct ConnectionProperties {
    /// The locale (kept for lapin compatibility; NATS has none).
    pub locale: ShortString,
    /// Client properties (RabbitMQ shows them in its management UI; here `connection_name` is used).
    pub client_properties: FieldTable,
    /// Reconnect and re-establish channels after a connection loss.
    pub auto_recover: bool,
}

impl Default for ConnectionProperties {
    fn default() -> Self {
        Self {
            locale: "en_US".into(),
            client_properties: FieldTable::default(),
            auto_recover: false,
        }
    }
}

impl ConnectionProperties {
    /// Sets the locale.
    #[must_use]
    pub fn with_locale(mut self, locale: ShortString) -> Self {
        self.locale = locale;
        self
    }

    /// Adds a client property (a long string value), as lapin.
    #[must_use]
    pub fn with_client_property(mut self, key: ShortString, value: LongString) -> Self {
        self.client_properties
            .insert(key, AMQPValue::LongString(value));
        self
    }

    /// Names the connection (client property `connection_name`; the NATS connection name).
    #[must_use]
    pub fn with_connection_name(self, connection_name: LongString) -> Self {
        self.with_client_property("connection_name".into(), connection_name)
    }

    /// Turns on automatic recovery after a connection loss.
    #[must_use]
    pub fn enable_auto_recover(mut self) -> Self {
        self.auto_recover = true;
        self
    }

    /// The connection name set by [`with_connection_name`](Self::with_connection_name), if it is
    /// valid UTF-8.
    pub fn connection_name(&self) -> Option<String> {
        match self.client_properties.inner().get("connection_name")? {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok().map(str::to_owned),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_name_is_a_client_property() {
        let p = ConnectionProperties::default()
            .with_connection_name("cannon-1".into())
            .with_client_property("product".into(), "wire".into())
            .enable_auto_recover();
        assert_eq!(p.connection_name().as_deref(), Some("cannon-1"));
        assert!(p.auto_recover);
        assert_eq!(p.client_properties.inner().len(), 2);
        assert_eq!(ConnectionProperties::default().connection_name(), None);
    }
}
