//! Free TCP ports on 127.0.0.1.
//!
//! Ports come from the kernel (bind port 0, read it, release). All ports one topology needs are
//! bound at the same time so they are distinct, and ports already handed out in this process are
//! never handed out again, so parallel tests in one test binary cannot collide. Another process
//! can still grab a port between release and the server's bind; the server start retries with new
//! ports when that happens.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `n` distinct free ports on 127.0.0.1, none handed out before in this process.
///
/// # Panics
/// When the kernel refuses to bind a loopback socket (no free ports left).
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    // Keep every listener open until all ports are read so the kernel cannot repeat one.
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut attempts = 0;
    while ports.len() < n {
        attempts += 1;
        assert!(
            attempts < n * 100 + 1000,
            "could not find {n} free ports on 127.0.0.1"
        );
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read a bound port: {e}"))
            .port();
        if handed_out.insert(port) {
            ports.push(port);
        }
        held.push(listener);
    }
    ports
}

/// One free port on 127.0.0.1; see [`free_ports`].
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_never_repeated() {
        let a = free_ports(20);
        let b = free_ports(20);
        let all: HashSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 40);
        assert!(all.iter().all(|&p| p != 0));
    }
}
