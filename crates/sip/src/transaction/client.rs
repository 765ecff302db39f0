//! Client transactions: INVITE (RFC 3261 §17.1.1 with the RFC 6026 Accepted
//! state) and non-INVITE (§17.1.2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::State;
use super::build::ack_for_non_2xx;
use super::timers::{Config, Deadlines, Out, Timer, TuEvent};
use crate::message::{Request, Response};

/// INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    state: State,
    reliable: bool,
    /// Kept until a final response: the ACK and a CANCEL are built from it.
    request: Option<Box<Request>>,
    /// The serialized INVITE, kept while Timer A may retransmit it.
    bytes: Option<Arc<[u8]>>,
    /// The ACK for a non-2xx final response (Completed).
    ack: Option<Arc<[u8]>>,
    interval: Duration,
    pub deadlines: Deadlines,
}

impl ClientInvite {
    /// Sends the INVITE and enters Calling (Timers A, B and optionally C).
    pub fn start(
        request: Request,
        bytes: Arc<[u8]>,
        reliable: bool,
        cfg: &Config,
        now: Instant,
        out: &mut Out,
    ) -> Self {
        out.sends.push(bytes.clone());
        let mut deadlines = Deadlines::default();
        let interval = cfg.retransmit_initial(reliable).unwrap_or(Duration::ZERO);
        if !reliable {
            deadlines.arm(Timer::A, now + interval, out);
        }
        deadlines.arm(Timer::B, now + cfg.timer_b(), out);
        if let Some(c) = cfg.timer_c {
            deadlines.arm(Timer::C, now + c, out);
        }
        ClientInvite {
            state: State::Calling,
            reliable,
            request: Some(Box::new(request)),
            bytes: (!reliable).then_some(bytes),
            ack: None,
            interval,
            deadlines,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The INVITE, until a final response arrives.
    pub fn request(&self) -> Option<&Request> {
        self.request.as_deref()
    }

    fn terminate(&mut self, out: &mut Out) {
        self.deadlines.clear();
        self.request = None;
        self.bytes = None;
        self.ack = None;
        out.terminated = true;
    }

    /// Leaves Calling/Proceeding: no more retransmissions, B or C.
    fn leave_pending(&mut self) {
        self.deadlines.disarm(Timer::A);
        self.deadlines.disarm(Timer::B);
        self.deadlines.disarm(Timer::C);
        self.deadlines.disarm(Timer::Unanswered);
        self.bytes = None;
    }

    pub fn on_response(&mut self, resp: Response, cfg: &Config, now: Instant, out: &mut Out) {
        let status = resp.status;
        match self.state {
            State::Calling | State::Proceeding if status.is_provisional() => {
                if self.state == State::Calling {
                    self.state = State::Proceeding;
                    self.deadlines.disarm(Timer::A);
                    self.deadlines.disarm(Timer::B);
                    self.bytes = None;
                }
                if let Some(c) = cfg.timer_c {
                    self.deadlines.arm(Timer::C, now + c, out);
                }
                out.tu.push(TuEvent::Response(resp));
            }
            State::Calling | State::Proceeding if status.is_success() => {
                // RFC 6026: wait in Accepted so 2xx retransmissions and
                // forked 2xx reach the TU, which ACKs them itself.
                self.leave_pending();
                self.request = None;
                self.state = State::Accepted;
                self.deadlines.arm(Timer::M, now + cfg.timer_m(), out);
                out.tu.push(TuEvent::Response(resp));
            }
            State::Calling | State::Proceeding => {
                self.leave_pending();
                let ack = self
                    .request
                    .take()
                    .and_then(|inv| ack_for_non_2xx(&inv, &resp).ok())
                    .map(|a| Arc::<[u8]>::from(a.to_bytes()));
                if let Some(ack) = &ack {
                    out.sends.push(ack.clone());
                }
                self.ack = ack;
                self.state = State::Completed;
                out.tu.push(TuEvent::Response(resp));
                let d = cfg.timer_d(self.reliable);
                if d.is_zero() {
                    self.terminate(out);
                } else {
                    self.deadlines.arm(Timer::D, now + d, out);
                }
            }
            State::Accepted if status.is_success() => out.tu.push(TuEvent::Response(resp)),
            State::Completed if status.is_success() => {
                // A 2xx from another fork after a non-2xx: the TU must ACK
                // and BYE it, so it has to see it.
                out.tu.push(TuEvent::Response(resp));
            }
            State::Completed if status.is_final() => {
                // A retransmitted final response: ACK again, tell nobody.
                if let Some(ack) = &self.ack {
                    out.sends.push(ack.clone());
                }
            }
            _ => {}
        }
    }

    /// A CANCEL for this INVITE went out: RFC 3261 §9.1 gives the final
    /// response 64*T1 to arrive before the transaction is destroyed.
    pub fn cancel_sent(&mut self, cfg: &Config, now: Instant, out: &mut Out) {
        if matches!(self.state, State::Calling | State::Proceeding) {
            self.deadlines
                .arm(Timer::Unanswered, now + cfg.t1x64(), out);
        }
    }

    pub fn on_timer(&mut self, timer: Timer, cfg: &Config, now: Instant, out: &mut Out) {
        match (timer, self.state) {
            (Timer::Unanswered, State::Calling | State::Proceeding) => {
                out.tu.push(TuEvent::Timeout(Timer::Unanswered));
                self.terminate(out);
            }
            (Timer::A, State::Calling) => {
                if let Some(b) = &self.bytes {
                    out.sends.push(b.clone());
                }
                self.interval = cfg.next_a(self.interval);
                self.deadlines.arm(Timer::A, now + self.interval, out);
            }
            (Timer::B, State::Calling) | (Timer::C, State::Calling) => {
                out.tu.push(TuEvent::Timeout(timer));
                self.terminate(out);
            }
            (Timer::C, State::Proceeding) => out.tu.push(TuEvent::Timeout(Timer::C)),
            (Timer::D, State::Completed) | (Timer::M, State::Accepted) => self.terminate(out),
            _ => {}
        }
    }

    pub fn on_transport_error(&mut self, out: &mut Out) {
        out.tu.push(TuEvent::TransportError);
        self.terminate(out);
    }
}

/// Non-INVITE client transaction. `Pending` is used for a CANCEL that waits
/// for the INVITE's first provisional response before it may be sent.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    state: State,
    reliable: bool,
    bytes: Option<Arc<[u8]>>,
    interval: Duration,
    pub deadlines: Deadlines,
}

impl ClientNonInvite {
    /// A transaction that has not sent anything yet.
    pub fn pending(bytes: Arc<[u8]>, reliable: bool) -> Self {
        ClientNonInvite {
            state: State::Pending,
            reliable,
            bytes: Some(bytes),
            interval: Duration::ZERO,
            deadlines: Deadlines::default(),
        }
    }

    /// Sends the request and enters Trying (Timers E and F).
    pub fn start(
        bytes: Arc<[u8]>,
        reliable: bool,
        cfg: &Config,
        now: Instant,
        out: &mut Out,
    ) -> Self {
        let mut t = Self::pending(bytes, reliable);
        t.begin(cfg, now, out);
        t
    }

    /// Pending → Trying.
    pub fn begin(&mut self, cfg: &Config, now: Instant, out: &mut Out) {
        if self.state != State::Pending {
            return;
        }
        self.state = State::Trying;
        if let Some(b) = &self.bytes {
            out.sends.push(b.clone());
        }
        if let Some(e) = cfg.retransmit_initial(self.reliable) {
            self.interval = e;
            self.deadlines.arm(Timer::E, now + e, out);
        } else {
            self.bytes = None;
        }
        self.deadlines.arm(Timer::F, now + cfg.timer_f(), out);
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn terminate(&mut self, out: &mut Out) {
        self.deadlines.clear();
        self.bytes = None;
        out.terminated = true;
    }

    pub fn on_response(&mut self, resp: Response, cfg: &Config, now: Instant, out: &mut Out) {
        match self.state {
            State::Trying | State::Proceeding if resp.status.is_provisional() => {
                self.state = State::Proceeding;
                out.tu.push(TuEvent::Response(resp));
            }
            State::Trying | State::Proceeding => {
                self.state = State::Completed;
                self.deadlines.disarm(Timer::E);
                self.deadlines.disarm(Timer::F);
                self.bytes = None;
                out.tu.push(TuEvent::Response(resp));
                let k = cfg.timer_k(self.reliable);
                if k.is_zero() {
                    self.terminate(out);
                } else {
                    self.deadlines.arm(Timer::K, now + k, out);
                }
            }
            // Completed absorbs retransmitted responses; Pending has sent nothing.
            _ => {}
        }
    }

    pub fn on_timer(&mut self, timer: Timer, cfg: &Config, now: Instant, out: &mut Out) {
        match (timer, self.state) {
            (Timer::E, State::Trying | State::Proceeding) => {
                if let Some(b) = &self.bytes {
                    out.sends.push(b.clone());
                }
                self.interval = if self.state == State::Proceeding {
                    cfg.t2
                } else {
                    cfg.next_capped(self.interval)
                };
                self.deadlines.arm(Timer::E, now + self.interval, out);
            }
            (Timer::F, State::Trying | State::Proceeding) => {
                out.tu.push(TuEvent::Timeout(Timer::F));
                self.terminate(out);
            }
            (Timer::K, State::Completed) => self.terminate(out),
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
    use crate::message::{Method, StatusCode};
    use crate::transaction::timers::ms;
    use crate::{Limits, Message, parse_datagram};

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bKc1\r\nMax-Forwards: 70\r\n\
From: <sip:a@a.example>;tag=f1\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\n\
CSeq: 1 INVITE\r\nRoute: <sip:p.example;lr>\r\n\r\n";

    fn invite() -> Request {
        match parse_datagram(INVITE.as_bytes(), &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn resp(code: u16) -> Response {
        let mut r = invite().response(StatusCode::new(code).unwrap());
        if code > 100 {
            r.set_to_tag("t1");
        }
        r
    }

    fn start_invite(reliable: bool, cfg: &Config, t0: Instant, out: &mut Out) -> ClientInvite {
        let req = invite();
        let bytes: Arc<[u8]> = req.to_bytes().into();
        ClientInvite::start(req, bytes, reliable, cfg, t0, out)
    }

    #[test]
    fn timer_a_doubles_until_timer_b() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = start_invite(false, &cfg, t0, &mut out);
        assert_eq!(out.sends.len(), 1);
        let mut sends = vec![];
        let mut now = t0;
        while let Some((timer, at)) = tx.deadlines.earliest() {
            assert!(tx.deadlines.take(timer, at));
            now = at;
            out.clear();
            tx.on_timer(timer, &cfg, at, &mut out);
            for _ in &out.sends {
                sends.push(at - t0);
            }
            if out.terminated {
                assert!(matches!(out.tu[..], [TuEvent::Timeout(Timer::B)]));
                break;
            }
        }
        assert_eq!(sends, [500, 1500, 3500, 7500, 15500, 31500].map(ms));
        assert_eq!(now - t0, ms(32_000));
    }

    #[test]
    fn reliable_invite_has_no_timer_a_and_zero_timer_d() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = start_invite(true, &cfg, t0, &mut out);
        assert_eq!(tx.deadlines.get(Timer::A), None);
        assert_eq!(tx.deadlines.get(Timer::B), Some(t0 + ms(32_000)));
        out.clear();
        tx.on_response(resp(486), &cfg, t0 + ms(10), &mut out);
        assert_eq!(out.sends.len(), 1, "ACK sent");
        assert!(out.terminated, "Timer D is zero on reliable transports");
    }

    #[test]
    fn non_2xx_is_acked_by_the_transaction_and_retransmissions_absorbed() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = start_invite(false, &cfg, t0, &mut out);
        out.clear();
        tx.on_response(resp(180), &cfg, t0 + ms(100), &mut out);
        assert_eq!(tx.state(), State::Proceeding);
        assert!(matches!(&out.tu[..], [TuEvent::Response(r)] if r.status.as_u16() == 180));
        assert_eq!(tx.deadlines.get(Timer::A), None);
        assert_eq!(tx.deadlines.get(Timer::B), None);
        out.clear();
        tx.on_response(resp(486), &cfg, t0 + ms(200), &mut out);
        assert_eq!(tx.state(), State::Completed);
        assert_eq!(out.tu.len(), 1);
        assert_eq!(tx.deadlines.get(Timer::D), Some(t0 + ms(32_200)));
        let ack = match parse_datagram(&out.sends[0], &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!(),
        };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.top_via().unwrap().unwrap().branch(), Some("z9hG4bKc1"));
        assert_eq!(ack.to_addr().unwrap().unwrap().tag(), Some("t1"));
        assert_eq!(ack.routes().unwrap().len(), 1);
        let first_ack = out.sends[0].clone();
        out.clear();
        tx.on_response(resp(486), &cfg, t0 + ms(300), &mut out);
        assert!(out.tu.is_empty(), "retransmitted final not passed up");
        assert_eq!(out.sends, [first_ack]);
        out.clear();
        tx.on_response(resp(200), &cfg, t0 + ms(400), &mut out);
        assert!(
            matches!(&out.tu[..], [TuEvent::Response(r)] if r.status.is_success()),
            "late forked 2xx reaches the TU"
        );
        assert!(out.sends.is_empty());
        out.clear();
        tx.on_timer(Timer::D, &cfg, t0 + ms(32_200), &mut out);
        assert!(out.terminated);
    }

    #[test]
    fn accepted_passes_every_2xx_until_timer_m() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = start_invite(false, &cfg, t0, &mut out);
        out.clear();
        tx.on_response(resp(200), &cfg, t0 + ms(50), &mut out);
        assert_eq!(tx.state(), State::Accepted);
        assert!(out.sends.is_empty(), "no ACK for 2xx from the transaction");
        assert_eq!(tx.deadlines.get(Timer::M), Some(t0 + ms(32_050)));
        assert_eq!(tx.deadlines.get(Timer::A), None);
        out.clear();
        tx.on_response(resp(200), &cfg, t0 + ms(550), &mut out);
        assert_eq!(out.tu.len(), 1, "retransmitted 2xx reaches the TU");
        out.clear();
        tx.on_response(resp(486), &cfg, t0 + ms(600), &mut out);
        assert!(out.tu.is_empty() && out.sends.is_empty());
        tx.on_timer(Timer::M, &cfg, t0 + ms(32_050), &mut out);
        assert!(out.terminated);
    }

    #[test]
    fn timer_c_resets_on_provisional_and_reports() {
        let cfg = Config {
            timer_c: Some(Duration::from_secs(180)),
            ..Config::default()
        };
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = start_invite(false, &cfg, t0, &mut out);
        assert_eq!(tx.deadlines.get(Timer::C), Some(t0 + ms(180_000)));
        tx.on_response(resp(180), &cfg, t0 + ms(1000), &mut out);
        assert_eq!(tx.deadlines.get(Timer::C), Some(t0 + ms(181_000)));
        out.clear();
        tx.on_timer(Timer::C, &cfg, t0 + ms(181_000), &mut out);
        assert!(matches!(out.tu[..], [TuEvent::Timeout(Timer::C)]));
        assert!(!out.terminated);
    }

    #[test]
    fn cancelled_invite_without_final_is_destroyed_after_64_t1() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = start_invite(false, &cfg, t0, &mut out);
        tx.on_response(resp(180), &cfg, t0 + ms(100), &mut out);
        assert_eq!(tx.deadlines.earliest(), None, "Proceeding waits forever...");
        tx.cancel_sent(&cfg, t0 + ms(1_000), &mut out);
        assert_eq!(tx.deadlines.get(Timer::Unanswered), Some(t0 + ms(33_000)));
        out.clear();
        tx.on_timer(Timer::Unanswered, &cfg, t0 + ms(33_000), &mut out);
        assert!(out.terminated, "...until a CANCEL goes unanswered (§9.1)");
        assert!(matches!(out.tu[..], [TuEvent::Timeout(Timer::Unanswered)]));
        // A final response in time disarms it.
        let mut tx = start_invite(false, &cfg, t0, &mut out);
        tx.on_response(resp(180), &cfg, t0, &mut out);
        tx.cancel_sent(&cfg, t0, &mut out);
        tx.on_response(resp(487), &cfg, t0 + ms(10), &mut out);
        assert_eq!(tx.deadlines.get(Timer::Unanswered), None);
    }

    #[test]
    fn transport_error_terminates() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = start_invite(false, &cfg, t0, &mut out);
        out.clear();
        tx.on_transport_error(&mut out);
        assert!(out.terminated);
        assert!(matches!(out.tu[..], [TuEvent::TransportError]));
        assert!(tx.request().is_none());
    }

    fn run(
        tx: &mut ClientNonInvite,
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
    fn timer_e_doubles_to_t2_then_f() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx =
            ClientNonInvite::start(b"OPTIONS".as_slice().into(), false, &cfg, t0, &mut out);
        assert_eq!(out.sends.len(), 1);
        let (sends, end) = run(&mut tx, &cfg, t0, &mut out);
        assert_eq!(
            sends,
            [
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
            .map(ms)
        );
        assert_eq!(end, ms(32_000));
        assert!(matches!(out.tu[..], [TuEvent::Timeout(Timer::F)]));
    }

    #[test]
    fn timer_e_uses_t2_in_proceeding() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx =
            ClientNonInvite::start(b"REGISTER".as_slice().into(), false, &cfg, t0, &mut out);
        out.clear();
        tx.on_response(resp(100), &cfg, t0 + ms(100), &mut out);
        assert_eq!(tx.state(), State::Proceeding);
        let (sends, _) = run(&mut tx, &cfg, t0, &mut out);
        // First E still at T1 (armed in Trying), then T2 steps.
        assert_eq!(
            sends,
            [500, 4500, 8500, 12500, 16500, 20500, 24500, 28500].map(ms)
        );
    }

    #[test]
    fn non_invite_completed_waits_k_then_terminates() {
        let cfg = Config::default();
        let t0 = Instant::now();
        for (reliable, k) in [(false, Some(ms(5_100))), (true, None)] {
            let mut out = Out::default();
            let mut tx =
                ClientNonInvite::start(b"BYE".as_slice().into(), reliable, &cfg, t0, &mut out);
            assert_eq!(tx.deadlines.get(Timer::E).is_some(), !reliable);
            out.clear();
            tx.on_response(resp(200), &cfg, t0 + ms(100), &mut out);
            assert_eq!(out.tu.len(), 1);
            assert_eq!(out.terminated, reliable);
            assert_eq!(tx.deadlines.get(Timer::K).map(|at| at - t0), k);
            if !reliable {
                out.clear();
                tx.on_response(resp(200), &cfg, t0 + ms(200), &mut out);
                assert!(out.tu.is_empty(), "retransmission absorbed");
                let (sends, end) = run(&mut tx, &cfg, t0, &mut out);
                assert!(sends.is_empty());
                assert_eq!(end, ms(5_100));
                assert!(out.terminated);
            }
        }
    }

    #[test]
    fn pending_sends_nothing_until_begun() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut out = Out::default();
        let mut tx = ClientNonInvite::pending(b"CANCEL".as_slice().into(), false);
        assert_eq!(tx.state(), State::Pending);
        tx.on_response(resp(200), &cfg, t0, &mut out);
        assert!(out.tu.is_empty());
        assert_eq!(tx.deadlines.earliest(), None);
        tx.begin(&cfg, t0 + ms(10), &mut out);
        assert_eq!(tx.state(), State::Trying);
        assert_eq!(out.sends.len(), 1);
        assert_eq!(tx.deadlines.get(Timer::F), Some(t0 + ms(32_010)));
    }
}
