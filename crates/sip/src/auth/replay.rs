//! Nonce-count replay tracking.
//!
//! Only nonces that have been *used* with a correct response are tracked.
//! For each, a 64-wide sliding window (as in IPsec anti-replay) remembers
//! which nonce-counts were seen at or below the highest one, so parallel
//! requests arriving slightly out of order still pass but any repeat fails.
//!
//! The table is capped. When full, the entry with the oldest issue time is
//! evicted and the *eviction watermark* rises to its issue time. A nonce that
//! is not in the table but was issued at or before the watermark is reported
//! [`NcCheck::Evicted`] (the caller treats it as stale and re-challenges), so
//! evicting an entry can never let a replay of it through. Nonces past their
//! lifetime are dropped lazily; the age check refuses them anyway.

use std::collections::{BTreeSet, HashMap};

const WINDOW: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NcCheck {
    Fresh,
    Replay,
    Evicted,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    highest: u32,
    /// Bit i set: nc `highest - i` was seen.
    seen: u64,
}

impl Entry {
    fn accept(&mut self, nc: u32) -> NcCheck {
        if nc > self.highest {
            let shift = nc - self.highest;
            self.seen = if shift >= WINDOW {
                1
            } else {
                (self.seen << shift) | 1
            };
            self.highest = nc;
            return NcCheck::Fresh;
        }
        let back = self.highest - nc;
        if back >= WINDOW {
            return NcCheck::Replay;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            return NcCheck::Replay;
        }
        self.seen |= bit;
        NcCheck::Fresh
    }
}

#[derive(Debug)]
pub(crate) struct NcTracker {
    map: HashMap<[u8; 16], Entry>,
    by_age: BTreeSet<(u64, [u8; 16])>,
    cap: usize,
    lifetime: u64,
    watermark: Option<u64>,
}

impl NcTracker {
    pub fn new(cap: usize, lifetime_secs: u64) -> Self {
        NcTracker {
            map: HashMap::new(),
            by_age: BTreeSet::new(),
            cap: cap.max(1),
            lifetime: lifetime_secs,
            watermark: None,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Drops entries whose nonce has outlived the lifetime at `now` (seconds).
    pub fn expire(&mut self, now: u64) {
        while let Some(&(issued, tag)) = self.by_age.first() {
            if issued.saturating_add(self.lifetime) >= now {
                break;
            }
            self.by_age.pop_first();
            self.map.remove(&tag);
        }
    }

    /// Records nonce-count `nc` for the nonce `tag` issued at `issued`.
    pub fn check_and_record(&mut self, tag: [u8; 16], issued: u64, nc: u32, now: u64) -> NcCheck {
        self.expire(now);
        if let Some(e) = self.map.get_mut(&tag) {
            return e.accept(nc);
        }
        if self.watermark.is_some_and(|w| issued <= w) {
            return NcCheck::Evicted;
        }
        while self.map.len() >= self.cap {
            let Some(&(old_issued, old_tag)) = self.by_age.first() else {
                break;
            };
            // Full and this nonce is no newer than the oldest tracked one:
            // account it as inserted-then-evicted rather than dropping a
            // newer entry.
            let victim = if issued <= old_issued {
                issued
            } else {
                self.by_age.pop_first();
                self.map.remove(&old_tag);
                old_issued
            };
            self.watermark = Some(self.watermark.map_or(victim, |w| w.max(victim)));
            if victim == issued {
                return NcCheck::Evicted;
            }
        }
        self.map.insert(
            tag,
            Entry {
                highest: nc,
                seen: 1,
            },
        );
        self.by_age.insert((issued, tag));
        NcCheck::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u8) -> [u8; 16] {
        [n; 16]
    }

    #[test]
    fn window_accepts_out_of_order_and_refuses_repeats() {
        let mut t = NcTracker::new(10, 300);
        assert_eq!(t.check_and_record(tag(1), 100, 1, 100), NcCheck::Fresh);
        assert_eq!(t.check_and_record(tag(1), 100, 1, 100), NcCheck::Replay);
        assert_eq!(t.check_and_record(tag(1), 100, 3, 100), NcCheck::Fresh);
        assert_eq!(t.check_and_record(tag(1), 100, 2, 100), NcCheck::Fresh);
        assert_eq!(t.check_and_record(tag(1), 100, 2, 100), NcCheck::Replay);
        assert_eq!(t.check_and_record(tag(1), 100, 3, 100), NcCheck::Replay);
        assert_eq!(t.check_and_record(tag(1), 100, 200, 100), NcCheck::Fresh);
        // Far behind the window: refused even though never seen.
        assert_eq!(t.check_and_record(tag(1), 100, 100, 100), NcCheck::Replay);
        assert_eq!(t.check_and_record(tag(1), 100, 199, 100), NcCheck::Fresh);
    }

    #[test]
    fn eviction_raises_watermark_and_refuses_evicted() {
        let mut t = NcTracker::new(2, 300);
        assert_eq!(t.check_and_record(tag(1), 100, 1, 150), NcCheck::Fresh);
        assert_eq!(t.check_and_record(tag(2), 110, 1, 150), NcCheck::Fresh);
        // Third nonce evicts the oldest (issued 100).
        assert_eq!(t.check_and_record(tag(3), 120, 1, 150), NcCheck::Fresh);
        assert_eq!(t.len(), 2);
        // The evicted nonce, replayed or even with a new nc, is not fresh.
        assert_eq!(t.check_and_record(tag(1), 100, 1, 150), NcCheck::Evicted);
        assert_eq!(t.check_and_record(tag(1), 100, 2, 150), NcCheck::Evicted);
        // A never-seen nonce older than the watermark is refused too.
        assert_eq!(t.check_and_record(tag(9), 90, 1, 150), NcCheck::Evicted);
        // Tracked ones still work.
        assert_eq!(t.check_and_record(tag(2), 110, 2, 150), NcCheck::Fresh);
        assert_eq!(t.check_and_record(tag(3), 120, 1, 150), NcCheck::Replay);
    }

    #[test]
    fn expiry_frees_entries() {
        let mut t = NcTracker::new(100, 300);
        for i in 0..10 {
            t.check_and_record(tag(i), 100 + u64::from(i), 1, 110);
        }
        assert_eq!(t.len(), 10);
        t.expire(405);
        assert_eq!(t.len(), 5);
        t.expire(1000);
        assert_eq!(t.len(), 0);
    }
}
