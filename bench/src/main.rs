//! Side-by-side benchmark: this client, async-nats, and a raw-socket limit client.
fn main() {}
