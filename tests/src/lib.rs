//! The test ground: real `nats-server` topologies on 127.0.0.1 for integration tests and benches.
