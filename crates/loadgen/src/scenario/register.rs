//! The `register` scenario: one operation is a full authenticated
//! registration of one user:
//!
//! REGISTER (no credentials) → 401 + WWW-Authenticate → REGISTER with
//! Authorization (CSeq + 1, nc=00000001, fresh cnonce) → 200.
//!
//! Latency runs from the first send to the final 200. Each user keeps its
//! Call-ID, From-tag and CSeq across refreshes and always registers from
//! the same source, so its Contact is stable. Over UDP each request is
//! retransmitted by RFC 3261 Timer E (T1 doubling up to T2) and the
//! operation fails at Timer F (64*T1).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::auth::{Algorithm, Challenge};

use super::scan::{Reply, scan};
use super::{Rng, Scenario};
use crate::report::{Failure, Metrics};
use crate::transport::{Transport, Wire};
use crate::users::User;

/// RFC 3261 timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

impl Timers {
    /// Timer F: a non-INVITE transaction gives up after 64*T1.
    pub fn timer_f(&self) -> Duration {
        self.t1 * 64
    }
}

#[derive(Debug, Clone)]
pub struct RegisterConfig {
    pub transport: Transport,
    pub expires: u32,
    /// Operations allowed in flight at once; a start above it fails.
    pub max_in_flight: usize,
    pub timers: Timers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// First REGISTER sent, waiting for the challenge.
    Challenge,
    /// Authorized REGISTER sent, waiting for the 200.
    Authorizing,
}

#[derive(Debug)]
struct Slot {
    phase: Phase,
    cseq: u32,
    /// Transaction number, part of the Via branch; bumps per request.
    txn: u32,
    /// First send of the registration (latency origin).
    started: Instant,
    /// First send of the current transaction (Timer F origin).
    txn_started: Instant,
    /// Current Timer E interval.
    interval: Duration,
    /// The current request, kept for retransmission.
    request: Vec<u8>,
    /// The header lines that never change for this user (From, To,
    /// Call-ID; then Contact, Expires), rendered on first use.
    fixed: String,
    /// Where the Contact line starts in `fixed` (CSeq goes before it).
    fixed_split: usize,
}

pub struct Register {
    cfg: RegisterConfig,
    users: Vec<User>,
    /// Local address of each source (Via sent-by, Contact), as text.
    local: Vec<String>,
    /// `sip:DOMAIN` of each user: Request-URI and digest `uri`.
    request_uri: Vec<String>,
    slots: Vec<Slot>,
    /// Each transaction's first timer (Timer E's first T1 on UDP, Timer F
    /// on TCP) is a constant delay, so these deadlines arrive in order: a
    /// FIFO. (deadline, user, txn); stale entries are skipped when due.
    first_timers: VecDeque<(Instant, u32, u32)>,
    /// Later retransmission timers, in a heap.
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    in_flight: usize,
    /// Distinguishes this run's Call-IDs and branches from any other.
    run: u32,
    rng: Rng,
    metrics: Metrics,
    /// The latest `now` seen, for failures noticed without one.
    last_now: Instant,
    /// Whether each user's latest registration succeeded.
    registered: Vec<bool>,
}

/// `z9hG4bK` + this prefix, then `RUN.USER.TXN` in hex.
const BRANCH_TAG: &str = "z9hG4bKlg";

impl Register {
    /// `local[i]` is the bound address of source `i`; user `u` sends from
    /// source `u % local.len()`.
    pub fn new(
        cfg: RegisterConfig,
        users: Vec<User>,
        local: Vec<SocketAddr>,
        mut rng: Rng,
    ) -> Self {
        assert!(!local.is_empty(), "at least one source");
        assert!(
            u32::try_from(users.len()).is_ok(),
            "user count fits the branch encoding"
        );
        let now = Instant::now();
        let n_users = users.len();
        let slots = users
            .iter()
            .map(|_| Slot {
                phase: Phase::Idle,
                cseq: 0,
                txn: 0,
                started: now,
                txn_started: now,
                interval: cfg.timers.t1,
                request: Vec::new(),
                fixed: String::new(),
                fixed_split: 0,
            })
            .collect();
        let run = rng.next_u64() as u32;
        let request_uri = users.iter().map(|u| format!("sip:{}", u.domain)).collect();
        Register {
            cfg,
            users,
            local: local.iter().map(SocketAddr::to_string).collect(),
            request_uri,
            slots,
            first_timers: VecDeque::new(),
            timers: BinaryHeap::new(),
            in_flight: 0,
            run,
            rng,
            metrics: Metrics::default(),
            last_now: now,
            registered: vec![false; n_users],
        }
    }

    /// Whether `user`'s latest registration succeeded (call scenarios only
    /// call users that are registered).
    pub fn registered(&self, user: usize) -> bool {
        self.registered.get(user).copied().unwrap_or(false)
    }

    pub fn source_of(&self, user: usize) -> usize {
        user % self.local.len()
    }

    /// Writes the REGISTER for `user` into its slot (the slot's CSeq and txn
    /// must already be set), with `authorization` when answering a challenge.
    fn build(&mut self, user: usize, authorization: Option<(&str, &str)>) {
        use std::fmt::Write as _;
        let local = &self.local[self.source_of(user)];
        let (run, cfg) = (self.run, &self.cfg);
        let (u, slot) = (&self.users[user], &mut self.slots[user]);
        // writes to a String or Vec cannot fail
        if slot.fixed.is_empty() {
            let (name, d) = (&u.username, &u.domain);
            let _ = write!(
                slot.fixed,
                "Max-Forwards: 70\r\n\
                 From: <sip:{name}@{d}>;tag={run:08x}{user:x}\r\n\
                 To: <sip:{name}@{d}>\r\n\
                 Call-ID: lg{run:08x}-{user:x}\r\n"
            );
            slot.fixed_split = slot.fixed.len();
            let _ = write!(
                slot.fixed,
                "Contact: <sip:{name}@{local};transport={}>\r\n\
                 Expires: {}\r\n",
                cfg.transport.param(),
                cfg.expires
            );
        }
        let (before_cseq, after_cseq) = slot.fixed.split_at(slot.fixed_split);
        let out = &mut slot.request;
        out.clear();
        out.extend_from_slice(b"REGISTER ");
        out.extend_from_slice(self.request_uri[user].as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/");
        out.extend_from_slice(cfg.transport.via().as_bytes());
        out.push(b' ');
        out.extend_from_slice(local.as_bytes());
        let _ = write!(
            out,
            ";rport;branch={BRANCH_TAG}{run:08x}.{user:x}.{:x}\r\n",
            slot.txn
        );
        out.extend_from_slice(before_cseq.as_bytes());
        let _ = write!(out, "CSeq: {} REGISTER\r\n", slot.cseq);
        out.extend_from_slice(after_cseq.as_bytes());
        if let Some((name, value)) = authorization {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"User-Agent: sb-loadgen\r\nContent-Length: 0\r\n\r\n");
    }

    /// Sends the slot's request and arms its timer. Returns false when the
    /// operation failed on the spot (reliable transport refused the send).
    fn send_new(&mut self, user: usize, now: Instant, wire: &dyn Wire) -> bool {
        let src = self.source_of(user);
        let slot = &mut self.slots[user];
        slot.txn_started = now;
        slot.interval = self.cfg.timers.t1;
        if let Err(_e) = wire.send(src, &slot.request) {
            if self.cfg.transport.reliable() {
                self.release(user, Failure::Transport);
                return false;
            }
            self.metrics.send_errors += 1;
        }
        let first = if self.cfg.transport.reliable() {
            self.cfg.timers.timer_f()
        } else {
            self.cfg.timers.t1
        };
        self.first_timers
            .push_back((now + first, user as u32, self.slots[user].txn));
        true
    }

    fn release(&mut self, user: usize, failure: Failure) {
        self.metrics.fail(failure, self.last_now);
        self.registered[user] = false;
        self.idle(user);
    }

    fn idle(&mut self, user: usize) {
        let slot = &mut self.slots[user];
        if slot.phase != Phase::Idle {
            slot.phase = Phase::Idle;
            self.in_flight -= 1;
        }
    }

    /// The user and transaction a response belongs to, from its top Via
    /// branch, if it is this run's.
    fn parse_branch(&self, branch: &str) -> Option<(usize, u32)> {
        let rest = branch.strip_prefix(BRANCH_TAG)?;
        let mut parts = rest.split('.');
        let run = u32::from_str_radix(parts.next()?, 16).ok()?;
        let user = usize::from_str_radix(parts.next()?, 16).ok()?;
        let txn = u32::from_str_radix(parts.next()?, 16).ok()?;
        (run == self.run && user < self.slots.len() && parts.next().is_none())
            .then_some((user, txn))
    }

    /// Answers the best challenge of a 401/407: SHA-256 if offered, else
    /// MD5, else any other the client can compute.
    fn answer(&mut self, user: usize, reply: &Reply<'_>) -> Option<(&'static str, String)> {
        let header = if reply.status == 407 {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let rank = |a: Algorithm| match a {
            Algorithm::Sha256 => 0,
            Algorithm::Md5 => 1,
            _ => 2,
        };
        let best = reply
            .challenges()
            .iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .min_by_key(|c| rank(c.algorithm))?;
        let u = &self.users[user];
        let cnonce = format!("{:016x}", self.rng.next_u64());
        let creds = best.answer(
            &u.username,
            &u.password,
            "REGISTER",
            &self.request_uri[user],
            1,
            &cnonce,
        );
        Some((header, creds.to_header_value()))
    }

    fn on_reply(&mut self, reply: &Reply<'_>, now: Instant, wire: &dyn Wire) {
        let Some((user, txn)) = self.parse_branch(reply.branch) else {
            self.metrics.stray += 1;
            return;
        };
        let slot = &mut self.slots[user];
        if slot.txn != txn || slot.phase == Phase::Idle {
            // a late or duplicated response to a finished transaction
            self.metrics.stray += 1;
            return;
        }
        let code = reply.status;
        if code < 200 {
            // Proceeding: retransmit at T2 from now on
            slot.interval = self.cfg.timers.t2;
            return;
        }
        match (slot.phase, code) {
            (_, 200..=299) => {
                let latency = now.saturating_duration_since(slot.started);
                self.metrics.complete(latency, now);
                self.registered[user] = true;
                self.idle(user);
            }
            (Phase::Challenge, 401 | 407) => match self.answer(user, reply) {
                Some((name, value)) => {
                    let slot = &mut self.slots[user];
                    slot.cseq = slot.cseq.wrapping_add(1);
                    slot.txn = slot.txn.wrapping_add(1);
                    slot.phase = Phase::Authorizing;
                    self.build(user, Some((name, &value)));
                    self.send_new(user, now, wire);
                }
                None => self.release(user, Failure::BadChallenge),
            },
            (_, code) => self.release(user, Failure::Status(code)),
        }
    }

    /// The earliest due timer, taken from whichever queue holds it.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32, u32)> {
        let fifo = self.first_timers.front().copied();
        let heap = self.timers.peek().map(|Reverse(t)| *t);
        match (fifo, heap) {
            (Some(f), Some(h)) if h.0 < f.0 => {
                (h.0 <= now).then(|| self.timers.pop().map(|r| r.0))?
            }
            (Some(f), _) => (f.0 <= now).then(|| self.first_timers.pop_front())?,
            (None, Some(h)) => (h.0 <= now).then(|| self.timers.pop().map(|r| r.0))?,
            (None, None) => None,
        }
    }
}

impl Scenario for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    fn start(&mut self, k: u64, now: Instant, wire: &dyn Wire) {
        self.last_now = now;
        self.metrics.attempted += 1;
        if self.metrics.first_start.is_none() {
            self.metrics.first_start = Some(now);
        }
        let user = (k % self.users.len() as u64) as usize;
        if self.slots[user].phase != Phase::Idle {
            self.metrics.fail(Failure::UserBusy, now);
            return;
        }
        if self.in_flight >= self.cfg.max_in_flight {
            self.metrics.fail(Failure::Concurrency, now);
            return;
        }
        let slot = &mut self.slots[user];
        slot.cseq = slot.cseq.wrapping_add(1).max(1);
        slot.txn = slot.txn.wrapping_add(1);
        slot.phase = Phase::Challenge;
        slot.started = now;
        self.in_flight += 1;
        self.build(user, None);
        self.send_new(user, now, wire);
    }

    fn on_message(&mut self, _source: usize, msg: &[u8], now: Instant, wire: &dyn Wire) {
        self.last_now = now;
        if let Some(reply) = scan(msg) {
            return self.on_reply(&reply, now, wire);
        }
        match sip::parse_datagram(msg, &sip::Limits::default()) {
            Ok(sip::Message::Response(resp)) => match Reply::from_response(&resp) {
                Some(reply) => self.on_reply(&reply, now, wire),
                None => self.metrics.stray += 1,
            },
            // the registrar has no reason to send us requests
            Ok(sip::Message::Request(_)) => self.metrics.stray += 1,
            Err(_) => self.metrics.malformed += 1,
        }
    }

    fn on_timers(&mut self, now: Instant, wire: &dyn Wire) {
        self.last_now = now;
        let timer_f = self.cfg.timers.timer_f();
        while let Some((_, user, txn)) = self.pop_due(now) {
            let user = user as usize;
            let slot = &mut self.slots[user];
            if slot.txn != txn || slot.phase == Phase::Idle {
                continue;
            }
            let give_up = slot.txn_started + timer_f;
            if now >= give_up || self.cfg.transport.reliable() {
                self.release(user, Failure::Timeout);
                continue;
            }
            self.metrics.retransmitted(now);
            let src = user % self.local.len();
            if wire.send(src, &slot.request).is_err() {
                self.metrics.send_errors += 1;
            }
            slot.interval = (slot.interval * 2).min(self.cfg.timers.t2);
            let next = (now + slot.interval).min(give_up);
            self.timers.push(Reverse((next, user as u32, txn)));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let fifo = self.first_timers.front().map(|t| t.0);
        let heap = self.timers.peek().map(|Reverse(t)| t.0);
        match (fifo, heap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn on_broken(&mut self, source: usize) {
        let n = self.local.len();
        for user in (source..self.slots.len()).step_by(n) {
            if self.slots[user].phase != Phase::Idle {
                self.release(user, Failure::Transport);
            }
        }
    }

    fn finish(&mut self) {
        for user in 0..self.slots.len() {
            if self.slots[user].phase != Phase::Idle {
                self.release(user, Failure::Unfinished);
            }
        }
        self.timers.clear();
        self.first_timers.clear();
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }
}

#[cfg(test)]
mod tests;
