//! The two AMQP clients, running the very same case code (`client.rs`): lapin 4.12 against
//! RabbitMQ, and amqp-compat against nats-server. Only the `use … as amqp` line differs.

/// lapin 4.12 on RabbitMQ.
pub mod lapin_side {
    use lapin as amqp;
    include!("client.rs");
}

/// amqp-compat on nats-server.
pub mod compat_side {
    use amqp_compat as amqp;
    include!("client.rs");
}
