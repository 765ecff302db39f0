//! Call setup: the caller's INVITE, the dial plan's answer, and the B-legs
//! (forks) with their responses. Forwarding and failure outcomes are in
//! `outcome.rs`.

use std::collections::HashMap;
use std::time::Instant;

use media::Side;
use sip::transaction::{Target, TxKey, cancel_for};
use sip::{Method, Request, Response, StatusCode};
use store::Disposition;

use super::dialog::Dialog;
use super::engine::{
    ALeg, Call, CallEngine, Fork, ForkState, LegRef, RouteState, TrunkLeg, status,
};
use super::media::{CallMedia, parse_sdp};
use super::{CallPhase, CallerIdentity, ContactTarget, Destination, InboundCall, SipOutput};

pub(crate) const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";
const DECLINED: &str = "SIP;cause=603;text=\"Declined\"";
const BUSY_EVERYWHERE: &str = "SIP;cause=600;text=\"Busy Everywhere\"";
use super::ALLOW;

/// Who a new call comes from.
pub(crate) struct Origin {
    pub tenant: store::TenantId,
    pub caller: String,
    pub name: String,
    pub direction: store::Direction,
    pub trunk: Option<store::TrunkId>,
    /// The calling extension's concurrent-call limit (`None`: a trunk's call).
    pub call_limit: Option<u32>,
}

impl CallEngine {
    /// A dialog-creating INVITE whose caller the driver authenticated.
    pub fn on_invite(
        &mut self,
        key: TxKey,
        request: Request,
        source: Target,
        caller: CallerIdentity,
        now: Instant,
    ) {
        let ext = caller.extension.to_string();
        let (name, call_limit) = match self.dial_plan.resolve(caller.tenant, None, &ext) {
            Destination::Extension(p) if !p.display_name.is_empty() => {
                (p.display_name, Some(p.max_calls))
            }
            Destination::Extension(p) => (ext.clone(), Some(p.max_calls)),
            _ => (ext.clone(), None),
        };
        let origin = Origin {
            tenant: caller.tenant,
            caller: ext,
            name,
            direction: store::Direction::Internal,
            trunk: None,
            call_limit,
        };
        self.start_call(key, request, source, origin, now);
    }

    /// A dialog-creating INVITE from a trunk, which the driver recognised
    /// (by source address or credentials) and whose dialled number it
    /// looked up to find the tenant. The number is resolved through the
    /// dial plan like anything dialled; only extensions are rung (an
    /// outside destination is refused: no tromboning through us).
    pub fn on_inbound(
        &mut self,
        key: TxKey,
        request: Request,
        source: Target,
        inbound: InboundCall,
        now: Instant,
    ) {
        let from_user = request.from_addr().ok().flatten().and_then(|f| {
            f.uri
                .user()
                .map(|u| String::from_utf8_lossy(&sip::unescape(u)).into_owned())
        });
        // The caller's number goes into our own From headers: digits only.
        let caller = from_user
            .filter(|u| {
                !u.is_empty() && u.len() <= 32 && u.chars().all(|c| c.is_ascii_digit() || c == '+')
            })
            .unwrap_or_else(|| "anonymous".to_owned());
        let origin = Origin {
            tenant: inbound.tenant,
            name: caller.clone(),
            caller,
            direction: store::Direction::Inbound,
            trunk: Some(inbound.trunk),
            call_limit: None,
        };
        self.start_call(key, request, source, origin, now);
    }

    fn start_call(
        &mut self,
        key: TxKey,
        request: Request,
        source: Target,
        origin: Origin,
        now: Instant,
    ) {
        if let Some(pos) = self.early_cancels.iter().position(|k| *k == key) {
            // Cancelled while the driver was authenticating; already answered 487.
            self.early_cancels.remove(pos);
            return;
        }
        let reject = |e: &mut Self, code: u16| {
            e.respond(&key, request.response_tagged(status(code)));
        };
        let max_forwards = match request.max_forwards() {
            Ok(Some(0)) => return reject(self, 483),
            Ok(mf) => mf.unwrap_or(70),
            Err(_) => return reject(self, 400),
        };
        // Only Replaces is supported (no 100rel, timer...): RFC 3261 §8.2.2.3.
        let required: Vec<&str> = request
            .require()
            .filter(|t| !t.eq_ignore_ascii_case("replaces"))
            .collect();
        if !required.is_empty() {
            let r = request
                .response_tagged(StatusCode::BAD_EXTENSION)
                .with_header("Unsupported", &required.join(", "));
            self.respond(&key, r);
            return;
        }
        let Some(offer) = parse_sdp(&request.body, request.content_type().ok().flatten()) else {
            // Offerless INVITEs (offer in the 2xx) are not supported yet.
            return reject(self, 488);
        };
        if let Some(value) = request.headers.get("Replaces") {
            // RFC 3891: pick up a ringing call, or take over a connected leg.
            let Some(replaces) = super::transfer::Replaces::parse(value) else {
                return reject(self, 400);
            };
            return self.on_replaces(key, request, source, origin, replaces, offer, now);
        }
        let pickup = request
            .uri
            .user()
            .and_then(|u| u.strip_prefix(super::transfer::PICKUP_PREFIX))
            .filter(|ext| !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned);
        if let (Some(ext), store::Direction::Internal) = (pickup, origin.direction) {
            return self.pickup_by_code(key, request, source, origin, &ext, offer, now);
        }
        let dialled = request
            .uri
            .user()
            .map(|u| String::from_utf8_lossy(&sip::unescape(u)).into_owned())
            .unwrap_or_default();
        let origin_call_limit = origin.call_limit;
        let id = self.new_call_id();
        let media = match CallMedia::new(id, &offer, self.config.media_addr, self.config.streams) {
            Ok(m) => m,
            Err(e) => {
                let mut r = request.response_tagged(status(488));
                r.reason = format!("Not Acceptable Here ({e})");
                self.respond(&key, r);
                return;
            }
        };
        let local_tag = self.tokens.next();
        let contact = self.contact(source.transport);
        let mut media = media;
        media.set_signal(Side::A, source.addr.ip());
        let mut dialog = Dialog::uas(&request, source, local_tag.clone(), contact);
        if origin.direction == store::Direction::Inbound {
            dialog.trunk = origin.trunk;
        }
        let mut call = Call {
            id,
            tenant: origin.tenant,
            caller: origin.caller,
            caller_name: origin.name,
            dialled: dialled.clone(),
            callee: dialled.clone(),
            phase: CallPhase::Ringing,
            a: ALeg {
                dialog,
                invite: request,
                key: key.clone(),
                finalized: false,
                sent_ringing: false,
            },
            forks: Vec::new(),
            winner: None,
            media,
            offer_a: offer,
            offer_b: Vec::new(),
            route: RouteState {
                profile: None,
                visited: Vec::new(),
                hops: 0,
                diversions: Vec::new(),
                max_forwards: max_forwards - 1,
            },
            round: 0,
            failures: Vec::new(),
            no_answer_at: None,
            linger_until: None,
            started: now,
            answered: None,
            relays: HashMap::new(),
            uas_invite: [None, None],
            uac_invite: [None, None],
            last_ack: [None, None],
            retransmits: Vec::new(),
            client_keys: Vec::new(),
            tags: Vec::new(),
            routes: Default::default(),
            held: [false; 2],
            held_at: [None; 2],
            cap_at: now + self.config.max_call_duration,
            max_hold: self.config.max_hold_duration,
            transfer: None,
            join_into: None,
            presented: None,
            transferred: None,
            own_reinvites: Default::default(),
            cdr_call_id: None,
            from_extension: origin.direction == store::Direction::Internal,
            outside_counted: false,
            direction: origin.direction,
            trunk: origin.trunk,
            group: None,
        };
        tracing::info!(
            call = id,
            call_id = %call.a.dialog.call_id,
            tenant = %call.tenant,
            extension = %call.caller,
            dialled = %call.dialled,
            "new call"
        );
        self.server_tx.insert(key, id);
        self.add_dialog(&mut call, local_tag, LegRef::A);
        let destination = self
            .dial_plan
            .resolve(call.tenant, call.calling_extension(), &dialled);
        let emergency = matches!(&destination, Destination::Outside(o) if o.emergency);
        if !emergency {
            if let Err((code, reason)) = self.admit_call(&call, origin_call_limit) {
                tracing::warn!(call = id, tenant = %call.tenant, extension = %call.caller, %reason, "call refused");
                let mut r = self.a_response(&call, status(code));
                r.reason = format!("{} ({reason})", r.reason);
                self.respond(&call.a.key.clone(), r);
                call.a.finalized = true;
                self.fail(&mut call, code, Disposition::Failed, &reason, now);
                self.insert_call(call);
                return;
            }
        }
        match destination {
            Destination::Extension(profile) => self.ring(&mut call, profile, now),
            Destination::RingGroup(group) => self.ring_group(&mut call, group, now),
            Destination::Outside(_) if call.direction == store::Direction::Inbound => self.fail(
                &mut call,
                404,
                Disposition::Failed,
                "number not routed here",
                now,
            ),
            Destination::Outside(outside) => self.route_outside(&mut call, outside, now),
            Destination::Refused {
                status: code,
                reason,
            } => self.fail(&mut call, code, Disposition::Failed, &reason, now),
            Destination::Unknown => {
                self.fail(&mut call, 404, Disposition::Failed, "unknown number", now)
            }
        }
        self.insert_call(call);
    }

    pub(crate) fn start_fork(&mut self, call: &mut Call, contact: ContactTarget) {
        let (display, to) = (call.caller_name.clone(), call.callee.clone());
        self.start_fork_as(call, contact, &display, &to);
    }

    /// A B-leg to `contact` showing the caller as `display` (From display
    /// name) and addressed to `to` (To user). Returns the fork's index.
    pub(crate) fn start_fork_as(
        &mut self,
        call: &mut Call,
        contact: ContactTarget,
        display: &str,
        to: &str,
    ) -> usize {
        let call_id = format!("{}@switchboard", self.tokens.next());
        let tag = self.tokens.next();
        let host = self.config.sip_addr.ip();
        let local_uri = format!(
            "\"{}\" <sip:{}@{}>",
            quote_display(display),
            call.presented().1,
            host
        );
        let remote_uri = format!("<sip:{}@{}>", to, host);
        let contact_hdr = self.contact(contact.flow.transport);
        let dialog = Dialog::uac(
            call_id,
            tag.clone(),
            local_uri,
            remote_uri,
            contact.uri,
            contact.flow,
            contact_hdr,
        );
        self.launch_fork(call, dialog, tag, None);
        call.forks.len() - 1
    }

    /// Sends the INVITE of a new B-leg and records it.
    pub(crate) fn launch_fork(
        &mut self,
        call: &mut Call,
        mut dialog: Dialog,
        tag: String,
        trunk: Option<TrunkLeg>,
    ) {
        let branch = self.tokens.branch();
        let invite = self.fork_invite(call, &mut dialog, &branch);
        let dest = dialog.peer;
        let i = call.forks.len();
        call.forks.push(Fork {
            dialog,
            invite: invite.clone(),
            branch,
            state: ForkState::Calling,
            cancel_pending: None,
            cancelled: false,
            extension: call.callee.clone(),
            round: call.round,
            ack: None,
            trunk,
            member: None,
        });
        self.add_dialog(call, tag, LegRef::Fork(i));
        self.send_request(call, invite, dest);
    }

    /// The next INVITE in a B-leg's dialog, with the call's offer.
    pub(crate) fn fork_invite(&self, call: &Call, dialog: &mut Dialog, branch: &str) -> Request {
        let mut invite = dialog.request(Method::Invite, self.config.sip_addr, branch);
        invite
            .headers
            .set("Max-Forwards", &call.route.max_forwards.to_string());
        for d in &call.route.diversions {
            invite.headers.push("Diversion", d);
        }
        invite.headers.push("Allow", ALLOW);
        invite.headers.push("Content-Type", "application/sdp");
        invite.body = call.offer_b.clone();
        invite
    }

    /// A response (or, `None`, a timeout) on fork `i`'s INVITE.
    pub(crate) fn on_fork_response(
        &mut self,
        call: &mut Call,
        i: usize,
        response: Option<Response>,
        now: Instant,
    ) {
        let code = response.as_ref().map_or(408, |r| r.status.as_u16());
        if code >= 200 && self.transfer_fork_response(call, i, response.as_ref(), now) {
            return;
        }
        if code < 200 {
            let Some(resp) = response else { return };
            self.fork_provisional(call, i, &resp);
        } else if code < 300 {
            let Some(resp) = response else { return };
            self.fork_answered(call, i, &resp, now);
        } else {
            if matches!(code, 401 | 407) {
                if let Some(resp) = &response {
                    if self.answer_trunk_challenge(call, i, resp) {
                        return;
                    }
                }
            }
            let fork = &mut call.forks[i];
            if fork.state == ForkState::Done {
                return;
            }
            fork.state = ForkState::Done;
            // A challenge we could not answer is never passed to the caller
            // (it would answer with its own credentials): for a trunk it is
            // the trunk's failure, for a phone a failure to reach it.
            let code = match code {
                401 | 407 if fork.trunk.is_some() => 503,
                401 | 407 => 480,
                c => c,
            };
            if fork.member.is_some() && fork.round == call.round && call.group.is_some() {
                // A ring group member's leg: the group decides what follows.
                return self.member_failed(call, i, code, now);
            }
            let counts = fork.round == call.round && !fork.cancelled;
            if counts {
                call.failures.push(code);
            }
            if counts && code >= 600 && call.phase == CallPhase::Ringing && !call.a.finalized {
                // RFC 3261 §16.7: a 6xx is the callee's global answer; stop
                // ringing the other contacts and pass it on now.
                let reason = if code == 600 {
                    BUSY_EVERYWHERE
                } else {
                    DECLINED
                };
                self.cancel_all(call, Some(reason));
                return self.decide_failure(call, now);
            }
            self.check_all_failed(call, now);
        }
    }

    fn fork_provisional(&mut self, call: &mut Call, i: usize, resp: &Response) {
        let fork = &mut call.forks[i];
        if let Some(t) = &mut fork.trunk {
            t.setup_deadline = None; // the trunk is alive
        }
        if fork.state == ForkState::Calling {
            fork.state = ForkState::Proceeding;
            if let Some(reason) = fork.cancel_pending.take() {
                self.send_cancel(call, i, reason);
                return;
            }
        }
        let fork = &mut call.forks[i];
        if resp.status.as_u16() == 100 || fork.cancelled {
            return;
        }
        fork.dialog.learn_from_response(resp);
        if call.a.finalized || call.winner.is_some() || call.phase != CallPhase::Ringing {
            return;
        }
        let sdp = parse_sdp(&resp.body, resp.content_type().ok().flatten());
        if let Some(sdp) = sdp {
            // Early media: the caller hears this fork's ringback/announcement.
            if let Ok(body) = call.media.sdp_for(Side::A, &sdp) {
                let ip = call.forks[i].dialog.peer.addr.ip();
                call.media.set_signal(Side::B, ip);
                call.media.configure(Side::B, &sdp, &mut self.media_out);
                let r = self
                    .a_response(call, status(183))
                    .with_body("application/sdp", body);
                self.respond(&call.a.key.clone(), r);
                call.a.sent_ringing = true;
            }
        } else if !call.a.sent_ringing {
            call.a.sent_ringing = true;
            let r = self.a_response(call, StatusCode::RINGING);
            self.respond(&call.a.key.clone(), r);
        }
    }

    fn fork_answered(&mut self, call: &mut Call, i: usize, resp: &Response, now: Instant) {
        let sent_by = self.config.sip_addr;
        let fork = &mut call.forks[i];
        if let Some(ack) = &fork.ack {
            // A retransmitted 2xx: our ACK was lost.
            let (request, dest) = (ack.clone(), fork.dialog.peer);
            self.sip_out.push_back(SipOutput::Ack { request, dest });
            return;
        }
        fork.dialog.learn_from_response(resp);
        fork.state = ForkState::Answered;
        let seq = fork.invite.cseq().ok().flatten().map_or(1, |c| c.seq);
        let branch = self.tokens.branch();
        let ack = fork.dialog.ack(seq, sent_by, &branch);
        fork.ack = Some(ack.clone());
        let dest = fork.dialog.peer;
        self.sip_out
            .push_back(SipOutput::Ack { request: ack, dest });
        let sdp = parse_sdp(&resp.body, resp.content_type().ok().flatten());
        let can_win =
            call.winner.is_none() && !call.a.finalized && call.phase == CallPhase::Ringing;
        if let (Some(answer), true, true) = (&sdp, can_win, call.join_into.is_some()) {
            // A semi-attended transfer waits for this answer.
            call.no_answer_at = None;
            if self.join_on_answer(call, i, answer, now) {
                return;
            }
        }
        let answer = sdp
            .filter(|_| can_win)
            .and_then(|s| call.media.sdp_for(Side::A, &s).ok().map(|b| (s, b)));
        let (Some((sdp, body)), true) = (answer, can_win) else {
            // Lost the race (or unusable answer): hang this leg up.
            self.bye_fork(call, i, Some(COMPLETED_ELSEWHERE));
            call.forks[i].state = ForkState::Done;
            if can_win {
                call.failures.push(488);
                self.check_all_failed(call, now);
            }
            return;
        };
        call.winner = Some(i);
        call.callee = call.forks[i].extension.clone();
        if let Some(t) = &call.forks[i].trunk {
            call.trunk = Some(t.route.trunk);
        }
        call.no_answer_at = None;
        self.group_answered(call, i);
        for j in 0..call.forks.len() {
            if j != i {
                self.cancel_fork(call, j, Some(COMPLETED_ELSEWHERE));
            }
        }
        let ip = call.forks[i].dialog.peer.addr.ip();
        call.media.set_signal(Side::B, ip);
        call.media.configure(Side::B, &sdp, &mut self.media_out);
        self.media_out
            .push_back(super::MediaCommand::Connected { call: call.id });
        let ok = self
            .a_response(call, StatusCode::OK)
            .with_header("Allow", ALLOW)
            .with_body("application/sdp", body);
        let key = call.a.key.clone();
        self.respond(&key, ok.clone());
        call.a.finalized = true;
        call.phase = CallPhase::Answering;
        tracing::info!(call = call.id, tenant = %call.tenant, callee = %call.callee, "answered");
        call.answered = Some(now);
        let cseq = call.a.invite.cseq().ok().flatten().map_or(1, |c| c.seq);
        call.retransmit_2xx(Side::A, key, ok, cseq, now, true, &self.config);
    }

    /// Cancels fork `j` if it is still ringing.
    pub(crate) fn cancel_fork(&mut self, call: &mut Call, j: usize, reason: Option<&'static str>) {
        let fork = &mut call.forks[j];
        if fork.cancelled {
            return;
        }
        match fork.state {
            ForkState::Calling => {
                fork.cancelled = true;
                fork.cancel_pending = Some(reason);
            }
            ForkState::Proceeding => {
                fork.cancelled = true;
                self.send_cancel(call, j, reason);
            }
            ForkState::Answered | ForkState::Done => {}
        }
    }

    fn send_cancel(&mut self, call: &mut Call, j: usize, reason: Option<&'static str>) {
        let fork = &call.forks[j];
        let Ok(mut cancel) = cancel_for(&fork.invite) else {
            return;
        };
        if let Some(r) = reason {
            cancel.headers.push("Reason", r);
        }
        let dest = fork.dialog.peer;
        self.send_request(call, cancel, dest);
    }

    pub(crate) fn cancel_all(&mut self, call: &mut Call, reason: Option<&'static str>) {
        for j in 0..call.forks.len() {
            self.cancel_fork(call, j, reason);
        }
    }
}

/// Escapes a display name for a quoted-string (RFC 3261 §25.1): backslash
/// and double quote escaped, control characters dropped.
pub(crate) fn quote_display(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().take(64) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_are_quoted_safely() {
        assert_eq!(
            super::quote_display("Ann \"A\" B\\x\r\n"),
            "Ann \\\"A\\\" B\\\\x"
        );
    }
}
