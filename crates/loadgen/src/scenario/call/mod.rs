//! The `calls` scenario: half of the users register as callees and answer
//! every INVITE (180, then 200 with SDP after `--answer-delay`); the other
//! half place calls to them through the server, one paced operation per
//! call:
//!
//! ```text
//! caller                     server (B2BUA)                  callee
//! INVITE (SDP) ------------->
//!   <------------- 407 Proxy-Authenticate
//! ACK (same branch) -------->
//! INVITE + Proxy-Authorization ->
//!                                  INVITE (relay SDP) ----------->
//!                                  <----------------- 180, 200 (SDP)
//!   <------------- 200 (relay SDP)
//! ACK (new branch) --------->      ACK -------------------------->
//!            [hold: RTP both ways through the relay with --rtp]
//! BYE ---------------------->      BYE -------------------------->
//!   <------------- 200             <-------------------------- 200
//! ```
//!
//! (`--hangup callee` makes the callee send the BYE instead.) A call
//! completes when both legs have ended; its setup latency runs from the
//! first INVITE to the 200, its teardown latency from the BYE to its 200.
//!
//! Like `register`, this is a sans-IO state machine fed with `now`. Every
//! call lives in a slot of a table; the slot and its epoch (bumped on
//! reuse) are written into the Via branch of each request and the user
//! part of each Contact we hand out, so replies and in-dialog requests
//! find their call without a lookup. The callee's INVITE is matched by
//! the Request-URI user (the callee's registered Contact): each callee
//! takes one call at a time, so it finds the call expecting it.

mod callee;
mod caller;
mod flow;
pub mod msg;
mod state;

use state::{
    Call, Phase, T_ANSWER, T_BYE, T_GUARD, T_HANGUP, T_RETX_200, T_RETX_A, T_RETX_B, Timer,
};
pub use state::{CallConfig, CallStats, Hangup, MediaOut};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::register::{Register, RegisterConfig};
use super::{Rng, Scenario};
use crate::report::{Failure, Metrics};
use crate::rtp::{MediaCmd, StreamSpec};
use crate::sdp;
use crate::transport::Wire;
use crate::users::User;
use msg::Side;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Register,
    Calls,
}

pub struct Calls {
    cfg: CallConfig,
    domain: String,
    callers: Vec<User>,
    callees: Vec<User>,
    callee_by_name: HashMap<String, u32>,
    /// Local address of each SIP source, as text.
    local: Vec<String>,
    /// The shared RTP sockets' addresses (SDP c=/m=).
    rtp_local: Vec<SocketAddr>,
    mode: Mode,
    register: Register,
    calls: Vec<Call>,
    free_slots: Vec<u32>,
    free_callers: VecDeque<u32>,
    free_callees: VecDeque<u32>,
    /// The call each callee is taking, if any.
    callee_call: Vec<Option<u32>>,
    timers: BinaryHeap<Reverse<Timer>>,
    in_flight: usize,
    active: usize,
    /// `--concurrent` mode: every call hangs up at this moment.
    hangup_at: Option<Instant>,
    run: u32,
    rng: Rng,
    metrics: Metrics,
    pub stats: CallStats,
    media: Option<Box<dyn MediaOut>>,
    last_now: Instant,
}

impl Calls {
    /// Users split in two: the first half call, the second half answer.
    /// `local[i]` is source `i`; `rtp_local` the RTP sockets (at least one).
    pub fn new(
        cfg: CallConfig,
        users: Vec<User>,
        local: Vec<SocketAddr>,
        rtp_local: Vec<SocketAddr>,
        media: Option<Box<dyn MediaOut>>,
        mut rng: Rng,
    ) -> Result<Self, String> {
        if users.len() < 2 {
            return Err("calls need at least 2 users (half call, half answer)".into());
        }
        if local.is_empty() || rtp_local.is_empty() {
            return Err("calls need a SIP source and an RTP socket".into());
        }
        let domain = users[0].domain.clone();
        if let Some(u) = users.iter().find(|u| u.domain != domain) {
            return Err(format!(
                "calls are placed within one tenant: user {} is in {}, not {domain}",
                u.username, u.domain
            ));
        }
        let mut callers = users;
        let callees = callers.split_off(callers.len() / 2);
        let callee_by_name = callees
            .iter()
            .enumerate()
            .map(|(i, u)| (u.username.clone(), i as u32))
            .collect();
        let register = Register::new(
            RegisterConfig {
                transport: cfg.transport,
                expires: cfg.expires,
                max_in_flight: callees.len(),
                timers: cfg.timers,
            },
            callees.clone(),
            local.clone(),
            Rng::new(rng.next_u64()),
        );
        let now = Instant::now();
        let stats = CallStats {
            callers: callers.len(),
            ..CallStats::default()
        };
        Ok(Calls {
            free_callers: (0..callers.len() as u32).collect(),
            callee_call: vec![None; callees.len()],
            cfg,
            domain,
            callers,
            callees,
            callee_by_name,
            local: local.iter().map(SocketAddr::to_string).collect(),
            rtp_local,
            mode: Mode::Register,
            register,
            calls: Vec::new(),
            free_slots: Vec::new(),
            free_callees: VecDeque::new(),
            timers: BinaryHeap::new(),
            in_flight: 0,
            active: 0,
            hangup_at: None,
            run: rng.next_u64() as u32,
            rng,
            metrics: Metrics::default(),
            stats,
            media,
            last_now: now,
        })
    }

    pub fn callees(&self) -> usize {
        self.callees.len()
    }

    /// Registration metrics (the first phase).
    pub fn register_metrics(&self) -> &Metrics {
        self.register.metrics()
    }

    /// Ends the registration phase: from now on `start` places calls, to
    /// the callees that registered. Returns how many did.
    pub fn begin_calls(&mut self) -> usize {
        self.register.finish();
        self.free_callees = (0..self.callees.len() as u32)
            .filter(|i| self.register.registered(*i as usize))
            .collect();
        self.stats.callees_registered = self.free_callees.len();
        self.mode = Mode::Calls;
        self.free_callees.len()
    }

    /// `--concurrent` mode: every call hangs up at `at` instead of after
    /// its own hold time.
    pub fn set_hangup_at(&mut self, at: Instant) {
        self.hangup_at = Some(at);
    }

    fn caller_source(&self, caller: u32) -> usize {
        caller as usize % self.local.len()
    }

    fn callee_source(&self, callee: u32) -> usize {
        self.register.source_of(callee as usize)
    }

    fn rtp_socket(&self, slot: u32, side: Side) -> usize {
        let s = 2 * slot as usize + usize::from(side == Side::B);
        s % self.rtp_local.len()
    }

    fn arm(&mut self, at: Instant, slot: u32, kind: u8, seq: u32) {
        let epoch = self.calls[slot as usize].epoch;
        self.timers.push(Reverse((at, slot, epoch, kind, seq)));
    }

    /// Takes a free slot for a new call.
    fn alloc_slot(&mut self, now: Instant) -> u32 {
        if let Some(s) = self.free_slots.pop() {
            return s;
        }
        self.calls.push(Call::new(now));
        (self.calls.len() - 1) as u32
    }

    fn media_cmd(&mut self, cmd: MediaCmd) {
        if let Some(m) = self.media.as_mut() {
            m.command(cmd);
        }
    }

    /// Starts one side's RTP towards the relay address it was given.
    fn start_media(&mut self, slot: u32, side: Side) {
        if !self.cfg.rtp {
            return;
        }
        let c = &self.calls[slot as usize];
        let media = match side {
            Side::A => c.a_media.as_ref(),
            Side::B => c.b_media.as_ref(),
        };
        let Some(m) = media else { return };
        // A: the format the answer (200) chose; B: the one our answer chose
        let pt = m.first_g711().unwrap_or(sdp::PCMU);
        let id = 2 * slot + u32::from(side == Side::B);
        let spec = StreamSpec {
            id,
            epoch: c.epoch,
            socket: self.rtp_socket(slot, side),
            dest: m.addr,
            pt,
            ssrc: self.rng.next_u64() as u32,
        };
        match side {
            Side::A => self.calls[slot as usize].a_streaming = true,
            Side::B => self.calls[slot as usize].b_streaming = true,
        }
        self.media_cmd(MediaCmd::Start(spec));
    }

    fn stop_media(&mut self, slot: u32) {
        let c = &mut self.calls[slot as usize];
        let epoch = c.epoch;
        let (a, b) = (c.a_streaming, c.b_streaming);
        c.a_streaming = false;
        c.b_streaming = false;
        if a {
            let socket = self.rtp_socket(slot, Side::A);
            self.media_cmd(MediaCmd::Stop {
                id: 2 * slot,
                epoch,
                socket,
            });
        }
        if b {
            let socket = self.rtp_socket(slot, Side::B);
            self.media_cmd(MediaCmd::Stop {
                id: 2 * slot + 1,
                epoch,
                socket,
            });
        }
    }

    /// Ends a call: frees its users and its slot.
    fn release(&mut self, slot: u32, failure: Option<Failure>, now: Instant) {
        let c = &self.calls[slot as usize];
        if c.phase == Phase::Free {
            return;
        }
        if matches!(c.phase, Phase::Talking | Phase::Ending) && c.answered_at.is_some() {
            self.active -= 1;
        }
        let (caller, callee, started, answered) = (c.caller, c.callee, c.started, c.answered_at);
        self.stop_media(slot);
        match failure {
            Some(f) => self.metrics.fail(f, now),
            None => {
                let setup =
                    answered.map_or(Duration::ZERO, |a| a.saturating_duration_since(started));
                self.metrics.complete(setup, now);
            }
        }
        let c = &mut self.calls[slot as usize];
        c.phase = Phase::Free;
        c.epoch = c.epoch.wrapping_add(1);
        c.b_invite = None;
        self.free_slots.push(slot);
        self.free_callers.push_back(caller);
        if self.callee_call[callee as usize] == Some(slot) {
            self.callee_call[callee as usize] = None;
        }
        self.free_callees.push_back(callee);
        self.in_flight -= 1;
    }

    /// Completes the call when both legs have ended.
    fn maybe_complete(&mut self, slot: u32, now: Instant) {
        let c = &self.calls[slot as usize];
        if c.phase != Phase::Free && c.a_done && c.b_done {
            self.release(slot, None, now);
        }
    }

    /// The live call in `slot` of `epoch`, if it is still that call.
    fn live(&self, slot: u32, epoch: u32) -> bool {
        self.calls
            .get(slot as usize)
            .is_some_and(|c| c.epoch == epoch && c.phase != Phase::Free)
    }

    fn us(d: Duration) -> u64 {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    }
}

/// One event's access to the wire: the scenario's handlers send through it.
struct Out<'w> {
    wire: &'w dyn Wire,
    reliable: bool,
    send_errors: u64,
    broken: bool,
}

impl Out<'_> {
    fn send(&mut self, source: usize, bytes: &[u8]) {
        if self.wire.send(source, bytes).is_err() {
            self.send_errors += 1;
            if self.reliable {
                self.broken = true;
            }
        }
    }
}

impl Calls {
    fn out<'w>(&self, wire: &'w dyn Wire) -> Out<'w> {
        Out {
            wire,
            reliable: self.cfg.transport.reliable(),
            send_errors: 0,
            broken: false,
        }
    }

    fn settle(&mut self, out: Out<'_>) {
        self.metrics.send_errors += out.send_errors;
    }

    fn parse(&self, msg: &[u8]) -> Result<sip::Message, sip::ParseError> {
        let limits = sip::Limits::default();
        if self.cfg.transport.reliable() {
            sip::parse_stream_message(msg, &limits)
        } else {
            sip::parse_datagram(msg, &limits)
        }
    }

    fn start_call(&mut self, now: Instant, out: &mut Out<'_>) {
        self.metrics.attempted += 1;
        if self.metrics.first_start.is_none() {
            self.metrics.first_start = Some(now);
        }
        if self.in_flight >= self.cfg.max_concurrent {
            self.metrics.fail(Failure::Concurrency, now);
            return;
        }
        if self.free_callers.is_empty() || self.free_callees.is_empty() {
            self.metrics.fail(Failure::Call("users_exhausted"), now);
            return;
        }
        let (Some(caller), Some(callee)) =
            (self.free_callers.pop_front(), self.free_callees.pop_front())
        else {
            return;
        };
        let slot = self.alloc_slot(now);
        self.in_flight += 1;
        self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.in_flight);
        self.callee_call[callee as usize] = Some(slot);
        self.caller_invite(slot, caller, callee, now, out);
    }

    fn fire(&mut self, t: Timer, now: Instant, out: &mut Out<'_>) {
        let (_, slot, epoch, kind, seq) = t;
        if !self.live(slot, epoch) {
            return;
        }
        match kind {
            T_RETX_A => self.retransmit(slot, Side::A, seq, now, out),
            T_RETX_B => self.retransmit(slot, Side::B, seq, now, out),
            T_RETX_200 => self.callee_retransmit_200(slot, now, out),
            T_ANSWER => self.callee_answer(slot, now, out),
            T_HANGUP => self.hang_up(slot, now, out),
            T_BYE => self.send_bye(slot, now, out),
            T_GUARD => self.guard(slot, seq, now),
            _ => {}
        }
    }

    /// Retransmits the request of one side (Timer A/E), or fails the call
    /// at Timer B/F.
    fn on_response(&mut self, resp: &sip::Response, now: Instant, out: &mut Out<'_>) {
        let branch = resp.top_via().ok().flatten().and_then(|v| v.branch());
        let Some(branch) = branch else {
            self.metrics.stray += 1;
            return;
        };
        let Some((slot, epoch, txn)) = msg::parse_branch(branch, self.run) else {
            self.metrics.stray += 1;
            return;
        };
        if !self.live(slot, epoch) {
            self.metrics.stray += 1;
            return;
        }
        let code = resp.status.as_u16();
        match txn {
            msg::TXN_INVITE | msg::TXN_INVITE_AUTH => {
                self.caller_invite_response(slot, txn, resp, now, out);
            }
            msg::TXN_BYE_CALLER => self.bye_answered(slot, Side::A, code, now),
            msg::TXN_BYE_CALLEE => self.bye_answered(slot, Side::B, code, now),
            _ => self.metrics.stray += 1,
        }
    }

    fn on_request(&mut self, source: usize, req: &sip::Request, now: Instant, out: &mut Out<'_>) {
        use sip::Method;
        let user = req.uri.user().unwrap_or("");
        let dialog = msg::parse_contact_user(user);
        match (&req.method, dialog) {
            (Method::Invite, None) => self.callee_invite(source, req, now, out),
            (Method::Cancel, None) => self.callee_cancel(source, req, now, out),
            (Method::Ack, Some((Side::B, slot, epoch))) if self.live(slot, epoch) => {
                self.callee_ack(slot, now, out);
            }
            (Method::Ack, _) => {}
            (Method::Bye, Some((side, slot, epoch))) if self.live(slot, epoch) => {
                let ok = match side {
                    Side::A => {
                        req.headers.get("Call-ID").map(str::trim)
                            == Some(&self.calls[slot as usize].a_call_id)
                    }
                    Side::B => {
                        req.headers.get("Call-ID").map(str::trim)
                            == Some(&self.calls[slot as usize].b_call_id)
                    }
                };
                if ok {
                    respond(out, source, req, 200, None, None, None);
                    self.bye_in(slot, side, now);
                } else {
                    self.stats.unmatched_requests += 1;
                    respond(out, source, req, 481, None, None, None);
                }
            }
            (Method::Options, _) => {
                respond(out, source, req, 200, None, None, None);
            }
            // the previous call of a slot: a BYE whose 200 the server has
            // not seen yet (its retransmission) gets the 200 again
            (Method::Bye, Some((_, slot, epoch)))
                if self
                    .calls
                    .get(slot as usize)
                    .is_some_and(|c| c.epoch == epoch.wrapping_add(1)) =>
            {
                self.stats.bye_repeats += 1;
                respond(out, source, req, 200, None, None, None);
            }
            (Method::Bye, _) => {
                self.stats.unmatched_requests += 1;
                respond(out, source, req, 481, None, None, None);
            }
            _ => {
                self.stats.unmatched_requests += 1;
                respond(out, source, req, 501, None, None, None);
            }
        }
    }
}

/// Sends a response to `req` (Via, From, To, Call-ID, CSeq mirrored), with
/// our To tag, Contact and SDP when given. Returns the bytes sent.
fn respond(
    out: &mut Out<'_>,
    source: usize,
    req: &sip::Request,
    code: u16,
    to_tag: Option<&str>,
    contact: Option<&str>,
    sdp: Option<&[u8]>,
) -> Vec<u8> {
    let status = sip::StatusCode::new(code).unwrap_or(sip::StatusCode::SERVER_INTERNAL_ERROR);
    let mut r = match to_tag {
        Some(tag) => {
            let mut r = req.response(status);
            r.set_to_tag(tag);
            r
        }
        // in-dialog requests already carry our tag: no second one is added
        None => req.response_tagged(status),
    };
    if let Some(c) = contact {
        r.headers.push("Contact", c);
    }
    if let Some(body) = sdp {
        r = r.with_body("application/sdp", body.to_vec());
    }
    let bytes = r.to_bytes();
    out.send(source, &bytes);
    bytes
}

impl Scenario for Calls {
    fn name(&self) -> &'static str {
        "calls"
    }

    fn start(&mut self, k: u64, now: Instant, wire: &dyn Wire) {
        self.last_now = now;
        match self.mode {
            Mode::Register => self.register.start(k, now, wire),
            Mode::Calls => {
                let mut out = self.out(wire);
                self.start_call(now, &mut out);
                self.settle(out);
            }
        }
    }

    fn on_message(&mut self, source: usize, msg: &[u8], now: Instant, wire: &dyn Wire) {
        self.last_now = now;
        // registrations are answered on branches of their own
        if msg.starts_with(b"SIP/2.0 ") {
            let registration = self.mode == Mode::Register
                || super::scan::scan(msg).is_some_and(|r| r.branch.starts_with("z9hG4bKlg"));
            if registration {
                self.register.on_message(source, msg, now, wire);
                return;
            }
        }
        let parsed = match self.parse(msg) {
            Ok(m) => m,
            Err(_) => {
                self.metrics.malformed += 1;
                return;
            }
        };
        let mut out = self.out(wire);
        match &parsed {
            sip::Message::Response(r) => self.on_response(r, now, &mut out),
            sip::Message::Request(r) => self.on_request(source, r, now, &mut out),
        }
        self.settle(out);
    }

    fn on_timers(&mut self, now: Instant, wire: &dyn Wire) {
        self.last_now = now;
        self.register.on_timers(now, wire);
        let mut out = self.out(wire);
        while let Some(Reverse(t)) = self.timers.peek().copied() {
            if t.0 > now {
                break;
            }
            self.timers.pop();
            self.fire(t, now, &mut out);
        }
        self.settle(out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mine = self.timers.peek().map(|Reverse(t)| t.0);
        match (mine, self.register.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn in_flight(&self) -> usize {
        match self.mode {
            Mode::Register => self.register.in_flight(),
            Mode::Calls => self.in_flight,
        }
    }

    fn on_broken(&mut self, source: usize) {
        self.register.on_broken(source);
        let now = self.last_now;
        for slot in 0..self.calls.len() as u32 {
            let c = &self.calls[slot as usize];
            if c.phase == Phase::Free {
                continue;
            }
            if self.caller_source(c.caller) == source || self.callee_source(c.callee) == source {
                self.release(slot, Some(Failure::Transport), now);
            }
        }
    }

    fn finish(&mut self) {
        let now = self.last_now;
        for slot in 0..self.calls.len() as u32 {
            self.release(slot, Some(Failure::Unfinished), now);
        }
        self.timers.clear();
    }

    fn metrics(&self) -> &Metrics {
        match self.mode {
            Mode::Register => self.register.metrics(),
            Mode::Calls => &self.metrics,
        }
    }

    fn metrics_mut(&mut self) -> &mut Metrics {
        match self.mode {
            Mode::Register => self.register.metrics_mut(),
            Mode::Calls => &mut self.metrics,
        }
    }
}

#[cfg(test)]
mod tests;
