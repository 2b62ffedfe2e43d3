//! The scenarios through amqp-compat against a real nats-server: the same code as the lapin
//! backend, compiled with `amqp` = `amqp_compat` (the porting promise, exercised).

mod client {
    use amqp_compat as amqp;
    include!("client_backend.rs");
}

pub use client::ClientBackend as NatsBackend;
