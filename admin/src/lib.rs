//! Cluster-wide NATS administration over `$SYS` and JetStream: the RabbitMQ management-API
//! equivalent for the services being migrated.
