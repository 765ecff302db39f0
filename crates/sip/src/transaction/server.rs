//! Server transactions: INVITE (RFC 3261 §17.2.1 with the RFC 6026 Accepted
//! state) and non-INVITE (§17.2.2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::timers::{Config, Deadlines, Out, Timer, TuEvent};
use super::{State, TxError};
use crate::message::{Request, Response};

/// INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    state: State,
    reliable: bool,
    /// The last response sent: a provisional in Proceeding, the final one in
    /// Completed. Resent when the INVITE is retransmitted, and by Timer G.
    last: Option<Arc<[u8]>>,
    /// The `100 Trying` to send if the TU stays silent for `trying_delay`.
    trying: Option<Arc<[u8]>>,
    /// To tag of the non-2xx final response, for RFC 2543 ACK matching.
    to_tag: Option<Box<str>>,
    interval: Duration,
    pub deadlines: Deadlines,
}

impl ServerInvite {
    /// Enters Proceeding; schedules the automatic `100 Trying`.
    pub fn start(
        trying: Option<Arc<[u8]>>,
        reliable: bool,
        cfg: &Config,
        now: Instant,
        out: &mut Out,
    ) -> Self {
        let mut tx = ServerInvite {
            state: State::Proceeding,
            reliable,
            last: None,
            trying: None,
            to_tag: None,
            interval: Duration::ZERO,
            deadlines: Deadlines::default(),
        };
        if let Some(limit) = cfg.invite_answer_limit {
            tx.deadlines.arm(Timer::Unanswered, now + limit, out);
        }
        if let (Some(delay), Some(trying)) = (cfg.trying_delay, trying) {
            if delay.is_zero() {
                out.sends.push(trying.clone());
                tx.last = Some(trying);
            } else {
                tx.trying = Some(trying);
                tx.deadlines.arm(Timer::Trying, now + delay, out);
            }
        }
        tx
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.to_tag.as_deref()
    }

    fn terminate(&mut self, out: &mut Out) {
        self.deadlines.clear();
        self.last = None;
        self.trying = None;
        out.terminated = true;
    }

    fn send_trying_now(&mut self, out: &mut Out) {
        self.deadlines.disarm(Timer::Trying);
        if let Some(t) = self.trying.take() {
            out.sends.push(t.clone());
            self.last = Some(t);
        }
    }

    /// A retransmission of the INVITE.
    pub fn on_request(&mut self, out: &mut Out) {
        match self.state {
            State::Proceeding if self.last.is_none() => {
                // The client is retransmitting: stop it with 100 Trying now.
                self.send_trying_now(out);
            }
            State::Proceeding | State::Completed => {
                if let Some(last) = &self.last {
                    out.sends.push(last.clone());
                }
            }
            // Confirmed and Accepted absorb it.
            _ => {}
        }
    }

    /// An ACK matching this transaction.
    pub fn on_ack(&mut self, ack: Request, cfg: &Config, now: Instant, out: &mut Out) {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.deadlines.disarm(Timer::G);
                self.deadlines.disarm(Timer::H);
                self.last = None;
                let i = cfg.timer_i(self.reliable);
                if i.is_zero() {
                    self.terminate(out);
                } else {
                    self.deadlines.arm(Timer::I, now + i, out);
                }
            }
            State::Accepted => out.tu.push(TuEvent::Ack(ack)),
            _ => {}
        }
    }

    /// A response from the TU.
    pub fn send_response(
        &mut self,
        resp: &Response,
        cfg: &Config,
        now: Instant,
        out: &mut Out,
    ) -> Result<(), TxError> {
        let status = resp.status;
        match self.state {
            State::Proceeding => {
                self.trying = None;
                self.deadlines.disarm(Timer::Trying);
                if status.is_final() {
                    self.deadlines.disarm(Timer::Unanswered);
                }
                let bytes: Arc<[u8]> = resp.to_bytes().into();
                out.sends.push(bytes.clone());
                if status.is_provisional() {
                    self.last = Some(bytes);
                } else if status.is_success() {
                    self.last = None;
                    self.state = State::Accepted;
                    self.deadlines.arm(Timer::L, now + cfg.timer_l(), out);
                } else {
                    self.last = Some(bytes);
                    self.state = State::Completed;
                    self.to_tag = resp
                        .to_addr()
                        .ok()
                        .flatten()
                        .and_then(|t| t.tag().map(Into::into));
                    if let Some(g) = cfg.retransmit_initial(self.reliable) {
                        self.interval = g;
                        self.deadlines.arm(Timer::G, now + g, out);
                    }
                    self.deadlines.arm(Timer::H, now + cfg.timer_h(), out);
                }
                Ok(())
            }
            // RFC 6026 §7.1: the TU's 2xx retransmissions pass through.
            State::Accepted if status.is_success() => {
                out.sends.push(resp.to_bytes().into());
                Ok(())
            }
            _ => Err(TxError::InvalidState),
        }
    }

    pub fn on_timer(&mut self, timer: Timer, cfg: &Config, now: Instant, out: &mut Out) {
        match (timer, self.state) {
            (Timer::Trying, State::Proceeding) => self.send_trying_now(out),
            (Timer::Unanswered, State::Proceeding) => {
                out.tu.push(TuEvent::Timeout(Timer::Unanswered));
                self.terminate(out);
            }
            (Timer::G, State::Completed) => {
                if let Some(last) = &self.last {
                    out.sends.push(last.clone());
                }
                self.interval = cfg.next_capped(self.interval);
                self.deadlines.arm(Timer::G, now + self.interval, out);
            }
            (Timer::H, State::Completed) => {
                out.tu.push(TuEvent::Timeout(Timer::H));
                self.terminate(out);
            }
            (Timer::I, State::Confirmed) | (Timer::L, State::Accepted) => self.terminate(out),
            _ => {}
        }
    }

    /// A failed send. In Accepted the TU owns 2xx reliability, so the
    /// transaction only reports it and keeps absorbing retransmissions.
    pub fn on_transport_error(&mut self, out: &mut Out) {
        out.tu.push(TuEvent::TransportError);
        if self.state != State::Accepted {
            self.terminate(out);
        }
    }
}

/// Non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    state: State,
    reliable: bool,
    last: Option<Arc<[u8]>>,
    pub deadlines: Deadlines,
}

impl ServerNonInvite {
    /// Enters Trying; the TU has 64*T1 to send a final response.
    pub fn start(reliable: bool, cfg: &Config, now: Instant, out: &mut Out) -> Self {
        let mut deadlines = Deadlines::default();
        deadlines.arm(Timer::Unanswered, now + cfg.t1x64(), out);
        ServerNonInvite {
            state: State::Trying,
            reliable,
            last: None,
            deadlines,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    fn terminate(&mut self, out: &mut Out) {
        self.deadlines.clear();
        self.last = None;
        out.terminated = true;
    }

    /// A retransmission of the request: absorbed in Trying, answered with
    /// the last response otherwise.
    pub fn on_request(&mut self, out: &mut Out) {
        if let Some(last) = &self.last {
            out.sends.push(last.clone());
        }
    }

    pub fn send_response(
        &mut self,
        resp: &Response,
        cfg: &Config,
        now: Instant,
        out: &mut Out,
    ) -> Result<(), TxError> {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(TxError::InvalidState);
        }
        let bytes: Arc<[u8]> = resp.to_bytes().into();
        out.sends.push(bytes.clone());
        self.last = Some(bytes);
        if resp.status.is_provisional() {
            self.state = State::Proceeding;
            return Ok(());
        }
        self.state = State::Completed;
        self.deadlines.disarm(Timer::Unanswered);
        let j = cfg.timer_j(self.reliable);
        if j.is_zero() {
            self.terminate(out);
        } else {
            self.deadlines.arm(Timer::J, now + j, out);
        }
        Ok(())
    }

    pub fn on_timer(&mut self, timer: Timer, out: &mut Out) {
        match (timer, self.state) {
            (Timer::J, State::Completed) => self.terminate(out),
            (Timer::Unanswered, State::Trying | State::Proceeding) => {
                out.tu.push(TuEvent::Timeout(Timer::Unanswered));
                self.terminate(out);
            }
            _ => {}
        }
    }

    pub fn on_transport_error(&mut self, out: &mut Out) {
        out.tu.push(TuEvent::TransportError);
        self.terminate(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::StatusCode;
    use crate::transaction::timers::ms;
    use crate::{Limits, Message, parse_datagram};

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bKs1\r\nMax-Forwards: 70\r\n\
From: <sip:a@a.example>;tag=f1\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\n\
CSeq: 1 INVITE\r\n\r\n";

    fn invite() -> Request {
        match parse_datagram(INVITE.as_bytes(), &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn resp(code: u16) -> Response {
        invite().response_tagged(StatusCode::new(code).unwrap())
    }

    fn trying() -> Option<Arc<[u8]>> {
        Some(resp(100).to_bytes().into())
    }

    /// Fires timers in order until the transaction terminates; returns the
    /// offsets of every send and the end time.
    fn run(
        tx: &mut ServerInvite,
        cfg: &Config,
        t0: Instant,
        out: &mut Out,
    ) -> (Vec<Duration>, Duration) {
        let mut sends = vec![];
        let mut now = t0;
        while let Some((timer, at)) = tx.deadlines.earliest() {
            assert!(tx.deadlines.take(timer, at));
            now = at;
            out.clear();
            tx.on_timer(timer, cfg, at, out);
            sends.extend(out.sends.iter().map(|_| at - t0));
            if out.terminated {
                break;
            }
        }
        (sends, now - t0)
    }

    #[test]
    fn automatic_100_after_200ms_unless_tu_answers() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = ServerInvite::start(trying(), false, &cfg, t0, &mut out);
        assert!(out.sends.is_empty());
        assert_eq!(tx.deadlines.get(Timer::Trying), Some(t0 + ms(200)));
        tx.on_timer(Timer::Trying, &cfg, t0 + ms(200), &mut out);
        assert_eq!(out.sends.len(), 1);
        assert!(out.sends[0].starts_with(b"SIP/2.0 100 Trying"));
        // A retransmitted INVITE gets the 100 again.
        out.clear();
        tx.on_request(&mut out);
        assert_eq!(out.sends.len(), 1);

        let mut out = Out::default();
        let mut tx = ServerInvite::start(trying(), false, &cfg, t0, &mut out);
        tx.send_response(&resp(180), &cfg, t0 + ms(50), &mut out)
            .unwrap();
        assert_eq!(tx.deadlines.get(Timer::Trying), None);
        out.clear();
        tx.on_request(&mut out);
        assert!(out.sends[0].starts_with(b"SIP/2.0 180 Ringing"));
    }

    #[test]
    fn timer_g_doubles_to_t2_until_h() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = ServerInvite::start(trying(), false, &cfg, t0, &mut out);
        tx.send_response(&resp(486), &cfg, t0, &mut out).unwrap();
        assert_eq!(tx.state(), State::Completed);
        assert_eq!(tx.to_tag(), resp(486).to_addr().unwrap().unwrap().tag());
        let (sends, end) = run(&mut tx, &cfg, t0, &mut out);
        assert_eq!(
            sends,
            [
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
            .map(ms)
        );
        assert_eq!(end, ms(32_000));
        assert!(matches!(out.tu[..], [TuEvent::Timeout(Timer::H)]));
    }

    #[test]
    fn ack_confirms_then_timer_i() {
        let cfg = Config::default();
        let t0 = Instant::now();
        for (reliable, i) in [(false, Some(ms(6_000))), (true, None)] {
            let mut out = Out::default();
            let mut tx = ServerInvite::start(trying(), reliable, &cfg, t0, &mut out);
            tx.send_response(&resp(404), &cfg, t0, &mut out).unwrap();
            assert_eq!(tx.deadlines.get(Timer::G).is_some(), !reliable);
            assert_eq!(tx.deadlines.get(Timer::H), Some(t0 + ms(32_000)));
            out.clear();
            tx.on_request(&mut out);
            assert!(
                out.sends[0].starts_with(b"SIP/2.0 404"),
                "INVITE retransmission answered"
            );
            out.clear();
            tx.on_ack(invite(), &cfg, t0 + ms(1_000), &mut out);
            assert_eq!(out.terminated, reliable);
            assert!(out.tu.is_empty(), "ACK for non-2xx absorbed");
            if !reliable {
                assert_eq!(tx.state(), State::Confirmed);
                assert_eq!(tx.deadlines.get(Timer::I).map(|at| at - t0), i);
                assert_eq!(tx.deadlines.get(Timer::G), None);
                out.clear();
                tx.on_ack(invite(), &cfg, t0 + ms(1_500), &mut out);
                tx.on_request(&mut out);
                assert!(out.sends.is_empty() && out.tu.is_empty());
                let (_, end) = run(&mut tx, &cfg, t0, &mut out);
                assert_eq!(end, ms(6_000));
                assert!(out.terminated);
            }
        }
    }

    #[test]
    fn accepted_absorbs_invites_passes_acks_and_2xx() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = ServerInvite::start(trying(), true, &cfg, t0, &mut out);
        tx.send_response(&resp(200), &cfg, t0 + ms(10), &mut out)
            .unwrap();
        assert_eq!(tx.state(), State::Accepted);
        assert_eq!(tx.deadlines.get(Timer::L), Some(t0 + ms(32_010)));
        out.clear();
        tx.on_request(&mut out);
        assert!(out.sends.is_empty(), "retransmitted INVITE absorbed");
        tx.send_response(&resp(200), &cfg, t0 + ms(500), &mut out)
            .unwrap();
        assert_eq!(
            out.sends.len(),
            1,
            "TU retransmits 2xx through the transaction"
        );
        assert_eq!(
            tx.send_response(&resp(486), &cfg, t0 + ms(600), &mut out),
            Err(TxError::InvalidState)
        );
        out.clear();
        tx.on_ack(invite(), &cfg, t0 + ms(700), &mut out);
        assert!(matches!(out.tu[..], [TuEvent::Ack(_)]));
        out.clear();
        tx.on_transport_error(&mut out);
        assert!(!out.terminated, "Accepted survives transport errors");
        let (_, end) = run(&mut tx, &cfg, t0, &mut out);
        assert_eq!(end, ms(32_010));
        assert!(out.terminated);
    }

    #[test]
    fn non_invite_absorbs_then_resends_last_then_j() {
        let cfg = Config::default();
        let t0 = Instant::now();
        for (reliable, j) in [(false, Some(ms(32_100))), (true, None)] {
            let mut out = Out::default();
            let mut tx = ServerNonInvite::start(reliable, &cfg, t0, &mut out);
            tx.on_request(&mut out);
            assert!(out.sends.is_empty(), "Trying absorbs retransmissions");
            tx.send_response(&resp(100), &cfg, t0, &mut out).unwrap();
            assert_eq!(tx.state(), State::Proceeding);
            out.clear();
            tx.on_request(&mut out);
            assert!(out.sends[0].starts_with(b"SIP/2.0 100"));
            out.clear();
            tx.send_response(&resp(200), &cfg, t0 + ms(100), &mut out)
                .unwrap();
            assert_eq!(out.terminated, reliable);
            assert_eq!(tx.deadlines.get(Timer::J).map(|at| at - t0), j);
            if !reliable {
                out.clear();
                tx.on_request(&mut out);
                assert!(out.sends[0].starts_with(b"SIP/2.0 200"));
                assert_eq!(
                    tx.send_response(&resp(500), &cfg, t0, &mut out),
                    Err(TxError::InvalidState)
                );
                out.clear();
                tx.on_timer(Timer::J, &mut out);
                assert!(out.terminated);
            }
        }
    }

    #[test]
    fn unanswered_requests_do_not_leak() {
        let t0 = Instant::now();
        let cfg = Config::default();
        let mut out = Out::default();
        let mut tx = ServerNonInvite::start(false, &cfg, t0, &mut out);
        assert_eq!(tx.deadlines.get(Timer::Unanswered), Some(t0 + ms(32_000)));
        tx.on_timer(Timer::Unanswered, &mut out);
        assert!(out.terminated);
        assert!(matches!(out.tu[..], [TuEvent::Timeout(Timer::Unanswered)]));
        // Answered in time: the guard is disarmed.
        let mut out = Out::default();
        let mut tx = ServerNonInvite::start(false, &cfg, t0, &mut out);
        tx.send_response(&resp(200), &cfg, t0, &mut out).unwrap();
        assert_eq!(tx.deadlines.get(Timer::Unanswered), None);

        let mut out = Out::default();
        let tx = ServerInvite::start(trying(), false, &cfg, t0, &mut out);
        assert_eq!(
            tx.deadlines.get(Timer::Unanswered),
            None,
            "INVITEs may ring forever by default"
        );
        let limited = Config {
            invite_answer_limit: Some(Duration::from_secs(300)),
            ..cfg
        };
        let mut tx = ServerInvite::start(trying(), false, &limited, t0, &mut out);
        assert_eq!(tx.deadlines.get(Timer::Unanswered), Some(t0 + ms(300_000)));
        tx.send_response(&resp(180), &limited, t0, &mut out)
            .unwrap();
        assert!(
            tx.deadlines.get(Timer::Unanswered).is_some(),
            "provisionals do not count"
        );
        out.clear();
        tx.on_timer(Timer::Unanswered, &limited, t0 + ms(300_000), &mut out);
        assert!(out.terminated);
    }

    #[test]
    fn transport_error_terminates_non_accepted() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = ServerInvite::start(trying(), false, &cfg, t0, &mut out);
        tx.on_transport_error(&mut out);
        assert!(out.terminated);
        let mut out = Out::default();
        let mut tx = ServerNonInvite::start(false, &cfg, t0, &mut out);
        tx.on_transport_error(&mut out);
        assert!(out.terminated);
        assert!(matches!(out.tu[..], [TuEvent::TransportError]));
    }
}
