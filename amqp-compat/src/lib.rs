//! A lapin-shaped AMQP layer over NATS and JetStream, so services leaving RabbitMQ port with
//! little more than new imports.
