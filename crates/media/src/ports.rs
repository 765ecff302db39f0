//! The relay's UDP port pairs: an even RTP port and the RTCP port above it,
//! taken from the range `SWITCHBOARD_RTP_PORTS` names.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a port could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("all {0} RTP port pairs are in use")]
    Exhausted(usize),
    #[error("invalid RTP port range {0:?}: expected FIRST-LAST holding at least one even/odd pair")]
    InvalidRange(String),
}

/// An inclusive port range, `FIRST-LAST` (e.g. `10000-20000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// Checks there is at least one pair; `first` rounds up to even.
    pub fn new(first: u16, last: u16) -> Result<PortRange, PortError> {
        let range = PortRange { first, last };
        match range.pairs() {
            0 => Err(PortError::InvalidRange(range.to_string())),
            _ => Ok(range),
        }
    }

    fn first_even(self) -> u32 {
        let f = u32::from(self.first.max(1));
        f + (f & 1)
    }

    /// How many even/odd pairs fit.
    pub fn pairs(self) -> usize {
        let first = self.first_even();
        let last = u32::from(self.last);
        if last < first + 1 {
            return 0;
        }
        (last - first).div_ceil(2) as usize
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = PortError;

    fn from_str(s: &str) -> Result<PortRange, PortError> {
        let bad = || PortError::InvalidRange(s.to_owned());
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let first = a.trim().parse().map_err(|_| bad())?;
        let last = b.trim().parse().map_err(|_| bad())?;
        PortRange::new(first, last).map_err(|_| bad())
    }
}

/// Whether an RTP port and the RTCP port above it can be bound now (no
/// other process holds them). Given by the socket side; the pool itself
/// does no I/O.
pub type PortProbe = Arc<dyn Fn(u16) -> bool + Send + Sync>;

struct Inner {
    base: u16,
    /// Free pair indices, oldest released first: a port is reused as late
    /// as possible, so stray packets of an ended call rarely reach a new one.
    free: VecDeque<u16>,
    busy: Vec<bool>,
    /// Pairs only emergency allocations may take.
    reserve: usize,
    probe: Option<PortProbe>,
    /// Pairs passed over because the probe found them held elsewhere.
    skipped: u64,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("base", &self.base)
            .field("free", &self.free.len())
            .field("pairs", &self.busy.len())
            .field("reserve", &self.reserve)
            .field("probe", &self.probe.is_some())
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// A shared pool of port pairs; cheap to clone. Allocation and release are
/// O(1) (plus one probe per pair tried, when a probe is set).
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<Inner>>,
}

impl PortPool {
    pub fn new(range: PortRange) -> PortPool {
        let pairs = range.pairs().min(usize::from(u16::MAX));
        PortPool {
            inner: Arc::new(Mutex::new(Inner {
                base: range.first_even() as u16,
                free: (0..pairs as u16).collect(),
                busy: vec![false; pairs],
                reserve: 0,
                probe: None,
                skipped: 0,
            })),
        }
    }

    /// Keeps `percent` % of the pairs (rounded up) for emergency calls:
    /// [`PortPool::allocate`] fails once only that many are free, while
    /// [`PortPool::allocate_emergency`] may take them.
    pub fn with_emergency_reserve(self, percent: u8) -> PortPool {
        {
            let mut inner = self.lock();
            let pairs = inner.busy.len();
            inner.reserve = (pairs * usize::from(percent.min(100))).div_ceil(100);
        }
        self
    }

    /// Checks each pair with `probe` before handing it out: a pair another
    /// process holds is passed over (and tried again only after every other
    /// free pair) instead of failing the call that drew it.
    pub fn with_probe(self, probe: PortProbe) -> PortPool {
        self.lock().probe = Some(probe);
        self
    }

    /// Pairs kept for emergency calls.
    pub fn reserve(&self) -> usize {
        self.lock().reserve
    }

    /// Pairs passed over so far because another process held them.
    pub fn skipped(&self) -> u64 {
        self.lock().skipped
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent across a panic elsewhere: no step
        // leaves it half-updated.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a pair for an ordinary call, leaving the emergency reserve
    /// untouched; it returns to the pool when the guard is dropped.
    pub fn allocate(&self) -> Result<PortPair, PortError> {
        self.take(false)
    }

    /// Takes a pair for an emergency call (999/112): the reserve too.
    pub fn allocate_emergency(&self) -> Result<PortPair, PortError> {
        self.take(true)
    }

    fn take(&self, emergency: bool) -> Result<PortPair, PortError> {
        let mut inner = self.lock();
        let floor = if emergency { 0 } else { inner.reserve };
        // Each free pair is probed at most once per allocation.
        let mut tries = inner.free.len();
        while tries > 0 && inner.free.len() > floor {
            tries -= 1;
            let Some(i) = inner.free.pop_front() else {
                break;
            };
            let rtp = inner.base + 2 * i;
            if inner.probe.as_ref().is_some_and(|probe| !probe(rtp)) {
                inner.skipped += 1;
                inner.free.push_back(i);
                continue;
            }
            inner.busy[usize::from(i)] = true;
            return Ok(PortPair {
                rtp,
                index: i,
                pool: self.clone(),
            });
        }
        Err(PortError::Exhausted(inner.busy.len()))
    }

    /// Pairs free now.
    pub fn available(&self) -> usize {
        self.lock().free.len()
    }

    pub fn capacity(&self) -> usize {
        self.lock().busy.len()
    }

    fn release(&self, index: u16) {
        let mut inner = self.lock();
        if let Some(busy) = inner.busy.get_mut(usize::from(index)) {
            if *busy {
                *busy = false;
                inner.free.push_back(index);
            }
        }
    }
}

/// An allocated RTP/RTCP pair; returned to its pool on drop, exactly once.
#[derive(Debug)]
pub struct PortPair {
    rtp: u16,
    index: u16,
    pool: PortPool,
}

impl PortPair {
    pub fn rtp(&self) -> u16 {
        self.rtp
    }

    pub fn rtcp(&self) -> u16 {
        self.rtp + 1
    }

    /// Returns the pair now (the same as dropping it).
    pub fn release(self) {}
}

impl Drop for PortPair {
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(
            "10000-20000".parse(),
            Ok(PortRange {
                first: 10000,
                last: 20000
            })
        );
        assert_eq!(" 30000 - 30001 ".parse::<PortRange>().unwrap().pairs(), 1);
        assert_eq!(
            "10001-10004".parse::<PortRange>().unwrap().pairs(),
            1,
            "10002/10003"
        );
        assert_eq!("10000-20000".parse::<PortRange>().unwrap().pairs(), 5000);
        assert_eq!(
            "0-3".parse::<PortRange>().unwrap().pairs(),
            1,
            "port 0 is never used"
        );
        assert_eq!("65534-65535".parse::<PortRange>().unwrap().pairs(), 1);
        for bad in [
            "",
            "10000",
            "10000-",
            "a-b",
            "20000-10000",
            "10001-10002",
            "1-70000",
        ] {
            assert!(
                matches!(bad.parse::<PortRange>(), Err(PortError::InvalidRange(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn allocates_even_pairs_until_exhausted_and_gets_them_back() {
        let pool = PortPool::new("40001-40009".parse().unwrap());
        assert_eq!(pool.capacity(), 4);
        let pairs: Vec<PortPair> = (0..4).map(|_| pool.allocate().unwrap()).collect();
        let rtp: Vec<u16> = pairs.iter().map(PortPair::rtp).collect();
        assert_eq!(rtp, [40002, 40004, 40006, 40008]);
        assert!(pairs.iter().all(|p| p.rtcp() == p.rtp() + 1));
        assert_eq!(pool.allocate().unwrap_err(), PortError::Exhausted(4));

        let mut pairs = pairs.into_iter();
        let first = pairs.next().unwrap();
        first.release();
        assert_eq!(pool.available(), 1);
        let again = pool.allocate().unwrap();
        assert_eq!(again.rtp(), 40002);
        drop(pairs);
        drop(again);
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn the_emergency_reserve_is_left_to_emergency_calls() {
        // 10 pairs, 20 % reserved: 8 for anyone, the last 2 for 999/112.
        let pool = PortPool::new("41000-41019".parse().unwrap()).with_emergency_reserve(20);
        assert_eq!(pool.reserve(), 2);
        let held: Vec<PortPair> = (0..8).map(|_| pool.allocate().unwrap()).collect();
        assert_eq!(pool.allocate().unwrap_err(), PortError::Exhausted(10));
        let e1 = pool.allocate_emergency().unwrap();
        let e2 = pool.allocate_emergency().unwrap();
        assert!(pool.allocate_emergency().is_err(), "the reserve is finite");
        drop((held, e1, e2));
        assert_eq!(pool.available(), 10);
        // 5 % of 8191 pairs, rounded up.
        let big = PortPool::new("16384-32767".parse().unwrap()).with_emergency_reserve(5);
        assert_eq!(big.reserve(), 410);
    }

    #[test]
    fn pairs_held_by_another_process_are_skipped() {
        let held_elsewhere = 42002;
        let probe: PortProbe = Arc::new(move |rtp| rtp != held_elsewhere);
        let pool = PortPool::new("42000-42007".parse().unwrap()).with_probe(probe);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        let c = pool.allocate().unwrap();
        assert_eq!([a.rtp(), b.rtp(), c.rtp()], [42000, 42004, 42006]);
        assert_eq!(pool.skipped(), 1);
        assert!(pool.allocate().is_err(), "only the held pair is left");
        drop((a, b, c));
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn released_ports_are_reused_last() {
        let pool = PortPool::new("50000-50005".parse().unwrap());
        let a = pool.allocate().unwrap();
        assert_eq!(a.rtp(), 50000);
        drop(a);
        assert_eq!(pool.allocate().unwrap().rtp(), 50002);
    }

    #[test]
    fn the_pool_survives_its_users_across_threads() {
        let pool = PortPool::new("20000-20199".parse().unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let held: Vec<_> = (0..20).map(|_| pool.allocate().unwrap()).collect();
                        assert!(held.windows(2).all(|w| w[0].rtp() != w[1].rtp()));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(pool.available(), 100);
    }
}
