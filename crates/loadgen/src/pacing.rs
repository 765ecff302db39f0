//! Open-loop pacing: how many operations should have started by a given
//! moment, independent of how many have finished. The driver wakes up
//! (about every millisecond), asks [`Pacer::due`] and starts the difference.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    /// Operations per 1000 seconds, so integer rates pace exactly.
    rate_milli: u64,
    duration: Duration,
    total: u64,
}

impl Pacer {
    /// `rate` operations per second for `duration`. A rate of zero or below
    /// starts nothing.
    pub fn new(rate: f64, duration: Duration) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        };
        let rate_milli = (rate * 1000.0).round().min(u64::MAX as f64) as u64;
        let total = ((u128::from(rate_milli) * duration.as_nanos() + 500_000_000_000)
            / 1_000_000_000_000) as u64;
        Pacer {
            rate_milli,
            duration,
            total,
        }
    }

    /// Operations the whole run starts.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Operations that should have started `elapsed` after the start: the
    /// first at 0, then one every `1/rate` seconds, capped at [`Pacer::total`].
    pub fn due(&self, elapsed: Duration) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let n = u128::from(self.rate_milli) * elapsed.as_nanos() / 1_000_000_000_000 + 1;
        n.min(u128::from(self.total)) as u64
    }

    /// When operation number `k` (0-based) is scheduled to start.
    pub fn scheduled_at(&self, k: u64) -> Duration {
        if self.rate_milli == 0 {
            return Duration::ZERO;
        }
        let nanos = u128::from(k) * 1_000_000_000_000 / u128::from(self.rate_milli);
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }

    /// Whether everything has been started after `started` operations.
    pub fn done(&self, started: u64) -> bool {
        started >= self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_grows_linearly_and_caps() {
        let p = Pacer::new(10_000.0, Duration::from_secs(10));
        assert_eq!(p.total(), 100_000);
        assert_eq!(p.due(Duration::ZERO), 1);
        assert_eq!(p.due(Duration::from_micros(99)), 1);
        assert_eq!(p.due(Duration::from_micros(100)), 2);
        assert_eq!(p.due(Duration::from_millis(1)), 11);
        assert_eq!(p.due(Duration::from_secs(1)), 10_001);
        assert_eq!(p.due(Duration::from_secs(10)), 100_000);
        assert_eq!(p.due(Duration::from_secs(3600)), 100_000);
        assert!(p.done(100_000) && !p.done(99_999));
    }

    #[test]
    fn slow_and_fractional_rates() {
        let p = Pacer::new(0.5, Duration::from_secs(10));
        assert_eq!(p.total(), 5);
        assert_eq!(p.due(Duration::from_millis(1999)), 1);
        assert_eq!(p.due(Duration::from_secs(2)), 2);
        assert_eq!(p.scheduled_at(4), Duration::from_secs(8));
        let p = Pacer::new(333.0, Duration::from_millis(1500));
        assert_eq!(p.total(), 500);
        // every op is scheduled strictly within the window
        assert!(p.scheduled_at(p.total() - 1) < p.duration());
    }

    #[test]
    fn zero_or_bad_rate_starts_nothing() {
        for r in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let p = Pacer::new(r, Duration::from_secs(5));
            assert_eq!(p.total(), 0);
            assert_eq!(p.due(Duration::from_secs(1)), 0);
            assert!(p.done(0));
        }
    }

    #[test]
    fn a_late_wakeup_owes_the_backlog() {
        // open loop: waking 50 ms late means 50 ms worth is due at once
        let p = Pacer::new(1000.0, Duration::from_secs(1));
        let before = p.due(Duration::from_millis(10));
        let after = p.due(Duration::from_millis(60));
        assert_eq!(after - before, 50);
    }
}
