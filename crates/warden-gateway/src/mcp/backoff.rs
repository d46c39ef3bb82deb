//! The delays between attempts to reach an upstream, for both kinds: a stdio server that
//! exited is started again ([`super::upstream`]), a streamable-HTTP server that did not answer
//! is connected to again ([`super::http_upstream`]).
//!
//! The delays grow geometrically up to a cap, without jitter: each upstream is one server run
//! or reached by one gateway, so there is no herd of clients to spread out.

use std::time::Duration;

/// Exponential back-off: `initial`, then each delay `factor` times the one before, at most
/// `cap`. A new `Backoff` starts again from `initial`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    factor: u32,
    cap: Duration,
}

impl Backoff {
    pub(crate) const fn new(initial: Duration, factor: u32, cap: Duration) -> Self {
        Self {
            next: initial,
            factor,
            cap,
        }
    }

    /// Upstreams: 250 ms, doubling, at most 30 s.
    pub(crate) const fn upstream() -> Self {
        Self::new(Duration::from_millis(250), 2, Duration::from_secs(30))
    }

    /// The delay before the next attempt; the one after it grows.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(self.factor).min(self.cap);
        delay
    }

    /// Wait out the next delay.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_delays_double_from_250_ms_up_to_30_s() {
        let mut b = Backoff::upstream();
        let ms: Vec<u128> = (0..11).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(
            ms,
            vec![250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000]
        );
    }

    #[test]
    fn a_fresh_backoff_starts_again_from_the_initial_delay() {
        let mut b = Backoff::upstream();
        for _ in 0..20 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::from_secs(30));
        assert_eq!(Backoff::upstream().next_delay(), Duration::from_millis(250));
    }

    #[test]
    fn delays_never_overflow() {
        let mut b = Backoff::new(Duration::from_secs(u64::MAX / 2), 3, Duration::MAX);
        b.next_delay();
        assert_eq!(b.next_delay(), Duration::MAX);
        assert_eq!(b.next_delay(), Duration::MAX);
    }

    #[test]
    fn other_factors_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), 3, Duration::from_secs(10));
        let s: Vec<u64> = (0..4).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(s, vec![1, 3, 9, 10]);
    }
}
