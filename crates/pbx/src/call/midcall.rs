//! Requests inside established dialogs: ACK, BYE, and re-INVITE / UPDATE /
//! INFO passed across the bridge (with glare handling), plus the 2xx
//! retransmission the TU owes under RFC 6026.

use std::time::Instant;

use media::Side;
use sip::transaction::{Target, TxKey};
use sip::{Method, Request, Response, StatusCode};
use store::{Disposition, HangupBy};

use super::dialog::{contact_uri, tag_of};
use super::engine::{Call, CallEngine, LegRef, Relay, idx, status};
use super::media::{MediaCommand, parse_sdp};
use super::{CallPhase, SipOutput};

/// Dialog identifiers of a received request: Call-ID, From tag, To tag.
fn ids(req: &Request) -> (String, Option<String>, Option<String>) {
    (
        req.headers.get("Call-ID").unwrap_or("").trim().to_owned(),
        tag_of(req.headers.get("From")),
        tag_of(req.headers.get("To")),
    )
}

impl CallEngine {
    /// Finds the call and side a request belongs to.
    pub(crate) fn locate(&self, req: &Request) -> Option<(u64, LegRef)> {
        let (call_id, from, to) = ids(req);
        let &(id, leg) = self.dialogs.get(to.as_deref()?)?;
        let call = self.calls.get(&id)?;
        let dialog = match leg {
            LegRef::A => &call.a.dialog,
            LegRef::Fork(i) => &call.forks.get(i)?.dialog,
        };
        dialog
            .matches_request(&call_id, from.as_deref(), to.as_deref())
            .then_some((id, leg))
    }

    /// A request with a To tag (inside a dialog).
    pub(crate) fn on_dialog_request(
        &mut self,
        key: TxKey,
        req: Request,
        source: Target,
        now: Instant,
    ) {
        let Some((id, leg)) = self.locate(&req) else {
            self.respond(&key, req.response(status(481)));
            return;
        };
        if !self.request_from_leg(id, leg, source) {
            // Someone who learnt (or guessed) the dialog's identifiers but
            // is not the party on this leg: refused, nothing changes.
            tracing::warn!(
                call = id,
                method = %req.method,
                %source.addr,
                "in-dialog request from outside the leg's flow refused"
            );
            metrics::counter!("sip_foreign_dialog_requests_total").increment(1);
            let mut r = req.response(StatusCode::FORBIDDEN);
            r.reason = "Forbidden (not from this dialog's party)".to_owned();
            self.respond(&key, r);
            return;
        }
        self.with_call(id, |e, call| e.dialog_request(call, leg, key, req, now));
    }

    /// Whether `source` is the flow of leg `leg` of call `id`.
    pub(crate) fn request_from_leg(&self, id: u64, leg: LegRef, source: Target) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let dialog = match leg {
            LegRef::A => Some(&call.a.dialog),
            LegRef::Fork(i) => call.forks.get(i).map(|f| &f.dialog),
        };
        dialog.is_some_and(|d| self.is_leg_flow(d, source))
    }

    fn dialog_request(
        &mut self,
        call: &mut Call,
        leg: LegRef,
        key: TxKey,
        req: Request,
        now: Instant,
    ) {
        let side = match leg {
            LegRef::A => Side::A,
            LegRef::Fork(i) if call.winner == Some(i) => Side::B,
            LegRef::Fork(_) => {
                // A leg that lost the race or was cancelled: let it go.
                let code = if req.method == Method::Bye { 200 } else { 481 };
                self.respond(&key, req.response(status(code)));
                return;
            }
        };
        let seq = req.cseq().ok().flatten().map_or(0, |c| c.seq);
        let in_order = call
            .dialog_mut(side)
            .is_some_and(|d| d.accept_remote_cseq(seq, &req.method));
        if !in_order {
            self.respond(&key, req.response(StatusCode::SERVER_INTERNAL_ERROR));
            return;
        }
        match req.method {
            Method::Bye => self.on_bye(call, side, key, req, now),
            Method::Invite | Method::Update | Method::Info => {
                if req.method != Method::Info {
                    if let (Some(uri), Some(d)) = (contact_uri(&req.headers), call.dialog_mut(side))
                    {
                        d.remote_target = uri; // target refresh (RFC 3261 §12.2.2)
                    }
                }
                let confirmed = matches!(call.phase, CallPhase::Answering | CallPhase::Connected);
                if !confirmed {
                    let code = if call.phase == CallPhase::Ended {
                        481
                    } else {
                        491
                    };
                    self.respond(&key, req.response(status(code)));
                    return;
                }
                self.relay_request(call, side, key, req, now);
            }
            Method::Options => self.respond(&key, req.response(StatusCode::OK)),
            Method::Refer => self.on_refer(call, side, key, req, now),
            _ => self.respond(&key, req.response(StatusCode::NOT_IMPLEMENTED)),
        }
    }

    fn on_bye(&mut self, call: &mut Call, side: Side, key: TxKey, req: Request, now: Instant) {
        self.respond(&key, req.response(StatusCode::OK));
        match call.phase {
            CallPhase::Ringing => {
                if side == Side::A {
                    self.caller_cancelled(call, now);
                }
            }
            CallPhase::Connected if side == Side::B && call.transfer.is_some() => {
                // The transferor hangs up while its transfer rings (many
                // phones do after the 202): the transferee stays, waiting
                // for the target.
                if let Some(t) = call.transfer.as_mut() {
                    t.transferor_gone = true;
                }
                if let Some(t) = call.transfer.as_ref() {
                    call.forks[t.transferor].state = super::state::ForkState::Done;
                }
            }
            CallPhase::Answering | CallPhase::Connected => {
                // A transfer still ringing its target stops with the call.
                let gone = self.abandon_transfer(call);
                if !gone {
                    self.bye(call, side.other(), None);
                }
                let (cause, by) = match side {
                    Side::A => ("caller hung up", HangupBy::Caller),
                    Side::B => ("callee hung up", HangupBy::Callee),
                };
                self.end(call, now, Disposition::Answered, cause, by);
            }
            CallPhase::Ended => {}
        }
    }

    /// Passes a re-INVITE / UPDATE / INFO from `from` to the other side.
    fn relay_request(
        &mut self,
        call: &mut Call,
        from: Side,
        key: TxKey,
        req: Request,
        now: Instant,
    ) {
        let is_invite = req.method == Method::Invite;
        if is_invite {
            // RFC 3261 §14.2: our own re-INVITE on this dialog is pending → 491;
            // theirs is still unanswered → 500 with Retry-After.
            if call.uac_invite[idx(from)].is_some() {
                self.respond(&key, req.response(status(491)));
                return;
            }
            if call.uas_invite[idx(from)].is_some() {
                let r = req
                    .response(StatusCode::SERVER_INTERNAL_ERROR)
                    .with_header("Retry-After", "1");
                self.respond(&key, r);
                return;
            }
        }
        let to = from.other();
        let offer = parse_sdp(&req.body, req.content_type().ok().flatten());
        if is_invite && req.body.is_empty() {
            // An offerless re-INVITE (a refresh): answered here with the
            // description this side already has, so the offer/answer in
            // the 2xx and ACK stays on this leg.
            return self.answer_offerless(call, from, key, &req, now);
        }
        if let (Some(sdp), true) = (&offer, req.method != Method::Info) {
            // A hold (or the resume after one) is answered here: the other
            // party keeps its session and hears music meanwhile.
            let holds = is_hold_offer(sdp);
            if holds || call.held[idx(from)] {
                if let Some(body) = call.media.local_answer(from, sdp) {
                    return self.answer_hold(call, from, key, &req, sdp, body, holds, now);
                }
            }
        }
        let body = match &offer {
            Some(sdp) => match call.media.sdp_for(to, sdp) {
                Ok(b) => Some(b),
                Err(_) => {
                    self.respond(&key, req.response(status(488)));
                    return;
                }
            },
            None if !req.body.is_empty() && req.method != Method::Info => {
                self.respond(&key, req.response(status(488)));
                return;
            }
            None => None,
        };
        let branch = self.tokens.branch();
        let sent_by = self.config.sip_addr;
        let Some(d) = call.dialog_mut(to) else {
            self.respond(&key, req.response(status(481)));
            return;
        };
        let mut out = d.request(req.method.clone(), sent_by, &branch);
        let dest = d.peer;
        match body {
            Some(b) => {
                out.headers.push("Content-Type", "application/sdp");
                out.body = b;
            }
            None if req.method == Method::Info && !req.body.is_empty() => {
                // DTMF and similar: the body is not topology-sensitive.
                if let Some(ct) = req.headers.get("Content-Type") {
                    out.headers.push("Content-Type", ct);
                }
                out.body = req.body.clone();
            }
            None => {}
        }
        if is_invite {
            call.uas_invite[idx(from)] = Some(key.clone());
            call.uac_invite[idx(to)] = Some(branch.clone());
        }
        call.relays.insert(
            branch,
            Relay {
                from,
                server_key: key,
                request: req,
                offer,
            },
        );
        self.send_request(call, out, dest);
    }

    /// The far side answered (or, `None`, failed) a request we relayed.
    pub(crate) fn on_relay_response(
        &mut self,
        call: &mut Call,
        branch: &str,
        response: Option<Response>,
        now: Instant,
    ) {
        let code = response.as_ref().map_or(408, |r| r.status.as_u16());
        if code < 200 {
            return;
        }
        if self.own_reinvite_response(call, branch, response.as_ref()) {
            return;
        }
        let Some(relay) = call.relays.remove(branch) else {
            if code < 300 {
                self.resend_ack(call, response.as_ref());
            }
            return;
        };
        let to = relay.from.other();
        let is_invite = relay.request.method == Method::Invite;
        if is_invite {
            call.uas_invite[idx(relay.from)] = None;
            call.uac_invite[idx(to)] = None;
        }
        let mut out = relay.request.response(status(code));
        if let Some(resp) = &response {
            out.reason = resp.reason.clone();
            let answer = parse_sdp(&resp.body, resp.content_type().ok().flatten());
            if let (Some(answer), true) = (answer, code < 300) {
                match call.media.sdp_for(relay.from, &answer) {
                    Ok(body) => {
                        out = out.with_body("application/sdp", body);
                        if let Some(offer) = &relay.offer {
                            call.media.configure(relay.from, offer, &mut self.media_out);
                        }
                        call.media.configure(to, &answer, &mut self.media_out);
                    }
                    Err(_) => out = relay.request.response(status(488)),
                }
            }
            if code < 300 && relay.request.method != Method::Info {
                if let (Some(uri), Some(d)) = (contact_uri(&resp.headers), call.dialog_mut(to)) {
                    d.remote_target = uri;
                }
            }
            if is_invite && code < 300 {
                self.ack_relayed(call, to, resp);
            }
        }
        if is_invite && out.status.is_success() {
            if let Some(d) = call.dialog(relay.from) {
                out.headers.push("Contact", &d.local_contact);
            }
            let cseq = relay.request.cseq().ok().flatten().map_or(0, |c| c.seq);
            call.retransmit_2xx(
                relay.from,
                relay.server_key.clone(),
                out.clone(),
                cseq,
                now,
                false,
                &self.config,
            );
        }
        self.respond(&relay.server_key, out);
    }

    /// Answers a hold or resume offer from `from` with `body` (our local
    /// answer), reconfigures its leg and turns music toward the other side
    /// on or off.
    #[allow(clippy::too_many_arguments)]
    fn answer_hold(
        &mut self,
        call: &mut Call,
        from: Side,
        key: TxKey,
        req: &Request,
        offer: &media::Sdp,
        body: Vec<u8>,
        holds: bool,
        now: Instant,
    ) {
        let Some(d) = call.dialog(from) else { return };
        let ok = req
            .response(StatusCode::OK)
            .with_header("Contact", &d.local_contact)
            .with_body("application/sdp", body);
        self.respond(&key, ok.clone());
        if req.method == Method::Invite {
            let cseq = req.cseq().ok().flatten().map_or(0, |c| c.seq);
            call.retransmit_2xx(from, key, ok, cseq, now, false, &self.config);
        }
        call.media.configure(from, offer, &mut self.media_out);
        if call.held[idx(from)] != holds {
            call.held[idx(from)] = holds;
            call.held_at[idx(from)] = holds.then_some(now);
            tracing::info!(call = call.id, side = ?from, holds, "hold");
            self.media_out.push_back(MediaCommand::Music {
                call: call.id,
                to: from.other(),
                on: holds,
            });
        }
    }

    fn answer_offerless(
        &mut self,
        call: &mut Call,
        from: Side,
        key: TxKey,
        req: &Request,
        now: Instant,
    ) {
        let body = call.media.last_sent(from).to_vec();
        let Some(d) = call.dialog(from) else { return };
        if body.is_empty() {
            self.respond(&key, req.response(status(488)));
            return;
        }
        let ok = req
            .response(StatusCode::OK)
            .with_header("Contact", &d.local_contact)
            .with_body("application/sdp", body);
        let cseq = req.cseq().ok().flatten().map_or(0, |c| c.seq);
        self.respond(&key, ok.clone());
        call.retransmit_2xx(from, key, ok, cseq, now, false, &self.config);
    }

    /// ACKs a 2xx to a re-INVITE we sent on `side`.
    pub(crate) fn ack_relayed(&mut self, call: &mut Call, side: Side, resp: &Response) {
        let seq = resp.cseq().ok().flatten().map_or(0, |c| c.seq);
        let branch = self.tokens.branch();
        let sent_by = self.config.sip_addr;
        let Some(d) = call.dialog(side) else { return };
        let ack = d.ack(seq, sent_by, &branch);
        let dest = d.peer;
        call.last_ack[idx(side)] = Some((seq, ack.clone()));
        self.sip_out
            .push_back(SipOutput::Ack { request: ack, dest });
    }

    /// A retransmitted 2xx to a re-INVITE we already ACKed.
    fn resend_ack(&mut self, call: &mut Call, resp: Option<&Response>) {
        let Some(seq) = resp.and_then(|r| r.cseq().ok().flatten()).map(|c| c.seq) else {
            return;
        };
        for side in [Side::A, Side::B] {
            if let (Some((s, ack)), Some(d)) = (&call.last_ack[idx(side)], call.dialog(side)) {
                if *s == seq {
                    let (request, dest) = (ack.clone(), d.peer);
                    self.sip_out.push_back(SipOutput::Ack { request, dest });
                    return;
                }
            }
        }
    }

    /// An ACK for a 2xx we sent (initial INVITE or re-INVITE).
    pub(crate) fn on_ack(&mut self, req: Request, source: Target, now: Instant) {
        let Some((id, leg)) = self.locate(&req) else {
            return;
        };
        if !self.request_from_leg(id, leg, source) {
            tracing::debug!(call = id, %source.addr, "ACK from outside the leg's flow ignored");
            return;
        }
        let seq = req.cseq().ok().flatten().map_or(0, |c| c.seq);
        let answer = parse_sdp(&req.body, req.content_type().ok().flatten());
        self.with_call(id, |e, call| {
            let side = match leg {
                LegRef::A => Side::A,
                LegRef::Fork(i) if call.winner == Some(i) => Side::B,
                LegRef::Fork(_) => return,
            };
            let before = call.retransmits.len();
            call.retransmits
                .retain(|r| !(r.side == side && r.cseq == seq));
            if before != call.retransmits.len()
                && side == Side::A
                && call.phase == CallPhase::Answering
            {
                call.phase = CallPhase::Connected;
            }
            if let Some(sdp) = answer {
                // The answer to an offer we made in a 2xx (offerless re-INVITE).
                call.media.configure(side, &sdp, &mut e.media_out);
            }
            let _ = now;
        });
    }

    /// Resends unacknowledged 2xx responses (T1, doubling to T2) and gives
    /// up after 64·T1: a call whose answer is never ACKed is hung up.
    pub(crate) fn run_retransmits(&mut self, call: &mut Call, now: Instant) {
        let mut expired_initial = false;
        let mut i = 0;
        while i < call.retransmits.len() {
            let r = &mut call.retransmits[i];
            if r.give_up <= now {
                expired_initial |= r.initial;
                call.retransmits.remove(i);
                continue;
            }
            if r.next <= now {
                r.interval = (r.interval * 2).min(self.config.t2);
                r.next = now + r.interval;
                let (key, resp) = (r.key.clone(), r.response.clone());
                self.respond(&key, resp);
            }
            i += 1;
        }
        if expired_initial && call.phase == CallPhase::Answering {
            self.bye(call, Side::A, None);
            self.bye(call, Side::B, None);
            self.end(
                call,
                now,
                Disposition::Answered,
                "no ACK from caller",
                HangupBy::System,
            );
        }
    }
}

/// Whether an offer puts the call on hold: an RTP stream whose author no
/// longer wants to receive (`sendonly`, `inactive`, or `c=0.0.0.0`).
fn is_hold_offer(sdp: &media::Sdp) -> bool {
    sdp.media
        .iter()
        .any(|m| m.is_rtp() && !m.is_rejected() && media::direction_of(sdp, m).is_hold())
}

impl CallEngine {
    /// Hangs up a call that reached the call length cap or the hold length
    /// cap: BYE to both legs (a still ringing call is refused with 480),
    /// with a CDR cause naming the cap.
    pub(crate) fn enforce_caps(&mut self, call: &mut Call, now: Instant) {
        if call.phase == CallPhase::Ended {
            return;
        }
        let (cause, reason) = if call.cap_at <= now {
            let cause = format!(
                "call length cap reached ({} s)",
                self.config.max_call_duration.as_secs()
            );
            (cause, "SIP;cause=200;text=\"Call length limit reached\"")
        } else if call.hold_deadline().is_some_and(|t| t <= now) {
            let cause = format!(
                "hold length cap reached ({} s)",
                self.config.max_hold_duration.as_secs()
            );
            (cause, "SIP;cause=200;text=\"Hold length limit reached\"")
        } else {
            return;
        };
        tracing::info!(call = call.id, tenant = %call.tenant, %cause, "hanging up");
        match call.phase {
            CallPhase::Ringing => self.fail(call, 480, Disposition::Failed, &cause, now),
            _ => {
                let transferor_gone = self.abandon_transfer(call);
                self.bye(call, Side::A, Some(reason));
                if !transferor_gone {
                    self.bye(call, Side::B, Some(reason));
                }
                self.end(call, now, Disposition::Answered, &cause, HangupBy::System);
            }
        }
    }

    /// Ends a call from outside signalling: the relay saw no media for too
    /// long ([`media::Bridge::media_timed_out`]), or an operator hung it up.
    /// A ringing call gets 480 towards the caller and its B-legs cancelled;
    /// an answered one gets BYE on both legs. `cause` goes into the CDR.
    /// Unknown or already ended calls are ignored.
    pub fn hang_up(&mut self, call: u64, cause: &str, now: Instant) {
        self.hang_up_with(call, 480, cause, now);
    }

    /// [`hang_up`](Self::hang_up), answering a still ringing call with
    /// `status` instead of 480: 503 when the relay could not bind the
    /// call's ports (the caller may retry; the server is at fault).
    pub fn hang_up_with(&mut self, call: u64, status: u16, cause: &str, now: Instant) {
        self.with_call(call, |e, c| match c.phase {
            CallPhase::Ringing => {
                e.fail(c, status, Disposition::Failed, cause, now);
            }
            CallPhase::Answering | CallPhase::Connected => {
                e.bye(c, Side::A, None);
                e.bye(c, Side::B, None);
                e.end(c, now, Disposition::Answered, cause, HangupBy::System);
            }
            CallPhase::Ended => {}
        });
    }
}
