//! The caller's side of a call: INVITE, the 407 round, ACK, BYE.

use std::fmt::Write as _;
use std::time::Instant;

use sip::auth::{Algorithm, Challenge};

use super::msg::{self, ReqParts, Side};
use super::state::{BState, Phase, T_GUARD, T_HANGUP};
use super::{Calls, Out};
use crate::report::Failure;
use crate::sdp;

/// The challenge to answer: SHA-256 when offered, else MD5, else any other
/// the client computes (the same preference as `register`).
pub(super) fn best_challenge<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let rank = |a: Algorithm| match a {
        Algorithm::Sha256 => 0,
        Algorithm::Md5 => 1,
        _ => 2,
    };
    values
        .filter_map(|v| Challenge::parse(v).ok())
        .min_by_key(|c| rank(c.algorithm))
}

impl Calls {
    /// Sets up `slot` for a new call and sends its first INVITE.
    pub(super) fn caller_invite(
        &mut self,
        slot: u32,
        caller: u32,
        callee: u32,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let src = self.caller_source(caller);
        let rtp = self.rtp_local[self.rtp_socket(slot, Side::A)];
        let session = self.rng.next_u64() >> 12;
        let (run, domain) = (self.run, &self.domain);
        let (caller_name, callee_name) = (
            &self.callers[caller as usize].username,
            &self.callees[callee as usize].username,
        );
        let c = &mut self.calls[slot as usize];
        let epoch = c.epoch;
        c.phase = Phase::Inviting;
        c.caller = caller;
        c.callee = callee;
        c.started = now;
        c.answered_at = None;
        c.bye_sent_at = None;
        c.bye_by = Side::A;
        c.a_done = false;
        c.b_done = false;
        c.b_state = BState::Waiting;
        c.b_hangup_pending = false;
        c.a_media = None;
        c.b_media = None;
        c.a_streaming = false;
        c.b_streaming = false;
        c.a_cseq = 1;
        c.a.txn = msg::TXN_INVITE;
        c.a.invite = true;
        c.b.live = false;
        c.a_routes.clear();
        // writes to a String cannot fail
        c.a_call_id.clear();
        let _ = write!(c.a_call_id, "lc{run:08x}-{slot:x}-{epoch:x}");
        c.a_from.clear();
        let _ = write!(
            c.a_from,
            "<sip:{caller_name}@{domain}>;tag=a{run:08x}{slot:x}x{epoch:x}"
        );
        c.a_to.clear();
        let _ = write!(c.a_to, "<sip:{callee_name}@{domain}>");
        c.a_ruri.clear();
        let _ = write!(c.a_ruri, "sip:{callee_name}@{domain}");
        c.a_contact = msg::contact(
            &msg::contact_user(Side::A, slot, epoch),
            &self.local[src],
            self.cfg.transport,
        );
        c.a_offer.clear();
        sdp::write_sdp(&mut c.a_offer, rtp, &[sdp::PCMU, sdp::PCMA], session);
        self.build_invite(slot, None);
        self.send_tx(slot, Side::A, now, out);
        let setup_deadline = now + self.cfg.timers.timer_f();
        self.arm(setup_deadline, slot, T_GUARD, 0);
    }

    fn build_invite(&mut self, slot: u32, auth: Option<(&str, &str)>) {
        let c = &mut self.calls[slot as usize];
        let local = &self.local[c.caller as usize % self.local.len()];
        msg::write_request(
            &mut c.a.req,
            &ReqParts {
                method: "INVITE",
                uri: &c.a_ruri,
                transport: self.cfg.transport,
                local,
                run: self.run,
                slot,
                epoch: c.epoch,
                txn: c.a.txn,
                from: &c.a_from,
                to: &c.a_to,
                call_id: &c.a_call_id,
                cseq: c.a_cseq,
                routes: &[],
                contact: Some(&c.a_contact),
                auth,
                sdp: Some(&c.a_offer),
            },
        );
    }

    /// ACK for a non-2xx final response: the INVITE's branch and CSeq, the
    /// response's To (RFC 3261 §17.1.1.3).
    fn ack_failure(&mut self, slot: u32, txn: u32, to: &str, out: &mut Out<'_>) {
        let c = &self.calls[slot as usize];
        let src = self.caller_source(c.caller);
        let mut ack = Vec::with_capacity(512);
        msg::write_request(
            &mut ack,
            &ReqParts {
                method: "ACK",
                uri: &c.a_ruri,
                transport: self.cfg.transport,
                local: &self.local[src],
                run: self.run,
                slot,
                epoch: c.epoch,
                txn,
                from: &c.a_from,
                to,
                call_id: &c.a_call_id,
                // the INVITE of transaction n has CSeq n
                cseq: txn,
                routes: &[],
                contact: None,
                auth: None,
                sdp: None,
            },
        );
        out.send(src, &ack);
    }

    pub(super) fn caller_invite_response(
        &mut self,
        slot: u32,
        txn: u32,
        resp: &sip::Response,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let code = resp.status.as_u16();
        let to = resp.headers.get("To").unwrap_or("").trim().to_owned();
        let c = &self.calls[slot as usize];
        if txn != c.a.txn {
            // the challenge again (its ACK was lost): ACK it again
            if code >= 300 {
                self.ack_failure(slot, txn, &to, out);
            } else {
                self.metrics.stray += 1;
            }
            return;
        }
        if c.phase != Phase::Inviting {
            if (200..300).contains(&code) && c.answered_at.is_some() {
                // the 200 again: our ACK was lost
                let src = self.caller_source(c.caller);
                let ack = std::mem::take(&mut self.calls[slot as usize].a_ack);
                out.send(src, &ack);
                self.calls[slot as usize].a_ack = ack;
                self.stats.reacks += 1;
            } else if code >= 300 {
                self.ack_failure(slot, txn, &to, out);
            } else {
                self.metrics.stray += 1;
            }
            return;
        }
        if code < 200 {
            self.calls[slot as usize].a.proceeding = true;
            return;
        }
        if code >= 300 {
            self.calls[slot as usize].a.live = false;
            self.ack_failure(slot, txn, &to, out);
            if matches!(code, 401 | 407) && txn == msg::TXN_INVITE {
                self.answer_challenge(slot, resp, now, out);
            } else {
                self.release(slot, Some(Failure::Status(code)), now);
            }
            return;
        }
        self.caller_answered(slot, resp, to, now, out);
    }

    fn answer_challenge(
        &mut self,
        slot: u32,
        resp: &sip::Response,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let proxy = resp.status.as_u16() == 407;
        let (header, reply) = if proxy {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let Some(ch) = best_challenge(resp.headers(header)) else {
            self.release(slot, Some(Failure::BadChallenge), now);
            return;
        };
        let cnonce = format!("{:016x}", self.rng.next_u64());
        let c = &mut self.calls[slot as usize];
        let user = &self.callers[c.caller as usize];
        let creds = ch
            .answer(
                &user.username,
                &user.password,
                "INVITE",
                &c.a_ruri,
                1,
                &cnonce,
            )
            .to_header_value();
        c.a.txn = msg::TXN_INVITE_AUTH;
        c.a_cseq = 2;
        self.build_invite(slot, Some((reply, &creds)));
        self.send_tx(slot, Side::A, now, out);
    }

    fn caller_answered(
        &mut self,
        slot: u32,
        resp: &sip::Response,
        to: String,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let target = match resp.contacts() {
            Ok(sip::Contacts::List(list)) => list.first().map(|na| na.uri.as_str().to_owned()),
            _ => None,
        };
        let routes: Vec<String> = resp
            .headers
            .values("Record-Route")
            .map(|v| v.trim().to_owned())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let media = sdp::parse(&resp.body);
        let src = self.caller_source(self.calls[slot as usize].caller);
        {
            let c = &mut self.calls[slot as usize];
            c.a.live = false;
            c.a_to = to;
            if let Some(t) = target {
                c.a_target = t;
            } else {
                c.a_target.clone_from(&c.a_ruri);
            }
            c.a_routes = routes;
            c.answered_at = Some(now);
            c.phase = Phase::Talking;
            c.a_media = media.as_ref().ok().cloned();
            let mut ack = std::mem::take(&mut c.a_ack);
            msg::write_request(
                &mut ack,
                &ReqParts {
                    method: "ACK",
                    uri: &c.a_target,
                    transport: self.cfg.transport,
                    local: &self.local[src],
                    run: self.run,
                    slot,
                    epoch: c.epoch,
                    txn: msg::TXN_ACK,
                    from: &c.a_from,
                    to: &c.a_to,
                    call_id: &c.a_call_id,
                    cseq: c.a_cseq,
                    routes: &c.a_routes,
                    contact: None,
                    auth: None,
                    sdp: None,
                },
            );
            c.a_ack = ack;
        }
        let c = &self.calls[slot as usize];
        out.send(src, &c.a_ack);
        self.stats.answered += 1;
        self.stats
            .setup
            .record(Self::us(now.saturating_duration_since(c.started)));
        self.active += 1;
        self.stats.peak_active = self.stats.peak_active.max(self.active);
        if c.b_state == BState::Waiting {
            // a 200 for a call our callee never saw
            self.release(slot, Some(Failure::Call("callee_not_reached")), now);
            return;
        }
        if self.cfg.rtp && media.is_err() {
            self.release(slot, Some(Failure::Call("bad_sdp")), now);
            return;
        }
        self.start_media(slot, Side::A);
        let at = self.hangup_at.unwrap_or(now + self.cfg.hold);
        if at <= now {
            self.hang_up(slot, now, out);
        } else {
            self.arm(at, slot, T_HANGUP, 0);
        }
    }

    pub(super) fn caller_bye(&mut self, slot: u32, now: Instant, out: &mut Out<'_>) {
        {
            let c = &mut self.calls[slot as usize];
            let local = &self.local[c.caller as usize % self.local.len()];
            c.a.txn = msg::TXN_BYE_CALLER;
            c.a.invite = false;
            msg::write_request(
                &mut c.a.req,
                &ReqParts {
                    method: "BYE",
                    uri: &c.a_target,
                    transport: self.cfg.transport,
                    local,
                    run: self.run,
                    slot,
                    epoch: c.epoch,
                    txn: msg::TXN_BYE_CALLER,
                    from: &c.a_from,
                    to: &c.a_to,
                    call_id: &c.a_call_id,
                    cseq: c.a_cseq + 1,
                    routes: &c.a_routes,
                    contact: None,
                    auth: None,
                    sdp: None,
                },
            );
        }
        self.send_tx(slot, Side::A, now, out);
        self.bye_out(slot, Side::A, now);
    }
}
