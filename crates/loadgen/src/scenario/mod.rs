//! Scenarios: what one paced operation is. Each is a state machine fed with
//! events and `now` (no sockets, no clock), so the runner can drive any of
//! them over any transport and tests can drive them by hand: `register`,
//! and `call` (registration of the callees, then calls).

pub mod call;
pub mod register;
pub mod scan;

use std::time::Instant;

use crate::report::Metrics;
use crate::transport::Wire;

pub trait Scenario {
    fn name(&self) -> &'static str;
    /// Starts operation number `k` (0-based, in pacing order).
    fn start(&mut self, k: u64, now: Instant, wire: &dyn Wire);
    /// One complete SIP message (a datagram, or one framed off a stream)
    /// arrived on source `source`.
    fn on_message(&mut self, source: usize, msg: &[u8], now: Instant, wire: &dyn Wire);
    /// Fires every timer due at `now` (retransmissions, timeouts).
    fn on_timers(&mut self, now: Instant, wire: &dyn Wire);
    /// The earliest pending timer, if any.
    fn next_deadline(&self) -> Option<Instant>;
    /// Operations started and not yet finished.
    fn in_flight(&self) -> usize;
    /// The connection of `source` broke: fail what it carried.
    fn on_broken(&mut self, source: usize);
    /// End of run: everything still in flight fails as unfinished.
    fn finish(&mut self);
    fn metrics(&self) -> &Metrics;
    fn metrics_mut(&mut self) -> &mut Metrics;
}

/// A small fast PRNG (SplitMix64) for branches and cnonces: unique and
/// unpredictable enough for a load generator, not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Seeded from the OS (falls back to the clock).
    pub fn from_os() -> Self {
        use std::io::Read;
        let mut b = [0u8; 8];
        let seeded = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .is_ok();
        if seeded {
            Rng(u64::from_ne_bytes(b))
        } else {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Rng(t ^ u64::from(std::process::id()) << 32)
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
