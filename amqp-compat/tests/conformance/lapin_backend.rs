//! The scenarios through lapin 4.12 against a real RabbitMQ.

mod client {
    use lapin as amqp;
    include!("client_backend.rs");
}

pub use client::ClientBackend as LapinBackend;
