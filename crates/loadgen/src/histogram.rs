//! A fixed-size log-bucket latency histogram (HDR style, hand-rolled).
//!
//! Values are microseconds. Each power of two is split into
//! [`SUB_BUCKETS`] linear sub-buckets, so a recorded value is known to within
//! 1/32 (about 3 %) of itself; values below 64 µs are exact. Memory is fixed
//! (a few kB) whatever the run length, and recording is a couple of shifts.

/// Sub-buckets per power of two (a power of two itself).
const SUB_BITS: u32 = 5;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Highest value tracked exactly in range: 2^40 µs (about 12 days).
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (MAX_EXP as usize + 1) * SUB_BUCKETS;

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// Bucket index of `v`.
fn index(v: u64) -> usize {
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    if v < (SUB_BUCKETS as u64) * 2 {
        // first two "octaves" are exact: 0..64
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = exp - SUB_BITS;
    let sub = (v >> shift) as usize & (SUB_BUCKETS - 1);
    ((exp - SUB_BITS) as usize) * SUB_BUCKETS + SUB_BUCKETS + sub
}

/// Largest value that lands in bucket `i`.
fn upper_bound(i: usize) -> u64 {
    if i < SUB_BUCKETS * 2 {
        return i as u64;
    }
    let octave = (i - SUB_BUCKETS) / SUB_BUCKETS; // exp - SUB_BITS
    let sub = ((i - SUB_BUCKETS) % SUB_BUCKETS) as u64;
    let shift = octave as u32;
    let exp = shift + SUB_BITS;
    let low = (1u64 << exp) + (sub << shift);
    low + (1u64 << shift) - 1
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    pub fn record(&mut self, micros: u64) {
        if let Some(c) = self.counts.get_mut(index(micros)) {
            *c += 1;
        }
        self.total += 1;
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
        self.sum += u128::from(micros);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn min(&self) -> Option<u64> {
        (self.total > 0).then_some(self.min)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket that
    /// holds the `ceil(q * count)`-th smallest value, never above the
    /// recorded maximum. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_bound(i).min(self.max).max(self.min));
            }
        }
        Some(self.max)
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..200_000u64).chain([1 << 30, (1 << 41) - 1]) {
            let i = index(v);
            assert!(i >= last, "index not monotonic at {v}");
            last = i;
            let ub = upper_bound(i);
            assert!(ub >= v, "upper bound {ub} below {v}");
            // relative error within one sub-bucket
            assert!(
                ub - v <= v / SUB_BUCKETS as u64,
                "bucket too wide at {v}: {ub}"
            );
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn exact_small_values_and_empty() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=50 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(25));
        assert_eq!(h.quantile(0.99), Some(50));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(1.0), Some(50));
        assert_eq!(h.min(), Some(1));
        assert_eq!(h.mean(), Some(25.5));
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_within_three_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.95, 95_000.0), (0.99, 99_000.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!(got >= want && got <= want * 1.032, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), Some(100_000));
        assert_eq!(h.max(), 100_000);
    }

    #[test]
    fn a_tail_shows_in_p99_but_not_p50() {
        let mut h = Histogram::new();
        for _ in 0..980 {
            h.record(800);
        }
        for _ in 0..20 {
            h.record(40_000);
        }
        assert!(h.quantile(0.5).unwrap() <= 824);
        assert!(h.quantile(0.99).unwrap() >= 40_000);
        let mut other = Histogram::new();
        other.record(1_000_000);
        h.merge(&other);
        assert_eq!(h.count(), 1001);
        assert_eq!(h.max(), 1_000_000);
    }
}
