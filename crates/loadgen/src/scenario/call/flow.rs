//! What happens to a call over time: retransmissions, deadlines, the
//! hang-up and both legs' BYEs.

use std::time::Instant;

use super::msg::Side;
use super::state::{BState, Hangup, Phase, T_BYE, T_GUARD, T_RETX_A, T_RETX_B};
use super::{Calls, Out};
use crate::report::Failure;

impl Calls {
    pub(super) fn retransmit(
        &mut self,
        slot: u32,
        side: Side,
        txn: u32,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let timer_f = self.cfg.timers.timer_f();
        let t2 = self.cfg.timers.t2;
        let src = {
            let c = &self.calls[slot as usize];
            match side {
                Side::A => self.caller_source(c.caller),
                Side::B => self.callee_source(c.callee),
            }
        };
        let c = &mut self.calls[slot as usize];
        let tx = match side {
            Side::A => &mut c.a,
            Side::B => &mut c.b,
        };
        if !tx.live || tx.txn != txn {
            return;
        }
        if tx.invite && tx.proceeding {
            return;
        }
        let give_up = tx.started + timer_f;
        if now >= give_up || self.cfg.transport.reliable() {
            tx.live = false;
            let why = if tx.invite {
                "invite_timeout"
            } else {
                "bye_timeout"
            };
            self.release(slot, Some(Failure::Call(why)), now);
            return;
        }
        out.send(src, &tx.req);
        tx.interval = if tx.invite {
            tx.interval * 2
        } else {
            (tx.interval * 2).min(t2)
        };
        let next = (now + tx.interval).min(give_up);
        self.metrics.retransmitted(now);
        let kind = if side == Side::A { T_RETX_A } else { T_RETX_B };
        self.arm(next, slot, kind, txn);
    }

    /// Sends a new request of one side and arms its retransmission timer.
    pub(super) fn send_tx(&mut self, slot: u32, side: Side, now: Instant, out: &mut Out<'_>) {
        let c = &self.calls[slot as usize];
        let src = match side {
            Side::A => self.caller_source(c.caller),
            Side::B => self.callee_source(c.callee),
        };
        let t1 = self.cfg.timers.t1;
        let first = if self.cfg.transport.reliable() {
            self.cfg.timers.timer_f()
        } else {
            t1
        };
        let c = &mut self.calls[slot as usize];
        let tx = match side {
            Side::A => &mut c.a,
            Side::B => &mut c.b,
        };
        tx.started = now;
        tx.interval = t1;
        tx.proceeding = false;
        tx.live = true;
        let txn = tx.txn;
        out.send(src, &tx.req);
        let kind = if side == Side::A { T_RETX_A } else { T_RETX_B };
        self.arm(now + first, slot, kind, txn);
    }

    /// The overall deadlines: setup (no 200 within Timer B) and teardown
    /// (a leg never ended within Timer F of the BYE).
    pub(super) fn guard(&mut self, slot: u32, seq: u32, now: Instant) {
        let c = &self.calls[slot as usize];
        let why = match (seq, c.phase) {
            (0, Phase::Inviting) => "invite_timeout",
            (1, Phase::Ending) if c.bye_sent_at.is_some() => {
                let (sender_done, peer_done) = match c.bye_by {
                    Side::A => (c.a_done, c.b_done),
                    Side::B => (c.b_done, c.a_done),
                };
                match (sender_done, peer_done) {
                    (true, false) => "peer_bye_missing",
                    (false, _) => "bye_timeout",
                    (true, true) => return,
                }
            }
            _ => return,
        };
        self.release(slot, Some(Failure::Call(why)), now);
    }

    /// The hold time is over: stop the media, then BYE from the hang-up side.
    pub(super) fn hang_up(&mut self, slot: u32, now: Instant, out: &mut Out<'_>) {
        if self.calls[slot as usize].phase != Phase::Talking {
            return;
        }
        self.calls[slot as usize].phase = Phase::Ending;
        let streaming = {
            let c = &self.calls[slot as usize];
            c.a_streaming || c.b_streaming
        };
        if streaming && !self.cfg.media_drain.is_zero() {
            self.stop_media(slot);
            self.arm(now + self.cfg.media_drain, slot, T_BYE, 0);
        } else {
            self.stop_media(slot);
            self.send_bye(slot, now, out);
        }
    }

    pub(super) fn send_bye(&mut self, slot: u32, now: Instant, out: &mut Out<'_>) {
        match self.cfg.hangup {
            Hangup::Caller => self.caller_bye(slot, now, out),
            Hangup::Callee => {
                if self.calls[slot as usize].b_state == BState::Confirmed {
                    self.callee_bye(slot, now, out);
                } else {
                    // RFC 3261 §15: not before the ACK
                    self.calls[slot as usize].b_hangup_pending = true;
                }
            }
        }
    }

    /// Records a BYE going out and arms the teardown guard.
    pub(super) fn bye_out(&mut self, slot: u32, side: Side, now: Instant) {
        let c = &mut self.calls[slot as usize];
        c.phase = Phase::Ending;
        c.bye_sent_at = Some(now);
        c.bye_by = side;
        let at = now + self.cfg.timers.timer_f() + self.cfg.timers.t1;
        self.arm(at, slot, T_GUARD, 1);
    }

    /// A BYE arrived on `side`'s leg: the relay time, and whether it was
    /// expected (the other side hung up) or the server ended the call.
    pub(super) fn bye_in(&mut self, slot: u32, side: Side, now: Instant) {
        let c = &mut self.calls[slot as usize];
        match side {
            Side::A => c.a_done = true,
            Side::B => {
                c.b_done = true;
                // a BYE that overtook the ACK ends the 200's retransmissions
                c.b_state = BState::Confirmed;
            }
        }
        match (c.bye_sent_at, c.bye_by != side) {
            (Some(sent), true) => {
                let d = now.saturating_duration_since(sent);
                self.stats.bye_relay.record(Self::us(d));
                self.maybe_complete(slot, now);
            }
            _ => {
                // the server hung up on us
                self.release(slot, Some(Failure::Call("server_bye")), now);
            }
        }
    }

    /// The BYE's 200 came back to the side that sent it.
    pub(super) fn bye_answered(&mut self, slot: u32, side: Side, code: u16, now: Instant) {
        let c = &mut self.calls[slot as usize];
        if c.bye_by != side || c.bye_sent_at.is_none() {
            return;
        }
        let tx = match side {
            Side::A => &mut c.a,
            Side::B => &mut c.b,
        };
        if code < 200 {
            tx.proceeding = true;
            return;
        }
        if !tx.live {
            return; // a retransmitted final response
        }
        tx.live = false;
        if !(200..300).contains(&code) {
            self.release(slot, Some(Failure::ByeStatus(code)), now);
            return;
        }
        if let Some(sent) = c.bye_sent_at {
            self.stats
                .teardown
                .record(Self::us(now.saturating_duration_since(sent)));
        }
        match side {
            Side::A => c.a_done = true,
            Side::B => c.b_done = true,
        }
        self.maybe_complete(slot, now);
    }
}
