//! Reconnect delays: exponential backoff with jitter, or a caller's callback.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter. The delay before attempt `n` (1-based) to a server is
/// `min(max, initial * factor^(n-1))`, then reduced by a random fraction up to `jitter`, so
/// that many clients cut off at once do not reconnect in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry of a server.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// Fraction (0.0..=1.0) of the delay that is randomised.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(4),
            factor: 2.0,
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (1-based), using `rng` for the jitter.
    pub fn delay_with<R: Rng + ?Sized>(&self, attempt: usize, rng: &mut R) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1))
            .unwrap_or(i32::MAX)
            .min(64);
        let base = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp);
        let base = base.min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let cut = if jitter > 0.0 {
            rng.random_range(0.0..=jitter)
        } else {
            0.0
        };
        Duration::from_secs_f64(base * (1.0 - cut))
    }

    /// The delay before attempt `attempt` (1-based).
    pub fn delay(&self, attempt: usize) -> Duration {
        self.delay_with(attempt, &mut rand::rng())
    }
}

/// How the delay between reconnect attempts is chosen.
#[derive(Clone)]
pub(crate) enum ReconnectDelay {
    Backoff(Backoff),
    Callback(Arc<dyn Fn(usize) -> Duration + Send + Sync>),
}

impl ReconnectDelay {
    pub fn delay(&self, attempt: usize) -> Duration {
        match self {
            ReconnectDelay::Backoff(b) => b.delay(attempt),
            ReconnectDelay::Callback(f) => f(attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_decides_the_delay() {
        let delay = ReconnectDelay::Callback(Arc::new(|n| Duration::from_millis(10 * n as u64)));
        assert_eq!(delay.delay(1), Duration::from_millis(10));
        assert_eq!(delay.delay(7), Duration::from_millis(70));
    }

    #[test]
    fn grows_and_caps() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(100), Duration::from_secs(4));
    }

    #[test]
    fn jitter_spreads_many_clients() {
        let b = Backoff::default();
        let delays: Vec<Duration> = (0..1000).map(|_| b.delay(3)).collect();
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(*max <= Duration::from_millis(400));
        assert!(*min >= Duration::from_millis(200));
        // Spread over most of the jitter range, and not clustered on a few values.
        assert!(*max - *min > Duration::from_millis(150), "{min:?}..{max:?}");
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 900);
    }
}
