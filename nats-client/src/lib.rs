//! A tokio NATS client built on the sans-IO `nats-proto` crate.
