//! The server pool: configured (explicit) servers plus servers the cluster announces
//! (implicit, from INFO `connect_urls`), with per-server failure counts and backoff.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use crate::addr::ServerAddr;
use crate::reconnect::ReconnectDelay;
use crate::server_error::ServerErrorKind;

#[derive(Debug, Clone)]
struct Entry {
    addr: ServerAddr,
    /// Consecutive failed attempts.
    failures: usize,
    /// Not before this instant (backoff after a failure).
    ready_at: Option<Instant>,
    discovered: bool,
    /// The auth error of the last attempt, if it failed on one (see [`ServerPool::auth_failed`]).
    last_auth_error: Option<ServerErrorKind>,
}

/// Servers to (re)connect to, in the order they will be tried.
#[derive(Debug, Clone)]
pub(crate) struct ServerPool {
    entries: Vec<Entry>,
    randomize: bool,
    max_reconnects: Option<usize>,
}

impl ServerPool {
    pub fn new(addrs: Vec<ServerAddr>, randomize: bool, max_reconnects: Option<usize>) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        for addr in addrs {
            if !entries.iter().any(|e| same_server(&e.addr, &addr)) {
                entries.push(Entry {
                    addr,
                    failures: 0,
                    ready_at: None,
                    discovered: false,
                    last_auth_error: None,
                });
            }
        }
        if randomize {
            entries.shuffle(&mut rand::rng());
        }
        ServerPool {
            entries,
            randomize,
            max_reconnects,
        }
    }

    /// Every server in the pool, in try order.
    pub fn addrs(&self) -> Vec<ServerAddr> {
        self.entries.iter().map(|e| e.addr.clone()).collect()
    }

    /// The next server to try, how long to wait first, and which attempt on it this is
    /// (1-based): the first in order that is ready, else the one ready soonest. Servers that
    /// used up their `max_reconnects` attempts leave the pool here.
    pub fn next(&mut self, now: Instant) -> Option<(ServerAddr, Duration, usize)> {
        if let Some(max) = self.max_reconnects {
            self.entries.retain(|e| e.failures < max);
        }
        self.entries
            .iter()
            .map(|e| {
                (
                    e,
                    e.ready_at
                        .map_or(Duration::ZERO, |r| r.saturating_duration_since(now)),
                )
            })
            .min_by_key(|(_, wait)| *wait)
            .map(|(e, wait)| (e.addr.clone(), wait, e.failures + 1))
    }

    /// Records a failed attempt. Returns whether the server has now used up its
    /// `max_reconnects` attempts (it leaves the pool at the next [`ServerPool::next`]).
    pub fn failed(&mut self, addr: &ServerAddr, delay: &ReconnectDelay, now: Instant) -> bool {
        let Some(i) = self.position(addr) else {
            return false;
        };
        let mut e = self.entries.remove(i);
        e.failures += 1;
        e.ready_at = Some(now + delay.delay(e.failures));
        let exhausted = self.max_reconnects.is_some_and(|max| e.failures >= max);
        // Try the others before this one again.
        self.entries.push(e);
        exhausted
    }

    /// Records that `addr` refused our credentials with `kind`. The second time in a row
    /// with the same kind, the server leaves the pool (nats.go closes the client instead);
    /// returns whether it did.
    pub fn auth_failed(&mut self, addr: &ServerAddr, kind: &ServerErrorKind) -> bool {
        let Some(i) = self.position(addr) else {
            return false;
        };
        if self.entries[i].last_auth_error.as_ref() == Some(kind) {
            self.entries.remove(i);
            return true;
        }
        self.entries[i].last_auth_error = Some(kind.clone());
        false
    }

    /// Records a successful connection: failures reset, and the server moves to the end so
    /// the next reconnect tries another server first.
    pub fn connected(&mut self, addr: &ServerAddr) {
        if let Some(i) = self.position(addr) {
            let mut e = self.entries.remove(i);
            e.failures = 0;
            e.ready_at = None;
            e.last_auth_error = None;
            self.entries.push(e);
        }
    }

    /// Applies the cluster's `connect_urls`: adds new servers (shuffled in) and removes
    /// implicit ones the cluster no longer lists. `template` supplies scheme and URL
    /// credentials. Returns whether the pool changed.
    pub fn update_discovered(&mut self, urls: &[String], template: &ServerAddr) -> bool {
        let announced: Vec<ServerAddr> = urls
            .iter()
            .filter_map(|u| ServerAddr::parse(u).ok())
            .map(|mut a| {
                a.tls = template.tls;
                a.user.clone_from(&template.user);
                a.pass.clone_from(&template.pass);
                a
            })
            .collect();
        let before = self.entries.len();
        self.entries
            .retain(|e| !e.discovered || announced.iter().any(|a| same_server(a, &e.addr)));
        let mut changed = before != self.entries.len();
        for addr in announced {
            if self.position(&addr).is_none() {
                let entry = Entry {
                    addr,
                    failures: 0,
                    ready_at: None,
                    discovered: true,
                    last_auth_error: None,
                };
                let at = if self.randomize && !self.entries.is_empty() {
                    rand::random_range(0..=self.entries.len())
                } else {
                    self.entries.len()
                };
                self.entries.insert(at, entry);
                changed = true;
            }
        }
        changed
    }

    fn position(&self, addr: &ServerAddr) -> Option<usize> {
        self.entries.iter().position(|e| same_server(&e.addr, addr))
    }
}

fn same_server(a: &ServerAddr, b: &ServerAddr) -> bool {
    let norm = |h: &str| {
        if h == "localhost" {
            "127.0.0.1".to_owned()
        } else {
            h.to_ascii_lowercase()
        }
    };
    a.port == b.port && norm(&a.host) == norm(&b.host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconnect::Backoff;

    fn addr(s: &str) -> ServerAddr {
        ServerAddr::parse(s).unwrap()
    }

    #[test]
    fn discovered_servers_come_and_go() {
        let mut pool = ServerPool::new(vec![addr("127.0.0.1:1")], false, Some(3));
        let t = addr("127.0.0.1:1");
        assert!(pool.update_discovered(&["127.0.0.1:2".into(), "127.0.0.1:3".into()], &t));
        assert_eq!(pool.addrs().len(), 3);
        assert!(!pool.update_discovered(&["127.0.0.1:2".into(), "127.0.0.1:3".into()], &t));
        assert!(pool.update_discovered(&["127.0.0.1:2".into()], &t));
        let ports: Vec<u16> = pool.addrs().iter().map(|a| a.port).collect();
        assert_eq!(ports, [1, 2]);
        // Explicit servers stay even when not announced.
        assert!(pool.update_discovered(&[], &t));
        assert_eq!(pool.addrs().len(), 1);
    }

    #[test]
    fn failures_back_off_and_drop_after_max() {
        let delay = ReconnectDelay::Backoff(Backoff {
            jitter: 0.0,
            ..Backoff::default()
        });
        let mut pool = ServerPool::new(
            vec![addr("127.0.0.1:1"), addr("127.0.0.1:2")],
            false,
            Some(2),
        );
        let now = Instant::now();
        let (first, wait, attempt) = pool.next(now).unwrap();
        assert_eq!((first.port, wait, attempt), (1, Duration::ZERO, 1));
        assert!(!pool.failed(&first, &delay, now));
        let (second, wait, attempt) = pool.next(now).unwrap();
        assert_eq!((second.port, wait, attempt), (2, Duration::ZERO, 1));
        assert!(!pool.failed(&second, &delay, now));
        let (again, wait, attempt) = pool.next(now).unwrap();
        assert_eq!(
            (again.port, wait, attempt),
            (1, Duration::from_millis(100), 2)
        );
        // The second failed attempt is the last of max_reconnects = 2.
        assert!(pool.failed(&first, &delay, now));
        let (left, _, attempt) = pool.next(now).unwrap();
        assert_eq!((left.port, attempt), (2, 2));
        assert_eq!(pool.addrs().len(), 1);
    }

    #[test]
    fn max_reconnects_is_the_number_of_attempts() {
        let delay = ReconnectDelay::Callback(std::sync::Arc::new(|_| Duration::ZERO));
        for max in [0, 1, 3] {
            let mut pool = ServerPool::new(vec![addr("127.0.0.1:1")], false, Some(max));
            let mut attempts = 0;
            while let Some((a, _, _)) = pool.next(Instant::now()) {
                attempts += 1;
                pool.failed(&a, &delay, Instant::now());
            }
            assert_eq!(attempts, max, "max_reconnects = {max}");
        }
    }

    #[test]
    fn the_same_auth_error_twice_in_a_row_drops_the_server() {
        let mut pool = ServerPool::new(vec![addr("127.0.0.1:1")], false, None);
        let a = addr("127.0.0.1:1");
        let expired = ServerErrorKind::AuthenticationExpired;
        let violation = ServerErrorKind::AuthorizationViolation;
        assert!(!pool.auth_failed(&a, &expired));
        assert!(
            !pool.auth_failed(&a, &violation),
            "a different error: not twice"
        );
        pool.connected(&a);
        assert!(
            !pool.auth_failed(&a, &violation),
            "a connection in between resets"
        );
        assert!(pool.auth_failed(&a, &violation));
        assert!(pool.addrs().is_empty());
    }
}
