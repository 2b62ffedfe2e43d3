//! JetStream over `nats-client`: streams, consumers, publish acks, pull consumers, message acks,
//! and a dead-letter worker.
