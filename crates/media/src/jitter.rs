//! A small fixed jitter buffer for one leg whose audio is decoded (mixed or
//! recorded), and frame-loss concealment.
//!
//! [`JitterBuffer`] holds RTP payloads by sequence number for at most
//! `depth` 20 ms frames (default 3: 60 ms). It reorders, drops duplicates
//! and packets that arrive after their slot was played, and on overflow
//! skips ahead (dropping the oldest). Playout starts once `prefill` frames
//! are buffered and is clocked by the caller's 20 ms tick ([`JitterBuffer::pop`]);
//! nothing adapts. After `depth` consecutive empty ticks the talk-spurt is
//! over and the buffer prefills again.
//!
//! [`Concealer`] turns a lost frame into the previous frame, faded, so a
//! single loss is a repeat at half level and a burst fades to silence.
//!
//! The call engine does not use this yet (relayed calls never decode).

use std::collections::VecDeque;

use crate::pcm::{Frame, Rate};

/// Buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Most frames held; a packet further ahead pushes out the oldest.
    pub depth: u16,
    /// Frames buffered before playout starts (at most `depth`).
    pub prefill: u16,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            depth: 3,
            prefill: 2,
        }
    }
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Accepted,
    /// The same sequence number is already buffered.
    Duplicate,
    /// Its slot was already played (or concealed).
    Late,
    /// Accepted, but it was so far ahead that older frames were dropped.
    Overflow {
        dropped: u16,
    },
}

/// What one 20 ms tick plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Still buffering (or idle between talk-spurts): play nothing.
    Waiting,
    /// The payload of this tick's packet.
    Packet { seq: u16, payload: Vec<u8> },
    /// This tick's packet is missing: conceal.
    Lost { seq: u16 },
}

/// Counters for one leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub late: u64,
    pub overflow_dropped: u64,
    pub lost: u64,
}

#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    /// Sequence number of the next frame to play; `None` before the first packet.
    next: Option<u16>,
    /// Index 0 is the frame to play next.
    slots: VecDeque<Option<Vec<u8>>>,
    playing: bool,
    empty_ticks: u16,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        let depth = config.depth.max(1);
        let config = JitterConfig {
            depth,
            prefill: config.prefill.clamp(1, depth),
        };
        JitterBuffer {
            config,
            next: None,
            slots: (0..depth).map(|_| None).collect(),
            playing: false,
            empty_ticks: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames currently buffered.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offers one packet's payload.
    pub fn push(&mut self, seq: u16, payload: &[u8]) -> Pushed {
        let depth = self.config.depth;
        let next = match self.next {
            Some(n) => n,
            None => {
                self.next = Some(seq);
                seq
            }
        };
        let ahead = seq.wrapping_sub(next) as i16;
        if ahead < 0 {
            // Before playout started, an earlier packet just moves the start
            // back, if the frames held still fit.
            let back = ahead.unsigned_abs();
            if !self.playing && back + self.span() <= depth {
                for _ in 0..back {
                    self.slots.pop_back();
                    self.slots.push_front(None);
                }
                self.next = Some(seq);
                return self.store(0, payload, Pushed::Accepted);
            }
            self.stats.late += 1;
            return Pushed::Late;
        }
        let ahead = ahead as u16;
        if ahead >= depth {
            // Skip ahead so that `seq` is the newest frame held; only
            // `depth` slots exist, so at most that many are dropped.
            let shift = ahead - depth + 1;
            let mut dropped = 0;
            for _ in 0..shift.min(depth) {
                if self.slots.pop_front().flatten().is_some() {
                    dropped += 1;
                }
                self.slots.push_back(None);
            }
            self.stats.overflow_dropped += u64::from(dropped);
            self.next = Some(next.wrapping_add(shift));
            return self.store(depth - 1, payload, Pushed::Overflow { dropped });
        }
        if self.slots[usize::from(ahead)].is_some() {
            self.stats.duplicates += 1;
            return Pushed::Duplicate;
        }
        self.store(ahead, payload, Pushed::Accepted)
    }

    /// Frames from the next to play to the newest buffered one.
    fn span(&self) -> u16 {
        self.slots
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |k| k as u16 + 1)
    }

    fn store(&mut self, offset: u16, payload: &[u8], result: Pushed) -> Pushed {
        self.slots[usize::from(offset)] = Some(payload.to_vec());
        self.stats.accepted += 1;
        result
    }

    /// The 20 ms tick: what to play now.
    pub fn pop(&mut self) -> Playout {
        let Some(next) = self.next else {
            return Playout::Waiting;
        };
        if !self.playing {
            if self.len() < usize::from(self.config.prefill) {
                return Playout::Waiting;
            }
            self.playing = true;
        }
        self.next = Some(next.wrapping_add(1));
        let head = self.slots.pop_front().flatten();
        self.slots.push_back(None);
        match head {
            Some(payload) => {
                self.empty_ticks = 0;
                Playout::Packet { seq: next, payload }
            }
            None => {
                self.stats.lost += 1;
                if self.is_empty() {
                    self.empty_ticks += 1;
                    if self.empty_ticks >= self.config.depth {
                        // End of talk-spurt: rebuffer on the next packet.
                        self.playing = false;
                        self.next = None;
                        self.empty_ticks = 0;
                    }
                }
                Playout::Lost { seq: next }
            }
        }
    }
}

/// Loss concealment: repeats the last good frame, halving its level on each
/// consecutive loss, silent from the fourth.
#[derive(Debug, Clone)]
pub struct Concealer {
    last: Frame,
    losses: u32,
}

impl Concealer {
    pub fn new(rate: Rate) -> Self {
        Concealer {
            last: Frame::silence(rate),
            losses: 0,
        }
    }

    /// Records a frame that arrived.
    pub fn good(&mut self, frame: &Frame) {
        self.last = *frame;
        self.losses = 0;
    }

    /// The frame to play in place of a lost one.
    pub fn conceal(&mut self) -> Frame {
        self.losses += 1;
        if self.losses > 3 {
            return Frame::silence(self.last.rate());
        }
        let mut f = self.last;
        f.scale(0.5f32.powi(self.losses as i32));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jb() -> JitterBuffer {
        JitterBuffer::new(JitterConfig::default())
    }

    fn played(j: &mut JitterBuffer, n: usize) -> Vec<Playout> {
        (0..n).map(|_| j.pop()).collect()
    }

    fn pkt(seq: u16) -> Playout {
        Playout::Packet {
            seq,
            payload: vec![seq as u8],
        }
    }

    #[test]
    fn waits_for_prefill_then_plays_in_order() {
        let mut j = jb();
        assert_eq!(j.pop(), Playout::Waiting);
        assert_eq!(j.push(10, &[10]), Pushed::Accepted);
        assert_eq!(j.pop(), Playout::Waiting);
        assert_eq!(j.push(11, &[11]), Pushed::Accepted);
        assert_eq!(played(&mut j, 2), [pkt(10), pkt(11)]);
    }

    #[test]
    fn reorders_within_the_depth() {
        let mut j = jb();
        j.push(101, &[101]);
        j.push(100, &[100]);
        j.push(102, &[102]);
        assert_eq!(played(&mut j, 3), [pkt(100), pkt(101), pkt(102)]);
    }

    #[test]
    fn drops_duplicates_and_late_packets() {
        let mut j = jb();
        j.push(5, &[5]);
        assert_eq!(j.push(5, &[5]), Pushed::Duplicate);
        j.push(6, &[6]);
        assert_eq!(j.pop(), pkt(5));
        assert_eq!(j.push(5, &[5]), Pushed::Late);
        assert_eq!(j.pop(), pkt(6));
        assert_eq!(j.push(4, &[4]), Pushed::Late);
        let s = j.stats();
        assert_eq!((s.duplicates, s.late, s.accepted), (1, 2, 2));
    }

    #[test]
    fn a_gap_is_reported_lost_and_playout_continues() {
        let mut j = jb();
        j.push(1, &[1]);
        j.push(3, &[3]);
        assert_eq!(
            played(&mut j, 3),
            [pkt(1), Playout::Lost { seq: 2 }, pkt(3)]
        );
        assert_eq!(j.stats().lost, 1);
    }

    /// A sender that jumps ahead cannot grow the buffer past its depth.
    #[test]
    fn depth_is_bounded_on_a_jump() {
        let mut j = jb();
        j.push(1, &[1]);
        j.push(2, &[2]);
        assert_eq!(j.pop(), pkt(1));
        assert_eq!(j.push(9, &[9]), Pushed::Overflow { dropped: 1 });
        assert!(j.len() <= 3);
        assert_eq!(
            played(&mut j, 3),
            [Playout::Lost { seq: 7 }, Playout::Lost { seq: 8 }, pkt(9)]
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut j = jb();
        j.push(65535, &[255]);
        j.push(0, &[0]);
        assert_eq!(
            played(&mut j, 2),
            [
                Playout::Packet {
                    seq: 65535,
                    payload: vec![255]
                },
                pkt(0)
            ]
        );
    }

    /// After a silence longer than the depth, a new talk-spurt prefills
    /// again instead of being counted late.
    #[test]
    fn rebuffers_after_a_talk_spurt_ends() {
        let mut j = jb();
        j.push(1, &[1]);
        j.push(2, &[2]);
        played(&mut j, 2);
        assert!(matches!(j.pop(), Playout::Lost { .. }));
        played(&mut j, 2);
        assert_eq!(j.push(500, &[244]), Pushed::Accepted);
        assert_eq!(j.pop(), Playout::Waiting);
    }

    /// A sender that restarts its sequence numbers half the space away
    /// (seen as "late") is followed again once the buffer has drained.
    #[test]
    fn a_sequence_restart_is_followed_after_draining() {
        let mut j = jb();
        j.push(1000, &[1]);
        j.push(1001, &[2]);
        played(&mut j, 2);
        let restart = 1002u16.wrapping_add(40000);
        assert_eq!(j.push(restart, &[9]), Pushed::Late);
        played(&mut j, 3); // three empty ticks end the talk-spurt
        assert_eq!(j.push(restart, &[9]), Pushed::Accepted);
        j.push(restart.wrapping_add(1), &[10]);
        assert_eq!(
            j.pop(),
            Playout::Packet {
                seq: restart,
                payload: vec![9]
            }
        );
    }

    #[test]
    fn concealment_repeats_then_fades_to_silence() {
        let mut c = Concealer::new(Rate::Narrow);
        let f = Frame::from_samples(Rate::Narrow, &[1000; 160]).unwrap();
        c.good(&f);
        assert_eq!(c.conceal().samples()[0], 500);
        assert_eq!(c.conceal().samples()[0], 250);
        assert_eq!(c.conceal().samples()[0], 125);
        assert_eq!(c.conceal().energy(), 0);
        c.good(&f);
        assert_eq!(c.conceal().samples()[0], 500);
    }
}
