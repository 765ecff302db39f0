//! Call setup: the caller's INVITE, the dial plan, forking to contacts,
//! forwarding, and the outcome the caller hears.

use std::collections::HashMap;
use std::time::Instant;

use media::Side;
use sip::transaction::{Target, TxKey, cancel_for};
use sip::{Method, Request, Response, StatusCode};
use store::{Disposition, ForwardTarget, HangupBy};

use super::dialog::Dialog;
use super::engine::{
    ALeg, Call, CallEngine, Fork, ForkState, LegRef, Retransmit, RouteState, status,
};
use super::media::{CallMedia, MediaError, parse_sdp};
use super::select::best_response;
use super::{CallPhase, CallerIdentity, ContactTarget, Destination, ExtensionProfile, SipOutput};

const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";
const DECLINED: &str = "SIP;cause=603;text=\"Declined\"";
const BUSY_EVERYWHERE: &str = "SIP;cause=600;text=\"Busy Everywhere\"";
use super::ALLOW;

/// Why a call is being diverted (RFC 5806 `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Divert {
    Unconditional,
    Busy,
    NoAnswer,
}

impl Divert {
    fn reason(self) -> &'static str {
        match self {
            Divert::Unconditional => "unconditional",
            Divert::Busy => "user-busy",
            Divert::NoAnswer => "no-answer",
        }
    }
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
        // No SIP extension is supported yet (100rel, timer...): RFC 3261 §8.2.2.3.
        let required: Vec<&str> = request.require().collect();
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
        let dialled = request
            .uri
            .user()
            .map(|u| String::from_utf8_lossy(&sip::unescape(u)).into_owned())
            .unwrap_or_default();
        let id = self.new_call_id();
        let Ok(media) = CallMedia::new(id, &offer, self.config.media_addr, self.config.max_streams)
        else {
            return reject(self, 488);
        };
        let local_tag = self.tokens.next();
        let contact = self.contact(source.transport);
        let dialog = Dialog::uas(&request, source, local_tag.clone(), contact);
        let placeholder = ExtensionProfile {
            number: caller.extension.clone(),
            display_name: String::new(),
            dnd: false,
            forwarding: Default::default(),
            no_answer_timeout: std::time::Duration::from_secs(25),
        };
        let mut call = Call {
            id,
            tenant: caller.tenant,
            caller: caller.extension.to_string(),
            caller_name: match self
                .dial_plan
                .resolve(caller.tenant, caller.extension.as_str())
            {
                Destination::Extension(p) if !p.display_name.is_empty() => p.display_name,
                _ => caller.extension.to_string(),
            },
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
                profile: placeholder,
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
        match self.dial_plan.resolve(call.tenant, &dialled) {
            Destination::Extension(profile) => self.ring(&mut call, profile, now),
            Destination::External(_) => self.fail(
                &mut call,
                503,
                Disposition::Failed,
                "no route to outside numbers",
                now,
            ),
            Destination::Unknown => {
                self.fail(&mut call, 404, Disposition::Failed, "unknown number", now)
            }
        }
        self.insert_call(call);
    }

    /// Rings `profile`'s contacts (after following its forward-always).
    fn ring(&mut self, call: &mut Call, profile: ExtensionProfile, now: Instant) {
        call.callee = profile.number.to_string();
        call.route.visited.push(profile.number.to_string());
        let always = profile.forwarding.always.clone();
        call.route.profile = profile.clone();
        if let Some(target) = always {
            if self.divert(call, &target, Divert::Unconditional, now) {
                return;
            }
        }
        if profile.dnd {
            return self.busy(call, now);
        }
        let contacts = self.locator.contacts(call.tenant, &profile.number);
        if contacts.is_empty() {
            if let Some(t) = profile.forwarding.no_answer.clone() {
                if self.divert(call, &t, Divert::NoAnswer, now) {
                    return;
                }
            }
            return self.fail(call, 480, Disposition::NoAnswer, "not registered", now);
        }
        if let Err(e) = self.open_media(call) {
            let code = if matches!(e, MediaError::Exhausted) {
                503
            } else {
                488
            };
            return self.fail(call, code, Disposition::Failed, &e.to_string(), now);
        }
        call.round += 1;
        call.failures.clear();
        for c in contacts {
            self.start_fork(call, c);
        }
        call.no_answer_at = Some(now + profile.no_answer_timeout);
    }

    /// Takes relay ports and anchors the caller's offer for the B-legs.
    fn open_media(&mut self, call: &mut Call) -> Result<(), MediaError> {
        if !call.offer_b.is_empty() {
            return Ok(());
        }
        call.media
            .open(&self.ports, &call.offer_a, &mut self.media_out)?;
        call.offer_b = call.media.sdp_for(Side::B, &call.offer_a)?;
        Ok(())
    }

    /// Follows a forward to `target`; false when the chain is cut (loop,
    /// hop limit, Max-Forwards, outside number, unknown extension).
    fn divert(
        &mut self,
        call: &mut Call,
        target: &ForwardTarget,
        why: Divert,
        now: Instant,
    ) -> bool {
        let ForwardTarget::Extension(ext) = target else {
            return false; // outside numbers need trunk routing
        };
        let visited = call.route.visited.iter().any(|v| v == ext.as_str());
        if visited
            || call.route.hops >= self.config.max_forward_hops
            || call.route.max_forwards <= 1
        {
            tracing::debug!(call = call.id, to = %ext, "forwarding chain cut");
            return false;
        }
        let Destination::Extension(profile) = self.dial_plan.resolve(call.tenant, ext.as_str())
        else {
            return false;
        };
        call.route.hops += 1;
        call.route.max_forwards -= 1;
        let from = call.route.profile.number.to_string();
        let value = format!(
            "<sip:{}@{}>;reason={};counter=1",
            from,
            self.config.sip_addr.ip(),
            why.reason()
        );
        call.route.diversions.insert(0, value);
        self.ring(call, profile, now);
        true
    }

    fn start_fork(&mut self, call: &mut Call, contact: ContactTarget) {
        let call_id = format!("{}@switchboard", self.tokens.next());
        let tag = self.tokens.next();
        let branch = self.tokens.branch();
        let host = self.config.sip_addr.ip();
        let local_uri = format!(
            "\"{}\" <sip:{}@{}>",
            quote_display(&call.caller_name),
            call.caller,
            host
        );
        let remote_uri = format!("<sip:{}@{}>", call.callee, host);
        let contact_hdr = self.contact(contact.flow.transport);
        let mut dialog = Dialog::uac(
            call_id,
            tag.clone(),
            local_uri,
            remote_uri,
            contact.uri,
            contact.flow,
            contact_hdr,
        );
        let mut invite = dialog.request(Method::Invite, self.config.sip_addr, &branch);
        invite
            .headers
            .set("Max-Forwards", &call.route.max_forwards.to_string());
        for d in &call.route.diversions {
            invite.headers.push("Diversion", d);
        }
        invite.headers.push("Allow", ALLOW);
        invite.headers.push("Content-Type", "application/sdp");
        invite.body = call.offer_b.clone();
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
        });
        self.add_dialog(call, tag, LegRef::Fork(i));
        self.send_request(call, invite, contact.flow);
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
        if code < 200 {
            let Some(resp) = response else { return };
            self.fork_provisional(call, i, &resp);
        } else if code < 300 {
            let Some(resp) = response else { return };
            self.fork_answered(call, i, &resp, now);
        } else {
            let fork = &mut call.forks[i];
            if fork.state == ForkState::Done {
                return;
            }
            fork.state = ForkState::Done;
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
        call.no_answer_at = None;
        for j in 0..call.forks.len() {
            if j != i {
                self.cancel_fork(call, j, Some(COMPLETED_ELSEWHERE));
            }
        }
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
        call.retransmits.push(Retransmit {
            side: Side::A,
            key,
            response: ok,
            cseq,
            next: now + self.config.t1,
            interval: self.config.t1,
            give_up: now + self.config.t1 * 64,
            initial: true,
        });
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

    fn cancel_all(&mut self, call: &mut Call, reason: Option<&'static str>) {
        for j in 0..call.forks.len() {
            self.cancel_fork(call, j, reason);
        }
    }

    /// CANCEL (or BYE on the early dialog) from the caller.
    pub(crate) fn caller_cancelled(&mut self, call: &mut Call, now: Instant) {
        if call.a.finalized || call.phase != CallPhase::Ringing {
            return;
        }
        let r = self.a_response(call, status(487));
        self.respond(&call.a.key.clone(), r);
        call.a.finalized = true;
        self.cancel_all(call, None);
        self.end(
            call,
            now,
            Disposition::Cancelled,
            "caller cancelled",
            HangupBy::Caller,
        );
    }

    /// The extension's no-answer timer fired.
    pub(crate) fn no_answer(&mut self, call: &mut Call, now: Instant) {
        if call.phase != CallPhase::Ringing || call.a.finalized {
            return;
        }
        self.cancel_all(call, None);
        if let Some(t) = call.route.profile.forwarding.no_answer.clone() {
            if self.divert(call, &t, Divert::NoAnswer, now) {
                return;
            }
        }
        self.fail(call, 480, Disposition::NoAnswer, "no answer", now);
    }

    fn busy(&mut self, call: &mut Call, now: Instant) {
        if let Some(t) = call.route.profile.forwarding.busy.clone() {
            if self.divert(call, &t, Divert::Busy, now) {
                return;
            }
        }
        self.fail(call, 486, Disposition::Busy, "busy", now);
    }

    fn check_all_failed(&mut self, call: &mut Call, now: Instant) {
        if call.winner.is_some() || call.a.finalized || call.phase != CallPhase::Ringing {
            return;
        }
        let live = call.forks.iter().any(|f| {
            f.round == call.round && matches!(f.state, ForkState::Calling | ForkState::Proceeding)
        });
        if !live {
            self.decide_failure(call, now);
        }
    }

    /// Every B-leg of the round failed (or one said 6xx): busy handling,
    /// forwarding or the best final response.
    fn decide_failure(&mut self, call: &mut Call, now: Instant) {
        match best_response(&call.failures).unwrap_or(480) {
            486 | 600 => self.busy(call, now),
            c @ (603 | 604 | 606) => self.fail(call, c, Disposition::Rejected, "declined", now),
            c @ (408 | 480) => self.fail(call, c, Disposition::NoAnswer, "not available", now),
            c => self.fail(call, c, Disposition::Failed, "callee failed", now),
        }
    }

    /// Final failure to the caller, ringing legs cancelled, call ended.
    pub(crate) fn fail(
        &mut self,
        call: &mut Call,
        code: u16,
        disposition: Disposition,
        cause: &str,
        now: Instant,
    ) {
        if !call.a.finalized {
            let r = self.a_response(call, status(code));
            self.respond(&call.a.key.clone(), r);
            call.a.finalized = true;
        }
        self.cancel_all(call, None);
        let by = match disposition {
            Disposition::Busy | Disposition::Rejected => HangupBy::Callee,
            _ => HangupBy::System,
        };
        self.end(call, now, disposition, &format!("{code} {cause}"), by);
    }
}

/// Escapes a display name for a quoted-string (RFC 3261 §25.1): backslash
/// and double quote escaped, control characters dropped.
fn quote_display(name: &str) -> String {
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
