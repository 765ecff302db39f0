//! The callee's side of a call: answer the server's INVITE (180, then 200
//! with SDP, retransmitted until the ACK), answer its BYE, or hang up.

use std::time::Instant;

use super::msg::{self, ReqParts, Side};
use super::state::{BState, T_ANSWER, T_RETX_200};
use super::{Calls, Out, respond};
use crate::report::Failure;
use crate::sdp;

impl Calls {
    fn callee_tag(&self, slot: u32) -> String {
        let epoch = self.calls[slot as usize].epoch;
        format!("b{:08x}{slot:x}x{epoch:x}", self.run)
    }

    fn callee_contact(&self, slot: u32) -> String {
        let c = &self.calls[slot as usize];
        msg::contact(
            &msg::contact_user(Side::B, slot, c.epoch),
            &self.local[self.callee_source(c.callee)],
            self.cfg.transport,
        )
    }

    /// The call a request to a callee (by its registered user name) is for.
    fn callee_slot(&self, req: &sip::Request) -> Result<u32, u16> {
        let user = req.uri.user().unwrap_or("");
        let callee = *self.callee_by_name.get(user).ok_or(404u16)?;
        self.callee_call
            .get(callee as usize)
            .copied()
            .flatten()
            .ok_or(480)
    }

    pub(super) fn callee_invite(
        &mut self,
        source: usize,
        req: &sip::Request,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let slot = match self.callee_slot(req) {
            Ok(s) => s,
            Err(code) => {
                self.stats.unmatched_requests += 1;
                respond(out, source, req, code, None, None, None);
                return;
            }
        };
        let call_id = req.headers.get("Call-ID").unwrap_or("").trim();
        let c = &self.calls[slot as usize];
        if c.b_state != BState::Waiting {
            if call_id == c.b_call_id {
                // the INVITE again: our last response again
                out.send(source, &c.b_last);
            } else {
                self.stats.unmatched_requests += 1;
                respond(out, source, req, 486, None, None, None);
            }
            return;
        }
        let from_user = req
            .from_addr()
            .ok()
            .flatten()
            .and_then(|f| f.uri.user().map(str::to_owned));
        if from_user.as_deref() != Some(self.callers[c.caller as usize].username.as_str()) {
            self.stats.caller_id_mismatch += 1;
        }
        self.stats
            .invite_relay
            .record(Self::us(now.saturating_duration_since(c.started)));
        let offer = sdp::parse(&req.body);
        let Ok(offer) = offer else {
            respond(out, source, req, 488, None, None, None);
            self.release(slot, Some(Failure::Call("bad_sdp")), now);
            return;
        };
        let tag = self.callee_tag(slot);
        let contact = self.callee_contact(slot);
        let target = match req.contacts() {
            Ok(sip::Contacts::List(list)) => list.first().map(|na| na.uri.as_str().to_owned()),
            _ => None,
        };
        let ringing = respond(out, source, req, 180, Some(&tag), Some(&contact), None);
        let c = &mut self.calls[slot as usize];
        c.b_call_id.clear();
        c.b_call_id.push_str(call_id);
        c.b_remote = req.headers.get("From").unwrap_or("").trim().to_owned();
        c.b_local = format!("{};tag={tag}", req.headers.get("To").unwrap_or("").trim());
        c.b_target = target.unwrap_or_else(|| req.uri.as_str().to_owned());
        c.b_routes = req
            .headers
            .values("Record-Route")
            .map(|v| v.trim().to_owned())
            .collect();
        c.b_cseq = 0;
        c.b_media = Some(offer);
        c.b_invite = Some(req.clone());
        c.b_last = ringing;
        c.b_state = BState::Ringing;
        if self.cfg.answer_delay.is_zero() {
            self.callee_answer(slot, now, out);
        } else {
            self.arm(now + self.cfg.answer_delay, slot, T_ANSWER, 0);
        }
    }

    /// Sends the 200 with our SDP answer and starts retransmitting it.
    pub(super) fn callee_answer(&mut self, slot: u32, now: Instant, out: &mut Out<'_>) {
        if self.calls[slot as usize].b_state != BState::Ringing {
            return;
        }
        let src = self.callee_source(self.calls[slot as usize].callee);
        let rtp = self.rtp_local[self.rtp_socket(slot, Side::B)];
        let session = self.rng.next_u64() >> 12;
        let tag = self.callee_tag(slot);
        let contact = self.callee_contact(slot);
        let Some(invite) = self.calls[slot as usize].b_invite.take() else {
            return;
        };
        let answer = self.calls[slot as usize]
            .b_media
            .as_ref()
            .and_then(|offer| sdp::answer(offer, rtp, session));
        let Some(answer) = answer else {
            respond(out, src, &invite, 488, Some(&tag), None, None);
            self.release(slot, Some(Failure::Call("no_common_codec")), now);
            return;
        };
        let ok = respond(
            out,
            src,
            &invite,
            200,
            Some(&tag),
            Some(&contact),
            Some(&answer),
        );
        let t1 = self.cfg.timers.t1;
        let first = if self.cfg.transport.reliable() {
            self.cfg.timers.timer_f()
        } else {
            t1
        };
        let c = &mut self.calls[slot as usize];
        c.b_invite = Some(invite);
        c.b_last = ok;
        c.b_state = BState::Answered;
        c.b_200_started = now;
        c.b_200_interval = t1;
        self.arm(now + first, slot, T_RETX_200, 0);
    }

    /// Timer G: the 200 again until the ACK; Timer H: give up.
    pub(super) fn callee_retransmit_200(&mut self, slot: u32, now: Instant, out: &mut Out<'_>) {
        let timer_h = self.cfg.timers.timer_f();
        let t2 = self.cfg.timers.t2;
        let c = &self.calls[slot as usize];
        if c.b_state != BState::Answered {
            return;
        }
        let give_up = c.b_200_started + timer_h;
        if now >= give_up || self.cfg.transport.reliable() {
            self.release(slot, Some(Failure::Call("no_ack")), now);
            return;
        }
        let src = self.callee_source(c.callee);
        out.send(src, &c.b_last);
        self.metrics.retransmitted(now);
        let c = &mut self.calls[slot as usize];
        c.b_200_interval = (c.b_200_interval * 2).min(t2);
        let next = (now + c.b_200_interval).min(give_up);
        self.arm(next, slot, T_RETX_200, 0);
    }

    pub(super) fn callee_ack(&mut self, slot: u32, now: Instant, out: &mut Out<'_>) {
        let c = &mut self.calls[slot as usize];
        if c.b_state != BState::Answered {
            return; // a retransmitted ACK
        }
        c.b_state = BState::Confirmed;
        self.start_media(slot, Side::B);
        if self.calls[slot as usize].b_hangup_pending {
            self.calls[slot as usize].b_hangup_pending = false;
            self.callee_bye(slot, now, out);
        }
    }

    /// The server gave up on the call before it was answered.
    pub(super) fn callee_cancel(
        &mut self,
        source: usize,
        req: &sip::Request,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let call_id = req.headers.get("Call-ID").unwrap_or("").trim();
        let slot = self.callee_slot(req).ok().filter(|s| {
            let c = &self.calls[*s as usize];
            c.b_state == BState::Ringing && c.b_call_id == call_id
        });
        let Some(slot) = slot else {
            self.stats.unmatched_requests += 1;
            respond(out, source, req, 481, None, None, None);
            return;
        };
        respond(out, source, req, 200, None, None, None);
        let tag = self.callee_tag(slot);
        if let Some(invite) = self.calls[slot as usize].b_invite.take() {
            respond(out, source, &invite, 487, Some(&tag), None, None);
        }
        self.release(slot, Some(Failure::Call("cancelled")), now);
    }

    pub(super) fn callee_bye(&mut self, slot: u32, now: Instant, out: &mut Out<'_>) {
        {
            let c = &mut self.calls[slot as usize];
            // the source the callee registered from (as `register` picks it)
            let local = &self.local[c.callee as usize % self.local.len()];
            c.b.txn = msg::TXN_BYE_CALLEE;
            c.b.invite = false;
            c.b_cseq += 1;
            msg::write_request(
                &mut c.b.req,
                &ReqParts {
                    method: "BYE",
                    uri: &c.b_target,
                    transport: self.cfg.transport,
                    local,
                    run: self.run,
                    slot,
                    epoch: c.epoch,
                    txn: msg::TXN_BYE_CALLEE,
                    from: &c.b_local,
                    to: &c.b_remote,
                    call_id: &c.b_call_id,
                    cseq: c.b_cseq,
                    routes: &c.b_routes,
                    contact: None,
                    auth: None,
                    sdp: None,
                },
            );
        }
        self.send_tx(slot, Side::B, now, out);
        self.bye_out(slot, Side::B, now);
    }
}
