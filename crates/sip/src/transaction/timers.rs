//! Timer values (RFC 3261 Table 4, RFC 6026 Timers L and M), per-transaction
//! deadlines and the layer-wide deadline queue.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::message::{Request, Response};

/// The RFC 3261 / RFC 6026 transaction timers, plus the 200 ms timer after
/// which an INVITE server transaction sends `100 Trying` (§17.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    A,
    B,
    C,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    Trying,
    /// No final response in time. Client INVITE: 64*T1 after its CANCEL
    /// went out (RFC 3261 §9.1). Server transactions (not in the RFCs):
    /// the TU never answered — non-INVITE after 64*T1 (the client's Timer F
    /// has fired by then), INVITE after [`Config::invite_answer_limit`] if
    /// set. Guards the table against requests nobody finishes.
    Unanswered,
}

impl Timer {
    /// Which deadline slot of a transaction the timer uses. Timers sharing a
    /// slot never run at the same time in one transaction.
    pub(crate) fn slot(self) -> usize {
        match self {
            Timer::A | Timer::E | Timer::G => 0,
            Timer::B | Timer::F | Timer::H | Timer::Unanswered => 1,
            Timer::D | Timer::I | Timer::J | Timer::K | Timer::L | Timer::M => 2,
            Timer::C | Timer::Trying => 3,
        }
    }
}

/// Timer configuration. Every timer derives from T1, T2 and T4 as in RFC 3261
/// Table 4, except D (at least 32 s on unreliable transports) and the
/// optional proxy Timer C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Cap on non-INVITE and INVITE-response retransmission intervals, 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s.
    pub t4: Duration,
    /// Timer D on unreliable transports (RFC 3261: at least 32 s).
    pub timer_d: Duration,
    /// Proxy Timer C (RFC 3261 §16.6: more than 3 minutes); `None` for UAs.
    pub timer_c: Option<Duration>,
    /// Delay before an INVITE server transaction sends `100 Trying` on its
    /// own; `None` leaves it to the TU.
    pub trying_delay: Option<Duration>,
    /// How long an INVITE server transaction may wait for the TU's final
    /// response before it is dropped ([`Timer::Unanswered`]); `None`: forever.
    pub invite_answer_limit: Option<Duration>,
    /// Live transactions beyond which new ones are refused.
    pub max_transactions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            timer_c: None,
            trying_delay: Some(Duration::from_millis(200)),
            invite_answer_limit: None,
            max_transactions: 1 << 20,
        }
    }
}

impl Config {
    /// The configuration the layer actually uses: T1 at least 1 ms (a zero
    /// T1 would make retransmission timers fire in a loop), T2 at least T1,
    /// and every duration at most a day (so deadline arithmetic cannot
    /// overflow).
    pub fn sanitized(self) -> Config {
        const DAY: Duration = Duration::from_secs(86_400);
        let cap = |d: Duration| d.min(DAY);
        let t1 = cap(self.t1).max(Duration::from_millis(1));
        Config {
            t1,
            t2: cap(self.t2).max(t1),
            t4: cap(self.t4),
            timer_d: cap(self.timer_d),
            timer_c: self.timer_c.map(cap),
            trying_delay: self.trying_delay.map(cap),
            invite_answer_limit: self.invite_answer_limit.map(cap),
            max_transactions: self.max_transactions,
        }
    }

    /// 64*T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
    /// Initial Timer A / E / G interval (T1); `None` on reliable transports.
    pub fn retransmit_initial(&self, reliable: bool) -> Option<Duration> {
        (!reliable).then_some(self.t1)
    }
    /// The next Timer A interval: doubles without a cap (Timer B ends it).
    pub fn next_a(&self, prev: Duration) -> Duration {
        prev * 2
    }
    /// The next Timer E / G interval: doubles, capped at T2.
    pub fn next_capped(&self, prev: Duration) -> Duration {
        (prev * 2).min(self.t2)
    }
    pub fn timer_b(&self) -> Duration {
        self.t1x64()
    }
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_d
        }
    }
    pub fn timer_f(&self) -> Duration {
        self.t1x64()
    }
    pub fn timer_h(&self) -> Duration {
        self.t1x64()
    }
    pub fn timer_i(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1x64()
        }
    }
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }
    pub fn timer_l(&self) -> Duration {
        self.t1x64()
    }
    pub fn timer_m(&self) -> Duration {
        self.t1x64()
    }
}

/// What a state machine asks of the layer after an input. The layer keeps one
/// and clears it between inputs, so the vectors are reused.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub sends: Vec<Arc<[u8]>>,
    pub tu: Vec<TuEvent>,
    pub arms: Vec<(Timer, Instant)>,
    pub terminated: bool,
}

impl Out {
    pub fn clear(&mut self) {
        self.sends.clear();
        self.tu.clear();
        self.arms.clear();
        self.terminated = false;
    }
}

/// An event for the TU, before the layer attaches the key.
#[derive(Debug)]
pub(crate) enum TuEvent {
    Response(Response),
    Ack(Request),
    Timeout(Timer),
    TransportError,
}

/// The armed deadlines of one transaction, one per slot (see [`Timer::slot`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Deadlines([Option<(Timer, Instant)>; 4]);

impl Deadlines {
    pub fn arm(&mut self, timer: Timer, at: Instant, out: &mut Out) {
        self.0[timer.slot()] = Some((timer, at));
        out.arms.push((timer, at));
    }
    pub fn disarm(&mut self, timer: Timer) {
        if matches!(self.0[timer.slot()], Some((t, _)) if t == timer) {
            self.0[timer.slot()] = None;
        }
    }
    pub fn clear(&mut self) {
        self.0 = [None; 4];
    }
    /// Whether a queued `(timer, at)` is still armed; if so it is disarmed,
    /// since it is about to fire. Stale queue entries return false.
    pub fn take(&mut self, timer: Timer, at: Instant) -> bool {
        let slot = &mut self.0[timer.slot()];
        if *slot == Some((timer, at)) {
            *slot = None;
            true
        } else {
            false
        }
    }
    pub fn is_armed(&self, timer: Timer, at: Instant) -> bool {
        self.0[timer.slot()] == Some((timer, at))
    }
    /// The earliest armed deadline.
    #[cfg(test)]
    pub fn earliest(&self) -> Option<(Timer, Instant)> {
        self.0.iter().flatten().min_by_key(|(_, at)| *at).copied()
    }
    #[cfg(test)]
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        match self.0[timer.slot()] {
            Some((t, at)) if t == timer => Some(at),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Slab handle of a transaction inside the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TxId {
    pub index: u32,
    pub generation: u32,
}

/// A min-heap of deadlines with lazy deletion: disarmed or rearmed timers
/// leave stale entries that are skipped (checked against [`Deadlines`]) when
/// they surface, and purged when they outnumber live ones.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, TxId, Timer)>>,
    seq: u64,
}

impl TimerQueue {
    pub fn push(&mut self, at: Instant, id: TxId, timer: Timer) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, id, timer)));
    }
    pub fn peek(&self) -> Option<(Instant, TxId, Timer)> {
        self.heap
            .peek()
            .map(|Reverse((at, _, id, t))| (*at, *id, *t))
    }
    pub fn pop(&mut self) {
        self.heap.pop();
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    /// Keeps only the entries for which `live` is true.
    pub fn retain(&mut self, mut live: impl FnMut(Instant, TxId, Timer) -> bool) {
        let entries = std::mem::take(&mut self.heap).into_vec();
        self.heap = entries
            .into_iter()
            .filter(|Reverse((at, _, id, t))| live(*at, *id, *t))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_values_follow_rfc_3261_table_4() {
        let c = Config::default();
        let ms = Duration::from_millis;
        assert_eq!(c.retransmit_initial(false), Some(ms(500)));
        assert_eq!(c.retransmit_initial(true), None);
        assert_eq!(c.timer_b(), ms(32_000));
        assert_eq!(c.timer_f(), ms(32_000));
        assert_eq!(c.timer_h(), ms(32_000));
        assert_eq!(c.timer_l(), ms(32_000));
        assert_eq!(c.timer_m(), ms(32_000));
        assert_eq!(c.timer_d(false), ms(32_000));
        assert_eq!(c.timer_d(true), Duration::ZERO);
        assert_eq!(c.timer_i(false), ms(5_000));
        assert_eq!(c.timer_i(true), Duration::ZERO);
        assert_eq!(c.timer_j(false), ms(32_000));
        assert_eq!(c.timer_j(true), Duration::ZERO);
        assert_eq!(c.timer_k(false), ms(5_000));
        assert_eq!(c.timer_k(true), Duration::ZERO);
        assert_eq!(c.timer_c, None);
    }

    #[test]
    fn a_doubles_without_cap_e_and_g_cap_at_t2() {
        let c = Config::default();
        let mut a = c.t1;
        let mut e = c.t1;
        let mut a_seq = vec![a];
        let mut e_seq = vec![e];
        for _ in 0..6 {
            a = c.next_a(a);
            e = c.next_capped(e);
            a_seq.push(a);
            e_seq.push(e);
        }
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(a_seq, ms(&[500, 1000, 2000, 4000, 8000, 16000, 32000]));
        assert_eq!(e_seq, ms(&[500, 1000, 2000, 4000, 4000, 4000, 4000]));
    }

    #[test]
    fn sanitized_rejects_degenerate_values() {
        let c = Config {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            timer_c: Some(Duration::MAX),
            ..Config::default()
        }
        .sanitized();
        assert_eq!(c.t1, Duration::from_millis(1));
        assert_eq!(c.t2, c.t1);
        assert_eq!(c.timer_c, Some(Duration::from_secs(86_400)));
        assert_eq!(Config::default().sanitized(), Config::default());
    }

    #[test]
    fn timers_scale_with_t1() {
        let c = Config {
            t1: Duration::from_millis(100),
            ..Config::default()
        };
        assert_eq!(c.timer_b(), Duration::from_millis(6400));
        assert_eq!(c.timer_j(false), Duration::from_millis(6400));
    }

    #[test]
    fn deadlines_reject_stale_entries() {
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut d = Deadlines::default();
        d.arm(Timer::A, t0, &mut out);
        d.arm(Timer::A, t0 + Duration::from_secs(1), &mut out);
        assert!(!d.take(Timer::A, t0));
        assert!(d.take(Timer::A, t0 + Duration::from_secs(1)));
        assert!(!d.take(Timer::A, t0 + Duration::from_secs(1)));
        d.arm(Timer::D, t0, &mut out);
        assert!(!d.take(Timer::M, t0));
        d.disarm(Timer::M);
        assert!(d.is_armed(Timer::D, t0));
        d.clear();
        assert!(!d.is_armed(Timer::D, t0));
    }

    #[test]
    fn queue_pops_in_deadline_order_and_retains() {
        let t0 = Instant::now();
        let id = |i| TxId {
            index: i,
            generation: 0,
        };
        let mut q = TimerQueue::default();
        q.push(t0 + Duration::from_secs(3), id(1), Timer::B);
        q.push(t0 + Duration::from_secs(1), id(2), Timer::A);
        q.push(t0 + Duration::from_secs(1), id(3), Timer::E);
        assert_eq!(
            q.peek(),
            Some((t0 + Duration::from_secs(1), id(2), Timer::A))
        );
        q.retain(|_, i, _| i != id(2));
        assert_eq!(q.len(), 2);
        assert_eq!(q.peek().map(|p| p.1), Some(id(3)));
        q.pop();
        assert_eq!(q.peek().map(|p| p.1), Some(id(1)));
    }
}
